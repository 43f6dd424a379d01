/*
 * The cache of freed large mappings: blocks that have mappings of their
 * own (over the page heap's 32 MiB, aligned ones, or any when the page
 * heap has no room) are kept mapped after free, so that a program that
 * frees and allocates big blocks does not pay their page faults again.
 *
 * How much it keeps follows the program: at most LC_ENTRIES mappings of
 * at most max(64 MiB, the bytes of large blocks live with the one being
 * cached) in all, so one huge buffer freed and allocated again in a loop
 * stays warm, and what a program no longer holds cannot pile up.  A
 * request takes the smallest mapping that holds it, its tail cached
 * again; a free that does not fit evicts the oldest; what stays unused
 * for HEAPLIB_DECAY_MS is unmapped (large_trim).
 *
 * Concurrency: any number of threads at once.  An entry is one word,
 * taken by the CAS that empties it (the taker owns the mapping) and
 * filled by a CAS from empty; nothing waits.
 */
#define _GNU_SOURCE
#include "mem/mem.h"

#define LC_ENTRIES 64
#define LC_MIN_BYTES ((uint64_t)64 << 20)

/* Cached mappings (lc_make); 0 is empty. */
static uint64_t lc_ent[LC_ENTRIES];
static uint32_t lc_stamp[LC_ENTRIES];
static uint64_t lc_bytes;

/* An entry: (addr >> 12) | (pages << 35); 0 is empty. */
static inline uint64_t lc_make(const void *p, size_t len)
{
	return ((uint64_t)(uintptr_t)p >> 12) | ((uint64_t)(len >> 12) << 35);
}
static inline char *lc_addr(uint64_t w)
{
	return (char *)(uintptr_t)((w & (((uint64_t)1 << 35) - 1)) << 12);
}
static inline size_t lc_len(uint64_t w) { return (size_t)(w >> 35) << 12; }

/* Take entry i if it still holds w; the caller owns the mapping then. */
static bool lc_claim(unsigned i, uint64_t w)
{
	if (!lf_cas_strong_acq_rel(&lc_ent[i], &w, 0))
		return false;
	lf_fetch_sub_relaxed(&lc_bytes, lc_len(w));
	HL_CTR_SUB(large_cached, lc_len(w));
	return true;
}

/* Put w in a free entry, evicting nothing; false if none is free.  The
 * bytes are counted before the entry can be taken, so that the counts
 * never go below zero. */
static bool lc_slot_put(uint64_t w)
{
	for (unsigned i = 0; i < LC_ENTRIES; i++) {
		uint64_t zero = 0;
		if (lf_load_relaxed(&lc_ent[i]))
			continue;
		lf_store_relaxed(&lc_stamp[i], os_now_ms());
		lf_fetch_add_relaxed(&lc_bytes, lc_len(w));
		HL_CTR_ADD(large_cached, lc_len(w));
		if (lf_cas_strong_acq_rel(&lc_ent[i], &zero, w))
			return true;
		lf_fetch_sub_relaxed(&lc_bytes, lc_len(w));
		HL_CTR_SUB(large_cached, lc_len(w));
	}
	return false;
}

/* A claimed mapping goes back to the OS; returns the bytes unmapped.  One
 * the kernel keeps is purged and cached again, still ours to hand out
 * (with no entry free, only its address range is lost). */
static size_t lc_drop(uint64_t w)
{
	char *p = lc_addr(w);
	size_t len = lc_len(w);
	HL_CTR_ADD(bytes_purged, len);
	if (os_unmap(p, len))
		return len;
	os_purge(p, len);
	lc_slot_put(w);
	return 0;
}

/* Claim the best entry of at least min_len bytes: the smallest, or with
 * oldest, the one cached longest ago.  0 if there is none. */
static uint64_t lc_claim_best(size_t min_len, bool oldest)
{
	uint32_t now = os_now_ms();
	for (int tries = 0; tries < 4; tries++) {
		unsigned best = LC_ENTRIES;
		uint64_t bw = 0, bkey = 0;
		for (unsigned i = 0; i < LC_ENTRIES; i++) {
			uint64_t w = lf_load_acquire(&lc_ent[i]);
			if (!w || lc_len(w) < min_len)
				continue;
			/* smaller key is better */
			uint64_t key = oldest ? UINT64_MAX - (uint32_t)(now - lf_load_relaxed(&lc_stamp[i]))
					      : lc_len(w);
			if (best == LC_ENTRIES || key < bkey) {
				best = i;
				bw = w;
				bkey = key;
			}
		}
		if (best == LC_ENTRIES)
			return 0;
		if (lc_claim(best, bw))
			return bw;
	}
	return 0;
}

/* Give the oldest cached mapping back to the OS; false if none, or if the
 * kernel kept it (it is cached again: no room was made). */
static bool lc_evict_oldest(void)
{
	uint64_t w = lc_claim_best(0, true);
	if (!w)
		return false;
	return lc_drop(w) != 0;
}

bool lcache_put(void *p, size_t len)
{
	if (len >= ((size_t)1 << 40))
		return false;
	uint64_t bound = lf_load_relaxed(&hl_ctr.large_bytes) + len;
	if (bound < LC_MIN_BYTES)
		bound = LC_MIN_BYTES;
	for (int ev = 0; lf_load_relaxed(&lc_bytes) + len > bound; ev++)
		if (ev == 8 || !lc_evict_oldest())
			return false;
	uint64_t w = lc_make(p, len);
	for (int round = 0; round < 2; round++) {
		if (lc_slot_put(w))
			return true;
		if (!lc_evict_oldest())
			break;
	}
	return false;
}

void *lcache_take(size_t len, size_t *got)
{
	uint64_t w = lc_claim_best(len, false);
	if (!w)
		return NULL;
	char *p = lc_addr(w);
	size_t have = lc_len(w);
	HL_HOOK("large_cache_taken");
	/* Hand out exactly the pages asked for if we can: the usable size
	 * stays page-granular to the request. */
	*got = have;
	if (have > len && (lcache_put(p + len, have - len) ||
			   os_unmap(p + len, have - len)))
		*got = len;
	return p;
}

size_t lcache_trim(bool all)
{
	uint32_t now = os_now_ms();
	size_t n = 0;
	for (unsigned i = 0; i < LC_ENTRIES; i++) {
		uint64_t w = lf_load_acquire(&lc_ent[i]);
		if (!w || (!all && now - lf_load_relaxed(&lc_stamp[i]) < hl_config.decay_ms))
			continue;
		if (lc_claim(i, w))
			n += lc_drop(w);
	}
	return n;
}
