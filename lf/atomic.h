/*
 * Named-order atomics.  Every shared access in heaplib goes through these,
 * so the memory order is in the name and ThreadSanitizer sees each one
 * (they are the compiler's __atomic builtins, not inline assembly).
 *
 * Types: any naturally aligned 1-, 2-, 4- or 8-byte integer or pointer
 * object; the macros are generic.
 */
#ifndef HL_LF_ATOMIC_H
#define HL_LF_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#define lf_load_relaxed(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define lf_load_acquire(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define lf_load_seq_cst(p)      __atomic_load_n((p), __ATOMIC_SEQ_CST)

#define lf_store_relaxed(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define lf_store_release(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define lf_store_seq_cst(p, v)  __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

#define lf_exchange_acq_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define lf_exchange_seq_cst(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

#define lf_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define lf_fetch_add_acq_rel(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define lf_fetch_sub_relaxed(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_RELAXED)
#define lf_fetch_sub_acq_rel(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_ACQ_REL)
#define lf_fetch_sub_release(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_RELEASE)
#define lf_fetch_add_seq_cst(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define lf_fetch_or_acq_rel(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define lf_fetch_and_acq_rel(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)

/* Compare-and-swap: on failure *expected is refreshed with the current
 * value (acquire), so a retry loop needs no extra load. */
#define lf_cas_weak_acq_rel(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), true, \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define lf_cas_strong_acq_rel(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), false, \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define lf_cas_weak_seq_cst(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), true, \
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define lf_cas_strong_seq_cst(p, expected, desired) \
	__atomic_compare_exchange_n((p), (expected), (desired), false, \
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/* Busy-wait hint for retry loops (not a lock: nothing waits for a holder). */
static inline void lf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#define LF_CACHELINE 64
#define lf_cacheline_aligned __attribute__((aligned(LF_CACHELINE)))

#endif
