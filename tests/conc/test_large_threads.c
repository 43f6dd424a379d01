/*
 * Large blocks from several threads at once: page-heap runs claimed,
 * freed, grown and shrunk in place and moved, mappings cached and taken,
 * while every block keeps its contents (each page carries its block's
 * mark, checked before every free and after every realloc) and no two
 * live blocks share a page.  Afterwards every block is accounted for and
 * hl_trim leaves nothing cached.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define THREADS 4
#define LIVE 16
#define PAGE ((size_t)4096)

static long bad_marks[THREADS];
static long ops_done[THREADS];

static uint64_t next(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 22;
}

/* 33 KiB .. 4 MiB mostly; one in 16 of 8-40 MiB (past the page heap). */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = next(s);
	if (r % 16 == 0)
		return ((size_t)8 << 20) + (size_t)(next(s) % ((size_t)32 << 20));
	return (size_t)33 * 1024 + (size_t)(next(s) % ((size_t)4 << 20));
}

/* The last byte of an n-byte block, unless it lies in a page's mark. */
static int has_tail(size_t n)
{
	return (n - 1) % PAGE >= 8;
}

/* The first word of every page of the block, and its last byte, carry
 * its mark (a block is at least 33 KiB: more than a page). */
static void mark(unsigned char *p, size_t n, uint64_t m)
{
	for (size_t i = 0; i + 8 <= n; i += PAGE)
		memcpy(p + i, &m, 8);
	if (has_tail(n))
		p[n - 1] = (unsigned char)m;
}

static long check(const unsigned char *p, size_t n, uint64_t m)
{
	long bad = 0;
	for (size_t i = 0; i + 8 <= n; i += PAGE) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		bad += v != m;
	}
	return bad + (has_tail(n) && p[n - 1] != (unsigned char)m);
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t s = 1234567u + (uint64_t)id * 7919u;
	unsigned char *blk[LIVE] = { 0 };
	size_t len[LIVE] = { 0 };
	uint64_t mk[LIVE] = { 0 };
	int ops = (int)(1500 * tap_scale());
	for (int i = 0; i < ops; i++) {
		int k = (int)(next(&s) % LIVE);
		uint64_t m = ((uint64_t)id << 56) | ((uint64_t)i << 8) | (uint64_t)k;
		if (blk[k] && next(&s) % 4 == 0) {
			/* realloc: the common prefix keeps the old mark */
			size_t n = pick_size(&s);
			unsigned char *q = hl_realloc(blk[k], n);
			if (!q)
				continue;
			size_t keep = n < len[k] ? n : len[k];
			for (size_t j = 0; j + 8 <= keep; j += PAGE) {
				uint64_t v;
				memcpy(&v, q + j, 8);
				bad_marks[id] += v != mk[k];
			}
			blk[k] = q;
			len[k] = n;
			mk[k] = m;
			mark(q, n, m);
		} else {
			if (blk[k]) {
				bad_marks[id] += check(blk[k], len[k], mk[k]);
				hl_free(blk[k]);
			}
			len[k] = pick_size(&s);
			blk[k] = hl_malloc(len[k]);
			mk[k] = m;
			if (blk[k])
				mark(blk[k], len[k], m);
		}
		ops_done[id]++;
	}
	for (int k = 0; k < LIVE; k++)
		if (blk[k]) {
			bad_marks[id] += check(blk[k], len[k], mk[k]);
			hl_free(blk[k]);
		}
	return NULL;
}

int main(void)
{
	plan(4);
	hl_stats_t a = { .struct_size = sizeof a }, b = a, c = a;
	hl_stats_get(&a);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	long bad = 0, ops = 0;
	for (int i = 0; i < THREADS; i++) {
		bad += bad_marks[i];
		ops += ops_done[i];
	}
	hl_stats_get(&b);
	ok(bad == 0, "%d threads, %ld large mallocs, reallocs and frees: every page kept its block's mark (%ld did not)",
	   THREADS, ops, bad);
	ok(b.large_live == a.large_live && b.large_bytes == a.large_bytes,
	   "every large block was freed and counted (large_live %llu -> %llu, large_bytes %llu -> %llu)",
	   (unsigned long long)a.large_live, (unsigned long long)b.large_live,
	   (unsigned long long)a.large_bytes, (unsigned long long)b.large_bytes);
	ok(b.large_cached > 0, "freed large memory is kept warm (large_cached %llu)",
	   (unsigned long long)b.large_cached);
	hl_trim();
	hl_stats_get(&c);
	is_int((long long)c.large_cached, 0, "after hl_trim nothing is kept");
	return done_testing();
}
