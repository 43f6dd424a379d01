/*
 * Reclamation under a hazard: a thread parked inside a partial-list pop,
 * holding a hazard on descriptor A, while the main thread unlists A,
 * retires it and scans.  A must not be freed while the hazard stands (a
 * control descriptor retired at the same time with no hazard is freed by
 * the same scan); once the parked thread finishes, A is freed.  Then a
 * page of descriptors, all retired, is given back to the OS.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

static unsigned rc_cls;
static hl_desc_t *t1_got;

static sem_t t1_go;

static void *popper(void *arg)
{
	(void)arg;
	while (sem_wait(&t1_go) != 0)
		;
	park_arm_self();
	t1_got = sb_test_unlist(rc_cls);
	return NULL;
}

static uint64_t freed(void) { return lf_load_relaxed(&hl_ctr.desc_freed); }

int main(void)
{
	plan(8);
	hl_free(hl_malloc(1));
	rc_cls = sc_of(20000);
	/* Create the thread first: thread creation allocates. */
	sem_init(&t1_go, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, popper, NULL);
	while (sb_test_unlist(rc_cls))
		;
	lf_hp_rec_t *me = desc_hp_rec();
	lf_hp_scan(me);

	hl_desc_t *A = sb_test_new(0, rc_cls), *B = sb_test_new(0, rc_cls);
	hl_desc_t *C = sb_test_new(0, rc_cls);
	sb_test_list(B);
	sb_test_list(A);

	park_setup(HOOK_TSTACK_GUARD_READ);
	sem_post(&t1_go);
	park_wait_parked();       /* T1: hazard on A published and validated */

	hl_desc_t *a = sb_test_unlist(rc_cls);
	ok(a == A, "main unlists A while the parked thread protects it");
	uint64_t f0 = freed();
	sb_test_retire(A);
	sb_test_retire(C);
	lf_hp_scan(me);
	lf_hp_scan(me);
	uint64_t f1 = freed();
	ok(f1 - f0 == 1, "a scan frees the unprotected descriptor C but not A (freed %llu, want 1)",
	   (unsigned long long)(f1 - f0));
	ok(lf_hp_pending(&desc_hp) >= 1, "A waits in the hazard domain (pending %llu)",
	   (unsigned long long)lf_hp_pending(&desc_hp));

	park_release();
	pthread_join(t, NULL);
	ok(t1_got == B, "the parked pop's CAS fails and it retries to B");
	lf_hp_scan(me);
	ok(freed() - f1 == 1, "once the hazard is gone the next scan frees A");
	ok(lf_hp_pending(&desc_hp) == 0, "nothing is left pending");

	/* A whole page of descriptors, retired: the page goes back. */
	enum { N = 8 * HL_DESC_PER_PAGE };
	static hl_desc_t *ds[N];
	uint64_t rel0 = lf_load_relaxed(&hl_ctr.desc_pages_released);
	for (int i = 0; i < N; i++)
		ds[i] = sb_test_new(0, rc_cls);
	for (int i = 0; i < N; i++)
		sb_test_retire(ds[i]);
	lf_hp_scan(me);
	uint64_t rel1 = lf_load_relaxed(&hl_ctr.desc_pages_released);
	ok(rel1 > rel0, "pages whose descriptors are all retired are released (%llu pages)",
	   (unsigned long long)(rel1 - rel0));
	/* mincore: a released page is no longer resident. */
	int nonresident = 0, checked = 0;
	for (uint32_t pg = 1; pg < HL_DESC_PAGES && checked < 64; pg++) {
		if (!desc_page_released(pg))
			continue;
		unsigned char v = 1;
		checked++;
		if (mincore(desc_arena + (size_t)pg * HL_PAGE, HL_PAGE, &v) == 0 && !(v & 1))
			nonresident++;
	}
	ok(checked > 0 && nonresident == checked,
	   "released descriptor pages are not resident (%d of %d)", nonresident, checked);
	return done_testing();
}
