/*
 * desc_alloc scans before it fails: with every page of the descriptor
 * arena in use (the page count seeded one short of its bound, then the
 * rest handed out), a few descriptors retired by the caller and still
 * waiting below its scan threshold are freed and one is handed out;
 * so are descriptors an exited thread left on the orphan list (kept at
 * its exit by this thread's hazards, since cleared).  When nothing is
 * retired, desc_alloc fails.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

#include "core/core.h"
#include "tap.h"

#define HOLD_MAX 8192
#define MINE 10   /* retired by this thread: below LF_HP_MIN_THRESHOLD */

_Static_assert(MINE < LF_HP_MIN_THRESHOLD, "retiring MINE does not scan by itself");

static hl_desc_t *held[HOLD_MAX];
static unsigned nheld;
static unsigned fs_cls;
static sem_t go;
static hl_desc_t *orphan[2];

/* Hand out descriptors until none is left; returns how many. */
static unsigned fill(void)
{
	unsigned got = 0;
	while (nheld < HOLD_MAX && (held[nheld] = sb_test_new(0, fs_cls)) != NULL) {
		nheld++;
		got++;
	}
	return got;
}

/* Retires two descriptors this thread protects, and exits: its exit
 * scan must keep them, so its release puts them on the orphan list. */
static void *exiting(void *arg)
{
	(void)arg;
	while (sem_wait(&go) != 0)
		;
	sb_test_retire(orphan[0]);
	sb_test_retire(orphan[1]);
	return NULL;
}

int main(void)
{
	plan(5);
	hl_free(hl_malloc(1));
	fs_cls = sc_of(20000);
	/* Created before the arena is full: thread creation allocates. */
	sem_init(&go, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, exiting, NULL);
	lf_hp_rec_t *me = desc_hp_rec();
	lf_hp_scan(me);

	desc_test_seed_pages(HL_DESC_PAGES - 1);
	unsigned n0 = fill();
	ok(n0 > 0 && nheld < HOLD_MAX && lf_hp_pending(&desc_hp) == 0 &&
	   sb_test_new(0, fs_cls) == NULL,
	   "with every page in use (%u handed out) and nothing retired, a new superblock gets no descriptor", n0);

	for (int i = 0; i < MINE; i++)
		sb_test_retire(held[--nheld]);
	uint64_t pend = lf_hp_pending(&desc_hp);
	held[nheld] = sb_test_new(0, fs_cls);
	ok(pend == MINE && held[nheld] != NULL,
	   "with %llu of its own retired descriptors pending below the scan threshold, desc_alloc scans and hands one out",
	   (unsigned long long)pend);
	if (held[nheld])
		nheld++;
	fill();   /* the other freed ones */

	orphan[0] = held[--nheld];
	orphan[1] = held[--nheld];
	lf_hp_set(me, 1, orphan[0]);
	lf_hp_set(me, 2, orphan[1]);
	sem_post(&go);
	pthread_join(t, NULL);
	uint64_t orphans = lf_load_relaxed(&desc_hp.hp_norphans);
	lf_hp_clear(me, 1);
	lf_hp_clear(me, 2);
	held[nheld] = sb_test_new(0, fs_cls);
	ok(orphans == 2 && held[nheld] != NULL && lf_load_relaxed(&desc_hp.hp_norphans) == 0,
	   "with the arena full again and %llu descriptors left on the orphan list by an exited thread, desc_alloc adopts them, frees them and hands one out",
	   (unsigned long long)orphans);
	if (held[nheld])
		nheld++;

	while (nheld)
		sb_test_retire(held[--nheld]);
	lf_hp_scan(me);
	ok(lf_hp_pending(&desc_hp) == 0, "every descriptor retired is freed");
	void *p = hl_malloc(100);
	ok(p != NULL, "malloc works again");
	hl_free(p);
	return done_testing();
}
