/*
 * Block verification, its out-of-line half: the slow check that finds the
 * first mismatch, the FAIL lines, realloc and the selftest.  The patterns
 * and the fast checks are in verify.h.  A mismatch prints
 *   heaplib-stress: FAIL workload=W thread=T block=ADDR size=S offset=O expected=X found=Y
 * and exits with status 2.  A NULL from malloc/calloc/realloc also exits 2.
 *
 * Debug build flag:
 *   -DSTRESS_SELFTEST_CORRUPT   deliberately corrupts one byte of one block
 *                               (the first block a worker thread frees), to
 *                               show that the checker fires: the run must
 *                               print a FAIL line and exit with status 2.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "verify.h"

void fail_null(const char *fn, size_t size)
{
	char tb[16];
	if (t_tid < 0) snprintf(tb, sizeof tb, "main");
	else snprintf(tb, sizeof tb, "%d", t_tid);
	fprintf(stderr, PROG ": FAIL workload=%s thread=%s %s(%zu) returned NULL\n",
		t_wl, tb, fn, size);
	_exit(2);
}

static void __attribute__((noinline, cold))
fail_pattern(const unsigned char *p, size_t size, size_t off, size_t n,
	     uint64_t expected)
{
	uint64_t found = 0, exp = 0;
	memcpy(&found, p + off, n);
	memcpy(&exp, &expected, n);
	char tb[16];
	if (t_tid < 0) snprintf(tb, sizeof tb, "main");
	else snprintf(tb, sizeof tb, "%d", t_tid);
	fprintf(stderr, PROG ": FAIL workload=%s thread=%s block=%p size=%zu offset=%zu "
		"expected=0x%0*llx found=0x%0*llx\n", t_wl, tb, (const void *)p, size, off,
		(int)(2 * n), (unsigned long long)exp, (int)(2 * n), (unsigned long long)found);
	_exit(2);
}

/* slow path: compare position by position below limit; report the first mismatch */
static void check_word_slow(const unsigned char *p, size_t layout, size_t off, size_t len,
			    size_t limit, uint64_t hh, uint64_t kk)
{
	if (off >= limit)
		return;
	size_t n = len < limit - off ? len : limit - off;
	uint64_t e = hh + (uint64_t)off * kk;
	unsigned char eb[8];
	memcpy(eb, &e, 8);
	for (size_t i = 0; i < n; i++)
		if (p[off + i] != eb[i])
			fail_pattern(p, layout, off, n, e);
}

void __attribute__((noinline))
check_slow(const unsigned char *p, size_t layout, size_t limit, uint64_t hh, uint64_t kk)
{
	if (layout <= FULL_CHECK_MAX) {
		size_t off = 0;
		for (; off + 8 <= layout; off += 8)
			check_word_slow(p, layout, off, 8, limit, hh, kk);
		if (off < layout)
			check_word_slow(p, layout, off, layout - off, limit, hh, kk);
		return;
	}
	check_word_slow(p, layout, 0, 8, limit, hh, kk);
	for (size_t off = PAGE_STRIDE; off + 16 <= layout; off += PAGE_STRIDE)
		check_word_slow(p, layout, off, 8, limit, hh, kk);
	check_word_slow(p, layout, layout - 8, 8, limit, hh, kk);
}

#ifdef STRESS_SELFTEST_CORRUPT
static atomic_int g_selftest_done;

void selftest_corrupt(unsigned char *p, size_t size)
{
	if (t_tid >= 0 && size >= 8 && opt.verify &&
	    !atomic_exchange(&g_selftest_done, 1)) {
		size_t off = size <= FULL_CHECK_MAX ? size / 2 : 0;
		fprintf(stderr, PROG ": selftest: corrupting byte %zu of block %p (size %zu)\n",
			off, (void *)p, size);
		p[off] ^= 0xA5;
	}
}
#endif

/* true if the block moved */
bool blk_realloc(struct blk *b, size_t ns)
{
	size_t os = b->size;
	uint64_t oh = blk_hash(b->p, os);
	uintptr_t old = (uintptr_t)b->p;
	check_before_free(b->p, os);
	unsigned char *np = realloc(b->p, ns);
	if (!np)
		fail_null("realloc", ns);
	check_block(np, os, os < ns ? os : ns, oh, false);
	fill_block(np, ns);
	b->p = np;
	b->size = (uint32_t)ns;
	b->owner = t_tid;
	return (uintptr_t)np != old;
}
