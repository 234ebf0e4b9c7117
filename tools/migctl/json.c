// SPDX-License-Identifier: GPL-2.0
/* A small streaming JSON writer for migctl's -j / -p output. */
#include <inttypes.h>

#include "json.h"

static void indent(struct json_out *j)
{
	int i;

	if (!j->pretty)
		return;
	fputc('\n', j->out);
	for (i = 0; i < j->depth; i++)
		fputs("    ", j->out);
}

static void quoted(struct json_out *j, const char *s)
{
	const unsigned char *p;

	fputc('"', j->out);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", j->out);
			break;
		case '\\':
			fputs("\\\\", j->out);
			break;
		case '\n':
			fputs("\\n", j->out);
			break;
		case '\t':
			fputs("\\t", j->out);
			break;
		default:
			if (*p < 0x20)
				fprintf(j->out, "\\u%04x", *p);
			else
				fputc(*p, j->out);
		}
	}
	fputc('"', j->out);
}

/* Separator, indentation and key before a value at the current depth. */
static void member(struct json_out *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->out);
		j->first[j->depth] = false;
		indent(j);
	}
	if (key) {
		quoted(j, key);
		fputs(j->pretty ? ": " : ":", j->out);
	}
}

static void open_(struct json_out *j, const char *key, char c)
{
	if (!j->enabled)
		return;
	member(j, key);
	fputc(c, j->out);
	if (j->depth < JSON_MAX_DEPTH - 1)
		j->depth++;
	j->first[j->depth] = true;
}

static void close_(struct json_out *j, char c)
{
	bool empty;

	if (!j->enabled)
		return;
	empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty)
		indent(j);
	fputc(c, j->out);
	if (!j->depth)
		fputc('\n', j->out);
}

void json_begin_object(struct json_out *j, const char *key)
{
	open_(j, key, '{');
}

void json_end_object(struct json_out *j)
{
	close_(j, '}');
}

void json_begin_array(struct json_out *j, const char *key)
{
	open_(j, key, '[');
}

void json_end_array(struct json_out *j)
{
	close_(j, ']');
}

void json_str(struct json_out *j, const char *key, const char *val)
{
	if (!j->enabled)
		return;
	member(j, key);
	quoted(j, val);
}

void json_u64(struct json_out *j, const char *key, uint64_t val)
{
	if (!j->enabled)
		return;
	member(j, key);
	fprintf(j->out, "%" PRIu64, val);
}

void json_bool(struct json_out *j, const char *key, bool val)
{
	if (!j->enabled)
		return;
	member(j, key);
	fputs(val ? "true" : "false", j->out);
}

void json_raw(struct json_out *j, const char *key, const char *val)
{
	if (!j->enabled)
		return;
	member(j, key);
	fputs(val, j->out);
}

void json_flush(struct json_out *j)
{
	if (j->enabled)
		fflush(j->out);
}
