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

#define ARENA_SLAB	(64UL << 20)
#define ARENA_OBJ	512
#define ARENA_MAX	(64UL << 30)	/* address space reserved */

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena_base, *arena_next, *arena_end;
static void *arena_free_list;

/* Objects of exactly 512 bytes (blocks and chunk headers) come from here. */
void *dt_shim_arena_alloc(size_t n)
{
	void *p = NULL;

	if (n != ARENA_OBJ)
		return NULL;
	pthread_mutex_lock(&arena_lock);
	if (!arena_base) {
		arena_base = mmap(NULL, ARENA_MAX, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (arena_base == MAP_FAILED) {
			arena_base = NULL;
			goto out;
		}
		madvise(arena_base, ARENA_MAX, MADV_HUGEPAGE);
		arena_next = arena_base;
		arena_end = arena_base + ARENA_MAX;
	}
	if (arena_free_list) {
		p = arena_free_list;
		arena_free_list = *(void **)p;
		memset(p, 0, ARENA_OBJ);
	} else if (arena_next < arena_end) {
		p = arena_next;
		arena_next += ARENA_OBJ;
	}
out:
	pthread_mutex_unlock(&arena_lock);
	return p;
}

bool dt_shim_arena_free(const void *p)
{
	if (!arena_base || (const char *)p < arena_base || (const char *)p >= arena_end)
		return false;
	pthread_mutex_lock(&arena_lock);
	*(void **)p = arena_free_list;
	arena_free_list = (void *)p;
	pthread_mutex_unlock(&arena_lock);
	return true;
}
#endif
