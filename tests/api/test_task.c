/*
 * Tasks: a thread that joins a task allocates under its rules — its own
 * superblocks (even in the default region), exact accounting, a quota
 * that fails only that task, a secure flag, the set of regions it may use;
 * destroying a task with joined threads is HL_EBUSY.  Each scenario runs
 * on a thread of its own, so that joining never touches main's state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

static hl_task_attr_t tattr(void)
{
	hl_task_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	return a;
}

static hl_task_stats_t tstats(hl_task_t *t, hl_region_t *r)
{
	hl_task_stats_t s = { .struct_size = sizeof s };
	hl_task_stats(t, r, &s);
	return s;
}

static void run(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_create(&t, NULL, fn, arg);
	pthread_join(t, NULL);
}

/* ---- quota and accounting ------------------------------------------------ */

static hl_task_t *tq, *tother;

static void *quota_thread(void *arg)
{
	(void)arg;
	ok(hl_task_join(tq) == HL_OK && hl_task_self() == tq, "a thread joins a task with a 1 MiB quota");
	enum { MAX = 4096 };
	static void *v[MAX];
	int n = 0;
	uint64_t bytes = 0;
	errno = 0;
	while (n < MAX && (v[n] = hl_malloc(n % 8 == 7 ? 70000 : 2000)) != NULL) {
		bytes += hl_usable_size(v[n]);
		n++;
	}
	int e = errno;
	hl_task_stats_t s = tstats(tq, NULL);
	ok(n > 0 && n < MAX && e == ENOMEM, "malloc in the task fails with ENOMEM past its quota (%d blocks)", n);
	ok(s.bytes_backed <= s.quota && s.quota == 1 << 20,
	   "the task never holds more than its quota (%llu of %llu)",
	   (unsigned long long)s.bytes_backed, (unsigned long long)s.quota);
	ok(s.blocks_live == (uint64_t)n && s.bytes_live == bytes,
	   "its accounting is exact (%llu blocks, %llu bytes)",
	   (unsigned long long)s.blocks_live, (unsigned long long)s.bytes_live);
	hl_task_stats_t sd = tstats(tq, hl_region_default());
	ok(sd.blocks_live == (uint64_t)n && hl_region_of(v[0]) == hl_region_default(),
	   "all of it in the default region, on the task's own superblocks");
	ok(hl_task_destroy(tq) == HL_EBUSY, "a task with a joined thread cannot be destroyed (HL_EBUSY)");
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	s = tstats(tq, NULL);
	ok(s.blocks_live == 0 && s.bytes_live == 0, "all freed: nothing live in the task");
	ok(hl_task_join(NULL) == HL_OK && hl_task_self() != tq, "the thread goes back to the default task");
	return NULL;
}

static void *other_thread(void *arg)
{
	(void)arg;
	hl_task_join(tother);
	void *p = hl_malloc(500000);
	ok(p != NULL, "another task allocates freely while the first is at its quota");
	hl_free(p);
	return NULL;
}

static void test_quota(void)
{
	hl_task_attr_t a = tattr();
	a.name = "quota";
	a.quota = 1 << 20;
	ok(hl_task_create(&a, &tq) == HL_OK, "create a task with a quota");
	a = tattr();
	hl_task_create(&a, &tother);
	run(quota_thread, NULL);
	run(other_thread, NULL);
	ok(hl_task_destroy(tq) == HL_OK, "once no thread is joined it is destroyed");
	ok(hl_task_join(tq) == HL_EINVAL, "a destroyed task cannot be joined");
	hl_task_destroy(tother);
	hl_task_t *bad = NULL;
	a = tattr();
	a.struct_size = 4;
	ok(hl_task_create(&a, &bad) == HL_EINVAL && bad == NULL, "a bad task attribute is HL_EINVAL");
}

/* ---- a block freed across tasks goes home ------------------------------- */

static hl_task_t *ta;
static void *handed[100];

static void *alloc_in_a(void *arg)
{
	(void)arg;
	hl_task_join(ta);
	for (int i = 0; i < 100; i++)
		handed[i] = hl_malloc(64);
	hl_task_join(NULL);
	return NULL;
}

static void test_cross_free(void)
{
	hl_task_attr_t a = tattr();
	hl_task_create(&a, &ta);
	run(alloc_in_a, NULL);
	hl_task_stats_t s = tstats(ta, NULL);
	ok(s.blocks_live == 100, "100 blocks allocated by a thread of task A (%llu live)",
	   (unsigned long long)s.blocks_live);
	for (int i = 0; i < 100; i++)
		hl_free(handed[i]);   /* main: default task, with a cache */
	hl_thread_flush();
	s = tstats(ta, NULL);
	ok(s.blocks_live == 0, "freed by a thread of another task they go back to A, not to a cache");
	void *p = hl_malloc(64);
	int home = 1;
	for (int i = 0; i < 100; i++)
		home &= p != handed[i];
	ok(home, "the default task's next malloc does not get one of A's blocks");
	hl_free(p);
	hl_task_destroy(ta);
}

/* ---- secure task and allowed regions ------------------------------------ */

static hl_task_t *tsec, *tlim;
static hl_region_t *rsec, *r1, *r2;

static void *secure_thread(void *arg)
{
	(void)arg;
	hl_task_join(tsec);
	void *p = hl_malloc(100);
	ok(p && hl_region_of(p) == rsec, "malloc in a secure task comes from the secure region");
	hl_free(p);
	hl_task_join(NULL);
	return NULL;
}

static void *secure_none_thread(void *arg)
{
	(void)arg;
	hl_task_join(tsec);
	errno = 0;
	void *p = hl_malloc(100);
	ok(p == NULL && errno == ENOMEM, "with no secure region left, malloc in it fails (ENOMEM)");
	void *q = NULL;
	ok(hl_alloc(100, NULL, 0, &q) == HL_ENOREGION, "and hl_alloc says HL_ENOREGION");
	hl_task_join(NULL);
	return NULL;
}

static void *limited_thread(void *arg)
{
	(void)arg;
	hl_task_join(tlim);
	void *p = hl_malloc(100);
	ok(p && hl_region_of(p) == r1, "a task limited to region R1 allocates there");
	hl_free(p);
	hl_place_t pl = { .reach = 0, .node = -1, .region = r2 };
	void *q = NULL;
	ok(hl_alloc(100, &pl, 0, &q) == HL_ENOREGION, "asking it for region R2 is HL_ENOREGION");
	hl_task_join(NULL);
	return NULL;
}

static void test_policy(void)
{
	hl_region_attr_t ra;
	memset(&ra, 0, sizeof ra);
	ra.struct_size = sizeof ra;
	ra.secure = 1;
	ra.capacity = 1 << 20;
	hl_region_create(&ra, &rsec);
	hl_task_attr_t a = tattr();
	a.secure = 1;
	hl_task_create(&a, &tsec);
	run(secure_thread, NULL);
	hl_region_delete(rsec);
	run(secure_none_thread, NULL);
	hl_task_destroy(tsec);

	ra.secure = 0;
	hl_region_create(&ra, &r1);
	hl_region_create(&ra, &r2);
	a = tattr();
	hl_region_t *set[1] = { r1 };
	a.regions = set;
	a.nregions = 1;
	hl_task_create(&a, &tlim);
	run(limited_thread, NULL);
	hl_task_destroy(tlim);
	ok(hl_region_delete(r1) == HL_OK && hl_region_delete(r2) == HL_OK, "regions deleted");
}

/* ---- many tasks over a process's life ----------------------------------- */

static int cycles_ok;

static void *cycle_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 5000; i++) {
		hl_task_attr_t a = tattr();
		hl_task_t *t;
		if (hl_task_create(&a, &t) != HL_OK || hl_task_join(t) != HL_OK)
			break;
		void *p = hl_malloc(100);
		hl_free(p);
		hl_task_join(NULL);
		if (!p || hl_task_destroy(t) != HL_OK)
			break;
		cycles_ok++;
	}
	return NULL;
}

static void test_cycles(void)
{
	run(cycle_thread, NULL);
	ok(cycles_ok == 5000,
	   "5000 tasks created, allocated in and destroyed, more than there are arena ids (%d)",
	   cycles_ok);
}

int main(void)
{
	plan_no_plan();
	test_quota();
	test_cross_free();
	test_policy();
	test_cycles();
	return done_testing();
}
