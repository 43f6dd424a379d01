/*
 * Regions and tasks under concurrency (through hl_* only, so the TSan
 * build runs it):
 *  1. threads of two tasks allocate from three regions at once, checking
 *     every block's placement; the accounting per region and per task is
 *     exact against what the threads hold, and zero once they free;
 *  2. a region is deleted while threads allocate from it: deletion is
 *     HL_EBUSY while blocks live, then succeeds; allocations after it see
 *     it gone (HL_ENOREGION); no block anyone held was disturbed;
 *  3. regions are created and deleted while other threads allocate;
 *  4. notify callbacks run on a thread that allocated from the region.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define NT 4
#define NR 3
#define KEEP 64

static hl_region_t *reg[NR];
static hl_task_t *task[2];
static int rounds;
static int misplaced, corrupt;

typedef struct held {
	void *p[KEEP];
	size_t sz[KEEP];
	int r[KEEP];
	uint64_t bytes[NR], blocks[NR];
} held_t;
static held_t held[NT];

static void stamp(void *p, size_t n, uintptr_t v)
{
	memset(p, (int)(v & 0xff), n < 64 ? n : 64);
}

static int stamped(const void *p, size_t n, uintptr_t v)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < (n < 64 ? n : 64); i++)
		if (c[i] != (unsigned char)(v & 0xff))
			return 0;
	return 1;
}

static pthread_barrier_t bar;

static void *mixed(void *arg)
{
	int id = (int)(intptr_t)arg;
	held_t *h = &held[id];
	hl_task_join(task[id % 2]);
	unsigned seed = (unsigned)id * 977u + 5;
	for (int r = 0; r < rounds; r++) {
		int k = r % KEEP;
		if (h->p[k]) {
			if (!stamped(h->p[k], h->sz[k], (uintptr_t)h->p[k]))
				__atomic_add_fetch(&corrupt, 1, __ATOMIC_RELAXED);
			h->bytes[h->r[k]] -= hl_usable_size(h->p[k]);
			h->blocks[h->r[k]]--;
			hl_free(h->p[k]);
			h->p[k] = NULL;
		}
		seed = seed * 1103515245u + 12345u;
		int ri = (int)((seed >> 8) % NR);
		size_t sz = (seed >> 12) % 64 == 0 ? 40000 + (seed >> 16) % 100000 : 16 + (seed >> 16) % 4000;
		hl_place_t pl = { .reach = 0, .node = -1, .region = reg[ri] };
		void *p = NULL;
		if (hl_alloc(sz, &pl, 0, &p) != HL_OK)
			continue;
		if (hl_region_of(p) != reg[ri])
			__atomic_add_fetch(&misplaced, 1, __ATOMIC_RELAXED);
		stamp(p, sz, (uintptr_t)p);
		h->p[k] = p;
		h->sz[k] = sz;
		h->r[k] = ri;
		h->bytes[ri] += hl_usable_size(p);
		h->blocks[ri]++;
	}
	pthread_barrier_wait(&bar);   /* main checks the books */
	pthread_barrier_wait(&bar);
	for (int k = 0; k < KEEP; k++)
		if (h->p[k]) {
			hl_free(h->p[k]);
			h->p[k] = NULL;
		}
	hl_task_join(NULL);
	return NULL;
}

static void test_mixed(void)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.capacity = 64 << 20;
	for (int i = 0; i < NR; i++) {
		a.node = i;
		a.backing = i == 2 ? HL_BACKING_MEMFD : HL_BACKING_ANON;
		hl_region_create(&a, &reg[i]);
	}
	hl_task_attr_t ta;
	memset(&ta, 0, sizeof ta);
	ta.struct_size = sizeof ta;
	hl_task_create(&ta, &task[0]);
	hl_task_create(&ta, &task[1]);
	pthread_barrier_init(&bar, NULL, NT + 1);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, mixed, (void *)(intptr_t)i);
	pthread_barrier_wait(&bar);
	int exact = 1;
	for (int ri = 0; ri < NR; ri++) {
		uint64_t bytes = 0, blocks = 0;
		for (int i = 0; i < NT; i++) {
			bytes += held[i].bytes[ri];
			blocks += held[i].blocks[ri];
		}
		hl_region_stats_t s = { .struct_size = sizeof s };
		hl_region_stats(reg[ri], &s);
		if (s.bytes_live != bytes || s.blocks_live != blocks || s.bytes_backed > a.capacity) {
			exact = 0;
			diag("region %d: live %llu/%llu bytes, %llu/%llu blocks", ri,
			     (unsigned long long)s.bytes_live, (unsigned long long)bytes,
			     (unsigned long long)s.blocks_live, (unsigned long long)blocks);
		}
	}
	for (int ti = 0; ti < 2; ti++) {
		uint64_t blocks = 0;
		for (int i = ti; i < NT; i += 2)
			for (int ri = 0; ri < NR; ri++)
				blocks += held[i].blocks[ri];
		hl_task_stats_t s = { .struct_size = sizeof s };
		hl_task_stats(task[ti], NULL, &s);
		if (s.blocks_live != blocks) {
			exact = 0;
			diag("task %d: %llu blocks live, threads hold %llu", ti,
			     (unsigned long long)s.blocks_live, (unsigned long long)blocks);
		}
	}
	ok(misplaced == 0 && corrupt == 0,
	   "%d threads of 2 tasks, %d rounds over %d regions: every block placed where asked and intact (%d, %d)",
	   NT, rounds, NR, misplaced, corrupt);
	ok(exact, "with the threads holding their blocks, accounting per region and per task is exact");
	pthread_barrier_wait(&bar);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	int zero = 1;
	for (int ri = 0; ri < NR; ri++) {
		hl_region_stats_t s = { .struct_size = sizeof s };
		hl_region_stats(reg[ri], &s);
		zero &= s.bytes_live == 0 && s.blocks_live == 0;
	}
	ok(zero, "once everything is freed, every region has nothing live");
	int del = 0;
	for (int ri = 0; ri < NR; ri++)
		del += hl_region_delete(reg[ri]) == HL_OK;
	ok(del == NR, "and all %d regions are deleted", NR);
	ok(hl_task_destroy(task[0]) == HL_OK && hl_task_destroy(task[1]) == HL_OK,
	   "tasks whose threads left are destroyed");
}

/* ---- delete under allocation -------------------------------------------- */

static hl_region_t *victim;
static int gone, stop_alloc, after_gone_ok, bad_blocks;

static void *alloc_loop(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_alloc, __ATOMIC_ACQUIRE)) {
		int was_gone = __atomic_load_n(&gone, __ATOMIC_ACQUIRE);
		hl_place_t pl = { .reach = 0, .node = -1, .region = victim };
		void *p = NULL;
		int e = hl_alloc(256, &pl, 0, &p);
		if (was_gone && e != HL_ENOREGION)
			__atomic_add_fetch(&after_gone_ok, 1, __ATOMIC_RELAXED);
		if (e != HL_OK)
			continue;
		stamp(p, 256, (uintptr_t)p);
		for (volatile int spin = 0; spin < 50; spin++)
			;
		if (!stamped(p, 256, (uintptr_t)p))
			__atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
		hl_free(p);
	}
	return NULL;
}

static void test_delete_race(void)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.capacity = 16 << 20;
	hl_region_create(&a, &victim);
	__atomic_store_n(&gone, 0, __ATOMIC_RELEASE);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, alloc_loop, NULL);
	int busy = 0, e;
	while ((e = hl_region_delete(victim)) == HL_EBUSY && busy < 10000000)
		busy++;
	__atomic_store_n(&gone, 1, __ATOMIC_RELEASE);
	for (volatile int spin = 0; spin < 200000; spin++)
		;
	__atomic_store_n(&stop_alloc, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	ok(e == HL_OK, "a region is deleted while %d threads allocate from it (HL_EBUSY %d times first)",
	   NT, busy);
	ok(after_gone_ok == 0, "every allocation that started after the delete saw the region gone");
	ok(bad_blocks == 0, "no block a thread held was disturbed (%d)", bad_blocks);
}

/* ---- create/delete while others allocate; notify thread ------------------ */

static int churn_stop;
static pthread_t notify_thread;
static int notified, notify_thread_ok;
static pthread_t allocator_ids[NT];

static void *plain_loop(void *arg)
{
	int id = (int)(intptr_t)arg;
	__atomic_store_n(&allocator_ids[id], pthread_self(), __ATOMIC_RELEASE);
	void *v[32] = { 0 };
	int i = 0;
	while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
		int k = i++ % 32;
		hl_free(v[k]);
		void *p = NULL;
		if (hl_alloc(64 + (size_t)(i % 500), NULL, 0, &p) != HL_OK)
			p = NULL;
		v[k] = p;
	}
	for (int k = 0; k < 32; k++)
		hl_free(v[k]);
	return NULL;
}

static void on_low(hl_region_t *r, hl_region_event_t e, void *arg)
{
	(void)r;
	(void)e;
	(void)arg;
	pthread_t self = pthread_self();
	int mine = 0;
	for (int i = 0; i < NT; i++)
		mine |= pthread_equal(self, __atomic_load_n(&allocator_ids[i], __ATOMIC_ACQUIRE));
	__atomic_add_fetch(&notified, 1, __ATOMIC_RELAXED);
	if (mine)
		__atomic_add_fetch(&notify_thread_ok, 1, __ATOMIC_RELAXED);
}

static hl_region_t *wm;

static void *wm_loop(void *arg)
{
	int id = (int)(intptr_t)arg;
	__atomic_store_n(&allocator_ids[id], pthread_self(), __ATOMIC_RELEASE);
	void *v[8];
	for (int r = 0; r < 50; r++) {
		for (int k = 0; k < 8; k++) {
			hl_place_t pl = { .reach = 0, .node = -1, .region = wm };
			v[k] = NULL;
			hl_alloc(20000, &pl, 0, &v[k]);
		}
		for (int k = 0; k < 8; k++)
			hl_free(v[k]);
	}
	return NULL;
}

static void test_churn_and_notify(void)
{
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, plain_loop, (void *)(intptr_t)i);
	int created = 0, deleted = 0, allocated = 0;
	/* More cycles than there are arena ids: a region created in a freed
	 * slot takes over the arenas of the one deleted before it. */
	int n = 5000;
	for (int i = 0; i < n; i++) {
		hl_region_attr_t a;
		memset(&a, 0, sizeof a);
		a.struct_size = sizeof a;
		a.capacity = 1 << 20;
		hl_region_t *r;
		if (hl_region_create(&a, &r) == HL_OK) {
			created++;
			void *p = NULL;
			hl_place_t pl = { .reach = 0, .node = -1, .region = r };
			if (hl_alloc(100, &pl, 0, &p) == HL_OK) {
				allocated++;
				hl_free(p);
			}
			deleted += hl_region_delete(r) == HL_OK;
		}
	}
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	ok(created == n && deleted == n && allocated == n,
	   "%d regions created, allocated from and deleted while %d threads allocate (%d, %d, %d)",
	   n, NT, created, allocated, deleted);

	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.capacity = 4 << 20;
	a.wmark_low = (4 << 20) - (64 << 10);   /* the first superblock crosses it */
	a.wmark_high = (4 << 20) - (64 << 10);
	a.notify = on_low;
	if (hl_region_create(&a, &wm) != HL_OK)
		diag("could not create the watermark region");
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, wm_loop, (void *)(intptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	hl_region_delete(wm);
	ok(notified > 0 && notify_thread_ok == notified,
	   "watermark callbacks (%d) all ran on threads that allocated or freed in the region", notified);
	(void)notify_thread;
}

int main(int argc, char **argv)
{
	(void)argc;
	/* Placement and its books, without the coordinator's OOM resolution
	 * moving blocks out of full regions (tests/conc/test_migrate_threads
	 * has the books under moves). */
	tap_reexec_with_env(argv, "HEAPLIB_MIGRATE_WAIT_MS", "0", (char *)NULL);
	plan(10);
	rounds = (int)(20000 * tap_scale());
	if (rounds < 500)
		rounds = 500;
	test_mixed();
	test_delete_race();
	test_churn_and_notify();
	return done_testing();
}
