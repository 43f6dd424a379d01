/*
 * Large blocks moving while they are freed: threads allocate large
 * blocks in two regions, publish them in shared slots, and take and free
 * each other's, while the main thread has the coordinator move the
 * published ones back and forth between the regions.  A free that races
 * a move is booked to the arena its own CAS on the block's range-table
 * word replaced, and one that lands while the coordinator holds the block
 * leaves the unmap to it: so once every block is freed, neither region
 * counts a live block or byte, nor a byte backed.  The test hooks around
 * those two windows yield, to make the races frequent.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "hook.h"
#include "hooks.h"
#include "regions.h"
#include "tap.h"

#define NT 3
#define SLOTS 32
#define KB ((size_t)1 << 10)

static hl_region_t *ra, *rb;
static void *slot[SLOTS];
static int stop;
static long bad_bytes, allocs, frees;

static void widen(const char *name)
{
	if (!strcmp(name, HOOK_LARGE_FREE_READ) || !strcmp(name, HOOK_LARGE_HELD))
		sched_yield();
}

/* The first word of every page of a block holds its address, and the
 * second word of the block its length, so that a block is checked by
 * whoever frees it. */
static void check_free(void *p)
{
	size_t len = ((size_t *)p)[1];
	for (size_t k = 0; k < len; k += 4096)
		if (((uintptr_t *)p)[k / sizeof(uintptr_t)] != (uintptr_t)p + k) {
			__atomic_fetch_add(&bad_bytes, 1, __ATOMIC_RELAXED);
			break;
		}
	hl_free(p);
	__atomic_fetch_add(&frees, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (SLOTS - 1);
		void *p = __atomic_exchange_n(&slot[i], NULL, __ATOMIC_ACQ_REL);
		if (p) {
			check_free(p);
			continue;
		}
		size_t len = (36 + (seed >> 8) % 100) * KB & ~(size_t)4095;
		hl_place_t pl = { .node = -1, .region = (seed >> 4) & 1 ? ra : rb };
		if (hl_alloc(len, &pl, 0, &p) != HL_OK)
			continue;
		for (size_t k = 0; k < len; k += 4096)
			((uintptr_t *)p)[k / sizeof(uintptr_t)] = (uintptr_t)p + k;
		((size_t *)p)[1] = len;
		__atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
		void *none = NULL;
		if (!__atomic_compare_exchange_n(&slot[i], &none, p, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			check_free(p);
	}
	return NULL;
}

/* One round: workers on regions a and b (b of backing kind), the main
 * thread moving blocks between them; then the books. */
static void round_with(hl_backing_t kind, const char *what)
{
	ra = test_region("lmove-a", 64u << 20, 0, 0, HL_BACKING_ANON);
	rb = test_region("lmove-b", 64u << 20, 0, 0, kind);
	if (!ra || !rb)
		bail_out("regions");
	__atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
	allocs = frees = bad_bytes = 0;
	pthread_t th[NT];
	for (uintptr_t i = 0; i < NT; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	long rounds = (long)(kind == HL_BACKING_ANON ? 3000 : 600) * (long)tap_scale();
	long moved = 0, refused = 0, noperm = 0;
	for (long k = 0, tries = 0; moved + refused < rounds && tries < 1000 * rounds; k++, tries++) {
		void *p = __atomic_load_n(&slot[k % SLOTS], __ATOMIC_ACQUIRE);
		if (!p) {
			sched_yield();
			continue;
		}
		/* p may be freed meanwhile: the coordinator finds it gone, or
		 * (its address reused) moves whatever block starts there. */
		hl_region_t *to = hl_region_of(p) == ra ? rb : ra;
		hl_place_t pl = { .node = -1, .region = to };
		int e = hl_migrate(p, &pl, 0);
		moved += e == HL_OK;
		refused += e != HL_OK;
		noperm += e == HL_EPERM;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SLOTS; i++)
		if (slot[i])
			check_free(slot[i]);
	memset(slot, 0, sizeof slot);
	diag("%s: %ld moves, %ld refused (freed or busy), %ld allocations and %ld frees by %d threads",
	     what, moved, refused, allocs, frees, NT);
	if (kind != HL_BACKING_ANON && !moved && noperm)
		skip(1, "backing moves are not available here");
	else
		ok(moved > 0, "%s: large blocks were moved while others were freed (%ld)", what, moved);
	is_int(bad_bytes, 0, "no block lost a byte");
	is_int(allocs, frees, "every block allocated was freed");
	hl_region_stats_t sa = test_rst(ra), sb = test_rst(rb);
	is_int((long long)sa.blocks_live, 0, "a counts no live block after the frees");
	is_int((long long)sb.blocks_live, 0, "b counts no live block after the frees");
	ok(sa.bytes_live == 0 && sb.bytes_live == 0, "nor any live byte (%lld, %lld)",
	   (long long)sa.bytes_live, (long long)sb.bytes_live);
	ok(sa.bytes_backed == 0 && sb.bytes_backed == 0, "nor a byte backed (%lld, %lld)",
	   (long long)sa.bytes_backed, (long long)sb.bytes_backed);
	is_int(hl_region_delete(ra), HL_OK, "a is deleted");
	is_int(hl_region_delete(rb), HL_OK, "b is deleted");
}

int main(void)
{
	plan_no_plan();
	__atomic_store_n(&lf_hook_callback, widen, __ATOMIC_RELEASE);
	round_with(HL_BACKING_ANON, "anonymous to anonymous (books)");
	round_with(HL_BACKING_MEMFD, "anonymous to memfd (copies)");
	__atomic_store_n(&lf_hook_callback, NULL, __ATOMIC_RELEASE);
	return done_testing();
}
