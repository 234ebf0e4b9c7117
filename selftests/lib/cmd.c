// SPDX-License-Identifier: GPL-2.0
/* Running programs from tests, and reading their JSON output. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

/* Read what @fd has into @buf (keeping it NUL-terminated); 0 at EOF. */
static ssize_t drain(int fd, char *buf, size_t len, size_t *used)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	size_t take;

	if (n <= 0)
		return n;
	take = *used + 1 < len ? len - 1 - *used : 0;
	if (take > (size_t)n)
		take = n;
	memcpy(buf + *used, tmp, take);
	*used += take;
	buf[*used] = 0;
	return n;
}

int cmd_run(struct cmd_result *r, uid_t uid, char *const argv[])
{
	int out[2], err[2], status;
	size_t no = 0, ne = 0;
	struct pollfd p[2];
	pid_t pid;

	r->out[0] = r->err[0] = 0;
	if (pipe(out) || pipe(err))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		if (uid != (uid_t)-1 &&
		    (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		     setresuid(uid, uid, uid)))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	p[0].fd = out[0];
	p[1].fd = err[0];
	p[0].events = p[1].events = POLLIN;
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents && drain(out[0], r->out, sizeof(r->out), &no) <= 0)
			p[0].fd = -1;
		if (p[1].revents && drain(err[0], r->err, sizeof(r->err), &ne) <= 0)
			p[1].fd = -1;
	}
	close(out[0]);
	close(err[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
		    128 + WTERMSIG(status);
	return 0;
}

/* End of the JSON value starting at @p (object, array, string or scalar). */
static const char *skip_value(const char *p)
{
	int depth = 0;
	bool str = false;

	for (; *p; p++) {
		if (str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				str = false;
			if (!str && !depth)
				return p + 1;
			continue;
		}
		if (*p == '"') {
			str = true;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (!depth)
				return p;
			if (!--depth)
				return p + 1;
		} else if (!depth && (*p == ',')) {
			return p;
		}
	}
	return p;
}

static const char *find_key(const char *obj, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(obj, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

int json_object_with(const char *json, const char *key, const char *value,
		     char *buf, size_t len)
{
	char pat[256];
	const char *hit, *start, *end;
	int depth;

	snprintf(pat, sizeof(pat), "\"%s\": \"%s\"", key, value);
	hit = strstr(json, pat);
	if (!hit) {
		snprintf(pat, sizeof(pat), "\"%s\":\"%s\"", key, value);
		hit = strstr(json, pat);
	}
	if (!hit)
		return -ENOENT;
	for (start = hit, depth = 0; start > json; start--) {
		if (*start == '}')
			depth++;
		if (*start == '{' && !depth--)
			break;
	}
	end = skip_value(start);
	if ((size_t)(end - start) >= len)
		return -E2BIG;
	memcpy(buf, start, end - start);
	buf[end - start] = 0;
	return 0;
}

int json_get_str(const char *obj, const char *key, char *buf, size_t len)
{
	const char *p = find_key(obj, key), *e;

	if (!p || *p != '"')
		return -ENOENT;
	e = strchr(p + 1, '"');
	if (!e || (size_t)(e - p - 1) >= len)
		return -E2BIG;
	memcpy(buf, p + 1, e - p - 1);
	buf[e - p - 1] = 0;
	return 0;
}

int json_get_u64(const char *obj, const char *key, uint64_t *v)
{
	const char *p = find_key(obj, key);
	char *end;

	if (!p || *p < '0' || *p > '9')
		return -ENOENT;
	*v = strtoull(p, &end, 10);
	return 0;
}

int json_get_bool(const char *obj, const char *key, bool *v)
{
	const char *p = find_key(obj, key);

	if (!p)
		return -ENOENT;
	if (!strncmp(p, "true", 4))
		*v = true;
	else if (!strncmp(p, "false", 5))
		*v = false;
	else
		return -EINVAL;
	return 0;
}

int json_count(const char *json, const char *key, const char *value)
{
	char pat[256];
	const char *p = json;
	int n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"%s\"", key, value);
	while ((p = strstr(p, pat))) {
		n++;
		p += strlen(pat);
	}
	snprintf(pat, sizeof(pat), "\"%s\": \"%s\"", key, value);
	for (p = json; (p = strstr(p, pat)); p += strlen(pat))
		n++;
	return n;
}
