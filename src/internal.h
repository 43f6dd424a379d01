/*
 * heaplib internals.
 *
 * Map of the core types (DESIGN.md sections 1-3):
 *
 *   chunk (1 GiB of reserved address space)
 *     └─ slot (64 KiB) ── slot record: one 64-bit word read on free():
 *          {descriptor index, size class, slot offset in its superblock,
 *           kind, region}; plus a link word for the span caches.
 *   superblock = a span of 1, 2, 4 or 8 slots, holding blocks of one class.
 *   descriptor (64 B, in the descriptor arena) = one superblock's metadata;
 *     its anchor {avail, count, state, tag} is changed only by CAS.
 *   heap (shard of threads): per class an `active` and a `partial` slot,
 *     each holding one descriptor index — an ownership token.
 *   partial list (per class): tagged stack of descriptors, popped under a
 *     hazard pointer because descriptor pages can be released.
 *   thread cache: per class an array of block pointers (the fast path).
 *   transfer cache (per class): tagged stack of batch nodes.
 *   large allocations: their own mappings, found through the range table.
 *
 * Internal names carry their module: os_, sc_, pm_ (page map and spans),
 * desc_, sb_ (superblocks, heaps, partial lists), tc_ (thread and transfer
 * caches), large_, stats_.  Macros are HL_.
 */
#ifndef HL_INTERNAL_H
#define HL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "atomic.h"
#include "tstack.h"
#include "hp.h"
#include "hook.h"
#include "heaplib.h"

#define HL_EXPORT __attribute__((visibility("default")))
/* Internal data: hidden, so the library reaches it without the GOT. */
#define HL_HIDDEN __attribute__((visibility("hidden")))
#define HL_LIKELY(x) __builtin_expect(!!(x), 1)
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HL_NOINLINE __attribute__((noinline))
#define HL_COLD __attribute__((cold, noinline))

#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
#define HL_ASSERT(c) \
	((c) ? (void)0 : hl_fatal_assert(#c, __FILE__, __LINE__))
#else
#define HL_ASSERT(c) ((void)0)
#endif

/* ---- geometry ---------------------------------------------------------- */
#define HL_PAGE 4096u
#define HL_SLOT_SHIFT 16
#define HL_SLOT_SIZE ((size_t)1 << HL_SLOT_SHIFT)
#define HL_CHUNK_SHIFT 30
#define HL_CHUNK_SIZE ((size_t)1 << HL_CHUNK_SHIFT)
#define HL_SLOTS_PER_CHUNK (1u << (HL_CHUNK_SHIFT - HL_SLOT_SHIFT))
#define HL_ADDR_BITS 47
#define HL_CHUNKMAP_LEN ((size_t)1 << (HL_ADDR_BITS - HL_CHUNK_SHIFT))
#define HL_MAX_CHUNKS 4096u          /* 4 TiB of superblocks at most */
#define HL_MAX_SB_SLOTS 8u            /* largest superblock: 512 KiB */
#define HL_SPAN_ORDERS 4              /* spans of 1, 2, 4, 8 slots */

/* ---- size classes ------------------------------------------------------ */
#define HL_SMALL_MAX 32768u
#define HL_NCLASSES 43
#define HL_MIN_BLOCK 16u
#define HL_MAX_BATCH 64u

typedef struct sc_info {
	uint32_t size;      /* block size */
	uint32_t recip;     /* ceil(2^32 / size): offset -> index by multiply */
	uint32_t nslots;    /* slots per superblock */
	uint32_t maxcount;  /* blocks per superblock */
	uint32_t batch;     /* blocks moved between caches at once */
	uint32_t list_at;   /* free count at which a FULL superblock is listed */
	uint32_t limit;     /* maxcount * size: first offset past the blocks */
	uint64_t divm;      /* UINT64_MAX / size + 1: divisibility by multiply */
} sc_info_t;

extern HL_HIDDEN sc_info_t sc_table[HL_NCLASSES];
extern HL_HIDDEN uint8_t sc_small_lut[(1024 >> 3) + 1];     /* sizes 0..1024, step 8 */
extern HL_HIDDEN uint8_t sc_large_lut[(HL_SMALL_MAX >> 7) + 1]; /* step 128 */

static inline unsigned sc_of(size_t size)
{
	if (HL_LIKELY(size <= 1024))
		return sc_small_lut[(size + 7) >> 3];
	return sc_large_lut[(size + 127) >> 7];
}

/* Whether byte offset off in a superblock of class cls starts a block:
 * off * divm wraps below divm exactly when size divides off (Lemire,
 * Kaser and Kurz, "Faster remainder by direct computation"). */
static inline bool sc_is_block(unsigned cls, size_t off)
{
	const sc_info_t *c = &sc_table[cls];
	return (uint64_t)off * c->divm <= c->divm - 1 && off < c->limit;
}

/* Block index of byte offset off in a superblock of class cls, or -1 if off
 * is not on a block boundary. */
static inline long sc_block_index(unsigned cls, size_t off)
{
	const sc_info_t *c = &sc_table[cls];
	uint32_t idx = (uint32_t)(((uint64_t)off * c->recip) >> 32);
	if ((size_t)idx * c->size != off || idx >= c->maxcount)
		return -1;
	return idx;
}

void sc_init(void);

/* ---- anchor ------------------------------------------------------------ */
/* {avail, count, state, tag}: widths stated here, checked in heap.c. */
#define HL_ANCHOR_AVAIL_BITS 13
#define HL_ANCHOR_COUNT_BITS 13
#define HL_ANCHOR_STATE_BITS 2
#define HL_ANCHOR_TAG_MAX_BITS \
	(64 - HL_ANCHOR_AVAIL_BITS - HL_ANCHOR_COUNT_BITS - HL_ANCHOR_STATE_BITS)
#define HL_ANCHOR_TAG_BITS \
	(HL_TAG_BITS < HL_ANCHOR_TAG_MAX_BITS ? HL_TAG_BITS : HL_ANCHOR_TAG_MAX_BITS)
#define HL_AVAIL_NONE ((1u << HL_ANCHOR_AVAIL_BITS) - 1u)

enum sb_state {
	SB_ACTIVE = 0,  /* in someone's hands: a heap slot, a list, a thread */
	SB_FULL = 1,    /* no free block when its owner let go; nobody has it */
	SB_RETIRED = 2, /* unlinked everywhere, handed to the hazard domain */
};

/* ---- descriptors ------------------------------------------------------- */
typedef struct hl_desc {
	uint64_t anchor;        /* atomic; see sb_anchor_* in heap.c */
	uint32_t plist_link;    /* partial-list link (tagged stack) */
	uint32_t idx;           /* own index in the descriptor arena */
	char *base;             /* superblock start */
	uint32_t cls;
	uint32_t maxcount;
	uint32_t listed;        /* test builds: 1 while on a partial list */
	uint32_t arena;         /* arena id (task, region) */
	lf_hp_node_t hp;        /* retire link */
	uint32_t span;          /* span index (first slot, 1-based) */
	uint32_t nslots;
	uint32_t need;          /* constraints of every block it served:
				 * reach bits | HL_NEED_SECURE | HL_NEED_PINNED */
	uint32_t bump;          /* owner only: blocks from here on were never
				 * handed out; their links are implicit */
} hl_desc_t;

/* What a superblock's blocks were allocated under (hl_desc_t.need): where
 * it may legally move is a region whose reach contains the reach bits,
 * secure if HL_NEED_SECURE, and nowhere if HL_NEED_PINNED. */
#define HL_NEED_SECURE 0x100u
#define HL_NEED_PINNED 0x200u

#define HL_DESC_SHIFT 6
#define HL_DESC_PER_PAGE (HL_PAGE >> HL_DESC_SHIFT)   /* 64: one mask word */
#define HL_DESC_PAGES 32768u                           /* 2M descriptors */

extern HL_HIDDEN char *desc_arena;
static inline hl_desc_t *desc_at(uint32_t idx)
{
	return (hl_desc_t *)(desc_arena + ((size_t)idx << HL_DESC_SHIFT));
}

void desc_init(void);
hl_desc_t *desc_alloc(void);
void desc_retire(hl_desc_t *d);     /* through the hazard domain */
lf_hp_rec_t *desc_hp_rec(void);      /* the calling thread's record */
void desc_hp_thread_exit(void);
extern HL_HIDDEN lf_hp_domain_t desc_hp;

/* ---- page map and spans ------------------------------------------------ */
enum pm_kind {
	PM_NONE = 0,    /* never used, or between owners */
	PM_SMALL = 1,   /* part of a live superblock */
	PM_CACHED = 2,  /* part of an empty span waiting for reuse */
};

typedef struct pm_slot {
	uint64_t word;  /* desc:32 | cls:8 | off:4 | kind:4 | arena:16 */
	uint32_t link;  /* span-cache link, on a span's first slot */
	uint32_t stamp; /* ms clock when the span was emptied */
} pm_slot_t;

#define PM_WORD(desc, cls, off, kind, arena) \
	((uint64_t)(desc) | ((uint64_t)(cls) << 32) | ((uint64_t)(off) << 40) | \
	 ((uint64_t)(kind) << 44) | ((uint64_t)(arena) << 48))
#define PM_DESC(w) ((uint32_t)(w))
#define PM_CLS(w) ((unsigned)((w) >> 32) & 0xffu)
#define PM_OFF(w) ((unsigned)((w) >> 40) & 0xfu)
#define PM_KIND(w) ((unsigned)((w) >> 44) & 0xfu)
#define PM_ARENA(w) ((unsigned)((w) >> 48))
/* kind and arena together: the free fast path takes only small blocks of
 * arena 0 (default task, default region). */
#define PM_FASTKIND(w) ((unsigned)((w) >> 44))

extern HL_HIDDEN pm_slot_t *pm_chunkmap[HL_CHUNKMAP_LEN];

/* The slot record of p, or NULL when p is not in the reservation.  Reads
 * no memory at or before p. */
static inline pm_slot_t *pm_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (HL_UNLIKELY(a >> HL_ADDR_BITS))
		return NULL;
	pm_slot_t *recs = lf_load_acquire(&pm_chunkmap[a >> HL_CHUNK_SHIFT]);
	if (HL_UNLIKELY(!recs))
		return NULL;
	return &recs[(a >> HL_SLOT_SHIFT) & (HL_SLOTS_PER_CHUNK - 1)];
}

/* Byte offset of p in its superblock, w being p's slot record word. */
static inline size_t pm_block_off(const void *p, uint64_t w)
{
	uintptr_t slot = (uintptr_t)p & ~(uintptr_t)(HL_SLOT_SIZE - 1);
	return (uintptr_t)p - slot + ((size_t)PM_OFF(w) << HL_SLOT_SHIFT);
}

void pm_init(void);
/* A span of (1 << order) slots: a cached one if possible.  Returns its
 * 1-based span index and start address; *fresh says its pages were never
 * touched or were purged. */
uint32_t pm_span_get(unsigned order, char **base, bool *fresh);
void pm_span_put(uint32_t span, unsigned order);   /* emptied: cache it */
void pm_span_put_clean(uint32_t span, unsigned order); /* already purged */
/* Install slot records for [base, base + len) (64 KiB aligned) outside the
 * reservation (a region's pool); false if the page map cannot. */
bool pm_map_foreign(char *base, size_t len);
/* Call fn on the first slot record of every live superblock. */
void pm_scan(void (*fn)(pm_slot_t *rec, void *ctx), void *ctx);
pm_slot_t *pm_slot_of_span(uint32_t span);
char *pm_addr_of_span(uint32_t span);
size_t pm_purge(bool all);    /* purge cached spans past the decay age */
void pm_maybe_purge(void);    /* cheap clock check on slow paths */

/* ---- superblocks, heaps, partial lists --------------------------------- */
#define HL_MAX_HEAPS 64u
#define HL_MAX_ARENAS 4096u
#define HL_MAX_REGIONS 64u

typedef struct sb_heap {
	struct {
		uint32_t active;   /* descriptor index or 0 */
		uint32_t partial;
	} slot[HL_NCLASSES];
} lf_cacheline_aligned sb_heap_t;

/* An arena is the superblocks of one (task, region) pair: its own heap
 * slots and partial lists.  Arena 0 is the default task on the default
 * region, sharded over many heaps and fed by the thread caches; every
 * other arena has one heap and is reached only through slow paths.
 * Arenas are never freed (type-stable): slot records name them. */
typedef struct sb_arena {
	lf_tstack_t plist[HL_NCLASSES];
	sb_heap_t *heaps;
	uint32_t nheaps;
	uint32_t id;
	uint32_t region;          /* region id */
	uint32_t gen;             /* the region's generation when created */
	struct hl_task *task;
	/* accounting, relaxed atomics */
	uint64_t backed;          /* span and large bytes */
	uint64_t live_bytes, live_blocks, superblocks;
} sb_arena_t;

extern HL_HIDDEN sb_arena_t *sb_arenas[HL_MAX_ARENAS];
extern HL_HIDDEN uint32_t sb_narenas;
static inline sb_arena_t *sb_arena(unsigned id) { return lf_load_acquire(&sb_arenas[id]); }
sb_arena_t *sb_arena_new(uint32_t region, struct hl_task *task);

void sb_init(void);
unsigned sb_heap_count(void);
unsigned sb_heap_pick(void);
/* Take up to want blocks of class cls for heap h; returns how many (0 only
 * when the OS refused memory). */
unsigned sb_alloc_batch(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			unsigned want);
unsigned sb_alloc_batch_err(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			    unsigned want, int *err);
/* Give back n blocks of one class, in any order, from any superblocks. */
void sb_free_batch(unsigned cls, void **blocks, unsigned n, const char *call);
/* Retire every fully free superblock found on the partial lists. */
size_t sb_sweep(sb_arena_t *a);
size_t sb_sweep_all(void);   /* every arena, with the heaps' slots (trim, tests) */
size_t sb_sweep_arena(sb_arena_t *a, bool slots);
/* Retire a superblock found by scanning the page map (region reset: no
 * other thread may hold it). */
void sb_force_retire(hl_desc_t *d);
uint64_t sb_link_key(void);
#ifdef HL_TEST_HOOKS
hl_desc_t *sb_test_new(unsigned h, unsigned cls);
void sb_test_list(hl_desc_t *d);
hl_desc_t *sb_test_unlist(unsigned cls);
unsigned sb_test_pop(hl_desc_t *d, void **out, unsigned want, bool *full);
void sb_test_retire(hl_desc_t *d);
uint32_t sb_test_count(hl_desc_t *d);
int desc_page_released(uint32_t pg);
#endif

/* ---- regions and tasks (region.c) ------------------------------------- */
/* Spans for superblocks of arena a (region != 0): a span token (pm span
 * index, or for pool regions 0) and its base; NULL base with *err set
 * (HL_ENOMEM past capacity or quota, HL_EPERM when pages cannot be
 * locked). */
char *rg_span_get(sb_arena_t *a, unsigned order, uint32_t *span, int *err);
void rg_span_put(sb_arena_t *a, char *base, uint32_t span, unsigned order);
/* A small block of a non-default arena, freed from anywhere. */
void rg_free_small(void *p, uint64_t w, const char *call);
/* A large block tagged with arena id was unmapped: account it. */
void rg_large_freed(unsigned arena, void *p, size_t len);
/* Threads of tasks other than the default: allocation and its routing. */
void *rg_task_alloc(size_t size, size_t align, bool zero);
void rg_thread_exit(void);
void rg_fire_events(void);
/* Arena id of the block at p (0 for malloc's), or -1 if heaplib does not
 * know p as a block. */
int rg_arena_id_of(const void *p);
/* realloc of a block of arena (not 0): the new block is in the same arena. */
void *rg_realloc(void *p, unsigned arena, size_t old, size_t size);
/* Sweep a region arena (trim), counted in the region's inflight so that a
 * delete or reset never runs under it. */
size_t rg_sweep(sb_arena_t *a);
void rg_init(void);
extern __thread struct hl_task *hl_cur_task HL_HIDDEN __attribute__((tls_model("initial-exec")));

/* ---- thread and transfer caches ---------------------------------------- */
typedef struct tc_bin {
	uint32_t n, cap;     /* owner thread only */
	void **slots;
} tc_bin_t;

typedef struct hl_tcache {
	tc_bin_t bin[HL_NCLASSES];
	uint32_t heap;       /* heap shard this thread allocates from */
	uint32_t id;         /* 1-based index in the cache pool */
	uint32_t link;       /* pool free-stack link */
	uint32_t last_ms;    /* last slow path, for the idle flush */
	int64_t bytes;       /* bytes in the bins as of the last slow path */
	void *store[];       /* the bins' slots */
} hl_tcache_t;

extern __thread hl_tcache_t *hl_tc HL_HIDDEN __attribute__((tls_model("initial-exec")));

void tc_init(void);
void *tc_alloc_slow(unsigned cls);
void tc_free_slow(void *p, unsigned cls);
void tc_thread_flush(void);
void tc_exit_hook_ensure(void);
void tc_drain_transfer(void);
bool tc_in_thread_cache(void *p, unsigned cls);
void tc_detach(void);   /* flush and give back this thread's cache (task join) */

/* ---- large allocations ------------------------------------------------- */
void large_init(void);
void *large_alloc(size_t size, size_t align, bool zero);
/* A large block for arena (not 0): its own mapping, tagged in the range
 * table, never cached; secure ones locked and kept out of dumps. */
void *large_alloc_arena(size_t size, size_t align, bool zero, unsigned arena,
			bool secure, int *err);
/* Arena of the large block at p (0: default), or -1 if p is not one. */
int large_arena_of(const void *p);
/* Unmap every large block of the arenas for which pick(arena) is true. */
size_t large_reset(bool (*pick)(unsigned arena, void *ctx), void *ctx);
/* 1 and *size if p starts a large block, 0 if it is unknown, -1 (and
 * *start) if it lies inside one. */
int large_lookup(const void *p, size_t *size, uintptr_t *start);
void large_free(void *p, const char *call);
void *large_realloc(void *p, size_t size);
size_t large_trim(bool all);

/* ---- OS, errors, clock ------------------------------------------------- */
void *os_map(size_t size);                 /* RW, NORESERVE; NULL on failure */
void *os_map_aligned(size_t size, size_t align);
void os_unmap(void *p, size_t size);
void os_purge(void *p, size_t size);       /* MADV_DONTNEED */
void os_release(void *p, size_t size);     /* PROT_NONE, memory freed */
bool os_recommit(void *p, size_t size);    /* back to RW after os_release */
uint32_t os_now_ms(void);
unsigned os_ncpu(void);
uint64_t os_random64(void);

__attribute__((noreturn)) void hl_fatal(const char *call, const void *ptr,
					const char *reason);
__attribute__((noreturn)) void hl_fatal_assert(const char *expr,
					       const char *file, int line);
/* Writes msg to stderr with write(2); no allocation. */
void hl_write_err(const char *msg);

/* ---- global state ------------------------------------------------------ */
typedef struct hl_config {
	uint32_t decay_ms;        /* HEAPLIB_DECAY_MS */
	uint64_t cache_budget;    /* HEAPLIB_CACHE_BUDGET: bytes, all caches */
	uint32_t idle_ms;         /* HEAPLIB_IDLE_MS */
	uint32_t heaps;           /* HEAPLIB_HEAPS: 0 = 4 per CPU */
	bool check;               /* HEAPLIB_CHECK: no caches, junk, full checks */
} hl_config_t;

extern HL_HIDDEN hl_config_t hl_config;
extern HL_HIDDEN uint64_t hl_key;           /* per-process random: marks freed blocks */
extern HL_HIDDEN int hl_inited;

void hl_init_slow(void);
static inline void hl_ensure_init(void)
{
	if (HL_UNLIKELY(lf_load_acquire(&hl_inited) != 2))
		hl_init_slow();
}

/* ---- statistics counters (relaxed) ------------------------------------- */
typedef struct hl_counters {
	uint64_t sb_created, sb_retired, desc_live, desc_retired, desc_freed;
	uint64_t desc_pages_mapped, desc_pages_released;
	uint64_t bytes_purged, spans_cached, large_live, large_bytes;
	uint64_t tcache_bytes, transfer_bytes, threads_live, reserved;
	uint64_t span_slots_used;
	uint64_t sb_live_cls[HL_NCLASSES];  /* superblocks not retired, per class */
} hl_counters_t;
extern HL_HIDDEN hl_counters_t hl_ctr;
#define HL_CTR_ADD(f, v) ((void)lf_fetch_add_relaxed(&hl_ctr.f, (uint64_t)(v)))
#define HL_CTR_SUB(f, v) ((void)lf_fetch_sub_relaxed(&hl_ctr.f, (uint64_t)(v)))

/* ---- allocation entry points shared by alloc.c and override.c ---------- */
void *hl_alloc_impl(size_t size, const char *call);
void hl_free_impl(void *p, const char *call);
size_t hl_usable_impl(const void *p, const char *call);

#endif
