/*
 * ABA on the tagged stack, deterministically.
 *
 * The stack is [A B C].  Thread T1 pops and is parked at the hook
 * "tstack_pop_read": it has read head A and A's link B and not yet done
 * its CAS.  The main thread pops A, B and C, and pushes A and C back as
 * one chain: the stack is [A C], main holds B, and the head's index is A
 * again after 4 changes.  (Four, not three: single pushes and pops move the
 * size by one, so "pop A, pop B, push A" and any number of push/pop pairs
 * after it is an odd count that can never be a multiple of the tag period;
 * the chain push restores parity.)  With a tag of 2 bits, 4 changes bring
 * the head word back bit for bit; with a wider tag that a test can wrap,
 * push/pop pairs of node D make up the period; with a tag too wide for
 * that (the real 32 bits) main does the same 4 changes.
 *
 * Then T1 runs on.  A correct stack fails T1's CAS (the tag moved), T1
 * retries and pops A from [A C], leaving [C].  A wrapped tag lets the CAS
 * succeed and install B, which main holds: the stack then has an owned
 * node on it.  The build with -DHL_TAG_BITS=2 must therefore report
 * failure; that is the proof the test can see ABA.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>

#include "hook.h"
#include "tstack.h"
#include "tap.h"
#include "hooks.h"

enum { A = 1, B = 2, C = 3, D = 4, NODES = 4 };
enum { NOBODY = 0, MAIN = 1, T1 = 2 };

/* Tags up to this wide are wrapped for real with push/pop pairs. */
#define WRAPPABLE_BITS 20

static const char *const name_of[NODES + 1] = { "-", "A", "B", "C", "D" };
static const char *const who[] = { "nobody", "main", "T1" };
static uint32_t links[NODES + 1];
static uint32_t owner[NODES + 1];
static lf_tstack_t stack;

static __thread int on_t1;
static int t1_passes;          /* T1's passes through the hook */
static uint32_t t1_got;
static sem_t t1_parked, t1_resume;

static uint32_t *link_of(void *ctx, uint32_t idx)
{
	(void)ctx;
	return &links[idx];
}

/* Park T1 on its first pass between reading the link and the CAS. */
static void park_hook(const char *name)
{
	if (!on_t1 || strcmp(name, HOOK_TSTACK_POP_READ) != 0)
		return;
	if (++t1_passes == 1) {
		sem_post(&t1_parked);
		while (sem_wait(&t1_resume) != 0)
			;
	}
}

static void *t1_main(void *arg)
{
	(void)arg;
	on_t1 = 1;
	uint32_t got = lf_tstack_pop(&stack, link_of, NULL);
	if (got)
		lf_store_relaxed(&owner[got], T1);
	t1_got = got;
	return NULL;
}

static uint32_t main_pop(void)
{
	uint32_t got = lf_tstack_pop(&stack, link_of, NULL);
	if (got)
		lf_store_relaxed(&owner[got], MAIN);
	return got;
}

static void main_push(uint32_t idx)
{
	lf_store_relaxed(&owner[idx], NOBODY);
	lf_tstack_push(&stack, idx, &links[idx]);
}

static uint64_t head(void) { return lf_load_relaxed(&stack.head); }

int main(void)
{
	plan(5);
	sem_init(&t1_parked, 0, 0);
	sem_init(&t1_resume, 0, 0);
	lf_tstack_init(&stack);
	lf_store_relaxed(&owner[D], MAIN);
	main_push(C);
	main_push(B);
	main_push(A);
	lf_store_release(&lf_hook_callback, park_hook);

	pthread_t t;
	pthread_create(&t, NULL, t1_main, NULL);
	while (sem_wait(&t1_parked) != 0)
		;
	uint64_t seen = head();
	diag("T1 parked before its CAS: it read head %s (tag %llu) and link %s",
	     name_of[lf_tstack_head_index(seen)], (unsigned long long)(seen >> 32),
	     name_of[lf_load_relaxed(&links[A])]);

	/* pop A, pop B, pop C, push the chain A -> C: [A C], main holds B. */
	uint32_t a = main_pop(), b = main_pop(), c = main_pop();
	lf_store_relaxed(&links[A], C);
	lf_store_relaxed(&owner[A], NOBODY);
	lf_store_relaxed(&owner[C], NOBODY);
	lf_tstack_push_chain(&stack, A, &links[C]);
	uint64_t changes = 4;
	uint64_t period = LF_TSTACK_TAG_MASK + 1;
	if (HL_TAG_BITS <= WRAPPABLE_BITS) {
		while (changes % period != 0) {
			main_push(D);
			main_pop();
			changes += 2;
		}
	} else {
		diag("a %d-bit tag cannot be wrapped here: doing the 4 changes of the 2-bit case",
		     HL_TAG_BITS);
	}
	uint64_t now = head();
	diag("main popped %s %s %s, pushed chain A C, %llu head changes in all: head %s (tag %llu), %s what T1 read",
	     name_of[a], name_of[b], name_of[c], (unsigned long long)changes,
	     name_of[lf_tstack_head_index(now)], (unsigned long long)(now >> 32),
	     now == seen ? "bit for bit" : "not");

	sem_post(&t1_resume);
	pthread_join(t, NULL);

	ok(lf_tstack_head_index(seen) == A && a == A && b == B && c == C,
	   "T1 parks after reading head A while main pops A, B, C in order");
	ok(t1_got == A, "T1's pop returns A (got %s)", name_of[t1_got]);

	/* What is on the stack now, against who owns what. */
	uint8_t on_stack[NODES + 1] = { 0 };
	int count = 0, broken = 0;
	for (uint32_t i = lf_tstack_pop_all(&stack); i; i = lf_load_relaxed(&links[i])) {
		if (i > NODES || on_stack[i] || ++count > NODES) {
			broken = 1;
			break;
		}
		on_stack[i] = 1;
		diag("on the stack after T1: %s (held by %s)", name_of[i],
		     who[lf_load_relaxed(&owner[i])]);
	}
	int owned_on_stack = 0, exact = !broken;
	for (uint32_t i = 1; i <= NODES; i++) {
		int owned = lf_load_relaxed(&owner[i]) != NOBODY;
		owned_on_stack += owned && on_stack[i];
		exact &= owned != on_stack[i];
	}
	if (t1_passes >= 2)
		diag("T1's CAS failed (tag %llu is not %llu), it re-read head A and link C",
		     (unsigned long long)(now >> 32), (unsigned long long)(seen >> 32));
	if (owned_on_stack)
		diag("ABA: T1's CAS saw the same head word and installed B, which main holds");
	ok(owned_on_stack == 0 && !broken,
	   "T1's pop does not put B, held by main, back on the stack (ABA caught by the tag)");
	ok(exact, "the stack holds exactly the nodes nobody owns (C)");
	ok(t1_passes >= 2, "T1's first CAS fails on the changed tag and it retries (%d passes)",
	   t1_passes);
	return done_testing();
}
