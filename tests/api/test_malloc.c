/*
 * hl_malloc, hl_free, hl_calloc and hl_usable_size: what every caller may
 * rely on.  Each `ok` states one behaviour and its exact outcome.
 *
 * Only the hl_* names are used: in sanitizer builds the library does not
 * export malloc, so plain malloc here would not be heaplib's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)

/* The byte stored at offset i of a block at p: depends on both, so a
 * block that overlaps another, or is handed out twice, reads wrong. */
static inline unsigned char pattern(const void *p, size_t i)
{
	uintptr_t a = (uintptr_t)p;
	return (unsigned char)((a >> 4) ^ (a >> 12) ^ (i * 31u) ^ (i >> 8));
}

static void fill(void *p, size_t n)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = pattern(p, i);
}

/* Index of the first byte that does not hold the pattern, or n. */
static size_t check(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pattern(p, i))
			return i;
	return n;
}

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static size_t superblocks_live(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	if (hl_stats_get(&st))
		return (size_t)-1;
	return (size_t)st.superblocks_live;
}

/* Every size 0..4096 plus a sample of larger ones up to 40 MiB, all live
 * at the same time. */
static void test_every_size(void)
{
	static const size_t big[] = {
		4097, 5000, 8191, 8192, 16385, 32767, 32768, 32769, 40000,
		65535, 65536, 65537, 100000, 262144, MiB - 1, MiB, MiB + 1,
		3 * MiB + 17, 8 * MiB, 16 * MiB + 4095, 40 * MiB,
	};
	enum { NSMALL = 4097, NBIG = sizeof big / sizeof big[0], N = NSMALL + NBIG };
	static void *p[N];
	static size_t sz[N];
	int null = 0, small = 0, misaligned = 0, corrupt = 0;

	for (int i = 0; i < N; i++) {
		sz[i] = i < NSMALL ? (size_t)i : big[i - NSMALL];
		p[i] = hl_malloc(sz[i]);
		if (!p[i]) {
			if (!null++)
				diag("hl_malloc(%zu) returned NULL", sz[i]);
			continue;
		}
		size_t u = hl_usable_size(p[i]);
		if (u < sz[i] && !small++)
			diag("hl_usable_size(hl_malloc(%zu)) = %zu", sz[i], u);
		size_t align = sz[i] % 16 == 0 ? 16 : 8;
		if ((uintptr_t)p[i] % align && !misaligned++)
			diag("hl_malloc(%zu) = %p, not %zu-aligned", sz[i], p[i], align);
		fill(p[i], u);
	}
	for (int i = 0; i < N; i++) {
		if (!p[i])
			continue;
		size_t u = hl_usable_size(p[i]), at = check(p[i], u);
		if (at != u && !corrupt++)
			diag("block of %zu (usable %zu) reads wrong at offset %zu",
			     sz[i], u, at);
	}
	ok(null == 0, "hl_malloc(n) returns non-NULL for every n in 0..4096 and sampled n up to 40 MiB");
	ok(small == 0, "hl_usable_size(hl_malloc(n)) >= n for every such n");
	ok(corrupt == 0, "the whole usable size of every live block holds what was written to it");
	ok(misaligned == 0, "hl_malloc(n) is 16-byte aligned when n is a multiple of 16, else 8-byte aligned");
	for (int i = 0; i < N; i++)
		hl_free(p[i]);
}

static int by_addr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void test_no_overlap(void)
{
	enum { N = 4000 };
	static uintptr_t v[N][2];  /* {address, usable size} */
	unsigned seed = 12345;
	int null = 0;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = seed >> 8;
		size_t n = r % 50 == 0 ? 33000 + r % 300000 : r % 3 == 0 ? r % 4096 : r % 200;
		void *q = hl_malloc(n);
		null += !q;
		v[i][0] = (uintptr_t)q;
		v[i][1] = q ? hl_usable_size(q) : 0;
	}
	qsort(v, N, sizeof v[0], by_addr);
	int overlaps = 0;
	for (int i = 0; i + 1 < N; i++)
		if (v[i][0] && v[i][0] + v[i][1] > v[i + 1][0] && !overlaps++)
			diag("[%#lx, +%lu) overlaps %#lx", (unsigned long)v[i][0],
			     (unsigned long)v[i][1], (unsigned long)v[i + 1][0]);
	ok(null == 0 && overlaps == 0,
	   "%d live blocks of mixed sizes never overlap (address + usable size <= next address)", N);
	for (int i = 0; i < N; i++)
		hl_free((void *)v[i][0]);
}

static void test_malloc_zero(void)
{
	void *a = hl_malloc(0), *b = hl_malloc(0);
	ok(a && b && a != b, "hl_malloc(0) returns a unique non-NULL pointer each time");
	hl_free(a);
	hl_free(b);
	ok(1, "hl_free accepts what hl_malloc(0) returned");
}

static void test_free_null_and_errno(void)
{
	errno = 1234;
	hl_free(NULL);
	is_int(errno, 1234, "hl_free(NULL) does nothing, errno included");

	void *s = hl_malloc(48), *l = hl_malloc(MiB), *m = hl_malloc(40000);
	errno = 1234;
	hl_free(s);
	hl_free(m);
	hl_free(l);
	is_int(errno, 1234, "hl_free of small and large blocks leaves errno unchanged");
}

/* The 25% rule: a request of n >= 64 bytes wastes at most n/4 (below, the 16-byte
 * steps that keep every block 16-aligned set the floor). */
static void test_class_rounding(void)
{
	int bad = 0;
	for (size_t n = 64; n <= 32768; n++) {
		void *q = hl_malloc(n);
		size_t u = q ? hl_usable_size(q) : 0;
		if ((!q || u < n || u - n > n / 4) && !bad++)
			diag("hl_malloc(%zu): usable %zu, waste %zu > %zu", n, u, u - n, n / 4);
		hl_free(q);
	}
	ok(bad == 0, "for every n in 64..32768, hl_usable_size(hl_malloc(n)) - n <= n/4");
}

static void test_large_page_granular(void)
{
	int bad = 0;
	for (size_t n = 32769; n <= 4 * MiB; n += n / 7 + 1) {
		void *q = hl_malloc(n);
		size_t u = q ? hl_usable_size(q) : 0;
		if ((!q || u % 4096 || u < n || u >= n + 4096) && !bad++)
			diag("hl_malloc(%zu): usable %zu", n, u);
		hl_free(q);
	}
	ok(bad == 0, "above 32 KiB, usable size is a multiple of 4096 and less than n + 4096");
}

static void test_calloc(void)
{
	static const size_t sizes[] = {
		1, 8, 24, 48, 100, 1000, 4096, 32768, 32769, 100000, MiB, 9 * MiB,
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *q = hl_calloc(1, sizes[i]);
		if ((!q || !all_zero(q, sizes[i])) && !bad++)
			diag("hl_calloc(1, %zu) = %p not all zero", sizes[i], (void *)q);
		hl_free(q);
	}
	ok(bad == 0, "hl_calloc returns zeroed memory, small and large");

	bad = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		for (int round = 0; round < 5; round++) {
			unsigned char *d = hl_malloc(sizes[i]);
			if (d)
				memset(d, 0xff, sizes[i]);
			hl_free(d);
			unsigned char *q = hl_calloc(sizes[i], 1);
			if ((!q || !all_zero(q, sizes[i])) && !bad++)
				diag("hl_calloc(%zu, 1) after a 0xff block was freed is not zero", sizes[i]);
			if (q)
				memset(q, 0xff, sizes[i]);
			hl_free(q);
		}
	}
	ok(bad == 0, "hl_calloc zeroes a recycled block (malloc, fill 0xff, free, calloc same size)");
}

/* A steady malloc/free loop reuses memory: the superblock count settles
 * near the first round's instead of growing with the number of rounds
 * (the slack covers blocks parked in caches as the rounds shift). */
static void test_steady_state(void)
{
	enum { W = 1000 };
	static void *w[W];
	int rounds = (int)(200 * tap_scale());
	size_t first = 0, peak = 0;
	unsigned seed = 99;
	hl_trim();   /* start from what the earlier tests left: nothing */
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < W; i++) {
			seed = seed * 1103515245u + 12345u;
			w[i] = hl_malloc(8 + (seed >> 8) % 2048);
		}
		for (int i = 0; i < W; i++)
			hl_free(w[i]);
		size_t s = superblocks_live();
		if (r == 0)
			first = s;
		if (s > peak)
			peak = s;
	}
	ok(peak <= first + first / 2 + 8,
	   "%d rounds of %d malloc/free keep superblocks_live bounded (first round %zu, peak %zu)",
	   rounds, W, first, peak);
}

int main(void)
{
	plan(14);
	test_every_size();
	test_no_overlap();
	test_malloc_zero();
	test_free_null_and_errno();
	test_class_rounding();
	test_large_page_granular();
	test_calloc();
	test_steady_state();
	return done_testing();
}
