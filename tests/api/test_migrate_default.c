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
 *     heap (the default region), off the region's books;
 *  4. malloc's large blocks (a page-heap run, a mapping of its own) move
 *     into a region too, by the books or by locking their pages, but
 *     change no backing (they are not cut into pieces) and no region's
 *     large block becomes malloc's; at their free they go back where they
 *     came from, the region's books at 0.
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

static hl_region_t *anon_region(const char *name, size_t capacity)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = capacity;
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
	target = anon_region("from-malloc", 16 * MB);
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
	hl_region_t *r = anon_region("to-malloc", 16 * MB);
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

static uint64_t large_live(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return st.large_live;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_large(void)
{
	enum { RUN = 200 * 1024 };
	const size_t MAP = (size_t)40 << 20;   /* past the page heap's 32 MiB */
	hl_region_t *r = anon_region("malloc-large", 64 * MB);
	hl_region_attr_t ma;
	memset(&ma, 0, sizeof ma);
	ma.struct_size = sizeof ma;
	ma.name = "malloc-large-memfd";
	ma.capacity = 4 * MB;
	ma.backing = HL_BACKING_MEMFD;
	hl_region_t *m = NULL;
	bool have_m = hl_region_create(&ma, &m) == HL_OK;
	hl_place_t to_r = { .node = -1, .region = r }, to_m = { .node = -1, .region = m },
		   home = { .node = -1, .region = hl_region_default() };
	unsigned char *a = hl_malloc(RUN), *b = hl_malloc(MAP);
	if (!a || !b)
		bail_out("large mallocs");
	for (size_t i = 0; i < RUN; i++)
		a[i] = (unsigned char)(i * 13 + 1);
	memset(b, 0x3c, 4096);
	memset(b + MAP - 4096, 0xc3, 4096);
	uint64_t live0 = large_live();
	is_int(hl_migrate(a, &to_r, 0), HL_OK, "a malloc'd page-heap run moves into a region");
	is_int(hl_migrate(b, &to_r, 0), HL_OK, "so does a malloc'd mapping of its own");
	bool kept = true;
	for (size_t i = 0; i < RUN; i++)
		kept &= a[i] == (unsigned char)(i * 13 + 1);
	kept &= b[0] == 0x3c && b[4095] == 0x3c && b[MAP - 1] == 0xc3;
	ok(kept && hl_region_of(a) == r && hl_region_of(b) == r,
	   "both are the region's, their bytes kept");
	hl_region_stats_t s = rst(r);
	ok(s.blocks_live == 2 && s.bytes_live >= RUN + MAP && large_live() == live0 - 2,
	   "on the region's books (%llu blocks, %llu bytes), off malloc's (%llu large live, was %llu)",
	   (unsigned long long)s.blocks_live, (unsigned long long)s.bytes_live,
	   (unsigned long long)large_live(), (unsigned long long)live0);
	if (have_m)
		is_int(hl_migrate(a, &to_m, 0), HL_EPERM,
		       "a page-heap run changes no backing (it is not cut into pieces)");
	else
		skip(1, "no memfd region here");
	is_int(hl_migrate(a, &home, 0), HL_EPERM, "and a region's large block never becomes malloc's");
	ok(hl_region_of(a) == r, "it stays where it was");
	hl_free(a);
	hl_free(b);
	s = rst(r);
	ok(s.blocks_live == 0 && s.bytes_live == 0 && s.bytes_backed == 0,
	   "freed, they are off the region's books (%llu blocks, %llu bytes, %llu backed)",
	   (unsigned long long)s.blocks_live, (unsigned long long)s.bytes_live,
	   (unsigned long long)s.bytes_backed);
	unsigned char *c = hl_calloc(1, RUN);
	ok(c == a && all_zero(c, RUN),
	   "the run went back to the page heap: the next calloc of its size gets it, zeroed");
	hl_free(c);
	is_int(hl_region_delete(r), HL_OK, "the region is deleted");
	if (have_m)
		hl_region_delete(m);
}

int main(void)
{
	plan_no_plan();
	test_out_of_malloc();
	test_into_malloc();
	test_large();
	return done_testing();
}
