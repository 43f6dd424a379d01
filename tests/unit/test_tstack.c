/*
 * Tagged index stack: LIFO order, empty pops, chains, pop_all, a tag that
 * moves by exactly one per change and wraps at HL_TAG_BITS, and exclusive
 * ownership of popped nodes under 2, 4 and 8 threads.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "tstack.h"
#include "tap.h"

#define POOL 64   /* nodes 1..POOL; 0 means none */

typedef struct node {
	uint32_t link;
	uint32_t owner;   /* 0, or the id of the thread that popped it */
} node_t;

static node_t nodes[POOL + 1];

static uint32_t *link_of(void *ctx, uint32_t idx)
{
	(void)ctx;
	return &nodes[idx].link;
}

static uint64_t tag_of(lf_tstack_t *s)
{
	return lf_load_relaxed(&s->head) >> 32;
}

static void push(lf_tstack_t *s, uint32_t idx)
{
	lf_tstack_push(s, idx, &nodes[idx].link);
}

static uint32_t pop(lf_tstack_t *s)
{
	return lf_tstack_pop(s, link_of, NULL);
}

/* Walk a chain taken by pop_all; returns its length, or -1 on a node out
 * of range, a repeat, or a cycle. */
static int walk(uint32_t first, uint32_t *order, int max)
{
	static uint8_t seen[POOL + 1];
	memset(seen, 0, sizeof seen);
	int n = 0;
	for (uint32_t i = first; i; i = lf_load_relaxed(&nodes[i].link)) {
		if (i > POOL || seen[i] || n >= max)
			return -1;
		seen[i] = 1;
		if (order)
			order[n] = i;
		n++;
	}
	return n;
}

/* ---- multithreaded ownership ------------------------------------------ */

static lf_tstack_t shared;
static long mt_ops;
static uint64_t mt_violations;

static int claim(uint32_t idx, uint32_t id)
{
	uint32_t free_ = 0;
	if (idx == 0 || idx > POOL ||
	    !lf_cas_strong_acq_rel(&nodes[idx].owner, &free_, id)) {
		lf_fetch_add_relaxed(&mt_violations, 1);
		return 0;
	}
	return 1;
}

static void unclaim(uint32_t idx, uint32_t id)
{
	uint32_t mine = id;
	if (!lf_cas_strong_acq_rel(&nodes[idx].owner, &mine, 0))
		lf_fetch_add_relaxed(&mt_violations, 1);
}

static void *churn(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	for (long op = 0; op < mt_ops; op++) {
		uint32_t a = pop(&shared);
		if (!a)
			continue;
		if (!claim(a, id))
			continue;   /* a node someone else holds: counted, left alone */
		if (op & 1) {
			/* Hold two and give them back as one chain. */
			uint32_t b = pop(&shared);
			if (b && claim(b, id)) {
				lf_store_relaxed(&nodes[a].link, b);
				unclaim(b, id);
				unclaim(a, id);
				lf_tstack_push_chain(&shared, a, &nodes[b].link);
				continue;
			}
		}
		unclaim(a, id);
		push(&shared, a);
	}
	return NULL;
}

static void run_threads(int nthreads)
{
	lf_tstack_init(&shared);
	for (uint32_t i = POOL; i >= 1; i--) {
		nodes[i].owner = 0;
		push(&shared, i);
	}
	mt_violations = 0;
	pthread_t t[8];
	for (int i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	uint64_t v = lf_load_relaxed(&mt_violations);
	ok(v == 0, "%d threads x %ld ops: a popped node is never owned by another thread (%llu violations)",
	   nthreads, mt_ops, (unsigned long long)v);
	int n = walk(lf_tstack_pop_all(&shared), NULL, POOL);
	ok(n == POOL, "%d threads: all %d nodes are back on the stack, each once (walk found %d)",
	   nthreads, POOL, n);
}

int main(void)
{
	plan(13);
	lf_tstack_t s;
	uint32_t order[POOL];

	lf_tstack_init(&s);
	ok(pop(&s) == 0 && lf_tstack_empty(&s), "pop from an empty stack returns 0");

	push(&s, 1);
	push(&s, 2);
	push(&s, 3);
	uint32_t a = pop(&s), b = pop(&s), c = pop(&s);
	ok(a == 3 && b == 2 && c == 1 && pop(&s) == 0,
	   "pops return pushes in LIFO order (3 2 1, got %u %u %u)", a, b, c);

	/* Chain 1 -> 2 -> 3 pushed on top of 5. */
	push(&s, 5);
	lf_store_relaxed(&nodes[1].link, 2);
	lf_store_relaxed(&nodes[2].link, 3);
	lf_tstack_push_chain(&s, 1, &nodes[3].link);
	int n = walk(lf_tstack_pop_all(&s), order, POOL);
	ok(n == 4 && order[0] == 1 && order[1] == 2 && order[2] == 3 && order[3] == 5,
	   "push_chain puts the chain on top in its order (1 2 3 5)");
	ok(lf_tstack_empty(&s) && lf_tstack_pop_all(&s) == 0,
	   "pop_all leaves the stack empty and returns 0 on an empty stack");

	/* Tag: +1 per successful change (modulo its width), unchanged by a pop
	 * that finds nothing. */
	lf_tstack_init(&s);
	uint64_t t0 = tag_of(&s);
	int steps_ok = 1;
	pop(&s);
	lf_tstack_pop_all(&s);
	steps_ok &= tag_of(&s) == t0;
	push(&s, 1);
	steps_ok &= tag_of(&s) == ((t0 + 1) & LF_TSTACK_TAG_MASK);
	push(&s, 2);
	steps_ok &= tag_of(&s) == ((t0 + 2) & LF_TSTACK_TAG_MASK);
	pop(&s);
	steps_ok &= tag_of(&s) == ((t0 + 3) & LF_TSTACK_TAG_MASK);
	lf_store_relaxed(&nodes[3].link, 4);
	lf_tstack_push_chain(&s, 3, &nodes[4].link);
	steps_ok &= tag_of(&s) == ((t0 + 4) & LF_TSTACK_TAG_MASK);
	lf_tstack_pop_all(&s);
	steps_ok &= tag_of(&s) == ((t0 + 5) & LF_TSTACK_TAG_MASK);
	ok(steps_ok, "push, pop, push_chain and pop_all each add exactly 1 to the tag; empty pops add 0");

	/* Wrap: a head whose tag is the largest value goes to tag 0. */
	lf_store_relaxed(&s.head, (LF_TSTACK_TAG_MASK << 32) | 0);
	push(&s, 7);
	uint64_t h = lf_load_relaxed(&s.head);
	ok((h >> 32) == 0 && lf_tstack_head_index(h) == 7,
	   "the tag wraps from LF_TSTACK_TAG_MASK (%d bits) to 0 and keeps the index",
	   HL_TAG_BITS);
	ok(lf_tstack_make(9, (LF_TSTACK_TAG_MASK - 1) << 32) >> 32 == LF_TSTACK_TAG_MASK,
	   "the tag reaches LF_TSTACK_TAG_MASK = 2^%d - 1 before it wraps", HL_TAG_BITS);

	double scale = tap_scale();
	mt_ops = (long)(200000 * scale);
	if (mt_ops < 1000)
		mt_ops = 1000;
	run_threads(2);
	run_threads(4);
	run_threads(8);
	return done_testing();
}
