/*
 * Task caches: a thread of a task other than the default caches its own
 * task's blocks of the default region, and the rules still hold — the
 * books count a block live from when it leaves its superblock, while
 * bytes_live says what the program holds; no block of one task reaches
 * another; secure blocks are wiped and never kept from their region; a
 * region reset or deleted never has a block handed out of a cache; a
 * quota counts what caches hold within the README's slack.  Each scenario
 * runs on threads of its own, so that joining never touches main's state.
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

static hl_task_t *new_task(uint64_t quota, int secure, hl_region_t **regions, size_t n)
{
	hl_task_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.quota = quota;
	a.secure = secure;
	a.regions = regions;
	a.nregions = n;
	hl_task_t *t = NULL;
	if (hl_task_create(&a, &t) != HL_OK)
		bail_out("hl_task_create");
	return t;
}

static hl_region_t *new_region(int secure)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.capacity = 1 << 20;
	a.secure = secure;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("hl_region_create");
	return r;
}

static hl_task_stats_t tstats(hl_task_t *t, hl_region_t *r)
{
	hl_task_stats_t s = { .struct_size = sizeof s };
	hl_task_stats(t, r, &s);
	return s;
}

static hl_region_stats_t rstats(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s;
}

static void run(void *(*fn)(void *))
{
	pthread_t t;
	pthread_create(&t, NULL, fn, NULL);
	pthread_join(t, NULL);
}

/* ---- the books ----------------------------------------------------------- */

static void *books_thread(void *arg)
{
	(void)arg;
	hl_task_t *t = new_task(0, 0, NULL, 0);
	hl_task_join(t);
	hl_region_stats_t r0 = rstats(hl_region_default());
	void *p = hl_malloc(64);
	hl_region_stats_t r1 = rstats(hl_region_default());
	hl_task_stats_t s = tstats(t, NULL);
	ok(p && r1.allocs - r0.allocs > 1,
	   "one malloc in a task takes a batch out of its superblock into the cache (%llu blocks)",
	   (unsigned long long)(r1.allocs - r0.allocs));
	ok(s.blocks_live == 1 && s.bytes_live == 64 && r1.blocks_live - r0.blocks_live == 1,
	   "yet bytes_live and blocks_live say what the program holds (%llu blocks, %llu bytes)",
	   (unsigned long long)s.blocks_live, (unsigned long long)s.bytes_live);
	hl_free(p);
	void *q = hl_malloc(64);
	ok(q == p, "a freed block is served again from the thread's cache");
	hl_free(q);
	s = tstats(t, NULL);
	hl_region_stats_t r2 = rstats(hl_region_default());
	ok(s.blocks_live == 0 && s.bytes_live == 0 && r2.frees == r0.frees,
	   "freed: nothing held, and nothing went back to a superblock yet (%llu blocks, %llu frees)",
	   (unsigned long long)s.blocks_live, (unsigned long long)(r2.frees - r0.frees));
	hl_thread_flush();
	r2 = rstats(hl_region_default());
	ok(r2.frees - r0.frees == r1.allocs - r0.allocs && r2.blocks_live == r0.blocks_live,
	   "hl_thread_flush puts every cached block back and takes it off the books");
	unsigned char *z = hl_malloc(64), *y = NULL;
	memset(z, 0xff, 64);
	hl_free(z);
	int nonzero = 0;
	if (hl_alloc(64, NULL, HL_ZERO, (void **)&y) == HL_OK)
		for (int i = 0; i < 64; i++)
			nonzero += y[i] != 0;
	ok(y == z && nonzero == 0, "hl_alloc takes the cached block too, zeroed for HL_ZERO (%d)",
	   nonzero);
	hl_free(y);
	hl_task_join(NULL);
	ok(hl_task_destroy(t) == HL_OK, "the task is destroyed once its thread left");
	return NULL;
}

/* ---- isolation ----------------------------------------------------------- */

enum { N = 40 };
static hl_task_t *ta, *tb;
static void *ablk[N];

static void *rejoin_thread(void *arg)
{
	(void)arg;
	void *b[N];
	hl_task_join(ta);
	for (int i = 0; i < N; i++)
		ablk[i] = hl_malloc(64);
	for (int i = 0; i < N; i++)
		hl_free(ablk[i]);
	hl_task_join(tb);
	int mine = 0;
	for (int i = 0; i < N; i++) {
		b[i] = hl_malloc(64);
		for (int k = 0; k < N; k++)
			mine += b[i] == ablk[k];
	}
	ok(mine == 0, "a thread that moves from task A to task B is never handed A's cached blocks (%d)",
	   mine);
	ok(tstats(ta, NULL).blocks_live == 0 && tstats(tb, NULL).blocks_live == N,
	   "the join put A's blocks back: A holds nothing, B its %d blocks", N);
	for (int i = 0; i < N; i++)
		hl_free(b[i]);
	hl_task_join(NULL);
	return NULL;
}

static void *alloc_a_thread(void *arg)
{
	(void)arg;
	hl_task_join(ta);
	for (int i = 0; i < N; i++)
		ablk[i] = hl_malloc(64);
	hl_task_join(NULL);
	return NULL;
}

static void *free_in_b_thread(void *arg)
{
	(void)arg;
	hl_task_join(tb);
	for (int i = 0; i < N; i++)
		hl_free(ablk[i]);
	ok(tstats(ta, NULL).blocks_live == 0 && tstats(ta, NULL).bytes_live == 0,
	   "A's blocks freed by a thread of task B go back to A at once");
	int theirs = 0;
	void *b[N];
	for (int i = 0; i < N; i++) {
		b[i] = hl_malloc(64);
		for (int k = 0; k < N; k++)
			theirs += b[i] == ablk[k];
	}
	ok(theirs == 0, "and B's next mallocs get none of them (%d)", theirs);
	for (int i = 0; i < N; i++)
		hl_free(b[i]);
	hl_task_join(NULL);
	return NULL;
}

static void test_isolation(void)
{
	ta = new_task(0, 0, NULL, 0);
	tb = new_task(0, 0, NULL, 0);
	run(rejoin_thread);
	run(alloc_a_thread);
	run(free_in_b_thread);
	hl_task_destroy(ta);
	hl_task_destroy(tb);
}

/* ---- secure blocks ------------------------------------------------------- */

static hl_region_t *rsec;

static void *secure_thread(void *arg)
{
	(void)arg;
	hl_task_t *t = new_task(0, 1, NULL, 0);
	hl_task_join(t);
	unsigned char *p = hl_malloc(64);
	ok(p && hl_region_of(p) == rsec, "a secure task's malloc comes from the secure region");
	memset(p, 0xa5, 64);
	hl_free(p);
	int dirty = 0;
	for (int i = 16; i < 64; i++)
		dirty += p[i] != 0;
	ok(dirty == 0, "its freed block is wiped at the free (%d bytes left)", dirty);
	ok(rstats(rsec).blocks_live == 0 && hl_region_delete(rsec) == HL_OK,
	   "and no cache keeps it: the region is deleted right after the free");
	hl_task_join(NULL);
	hl_task_destroy(t);
	return NULL;
}

/* ---- reset and delete ---------------------------------------------------- */

static hl_region_t *rr;

static void *reset_thread(void *arg)
{
	(void)arg;
	hl_task_t *t = new_task(0, 0, &rr, 1);   /* malloc goes to rr only */
	hl_task_join(t);
	void *v[100];
	for (int i = 0; i < 100; i++)
		v[i] = hl_malloc(64);
	for (int i = 0; i < 100; i++)
		hl_free(v[i]);
	ok(hl_region_reset(rr) == HL_OK, "a task limited to region R frees 100 blocks, R is reset");
	void *p = hl_malloc(64);
	hl_region_stats_t s = rstats(rr);
	ok(p && hl_region_of(p) == rr && s.blocks_live == 1 && s.superblocks >= 1,
	   "the next malloc gets a block of R's life after the reset (%llu live)",
	   (unsigned long long)s.blocks_live);
	memset(p, 1, 64);
	hl_free(p);
	hl_task_join(NULL);
	hl_task_destroy(t);
	return NULL;
}

static void *mixed_thread(void *arg)
{
	(void)arg;
	hl_task_t *t = new_task(0, 0, NULL, 0);
	hl_task_join(t);
	void *v[50];
	for (int i = 0; i < 50; i++)
		v[i] = hl_malloc(64);
	for (int i = 0; i < 50; i++)
		hl_free(v[i]);   /* in this thread's cache */
	hl_place_t pl = { .region = rr };
	for (int i = 0; i < 50; i++)
		if (hl_alloc(64, &pl, 0, &v[i]) != HL_OK)
			bail_out("hl_alloc in R");
	for (int i = 0; i < 50; i++)
		hl_free(v[i]);
	ok(hl_region_reset(rr) == HL_OK, "a task thread with cached blocks frees 50 of R's, R is reset");
	int inr = 0, bad = 0;
	for (int i = 0; i < 50; i++) {
		v[i] = hl_malloc(64);
		inr += hl_region_of(v[i]) == rr;
		bad += hl_region_of(v[i]) != hl_region_default();
	}
	ok(inr == 0 && bad == 0, "its mallocs are all served in the default region (%d of R)", inr);
	for (int i = 0; i < 50; i++)
		hl_free(v[i]);
	ok(rstats(rr).blocks_live == 0 && hl_region_delete(rr) == HL_OK,
	   "R holds nothing and is deleted while the thread's cache holds blocks");
	hl_task_join(NULL);
	hl_task_destroy(t);
	return NULL;
}

/* ---- quota --------------------------------------------------------------- */

enum { QMAX = 4096 };
static void *qv[QMAX];

static int fill(size_t size, int from)
{
	int n = from;
	while (n < QMAX && (qv[n] = hl_malloc(size)) != NULL)
		n++;
	return n - from;
}

static void *own_quota_thread(void *arg)
{
	(void)arg;
	hl_task_t *t = new_task(1 << 20, 0, NULL, 0);
	hl_task_join(t);
	int n1 = fill(512, 0);
	for (int i = 0; i < n1; i++)
		hl_free(qv[i]);
	int n2 = fill(1024, 0);
	ok(n1 == 2048 && n2 == 1024,
	   "at a 1 MiB quota: 2048 blocks of 512 B, all freed, then 1024 of 1 KiB (%d, %d): "
	   "the thread's own cache gives its blocks back before malloc fails", n1, n2);
	for (int i = 0; i < n2; i++)
		hl_free(qv[i]);
	hl_task_join(NULL);
	hl_task_destroy(t);
	return NULL;
}

static hl_task_t *tq;
static pthread_barrier_t qbar;
static int nb1, nb2;
static hl_task_stats_t qs;

static void *cacher_thread(void *arg)
{
	(void)arg;
	hl_task_join(tq);
	void *v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = hl_malloc(512);
	for (int i = 0; i < 1000; i++)
		hl_free(v[i]);   /* some stay in this thread's cache */
	pthread_barrier_wait(&qbar);
	pthread_barrier_wait(&qbar);   /* the other thread filled the quota */
	hl_thread_flush();
	pthread_barrier_wait(&qbar);
	pthread_barrier_wait(&qbar);
	hl_task_join(NULL);
	return NULL;
}

static void *filler_thread(void *arg)
{
	(void)arg;
	hl_task_join(tq);
	pthread_barrier_wait(&qbar);
	nb1 = fill(512, 0);
	qs = tstats(tq, NULL);
	pthread_barrier_wait(&qbar);
	pthread_barrier_wait(&qbar);   /* the other thread flushed */
	nb2 = fill(512, nb1);
	for (int i = 0; i < nb1 + nb2; i++)
		hl_free(qv[i]);
	pthread_barrier_wait(&qbar);
	hl_task_join(NULL);
	return NULL;
}

static void test_quota(void)
{
	run(own_quota_thread);
	tq = new_task(1 << 20, 0, NULL, 0);
	pthread_barrier_init(&qbar, NULL, 2);
	pthread_t a, b;
	pthread_create(&a, NULL, cacher_thread, NULL);
	pthread_create(&b, NULL, filler_thread, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* The slack the README states: 64 KiB (a sixteenth of the quota) per
	 * thread with a cache, here 128 blocks of 512 B. */
	ok(nb1 >= 2048 - 128 && nb1 < 2048,
	   "with another thread of the task holding cached blocks, the quota serves %d of 2048 "
	   "blocks (at least 2048 - 128)", nb1);
	ok(qs.blocks_live == (uint64_t)nb1 && qs.bytes_backed <= qs.quota,
	   "its stats count the %d blocks held, not the cached ones (%llu), within the quota",
	   nb1, (unsigned long long)qs.blocks_live);
	ok(nb1 + nb2 == 2048, "once that thread flushes, its blocks serve the other (%d + %d)", nb1,
	   nb2);
	ok(tstats(tq, NULL).blocks_live == 0 && hl_task_destroy(tq) == HL_OK,
	   "threads gone: nothing held, the task is destroyed");
}

int main(void)
{
	/* stdout's buffer is allocated by its first printf: by main, not by
	 * a task thread whose books the tests read. */
	printf("# task caches\n");
	run(books_thread);
	test_isolation();
	rsec = new_region(1);
	run(secure_thread);
	rr = new_region(0);
	run(reset_thread);
	run(mixed_thread);
	test_quota();
	return done_testing();
}
