/*
 * Freed large blocks are reused warm, so that a program that keeps
 * replacing big blocks runs at the speed of writing them: blocks up to
 * 32 MiB come from the page heap (free pages coalesced, kept resident
 * until the decay), bigger ones from the cache of freed mappings, which
 * holds as much as the program's own large blocks.  large_cached counts
 * what is kept; hl_trim gives it all back.  A region's large block, and a
 * secure one, is never kept.
 *
 * Run with HEAPLIB_DECAY_MS at one minute (set by re-executing itself),
 * so that no decay purges pages in the middle of a measurement.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)
#define PAGE ((size_t)4096)
#define SLOTS 20

static hl_stats_t stats(void)
{
	hl_stats_t s = { .struct_size = sizeof s };
	hl_stats_get(&s);
	return s;
}

/* The process's mappings, [lo, hi) each, read from /proc/self/maps
 * without allocating (a stdio buffer could itself grow the heap). */
#define MAXMAPS 4096
typedef struct { uintptr_t lo, hi; } range_t;

static int mappings(range_t *r)
{
	static char buf[1 << 18];
	int fd = open("/proc/self/maps", O_RDONLY), n = 0;
	size_t len = 0;
	ssize_t got;
	while (fd >= 0 && len < sizeof buf - 1 &&
	       (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)got;
	if (fd >= 0)
		close(fd);
	buf[len] = 0;
	for (char *line = buf; *line && n < MAXMAPS;) {
		char *end;
		r[n].lo = (uintptr_t)strtoull(line, &end, 16);
		r[n].hi = (uintptr_t)strtoull(end + 1, NULL, 16);
		n++;
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return n;
}

/* How many of the ranges now[] reach outside every range of was[]. */
static int new_ranges(const range_t *now, int n, const range_t *was, int m)
{
	int fresh = 0;
	for (int i = 0; i < n; i++) {
		int inside = 0;
		for (int j = 0; j < m && !inside; j++)
			inside = now[i].lo >= was[j].lo && now[i].hi <= was[j].hi;
		fresh += !inside;
	}
	return fresh;
}

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Resident pages of [p, p + len); -1 if some of it is not mapped. */
static long resident(const void *p, size_t len)
{
	size_t n = (len + PAGE - 1) / PAGE;
	unsigned char *v = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v == MAP_FAILED)
		return -2;
	long r = 0;
	if (mincore((void *)p, len, v) != 0)
		r = -1;
	for (size_t i = 0; r >= 0 && i < n; i++)
		r += v[i] & 1;
	munmap(v, n);
	return r;
}

static uint64_t seed = 42;
static size_t rnd_size(size_t lo, size_t hi)
{
	seed = seed * 6364136223846793005ull + 1442695040888963407ull;
	return lo + (size_t)((seed >> 20) % (hi - lo + 1));
}

static char *slot[SLOTS];
static size_t slot_len[SLOTS];

/* malloc-large's step: a new block of 8-24 MiB, filled, replaces one. */
static void replace(int n)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int k = (int)((seed >> 33) % SLOTS);
		size_t sz = rnd_size(8 * MiB, 24 * MiB);
		char *p = hl_malloc(sz);
		if (!p)
			bail_out("hl_malloc(%zu) failed", sz);
		memset(p, i & 0xff, sz);
		hl_free(slot[k]);
		slot[k] = p;
		slot_len[k] = sz;
	}
}

static void test_replacing(void)
{
	for (int k = 0; k < SLOTS; k++)
		slot[k] = NULL;
	static range_t was[MAXMAPS], now[MAXMAPS];
	replace(10 * SLOTS);   /* the heap grows to the program's footprint */
	int m0 = mappings(was);
	long f0 = minor_faults();
	int rounds = (int)(200 * tap_scale());
	replace(rounds);
	long faults = minor_faults() - f0;
	int m1 = mappings(now);
	int fresh = new_ranges(now, m1, was, m0);
	ok(fresh == 0, "%d replacements of 20 blocks of 8-24 MiB map nothing new (%d of %d mappings were not there)",
	   rounds, fresh, m1);
	/* About 16 MiB per replacement is written: 4096 pages each. */
	long pages = (long)rounds * (long)(16 * MiB / PAGE);
	ok(faults < pages / 20, "and fault in almost no page (%ld minor faults for about %ld pages written)",
	   faults, pages);
}

static void test_cached_counted(void)
{
	hl_stats_t a = stats();
	uint64_t freed = 0;
	for (int k = 0; k < SLOTS; k++) {
		freed += (slot_len[k] + PAGE - 1) / PAGE * PAGE;
		hl_free(slot[k]);
	}
	hl_stats_t b = stats();
	ok(b.large_cached >= a.large_cached + freed,
	   "large_cached counts the freed blocks' pages (%llu -> %llu, %llu freed)",
	   (unsigned long long)a.large_cached, (unsigned long long)b.large_cached,
	   (unsigned long long)freed);
	long res = 0;
	for (int k = 0; k < SLOTS; k++)
		res += resident(slot[k], slot_len[k]);
	ok(res > 0, "and those pages stay resident, warm (%ld resident)", res);

	hl_trim();
	hl_stats_t c = stats();
	res = 0;
	for (int k = 0; k < SLOTS; k++) {
		long r = resident(slot[k], slot_len[k]);
		res += r > 0 ? r : 0;
	}
	is_int((long long)c.large_cached, 0, "after hl_trim, large_cached is 0");
	is_int(res, 0, "and no page of a freed block is resident");
}

/* A block freed and allocated again at its size comes back where it was. */
static void test_same_again(void)
{
	char *p = hl_malloc(5 * MiB);
	memset(p, 1, 5 * MiB);
	hl_free(p);
	long f0 = minor_faults();
	char *q = hl_malloc(5 * MiB);
	memset(q, 2, 5 * MiB);
	long faults = minor_faults() - f0;
	ok(q == p && faults < 64, "a 5 MiB block freed and allocated again is the same, warm (%p, %p, %ld faults)",
	   (void *)p, (void *)q, faults);
	hl_free(q);
}

/* Resized where it is: grown into the free pages after it, shrunk with
 * its tail given back (and handed out next). */
static void test_resize_in_place(void)
{
	hl_trim();
	char *gap = hl_malloc(64 * MiB);   /* a mapping: keeps the heap's top free */
	char *p = hl_malloc(MiB);
	memset(p, 7, MiB);
	char *q = hl_realloc(p, 3 * MiB);
	ok(q == p && hl_usable_size(q) == 3 * MiB && q[MiB - 1] == 7,
	   "a 1 MiB block with free pages after it grows in place to 3 MiB (%p -> %p)",
	   (void *)p, (void *)q);
	char *r = hl_realloc(q, MiB / 4);
	char *t = hl_malloc(MiB);
	ok(r == q && hl_usable_size(r) == MiB / 4 && t == r + MiB / 4,
	   "shrunk to 256 KiB in place, its tail is the next 1 MiB block (%p, %p)",
	   (void *)r, (void *)t);
	memset(t, 0xff, MiB);
	hl_free(t);
	unsigned char *z = hl_calloc(1, 2 * MiB);
	size_t nz = 0;
	for (size_t i = 0; z && i < 2 * MiB; i++)
		nz += z[i] != 0;
	ok(z && nz == 0, "hl_calloc over those recycled pages returns zeroes (%zu nonzero)", nz);
	hl_free(z);
	hl_free(r);
	hl_free(gap);
}

/* Past 32 MiB a block is a mapping of its own; freed, it is cached as
 * long as the program's large blocks are that large. */
static void test_big_mapping_kept(void)
{
	hl_trim();
	size_t big = 100 * MiB;
	char *p = hl_malloc(big);
	memset(p, 3, big);
	hl_free(p);
	hl_stats_t s = stats();
	static range_t was[MAXMAPS], now[MAXMAPS];
	int m0 = mappings(was);
	long f0 = minor_faults();
	char *q = hl_malloc(big);
	memset(q, 4, big);
	long faults = minor_faults() - f0;
	int m1 = mappings(now);
	ok(s.large_cached >= big && q == p && new_ranges(now, m1, was, m0) == 0 && faults < 256,
	   "a freed 100 MiB mapping is cached (large_cached %llu) and reused warm (%p, %p, %ld faults)",
	   (unsigned long long)s.large_cached, (void *)p, (void *)q, faults);
	hl_free(q);
	hl_trim();
	ok(resident(q, big) < 0, "hl_trim unmaps it");
}

static hl_region_t *region(int secure)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = secure ? "secure" : "plain";
	a.secure = secure;
	hl_region_t *r = NULL;
	return hl_region_create(&a, &r) == HL_OK ? r : NULL;
}

/* A region's large block is its own mapping, gone at free. */
static void test_region_not_kept(int secure)
{
	const char *what = secure ? "a secure region's" : "a region's";
	hl_region_t *r = region(secure);
	if (!r) {
		skip(1, "%s large block: the region cannot be made here", what);
		return;
	}
	hl_place_t pl = { .reach = 0, .node = -1, .region = r };
	void *p = NULL;
	int e = hl_alloc(2 * MiB, &pl, 0, &p);
	if (e != HL_OK) {
		skip(1, "%s large block: %s", what, hl_strerror((hl_error_t)e));
		hl_region_delete(r);
		return;
	}
	memset(p, 5, 2 * MiB);
	hl_stats_t a = stats();
	hl_free(p);
	hl_stats_t b = stats();
	ok(resident(p, 2 * MiB) < 0 && b.large_cached == a.large_cached,
	   "%s 2 MiB block is unmapped at free, never cached (large_cached %llu -> %llu)", what,
	   (unsigned long long)a.large_cached, (unsigned long long)b.large_cached);
	hl_region_delete(r);
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_DECAY_MS", "60000", (char *)NULL);
	plan(14);
	test_replacing();
	test_cached_counted();
	test_same_again();
	test_resize_in_place();
	test_big_mapping_kept();
	test_region_not_kept(0);
	test_region_not_kept(1);
	return done_testing();
}
