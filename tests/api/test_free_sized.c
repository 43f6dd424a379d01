/*
 * The sized frees check the size they are given against the block:
 *
 *   hl_free_sized(p, n)            p came from malloc(n), calloc or
 *                                  realloc(.., n): any n the block's class
 *                                  could hold after realloc shrank it in
 *                                  place, (class / 2, class];
 *   hl_free_aligned_sized(p, a, n) p came from aligned_alloc(a, n): the
 *                                  class that allocation picks, exactly.
 *
 * A size the block cannot have come from aborts with
 *
 *   heaplib: CALL(0xPTR): size does not match the block (N bytes given, class of M)
 *
 * ("large block of M" for a large block).  A right size frees the block
 * wherever it lives: in the thread cache, or back to its region.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)

static const char *line(const char *call, const void *p, size_t given, const char *block)
{
	static char buf[4][200];
	static int next;
	char *b = buf[next++ & 3];
	snprintf(b, sizeof buf[0],
		 "heaplib: %s(0x%lx): size does not match the block (%zu bytes given, %s)", call,
		 (unsigned long)(uintptr_t)p, given, block);
	return b;
}

static long long large_live(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return (long long)st.large_live;
}

/* A small block freed into the thread cache is the next one handed out. */
static void test_malloc_sizes(void)
{
	static const size_t sizes[] = { 0, 1, 16, 17, 32, 33, 100, 128, 129, 1000, 1024,
					1025, 4097, 20000, 32767, 32768 };
	int good = 1;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		void *p = hl_malloc(sizes[i]);
		hl_free_sized(p, sizes[i]);
		void *q = hl_malloc(sizes[i]);
		if (q != p) {
			diag("hl_malloc(%zu) after hl_free_sized: %p, not %p", sizes[i], q, p);
			good = 0;
		}
		hl_free(q);
	}
	ok(good, "hl_free_sized(p, n) of hl_malloc(n), n from 0 to 32768, frees p (the next hl_malloc(n) returns it)");

	long long b = large_live();
	void *l = hl_malloc(MiB + 1);
	hl_free_sized(l, MiB + 1);
	is_int(large_live(), b, "hl_free_sized(p, 1 MiB + 1) of hl_malloc(1 MiB + 1) frees the large block");

	void *z = hl_calloc(10, 30);
	hl_free_sized(z, 300);
	ok(hl_malloc(300) == z, "hl_free_sized(p, 300) of hl_calloc(10, 30) frees it");
	hl_free(z);

	hl_free_sized(NULL, 100);
	ok(1, "hl_free_sized(NULL, 100) does nothing");
}

static void test_realloc_sizes(void)
{
	char *p = hl_malloc(1000);
	char *q = hl_realloc(p, 600);
	ok(q == p, "hl_realloc(p, 600) of a 1000-byte block keeps it in place");
	hl_free_sized(q, 600);
	ok(hl_malloc(1000) == p, "hl_free_sized(p, 600) after that frees it");
	hl_free(p);
}

static void test_aligned_sizes(void)
{
	void *p = hl_aligned_alloc(64, 100);
	hl_free_aligned_sized(p, 64, 100);
	ok(hl_aligned_alloc(64, 100) == p,
	   "hl_free_aligned_sized(p, 64, 100) of hl_aligned_alloc(64, 100) frees it");
	hl_free(p);

	int all = 1;
	for (size_t a = 32; a <= 32768 && all; a <<= 1)
		for (size_t n = 0; n <= 32768 && all; n += 7) {
			void *q = hl_aligned_alloc(a, n);
			hl_free_aligned_sized(q, a, n);
			void *r = hl_aligned_alloc(a, n);
			all = q && r == q;
			hl_free(r);
			if (!all)
				diag("hl_aligned_alloc(%zu, %zu): %p, then %p", a, n, q, r);
		}
	ok(all, "hl_free_aligned_sized(p, a, n) of hl_aligned_alloc(a, n) frees it, "
		"for every a from 32 to 32 KiB and n from 0 to 32 KiB in steps of 7");

	long long b = large_live();
	void *l = hl_aligned_alloc(128 << 10, 100);
	hl_free_aligned_sized(l, 128 << 10, 100);
	is_int(large_live(), b,
	       "hl_free_aligned_sized(p, 128 KiB, 100) of hl_aligned_alloc(128 KiB, 100) frees its large block");
}

/* A region's block goes back to its region, not to the thread cache. */
static void test_region_block(void)
{
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "sized" };
	hl_region_t *r;
	if (hl_region_create(&ra, &r) != HL_OK)
		bail_out("hl_region_create failed");
	hl_place_t pl = { .region = r, .node = -1 };
	void *p = NULL, *a = NULL;
	hl_alloc(100, &pl, 0, &p);
	hl_alloc_aligned(100, 256, &pl, 0, &a);
	hl_region_stats_t st = { .struct_size = sizeof st };
	hl_region_stats(r, &st);
	ok(p && a && st.blocks_live == 2, "two blocks in a region (blocks_live 2)");
	hl_free_sized(p, 100);
	hl_free_aligned_sized(a, 256, 100);
	hl_region_stats(r, &st);
	is_int((long long)st.blocks_live, 0,
	       "hl_free_sized and hl_free_aligned_sized give them back to the region (blocks_live 0)");
	hl_region_delete(r);
}

struct sized_call {
	void *p;
	size_t align, size;
};

static void do_free_sized(void *arg)
{
	struct sized_call *c = arg;
	hl_free_sized(c->p, c->size);
}

static void do_free_aligned_sized(void *arg)
{
	struct sized_call *c = arg;
	hl_free_aligned_sized(c->p, c->align, c->size);
}

static void test_mismatch(void)
{
	struct sized_call c = { hl_malloc(100), 0, 200 };
	tap_expect_abort(do_free_sized, &c, line("free_sized", c.p, 200, "class of 112"),
			 "hl_free_sized(p, 200) of hl_malloc(100) aborts: (200 bytes given, class of 112)");
	struct sized_call d = { hl_malloc(1000), 0, 100 };
	tap_expect_abort(do_free_sized, &d, line("free_sized", d.p, 100, "class of 1024"),
			 "hl_free_sized(p, 100) of hl_malloc(1000) aborts: (100 bytes given, class of 1024)");
	struct sized_call e = { (char *)c.p + 16, 0, 100 };
	tap_expect_abort(do_free_sized, &e, "interior pointer",
			 "hl_free_sized(p + 16, 100) aborts: interior pointer, before the size is looked at");

	struct sized_call l = { hl_malloc(MiB), 0, 2 * MiB };
	tap_expect_abort(do_free_sized, &l, line("free_sized", l.p, 2 * MiB, "large block of 1048576"),
			 "hl_free_sized(p, 2 MiB) of hl_malloc(1 MiB) aborts: (2097152 bytes given, large block of 1048576)");
	struct sized_call s = { l.p, 0, 100 };
	tap_expect_abort(do_free_sized, &s, line("free_sized", l.p, 100, "large block of 1048576"),
			 "hl_free_sized(p, 100) of hl_malloc(1 MiB) aborts: a request of 100 bytes makes no large block");

	/* aligned_alloc(64, 100) takes the 128-byte class; 129 bytes at 64
	 * would take the 192-byte class. */
	struct sized_call a = { hl_aligned_alloc(64, 100), 64, 129 };
	tap_expect_abort(do_free_aligned_sized, &a, line("free_aligned_sized", a.p, 129, "class of 128"),
			 "hl_free_aligned_sized(p, 64, 129) of hl_aligned_alloc(64, 100) aborts: (129 bytes given, class of 128)");

	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "sized" };
	hl_region_t *r;
	if (hl_region_create(&ra, &r) != HL_OK)
		bail_out("hl_region_create failed");
	hl_place_t pl = { .region = r, .node = -1 };
	struct sized_call g = { NULL, 0, 5000 };
	hl_alloc(100, &pl, 0, &g.p);
	tap_expect_abort(do_free_sized, &g, line("free_sized", g.p, 5000, "class of 112"),
			 "hl_free_sized(p, 5000) of a region's 100-byte block aborts: (5000 bytes given, class of 112)");
	hl_free(g.p);
	hl_region_delete(r);

	hl_free(c.p);
	hl_free(d.p);
	hl_free(l.p);
	hl_free(a.p);
}

int main(void)
{
	plan(18);
	test_malloc_sizes();
	test_realloc_sizes();
	test_aligned_sizes();
	test_region_block();
	test_mismatch();
	return done_testing();
}
