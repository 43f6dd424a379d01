/*
 * hl_aligned_alloc, hl_posix_memalign and hl_memalign: alignment honoured
 * for every power of two up to 4 MiB, impossible alignments refused with
 * the error C and POSIX name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define MAX_LG 22

/* Sizes tried at alignment a: 1, a-1, a, a+1, 100000 (duplicates and 0
 * left out). */
static int sizes_for(size_t a, size_t out[5])
{
	size_t cand[5] = { 1, a - 1, a, a + 1, 100000 };
	int n = 0;
	for (int i = 0; i < 5; i++) {
		int dup = cand[i] == 0;
		for (int j = 0; j < n && !dup; j++)
			dup = out[j] == cand[i];
		if (!dup)
			out[n++] = cand[i];
	}
	return n;
}

static void test_aligned_alloc_powers(void)
{
	for (int lg = 0; lg <= MAX_LG; lg++) {
		size_t a = (size_t)1 << lg, sz[5];
		int n = sizes_for(a, sz), bad = 0;
		for (int i = 0; i < n; i++) {
			char *p = hl_aligned_alloc(a, sz[i]);
			size_t u = p ? hl_usable_size(p) : 0;
			if ((!p || (uintptr_t)p % a || u < sz[i]) && !bad++)
				diag("hl_aligned_alloc(%zu, %zu) = %p, usable %zu", a, sz[i], (void *)p, u);
			if (p) {
				p[0] = 1;
				p[sz[i] - 1] = 2;
			}
			hl_free(p);
		}
		ok(bad == 0, "hl_aligned_alloc(%zu, {1, a-1, a, a+1, 100000}) is %zu-aligned with usable size >= size",
		   a, a);
	}
}

static void test_aligned_alloc_non_multiple(void)
{
	void *p = hl_aligned_alloc(64, 100);
	ok(p && (uintptr_t)p % 64 == 0 && hl_usable_size(p) >= 100,
	   "hl_aligned_alloc(64, 100) accepts a size that is not a multiple of the alignment (C17 DR 460)");
	hl_free(p);
}

static void test_posix_memalign_powers(void)
{
	for (int lg = 3; lg <= MAX_LG; lg++) {
		size_t a = (size_t)1 << lg, sz[5];
		int n = sizes_for(a, sz), bad = 0;
		for (int i = 0; i < n; i++) {
			void *p = NULL;
			int r = hl_posix_memalign(&p, a, sz[i]);
			size_t u = r == 0 && p ? hl_usable_size(p) : 0;
			if ((r != 0 || !p || (uintptr_t)p % a || u < sz[i]) && !bad++)
				diag("hl_posix_memalign(&p, %zu, %zu) = %d, p %p, usable %zu",
				     a, sz[i], r, p, u);
			if (r == 0)
				hl_free(p);
		}
		ok(bad == 0, "hl_posix_memalign(&p, %zu, {1, a-1, a, a+1, 100000}) returns 0 and a %zu-aligned block",
		   a, a);
	}
}

static void test_posix_memalign_einval(void)
{
	static const struct { size_t align; const char *what; } bad[] = {
		{ 24, "24 (not a power of two)" },
		{ 4, "4 (not a multiple of sizeof(void *))" },
		{ 0, "0" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		void *sentinel = (void *)(uintptr_t)0x5e11u, *p = sentinel;
		int r = hl_posix_memalign(&p, bad[i].align, 64);
		ok(r == EINVAL && p == sentinel,
		   "hl_posix_memalign with alignment %s returns EINVAL and leaves *out untouched", bad[i].what);
		if (r != EINVAL || p != sentinel)
			diag("returned %d, *out %p", r, p);
	}
}

static void test_posix_memalign_enomem(void)
{
	void *sentinel = (void *)(uintptr_t)0x5e11u, *p = sentinel;
	int r = hl_posix_memalign(&p, 64, SIZE_MAX - 4096);
	ok(r == ENOMEM && p == sentinel,
	   "hl_posix_memalign(&p, 64, SIZE_MAX - 4096) returns ENOMEM and leaves *out untouched");
	if (r != ENOMEM || p != sentinel)
		diag("returned %d, *out %p", r, p);
}

static void test_aligned_alloc_einval(void)
{
	errno = 0;
	void *p = hl_aligned_alloc(3, 10);
	ok(p == NULL && errno == EINVAL, "hl_aligned_alloc(3, 10) returns NULL with errno EINVAL");

	errno = 0;
	p = hl_aligned_alloc((size_t)1 << 41, 1);
	ok(p == NULL && errno == EINVAL, "hl_aligned_alloc(1 << 41, 1) returns NULL with errno EINVAL");
}

static void test_memalign(void)
{
	static const size_t cases[][2] = {
		{ 16, 1 }, { 64, 100 }, { 4096, 5000 }, { 65536, 10 }, { (size_t)1 << 20, 300000 },
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t a = cases[i][0], n = cases[i][1];
		char *p = hl_memalign(a, n);
		if ((!p || (uintptr_t)p % a || hl_usable_size(p) < n) && !bad++)
			diag("hl_memalign(%zu, %zu) = %p", a, n, (void *)p);
		if (p)
			memset(p, 7, n);
		hl_free(p);
	}
	ok(bad == 0, "hl_memalign(a, n) returns an a-aligned block of at least n bytes");
}

/* C17 (DR 445) and glibc: every block of 16 bytes or more is aligned for
 * max_align_t (16 on x86_64), whatever its size; smaller ones for any type
 * that fits. */
static void test_max_align_every_size(void)
{
	size_t bad = 0;
	for (size_t n = 1; n <= 1024 && !bad; n++) {
		size_t want = n >= 16 ? 16 : n >= 8 ? 8 : 1;
		void *p = hl_malloc(n);
		if (!p || (uintptr_t)p % want)
			bad = n;
		hl_free(p);
	}
	ok(bad == 0, "hl_malloc(n) for n = 1..1024: every block of 16 B or more is 16-aligned (first bad: %zu)",
	   bad);
}

/* The same through a region: hl_alloc and hl_alloc_aligned(n, 16). */
static void test_region_align(void)
{
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "align" };
	hl_region_t *r = NULL;
	int e = hl_region_create(&ra, &r);
	hl_place_t pl = { .region = r, .node = -1 };
	size_t bad_plain = 0, bad_16 = 0;
	for (size_t n = 16; e == HL_OK && n <= 1024; n++) {
		void *p = NULL, *q = NULL;
		if (hl_alloc(n, &pl, 0, &p) != HL_OK || (uintptr_t)p % 16)
			bad_plain = bad_plain ? bad_plain : n;
		if (hl_alloc_aligned(n, 16, &pl, 0, &q) != HL_OK || (uintptr_t)q % 16)
			bad_16 = bad_16 ? bad_16 : n;
		hl_free(p);
		hl_free(q);
	}
	ok(e == HL_OK && bad_plain == 0,
	   "hl_alloc(n) in a region for n = 16..1024 is 16-aligned (first bad: %zu)", bad_plain);
	ok(e == HL_OK && bad_16 == 0,
	   "hl_alloc_aligned(n, 16) in a region for n = 16..1024 is 16-aligned (first bad: %zu)", bad_16);
	if (r)
		hl_region_delete(r);
}

int main(void)
{
	plan((MAX_LG + 1) + 1 + (MAX_LG - 2) + 3 + 1 + 2 + 1 + 3);
	test_max_align_every_size();
	test_region_align();
	test_aligned_alloc_powers();
	test_aligned_alloc_non_multiple();
	test_posix_memalign_powers();
	test_posix_memalign_einval();
	test_posix_memalign_enomem();
	test_aligned_alloc_einval();
	test_memalign();
	return done_testing();
}
