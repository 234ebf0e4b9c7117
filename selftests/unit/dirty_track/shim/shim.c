// SPDX-License-Identifier: GPL-2.0
/* Out-of-line parts of the user-space shim. */
#include "shim.h"

int dt_shim_fail_nowait;
int dt_shim_fail_copy;
long dt_shim_live_allocs;
__thread int dt_shim_cpu = -1;
static int dt_shim_next_cpu;

int dt_shim_cpu_slow(void)
{
	if (dt_shim_cpu < 0)
		dt_shim_cpu = __atomic_fetch_add(&dt_shim_next_cpu, 1,
						 __ATOMIC_RELAXED) % DT_SHIM_NR_CPUS;
	return dt_shim_cpu;
}

#ifdef DT_SHIM_ARENA
#include <sys/mman.h>

/*
 * Power-of-two objects of 64 bytes to 4 KiB (blocks, chunk headers) come
 * from per-size regions of one reservation, handed out in allocation order
 * like a slab, with a free list per size.
 */
#define ARENA_MIN_SHIFT	6
#define ARENA_CLASSES	7
#define ARENA_REGION	(32UL << 30)	/* address space per size */

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena_base;
static struct {
	char *next;
	void *free_list;
} arena[ARENA_CLASSES];

void *dt_shim_arena_alloc(size_t n)
{
	unsigned int k;
	void *p = NULL;

	for (k = 0; k < ARENA_CLASSES; k++)
		if (n == 1UL << (ARENA_MIN_SHIFT + k))
			break;
	if (k == ARENA_CLASSES)
		return NULL;
	pthread_mutex_lock(&arena_lock);
	if (!arena_base) {
		unsigned int i;

		arena_base = mmap(NULL, ARENA_REGION * ARENA_CLASSES,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (arena_base == MAP_FAILED) {
			arena_base = NULL;
			goto out;
		}
		madvise(arena_base, ARENA_REGION * ARENA_CLASSES, MADV_HUGEPAGE);
		for (i = 0; i < ARENA_CLASSES; i++)
			arena[i].next = arena_base + i * ARENA_REGION;
	}
	if (arena[k].free_list) {
		p = arena[k].free_list;
		arena[k].free_list = *(void **)p;
		memset(p, 0, n);
	} else if (arena[k].next + n <= arena_base + (k + 1) * ARENA_REGION) {
		p = arena[k].next;
		arena[k].next += n;
	}
out:
	pthread_mutex_unlock(&arena_lock);
	return p;
}

bool dt_shim_arena_free(const void *p)
{
	unsigned long k;

	if (!arena_base || (const char *)p < arena_base ||
	    (const char *)p >= arena_base + ARENA_REGION * ARENA_CLASSES)
		return false;
	k = ((const char *)p - arena_base) / ARENA_REGION;
	pthread_mutex_lock(&arena_lock);
	*(void **)p = arena[k].free_list;
	arena[k].free_list = (void *)p;
	pthread_mutex_unlock(&arena_lock);
	return true;
}
#endif
