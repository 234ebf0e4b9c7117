/* SPDX-License-Identifier: GPL-2.0 */
/* Running programs (migctl) from tests, and reading their JSON output. */
#ifndef VMIG_TEST_CMD_H
#define VMIG_TEST_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cmd_result {
	int status;	/* exit code, or 128 + signal */
	char out[65536];
	char err[4096];
};

/*
 * Run argv (NULL-terminated) with stdout and stderr captured; @uid >= 0
 * runs it as that user with no capabilities. Returns 0 or -errno.
 */
int cmd_run(struct cmd_result *r, uid_t uid, char *const argv[]);
#define CMD(r, ...) cmd_run((r), -1, (char *const[]){ __VA_ARGS__, NULL })

/*
 * Minimal JSON lookups for migctl's output. json_object_with() finds the
 * object that has "key": "value" at its top level and returns it (to its
 * closing brace) in @buf; json_str()/json_u64() read a key anywhere in it.
 */
int json_object_with(const char *json, const char *key, const char *value,
		     char *buf, size_t len);
int json_get_str(const char *obj, const char *key, char *buf, size_t len);
int json_get_u64(const char *obj, const char *key, uint64_t *v);
int json_get_bool(const char *obj, const char *key, bool *v);
/* How many objects have "key": "value" anywhere in @json. */
int json_count(const char *json, const char *key, const char *value);

#endif
