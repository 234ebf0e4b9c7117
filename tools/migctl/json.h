/* SPDX-License-Identifier: GPL-2.0 */
/* A small streaming JSON writer for migctl's -j / -p output. */
#ifndef MIGCTL_JSON_H
#define MIGCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json_out {
	bool enabled;		/* -j: nothing is written unless set */
	bool pretty;		/* -p: indent */
	FILE *out;
	int depth;
	bool first[JSON_MAX_DEPTH];
};

void json_begin_object(struct json_out *j, const char *key);
void json_end_object(struct json_out *j);
void json_begin_array(struct json_out *j, const char *key);
void json_end_array(struct json_out *j);
void json_str(struct json_out *j, const char *key, const char *val);
void json_u64(struct json_out *j, const char *key, uint64_t val);
void json_bool(struct json_out *j, const char *key, bool val);
/* A value written as given (a number already formatted). */
void json_raw(struct json_out *j, const char *key, const char *val);
/* Ends the document with a newline once everything is closed. */
void json_flush(struct json_out *j);

#endif
