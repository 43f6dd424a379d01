/*
 * Tagged index stack (Treiber stack over 32-bit node indexes).
 *
 * The head is one 64-bit word {index, tag}; every successful push or pop
 * adds one to the tag, so a pop that read head A and link B and was then
 * overtaken by "pop A, pop B, push A" fails its CAS instead of installing
 * B (ABA).  The tag has HL_TAG_BITS bits: a test build shrinks it to show
 * that the ABA tests catch a tag that wraps.
 *
 * Nodes are named by index; index 0 means "none".  The caller owns the
 * link words (one uint32_t per node, found through link()) and the memory
 * they live in.  A pop reads the link of a node another thread may pop at
 * the same moment: the link word must stay readable (type-stable memory),
 * or the caller must protect the node first (see lf_tstack_pop_guarded).
 *
 * Concurrency: any number of pushers and poppers (mpmc).  Linearizes on
 * the CAS of the head.
 */
#ifndef HL_LF_TSTACK_H
#define HL_LF_TSTACK_H

#include <stdint.h>
#include "atomic.h"
#include "hook.h"

#ifndef HL_TAG_BITS
#define HL_TAG_BITS 32
#endif
#if HL_TAG_BITS < 1 || HL_TAG_BITS > 32
#error "HL_TAG_BITS must be 1..32"
#endif

#define LF_TSTACK_TAG_MASK \
	((uint64_t)(HL_TAG_BITS == 32 ? 0xffffffffu : ((1u << HL_TAG_BITS) - 1u)))

typedef struct lf_tstack {
	uint64_t head; /* low 32 bits: index; high 32 bits: tag */
} lf_tstack_t;

typedef uint32_t *(*lf_tstack_link_fn)(void *ctx, uint32_t idx);

static inline uint32_t lf_tstack_head_index(uint64_t h) { return (uint32_t)h; }

static inline uint64_t lf_tstack_make(uint32_t idx, uint64_t old)
{
	uint64_t tag = ((old >> 32) + 1) & LF_TSTACK_TAG_MASK;
	return (tag << 32) | idx;
}

static inline void lf_tstack_init(lf_tstack_t *s) { lf_store_relaxed(&s->head, 0); }

static inline int lf_tstack_empty(lf_tstack_t *s)
{
	return lf_tstack_head_index(lf_load_acquire(&s->head)) == 0;
}

/* Push the chain first..last (already linked through their link words). */
static inline void lf_tstack_push_chain(lf_tstack_t *s, uint32_t first,
					uint32_t *last_link)
{
	uint64_t old = lf_load_relaxed(&s->head);
	do {
		lf_store_relaxed(last_link, lf_tstack_head_index(old));
	} while (!lf_cas_weak_acq_rel(&s->head, &old,
				      lf_tstack_make(first, old)));
}

static inline void lf_tstack_push(lf_tstack_t *s, uint32_t idx, uint32_t *link)
{
	lf_tstack_push_chain(s, idx, link);
}

/* Pop one node; returns its index or 0 when empty.  The link word of the
 * node read as head must be readable even if another thread has popped it
 * meanwhile (type-stable memory). */
static inline uint32_t lf_tstack_pop(lf_tstack_t *s, lf_tstack_link_fn link,
				     void *ctx)
{
	uint64_t old = lf_load_acquire(&s->head);
	for (;;) {
		uint32_t top = lf_tstack_head_index(old);
		if (top == 0)
			return 0;
		uint32_t next = lf_load_relaxed(link(ctx, top));
		HL_HOOK("tstack_pop_read");
		if (lf_cas_weak_acq_rel(&s->head, &old, lf_tstack_make(next, old)))
			return top;
	}
}

/* Pop like lf_tstack_pop, for nodes whose memory may be released once
 * popped: guard(ctx, idx) must publish a hazard on node idx (and return 0
 * if idx is not a node right now); the head is read again after the guard
 * is up, so the link is only read from a node that was on the stack while
 * protected.  The caller clears the hazard after use. */
typedef int (*lf_tstack_guard_fn)(void *ctx, uint32_t idx);

static inline uint32_t lf_tstack_pop_guarded(lf_tstack_t *s,
					     lf_tstack_link_fn link,
					     lf_tstack_guard_fn guard,
					     void *ctx)
{
	uint64_t old = lf_load_acquire(&s->head);
	for (;;) {
		uint32_t top = lf_tstack_head_index(old);
		if (top == 0)
			return 0;
		HL_HOOK("tstack_guard_before");
		if (!guard(ctx, top)) {
			old = lf_load_acquire(&s->head);
			continue;
		}
		uint64_t again = lf_load_seq_cst(&s->head);
		if (again != old) {
			old = again;
			continue;
		}
		HL_HOOK("tstack_guard_read");
		uint32_t next = lf_load_relaxed(link(ctx, top));
		HL_HOOK("tstack_pop_read");
		/* seq_cst: this unlink and another popper's hazard store and
		 * re-read of the head are a store-buffering pair, which C11
		 * orders only when both sides are seq_cst (acq_rel works on
		 * x86 by accident of its hardware, not by the model). */
		if (lf_cas_weak_seq_cst(&s->head, &old, lf_tstack_make(next, old)))
			return top;
	}
}

/* Take the whole stack at once; returns the first index (0 when empty).
 * seq_cst for the same reason as lf_tstack_pop_guarded: a sweeper that
 * takes a partial list and retires from it unlinks against hazards. */
static inline uint32_t lf_tstack_pop_all(lf_tstack_t *s)
{
	uint64_t old = lf_load_acquire(&s->head);
	while (lf_tstack_head_index(old) != 0 &&
	       !lf_cas_weak_seq_cst(&s->head, &old, lf_tstack_make(0, old)))
		;
	return lf_tstack_head_index(old);
}

#endif
