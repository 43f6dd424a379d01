/*
 * HEAPLIB_CHECK=1: no thread caches, so every free reaches its superblock
 * and a double free is caught even long after the block left any cache;
 * freed blocks are filled with junk, and one written after free is caught
 * when it is handed out again.  Correct programs run unchanged.  The test
 * re-executes itself with the variable set (it is read at start-up).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include "heaplib.h"
#include "tap.h"

static void late_double_free(void *arg)
{
	(void)arg;
	void *p = hl_malloc(100);
	hl_free(p);
	void *v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = hl_malloc(16 + (size_t)i % 300);
	for (int i = 0; i < 1000; i++)
		hl_free(v[i]);
	hl_free(p);
}

static void write_after_free(void *arg)
{
	(void)arg;
	char *p = hl_malloc(200);
	hl_free(p);
	p[100] = 1;   /* the bug */
	for (int i = 0; i < 1000; i++)
		(void)!hl_malloc(200);
}

/* The free mark (the block's second word) overwritten: check mode marks
 * every block it frees into a superblock and the refill that takes one
 * back checks the mark, before the junk is looked at. */
static void mark_written_after_free(void *arg)
{
	(void)arg;
	char *p = hl_malloc(48);
	hl_free(p);
	memset(p, 0x41, 16);   /* the bug */
	for (int i = 0; i < 1000; i++)
		(void)!hl_malloc(48);
}

static int bad;

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *v[64] = { 0 };
	for (int r = 0; r < 20000; r++) {
		int k = r % 64;
		hl_free(v[k]);
		seed = seed * 1103515245u + 12345u;
		size_t sz = 1 + (seed >> 8) % 2000;
		v[k] = hl_malloc(sz);
		if (!v[k])
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		else
			memset(v[k], 0x11, sz);
	}
	for (int k = 0; k < 64; k++)
		hl_free(v[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_CHECK", "1", (char *)NULL);
	plan(5);
	tap_expect_abort(late_double_free, NULL, "double free (block is already free)",
			 "a block freed twice, with 1000 other blocks allocated and freed between, aborts");
	tap_expect_abort(write_after_free, NULL, "block written after free",
			 "a block written after free aborts when it is handed out again");
	tap_expect_abort(mark_written_after_free, NULL, "block written after free\n",
			 "a block whose first 16 bytes were written after free aborts when a refill takes it back: block written after free");
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ok(bad == 0, "4 threads x 20000 correct mallocs and frees run clean in check mode");
	hl_stats_t s = { .struct_size = sizeof s };
	hl_stats_get(&s);
	ok(s.threads_live == 0 && s.tcache_bytes == 0, "and no thread cache exists (%llu)",
	   (unsigned long long)s.threads_live);
	return done_testing();
}
