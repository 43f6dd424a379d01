/*
 * heaplib's shared types: the structs that more than one layer reads, the
 * geometry they are built on, and the slot-record codec.  No prototypes:
 * each function is declared in the umbrella header of its layer
 * (base/base.h, mem/mem.h, core/core.h, policy/policy.h, api/api.h).
 *
 * Map of the core types (DESIGN.md sections 1-3):
 *
 *   chunk (1 GiB of reserved address space)
 *     └─ slot (64 KiB) ── slot record (pm_slot_t, 16 bytes): one 64-bit
 *          word read on free() {descriptor index, size class, slot offset
 *          in its superblock, kind, arena}, a link for the span caches and
 *          a stamp for decay.
 *   superblock = a span of 1, 2, 4 or 8 slots, holding blocks of one class.
 *   descriptor (hl_desc_t, 64 B, in the descriptor arena) = one
 *     superblock's metadata; its anchor {count, state, tag} is
 *     changed only by CAS.
 *   arena (sb_arena_t) = the superblocks of one (task, region) pair: heap
 *     shards with per-class `active` and `partial` slots (ownership
 *     tokens) and per-class partial lists.
 *   account (hl_account_t) = what an arena draws on: a backing (bk_t, one
 *     per region: capacity, pool) and a budget (the task's quota).
 *   thread cache (hl_tcache_t): per class a stack of block pointers and
 *     its class's interior-check constants; hl_tc never NULL (tc_none).
 */
#ifndef HL_TYPES_H
#define HL_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "atomic.h"
#include "tstack.h"
#include "hp.h"
#include "heaplib.h"

/* ---- attributes --------------------------------------------------------- */
#define HL_EXPORT __attribute__((visibility("default")))
/* Internal data: hidden, so the library reaches it without the GOT. */
#define HL_HIDDEN __attribute__((visibility("hidden")))
#define HL_LIKELY(x) __builtin_expect(!!(x), 1)
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HL_NOINLINE __attribute__((noinline))
#define HL_COLD __attribute__((cold, noinline))
#define HL_TLS __attribute__((tls_model("initial-exec")))

/* ---- geometry ----------------------------------------------------------- */
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
#define HL_GRANULE_SHIFT 4            /* blocks start on 16-byte granules */
#define HL_BITS_PER_SLOT (HL_SLOT_SIZE >> HL_GRANULE_SHIFT)   /* free bits: 4096 */

/* ---- limits ------------------------------------------------------------- */
#define HL_MAX_HEAPS 64u
#define HL_MAX_ARENAS 4096u
#define HL_MAX_REGIONS 64u

/* ---- size classes ------------------------------------------------------- */
#define HL_SMALL_MAX 32768u
#define HL_NCLASSES 40
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
	uint32_t least;     /* smallest size sc_of maps here: the class below + 1 */
	uint64_t divm;      /* UINT64_MAX / size + 1: divisibility by multiply */
} sc_info_t;

/* ---- anchor ------------------------------------------------------------- */
/* {count, state, epoch, spare, tag}: widths stated here, checked in
 * core/sb.c.  A superblock's free blocks are its free bits (mem/mem.h)
 * plus the run past its bump; the anchor keeps only how many there are.
 * The epoch bit flips when the coordinator moves the superblock to another
 * arena: a free learns from its own CAS which arena it freed into
 * (hl_desc_t.arena).  The spare bits are always zero: no code reads them. */
#define HL_ANCHOR_COUNT_BITS 13
#define HL_ANCHOR_STATE_BITS 2
#define HL_ANCHOR_EPOCH_BITS 1
#define HL_ANCHOR_SPARE_BITS 16
#define HL_ANCHOR_TAG_MAX_BITS \
	(64 - HL_ANCHOR_COUNT_BITS - HL_ANCHOR_STATE_BITS - HL_ANCHOR_EPOCH_BITS - \
	 HL_ANCHOR_SPARE_BITS)
#define HL_ANCHOR_TAG_BITS \
	(HL_TAG_BITS < HL_ANCHOR_TAG_MAX_BITS ? HL_TAG_BITS : HL_ANCHOR_TAG_MAX_BITS)
#define HL_ANCHOR_COUNT_MAX ((1u << HL_ANCHOR_COUNT_BITS) - 1u)

enum sb_state {
	SB_ACTIVE = 0,  /* in someone's hands: a heap slot, a list, a thread */
	SB_FULL = 1,    /* no free block when its owner let go; nobody has it */
	SB_RETIRED = 2, /* unlinked everywhere, handed to the hazard domain */
};

/* ---- descriptors -------------------------------------------------------- */
typedef struct hl_desc {
	uint64_t anchor;        /* atomic; see the anchor helpers in core/sb.c */
	uint32_t plist_link;    /* partial-list link (tagged stack) */
	uint32_t idx;           /* own index in the descriptor arena */
	char *base;             /* superblock start */
	uint16_t cls;
	uint16_t maxcount;
	uint16_t cursor;        /* owner's hint (relaxed): the free-bit word
				 * its last refill stopped at */
	uint16_t idle;          /* decay passes that found it listed and not
				 * popped since (relaxed; core/sb.c) */
	uint32_t listed;        /* test builds: 1 while on a partial list */
	uint32_t arena;         /* atomic: arena id (task, region) in bits
				 * 0-15, the one before the last move in
				 * 16-30, and in bit 31 the anchor epoch that
				 * goes with bits 0-15 (desc_arena_id) */
	lf_hp_node_t hp;        /* retire link */
	uint32_t span;          /* span index (first slot, 1-based) */
	uint32_t nslots;
	uint32_t need;          /* constraints of every block it served:
				 * reach bits | HL_NEED_SECURE | HL_NEED_PINNED */
	uint32_t bump;          /* owner only: blocks from here on were never
				 * handed out (free, with no free bit) */
} hl_desc_t;

/* What a superblock's blocks were allocated under (hl_desc_t.need): where
 * it may legally move is a region whose reach contains the reach bits,
 * secure if HL_NEED_SECURE, and nowhere if HL_NEED_PINNED. */
#define HL_NEED_SECURE 0x100u
#define HL_NEED_PINNED 0x200u

#define HL_DESC_SHIFT 6
#define HL_DESC_PER_PAGE (HL_PAGE >> HL_DESC_SHIFT)   /* 64: one mask word */
#define HL_DESC_PAGES 32768u                           /* 2M descriptors */

/* ---- the slot record (page map) ---------------------------------------- */
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

/* What backs a live span, beside its slot records (mem/pagemap.c keeps
 * one word per slot, read on the span's first slot; never on free's
 * path): 0 the reservation's own anonymous mapping; PM_BACK_ANON private
 * anonymous memory in a mapping of its own (a span moved off a memfd);
 * else memfd offset `unit` (in 64 KiB slots) of backing `id`. */
#define PM_BACK_ANON 0x7fu
#define PM_BACK(id, unit) (((uint32_t)(id) + 1u) | ((uint32_t)(unit) << 7))
#define PM_BACK_IS_FD(v) ((v) != 0 && ((v) & 0x7fu) != PM_BACK_ANON)
#define PM_BACK_ID(v) (((v) & 0x7fu) - 1u)
#define PM_BACK_UNIT(v) ((v) >> 7)
#define PM_BACK_UNITS_MAX (1u << 25)   /* offsets: 2 TiB of a memfd */

/* ---- backings, budgets, accounts (mem/backing.c) ----------------------- */
/* A memfd offset unit (64 KiB) of a MEMFD backing: its free-stack link,
 * and while it starts a live span, that span's address and order. */
typedef struct bk_unit {
	uint32_t link;
	uint32_t order;
	char *base;
} bk_unit_t;

/* What backs one region's spans.  ANON and MEMFD spans come from the
 * reservation: ANON keeps its anonymous memory, MEMFD maps an offset of
 * its memfd over the span (offsets from `units`, free stacks per order).
 * HUGETLB and BUFFER are pools: one mapping of `capacity` bytes made (or
 * given) at setup, carved into 64 KiB slots with slot records of their
 * own.  One per region id, type-stable. */
typedef struct bk {
	uint32_t id;                  /* = the region id */
	hl_backing_t kind;
	int secure;                   /* locked, out of dumps, wiped */
	uint64_t capacity;            /* bytes it may back; 0: unbounded */
	char *pool;                   /* pools: [pool, pool + pool_len) holds
				       * the spans; MEMFD: a shared view of
				       * the whole memfd (the target of the
				       * copies of backing moves) */
	size_t pool_len;
	int fd;                       /* MEMFD's memfd */
	bk_unit_t *units;             /* MEMFD: pool_len >> 16 of them */
	uint32_t pool_next;           /* units bump-allocated from here */
	lf_tstack_t pool_free[HL_SPAN_ORDERS];   /* unit (slot) index + 1 */
	uint64_t backed, superblocks; /* relaxed */
	int shared;                   /* MEMFD made to be shared with other
				       * processes: a fork child keeps its hands
				       * off (else it gets a private copy) */
} bk_t;

/* A bound on bytes backed that is not a region's: a task's quota. */
typedef struct hl_budget {
	uint64_t used;                /* relaxed; changed by bounded CAS */
	uint64_t limit;               /* 0: none */
} hl_budget_t;

/* What one arena draws on and holds. */
typedef struct hl_account {
	bk_t *bk;                     /* its region's backing */
	hl_budget_t *budget;          /* its task's quota; NULL for arena 0's,
				       * which charges only `backed` */
	uint64_t backed;              /* span and large bytes (relaxed) */
} hl_account_t;

/* ---- arenas and heaps (core/arena.c) ----------------------------------- */
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
	hl_account_t acct;
	uint32_t last_ms;         /* region arenas: last allocation (decay) */
	uint32_t users;           /* allocations using it now (task.c) */
	uint32_t claim;           /* 1 while a reclaim looks at it (task.c) */
	/* accounting, relaxed atomics */
	uint64_t live_bytes, live_blocks, superblocks;
} sb_arena_t;

/* ---- thread caches (core/tcache.c) ------------------------------------- */
/* A task cache's bin (core/tkcache.c): a count and an array. */
typedef struct tc_bin {
	uint32_t n, cap;     /* owner thread only */
	void **slots;
} tc_bin_t;

/* A thread cache's bin: a stack of block pointers from low up to top,
 * and its class's interior-pointer constants (sc_checks' copy), so that
 * free's fast path reads one 32-byte line of the cache for the check and
 * the push.  Pointers rather than counts: malloc pops with `top != low`
 * and `--top`.  The bin has no upper bound of its own: the slot past
 * its last holds TC_FULL, which no block pointer equals, so free's push
 * tests `*top != TC_FULL`.  32 bytes: the fast path reaches bin[cls]
 * with the class times 16 that the slot record gives, doubled by the
 * address mode. */
typedef struct tc_fbin {
	void **top;          /* owner thread only */
	void **low;          /* the bin's first slot */
	uint64_t divm;       /* sc_checks[cls]: sc_is_block's constants */
	uint64_t bound;
} tc_fbin_t;
#define TC_FULL ((void *)1)

/* The thread cache.  hl_tc is never NULL: a thread without one (not yet
 * made, exited, of another task, HEAPLIB_CHECK) points at tc_none, whose
 * bins are empty and full at once and whose check constants pass no
 * offset (free then checks again with sc_checks, out of line), so each
 * fast path has no test of the pointer. */
typedef struct hl_tcache {
	tc_fbin_t bin[HL_NCLASSES];
	uint32_t heap;       /* heap shard this thread allocates from */
	uint32_t id;         /* 1-based index in the cache pool */
	uint32_t link;       /* pool free-stack link */
	uint32_t last_ms;    /* last slow path, for the idle flush */
	int64_t bytes;       /* bytes in the bins as of the last slow path */
	void *store[];       /* the bins' slots, each bin's followed by TC_FULL */
} hl_tcache_t;

/* ---- configuration and counters (base/) -------------------------------- */
typedef struct hl_config {
	uint32_t decay_ms;        /* HEAPLIB_DECAY_MS */
	uint64_t cache_budget;    /* HEAPLIB_CACHE_BUDGET: bytes, all caches */
	uint32_t idle_ms;         /* HEAPLIB_IDLE_MS */
	uint32_t heaps;           /* HEAPLIB_HEAPS: 0 = 4 per CPU */
	bool check;               /* HEAPLIB_CHECK: no caches, junk, full checks */
	bool stats;               /* HEAPLIB_STATS: statistics to stderr at exit */
	int stats_fd;             /* stderr as it was at start (a program may close it) */
	bool verbose;             /* HEAPLIB_VERBOSE: options at start, warnings */
	uint32_t small_max;       /* blocks above this get a mapping (mallopt) */
	uint32_t migrate_wait_ms; /* HEAPLIB_MIGRATE_WAIT_MS: an allocation's wait
				   * for the migration it asked for */
	bool no_uffd;             /* HEAPLIB_NO_UFFD: backing moves refused */
	uint64_t uffd_features;   /* HEAPLIB_UFFD_FEATURES: userfaultfd features
				   * heaplib may ask for (a mask) */
} hl_config_t;

typedef struct hl_counters {
	uint64_t sb_created, sb_retired, desc_live, desc_retired, desc_freed;
	uint64_t desc_pages_mapped, desc_pages_released;
	uint64_t bytes_purged, spans_cached, large_live, large_bytes;
	uint64_t tcache_bytes, transfer_bytes, threads_live, reserved;
	uint64_t span_slots_used;
	uint64_t large_cached;              /* freed large bytes kept warm */
	uint64_t own_maps;                  /* kernel mappings heaplib split off
					     * for spans (memfd, moved): an
					     * upper bound, 2 a span */
	uint64_t span_moves, span_moves_refused;   /* backing moves */
	uint64_t move_reserve;              /* bytes kept ready as move
					     * targets (mem/rebind.c) */
	uint64_t sb_live_cls[HL_NCLASSES];  /* superblocks not retired, per class */
} hl_counters_t;

#endif
