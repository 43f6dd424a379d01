/*
 * hl_realloc and hl_reallocarray: contents survive every move between
 * small and large blocks; a request that cannot be met leaves the old
 * block valid and intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 131u + (i >> 9) + 7u);
}

static void fill(void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = pattern(i);
}

static int intact(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != pattern(i))
			return 0;
	return 1;
}

static uint64_t large_live(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return st.large_live;
}

static void test_realloc_null(void)
{
	static const size_t sizes[] = { 100, 100000 };
	for (int i = 0; i < 2; i++) {
		char *p = hl_realloc(NULL, sizes[i]);
		ok(p && hl_usable_size(p) >= sizes[i],
		   "hl_realloc(NULL, %zu) acts as hl_malloc(%zu)", sizes[i], sizes[i]);
		if (p)
			memset(p, 1, sizes[i]);
		hl_free(p);
	}
}

/* Grow or shrink from `from` to `to` bytes: the first min(from, to) bytes
 * are kept and the new size is usable. */
static void resize(size_t from, size_t to, const char *what)
{
	char *p = hl_malloc(from);
	if (!p) {
		ok(0, "%s: hl_realloc(p, %zu) of a %zu-byte block keeps its contents", what, to, from);
		return;
	}
	fill(p, from);
	char *q = hl_realloc(p, to);
	size_t keep = from < to ? from : to;
	int good = q && intact(q, keep) && hl_usable_size(q) >= to;
	ok(good, "%s: hl_realloc(p, %zu) of a %zu-byte block keeps its first %zu bytes",
	   what, to, from, keep);
	if (!q) {
		diag("hl_realloc returned NULL, errno %d", errno);
		hl_free(p);
		return;
	}
	memset(q, 0x5a, to);
	hl_free(q);
}

static void test_realloc_moves(void)
{
	resize(16, 1000, "small to small, growing");
	resize(1000, 16, "small to small, shrinking");
	resize(1000, 200000, "small to large");
	resize(200000, 9 * MiB, "large to large, growing past 8 MiB");
	resize(9 * MiB, 20 * MiB, "large to large, growing again");
	resize(20 * MiB, MiB, "large to large, shrinking");
	resize(MiB, 100, "large to small");

	/* One block carried through every kind of move in turn. */
	static const size_t chain[] = { 24, 700, 30000, 50000, 9 * MiB, 12 * MiB, 70000, 5000, 40 };
	char *p = hl_malloc(chain[0]);
	int good = p != NULL;
	if (p)
		fill(p, chain[0]);
	for (size_t i = 1; good && i < sizeof chain / sizeof chain[0]; i++) {
		char *q = hl_realloc(p, chain[i]);
		size_t keep = chain[i - 1] < chain[i] ? chain[i - 1] : chain[i];
		if (!q || !intact(q, keep)) {
			diag("step %zu -> %zu lost contents (q %p)", chain[i - 1], chain[i], (void *)q);
			good = 0;
			if (!q)
				break;
		}
		p = q;
		fill(p, chain[i]);
	}
	ok(good, "one block reallocated 24 -> 700 -> 30000 -> 50000 -> 9 MiB -> 12 MiB -> 70000 -> 5000 -> 40 keeps its contents at every step");
	hl_free(p);
}

static void test_realloc_zero(void)
{
	char *s = hl_malloc(100);
	void *r = hl_realloc(s, 0);
	ok(r == NULL, "hl_realloc(p, 0) returns NULL (glibc's behaviour: p is freed)");

	char *l = hl_malloc(MiB);
	uint64_t before = large_live();
	r = hl_realloc(l, 0);
	ok(r == NULL && large_live() == before - 1,
	   "hl_realloc(p, 0) of a large block returns NULL and frees it (large_live drops by one)");
}

/* A failed request: NULL, errno ENOMEM, and the old block still there. */
static void refused(size_t old, size_t n, size_t m, int array, const char *what)
{
	char *p = hl_malloc(old);
	fill(p, old);
	errno = 0;
	void *q = array ? hl_reallocarray(p, n, m) : hl_realloc(p, n);
	int err = errno;
	ok(q == NULL && err == ENOMEM && intact(p, old) && hl_usable_size(p) >= old,
	   "%s of a %zu-byte block returns NULL with errno ENOMEM and leaves the block intact",
	   what, old);
	if (q || err != ENOMEM)
		diag("returned %p, errno %d", q, err);
	hl_free(q ? q : p);
}

static void test_realloc_enomem(void)
{
	refused(200, SIZE_MAX, 0, 0, "hl_realloc(p, SIZE_MAX)");
	refused(200, PTRDIFF_MAX, 0, 0, "hl_realloc(p, PTRDIFF_MAX)");
	refused(MiB, SIZE_MAX, 0, 0, "hl_realloc(p, SIZE_MAX)");
	refused(MiB, PTRDIFF_MAX, 0, 0, "hl_realloc(p, PTRDIFF_MAX)");
	refused(200, SIZE_MAX / 2, 3, 1, "hl_reallocarray(p, SIZE_MAX/2, 3) (overflow)");
	refused(MiB, SIZE_MAX / 2, 3, 1, "hl_reallocarray(p, SIZE_MAX/2, 3) (overflow)");
}

static void test_reallocarray(void)
{
	char *p = hl_reallocarray(NULL, 10, 100);
	ok(p && hl_usable_size(p) >= 1000, "hl_reallocarray(NULL, 10, 100) returns a 1000-byte block");
	if (!p)
		return;
	fill(p, 1000);
	char *q = hl_reallocarray(p, 300, 1000);
	ok(q && intact(q, 1000) && hl_usable_size(q) >= 300000,
	   "hl_reallocarray(p, 300, 1000) grows the block to 300000 bytes, keeping its contents");
	hl_free(q ? q : p);
}

int main(void)
{
	plan(2 + 8 + 2 + 6 + 2);
	test_realloc_null();
	test_realloc_moves();
	test_realloc_zero();
	test_realloc_enomem();
	test_reallocarray();
	return done_testing();
}
