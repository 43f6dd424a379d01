/*
 * Large allocations (over 32 KiB), found through the range table: runs of
 * the page heap up to 32 MiB (mem/lheap.c), else page-granular mappings
 * of their own, kept in the cache of freed mappings (mem/lcache.c) after
 * free, so that a program that frees and reallocates big blocks does not
 * pay the page faults again (purged after the decay time).  realloc
 * resizes page-heap blocks in place or has them moved by the caller, and
 * grows mappings into a warm cached one or with mremap.
 *
 * Range table: open-addressed tables keyed by start address, each twice
 * the size of the one before; entries are claimed and tombstoned by CAS.
 * An entry is {start, len}.  start is a block's word or one of the states
 * below, which no lookup matches.  A block's word is its address (page
 * aligned, below 2^48) with its arena in the top 16 bits and, in bit 0,
 * LG_HELD while the coordinator moves it: a free tombstones the whole
 * word by CAS and so learns from its own CAS which arena it freed from,
 * and whether the unmap is its own or the mover's (as the anchor's epoch
 * tells a small block's free its arena).  len is the block's bytes with
 * what it was allocated under (reach | HL_NEED_*) in the top 16 bits.
 * The states (address bits 0):
 *   LG_EMPTY    never used: ends a probe
 *   LG_TOMB     freed: reused by inserts
 *   LG_FILLING  claimed by an insert that has not published it yet
 *   LG_MOVING   a block being reallocated: its range may be the kernel's
 *               again while it is in this state, so no lookup may find it,
 *               and no insert may take the entry (its owner ends it)
 * The rule that keeps two live blocks from overlapping: no entry names a
 * range the kernel may hand to someone else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "mem/mem.h"

#define LG_TABLES 24
#define LG_FIRST_BITS 10
#define LG_EMPTY 0u
#define LG_TOMB 1u
#define LG_FILLING 2u
#define LG_MOVING 3u

typedef struct lg_ent {
	uintptr_t start;   /* address | arena << 48 | LG_HELD (arena 0: default, cacheable) */
	size_t len;        /* bytes | need << 48 */
} lg_ent_t;

#define LG_LOW48 (((uintptr_t)1 << 48) - 1)
#define LG_ADDR(s) ((s) & LG_LOW48 & ~(uintptr_t)(HL_PAGE - 1))
#define LG_ARENA(s) ((unsigned)((s) >> 48))
#define LG_HELD ((uintptr_t)1)
#define LG_WORD(addr, arena) ((uintptr_t)(addr) | (uintptr_t)(arena) << 48)
#define LG_LEN(x) ((x) & LG_LOW48)
#define LG_NEED(x) ((uint32_t)((x) >> 48))
_Static_assert(HL_MAX_ARENAS <= 1u << 16 && (HL_NEED_PINNED << 1) <= 1u << 16,
	       "an arena and a need fit 16 bits");

static lg_ent_t *lg_tab[LG_TABLES];
static uint32_t lg_used[LG_TABLES];
static uint32_t lg_cur;

static inline bool lg_is_block(uintptr_t s) { return LG_ADDR(s) != 0; }

static inline size_t lg_cap(unsigned t) { return (size_t)1 << (LG_FIRST_BITS + t); }

static inline size_t lg_hash(uintptr_t a, unsigned t)
{
	return (size_t)(((a >> 12) * 0x9e3779b97f4a7c15ull) >> (64 - LG_FIRST_BITS - t));
}

static lg_ent_t *lg_table(unsigned t)
{
	lg_ent_t *tab = lf_load_acquire(&lg_tab[t]);
	if (tab)
		return tab;
	lg_ent_t *mine = os_map(lg_cap(t) * sizeof(lg_ent_t));
	if (!mine)
		return NULL;
	if (lf_cas_strong_acq_rel(&lg_tab[t], &tab, mine))
		return mine;
	os_unmap(mine, lg_cap(t) * sizeof(lg_ent_t));
	return tab;
}

/* Claim an entry for a block that will start at start, in the state
 * LG_FILLING, which no lookup matches; NULL when every table is full or
 * the next table cannot be mapped (the caller reports ENOMEM). */
static lg_ent_t *lg_claim(uintptr_t start)
{
	for (;;) {
		unsigned t = lf_load_acquire(&lg_cur);
		if (t >= LG_TABLES)
			return NULL;
		lg_ent_t *tab = lg_table(t);
		if (!tab)
			return NULL;
		size_t cap = lg_cap(t), h = lg_hash(start, t);
		if (lf_load_relaxed(&lg_used[t]) < cap / 2) {
			for (size_t i = 0; i < cap; i++) {
				lg_ent_t *e = &tab[(h + i) & (cap - 1)];
				uintptr_t s = lf_load_acquire(&e->start);
				if (s != LG_EMPTY && s != LG_TOMB)
					continue;
				if (!lf_cas_strong_acq_rel(&e->start, &s, LG_FILLING))
					continue;
				if (s == LG_EMPTY)
					lf_fetch_add_relaxed(&lg_used[t], 1);
				return e;
			}
		}
		/* This table is half full: move inserts to the next one. */
		unsigned cur = t;
		lf_cas_strong_acq_rel(&lg_cur, &cur, t + 1);
	}
}

/* The claimant only: the block is found from now on. */
static void lg_publish(lg_ent_t *e, uintptr_t start, size_t len)
{
	lf_store_relaxed(&e->len, len);
	lf_store_release(&e->start, start);
}

/* The claimant (or the owner of a LG_MOVING entry) only: let it go. */
static void lg_unclaim(lg_ent_t *e)
{
	lf_store_release(&e->start, LG_TOMB);
}

static bool lg_insert(uintptr_t start, unsigned arena, size_t len)
{
	lg_ent_t *e = lg_claim(start);
	if (!e)
		return false;
	lg_publish(e, LG_WORD(start, arena), len);
	return true;
}

#ifdef HL_TEST_HOOKS
size_t large_test_table_room(void)
{
	unsigned t = lf_load_acquire(&lg_cur);
	if (t >= LG_TABLES)
		return 0;
	if (!lf_load_acquire(&lg_tab[t]))
		return 0;
	size_t used = lf_load_relaxed(&lg_used[t]);
	return used < lg_cap(t) / 2 ? lg_cap(t) / 2 - used : 0;
}
#endif

static lg_ent_t *lg_find(uintptr_t start)
{
	unsigned top = lf_load_acquire(&lg_cur);
	for (int t = (int)(top < LG_TABLES ? top : LG_TABLES - 1); t >= 0; t--) {
		lg_ent_t *tab = lf_load_acquire(&lg_tab[t]);
		if (!tab)
			continue;
		size_t cap = lg_cap((unsigned)t), h = lg_hash(start, (unsigned)t);
		for (size_t i = 0; i < cap; i++) {
			lg_ent_t *e = &tab[(h + i) & (cap - 1)];
			uintptr_t s = lf_load_acquire(&e->start);
			if (LG_ADDR(s) == start)
				return e;
			if (s == LG_EMPTY)
				break;
		}
	}
	return NULL;
}

int large_lookup(const void *p, size_t *size, uintptr_t *start)
{
	uintptr_t a = (uintptr_t)p;
	if (a & (HL_PAGE - 1)) {
		/* Not page-aligned: can only be inside a block.  Slow scan,
		 * taken only on the way to an error message. */
		for (unsigned t = 0; t < LG_TABLES; t++) {
			lg_ent_t *tab = lf_load_acquire(&lg_tab[t]);
			if (!tab)
				continue;
			for (size_t i = 0; i < lg_cap(t); i++) {
				uintptr_t s = LG_ADDR(lf_load_acquire(&tab[i].start));
				if (s && a > s && a < s + LG_LEN(lf_load_relaxed(&tab[i].len))) {
					*start = s;
					return -1;
				}
			}
		}
		return 0;
	}
	lg_ent_t *e = lg_find(a);
	if (e) {
		*size = LG_LEN(lf_load_relaxed(&e->len));
		return 1;
	}
	return (a & (HL_PAGE - 1)) == 0 && a ? large_lookup((char *)p + 1, size, start) : 0;
}

/* Unmap a mapping heaplib is done with.  The kernel refuses when that
 * would split a mapping past vm.max_map_count (neighbouring mappings
 * merge, so even a whole block may need a split): its pages are then
 * purged, and only the address range stays taken. */
static void lg_unmap(void *p, size_t len)
{
	if (!os_unmap(p, len)) {
		os_purge(p, len);
		HL_CTR_ADD(bytes_purged, len);
	}
}

size_t large_trim(bool all)
{
	return lheap_purge(all) + lcache_trim(all);
}

void *large_alloc(size_t size, size_t align, bool zero)
{
	size_t len;
	if (!os_page_round(size, &len)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = NULL;
	size_t got = len;
	bool zeroed = false, heap = false;
	if (align <= HL_PAGE) {
		p = lheap_alloc(len, zero);   /* it zeroes what needs it */
		zeroed = heap = p != NULL;
		if (!p)
			p = lcache_take(len, &got);
	}
	if (!p) {
		p = os_map_aligned(len, align);
		zeroed = true;
		got = len;
		if (!p) {
			errno = ENOMEM;
			return NULL;
		}
	}
	if (!lg_insert((uintptr_t)p, 0, got)) {
		if (heap)
			lheap_free(p, got);
		else
			lg_unmap(p, got);
		errno = ENOMEM;
		return NULL;
	}
	if (zero && !zeroed)
		memset(p, 0, size);
	HL_CTR_ADD(large_live, 1);
	HL_CTR_ADD(large_bytes, got);
	return p;
}

static void lg_release(void *p, size_t len)
{
	HL_CTR_SUB(large_live, 1);
	HL_CTR_SUB(large_bytes, len);
	if (lheap_owns(p))
		lheap_free(p, len);
	else if (!lcache_put(p, len))
		lg_unmap(p, len);
}

static HL_COLD void lg_bad(const void *p, const char *call)
{
	size_t sz;
	uintptr_t st;
	if (large_lookup(p, &sz, &st) < 0)
		hl_fatal(call, p, HL_WHY_INTERIOR);
	hl_fatal(call, p, HL_WHY_INVALID);
}

/* The arena freed from is the one in the word this CAS replaced: a mover
 * that retagged the block just before is seen, one just after finds the
 * tombstone.  A CAS fails only when a mover took or let go of the block
 * meanwhile (lock-free: the free never waits for it). */
unsigned large_free(void *p, const char *call, size_t *len, bool *unmap)
{
	lg_ent_t *e = lg_find((uintptr_t)p);
	if (!e)
		lg_bad(p, call);
	size_t tagged = lf_load_relaxed(&e->len);
	uintptr_t s = lf_load_acquire(&e->start);
	HL_HOOK("large_free_read");
	do {
		if (LG_ADDR(s) != (uintptr_t)p)
			hl_fatal(call, p, HL_WHY_FREE_LARGE);
	} while (!lf_cas_strong_acq_rel(&e->start, &s, LG_TOMB));
	*len = LG_LEN(tagged);
	*unmap = !(s & LG_HELD);   /* held: the mover unmaps it when done */
	if (LG_ARENA(s))
		return LG_ARENA(s);   /* the caller accounts, then unmaps */
	if (*unmap)
		lg_release(p, *len);   /* else the mover gives it back (large_release_default) */
	return 0;
}

void large_release_default(void *p, size_t len)
{
	lg_release(p, len);
}

bool large_publish_arena(void *p, size_t len, unsigned arena, uint32_t need)
{
	return lg_insert((uintptr_t)p, arena, len | ((size_t)need << 48));
}

/* A fresh mapping reads as zero: no zeroing is needed here. */
void *large_alloc_arena(size_t len, size_t align, unsigned arena, uint32_t need,
			bool secure, int *err)
{
	*err = HL_ENOMEM;
	if (len >> 48)
		return NULL;
	void *p = os_map_aligned(len, align > HL_SLOT_SIZE ? align : HL_SLOT_SIZE);
	if (!p)
		return NULL;
	if (secure && !os_lock(p, len)) {
		hl_warn("hl_alloc", p, "cannot lock a secure block's pages (RLIMIT_MEMLOCK?): HL_EPERM");
		os_unmap(p, len);
		*err = HL_EPERM;
		return NULL;
	}
	if (!large_publish_arena(p, len, arena, need)) {
		os_unmap(p, len);
		return NULL;
	}
	*err = HL_OK;
	return p;
}

int large_arena_of(const void *p)
{
	if ((uintptr_t)p & (HL_PAGE - 1))
		return -1;
	lg_ent_t *e = lg_find((uintptr_t)p);
	uintptr_t s = e ? lf_load_acquire(&e->start) : 0;
	return LG_ADDR(s) == (uintptr_t)p ? (int)LG_ARENA(s) : -1;
}

size_t large_reset(bool (*pick)(unsigned arena, void *ctx),
		   void (*freed)(unsigned arena, void *p, size_t len, bool unmap, void *ctx),
		   void *ctx)
{
	size_t n = 0;
	for (unsigned t = 0; t < LG_TABLES; t++) {
		lg_ent_t *tab = lf_load_acquire(&lg_tab[t]);
		if (!tab)
			continue;
		for (size_t i = 0; i < lg_cap(t); i++) {
			uintptr_t s = lf_load_acquire(&tab[i].start);
			if (!lg_is_block(s) || !LG_ARENA(s) || !pick(LG_ARENA(s), ctx))
				continue;
			size_t len = LG_LEN(lf_load_relaxed(&tab[i].len));
			if (!lf_cas_strong_acq_rel(&tab[i].start, &s, LG_TOMB))
				continue;
			freed(LG_ARENA(s), (void *)LG_ADDR(s), len, !(s & LG_HELD), ctx);
			n++;
		}
	}
	return n;
}

/* ---- the coordinator's side ---------------------------------------------
 *
 * A mover holds a block (LG_HELD set by CAS on its word), changes what it
 * must (attributes, node, backing), and lets go by the CAS that retags it
 * to the target arena.  A free meanwhile goes through (its CAS replaces
 * the held word, booked to the arena before the move) and leaves the
 * unmap to the mover, whose let-go CAS then fails: so the mover never
 * touches pages the kernel may have handed to someone else.  Only the
 * coordinator thread calls these. */

void large_each(void (*fn)(void *p, size_t len, unsigned arena, uint32_t need, void *ctx),
		void *ctx)
{
	for (unsigned t = 0; t < LG_TABLES; t++) {
		lg_ent_t *tab = lf_load_acquire(&lg_tab[t]);
		for (size_t i = 0; tab && i < lg_cap(t); i++) {
			uintptr_t s = lf_load_acquire(&tab[i].start);
			size_t len = lf_load_relaxed(&tab[i].len);
			if (lg_is_block(s) && LG_ARENA(s))
				fn((void *)LG_ADDR(s), LG_LEN(len), LG_ARENA(s), LG_NEED(len), ctx);
		}
	}
}

bool large_info(const void *p, unsigned *arena, size_t *len, uint32_t *need)
{
	lg_ent_t *e = (uintptr_t)p & (HL_PAGE - 1) ? NULL : lg_find((uintptr_t)p);
	if (!e)
		return false;
	size_t l = lf_load_relaxed(&e->len);
	uintptr_t s = lf_load_acquire(&e->start);
	if (LG_ADDR(s) != (uintptr_t)p)
		return false;
	*arena = LG_ARENA(s);
	*len = LG_LEN(l);
	*need = LG_NEED(l);
	return true;
}

bool large_hold(void *p, unsigned arena)
{
	lg_ent_t *e = lg_find((uintptr_t)p);
	uintptr_t s = LG_WORD(p, arena);
	return e && lf_cas_strong_acq_rel(&e->start, &s, s | LG_HELD);
}

bool large_let_go(void *p, unsigned from, unsigned to)
{
	lg_ent_t *e = lg_find((uintptr_t)p);   /* p is still mapped: no other block there */
	uintptr_t s = LG_WORD(p, from) | LG_HELD;
	HL_HOOK("large_held");
	if (!e || !lf_cas_strong_acq_rel(&e->start, &s, LG_WORD(p, to)))
		return false;
	if (from == 0 && to != 0) {
		/* One of malloc's is a region's now: off malloc's counts. */
		HL_CTR_SUB(large_live, 1);
		HL_CTR_SUB(large_bytes, LG_LEN(lf_load_relaxed(&e->len)));
	}
	return true;
}

/* Shrink in place; the entry, LG_MOVING, names only what is kept before
 * the tail goes back.  A kernel that refuses (a split past the mapping
 * limit) leaves the block as it was, which is still a right answer. */
static void *lg_shrink(lg_ent_t *e, char *p, size_t len, size_t want)
{
	lf_store_relaxed(&e->len, want);
	if (os_remap(p, len, want))
		HL_CTR_SUB(large_bytes, len - want);
	else
		lf_store_relaxed(&e->len, len);
	lf_store_release(&e->start, (uintptr_t)p);
	return p;
}

/* A page-heap block is resized where it is: its tail goes back to the
 * heap, or the pages after it are claimed.  NULL (p as it was) when they
 * are taken: the caller moves it with malloc, copy and free, which costs
 * no page fault when the heap has room. */
static void *lg_heap_resize(lg_ent_t *e, char *p, size_t len, size_t want)
{
	void *q = p;
	if (want < len) {
		lf_store_relaxed(&e->len, want);
		lheap_free(p + want, len - want);
		HL_CTR_SUB(large_bytes, len - want);
	} else if (lheap_grow(p, len, want)) {
		lf_store_relaxed(&e->len, want);
		HL_CTR_ADD(large_bytes, want - len);
	} else {
		q = NULL;
	}
	lf_store_release(&e->start, (uintptr_t)p);
	return q;
}

/* Grow into a warm cached mapping: its entry is published before the
 * copy (nobody knows its address yet) and p goes back only after its own
 * entry is a tombstone. */
static void *lg_grow_warm(lg_ent_t *e, char *p, size_t len, size_t want)
{
	size_t got;
	char *w = lcache_take(want, &got);
	if (!w)
		return NULL;
	if (!lg_insert((uintptr_t)w, 0, got)) {
		if (!lcache_put(w, got))
			lg_unmap(w, got);
		return NULL;
	}
	memcpy(w, p, len);
	HL_HOOK("large_realloc_moved");
	lg_unclaim(e);
	HL_CTR_ADD(large_live, 1);
	HL_CTR_ADD(large_bytes, got);
	lg_release(p, len);
	return w;
}

/* Move the pages with mremap into a destination reserved first, whose
 * entry is claimed first: once the kernel has the old range back, no entry
 * names it (e stays LG_MOVING until it is a tombstone), and the new range
 * is named only once it holds the block.  Any failure leaves p as it was
 * and nothing else behind. */
static void *lg_grow_move(lg_ent_t *e, char *p, size_t len, size_t want)
{
	char *d = os_map(want);
	if (!d)
		return NULL;
	lg_ent_t *de = lg_claim((uintptr_t)d);
	if (!de) {
		os_unmap(d, want);
		return NULL;
	}
	if (!os_move(p, len, d, want)) {
		lg_unclaim(de);   /* os_move gave d back */
		return NULL;
	}
	HL_HOOK("large_realloc_moved");
	lg_unclaim(e);
	lg_publish(de, (uintptr_t)d, want);
	HL_CTR_ADD(large_bytes, want - len);
	return d;
}

/* The caller owns p and nobody else may free or reallocate it meanwhile
 * (it would be a double free: it aborts, one way or the other).  NULL
 * with p untouched and errno as it was when memory is short, or when a
 * page-heap block cannot grow where it is: the caller falls back to
 * malloc, copy and free. */
void *large_realloc(void *p, size_t size)
{
	lg_ent_t *e = lg_find((uintptr_t)p);
	if (!e)
		lg_bad(p, "realloc");
	if (LG_ARENA(lf_load_acquire(&e->start)))
		return NULL;   /* region blocks are reallocated by policy/place.c */
	size_t len = lf_load_relaxed(&e->len);   /* a default-arena block's: no need bits */
	size_t want;
	if (!os_page_round(size, &want)) {
		errno = ENOMEM;
		return NULL;
	}
	if (want <= len && want >= len / 2)
		return p;
	uintptr_t s = (uintptr_t)p;
	if (!lf_cas_strong_acq_rel(&e->start, &s, LG_MOVING)) {
		if (LG_ADDR(s) == (uintptr_t)p)
			return NULL;   /* the coordinator holds or moved it: malloc, copy and free */
		hl_fatal("realloc", p, HL_WHY_FREE_LARGE);   /* freed meanwhile */
	}
	if (lheap_owns(p))
		return lg_heap_resize(e, p, len, want);
	if (want < len)
		return lg_shrink(e, p, len, want);
	/* Growing: a warm cached mapping costs a copy of the old bytes;
	 * mremap would fault in every new page instead, and page faults
	 * are the dearer of the two here (DESIGN.md 3). */
	void *q = lg_grow_warm(e, p, len, want);
	if (q)
		return q;
	if (os_remap(p, len, want)) {
		lf_store_relaxed(&e->len, want);
		lf_store_release(&e->start, (uintptr_t)p);
		HL_CTR_ADD(large_bytes, want - len);
		return p;
	}
	q = lg_grow_move(e, p, len, want);
	if (q)
		return q;
	lf_store_release(&e->start, (uintptr_t)p);
	return NULL;
}
