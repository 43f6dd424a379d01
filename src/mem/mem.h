/*
 * mem/: address space and the memory behind it.  The rule of this folder:
 * its files call base/ and lf/ only, and each other along
 * backing -> pagemap, backing -> large, backing -> rebind, large -> lheap,
 * large -> lcache
 * (src/layers.conf); nothing here knows arenas, tasks or regions beyond
 * the account it is handed.
 *
 *   pagemap.c  the reservation in 1 GiB chunks, the page map (pointer ->
 *              slot record in O(1)), spans of 1/2/4/8 slots and their
 *              caches, purging
 *   backing.c  what backs a region's spans: the reservation's anonymous
 *              memory, memfd offsets behind reservation spans, or a
 *              pool; capacity and quota charged by bounded CAS
 *   rebind.c   backing moves of live spans under a userfaultfd
 *              write-protect barrier; the mapping budget
 *   desc.c     the descriptor arena and its hazard-pointer domain
 *   large.c    blocks over 32 KiB: the range table, realloc, which of
 *              the two below a block comes from
 *   lheap.c    the page heap: blocks up to 32 MiB as runs of pages of
 *              256 MiB chunks, free pages coalesced and kept warm
 *   lcache.c   the cache of freed mappings of larger blocks
 */
#ifndef HL_MEM_H
#define HL_MEM_H

#include "base/base.h"

/* ---- pagemap.c ---------------------------------------------------------- */
extern HL_HIDDEN pm_slot_t *pm_chunkmap[HL_CHUNKMAP_LEN];

/* The slot record of p, or NULL when p is not in the reservation.  For
 * p NULL: NULL, or (a region's pool in the first GiB) the record of the
 * first 64 KiB, where nothing can be mapped, so of kind PM_NONE.  Reads no
 * memory at or before p.  One compare of the chunk number bounds both
 * the page map's index and the address (no separate test of the bits
 * above HL_ADDR_BITS). */
static inline pm_slot_t *pm_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	uintptr_t chunk = a >> HL_CHUNK_SHIFT;
	if (HL_UNLIKELY(chunk >= HL_CHUNKMAP_LEN))
		return NULL;
	pm_slot_t *recs = lf_load_acquire(&pm_chunkmap[chunk]);
	if (HL_UNLIKELY(!recs))
		return NULL;
	/* &recs[slot], spelled as a byte offset so that the compiler folds
	 * it into the caller's load of the word (base + index). */
	size_t at = (a >> (HL_SLOT_SHIFT - 4)) & ((HL_SLOTS_PER_CHUNK - 1) << 4);
	_Static_assert(sizeof(pm_slot_t) == 16, "slot records are 16 bytes");
	return (pm_slot_t *)((char *)recs + at);
}

/* Byte offset of p in its superblock, w being p's slot record word. */
static inline size_t pm_block_off(const void *p, uint64_t w)
{
	uintptr_t slot = (uintptr_t)p & ~(uintptr_t)(HL_SLOT_SIZE - 1);
	return (uintptr_t)p - slot + ((size_t)PM_OFF(w) << HL_SLOT_SHIFT);
}

/* Free bits, beside the slot records and never in user memory: one bit
 * per 16-byte granule of every slot, set while the block starting there
 * is free in its superblock (not while it sits in a cache).  Word and
 * mask of the bit of the block at p (p in a live superblock). */
extern HL_HIDDEN uint64_t *pm_bitsmap[HL_CHUNKMAP_LEN];
static inline uint64_t *pm_free_word(const void *p, uint64_t *mask)
{
	uintptr_t a = (uintptr_t)p;
	uint64_t *bits = lf_load_acquire(&pm_bitsmap[a >> HL_CHUNK_SHIFT]);
	size_t g = ((a >> HL_GRANULE_SHIFT) & ((HL_CHUNK_SIZE >> HL_GRANULE_SHIFT) - 1));
	*mask = (uint64_t)1 << (g & 63);
	return &bits[g >> 6];
}

void pm_init(void);
/* A span of (1 << order) slots: a cached one if possible.  Returns its
 * 1-based span index and start address; *fresh says its pages were never
 * touched or were purged.  With base NULL, only a cached span. */
uint32_t pm_span_get(unsigned order, char **base, bool *fresh);
void pm_span_put(uint32_t span, unsigned order);   /* emptied: cache it */
void pm_span_put_clean(uint32_t span, unsigned order); /* already purged */
/* Install slot records for [base, base + len) (64 KiB aligned) outside the
 * reservation (a region's pool); false if the page map cannot. */
bool pm_map_foreign(char *base, size_t len);
/* Mark [base, base + (1 << order) slots) as a cached span's slots. */
void pm_mark_cached(char *base, unsigned order);
/* Forget the slot records of [base, base + len): a stale pointer there is
 * then "invalid". */
void pm_forget(char *base, size_t len);
/* What backs the span starting at base (PM_BACK_* of types.h; 0 when
 * never set).  pm_back_set is false only when the table for base's 1 GiB
 * cannot be mapped (nothing changed). */
uint32_t pm_back_get(const void *base);
bool pm_back_set(const void *base, uint32_t v);
/* Call fn on the first slot record of every live superblock. */
void pm_scan(void (*fn)(pm_slot_t *rec, void *ctx), void *ctx);
pm_slot_t *pm_slot_of_span(uint32_t span);
char *pm_addr_of_span(uint32_t span);
/* Purge cached spans emptied at least HEAPLIB_DECAY_MS ago (all: every
 * one); returns the bytes given back.  When to call it is core/decay.c's. */
size_t pm_purge(bool all);
/* Give back the whole pages inside [p, p + len) of a live superblock,
 * whose bytes nobody needs (its owner knows); returns the bytes. */
size_t pm_purge_inside(char *p, size_t len);
#ifdef HL_TEST_HOOKS
/* The next fresh slot, as a global slot number (chunk << 14 | slot): the
 * setter is for seeding it forward, never back over slots in use. */
void pm_test_set_next(uint64_t g);
uint64_t pm_test_next(void);
#endif

/* ---- backing.c ---------------------------------------------------------- */
extern HL_HIDDEN bk_t bk_tab[HL_MAX_REGIONS];
static inline bk_t *bk_at(uint32_t id) { return &bk_tab[id]; }
void bk_init(void);
/* Make bk's pool for a region of the given kind and capacity (ANON makes
 * none); HL_OK, HL_ENOMEM, HL_EINVAL or HL_EPERM (pages not lockable). */
int bk_setup(bk_t *bk, hl_backing_t kind, uint64_t capacity, int secure,
	     void *buffer, const char *name);
/* Undo bk_setup: the pool's records forgotten, its pages unlocked and
 * unmapped (a user's buffer is only unlocked). */
void bk_release(bk_t *bk);
/* Charge n bytes to account ac: its backing's capacity, then its budget;
 * false (HL_ENOMEM in *err, nothing charged) past either. */
bool bk_reserve(hl_account_t *ac, uint64_t n, int *err);
void bk_unreserve(hl_account_t *ac, uint64_t n);
/* A span of (1 << order) slots for a superblock of account ac, charged to
 * it: *span is the page-map span index (0 for pool spans).  NULL with *err
 * set (HL_ENOMEM past capacity or quota, HL_EPERM when pages cannot be
 * locked). */
char *bk_span_get(hl_account_t *ac, unsigned order, uint32_t *span, int *err);
void bk_span_put(hl_account_t *ac, char *base, uint32_t span, unsigned order);
/* Registered hook: told after a charge or a release changed bk->backed
 * (policy/region.c watches the watermarks with it). */
void bk_set_level_hook(void (*fn)(bk_t *bk));
/* Whether bk serves superblocks only (blocks up to 32 KiB): the pools,
 * HUGETLB and BUFFER, whose addresses are their own (policy/place.c's
 * large-block path should ask this rather than read bk->pool). */
static inline bool bk_small_only(const bk_t *bk)
{
	return bk->kind != HL_BACKING_ANON && bk->kind != HL_BACKING_MEMFD;
}
/* backing.c's units (pool slots, memfd offsets) for bkmove.c: a run of
 * (1 << order) as its first unit + 1 (0: none), one put back on its free
 * stack, and a memfd run punched and put back (its span has it no more). */
uint32_t bk_units_take(bk_t *bk, unsigned order);
void bk_unit_push(bk_t *bk, unsigned order, uint32_t unit);
void bk_units_free(bk_t *bk, uint32_t unit, unsigned order);
static inline uint64_t bk_unit_off(uint32_t unit)
{
	return (uint64_t)unit << HL_SLOT_SHIFT;
}

/* ---- bkmove.c ------------------------------------------------------------ */
/* What backs the live span at base now: the backing whose memfd offset it
 * is (its offset in *off), or NULL for anonymous memory. */
bk_t *bk_span_backing(const char *base, uint64_t *off);
/* Change what backs the live span at base ((1 << order) slots, held by
 * the caller) to backing `to`: an offset of its memfd (MEMFD), or private
 * anonymous memory (ANON), in place, while other threads and the kernel
 * go on writing into it (rebind.c).  Capacity is not charged here (see
 * bk_span_handover).  HL_OK (also when nothing had to change); HL_EPERM
 * when backing moves cannot be made here or the kernel lacks a feature,
 * HL_ENOMEM when the mapping budget, the target's offsets or the kernel
 * refuse, HL_EINVAL for a pool (HUGETLB or BUFFER) on either side: each
 * with *why, and the span as it was. */
int bk_span_move(char *base, unsigned order, bk_t *to, const char **why);
/* The same for n adjacent spans of that order from base at once: n a
 * power of two, n << order at most 8 slots (512 KiB); with n > 1 they
 * are anonymous now and `to` is a memfd (HL_EINVAL else, nothing done). */
int bk_spans_move(char *base, unsigned order, unsigned n, bk_t *to, const char **why);
/* Hand the charge of one span of (1 << order) slots from account `from`
 * to account `to` (the superblock changed region or task): `to` was
 * charged already (bk_reserve, before the move began, so that a full
 * target refuses before anything changed); `from` is released here. */
void bk_span_handover(hl_account_t *to, hl_account_t *from, unsigned order);

/* Also the pieces of large blocks (mem/lback.c): bk_memfd_back maps a
 * run of bk's memfd offsets over the fresh span at base, (1 << order)
 * slots (HL_OK, or HL_ENOMEM / HL_EPERM as bk_span_get); bk_span_unback
 * gives a span anonymous memory again and its offsets back (false: the
 * kernel refused the mapping, nothing changed). */
int bk_memfd_back(bk_t *bk, char *base, unsigned order);
bool bk_span_unback(char *base, unsigned order);

/* ---- rebind.c ----------------------------------------------------------- */
/* Whether backing moves can be made here (userfaultfd probed on the first
 * call): HL_OK, or HL_EPERM with the reason in *why. */
int rb_probe(const char **why);
/* The reason of the last move refused, or NULL: for the statistics. */
const char *rb_reason(void);
/* The move itself: the live span [base, base + len) becomes offset off of
 * memfd fd (fd >= 0; view is a shared mapping of that offset; ready: its
 * pages are in the file already, a warm unit), or fresh anonymous memory
 * (fd < 0, view and ready unused); from_view is NULL when the span is
 * anonymous now, else a shared mapping of the memfd offset it has (the
 * copy reads there).  Returns as bk_span_move. */
int rb_move(char *base, size_t len, int fd, uint64_t off, char *view, bool ready,
	    const char *from_view, const char **why);
/* The mapping budget: kernel mappings heaplib splits off for spans
 * (hl_ctr.own_maps), bounded by half of vm.max_map_count. */
uint64_t rb_map_limit(void);
bool rb_maps_take(uint64_t n);
void rb_maps_put(uint64_t n);
void rb_fork_child(void);        /* fork registry: close the descriptor */
/* The reserves of move targets (rbkeep.c says why and their bounds).
 * Warm units of a memfd backing: a unit (its span moved out) kept
 * unpunched, false if bk keeps none (then punch it); a warm unit of that
 * order as unit + 1, or 0; all of them punched and made free (the
 * bytes), by anyone inside the region's teardown handshake; forgotten
 * (the backing goes away); drained if unused a while (the coordinator). */
bool rb_warm_put(bk_t *bk, uint32_t unit, unsigned order);
uint32_t rb_warm_take(bk_t *bk, unsigned order);
size_t rb_warm_drain(bk_t *bk);
void rb_warm_forget(bk_t *bk);
size_t rb_warm_decay(bk_t *bk, uint32_t now_ms);
/* Spare anonymous targets: made ready by the coordinator between
 * requests, step by step until stop(ctx) says a request waits (true:
 * work is left); dropped by hl_trim (the bytes). */
bool rb_spare_fill(bool (*stop)(void *ctx), void *ctx);
size_t rb_spare_trim(void);

/* ---- rbkeep.c ------------------------------------------------------------ */
/* (also the reserves above) A ready spare of (1 << order) slots, the
 * caller's now, or NULL: either way the coordinator makes the next. */
char *rb_spare_take(unsigned order);
void rb_keep_fork_child(void);   /* rb_fork_child: no reserve crosses a fork */
/* mmap (PROT_READ | PROT_WRITE), munmap and madvise through syscall(2),
 * unseen by the sanitizers (see rebind.c). */
void *rb_mmap(void *p, size_t len, int flags, int fd, uint64_t off);
void rb_munmap(void *p, size_t len);
bool rb_madvise(void *p, size_t len, int advice);
/* Write-protect a live span (false: cannot here), and lift it (waking
 * the writers held): the fork of a memfd region's heap (bkfork.c). */
bool rb_protect(char *base, size_t len);
void rb_unprotect(char *base, size_t len);
/* The backings whose spans a fork holds (a bit per id): set before
 * bk_fork_prepare scans them, cleared before the parent lets them go.  A
 * span published meanwhile (bk_memfd_back) holds itself: rb_fork_hold_new. */
void rb_fork_holding(uint64_t ids);
void rb_fork_hold_new(uint32_t id, char *base, size_t len);

/* ---- bkfork.c ----------------------------------------------------------- */
/* fork of a memfd region that is not shared: the child gets a private,
 * consistent copy of its spans (taken while the parent's writers are held
 * by write protection) and the region becomes anonymous memory there.
 * Registered at start with thread_atfork_register, after the coordinator
 * (which parks first). */
void bk_fork_prepare(void);
void bk_fork_parent(void);
void bk_fork_child(void);
#ifdef HL_TEST_HOOKS
int rb_test_fd(void);            /* -2 before the probe, -1 refused */
uint64_t rb_test_features(void); /* features granted (probes) */
void rb_test_set_maps(uint64_t n);   /* seed hl_ctr.own_maps */
uint64_t rb_test_warm_bytes(const bk_t *bk);   /* bk's warm units, bytes */
#endif

/* ---- desc.c ------------------------------------------------------------- */
extern HL_HIDDEN char *desc_arena;
static inline hl_desc_t *desc_at(uint32_t idx)
{
	return (hl_desc_t *)(desc_arena + ((size_t)idx << HL_DESC_SHIFT));
}

/* hl_desc_t.arena: the arena now, the one before the last move, and the
 * anchor epoch that goes with the arena now. */
#define DESC_ARENA(w) ((unsigned)(w) & 0xffffu)
#define DESC_ARENA_PREV(w) (((unsigned)(w) >> 16) & 0x7fffu)
#define DESC_ARENA_EPOCH(w) ((unsigned)(w) >> 31)
#define DESC_ARENA_WORD(now, prev, epoch) \
	((uint32_t)(now) | ((uint32_t)(prev) << 16) | ((uint32_t)(epoch) << 31))
static inline unsigned desc_arena_id(const hl_desc_t *d)
{
	return DESC_ARENA(lf_load_acquire(&d->arena));
}

void desc_init(void);
/* A descriptor; NULL only when all HL_DESC_PAGES pages are in use even
 * after a scan of the caller's hazard record. */
hl_desc_t *desc_alloc(void);
/* The calling thread's hazard record, acquired on first use; NULL when
 * none can be had (the OS refused the memory).  Without one a thread
 * pops no partial list and retires no descriptor: it makes new
 * superblocks and leaves empty ones where they are. */
lf_hp_rec_t *desc_hp_rec(void);
/* Through the hazard domain; r is the caller's record (desc_hp_rec(),
 * not NULL: check before unlinking d from anywhere). */
void desc_retire(hl_desc_t *d, lf_hp_rec_t *r);
void desc_hp_thread_exit(void);      /* thread-exit callback */
extern HL_HIDDEN lf_hp_domain_t desc_hp;
int desc_page_released(uint32_t pg);
#ifdef HL_TEST_HOOKS
uint64_t desc_test_free_bits(void);
uint32_t desc_test_npages(void);
void desc_test_seed_pages(uint32_t n);
#endif

/* ---- large.c ------------------------------------------------------------ */
void *large_alloc(size_t size, size_t align, bool zero);
/* A large block for arena (not 0): its own anonymous mapping of len
 * bytes (lb_len: whole slots, slot-aligned, so that memfd offsets can
 * back its pieces), tagged in the range table with what it was allocated
 * under (need: reach | HL_NEED_*), never cached; secure ones locked and
 * kept out of dumps. */
void *large_alloc_arena(size_t len, size_t align, unsigned arena, uint32_t need,
			bool secure, int *err);
/* Enter the region block [p, p + len) that the caller mapped into the
 * range table; false (nothing entered) when the table cannot grow. */
bool large_publish_arena(void *p, size_t len, unsigned arena, uint32_t need);
/* Arena of the large block at p (0: default), or -1 if p is not one. */
int large_arena_of(const void *p);
/* 1 and *size if p starts a large block, 0 if it is unknown, -1 (and
 * *start) if it lies inside one. */
int large_lookup(const void *p, size_t *size, uintptr_t *start);
/* Free the large block at p.  A default-arena block is done with (0 is
 * returned); a block of another arena is taken out of the range table and
 * its arena id returned (the arena its tombstoning CAS saw) with its
 * length in *len: the caller accounts for it and then, if *unmap, gives it
 * to lb_unmap (else a mover holds it and unmaps it). */
unsigned large_free(void *p, const char *call, size_t *len, bool *unmap);
/* Take out every large block of the arenas for which pick(arena) is true;
 * freed(arena, p, len, unmap) is told of each, and gives it to lb_unmap
 * if unmap (else a mover holds it and unmaps it). */
size_t large_reset(bool (*pick)(unsigned arena, void *ctx),
		   void (*freed)(unsigned arena, void *p, size_t len, bool unmap, void *ctx),
		   void *ctx);
void *large_realloc(void *p, size_t size);
/* The coordinator's side (its thread only).  large_each calls fn on every
 * large block of an arena other than 0 (a moment's view).  A block of
 * arena 0 may be held and let go to a region too (hl_migrate of one of
 * malloc's): a realloc that finds it held or moved returns NULL (the
 * caller's malloc, copy and free), a free of it while held leaves its
 * release to the mover.  large_info:
 * the block starting at p, false if none.  large_hold marks the block at
 * p of arena held (false: freed or moved since); large_let_go retags it
 * from arena `from` to `to` (equal: unchanged) and lets go; false when it
 * was freed while held: the caller then gives it to lb_unmap. */
void large_each(void (*fn)(void *p, size_t len, unsigned arena, uint32_t need, void *ctx),
		void *ctx);
bool large_info(const void *p, unsigned *arena, size_t *len, uint32_t *need);
bool large_hold(void *p, unsigned arena);
bool large_let_go(void *p, unsigned from, unsigned to);
/* A block of malloc's own (arena 0) freed while the mover held it: the
 * mover gives it back to the page heap or the cache, as its free would. */
void large_release_default(void *p, size_t len);
/* Give back the page heap's free pages and the cached mappings unused for
 * HEAPLIB_DECAY_MS (all: every one); returns the bytes. */
size_t large_trim(bool all);
#ifdef HL_TEST_HOOKS
/* How many more entries the range table takes before an insert needs a
 * new table mapped (0: the next insert of a new address maps one). */
size_t large_test_table_room(void);
#endif

/* ---- lback.c ------------------------------------------------------------ */
/* What backs a region's large blocks: their own anonymous mapping, cut
 * into pieces (spans of 1, 2, 4 or 8 slots, the longest first) that a
 * memfd region's offsets back.  lb_len: the length of a region block of
 * size bytes (whole slots); false past the range table's 2^48. */
bool lb_len(size_t size, size_t *len);
/* A block of len bytes (lb_len) for arena in a region of backing bk:
 * NULL with *err (HL_ENOMEM, HL_EPERM) as large_alloc_arena. */
void *lb_alloc(bk_t *bk, size_t len, size_t align, unsigned arena, uint32_t need, int *err);
/* A region block taken out of the range table: its pieces' offsets go
 * back to their memfd, its pages to the kernel (its owner only); one of
 * malloc's page-heap runs that moved to a region goes back to the page
 * heap, unlocked. */
void lb_unmap(void *p, size_t len);
/* Change what backs every piece of the held block [p, p + len) to
 * backing `to` (bk_span_move on each, in place); from is what backed them
 * (the source region's backing).  Returns as bk_span_move; on a refusal
 * the pieces moved go back to from first. */
int lb_move(char *p, size_t len, bk_t *to, bk_t *from, const char **why);

/* ---- lheap.c ------------------------------------------------------------ */
/* A run of len bytes (page-rounded, at most 32 MiB) of the page heap, its
 * pages zeroed with zero; NULL if len is larger or no chunk has room and
 * none can be made. */
void *lheap_alloc(size_t len, bool zero);
/* Whether p lies in the page heap (then it is one of its runs). */
bool lheap_owns(const void *p);
/* Give back the run [p, p + len) (or a tail of a run); once only. */
void lheap_free(void *p, size_t len);
/* Extend the run [p, p + len) to want bytes where it is; false (nothing
 * changed) if the pages after it are taken or want is too large. */
bool lheap_grow(void *p, size_t len, size_t want);
/* Purge free pages last freed HEAPLIB_DECAY_MS ago (all: every one);
 * returns the bytes. */
size_t lheap_purge(bool all);
#ifdef HL_TEST_HOOKS
/* Blocks up to max bytes go to the page heap (0: none; 32 MiB at start),
 * so that a test can reach the mapping paths. */
void lheap_test_set_max(size_t max);
#endif

/* ---- lcache.c ----------------------------------------------------------- */
/* The smallest cached mapping that holds len bytes, its tail cached again
 * or unmapped; *got is the block's length: len, or the whole mapping's
 * when the kernel refuses the split.  NULL if none. */
void *lcache_take(size_t len, size_t *got);
/* Cache a freed default-arena mapping; false (the caller unmaps it) when
 * no room can be made. */
bool lcache_put(void *p, size_t len);
/* Unmap cached mappings unused for HEAPLIB_DECAY_MS (all: every one);
 * returns the bytes. */
size_t lcache_trim(bool all);

#endif
