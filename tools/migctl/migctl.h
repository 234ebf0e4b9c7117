/* SPDX-License-Identifier: GPL-2.0 */
/* migctl: shared declarations of the command files. */
#ifndef MIGCTL_H
#define MIGCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

bool migctl_valid_bdf(const char *s);
int migctl_parse_u64(const char *s, uint64_t *v);
/* Print an error and return exit code 2 (usage) or 1 (failure). */
int migctl_usage_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
int migctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* netlink commands (cmd_nl.c) */
struct nl_msg;
struct nlattr;
int migctl_dev_show(struct json_out *js, const char *bdf);
int migctl_dev_set(int argc, char **argv);
int migctl_log(struct json_out *js, const char *bdf, uint64_t since);
int migctl_dirty(struct json_out *js, int argc, char **argv);
int migctl_shadow(struct json_out *js, int argc, char **argv);
/* Print one shadow-get reply to stdout, or as JSON to @js (a json_out). */
int migctl_show_shadow(struct nl_msg *msg, void *js);
/*
 * Its attributes in @tb (VFIO_MIG_A_SHADOW_MAX + 1 entries), checked
 * against the shadow set's policy: 0, or -1 when it is not one.
 */
int migctl_shadow_parse(struct nl_msg *msg, struct nlattr **tb);
int migctl_monitor(struct json_out *js);

int migctl_main(int argc, char **argv);

#endif
