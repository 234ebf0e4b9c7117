/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A module parameter a test changes (/sys/module/M/parameters/P): saved
 * before, put back after, whatever the test did in between.  Header only,
 * for suites that build without the library too.
 */
#ifndef _SELFTESTS_MODPARAM_H
#define _SELFTESTS_MODPARAM_H

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

struct modparam {
	const char *path;
	char old[32];		/* empty until saved */
};

/* Write @val to the parameter at @path; 0 or -1 (errno set). */
static inline int modparam_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* Keep the value at @path in @p; 0 or -1 (errno set). */
static inline int modparam_save(struct modparam *p, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	p->path = path;
	p->old[0] = 0;
	if (fd < 0)
		return -1;
	n = read(fd, p->old, sizeof(p->old) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	p->old[n] = 0;
	return 0;
}

/* Put the saved value back, if one was saved. */
static inline void modparam_restore(struct modparam *p)
{
	if (p->old[0])
		modparam_write(p->path, p->old);
}

/*
 * MODPARAM_FIXTURE(name, path): a kselftest fixture (include
 * kselftest_harness.h first) that saves the parameter at @path in its setup
 * and puts it back in its teardown; TEST_F(name, ...) may change it freely.
 */
#define MODPARAM_FIXTURE(name, path)					\
	FIXTURE(name) {							\
		struct modparam p;					\
	};								\
	FIXTURE_SETUP(name)						\
	{								\
		ASSERT_EQ(0, modparam_save(&self->p, path))		\
			TH_LOG("%s: %s", path, strerror(errno));	\
	}								\
	FIXTURE_TEARDOWN(name)						\
	{								\
		modparam_restore(&self->p);				\
	}

#endif /* _SELFTESTS_MODPARAM_H */
