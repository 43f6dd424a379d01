/*
 * Superblocks: Michael's allocator core.
 *
 * Ownership (DESIGN.md section 2): a descriptor is in exactly one place —
 * a heap's `active` or `partial` slot, a class's partial list, the hands
 * of one thread, or nowhere (FULL: its owner let go when no block was
 * free).  Whoever holds it is the only thread that takes its free blocks
 * (clears free bits); any thread may push (free: sets bits).
 *
 * Free state lives outside user memory: the free bits (mem/mem.h), the
 * anchor's count and the owner's bump.  Anchor {count, state, tag}:
 * changed only by CAS.  Transitions:
 *   owner takes the last free block         ACTIVE -> FULL (owner lets go)
 *   a free brings a FULL one to list_at     FULL -> ACTIVE (freer lists it)
 *   owner finds it fully free (sweep, trim) ACTIVE -> RETIRED
 *
 * Concurrency contract (`_owned`: the caller holds the superblock):
 *   operation              may run with                 linearizes on
 *   sb_alloc_batch         anything                     each anchor CAS of a pop
 *   sb_pop_owned           pushes (sb_free_batch)       the anchor CAS
 *   sb_put_back_owned      anything                     the slot CAS or the list push
 *   sb_retire_owned        nothing else on that d       the anchor store (RETIRED)
 *   sb_free_batch          anything; never a second     each group's anchor CAS
 *                          free of the same block
 *   sb_sweep_arena,        anything                     per descriptor, as the
 *   sb_decay                                            owner: pop_all / exchange
 *   sb_arena_drop_all,     nothing else in that arena   (quiescent)
 *   sb_force_retire_owned
 */
#define _GNU_SOURCE
#include <sched.h>

#include "core/core.h"

/* Looks again at a limit before sb_alloc_batch fails (see there). */
#define SB_LIMIT_TRIES 32
/* Decay passes (a quarter of HEAPLIB_DECAY_MS apart at the most) a listed
 * superblock must sit unpopped before its free pages are given back. */
#define SB_IDLE_PASSES 4u

#define A_COUNT_MASK HL_ANCHOR_COUNT_MAX
#define A_STATE_SHIFT HL_ANCHOR_COUNT_BITS
#define A_EPOCH_SHIFT (HL_ANCHOR_COUNT_BITS + HL_ANCHOR_STATE_BITS)
#define A_TAG_SHIFT (HL_ANCHOR_COUNT_BITS + HL_ANCHOR_STATE_BITS + HL_ANCHOR_EPOCH_BITS + \
		     HL_ANCHOR_SPARE_BITS)
#define A_TAG_MASK ((((uint64_t)1) << HL_ANCHOR_TAG_BITS) - 1u)
#define SB_WORDS_PER_SLOT (HL_BITS_PER_SLOT / 64)

_Static_assert(HL_ANCHOR_COUNT_BITS + HL_ANCHOR_STATE_BITS + HL_ANCHOR_EPOCH_BITS +
	       HL_ANCHOR_SPARE_BITS + HL_ANCHOR_TAG_MAX_BITS == 64,
	       "anchor fields fill one 64-bit word");
_Static_assert(HL_SLOT_SIZE / HL_MIN_BLOCK <= A_COUNT_MASK,
	       "count holds the largest block count");
_Static_assert(HL_MAX_SB_SLOTS * SB_WORDS_PER_SLOT <= UINT16_MAX,
	       "the cursor holds every free-bit word of a superblock");
_Static_assert(HL_ANCHOR_TAG_BITS >= 1, "anchor keeps a tag");
_Static_assert(sizeof(hl_desc_t) == (1u << HL_DESC_SHIFT), "descriptor size");

static inline uint32_t a_count(uint64_t a) { return (uint32_t)a & A_COUNT_MASK; }
static inline unsigned a_state(uint64_t a) { return (unsigned)(a >> A_STATE_SHIFT) & 3u; }
static inline unsigned a_epoch(uint64_t a) { return (unsigned)(a >> A_EPOCH_SHIFT) & 1u; }

/* The next anchor after old: the tag moves on, the epoch stays. */
static inline uint64_t a_make(uint32_t count, unsigned state, uint64_t old)
{
	uint64_t tag = ((old >> A_TAG_SHIFT) + 1) & A_TAG_MASK;
	return (uint64_t)count | ((uint64_t)state << A_STATE_SHIFT) |
	       ((uint64_t)a_epoch(old) << A_EPOCH_SHIFT) | (tag << A_TAG_SHIFT);
}

/* ---- free bits ---------------------------------------------------------- */

/* Set the free bits of blocks v[0..n) (freed into their superblock), one
 * RMW per word for blocks that share one (a batch is sorted by address).
 * Returns the first block whose bit was set already, a double free, or
 * NULL.  Any thread: the words are shared with other blocks' pushers and
 * with the owner, who clears bits as it takes blocks (sb_take_bits_owned). */
static void *sb_bits_set(void *const *v, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		uint64_t mask, m;
		uint64_t *w = pm_free_word(v[i], &mask);
		unsigned j = i + 1;
		while (j < n && pm_free_word(v[j], &m) == w) {
			mask |= m;
			j++;
		}
		uint64_t old = lf_fetch_or_acq_rel(w, mask);
		for (unsigned k = i; (old & mask) && k < j; k++) {
			pm_free_word(v[k], &m);
			if (old & m)
				return v[k];
		}
		i = j;
	}
	return NULL;
}

/* A new superblock has no free bit set: its blocks are all in the run
 * past bump, which is counted without them. */
static void sb_bits_clear_span(char *base, uint32_t nslots)
{
	for (uint32_t j = 0; j < nslots; j++) {
		uint64_t m;
		uint64_t *w = pm_free_word(base + ((size_t)j << HL_SLOT_SHIFT), &m);
		for (unsigned k = 0; k < HL_BITS_PER_SLOT / 64; k++)
			lf_store_relaxed(&w[k], 0);
	}
}

/* ---- superblock life --------------------------------------------------- */

static unsigned sb_order(uint32_t nslots)
{
	return (unsigned)__builtin_ctz(nslots);
}

static void sb_span_put(sb_arena_t *a, char *base, uint32_t span, unsigned order)
{
	if (a->id == 0)
		pm_span_put(span, order);
	else
		bk_span_put(&a->acct, base, span, order);
}

/* A new superblock of class cls in arena a, owned by the caller.  NULL
 * with *err set when memory is refused. */
static hl_desc_t *sb_new(sb_arena_t *a, unsigned cls, int *err)
{
	const sc_info_t *ci = &sc_table[cls];
	unsigned order = sb_order(ci->nslots);
	char *base = NULL;
	uint32_t span = 0;
	*err = HL_ENOMEM;
	if (a->id == 0) {
		bool fresh;
		span = pm_span_get(order, NULL, &fresh);
		if (!span) {
			sb_sweep(a);
			span = pm_span_get(order, NULL, &fresh);
		}
		if (span)
			base = pm_addr_of_span(span);
		else
			span = pm_span_get(order, &base, &fresh);
		if (!span)
			return NULL;
	} else {
		base = bk_span_get(&a->acct, order, &span, err);
		if (!base) {
			/* Empty superblocks of this arena may be waiting on
			 * its partial lists: retire them and try again. */
			if (*err != HL_ENOMEM || !sb_sweep(a))
				return NULL;
			base = bk_span_get(&a->acct, order, &span, err);
			if (!base)
				return NULL;
		}
	}
	hl_desc_t *d = desc_alloc();
	if (!d) {
		sb_span_put(a, base, span, order);
		*err = HL_ENOMEM;
		return NULL;
	}
	/* Relaxed atomics: the coordinator's scan may read a descriptor
	 * being reused (policy/mig/; it checks again once it holds one). */
	lf_store_relaxed(&d->base, base);
	lf_store_relaxed(&d->cls, (uint16_t)cls);
	lf_store_relaxed(&d->maxcount, (uint16_t)ci->maxcount);
	lf_store_relaxed(&d->arena, DESC_ARENA_WORD(a->id, a->id, a_epoch(lf_load_relaxed(&d->anchor))));
	d->span = span;
	lf_store_relaxed(&d->nslots, ci->nslots);
	lf_store_relaxed(&d->listed, 0);
	lf_store_relaxed(&d->need, (uint32_t)HL_REACH_SYS);
	/* No block is written now: every block is in the run past d->bump,
	 * so a superblock's pages are touched only as its blocks are handed
	 * out. */
	d->bump = 0;
	lf_store_relaxed(&d->cursor, 0);
	lf_store_relaxed(&d->idle, 0);
	sb_bits_clear_span(base, ci->nslots);
	uint64_t old = lf_load_relaxed(&d->anchor);
	lf_store_release(&d->anchor, a_make(ci->maxcount, SB_ACTIVE, old));
	for (uint32_t j = 0; j < ci->nslots; j++)
		lf_store_release(&pm_lookup(base + ((size_t)j << HL_SLOT_SHIFT))->word,
				 PM_WORD(d->idx, cls, j, PM_SMALL, a->id));
	HL_CTR_ADD(sb_created, 1);
	HL_CTR_ADD(sb_live_cls[cls], 1);
	lf_fetch_add_relaxed(&a->superblocks, 1);
	if (a->id == 0)
		lf_fetch_add_relaxed(&a->acct.backed, (uint64_t)ci->nslots << HL_SLOT_SHIFT);
	return d;
}

/* Owner only (fully free, unlinked from every slot and list); r is the
 * caller's hazard record. */
static void sb_retire_owned(hl_desc_t *d, lf_hp_rec_t *r)
{
	uint64_t old = lf_load_relaxed(&d->anchor);
	HL_ASSERT(a_count(old) == d->maxcount && a_state(old) == SB_ACTIVE);
	lf_store_release(&d->anchor, a_make(d->maxcount, SB_RETIRED, old));
	sb_arena_t *a = sb_arena(desc_arena_id(d));
	sb_span_put(a, d->base, d->span, sb_order(d->nslots));
	lf_fetch_sub_relaxed(&a->superblocks, 1);
	if (a->id == 0)
		lf_fetch_sub_relaxed(&a->acct.backed, (uint64_t)d->nslots << HL_SLOT_SHIFT);
	HL_CTR_ADD(sb_retired, 1);
	HL_CTR_SUB(sb_live_cls[d->cls], 1);
	desc_retire(d, r);
}

/* Region reset: the superblock's blocks are all dropped at once.  The
 * caller has made sure nobody else holds or pops it. */
void sb_force_retire_owned(hl_desc_t *d, lf_hp_rec_t *r)
{
	uint64_t old = lf_load_relaxed(&d->anchor);
	lf_store_release(&d->anchor, a_make(d->maxcount, SB_ACTIVE, old));
	sb_retire_owned(d, r);
}

/* Owner only: clear n of d's set free bits, from its cursor on and round
 * once, and write their blocks to out.  The caller knows n are set: a
 * pusher sets its bits before its anchor CAS counts them, and only the
 * owner clears bits.  Reads the bits and the descriptor, never a block. */
static void sb_take_bits_owned(hl_desc_t *d, void **out, unsigned n)
{
	unsigned words = d->nslots * SB_WORDS_PER_SLOT, got = 0;
	unsigned wi = lf_load_relaxed(&d->cursor), slot = ~0u;
	uint64_t *bits = NULL, m;
	if (!n)
		return;
	if (wi >= words)
		wi = 0;
	for (unsigned step = 0; step < words; step++) {
		if (wi / SB_WORDS_PER_SLOT != slot) {
			/* Slot by slot: a pool's span may cross a 1 GiB range,
			 * and the bits of each range are a map of their own. */
			slot = wi / SB_WORDS_PER_SLOT;
			bits = pm_free_word(d->base + ((size_t)slot << HL_SLOT_SHIFT), &m);
		}
		uint64_t *w = bits + wi % SB_WORDS_PER_SLOT;
		uint64_t v = lf_load_relaxed(w);
		if (v) {
			char *g = d->base + ((size_t)wi << (6 + HL_GRANULE_SHIFT));
			uint64_t take = 0;
			for (; v && got < n; v &= v - 1) {
				unsigned b = (unsigned)__builtin_ctzll(v);
				take |= (uint64_t)1 << b;
				out[got++] = g + ((size_t)b << HL_GRANULE_SHIFT);
			}
			lf_fetch_and_acq_rel(w, ~take);
			if (got == n)
				break;   /* the next refill starts at this word */
		}
		wi = wi + 1 < words ? wi + 1 : 0;
	}
	lf_store_relaxed(&d->cursor, (uint16_t)wi);
	if (HL_UNLIKELY(got != n))
		hl_fatal_assert("free bits fewer than the free count", __FILE__, __LINE__);
}

/* Owner only: take up to want blocks with one CAS, the blocks freed into
 * d first (found by their free bits), then never handed out ones past
 * bump.  Pushers may run at the same time (they only raise the count: the
 * CAS then fails and is tried again on the same blocks).  Sets *full when
 * the owner has let go of d (no free block left). */
static unsigned sb_pop_owned(hl_desc_t *d, void **out, unsigned want, bool *full)
{
	const sc_info_t *ci = &sc_table[d->cls];
	uint32_t bump = d->bump;   /* only the owner moves it */
	uint64_t a = lf_load_acquire(&d->anchor);
	uint32_t count = a_count(a), untouched = d->maxcount - bump;
	HL_ASSERT(a_state(a) == SB_ACTIVE && count > 0 && count >= untouched);
	unsigned k = want < count ? want : count;
	unsigned freed = k < count - untouched ? k : count - untouched;
	/* Everything is taken before the CAS: once it publishes FULL, a
	 * pusher may list d and a new owner scan its bits. */
	sb_take_bits_owned(d, out, freed);
	for (unsigned i = freed; i < k; i++) {
		char *b = d->base + (size_t)(bump + i - freed) * ci->size;
		/* Check mode: whatever an earlier life of the span left here
		 * is not this block's free mark. */
		if (HL_UNLIKELY(hl_config.check))
			((uint64_t *)b)[1] = 0;
		out[i] = b;
	}
	/* Before the CAS, so that its release publishes it to whoever owns
	 * d next (through a FULL superblock a freer lists). */
	d->bump = bump + (k - freed);
	lf_store_relaxed(&d->idle, 0);
	uint32_t rest;
	for (;;) {
		rest = a_count(a) - k;
		HL_HOOK("sb_pop_read");
		if (lf_cas_weak_acq_rel(&d->anchor, &a,
					a_make(rest, rest ? SB_ACTIVE : SB_FULL, a)))
			break;
	}
	/* Check mode marks every block it frees into a superblock: one whose
	 * mark is gone was written after its free. */
	for (unsigned i = 0; HL_UNLIKELY(hl_config.check) && i < freed; i++)
		if (((uint64_t *)out[i])[1] != hl_key)
			hl_fatal("malloc", out[i], HL_WHY_WRITTEN);
	*full = rest == 0;
	return k;
}

/* Owner only: keep d where the next allocation finds it. */
static void sb_put_back_owned(sb_arena_t *a, unsigned h, unsigned cls, hl_desc_t *d)
{
	uint32_t zero = 0;
	if (lf_cas_strong_acq_rel(&a->heaps[h].slot[cls].active, &zero, d->idx))
		return;
	zero = 0;
	if (lf_cas_strong_acq_rel(&a->heaps[h].slot[cls].partial, &zero, d->idx))
		return;
	arena_list(d);
}

unsigned sb_alloc_batch_err(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			    unsigned want, int *err)
{
	unsigned total = 0, again = 0;
	while (total < want) {
		uint32_t idx = lf_exchange_acq_rel(&a->heaps[h].slot[cls].active, 0);
		if (!idx)
			idx = lf_exchange_acq_rel(&a->heaps[h].slot[cls].partial, 0);
		hl_desc_t *d = idx ? desc_at(idx) : arena_unlist(a, cls);
		if (!d) {
			if (total)
				break;
			d = sb_new(a, cls, err);
			if (!d) {
				/* At a region's capacity or a task's quota the
				 * superblock wanted may be in another thread's hands
				 * for a moment (taken from its slot to pop a block):
				 * look again, a bounded number of times, before
				 * failing.  Bounded, so lock-free: a holder stopped
				 * for good costs only these tries (the README's
				 * slack). */
				if (a->id == 0 || *err != HL_ENOMEM || ++again > SB_LIMIT_TRIES)
					break;
				if (again % 8 == 0)
					sched_yield();
				else
					lf_cpu_relax();
				continue;
			}
		}
		bool full;
		total += sb_pop_owned(d, out + total, want - total, &full);
		if (!full)
			sb_put_back_owned(a, h, cls, d);
	}
	return total;
}

unsigned sb_alloc_batch(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			unsigned want)
{
	int err;
	return sb_alloc_batch_err(a, h, cls, out, want, &err);
}

/* The free count at which a FULL superblock is listed again: a quarter
 * of it (hysteresis, DESIGN.md section 2), but a single block in an arena
 * under a capacity or a quota, where a superblock with any free block must
 * be found before a request is refused (doc/architecture.md). */
static inline unsigned sb_list_at(const hl_desc_t *d, const sc_info_t *ci, uint32_t count)
{
	unsigned ai = desc_arena_id(d);
	if (HL_LIKELY(ai == 0 || count >= ci->list_at))
		return ci->list_at;
	const sb_arena_t *a = sb_arena(ai);
	bool bounded = lf_load_relaxed(&a->acct.bk->capacity) ||
		       (a->acct.budget && lf_load_relaxed(&a->acct.budget->limit));
	return bounded ? 1 : ci->list_at;
}

/* Push the group blocks[0..n) (all of descriptor d) with one CAS;
 * returns the arena d belonged to at that CAS.  No block is written: the
 * free bits, set first, and the count are all the free state. */
static unsigned sb_push_group(hl_desc_t *d, char **blocks, unsigned n, const char *call)
{
	/* A block already free in its superblock is caught here, however
	 * long ago it was freed and however many caches it went through. */
	void *dup = sb_bits_set((void *const *)blocks, n);
	if (HL_UNLIKELY(dup))
		hl_fatal(call, dup, HL_WHY_FREE_FREE);
	const sc_info_t *ci = &sc_table[d->cls];
	uint64_t a = lf_load_acquire(&d->anchor);
	for (;;) {
		uint32_t count = a_count(a) + n;
		unsigned state = a_state(a);
		if (HL_UNLIKELY(count > d->maxcount || state == SB_RETIRED))
			hl_fatal(call, blocks[0], HL_WHY_FREE_OVERCOUNT);
		bool list = state == SB_FULL && count >= sb_list_at(d, ci, count);
		if (list)
			state = SB_ACTIVE;
		uint64_t nw = a_make(count, state, a);
		/* Read after the anchor: if the CAS below succeeds, no move
		 * flipped the epoch in between, and the arena word is the one
		 * of that epoch or of the next move, which keeps it as prev. */
		uint32_t aw = lf_load_acquire(&d->arena);
		HL_HOOK("sb_push_read");
		if (lf_cas_weak_acq_rel(&d->anchor, &a, nw)) {
			if (list)
				arena_list(d);
			return DESC_ARENA_EPOCH(aw) == a_epoch(nw) ? DESC_ARENA(aw)
								   : DESC_ARENA_PREV(aw);
		}
	}
}

static void sb_sort(void **v, unsigned n)
{
	for (unsigned gap = n / 2; gap; gap /= 2)
		for (unsigned i = gap; i < n; i++) {
			void *x = v[i];
			unsigned j = i;
			for (; j >= gap && (uintptr_t)v[j - gap] > (uintptr_t)x; j -= gap)
				v[j] = v[j - gap];
			v[j] = x;
		}
}

unsigned sb_free_one(unsigned cls, void *p, const char *call)
{
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
	if (HL_UNLIKELY(!rec || PM_KIND(w) != PM_SMALL || PM_CLS(w) != cls))
		hl_fatal(call, p, HL_WHY_NOT_OURS);
	hl_desc_t *d = desc_at(PM_DESC(w));
	if (HL_UNLIKELY((char *)p < d->base ||
			sc_block_index(cls, (size_t)((char *)p - d->base)) < 0))
		hl_fatal(call, p, HL_WHY_INTERIOR);
	((uint64_t *)p)[1] = hl_key;   /* a lone block: marked, as sb_free_batch does */
	return sb_push_group(d, (char **)&p, 1, call);
}

void sb_free_batch(unsigned cls, void **blocks, unsigned n, const char *call)
{
	sb_free_batch_booked(cls, blocks, n, call, NULL, NULL);
}

void sb_free_batch_booked(unsigned cls, void **blocks, unsigned n, const char *call,
			  sb_book_fn book, void *ctx)
{
	/* The free mark, once a block is known for one and before its bit
	 * is set (a purge may take its page after that): a lone block was
	 * just the program's, its line is warm, and marked it is caught at
	 * the free itself if it is freed again; a batch from a cache carries
	 * the mark its free wrote.  Check mode marks them all, for the check
	 * at refill. */
	bool mark = n == 1 || HL_UNLIKELY(hl_config.check);
	sb_sort(blocks, n);
	unsigned i = 0;
	while (i < n) {
		pm_slot_t *rec = pm_lookup(blocks[i]);
		uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
		if (HL_UNLIKELY(!rec || PM_KIND(w) != PM_SMALL || PM_CLS(w) != cls))
			hl_fatal(call, blocks[i], HL_WHY_NOT_OURS);
		hl_desc_t *d = desc_at(PM_DESC(w));
		unsigned j = i;
		while (j < n && (char *)blocks[j] >= d->base &&
		       (char *)blocks[j] < d->base + ((size_t)d->nslots << HL_SLOT_SHIFT)) {
			long bi = sc_block_index(cls, (size_t)((char *)blocks[j] - d->base));
			if (HL_UNLIKELY(bi < 0))
				hl_fatal(call, blocks[j], HL_WHY_INTERIOR);
			if (j > i && blocks[j] == blocks[j - 1])
				hl_fatal(call, blocks[j], HL_WHY_FREE_TWICE);
			if (mark)
				((uint64_t *)blocks[j])[1] = hl_key;
			j++;
		}
		unsigned ai = sb_push_group(d, (char **)blocks + i, j - i, call);
		if (book)
			book(ai, j - i, ctx);
		i = j;
	}
}

/* d is the sweeper's: retire it if every block is free.  A thread with
 * no hazard record (the OS refused one) cannot retire: d stays where it
 * is, for a later sweep. */
static bool sb_retire_if_free_owned(hl_desc_t *d)
{
	if (a_count(lf_load_acquire(&d->anchor)) != d->maxcount)
		return false;
	lf_hp_rec_t *r = desc_hp_rec();
	if (HL_UNLIKELY(!r))
		return false;
	sb_retire_owned(d, r);
	return true;
}

/* Owner only: give back the pages of d that only free blocks cover (free
 * bit set, or past bump: never handed out); returns the bytes.  Pushers
 * may set bits meanwhile, but only the owner clears one, so a page seen
 * free stays free; and a block is not in any cache while its bit is set,
 * so no cached block's mark goes with a page.  The reservation's pages
 * only (arena 0): a region's pool may be shared, locked or the user's. */
static size_t sb_purge_free_pages_owned(hl_desc_t *d)
{
	const sc_info_t *ci = &sc_table[d->cls];
	uint32_t bump = d->bump, from = 0;
	bool inrun = false;
	size_t bytes = 0;
	for (uint32_t i = 0; i < bump; i++) {
		char *b = d->base + (size_t)i * ci->size;
		uint64_t m;
		bool isfree = lf_load_relaxed(pm_free_word(b, &m)) & m;
		if (isfree && !inrun)
			from = i;
		else if (!isfree && inrun)
			bytes += pm_purge_inside(d->base + (size_t)from * ci->size,
						 (size_t)(i - from) * ci->size);
		inrun = isfree;
	}
	if (!inrun)
		from = bump;
	size_t off = (size_t)from * ci->size;
	return bytes + pm_purge_inside(d->base + off, ((size_t)d->nslots << HL_SLOT_SHIFT) - off);
}

/* What a sweep does with each listed superblock it holds. */
enum sb_sweep_how {
	SB_SWEEP_EMPTY,   /* retire the fully free */
	SB_DECAY,         /* and, after SB_IDLE_PASSES passes unpopped, purge */
	SB_DECAY_ALL,     /* purge every listed one now (trim) */
};

static void sb_sweep_one_owned(hl_desc_t *d, enum sb_sweep_how how, size_t *n, size_t *bytes)
{
	unsigned idle = how == SB_SWEEP_EMPTY ? 0 : lf_load_relaxed(&d->idle) + 1u;
	if (idle)
		lf_store_relaxed(&d->idle, (uint16_t)(idle < UINT16_MAX ? idle : SB_IDLE_PASSES));
	bool due = how == SB_DECAY_ALL || (idle && idle % SB_IDLE_PASSES == 0);
	if ((how == SB_SWEEP_EMPTY || due) && sb_retire_if_free_owned(d)) {
		(*n)++;
		return;
	}
	/* Check mode checks the mark of every block a refill takes back,
	 * and a purged page has lost it. */
	if (due && desc_arena_id(d) == 0 && !hl_config.check)
		*bytes += sb_purge_free_pages_owned(d);
	arena_list(d);
}

static size_t sb_sweep_lists(sb_arena_t *a, enum sb_sweep_how how, size_t *bytes)
{
	size_t n = 0;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		if (lf_tstack_empty(&a->plist[c]))
			continue;
		uint32_t idx = lf_tstack_pop_all(&a->plist[c]);
		while (idx) {
			hl_desc_t *d = desc_at(idx);
			idx = lf_load_relaxed(&d->plist_link);
#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
			lf_store_relaxed(&d->listed, 0);
#endif
			sb_sweep_one_owned(d, how, &n, bytes);
		}
	}
	return n;
}

/* Retire every fully free superblock on arena a's partial lists (and, with
 * slots, in its heaps' slots too).  Any thread; each descriptor examined
 * is owned by the sweeper while it looks at it. */
size_t sb_sweep_arena(sb_arena_t *a, bool slots)
{
	size_t bytes = 0, n = sb_sweep_lists(a, SB_SWEEP_EMPTY, &bytes);
	for (unsigned h = 0; slots && h < a->nheaps; h++)
		for (unsigned c = 0; c < HL_NCLASSES; c++)
			for (int k = 0; k < 2; k++) {
				uint32_t idx = lf_exchange_acq_rel(k ? &a->heaps[h].slot[c].partial
								     : &a->heaps[h].slot[c].active, 0);
				if (!idx)
					continue;
				hl_desc_t *d = desc_at(idx);
				if (sb_retire_if_free_owned(d))
					n++;
				else
					sb_put_back_owned(a, h, c, d);
			}
	return n;
}

size_t sb_decay(bool all)
{
	size_t bytes = 0;
	sb_sweep_lists(sb_arena(0), all ? SB_DECAY_ALL : SB_DECAY, &bytes);
	return bytes;
}

size_t sb_sweep(sb_arena_t *a) { return sb_sweep_arena(a, false); }

void sb_arena_drop_all(sb_arena_t *a)
{
	for (unsigned h = 0; h < a->nheaps; h++)
		for (unsigned c = 0; c < HL_NCLASSES; c++) {
			lf_store_release(&a->heaps[h].slot[c].active, 0u);
			lf_store_release(&a->heaps[h].slot[c].partial, 0u);
		}
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		uint32_t idx = lf_tstack_pop_all(&a->plist[c]);
		while (idx) {
			hl_desc_t *d = desc_at(idx);
			idx = lf_load_relaxed(&d->plist_link);
			lf_store_relaxed(&d->listed, 0u);
		}
	}
}

/* ---- moving a superblock (the coordinator, policy/mig/) ------------------ */

/* Take d out of its arena's list for class cls: pop the whole list (its
 * nodes are then ours), keep d, push the others back.  Allocating threads
 * find the list shorter for a moment, never wait. */
static bool sb_claim_listed(sb_arena_t *a, hl_desc_t *d)
{
	uint32_t idx = lf_tstack_pop_all(&a->plist[lf_load_relaxed(&d->cls) % HL_NCLASSES]);
	bool got = false;
	while (idx) {
		hl_desc_t *e = desc_at(idx);
		idx = lf_load_relaxed(&e->plist_link);
#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
		lf_store_relaxed(&e->listed, 0u);
#endif
		if (e == d)
			got = true;
		else
			arena_list(e);
	}
	return got;
}

uint32_t sb_free_count(const hl_desc_t *d)
{
	return a_count(lf_load_acquire(&d->anchor));
}

bool sb_claim(hl_desc_t *d)
{
	uint64_t a = lf_load_acquire(&d->anchor);
	if (a_state(a) == SB_RETIRED)
		return false;
	if (a_state(a) == SB_FULL)
		/* Nobody holds it: the CAS makes us its holder, as a free
		 * that lists it would be. */
		return lf_cas_strong_acq_rel(&d->anchor, &a,
					     a_make(a_count(a), SB_ACTIVE, a));
	sb_arena_t *ar = sb_arena(desc_arena_id(d));
	unsigned cls = lf_load_relaxed(&d->cls) % HL_NCLASSES;   /* checked again once held */
	for (unsigned h = 0; h < ar->nheaps; h++) {
		uint32_t want = d->idx;
		if (lf_cas_strong_acq_rel(&ar->heaps[h].slot[cls].active, &want, 0u))
			return true;
		want = d->idx;
		if (lf_cas_strong_acq_rel(&ar->heaps[h].slot[cls].partial, &want, 0u))
			return true;
	}
	return sb_claim_listed(ar, d);
}

uint32_t sb_retag_owned(hl_desc_t *d, sb_arena_t *to)
{
	uint32_t old = lf_load_relaxed(&d->arena);
	uint64_t a = lf_load_acquire(&d->anchor);
	unsigned ne = a_epoch(a) ^ 1u;
	/* The arena word of the next epoch first (release), then the
	 * records, then the flip: a free whose CAS lands before the flip
	 * reads now or prev of this word and takes the old arena, one after
	 * it takes the new one. */
	lf_store_release(&d->arena, DESC_ARENA_WORD(to->id, DESC_ARENA(old), ne));
	for (uint32_t j = 0; j < d->nslots; j++) {
		pm_slot_t *rec = pm_lookup(d->base + ((size_t)j << HL_SLOT_SHIFT));
		uint64_t w = lf_load_relaxed(&rec->word);
		lf_store_release(&rec->word, PM_WORD(PM_DESC(w), PM_CLS(w), PM_OFF(w),
						     PM_KIND(w), to->id));
	}
	for (;;) {
		uint64_t n = a_make(a_count(a), a_state(a), a);
		n = (n & ~((uint64_t)1 << A_EPOCH_SHIFT)) | ((uint64_t)ne << A_EPOCH_SHIFT);
		if (lf_cas_weak_acq_rel(&d->anchor, &a, n))
			return d->maxcount - a_count(a);
	}
}

void sb_release_owned(hl_desc_t *d)
{
	uint64_t a = lf_load_acquire(&d->anchor);
	for (;;) {
		if (a_count(a) != 0) {
			arena_list(d);
			return;
		}
		/* No free block: let go as the popper of the last one does. */
		if (lf_cas_weak_acq_rel(&d->anchor, &a,
					a_make(0, SB_FULL, a)))
			return;
	}
}

#ifdef HL_TEST_HOOKS
/* The real functions, reachable from the deterministic tests. */
hl_desc_t *sb_test_new(unsigned h, unsigned cls)
{
	int err;
	(void)h;
	return sb_new(sb_arena(0), cls, &err);
}
unsigned sb_test_pop(hl_desc_t *d, void **out, unsigned want, bool *full)
{
	return sb_pop_owned(d, out, want, full);
}
void sb_test_retire(hl_desc_t *d) { sb_retire_owned(d, desc_hp_rec()); }
size_t sb_test_purge(hl_desc_t *d) { return sb_purge_free_pages_owned(d); }
uint32_t sb_test_count(hl_desc_t *d) { return a_count(lf_load_acquire(&d->anchor)); }
#endif
