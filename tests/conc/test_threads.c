/*
 * Thread churn: 10,000 short-lived threads (scaled by HEAPLIB_TEST_SCALE),
 * each allocating and freeing through hl_*, some blocks outliving their
 * thread and freed by the next.  Resident memory stays flat, thread caches
 * are handed back and reused, and no descriptor leaks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define CONC 8
#define KEEP 16

static void *carry[CONC][KEEP];

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int bad_blocks;

static void *churn(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg;
	void *v[200];
	for (int i = 0; i < 200; i++) {
		size_t sz = 16 + (size_t)((i * 37 + slot * 11) % 2000);
		v[i] = hl_malloc(sz);
		if (!v[i]) {
			__atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
			continue;
		}
		memset(v[i], (int)(i & 0xff), 16);
	}
	/* Free what the previous thread in this slot left. */
	for (int k = 0; k < KEEP; k++) {
		unsigned char *p = carry[slot][k];
		if (p && p[0] != (unsigned char)(k & 0xff))
			__atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
		hl_free(p);
	}
	for (int k = 0; k < KEEP; k++)
		carry[slot][k] = v[k];
	for (int i = KEEP; i < 200; i++) {
		unsigned char *p = v[i];
		if (p && p[0] != (unsigned char)(i & 0xff))
			__atomic_add_fetch(&bad_blocks, 1, __ATOMIC_RELAXED);
		hl_free(p);
	}
	return NULL;
}

static void run_threads(int n)
{
	for (int i = 0; i < n; i += CONC) {
		pthread_t t[CONC];
		int m = n - i < CONC ? n - i : CONC;
		for (int j = 0; j < m; j++)
			if (pthread_create(&t[j], NULL, churn, (void *)(uintptr_t)j) != 0) {
				m = j;
				break;
			}
		for (int j = 0; j < m; j++)
			pthread_join(t[j], NULL);
	}
}

int main(void)
{
	plan(5);
	int total = (int)(10000 * tap_scale());
	if (total < 200)
		total = 200;
	int warm = total / 10;
	run_threads(warm);
	hl_stats_t a = { .struct_size = sizeof a };
	hl_stats_get(&a);
	long rss0 = rss_kib();
	hl_stats_t a_trim = { .struct_size = sizeof a_trim };
	hl_trim();
	hl_stats_get(&a_trim);
	run_threads(total - warm);
	hl_stats_t b = { .struct_size = sizeof b };
	hl_stats_get(&b);
	long rss1 = rss_kib();

	ok(bad_blocks == 0, "%d threads allocated, handed over and freed blocks intact", total);
	diag("rss after %d threads: %ld KiB; after %d: %ld KiB", warm, rss0, total, rss1);
#ifdef HL_SANITIZER
	/* The sanitizer runtime keeps per-thread state of its own (ASan's
	 * thread registry and quarantine): the plain build measures ours. */
	skip(1, "resident memory is the sanitizer's here (grew %ld KiB); checked in the plain build",
	     rss1 - rss0);
#else
	ok(rss1 - rss0 < 8 * 1024, "resident memory stays flat (grew %ld KiB)", rss1 - rss0);
#endif
	ok(b.threads_live <= a.threads_live, "thread caches are handed back at exit (%llu live, %llu before)",
	   (unsigned long long)b.threads_live, (unsigned long long)a.threads_live);
	/* Superblocks: after a trim (caches flushed, empty superblocks
	 * retired) what is left is pinned by the blocks carried from thread
	 * to thread (CONC x KEEP), whatever the number of threads that ran. */
	hl_trim();
	hl_stats_t c = { .struct_size = sizeof c };
	hl_stats_get(&c);
	ok(c.superblocks_live <= a_trim.superblocks_live + 32,
	   "superblocks do not accumulate: after trim %llu live after %d threads, %llu after %d",
	   (unsigned long long)c.superblocks_live, total,
	   (unsigned long long)a_trim.superblocks_live, warm);
	b = c;
	ok(b.descriptors_live <= b.superblocks_live + b.descriptors_retired_pending &&
	   b.descriptors_live >= b.superblocks_live,
	   "every live descriptor belongs to a superblock or waits on a hazard (%llu vs %llu + %llu)",
	   (unsigned long long)b.descriptors_live, (unsigned long long)b.superblocks_live,
	   (unsigned long long)b.descriptors_retired_pending);
	return done_testing();
}
