/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space shim of the few kernel APIs mm/dirty-track/dt_core.c uses, so
 * the unit tests and the benchmark compile the real core unchanged.  Atomics
 * map to GCC __atomic builtins with the kernel's ordering (value-returning
 * RMW fully ordered).
 */
#ifndef _DT_SHIM_H
#define _DT_SHIM_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
typedef unsigned int gfp_t;

#define __user
#define __percpu
#define __init
#define __exit
#define noinline		__attribute__((__noinline__))
#ifndef __always_inline
#define __always_inline		inline __attribute__((__always_inline__))
#endif

#define PAGE_SIZE		4096UL
#define BITS_PER_LONG		64
#define BITS_PER_BYTE		8
#define U64_MAX			UINT64_MAX
#define ULONG_MAX		(~0UL)

#define GFP_KERNEL		1u
#define GFP_NOWAIT		2u
#define __GFP_NOWARN		4u

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#define EXPORT_SYMBOL_GPL(sym)	struct __dt_shim_export_##sym
#define BIT(n)			(1UL << (n))
#define BIT_ULL(n)		(1ULL << (n))
#define BITS_TO_LONGS(n)	(((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define WARN_ON_ONCE(c)		({ bool __c = !!(c); if (__c) abort(); __c; })
#define struct_size(p, member, n) \
	(sizeof(*(p)) + (size_t)(n) * sizeof((p)->member[0]))

#define min(a, b)	({ __typeof__(a) __a = (a); __typeof__(b) __b = (b); __a < __b ? __a : __b; })
#define max(a, b)	({ __typeof__(a) __a = (a); __typeof__(b) __b = (b); __a > __b ? __a : __b; })
#define min_t(t, a, b)	min((t)(a), (t)(b))

/* ---- atomics ---- */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define smp_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define smp_mb__after_atomic()	smp_mb()
#define xchg(p, v)		__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define cmpxchg(p, o, n) ({						\
	__typeof__(*(p)) __o = (o);					\
	__atomic_compare_exchange_n((p), &__o, (n), false,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
	__o; })
#define try_cmpxchg(p, po, n)						\
	__atomic_compare_exchange_n((p), (po), (n), false,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

typedef struct { int64_t counter; } atomic64_t;
static inline void atomic64_add(s64 v, atomic64_t *a)
{ __atomic_fetch_add(&a->counter, v, __ATOMIC_RELAXED); }
static inline void atomic64_inc(atomic64_t *a) { atomic64_add(1, a); }
static inline s64 atomic64_read(atomic64_t *a)
{ return __atomic_load_n(&a->counter, __ATOMIC_RELAXED); }

/* ---- bitops ---- */
static inline unsigned long __ffs(unsigned long x) { return __builtin_ctzl(x); }
static inline unsigned int hweight_long(unsigned long x) { return __builtin_popcountl(x); }
static inline bool is_power_of_2(unsigned long n) { return n && !(n & (n - 1)); }
#define ilog2(n)	(63 - __builtin_clzll(n))
static inline bool test_and_set_bit(unsigned long nr, unsigned long *addr)
{
	unsigned long m = 1UL << (nr % 64);

	return __atomic_fetch_or(&addr[nr / 64], m, __ATOMIC_SEQ_CST) & m;
}
#define prefetch(p)	__builtin_prefetch((p), 0)
#define prefetchw(p)	__builtin_prefetch((p), 1)

/* ---- context, RCU, scheduling ---- */
#define in_nmi()		0
#define in_hardirq()		0
#define irqs_disabled()		0
#define synchronize_rcu()	do { } while (0)
#define cond_resched()		do { } while (0)
#define fatal_signal_pending(t)	0
#define current			NULL
#define gfpflags_allow_blocking(gfp)	(!((gfp) & GFP_NOWAIT))
#define check_add_overflow(a, b, d)	__builtin_add_overflow(a, b, d)

/* ---- errors ---- */
#define MAX_ERRNO	4095
#define ERR_PTR(e)	((void *)(long)(e))
#define PTR_ERR(p)	((long)(p))
#define IS_ERR(p)	((unsigned long)(p) >= (unsigned long)-MAX_ERRNO)

/* ---- memory; allocation failure injection for tests ---- */
extern int dt_shim_fail_nowait;		/* fail every GFP_NOWAIT alloc */
extern long dt_shim_live_allocs;

#ifdef DT_SHIM_ARENA
/*
 * Benchmark build: like the kernel's direct map, back small objects with
 * huge pages (an arena with MADV_HUGEPAGE) and big ones with THP mappings,
 * so TLB misses do not distort the comparison with a flat bitmap.
 */
void *dt_shim_arena_alloc(size_t n);
bool dt_shim_arena_free(const void *p);
#else
static inline void *dt_shim_arena_alloc(size_t n) { return NULL; }
static inline bool dt_shim_arena_free(const void *p) { return false; }
#endif

static inline void *kzalloc(size_t n, gfp_t gfp)
{
	void *p;

	if ((gfp & GFP_NOWAIT) && __atomic_load_n(&dt_shim_fail_nowait, __ATOMIC_RELAXED))
		return NULL;
	p = dt_shim_arena_alloc(n);
	if (!p)
		p = calloc(1, n);
	if (p)
		__atomic_fetch_add(&dt_shim_live_allocs, 1, __ATOMIC_RELAXED);
	return p;
}
static inline void *kmalloc(size_t n, gfp_t gfp) { return kzalloc(n, gfp); }
static inline void *kcalloc(size_t n, size_t s, gfp_t gfp) { return kzalloc(n * s, gfp); }
static inline void *kmalloc_array(size_t n, size_t s, gfp_t gfp) { return kzalloc(n * s, gfp); }
static inline void *kvcalloc(size_t n, size_t s, gfp_t gfp) { return kzalloc(n * s, gfp); }
static inline void kfree(const void *p)
{
	if (p)
		__atomic_fetch_sub(&dt_shim_live_allocs, 1, __ATOMIC_RELAXED);
	if (!dt_shim_arena_free(p))
		free((void *)p);
}
#define kvfree(p)	kfree(p)

/* copy_to_user: tests can make it fail */
extern int dt_shim_fail_copy;
static inline unsigned long copy_to_user(void *to, const void *from, unsigned long n)
{
	if (dt_shim_fail_copy) {
		dt_shim_fail_copy--;
		if (!dt_shim_fail_copy)
			return n;
	}
	memcpy(to, from, n);
	return 0;
}

/* ---- per-CPU: a few padded slots, picked per thread ---- */
#define DT_SHIM_NR_CPUS		8
#define DT_SHIM_PCPU_STRIDE	256
extern __thread int dt_shim_cpu;
int dt_shim_cpu_slow(void);
static inline int dt_shim_this_cpu(void)
{
	return likely(dt_shim_cpu >= 0) ? dt_shim_cpu : dt_shim_cpu_slow();
}
#define alloc_percpu(type)	((type *)kzalloc(DT_SHIM_NR_CPUS * DT_SHIM_PCPU_STRIDE, GFP_KERNEL))
#define free_percpu(p)		kfree(p)
#define per_cpu_ptr(p, cpu)	((__typeof__(p))((char *)(p) + (cpu) * DT_SHIM_PCPU_STRIDE))
#define for_each_possible_cpu(cpu) for ((cpu) = 0; (cpu) < DT_SHIM_NR_CPUS; (cpu)++)
#define __shim_pcpu_addr(pcp) \
	((__typeof__(&(pcp)))((char *)&(pcp) + dt_shim_this_cpu() * DT_SHIM_PCPU_STRIDE))
/*
 * Like the kernel's this_cpu_add() (one unlocked instruction): a plain
 * read-modify-write of this thread's slot.  Exact while at most
 * DT_SHIM_NR_CPUS threads update counters (slots are handed out round robin).
 */
#define this_cpu_add(pcp, v) do {					\
	__typeof__(&(pcp)) __p = __shim_pcpu_addr(pcp);			\
	__atomic_store_n(__p, __atomic_load_n(__p, __ATOMIC_RELAXED) + (v), \
			 __ATOMIC_RELAXED);				\
} while (0)
#define this_cpu_inc(pcp)	this_cpu_add(pcp, 1)

/* ---- mutex ---- */
struct mutex { pthread_mutex_t m; };
#define mutex_init(x)		pthread_mutex_init(&(x)->m, NULL)
#define mutex_destroy(x)	pthread_mutex_destroy(&(x)->m)
#define mutex_lock(x)		pthread_mutex_lock(&(x)->m)
#define mutex_unlock(x)		pthread_mutex_unlock(&(x)->m)

/* ---- sort ---- */
static inline void sort(void *base, size_t num, size_t size,
			int (*cmp)(const void *, const void *), void *swap)
{
	(void)swap;
	qsort(base, num, size, cmp);
}

#endif /* _DT_SHIM_H */
