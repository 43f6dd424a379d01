/*
 * core/: Michael's allocator core, the caches in front of it and the
 * purging policy.  The rule of this folder: its files call mem/, base/ and
 * lf/, and each other only along tcache -> sb -> arena, tcache -> decay
 * -> sb and tcache -> tkcache -> sb, arena, decay (src/layers.conf); never
 * policy/ or api/.
 *
 *   arena.c   arenas (the superblocks of one (task, region) pair), heap
 *             shards with their active/partial slots, partial lists
 *   sb.c      superblocks: anchors, birth and retirement, popping batches
 *             (owner only) and pushing frees (anyone), sweeping
 *   tcache.c  thread caches (the fast path's arrays) and transfer caches
 *   tkcache.c task caches: the thread caches of other tasks' threads
 *   decay.c   when to purge: the clock that gives back cached spans,
 *             free pages of idle superblocks and large mappings
 *
 * The name marker `_owned`: only the thread holding the superblock (it
 * took the descriptor out of a heap slot or a partial list, or made it)
 * may call the function, and it must still hold it.
 */
#ifndef HL_CORE_H
#define HL_CORE_H

#include "mem/mem.h"

/* ---- arena.c ------------------------------------------------------------ */
extern HL_HIDDEN sb_arena_t *sb_arenas[HL_MAX_ARENAS];
extern HL_HIDDEN uint32_t sb_narenas;
static inline sb_arena_t *sb_arena(unsigned id) { return lf_load_acquire(&sb_arenas[id]); }
void arena_init(void);
/* A new arena with one heap drawing on account (bk, budget); NULL when
 * the table (HL_MAX_ARENAS ids) or the OS is out, and then no id is
 * spent. */
sb_arena_t *arena_new(uint32_t region, struct hl_task *task, bk_t *bk,
		      hl_budget_t *budget);
#ifdef HL_TEST_HOOKS
void arena_test_seed(uint32_t n);      /* pretend n ids are taken */
void arena_test_fail_map(int on);      /* arena_new's mapping fails */
#endif
unsigned sb_heap_count(void);
unsigned sb_heap_pick(void);
/* Partial lists.  Any thread; linearize on the list head's CAS.
 * arena_unlist pops under a hazard: NULL when the list is empty or the
 * thread has no hazard record. */
void arena_list(hl_desc_t *d);
hl_desc_t *arena_unlist(sb_arena_t *a, unsigned cls);
/* Arena id of the block at p (0 for malloc's), or -1 if heaplib does not
 * know p as a block. */
int arena_id_of(const void *p);

/* ---- sb.c --------------------------------------------------------------- */
/* Take up to want blocks of class cls for heap h; returns how many (0 only
 * when memory was refused, the reason in *err). */
unsigned sb_alloc_batch(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			unsigned want);
unsigned sb_alloc_batch_err(sb_arena_t *a, unsigned h, unsigned cls, void **out,
			    unsigned want, int *err);
/* Give back n blocks of one class, in any order, from any superblocks. */
void sb_free_batch(unsigned cls, void **blocks, unsigned n, const char *call);
/* The same, telling book(arena, blocks, ctx) after each superblock's push
 * which arena it landed in (a move may retag a superblock at any moment:
 * the caller's books go to that arena). */
typedef void (*sb_book_fn)(unsigned arena, unsigned blocks, void *ctx);
void sb_free_batch_booked(unsigned cls, void **blocks, unsigned n, const char *call,
			  sb_book_fn book, void *ctx);
/* Free one block p of class cls; returns the arena its superblock
 * belonged to at the push (a move may retag it at any moment: the
 * caller's accounting goes to that arena). */
unsigned sb_free_one(unsigned cls, void *p, const char *call);
/* Moving a superblock (policy/mig/move.c).  sb_claim takes d from where
 * it waits (nobody holding it, a heap slot or the partial list of its
 * arena) so that the caller holds it; false when it is in another
 * thread's hands or retired (try again later).  The holder then retags
 * it to arena `to` (slot records and the anchor's epoch; returns the
 * blocks not free at the flip, cached ones included, whose accounting
 * moves with it) and lets go into its arena (listed, or FULL). */
bool sb_claim(hl_desc_t *d);
uint32_t sb_free_count(const hl_desc_t *d);   /* free blocks now (a moment's) */
uint32_t sb_retag_owned(hl_desc_t *d, sb_arena_t *to);
void sb_release_owned(hl_desc_t *d);
/* Retire every fully free superblock on arena a's partial lists (and, with
 * slots, in its heaps' slots too); returns how many. */
size_t sb_sweep(sb_arena_t *a);
size_t sb_sweep_arena(sb_arena_t *a, bool slots);
/* Decay, arena 0 only: each superblock on its partial lists that sat
 * there unpopped for SB_IDLE_PASSES calls (all: now) is retired if fully
 * free, and otherwise gives back the pages only its free blocks cover.
 * Returns the bytes given back.  Any thread (core/decay.c's). */
size_t sb_decay(bool all);
/* Region reset: take every superblock of a out of its heap slots and
 * partial lists (nobody else may use a meanwhile); they are then found by
 * scanning the page map and retired with sb_force_retire_owned. */
void sb_arena_drop_all(sb_arena_t *a);
/* Retire a superblock found by scanning the page map, its blocks all
 * dropped at once (region reset: no other thread may hold it); r is the
 * caller's hazard record, had before the reset changed anything. */
void sb_force_retire_owned(hl_desc_t *d, lf_hp_rec_t *r);
#ifdef HL_TEST_HOOKS
hl_desc_t *sb_test_new(unsigned h, unsigned cls);
void sb_test_list(hl_desc_t *d);
hl_desc_t *sb_test_unlist(unsigned cls);
bool sb_test_take(hl_desc_t *d);   /* d off arena 0's list, others left */
unsigned sb_test_pop(hl_desc_t *d, void **out, unsigned want, bool *full);
void sb_test_retire(hl_desc_t *d);
size_t sb_test_purge(hl_desc_t *d);   /* d's free pages, now (owner) */
uint32_t sb_test_count(hl_desc_t *d);
#endif

/* ---- tcache.c ----------------------------------------------------------- */
/* The calling thread's cache, never NULL: tc_none when it has none. */
extern __thread hl_tcache_t *hl_tc HL_HIDDEN HL_TLS;
extern HL_HIDDEN const hl_tcache_t tc_none;
/* The calling thread's cache, or NULL when it has none. */
static inline hl_tcache_t *tc_mine(void)
{
	hl_tcache_t *tc = hl_tc;
	return tc == &tc_none ? NULL : tc;
}
static inline unsigned tc_fbin_count(const tc_fbin_t *b)
{
	return (unsigned)(b->top - b->low);
}
/* A bin's capacity: twice its class's batch. */
static inline unsigned tc_fbin_cap(unsigned cls)
{
	return 2 * sc_table[cls].batch;
}

void tc_init(void);
void *tc_alloc_slow(unsigned cls);
void tc_free_slow(void *p, unsigned cls);
void tc_thread_flush(void);
void tc_thread_exit(void);   /* thread-exit callback */
void tc_drain_transfer(void);
bool tc_in_thread_cache(void *p, unsigned cls);
/* The thread goes on without a cache (it joined a task other than the
 * default): flush it and give it back.  tc_attach lets it have one again. */
void tc_detach(void);
void tc_attach(void);
/* Whether the caches together hold more than HEAPLIB_CACHE_BUDGET. */
static inline bool tc_over_budget(void)
{
	int64_t t = (int64_t)lf_load_relaxed(&hl_ctr.tcache_bytes) +
		    (int64_t)lf_load_relaxed(&hl_ctr.transfer_bytes);
	return t > (int64_t)hl_config.cache_budget;
}
static inline bool tc_bin_holds(const tc_bin_t *b, const void *p)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->slots[i] == p)
			return true;
	return false;
}
#ifdef HL_TEST_HOOKS
/* How many new thread caches may still be made (ids left in the pool);
 * the seed leaves `left` of them. */
void tc_test_seed_pool(uint32_t left);
int64_t tc_test_pool_left(void);
#endif

/* ---- tkcache.c ---------------------------------------------------------- */
/* The calling thread's task cache: blocks of one arena, which the caller
 * (policy/place.c) chose and accounted live as they left their
 * superblocks.  Owner thread only, except tk_cached. */
void tk_init(void);
/* Told of every block the cache puts back into its superblock (bytes and
 * blocks negative), after the push: the caller's books (registered by
 * policy/ at start). */
void tk_set_account_hook(void (*fn)(sb_arena_t *a, int64_t bytes, int64_t blocks));
/* sb_free_batch_booked's book for cached blocks of class *(unsigned *)ctx
 * going back to their superblocks: off the books of the arena each landed
 * in (none for arena 0).  Thread caches use it too: a superblock of
 * malloc's that the coordinator moved to a region is counted there. */
void tk_book_freed(unsigned arena, unsigned blocks, void *ctx);
/* A cached block of class cls (its free mark cleared), or NULL. */
void *tk_alloc(unsigned cls);
/* How many blocks of class cls a refill from arena a may bring (0: none,
 * and then the caller allocates without the cache); blocks of another
 * arena go back first. */
unsigned tk_want(sb_arena_t *a, unsigned cls);
/* The refill's blocks (no more than tk_want said). */
void tk_fill(unsigned cls, void *const *v, unsigned n);
/* Cache the freed block p of arena a (its free mark set); false when it
 * cannot be (no cache, over a bound): the caller frees it. */
bool tk_free(sb_arena_t *a, void *p, unsigned cls);
bool tk_holds(const void *p, unsigned cls);
/* Every block back into its superblock; tk_release also gives the cache
 * back (exiting: for good). */
void tk_flush(void);
void tk_release(bool exiting);
/* Bytes and blocks held by every thread's task cache whose arena matches
 * (arena 0, task NULL, region -1: any). */
typedef struct tk_filter {
	uint32_t arena;
	const struct hl_task *task;
	int region;
} tk_filter_t;
void tk_cached(const tk_filter_t *f, uint64_t *bytes, uint64_t *blocks);

/* ---- decay.c ------------------------------------------------------------ */
/* Cheap clock check on slow paths: every quarter of HEAPLIB_DECAY_MS, one
 * caller purges what has been unused that long. */
void decay_tick(void);
/* Registered hook, called by decay_tick with the clock: the regions'
 * arenas unused for HEAPLIB_DECAY_MS give back their empty superblocks. */
void decay_set_sweep_hook(void (*fn)(uint32_t now));
/* Purge everything cached now (trim); returns the bytes given back. */
size_t decay_purge_all(void);

#endif
