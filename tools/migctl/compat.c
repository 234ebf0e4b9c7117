// SPDX-License-Identifier: GPL-2.0
/*
 * The handshake's compatibility check (Documentation/live-migration.rst,
 * "Compatibility allow-list"): every field either must be equal, or is on
 * the allow-list of tolerated differences. The first field that must be
 * equal and is not is named, with both values, on both sides.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lm.h"

static int refuse(struct wire_refuse *r, const char *field, const char *why,
		  const char *fmt_s, const char *fmt_t)
{
	snprintf(r->field, sizeof(r->field), "%s", field);
	snprintf(r->source, sizeof(r->source), "%s", fmt_s);
	snprintf(r->target, sizeof(r->target), "%s", fmt_t);
	snprintf(r->reason, sizeof(r->reason), "%s", why);
	return 1;
}

static int refuse_u(struct wire_refuse *r, const char *field, const char *why,
		    const char *fmt, uint64_t s, uint64_t t)
{
	char a[64], b[64];

	snprintf(a, sizeof(a), fmt, s);
	snprintf(b, sizeof(b), fmt, t);
	return refuse(r, field, why, a, b);
}

static void note(char *notes, size_t len, const char *fmt, const char *field,
		 uint64_t s, uint64_t t)
{
	size_t used = strlen(notes);
	char a[32], b[32];

	if (s == t || used + 1 >= len)
		return;
	snprintf(a, sizeof(a), fmt, s);
	snprintf(b, sizeof(b), fmt, t);
	snprintf(notes + used, len - used, "%s%s %s/%s", used ? ", " : "",
		 field, a, b);
}

static void bar_desc(char *buf, size_t len, uint64_t size, uint32_t flags)
{
	if (!size) {
		snprintf(buf, len, "absent");
		return;
	}
	snprintf(buf, len, "%s%s%s 0x%" PRIx64,
		 flags & MIG_BAR_IO ? "io" : "mem",
		 flags & MIG_BAR_MEM64 ? "64" : "",
		 flags & MIG_BAR_PREFETCH ? " prefetchable" : "", size);
}

int lm_compat_check(const struct mig_ident *s, const struct mig_ident *t,
		    struct wire_refuse *r, char *notes, size_t notes_len)
{
	int i;

	memset(r, 0, sizeof(*r));
	if (notes_len)
		notes[0] = 0;
	if (s->proto_major != t->proto_major)
		return refuse_u(r, "proto_major",
				"wire protocol major versions differ",
				"%" PRIu64, s->proto_major, t->proto_major);
	if (s->stream_major != t->stream_major)
		return refuse_u(r, "stream_major",
				"migration stream major versions differ",
				"%" PRIu64, s->stream_major, t->stream_major);
	if (s->page_size != t->page_size)
		return refuse_u(r, "page_size", "page sizes differ",
				"%" PRIu64, s->page_size, t->page_size);
	if (s->vendor != t->vendor)
		return refuse_u(r, "vendor", "PCI vendor ids differ",
				"%04" PRIx64, s->vendor, t->vendor);
	if (s->device != t->device)
		return refuse_u(r, "device", "PCI device ids differ",
				"%04" PRIx64, s->device, t->device);
	if (s->class_code != t->class_code)
		return refuse_u(r, "class", "PCI class codes differ",
				"%06" PRIx64, s->class_code, t->class_code);
	for (i = 0; i < 6; i++) {
		if (s->bar_size[i] != t->bar_size[i] ||
		    s->bar_flags[i] != t->bar_flags[i]) {
			char f[16], a[64], b[64];

			snprintf(f, sizeof(f), "bar%d", i);
			bar_desc(a, sizeof(a), s->bar_size[i], s->bar_flags[i]);
			bar_desc(b, sizeof(b), t->bar_size[i], t->bar_flags[i]);
			return refuse(r, f, s->bar_size[i] != t->bar_size[i] ?
				      "BAR sizes differ" : "BAR types differ",
				      a, b);
		}
	}
	if (strcmp(s->profile, t->profile))
		return refuse(r, "profile", "device profiles differ",
			      s->profile, t->profile);
	/* the allow-list */
	note(notes, notes_len, "%04" PRIx64, "subsystem_vendor", s->subvendor,
	     t->subvendor);
	note(notes, notes_len, "%04" PRIx64, "subsystem_device", s->subdevice,
	     t->subdevice);
	note(notes, notes_len, "0x%02" PRIx64, "revision", s->revision,
	     t->revision);
	note(notes, notes_len, "%" PRIu64, "trap_mode", s->trap_mode,
	     t->trap_mode);
	note(notes, notes_len, "%" PRIu64, "proto_minor", s->proto_minor,
	     t->proto_minor);
	note(notes, notes_len, "%" PRIu64, "stream_minor", s->stream_minor,
	     t->stream_minor);
	note(notes, notes_len, "%" PRIu64, "precopy", s->precopy, t->precopy);
	if (strcmp(s->kernel, t->kernel) && strlen(notes) + 1 < notes_len)
		snprintf(notes + strlen(notes), notes_len - strlen(notes),
			 "%skernel %s/%s", notes[0] ? ", " : "", s->kernel,
			 t->kernel);
	return 0;
}
