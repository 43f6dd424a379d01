/*
 * Moves under load: while the coordinator moves superblocks back and
 * forth between two regions, other threads write and check their blocks
 * (shadow copies), allocate in them and free them.  Afterwards every
 * block has kept its bytes, and the books are exact: once everything is
 * freed, neither region counts a live block or byte (a free whose push
 * raced a move is booked to the arena its push landed in).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "heaplib.h"
#include "regions.h"
#include "tap.h"

#define NT 3
#define SLOTS 512

static hl_region_t *ra, *rb;
static int stop;
static long bad_bytes, allocs;

/* Check block p (len bytes, all `byte`) and free it. */
static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	void *v[SLOTS] = { 0 };
	unsigned char shadow[SLOTS];
	size_t len[SLOTS];
	hl_place_t pa = { .node = -1, .region = ra };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (SLOTS - 1);
		if (v[i]) {
			test_check_free(v[i], len[i], shadow[i], &bad_bytes);
			v[i] = NULL;
		} else {
			len[i] = 16 + (seed >> 8) % 480;
			if (hl_alloc(len[i], &pa, 0, &v[i]) != HL_OK) {
				v[i] = NULL;
				continue;
			}
			shadow[i] = (unsigned char)(seed >> 3);
			memset(v[i], shadow[i], len[i]);
			__atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
		}
	}
	for (unsigned i = 0; i < SLOTS; i++)
		if (v[i])
			test_check_free(v[i], len[i], shadow[i], &bad_bytes);
	return NULL;
}

int main(void)
{
	plan_no_plan();
	ra = test_region("move-a", 16u << 20, 0, 0, HL_BACKING_ANON);
	rb = test_region("move-b", 16u << 20, 0, 0, HL_BACKING_ANON);
	if (!ra || !rb)
		bail_out("regions");
	/* Probes: blocks of our own, kept live, whose superblocks we move. */
	enum { NP = 64 };
	void *probe[NP];
	hl_place_t pa = { .node = -1, .region = ra };
	for (int i = 0; i < NP; i++)
		if (hl_alloc(24 + 40 * (size_t)(i % 12), &pa, 0, &probe[i]) != HL_OK)
			bail_out("probe");
	pthread_t th[NT];
	for (uintptr_t i = 0; i < NT; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	long rounds = (long)(2000 * tap_scale()), moved = 0, refused = 0;
	for (long k = 0; k < rounds; k++) {
		void *p = probe[k % NP];
		hl_region_t *to = hl_region_of(p) == ra ? rb : ra;
		hl_place_t pl = { .node = -1, .region = to };
		int e = hl_migrate(p, &pl, 0);
		if (e == HL_OK)
			moved++;
		else
			refused++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NP; i++)
		hl_free(probe[i]);
	diag("%ld moves, %ld refused (busy), %ld allocations by %d threads", moved, refused,
	     allocs, NT);
	ok(moved > rounds / 4, "most moves were made under load (%ld of %ld)", moved, rounds);
	is_int(bad_bytes, 0, "no block lost a byte");
	hl_region_stats_t sa = test_rst(ra), sb = test_rst(rb);
	is_int((long long)sa.blocks_live, 0, "a counts no live block after the frees");
	is_int((long long)sb.blocks_live, 0, "b counts no live block after the frees");
	is_int((long long)(sa.bytes_live + sb.bytes_live), 0, "nor any live byte");
	is_int(hl_region_delete(ra), HL_OK, "a is deleted");
	is_int(hl_region_delete(rb), HL_OK, "b is deleted");
	return done_testing();
}
