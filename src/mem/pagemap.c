/*
 * Address space: 1 GiB chunks of reserved address space, carved into
 * 64 KiB slots; the page map (chunk map + one record per slot); spans of
 * 1/2/4/8 slots handed to superblocks and cached when they empty, and
 * how cached spans are purged (when: core/decay.c).
 *
 * A chunk keeps its slot records in its own first slots, so mapping a
 * chunk and its records is one step published by one CAS.  Chunks are
 * never unmapped: slot records are type-stable, which is what lets the
 * span caches be plain tagged stacks.
 *
 * When the address space is short (RLIMIT_AS), a chunk may be a smaller
 * piece of its 1 GiB: still 1 GiB aligned (the page map finds records by
 * address) and still holding the records of the whole 1 GiB, with only
 * its first slots usable.  The rest of that 1 GiB may then be anybody's,
 * a region's pool among them: whoever installs the chunk-map entry first
 * provides the records of the whole 1 GiB, for both.
 */
#define _GNU_SOURCE
#include <string.h>

#include "mem/mem.h"

#define PM_REC_BYTES ((size_t)HL_SLOTS_PER_CHUNK * sizeof(pm_slot_t))
#define PM_REC_SLOTS ((uint32_t)((PM_REC_BYTES + HL_SLOT_SIZE - 1) >> HL_SLOT_SHIFT))
#define PM_BITS_BYTES ((size_t)HL_SLOTS_PER_CHUNK * HL_BITS_PER_SLOT / 8)

/* A chunk's reservation, largest first: a smaller piece is reserved only
 * when the one before cannot be had; the smallest still holds the
 * records and some slots. */
#define PM_PIECES 5
static const size_t pm_piece[PM_PIECES] = {
	HL_CHUNK_SIZE, (size_t)256 << 20, (size_t)64 << 20, (size_t)16 << 20, (size_t)4 << 20
};
_Static_assert(((size_t)4 << 20) >= PM_REC_BYTES + 8 * HL_SLOT_SIZE,
	       "the smallest piece holds the records and a span of every order");

pm_slot_t *pm_chunkmap[HL_CHUNKMAP_LEN];
uint64_t *pm_bitsmap[HL_CHUNKMAP_LEN];

/* The free bits of 1 GiB range c, mapped (NORESERVE: pages are touched
 * only where superblocks are) before any block of the range is handed
 * out.  Racing mappers both map; the CAS picks one. */
static bool pm_bits_ensure(uintptr_t c)
{
	uint64_t *have = lf_load_acquire(&pm_bitsmap[c]);
	if (have)
		return true;
	uint64_t *mine = os_map(PM_BITS_BYTES);
	if (!mine)
		return false;
	if (lf_cas_strong_acq_rel(&pm_bitsmap[c], &have, mine))
		HL_CTR_ADD(reserved, PM_BITS_BYTES);
	else
		os_unmap(mine, PM_BITS_BYTES);
	return true;
}
/* Chunk k, once mapped: its base | how many of its slots are mapped (the
 * base is 1 GiB aligned, the count at most 1 << 14), one word so that one
 * CAS publishes both. */
static uintptr_t pm_chunk_word[HL_MAX_CHUNKS];
/* Next fresh slot, as a global slot number (chunk << 14 | slot); at most
 * HL_MAX_CHUNKS << 14, and always in a chunk that is mapped or chunk 0. */
static uint64_t pm_next;
static lf_tstack_t pm_dirty[HL_SPAN_ORDERS];
static lf_tstack_t pm_clean[HL_SPAN_ORDERS];

_Static_assert(sizeof(pm_slot_t) == 16, "slot record is two words");

void pm_init(void)
{
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++) {
		lf_tstack_init(&pm_dirty[o]);
		lf_tstack_init(&pm_clean[o]);
	}
	lf_store_relaxed(&pm_next, (uint64_t)PM_REC_SLOTS);
}

#ifdef HL_TEST_HOOKS
void pm_test_set_next(uint64_t g) { lf_store_release(&pm_next, g); }
uint64_t pm_test_next(void) { return lf_load_acquire(&pm_next); }
#endif

static inline char *pm_word_base(uintptr_t w)
{
	return (char *)(w & ~(uintptr_t)(HL_CHUNK_SIZE - 1));
}

static inline uint32_t pm_word_slots(uintptr_t w)
{
	return (uint32_t)(w & (HL_CHUNK_SIZE - 1));
}

/* Base of chunk k and, in *slots, how many of its slots are mapped;
 * maps it if nobody has yet.  Racing mappers both map; the CAS picks one
 * and the other unmaps (lock-free, no waiting). */
static char *pm_chunk(uint32_t k, uint32_t *slots)
{
	if (k >= HL_MAX_CHUNKS)
		return NULL;
	uintptr_t w = lf_load_acquire(&pm_chunk_word[k]);
	if (!w) {
		char *mine = NULL;
		size_t len = 0;
		for (unsigned i = 0; i < PM_PIECES && !mine; i++) {
			len = pm_piece[i];
			mine = os_map_aligned(len, HL_CHUNK_SIZE);
		}
		if (!mine)
			return NULL;
		os_nohuge(mine, len);   /* superblock spans: no huge pages (os_nohuge) */
		uintptr_t made = (uintptr_t)mine | (len >> HL_SLOT_SHIFT);
		if (lf_cas_strong_acq_rel(&pm_chunk_word[k], &w, made)) {
			w = made;
			HL_CTR_ADD(reserved, len);
		} else {
			os_unmap(mine, len);
		}
	}
	/* Whoever uses the chunk makes sure the page map knows records for
	 * it before a block of it can be handed out: its own, or those of a
	 * pool in the same 1 GiB that got there first. */
	char *base = pm_word_base(w);
	pm_slot_t **ent = &pm_chunkmap[(uintptr_t)base >> HL_CHUNK_SHIFT];
	pm_slot_t *none = NULL;
	if (!pm_bits_ensure((uintptr_t)base >> HL_CHUNK_SHIFT))
		return NULL;   /* no free bits, no blocks: ENOMEM, try again later */
	if (!lf_load_acquire(ent))
		lf_cas_strong_acq_rel(ent, &none, (pm_slot_t *)base);
	*slots = pm_word_slots(w);
	return base;
}

static inline char *pm_chunk_known(uint32_t k)
{
	return pm_word_base(lf_load_acquire(&pm_chunk_word[k]));
}

/* The chunk's records are its own, not a pool's that it shares. */
static inline bool pm_chunk_owns_recs(char *base)
{
	return lf_load_acquire(&pm_chunkmap[(uintptr_t)base >> HL_CHUNK_SHIFT]) ==
	       (pm_slot_t *)base;
}

char *pm_addr_of_span(uint32_t span)
{
	uint32_t g = span - 1;
	return pm_chunk_known(g / HL_SLOTS_PER_CHUNK) +
	       ((size_t)(g % HL_SLOTS_PER_CHUNK) << HL_SLOT_SHIFT);
}

/* Through the chunk map, as free() finds it. */
pm_slot_t *pm_slot_of_span(uint32_t span)
{
	return pm_lookup(pm_addr_of_span(span));
}

static uint32_t *pm_span_link(void *ctx, uint32_t span)
{
	(void)ctx;
	return &pm_slot_of_span(span)->link;
}

/* A fresh span of (1 << order) slots.  pm_next moves only by CAS, and
 * only to slots of a chunk that is mapped: past a span it hands out, or
 * past what cannot hold one (the records, the tail of a chunk) once the
 * next chunk is mapped.  So it never passes HL_MAX_CHUNKS chunks, and an
 * attempt whose map fails leaves it as it was. */
static uint32_t pm_span_new(unsigned order)
{
	uint32_t n = 1u << order;
	uint64_t g = lf_load_acquire(&pm_next);
	for (;;) {
		uint32_t k = (uint32_t)(g / HL_SLOTS_PER_CHUNK);
		uint32_t s = (uint32_t)(g % HL_SLOTS_PER_CHUNK);
		uint32_t slots;
		if (!pm_chunk(k, &slots))
			return 0;
		uint64_t skip;
		if (s < PM_REC_SLOTS) {
			skip = g - s + PM_REC_SLOTS;
		} else if (s + n > slots) {
			if (!pm_chunk(k + 1, &slots))
				return 0;   /* at the bound, or no memory */
			skip = (uint64_t)(k + 1) * HL_SLOTS_PER_CHUNK + PM_REC_SLOTS;
		} else {
			if (lf_cas_weak_acq_rel(&pm_next, &g, g + n)) {
				HL_CTR_ADD(span_slots_used, n);
				return (uint32_t)g + 1;
			}
			continue;   /* g is the counter's new value */
		}
		if (lf_cas_weak_acq_rel(&pm_next, &g, skip))
			g = skip;
	}
}

uint32_t pm_span_get(unsigned order, char **base, bool *fresh)
{
	uint32_t span = lf_tstack_pop(&pm_dirty[order], pm_span_link, NULL);
	*fresh = false;
	if (!span) {
		span = lf_tstack_pop(&pm_clean[order], pm_span_link, NULL);
		*fresh = true;
	}
	if (span) {
		HL_CTR_SUB(spans_cached, 1);
	} else if (base == NULL) {
		return 0;  /* caller asked for cached spans only */
	} else {
		span = pm_span_new(order);
		*fresh = true;
	}
	if (span && base)
		*base = pm_addr_of_span(span);
	return span;
}

/* The n records of a span from rec on: a cached span's slots. */
static void pm_recs_cached(pm_slot_t *rec, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		lf_store_release(&rec[i].word, PM_WORD(0, 0, i, PM_CACHED, 0));
}

void pm_mark_cached(char *base, unsigned order)
{
	/* Slot by slot: a pool's span may cross a 1 GiB boundary, where its
	 * records are not contiguous. */
	for (uint32_t i = 0; i < (1u << order); i++)
		lf_store_release(&pm_lookup(base + ((size_t)i << HL_SLOT_SHIFT))->word,
				 PM_WORD(0, 0, i, PM_CACHED, 0));
}

void pm_forget(char *base, size_t len)
{
	for (size_t off = 0; off < len; off += HL_SLOT_SIZE) {
		pm_slot_t *rec = pm_lookup(base + off);
		if (!rec)
			continue;   /* its records were never mapped */
		lf_store_release(&rec->word, 0);
		lf_store_relaxed(&rec->link, 0);
	}
}

void pm_span_put(uint32_t span, unsigned order)
{
	pm_slot_t *rec = pm_slot_of_span(span);
	pm_recs_cached(rec, 1u << order);
	lf_store_relaxed(&rec->stamp, os_now_ms());
	HL_CTR_ADD(spans_cached, 1);
	lf_tstack_push(&pm_dirty[order], span, &rec->link);
}

void pm_span_put_clean(uint32_t span, unsigned order)
{
	pm_slot_t *rec = pm_slot_of_span(span);
	pm_recs_cached(rec, 1u << order);
	HL_CTR_ADD(spans_cached, 1);
	lf_tstack_push(&pm_clean[order], span, &rec->link);
}

/* ---- what backs a span (PM_BACK_* of types.h) -------------------------- */

/* One word per slot of a 1 GiB range, mapped on the first store there
 * (racing mappers both map; the CAS picks one). */
static uint32_t *pm_backmap[HL_CHUNKMAP_LEN];
#define PM_BACK_BYTES ((size_t)HL_SLOTS_PER_CHUNK * sizeof(uint32_t))

static inline size_t pm_back_idx(uintptr_t a)
{
	return (a >> HL_SLOT_SHIFT) & (HL_SLOTS_PER_CHUNK - 1);
}

uint32_t pm_back_get(const void *base)
{
	uintptr_t a = (uintptr_t)base;
	if (a >> HL_ADDR_BITS)
		return 0;
	uint32_t *t = lf_load_acquire(&pm_backmap[a >> HL_CHUNK_SHIFT]);
	return t ? lf_load_acquire(&t[pm_back_idx(a)]) : 0;
}

bool pm_back_set(const void *base, uint32_t v)
{
	uintptr_t a = (uintptr_t)base;
	if (a >> HL_ADDR_BITS)
		return false;
	uint32_t **ent = &pm_backmap[a >> HL_CHUNK_SHIFT];
	uint32_t *t = lf_load_acquire(ent);
	if (!t) {
		if (!v)
			return true;
		uint32_t *mine = os_map(PM_BACK_BYTES);
		if (!mine)
			return false;
		if (lf_cas_strong_acq_rel(ent, &t, mine)) {
			HL_CTR_ADD(reserved, PM_BACK_BYTES);
			t = mine;
		} else {
			os_unmap(mine, PM_BACK_BYTES);
		}
	}
	lf_store_release(&t[pm_back_idx(a)], v);
	return true;
}

/* Slot records for memory outside the reservation (region pools).  A
 * 1 GiB range that holds a pool may hold a short chunk too: the records
 * already there (the chunk's) serve the pool as well. */
#define PM_FOREIGN_MAX 256u
static pm_slot_t *pm_foreign[PM_FOREIGN_MAX];
static uint32_t pm_nforeign;

bool pm_map_foreign(char *base, size_t len)
{
	uintptr_t a = (uintptr_t)base, end = a + len;
	if ((a | len) & (HL_SLOT_SIZE - 1) || end >> HL_ADDR_BITS || end < a)
		return false;
	/* Memory heaplib carves itself (the mapped part of a chunk) is never
	 * a pool's; the rest of a short chunk's 1 GiB may be. */
	for (uint32_t k = 0; k < HL_MAX_CHUNKS; k++) {
		uintptr_t w = lf_load_acquire(&pm_chunk_word[k]);
		uintptr_t cb = (uintptr_t)pm_word_base(w);
		uintptr_t ce = cb + ((size_t)pm_word_slots(w) << HL_SLOT_SHIFT);
		if (w && cb < end && a < ce)
			return false;
	}
	for (uintptr_t c = a >> HL_CHUNK_SHIFT; c <= (end - 1) >> HL_CHUNK_SHIFT; c++) {
		pm_slot_t *recs = lf_load_acquire(&pm_chunkmap[c]);
		if (!pm_bits_ensure(c))
			return false;
		if (recs)
			continue;
		/* Records region reset can scan: at most PM_FOREIGN_MAX
		 * ranges, an entry taken once the records are made (one lost
		 * to a racing pool of the same range stays NULL, skipped). */
		pm_slot_t *mine = os_map(PM_REC_BYTES);
		if (!mine)
			return false;
		int64_t i = ctr_take_bounded(&pm_nforeign, PM_FOREIGN_MAX);
		if (i < 0) {
			os_unmap(mine, PM_REC_BYTES);
			return false;
		}
		if (!lf_cas_strong_acq_rel(&pm_chunkmap[c], &recs, mine)) {
			os_unmap(mine, PM_REC_BYTES);
			continue;
		}
		lf_store_release(&pm_foreign[i], mine);
		HL_CTR_ADD(reserved, PM_REC_BYTES);
	}
	return true;
}

static void pm_scan_recs(pm_slot_t *recs, uint32_t from,
			 void (*fn)(pm_slot_t *rec, void *ctx), void *ctx)
{
	for (uint32_t s = from; s < HL_SLOTS_PER_CHUNK; s++) {
		uint64_t w = lf_load_acquire(&recs[s].word);
		if (PM_KIND(w) == PM_SMALL && PM_OFF(w) == 0)
			fn(&recs[s], ctx);
	}
}

void pm_scan(void (*fn)(pm_slot_t *rec, void *ctx), void *ctx)
{
	for (uint32_t k = 0; k < HL_MAX_CHUNKS; k++) {
		char *base = pm_chunk_known(k);
		/* A chunk that shares a pool's records is scanned with them. */
		if (base && pm_chunk_owns_recs(base))
			pm_scan_recs((pm_slot_t *)base, PM_REC_SLOTS, fn, ctx);
	}
	uint32_t nf = lf_load_acquire(&pm_nforeign);
	for (uint32_t i = 0; i < nf && i < PM_FOREIGN_MAX; i++) {
		pm_slot_t *recs = lf_load_acquire(&pm_foreign[i]);
		if (recs)
			pm_scan_recs(recs, 0, fn, ctx);
	}
}

size_t pm_purge(bool all)
{
	uint32_t now = os_now_ms();
	size_t purged = 0;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++) {
		uint32_t span = lf_tstack_pop_all(&pm_dirty[o]);
		while (span) {
			pm_slot_t *rec = pm_slot_of_span(span);
			uint32_t next = lf_load_relaxed(&rec->link);
			uint32_t age = now - lf_load_relaxed(&rec->stamp);
			if (all || age >= hl_config.decay_ms) {
				size_t bytes = HL_SLOT_SIZE << o;
				os_purge(pm_addr_of_span(span), bytes);
				purged += bytes;
				lf_tstack_push(&pm_clean[o], span, &rec->link);
			} else {
				lf_tstack_push(&pm_dirty[o], span, &rec->link);
			}
			span = next;
		}
	}
	HL_CTR_ADD(bytes_purged, purged);
	return purged;
}

size_t pm_purge_inside(char *p, size_t len)
{
	uintptr_t lo = ((uintptr_t)p + HL_PAGE - 1) & ~(uintptr_t)(HL_PAGE - 1);
	uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)(HL_PAGE - 1);
	if (hi <= lo)
		return 0;
	os_purge((void *)lo, hi - lo);
	HL_CTR_ADD(bytes_purged, hi - lo);
	return hi - lo;
}
