/*
 * The page heap: default-arena large blocks of up to 32 MiB are runs of
 * pages in chunks of 256 MiB of reserved address space, so that a freed
 * block's pages, coalesced with the free pages around them, serve the
 * next request warm.  A program that keeps replacing big blocks pays page
 * faults for its peak only, never again per block (DESIGN.md 3: a page
 * fault costs more here than copying the page).  Free pages stay resident
 * until the decay purges them (lheap_purge, from large_trim).
 *
 * Per chunk, one bit per page in two bitmaps, and a clock per 64 pages:
 *   used   the page is in a block, or held by a purge in progress
 *   dirty  the page may be resident: handed out since it was last purged
 *   stamp  when one of these 64 pages was last freed (ms): the decay's
 * A used page is dirty, except while its purge holds it.  Runs are found
 * first fit from the bottom of the first chunk, which keeps blocks on the
 * pages used last (warm) and leaves the top free to be purged.
 *
 * Concurrency: every function may run in any number of threads at once,
 * and none waits.  A run is claimed word by word upwards, each word by
 * one CAS that sets its bits only if they are all clear; on a conflict
 * the words already taken are given back and the search goes on.  As
 * every claim goes upwards, the claim furthest up is never stopped by one
 * still in progress, so some claim always completes (lock-free).  Only
 * the holder of a page's used bit changes its dirty bit, and a purge
 * claims the free pages it purges, so no block is purged under its owner.
 * Which runs are blocks is the range table's (large.c): this file knows
 * pages only, and a run is freed once, by the one who took its entry.
 */
#define _GNU_SOURCE
#include <string.h>

#include "mem/mem.h"

#define LH_CHUNK ((size_t)256 << 20)
#define LH_PAGES (LH_CHUNK / HL_PAGE)
#define LH_WORDS (LH_PAGES / 64)
#define LH_CHUNKS 256                  /* 64 GiB of address space at most */
#define LH_MAX_DEFAULT ((size_t)32 << 20)
#define LH_BATCH 64                    /* words a purge holds at once (16 MiB) */

typedef struct lh_chunk {
	uint64_t used[LH_WORDS];
	uint64_t dirty[LH_WORDS];
	uint32_t stamp[LH_WORDS];
	char *base;
} lh_chunk_t;

/* Filled in order: chunk i is made only once chunks 0 .. i-1 exist. */
static lh_chunk_t *lh_tab[LH_CHUNKS];

#ifdef HL_TEST_HOOKS
static size_t lh_max = LH_MAX_DEFAULT;
void lheap_test_set_max(size_t max) { lf_store_relaxed(&lh_max, max); }
#define LH_MAX lf_load_relaxed(&lh_max)
#else
#define LH_MAX LH_MAX_DEFAULT
#endif

/* The bits of pages [k, end) that lie in k's word; *next: the first page
 * of the next word's part. */
static inline uint64_t lh_mask(size_t k, size_t end, size_t *next)
{
	size_t b = k & 63, m = end - k < 64 - b ? end - k : 64 - b;
	*next = k + m;
	return (m == 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1)) << b;
}

static void lh_release(lh_chunk_t *c, size_t at, size_t n)
{
	for (size_t k = at, next; k < at + n; k = next) {
		uint64_t m = lh_mask(k, at + n, &next);
		lf_fetch_and_acq_rel(&c->used[k >> 6], ~m);
	}
}

/* Claim pages [at, at + n), all or none: false if one is taken. */
static bool lh_claim(lh_chunk_t *c, size_t at, size_t n)
{
	for (size_t k = at, next; k < at + n; k = next) {
		uint64_t m = lh_mask(k, at + n, &next);
		uint64_t *w = &c->used[k >> 6], u = lf_load_relaxed(w);
		do {
			if (u & m) {
				lh_release(c, at, k - at);
				return false;
			}
		} while (!lf_cas_weak_acq_rel(w, &u, u | m));
		if (k == at && next < at + n)
			HL_HOOK("large_heap_claiming");
	}
	return true;
}

/* The first run of n free pages at or after page from; false if none. */
static bool lh_find(lh_chunk_t *c, size_t n, size_t from, size_t *at)
{
	size_t run = 0, start = 0;
	for (size_t w = from >> 6; w < LH_WORDS; w++) {
		uint64_t u = lf_load_relaxed(&c->used[w]);
		if (w == from >> 6)
			u |= ((uint64_t)1 << (from & 63)) - 1;
		if (u == ~(uint64_t)0) {
			run = 0;
			continue;
		}
		for (unsigned b = 0; b < 64;) {
			uint64_t x = u >> b;
			if (x & 1) {
				run = 0;
				b += (unsigned)__builtin_ctzll(~x);
				continue;
			}
			unsigned z = x ? (unsigned)__builtin_ctzll(x) : 64 - b;
			if (!run)
				start = w * 64 + b;
			run += z;
			if (run >= n) {
				*at = start;
				return true;
			}
			b += z;
		}
	}
	return false;
}

/* Zero the pages of word w whose bits are set in d. */
static void lh_zero(lh_chunk_t *c, size_t w, uint64_t d)
{
	while (d) {
		unsigned b = (unsigned)__builtin_ctzll(d);
		uint64_t x = d >> b;
		unsigned len = ~x ? (unsigned)__builtin_ctzll(~x) : 64;
		memset(c->base + (w * 64 + b) * HL_PAGE, 0, (size_t)len * HL_PAGE);
		d &= len == 64 ? 0 : ~((((uint64_t)1 << len) - 1) << b);
	}
}

/* Pages [at, at + n), just claimed, become a block's: dirty from now on;
 * with zero, those that were dirty are cleared (the others read as zero). */
static char *lh_hand_out(lh_chunk_t *c, size_t at, size_t n, bool zero)
{
	size_t warm = 0;
	for (size_t k = at, next; k < at + n; k = next) {
		uint64_t m = lh_mask(k, at + n, &next);
		uint64_t d = lf_fetch_or_acq_rel(&c->dirty[k >> 6], m) & m;
		warm += (size_t)os_popcount64(d);
		if (zero && d)
			lh_zero(c, k >> 6, d);
	}
	HL_CTR_SUB(large_cached, warm * HL_PAGE);
	return c->base + at * HL_PAGE;
}

/* Chunk i, made now if it does not exist yet; NULL if it cannot be. */
static lh_chunk_t *lh_chunk_get(unsigned i)
{
	lh_chunk_t *c = lf_load_acquire(&lh_tab[i]);
	if (c)
		return c;
	lh_chunk_t *mine = os_map(sizeof *mine);
	char *base = mine ? os_map(LH_CHUNK) : NULL;
	if (!base) {
		if (mine)
			os_unmap(mine, sizeof *mine);
		return NULL;
	}
	mine->base = base;
	if (lf_cas_strong_acq_rel(&lh_tab[i], &c, mine)) {
		HL_CTR_ADD(reserved, LH_CHUNK + sizeof *mine);
		return mine;
	}
	os_unmap(base, LH_CHUNK);
	os_unmap(mine, sizeof *mine);
	return c;
}

static lh_chunk_t *lh_chunk_of(const void *p)
{
	for (unsigned i = 0; i < LH_CHUNKS; i++) {
		lh_chunk_t *c = lf_load_acquire(&lh_tab[i]);
		if (!c)
			return NULL;
		if ((uintptr_t)p - (uintptr_t)c->base < LH_CHUNK)
			return c;
	}
	return NULL;
}

void *lheap_alloc(size_t len, bool zero)
{
	if (len > LH_MAX)
		return NULL;
	size_t n = len / HL_PAGE;
	for (unsigned i = 0; i < LH_CHUNKS; i++) {
		lh_chunk_t *c = lh_chunk_get(i);
		if (!c)
			return NULL;
		/* A run taken meanwhile has a used page now: look on from it. */
		for (size_t at = 0; lh_find(c, n, at, &at);)
			if (lh_claim(c, at, n))
				return lh_hand_out(c, at, n, zero);
	}
	return NULL;
}

bool lheap_owns(const void *p)
{
	return lh_chunk_of(p) != NULL;
}

void lheap_free(void *p, size_t len)
{
	lh_chunk_t *c = lh_chunk_of(p);
	size_t at = (size_t)((char *)p - c->base) / HL_PAGE, n = len / HL_PAGE;
	uint32_t now = os_now_ms();
	HL_CTR_ADD(large_cached, len);
	for (size_t k = at, next; k < at + n; k = next) {
		uint64_t m = lh_mask(k, at + n, &next);
		lf_store_relaxed(&c->stamp[k >> 6], now);
		lf_fetch_and_acq_rel(&c->used[k >> 6], ~m);
	}
}

bool lheap_grow(void *p, size_t len, size_t want)
{
	lh_chunk_t *c = lh_chunk_of(p);
	size_t at = (size_t)((char *)p - c->base) / HL_PAGE, n = len / HL_PAGE;
	size_t m = want / HL_PAGE;
	if (want > LH_MAX || at + m > LH_PAGES || !lh_claim(c, at + n, m - n))
		return false;
	lh_hand_out(c, at + n, m - n, false);
	return true;
}

/* madvise each run of set bits of mask[0 .. LH_BATCH) (words w0 on);
 * returns the pages purged. */
static size_t lh_purge_runs(lh_chunk_t *c, size_t w0, const uint64_t *mask)
{
	size_t pages = 0, start = 0, run = 0;
	for (size_t k = 0; k <= LH_BATCH * 64; k++) {
		bool on = k < LH_BATCH * 64 && (mask[k >> 6] >> (k & 63) & 1);
		if (on && !run)
			start = k;
		if (on) {
			run++;
		} else if (run) {
			os_purge(c->base + (w0 * 64 + start) * HL_PAGE, run * HL_PAGE);
			pages += run;
			run = 0;
		}
		if (!on && k < LH_BATCH * 64 && !(k & 63) && !mask[k >> 6])
			k += 63;   /* a word with nothing to purge */
	}
	return pages;
}

/* Purge the free dirty pages of words [w0, w0 + LH_BATCH) last freed at
 * least decay_ms ago (all: whenever); returns the bytes given back.  The
 * pages are claimed first, so nobody is handed them meanwhile. */
static size_t lh_purge_batch(lh_chunk_t *c, size_t w0, bool all, uint32_t now)
{
	uint64_t took[LH_BATCH], gone[LH_BATCH];
	bool any = false;
	for (size_t i = 0; i < LH_BATCH; i++) {
		size_t w = w0 + i;
		took[i] = gone[i] = 0;
		if (!all && now - lf_load_relaxed(&c->stamp[w]) < hl_config.decay_ms)
			continue;
		uint64_t u = lf_load_acquire(&c->used[w]);
		for (;;) {
			uint64_t cand = lf_load_relaxed(&c->dirty[w]) & ~u;
			if (!cand)
				break;
			if (lf_cas_weak_acq_rel(&c->used[w], &u, u | cand)) {
				took[i] = cand;
				/* Ours now: their dirty bits hold still. */
				gone[i] = lf_load_relaxed(&c->dirty[w]) & cand;
				any = true;
				break;
			}
		}
	}
	if (!any)
		return 0;
	size_t pages = lh_purge_runs(c, w0, gone);
	for (size_t i = 0; i < LH_BATCH; i++) {
		if (!took[i])
			continue;
		if (gone[i])
			lf_fetch_and_acq_rel(&c->dirty[w0 + i], ~gone[i]);
		lf_fetch_and_acq_rel(&c->used[w0 + i], ~took[i]);
	}
	HL_CTR_SUB(large_cached, pages * HL_PAGE);
	HL_CTR_ADD(bytes_purged, pages * HL_PAGE);
	return pages * HL_PAGE;
}

size_t lheap_purge(bool all)
{
	uint32_t now = os_now_ms();
	size_t n = 0;
	for (unsigned i = 0; i < LH_CHUNKS; i++) {
		lh_chunk_t *c = lf_load_acquire(&lh_tab[i]);
		if (!c)
			break;
		for (size_t w = 0; w < LH_WORDS; w += LH_BATCH)
			n += lh_purge_batch(c, w, all, now);
	}
	return n;
}
