/*
 * policy/: regions, tasks and where a block goes (DESIGN.md sections 4
 * and 6).  The rule of this folder: its files call core/, mem/, base/ and
 * lf/, and each other only along place -> task -> region (and, later,
 * mig/ -> place); never api/.  The exported hl_region_*, hl_task_* names
 * live here and call hl_ensure_init (the one listed exception).
 *
 *   region.c  region life (create, delete, reset), attributes, watermarks
 *             and their events, the teardown handshake, region statistics
 *   task.c    tasks: life, joining, statistics; the (task, region) ->
 *             arena map
 *   place.c   placement: the fallback list of qualifying regions,
 *             allocation in one region, the slow paths of task threads,
 *             frees of blocks of other arenas
 */
#ifndef HL_POLICY_H
#define HL_POLICY_H

#include "core/core.h"

enum region_state {
	REGION_FREE = 0, REGION_CREATING, REGION_ALIVE, REGION_DELETING,
	REGION_RESETTING
};

#define TASK_EVENTS 64u     /* move events a task keeps until its threads poll */

enum task_state {
	TASK_DEAD = 0,       /* destroyed: its blocks stay valid */
	TASK_ALIVE = 1,
	TASK_DESTROYING = 2, /* hl_task_destroy is checking for threads */
	TASK_CLAIMED = 3,    /* being set up or taken over for reuse */
};

#define REGION_REACH_ALL (HL_REACH_SYS | HL_REACH_DMA | HL_REACH_CLUSTER | HL_REACH_CPU)

struct hl_region {
	uint32_t state;               /* enum region_state */
	uint32_t id;
	uint32_t gen;                 /* bumped at delete: old arenas retire */
	char name[32];
	unsigned reach;
	int node;
	bk_t *bk;                     /* backing, capacity, secure: mem/backing.c */
	uint64_t wmin, wlow, whigh;
	hl_notify_fn notify;
	void *notify_arg;
	/* accounting (relaxed, except inflight) */
	uint64_t inflight;
	uint64_t live_bytes, live_blocks, allocs, frees;
	uint64_t ev_low, ev_high;
	uint32_t below_low;
	uint32_t inherited;           /* fork child: a shared heap the parent manages */
	int relieve;                  /* watermark relief by the coordinator */
} lf_cacheline_aligned;

struct hl_task {
	uint32_t state;               /* enum task_state */
	uint32_t id;
	char name[32];
	hl_budget_t budget;           /* bytes backed for it, and its quota */
	int secure;
	uint64_t allowed;             /* bit per region id */
	bool some_regions;            /* allowed was a list: check allowed_gen */
	uint32_t allowed_gen[HL_MAX_REGIONS];  /* each allowed region's life */
	sb_arena_t *arena[HL_MAX_REGIONS];
	uint64_t threads, live_bytes, live_blocks;
	/* The coordinator's: share limit, move events (one producer, the
	 * coordinator; any of the task's threads consumes). */
	uint32_t share_region;        /* region id + 1; 0: no share limit */
	uint64_t share_limit;
	hl_move_fn on_move;
	void *on_move_arg;
	uint64_t ev_head, ev_tail;    /* events written, events taken */
	uint32_t ev_lost;
	struct { uint32_t from, to; uint64_t bytes; } ev[TASK_EVENTS];
};

/* ---- region.c ----------------------------------------------------------- */
extern HL_HIDDEN struct hl_region region_tab[HL_MAX_REGIONS];
static inline struct hl_region *region_at(uint32_t id) { return &region_tab[id]; }
void region_init(void);
bool region_handle_ok(const hl_region_t *r);
/* The allocation side of the teardown handshake: count the caller in the
 * region's inflight, then say whether the region is alive.  Every
 * region_enter is paired with a region_leave, alive or not. */
bool region_enter(struct hl_region *r);
void region_leave(struct hl_region *r);
/* Whether a is an arena of r's current life (not default, same gen). */
bool region_arena_ok(const sb_arena_t *a, const struct hl_region *r);
/* Live bytes and blocks of arena a in region r changed. */
void region_live(struct hl_region *r, sb_arena_t *a, int64_t bytes, int64_t blocks);
/* A superblock's live bytes and blocks moved from arena `from` of region
 * fr to arena `to` of region tr (the coordinator). */
void region_live_move(struct hl_region *fr, sb_arena_t *from, struct hl_region *tr,
		      sb_arena_t *to, int64_t bytes, int64_t blocks);
/* Take off *bytes and *blocks (live as the books count them) what the
 * task caches matching f hold: the bytes the program holds. */
void region_live_held(const tk_filter_t *f, uint64_t *bytes, uint64_t *blocks);
/* A large block of arena (not 0) was taken out of the range table: wipe
 * it if secure, take it off the books (the caller unmaps it). */
void region_large_freed(unsigned arena, void *p, size_t len);
/* Sweep a region arena (trim), inside the region's teardown handshake. */
size_t region_sweep(sb_arena_t *a);
/* Decay's sweep hook (registered at start): every region arena unused
 * for HEAPLIB_DECAY_MS gives back its empty superblocks. */
void region_decay(uint32_t now);
/* Fork child step (registered at start): no thread of the parent is
 * inside a region any more, and a memfd region's heap is the parent's. */
void region_fork_child(void);
/* Registered at start (api/init.c) as mem/backing.c's level hook. */
void region_level_changed(bk_t *bk);
/* Tell the calling thread's pending watermark crossings (outside every
 * internal structure: the callbacks may allocate). */
void region_fire_events(void);
/* The calling thread (the coordinator) runs no callbacks: the watermark
 * crossings it causes are handed to the next thread that fires events. */
void region_defer_events(void);
/* Registered hook: told of every crossing as it happens, on the thread
 * that crossed (the coordinator's wake-up, policy/mig/); NULL: none. */
void region_set_watermark_hook(void (*fn)(struct hl_region *r, hl_region_event_t ev));

/* Registered by the coordinator (policy/mig/): created is told of every
 * region made (it starts the coordinator); evacuate moves every
 * superblock out of region id (dry: only says whether it could), the
 * bytes moved in *moved.  Without them, a region that holds blocks
 * cannot be deleted. */
void region_set_mig_hooks(void (*created)(void),
			  int (*evacuate)(uint32_t id, bool dry, uint64_t *moved));

/* ---- task.c ------------------------------------------------------------- */
extern __thread struct hl_task *hl_cur_task HL_HIDDEN HL_TLS;
void task_init(void);
struct hl_task *task_cur(void);          /* the default task if none joined */
bool task_is_default(const struct hl_task *t);
/* The arena of (t, r) for one allocation: made on first use (or, when
 * every arena id is spent, taken over from a pair that holds nothing),
 * counted in its users until task_arena_done; NULL when none can be had. */
sb_arena_t *task_arena_use(struct hl_task *t, struct hl_region *r);
void task_arena_done(sb_arena_t *a);
void task_thread_exit(void);             /* thread-exit callback */
/* The coordinator moved bytes of t's memory from region `from` to `to`
 * (coordinator only). */
void task_note_move(struct hl_task *t, uint32_t from, uint32_t to, uint64_t bytes);
/* Run the calling thread's task's pending move events (outside every
 * internal structure); returns how many ran. */
int task_fire_events(void);
/* fn on the default task and every live task (statistics). */
void task_each(void (*fn)(struct hl_task *t, void *ctx), void *ctx);

/* ---- place.c ------------------------------------------------------------ */
/* Allocate under a placement for the calling thread's task.  dflt serves
 * the default task on the default region (the thread-cached path, from
 * api/); it keeps errno. */
typedef void *(*place_dflt_fn)(size_t size, size_t align);
int place_alloc(size_t size, size_t align, const hl_place_t *place,
		unsigned flags, void **out, place_dflt_fn dflt);
/* malloc and friends in a thread of a task other than the default: NULL
 * and ENOMEM on failure. */
void *place_task_alloc(size_t size, size_t align, bool zero);
/* A new block for realloc of p (arena not 0) in the same arena, with p's
 * bytes; the caller frees p.  NULL and ENOMEM (p untouched) on failure. */
void *place_realloc(void *p, unsigned arena, size_t old, size_t size);
/* A small block of a non-default arena, freed from anywhere. */
void place_free_small(void *p, uint64_t w, const char *call);
/* Registered hook: asked when every qualifying region refused memory
 * (HL_ENOMEM) before the allocation fails, with the first of them; returns
 * HL_OK to have placement try once more (memory was moved out of it: the
 * coordinator's OOM resolution, policy/mig/), HL_EAGAIN (HL_NOWAIT: a
 * migration was asked for, not waited for), or HL_ENOMEM.  NULL: none. */
typedef int (*place_fail_fn)(size_t size, size_t align, unsigned need,
			     unsigned flags, uint32_t region);
void place_set_fail_hook(place_fail_fn fn);

#endif
