/*
 * Nomadic memory and malloc's own heap (arena 0), whose blocks sit in
 * thread caches and are counted per block nowhere:
 *  1. hl_migrate of a malloc'd block moves its superblock into a region:
 *     addresses and bytes kept, the region's books count every block the
 *     superblock had handed out (those still in thread caches too);
 *  2. those books come back to exactly 0 once every block is freed,
 *     whichever way each goes back: a free (the region's path now), a
 *     thread cache flushed by hl_trim, or the cache of a thread that
 *     exits;
 *  3. a region's superblock of the default task moves back into malloc's
 *     heap (the default region), off the region's books.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)
#define N 600    /* 100-byte blocks: more than one superblock's worth */
#define NB 200

static hl_region_stats_t rst(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s;
}

static hl_region_t *anon_region(const char *name)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = 16 * MB;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("cannot create region %s", name);
	return r;
}

static void stamp(unsigned char *p, unsigned seed)
{
	for (unsigned i = 0; i < 100; i++)
		p[i] = (unsigned char)(seed * 7 + i);
}

static bool stamped(const unsigned char *p, unsigned seed)
{
	for (unsigned i = 0; i < 100; i++)
		if (p[i] != (unsigned char)(seed * 7 + i))
			return false;
	return true;
}

/* Thread B: blocks of malloc's, half of them freed into its own cache
 * before the move, the rest after it; its cache goes back at its exit. */
static hl_region_t *target;
static void *b_blocks[NB];
static pthread_barrier_t bar;

static void *thread_b(void *arg)
{
	(void)arg;
	for (int j = 0; j < NB; j++)
		b_blocks[j] = hl_malloc(100);
	for (int j = 0; j < NB / 2; j++)
		hl_free(b_blocks[j]);   /* into this thread's cache */
	pthread_barrier_wait(&bar);     /* main moves one of b's superblocks */
	pthread_barrier_wait(&bar);
	for (int j = NB / 2; j < NB; j++)
		hl_free(b_blocks[j]);
	return NULL;                    /* the cache goes back at the exit */
}

static void test_out_of_malloc(void)
{
	static unsigned char *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = hl_malloc(100);
		stamp(v[i], (unsigned)i);
	}
	for (int i = N - 50; i < N; i++)
		hl_free(v[i]);   /* some in this thread's cache */
	target = anon_region("from-malloc");
	hl_place_t to = { .node = -1, .region = target };
	is_int(hl_migrate(v[0], &to, 0), HL_OK, "hl_migrate moves a malloc'd block's superblock");
	ok(hl_region_of(v[0]) == target, "the block is in the region now");
	int moved = 0;
	bool all = true;
	for (int i = 0; i < N - 50; i++) {
		moved += hl_region_of(v[i]) == target;
		all &= stamped(v[i], (unsigned)i);
	}
	ok(all && moved > 1, "it and its neighbours (%d moved) kept their addresses and bytes", moved);
	ok(rst(target).blocks_live >= (uint64_t)moved,
	   "the region counts at least the moved blocks the program holds (%llu live, %d held)",
	   (unsigned long long)rst(target).blocks_live, moved);

	pthread_t t;
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, thread_b, NULL);
	pthread_barrier_wait(&bar);
	is_int(hl_migrate(b_blocks[NB - 1], &to, 0), HL_OK,
	       "a superblock whose blocks sit in another thread's cache moves too");
	pthread_barrier_wait(&bar);
	pthread_join(t, NULL);

	for (int i = 0; i < N - 50; i++)
		hl_free(v[i]);
	hl_trim();   /* this thread's cache back to the superblocks */
	hl_region_stats_t s = rst(target);
	ok(s.blocks_live == 0 && s.bytes_live == 0,
	   "every block freed, cache flushed, thread gone: the region's books are 0 "
	   "(%llu blocks, %llu bytes)", (unsigned long long)s.blocks_live,
	   (unsigned long long)s.bytes_live);
	is_int(hl_region_delete(target), HL_OK, "and it is deleted");
}

static void test_into_malloc(void)
{
	hl_region_t *r = anon_region("to-malloc");
	hl_place_t in_r = { .node = -1, .region = r }, home = { .node = -1, .region = hl_region_default() };
	void *p = NULL;
	is_int(hl_alloc(1000, &in_r, 0, &p), HL_OK, "a block of the default task in a region");
	stamp(p, 99);
	is_int(hl_migrate(p, &home, 0), HL_OK, "hl_migrate moves it into malloc's heap");
	ok(hl_region_of(p) == hl_region_default() && stamped(p, 99),
	   "it is in the default region, its bytes kept");
	is_int(rst(r).blocks_live, 0, "off the region's books");
	hl_free(p);
	is_int(rst(r).blocks_live, 0, "its free is malloc's: the region's books stay 0");
	is_int(hl_region_delete(r), HL_OK, "the region is deleted");
}

int main(void)
{
	plan_no_plan();
	test_out_of_malloc();
	test_into_malloc();
	return done_testing();
}
