/*
 * malloc's own heap under moves: threads allocate, check and free blocks
 * with hl_malloc/hl_free (arena 0: thread-cached, counted per block
 * nowhere; one in 16 a large block, a page-heap run) and now and then move
 * one of their blocks' superblocks, or a large block, into a region or
 * back into malloc's heap (large blocks stay in the region: a region's
 * never becomes malloc's), while the main thread does the same with
 * blocks of its own.  A free may land while the coordinator holds a
 * large block: the coordinator gives it back then.  Afterwards every block has kept its bytes and
 * the region's books are exact: once everything is freed and the caches
 * are back (threads gone, hl_trim), it counts no live block or byte,
 * however each block went back (a free that raced a move, a cache flush,
 * a thread's exit).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "heaplib.h"
#include "regions.h"
#include "tap.h"

#define NT 3
#define SLOTS 256

static hl_region_t *rx;
static int stop;
static long bad_bytes, moves, allocs;

/* Move p's superblock to the other side: the region, or malloc's heap. */
static void flip(void *p)
{
	hl_place_t pl = { .node = -1,
			  .region = hl_region_of(p) == rx ? hl_region_default() : rx };
	if (hl_migrate(p, &pl, 0) == HL_OK)
		__atomic_fetch_add(&moves, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 3;
	void *v[SLOTS] = { 0 };
	unsigned char shadow[SLOTS];
	size_t len[SLOTS];
	for (unsigned long n = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); n++) {
		unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (SLOTS - 1);
		if (v[i] && n % 64 == 0) {
			flip(v[i]);
		} else if (v[i]) {
			test_check_free(v[i], len[i], shadow[i], &bad_bytes);
			v[i] = NULL;
		} else {
			len[i] = (seed >> 4) % 16 == 0 ? 40000 + (seed >> 8) % 200000
						       : 16 + (seed >> 8) % 200;
			v[i] = hl_malloc(len[i]);
			if (!v[i])
				continue;
			shadow[i] = (unsigned char)(seed >> 3);
			memset(v[i], shadow[i], len[i]);
			__atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED);
		}
	}
	for (unsigned i = 0; i < SLOTS; i++)
		if (v[i])
			test_check_free(v[i], len[i], shadow[i], &bad_bytes);
	return NULL;   /* its thread cache goes back at the exit */
}

int main(void)
{
	plan_no_plan();
	rx = test_region("malloc-moves", 32u << 20, 0, 0, HL_BACKING_ANON);
	if (!rx)
		bail_out("region");
	hl_stats_t st0 = { .struct_size = sizeof st0 }, st1 = st0;
	hl_stats_get(&st0);
	enum { NP = 64 };
	void *probe[NP];
	for (int i = 0; i < NP; i++) {
		probe[i] = hl_malloc(24 + 16 * (size_t)(i % 12));
		memset(probe[i], 0x5a, 24);
	}
	pthread_t th[NT];
	for (uintptr_t i = 0; i < NT; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	long rounds = (long)(1000 * tap_scale());
	for (long k = 0; k < rounds; k++)
		flip(probe[k % NP]);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NP; i++)
		test_check_free(probe[i], 24, 0x5a, &bad_bytes);
	hl_trim();
	diag("%ld moves, %ld allocations by %d threads", moves, allocs, NT);
	ok(moves > rounds / 4, "most moves were made under load (%ld for %ld rounds)", moves, rounds);
	is_int(bad_bytes, 0, "no block lost a byte");
	hl_region_stats_t s = test_rst(rx);
	is_int((long long)s.blocks_live, 0, "the region counts no live block after the frees");
	is_int((long long)s.bytes_live, 0, "nor any live byte");
	hl_stats_get(&st1);
	is_int((long long)st1.large_live, (long long)st0.large_live,
	       "malloc's count of its large blocks is back where it began");
	is_int(hl_region_delete(rx), HL_OK, "it is deleted");
	return done_testing();
}
