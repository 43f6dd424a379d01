/*
 * Regions (DESIGN.md section 4): life, attributes, watermarks, statistics.
 *
 * A region is a pool of memory with attributes; its spans come from its
 * backing (mem/backing.c, bk_tab[id]), its blocks from the arenas of the
 * (task, region) pairs that use it (policy/task.c).
 *
 * Deletion and reset: an allocation counts itself in the region's
 * `inflight` (seq_cst) and then checks the region is alive; delete and
 * reset first change the state, then wait for `inflight` to drain (those
 * allocations are lock-free, so they finish), so that no allocation starts
 * on a region being torn down and none is cut off in the middle.
 *
 * Watermark events are recorded where the crossing happens (the backing's
 * level hook) and told by the public call that caused it, once its work
 * is done (region_fire_events), outside every internal structure.
 * The coordinator's moves cross watermarks too, but the coordinator runs
 * no callback of the program's: its crossings are handed to whichever
 * thread next reaches region_fire_events (the hl_migrate, hl_task_migrate
 * or hl_region_delete that asked for the move, or any thread's next slow
 * path or hl_task_poll).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "policy/policy.h"

#define REGION_HUGE ((size_t)2 << 20)
/* hl_region_attr_t as the first header had it: the least a caller gives. */
#define REGION_ATTR_V1 (offsetof(hl_region_attr_t, notify_arg) + sizeof(void *))

struct hl_region region_tab[HL_MAX_REGIONS];
static __thread uint64_t region_pend_low, region_pend_high;
static __thread int region_in_notify;
static __thread int region_defers;   /* this thread runs no callbacks */
static uint64_t region_handed_low, region_handed_high;   /* by deferring threads */
static void (*region_wmark_hook)(struct hl_region *r, hl_region_event_t ev);
static void (*region_created_hook)(void);
static int (*region_evac_hook)(uint32_t id, bool dry, uint64_t *moved);

void region_set_mig_hooks(void (*created)(void),
			  int (*evacuate)(uint32_t id, bool dry, uint64_t *moved))
{
	region_created_hook = created;
	region_evac_hook = evacuate;
}

_Static_assert(HL_MAX_REGIONS <= 64, "one bit per region in a task's set");

void region_init(void)
{
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		region_tab[i].id = i;
		region_tab[i].bk = bk_at(i);
	}
	struct hl_region *r = &region_tab[0];
	memcpy(r->name, "default", 8);
	r->reach = HL_REACH_SYS;
	lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
}

bool region_handle_ok(const hl_region_t *r)
{
	uintptr_t a = (uintptr_t)r, b = (uintptr_t)region_tab;
	return a >= b && a < b + sizeof region_tab && (a - b) % sizeof(region_tab[0]) == 0;
}

/* ---- accounting and watermarks ------------------------------------------ */

void region_set_watermark_hook(void (*fn)(struct hl_region *r, hl_region_event_t ev))
{
	region_wmark_hook = fn;
}

void region_defer_events(void)
{
	region_defers = 1;
}

static void region_crossed(struct hl_region *r, hl_region_event_t ev)
{
	uint64_t bit = (uint64_t)1 << r->id;
	bool low = ev == HL_EVENT_LOW;
	lf_fetch_add_relaxed(low ? &r->ev_low : &r->ev_high, 1);
	if (region_defers)
		lf_fetch_or_acq_rel(low ? &region_handed_low : &region_handed_high, bit);
	else if (low)
		region_pend_low |= bit;
	else
		region_pend_high |= bit;
	if (region_wmark_hook)
		region_wmark_hook(r, ev);
}

static void region_check_wmark(struct hl_region *r)
{
	uint64_t cap = lf_load_relaxed(&r->bk->capacity);
	if (!cap || !(r->wlow | r->whigh))
		return;
	uint64_t backed = lf_load_relaxed(&r->bk->backed);
	uint64_t free = backed >= cap ? 0 : cap - backed;
	uint32_t bl = lf_load_relaxed(&r->below_low);
	if (!bl && free < r->wlow) {
		if (lf_cas_strong_acq_rel(&r->below_low, &bl, 1u))
			region_crossed(r, HL_EVENT_LOW);
	} else if (bl && free > r->whigh) {
		if (lf_cas_strong_acq_rel(&r->below_low, &bl, 0u))
			region_crossed(r, HL_EVENT_HIGH);
	}
}

void region_level_changed(bk_t *bk)
{
	region_check_wmark(&region_tab[bk->id]);
}

void region_fire_events(void)
{
	if (HL_LIKELY(!(region_pend_low | region_pend_high)) &&
	    HL_LIKELY(!(lf_load_relaxed(&region_handed_low) | lf_load_relaxed(&region_handed_high))))
		return;
	if (region_in_notify || region_defers)
		return;
	region_pend_low |= lf_exchange_acq_rel(&region_handed_low, 0);
	region_pend_high |= lf_exchange_acq_rel(&region_handed_high, 0);
	region_in_notify = 1;
	while (region_pend_low | region_pend_high) {
		bool low = region_pend_low != 0;
		uint64_t *set = low ? &region_pend_low : &region_pend_high;
		unsigned id = (unsigned)__builtin_ctzll(*set);
		*set &= *set - 1;
		struct hl_region *r = &region_tab[id];
		hl_notify_fn fn = r->notify;
		if (fn)
			fn(r, low ? HL_EVENT_LOW : HL_EVENT_HIGH, r->notify_arg);
	}
	region_in_notify = 0;
}

static void region_forget_events(const struct hl_region *r)
{
	uint64_t keep = ~((uint64_t)1 << r->id);
	region_pend_low &= keep;
	region_pend_high &= keep;
	lf_fetch_and_acq_rel(&region_handed_low, keep);
	lf_fetch_and_acq_rel(&region_handed_high, keep);
}

/* Live bytes and blocks onto (or, negative, off) the books of r, a and
 * a's task.  A free pushed its block before it comes here: the release
 * orders that push before the count a delete reads (acquire) as "nothing
 * live, every superblock back in an arena". */
static void region_books(struct hl_region *r, sb_arena_t *a, int64_t bytes, int64_t blocks)
{
	lf_fetch_add_relaxed(&r->live_bytes, (uint64_t)bytes);
	lf_fetch_add_acq_rel(&r->live_blocks, (uint64_t)blocks);
	lf_fetch_add_relaxed(&a->live_bytes, (uint64_t)bytes);
	lf_fetch_add_relaxed(&a->live_blocks, (uint64_t)blocks);
	lf_fetch_add_relaxed(&a->task->live_bytes, (uint64_t)bytes);
	lf_fetch_add_relaxed(&a->task->live_blocks, (uint64_t)blocks);
}

void region_live(struct hl_region *r, sb_arena_t *a, int64_t bytes, int64_t blocks)
{
	region_books(r, a, bytes, blocks);
	/* Blocks, not calls: a task cache takes and gives back batches. */
	lf_fetch_add_relaxed(blocks > 0 ? &r->allocs : &r->frees,
			     (uint64_t)(blocks > 0 ? blocks : -blocks));
}

/* Live bytes and blocks as the program holds them: what task caches hold
 * (counted live, DESIGN.md section 4) taken off. */
void region_live_held(const tk_filter_t *f, uint64_t *bytes, uint64_t *blocks)
{
	uint64_t cb, ck;
	tk_cached(f, &cb, &ck);
	*bytes = *bytes > cb ? *bytes - cb : 0;
	*blocks = *blocks > ck ? *blocks - ck : 0;
}

void region_live_move(struct hl_region *fr, sb_arena_t *from, struct hl_region *tr,
		      sb_arena_t *to, int64_t bytes, int64_t blocks)
{
	/* Into the target first: a delete of the source that reads its
	 * count falling to 0 finds the blocks counted somewhere.  Arena 0,
	 * malloc's own heap, keeps no books (its blocks are thread-cached
	 * and counted nowhere): its side of a move is left out. */
	if (to->id != 0)
		region_books(tr, to, bytes, blocks);
	if (from->id != 0)
		region_books(fr, from, -bytes, -blocks);
}

void region_large_freed(unsigned arena, void *p, size_t len)
{
	sb_arena_t *a = sb_arena(arena);
	struct hl_region *r = &region_tab[a->region];
	if (r->bk->secure)
		memset(p, 0, len);
	region_live(r, a, -(int64_t)len, -1);
	bk_unreserve(&a->acct, len);
}

/* ---- the teardown handshake --------------------------------------------- */

bool region_enter(struct hl_region *r)
{
	lf_fetch_add_seq_cst(&r->inflight, 1);
	return lf_load_seq_cst(&r->state) == REGION_ALIVE;
}

void region_leave(struct hl_region *r)
{
	lf_fetch_sub_release(&r->inflight, 1);
}

/* Enter a teardown state and wait for allocations in flight to finish
 * (they are lock-free: the wait is bounded by their steps). */
static int region_quiesce(struct hl_region *r, uint32_t to)
{
	uint32_t st = REGION_ALIVE;
	if (!lf_cas_strong_seq_cst(&r->state, &st, to))
		return st == REGION_DELETING || st == REGION_RESETTING ? HL_EBUSY : HL_EINVAL;
	while (lf_load_seq_cst(&r->inflight))
		sched_yield();
	return HL_OK;
}

bool region_arena_ok(const sb_arena_t *a, const struct hl_region *r)
{
	return a && a->id != 0 && a->region == r->id &&
	       lf_load_relaxed(&a->gen) == lf_load_relaxed(&r->gen);
}

/* Call fn on every arena of r's current life. */
static void region_each_arena(struct hl_region *r, void (*fn)(sb_arena_t *a))
{
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (region_arena_ok(a, r))
			fn(a);
	}
}

size_t region_sweep(sb_arena_t *a)
{
	struct hl_region *r = &region_tab[a->region];
	size_t n = 0;
	if (region_enter(r) && lf_load_relaxed(&a->gen) == lf_load_relaxed(&r->gen))
		n = sb_sweep_arena(a, true);
	region_leave(r);
	return n;
}

void region_decay(uint32_t now)
{
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (!a || !lf_load_relaxed(&a->superblocks) ||
		    now - lf_load_relaxed(&a->last_ms) < hl_config.decay_ms)
			continue;
		region_sweep(a);
	}
}

/* ---- fork --------------------------------------------------------------- */

void region_fork_child(void)
{
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		struct hl_region *r = &region_tab[i];
		/* Allocations that parent threads had in flight never end
		 * here: a delete or reset in the child must not wait for them. */
		lf_store_relaxed(&r->inflight, 0);
		/* A memfd region still a memfd here (made to be shared, or
		 * its private copy could not be taken: mem/bkfork.c) has its
		 * pages shared with the parent, which goes on allocating and
		 * freeing in them: two processes must never manage one heap,
		 * so the child keeps its hands off. */
		if (lf_load_relaxed(&r->state) == REGION_ALIVE && r->bk->kind == HL_BACKING_MEMFD)
			lf_store_relaxed(&r->inherited, 1u);
	}
}

/* ---- create ------------------------------------------------------------- */

static int region_attr_check(const hl_region_attr_t *at)
{
	unsigned reach = at->reach ? at->reach : HL_REACH_SYS;
	if (reach & ~REGION_REACH_ALL)
		return HL_EINVAL;
	if ((reach & HL_REACH_DMA) && at->backing != HL_BACKING_BUFFER)
		return HL_EINVAL;   /* anonymous pages cannot be made DMA-capable */
	if ((unsigned)at->backing > HL_BACKING_BUFFER)
		return HL_EINVAL;
	size_t cap = at->capacity;
	if (at->backing != HL_BACKING_ANON) {
		if (!cap || cap % HL_SLOT_SIZE)
			return HL_EINVAL;
		if (at->backing == HL_BACKING_HUGETLB && cap % REGION_HUGE)
			return HL_EINVAL;
		if (at->backing == HL_BACKING_BUFFER &&
		    (!at->buffer || (uintptr_t)at->buffer % HL_SLOT_SIZE))
			return HL_EINVAL;
	} else if (at->buffer) {
		return HL_EINVAL;
	}
	if (at->shared && at->backing != HL_BACKING_MEMFD)
		return HL_EINVAL;   /* only a memfd can be shared */
	if (at->relieve && (!cap || !at->wmark_low || !at->wmark_high))
		return HL_EINVAL;   /* relief runs from low to high */
	if ((at->wmark_min | at->wmark_low | at->wmark_high) &&
	    (!cap || at->wmark_min > at->wmark_low || at->wmark_low > at->wmark_high ||
	     at->wmark_high > cap))
		return HL_EINVAL;
	return HL_OK;
}

HL_EXPORT int hl_region_create(const hl_region_attr_t *user, hl_region_t **out)
{
	hl_region_attr_t attr, *at = &attr;
	if (!out || !hl_struct_in(&attr, sizeof attr, user, REGION_ATTR_V1))
		return HL_EINVAL;
	int e = region_attr_check(at);
	if (e)
		return e;
	hl_ensure_init();
	struct hl_region *r = NULL;
	for (uint32_t id = 1; id < HL_MAX_REGIONS && !r; id++) {
		uint32_t st = REGION_FREE;
		if (lf_cas_strong_acq_rel(&region_tab[id].state, &st, (uint32_t)REGION_CREATING))
			r = &region_tab[id];
	}
	if (!r)
		return HL_ENOMEM;   /* all HL_MAX_REGIONS - 1 regions exist */
	memset(r->name, 0, sizeof r->name);
	if (at->name)
		strncpy(r->name, at->name, sizeof r->name - 1);
	/* Relaxed stores: a racing fallback-list builder may read these
	 * before the region is alive (and then checks again). */
	lf_store_relaxed(&r->reach, at->reach ? at->reach : HL_REACH_SYS);
	lf_store_relaxed(&r->node, at->node);
	lf_store_relaxed(&r->wmin, (uint64_t)at->wmark_min);
	r->wlow = at->wmark_low;
	r->whigh = at->wmark_high;
	r->notify = at->notify;
	r->notify_arg = at->notify_arg;
	r->relieve = at->relieve != 0;
	r->live_bytes = r->live_blocks = 0;
	r->allocs = r->frees = r->ev_low = r->ev_high = 0;
	r->below_low = 0;
	r->inherited = 0;
	r->bk->shared = at->shared != 0;
	e = bk_setup(r->bk, at->backing, at->capacity, at->secure, at->buffer, r->name);
	if (e) {
		lf_store_release(&r->state, (uint32_t)REGION_FREE);
		return e;
	}
	region_check_wmark(r);   /* a region made smaller than low starts low */
	region_pend_low &= ~((uint64_t)1 << r->id);
	lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
	*out = r;
	if (region_created_hook)
		region_created_hook();
	return HL_OK;
}

/* ---- delete and reset --------------------------------------------------- */

/* A closed region's end: its backing released, its arenas' generation
 * left behind, its slot free for the next create. */
static void region_release(struct hl_region *r)
{
	bk_release(r->bk);
	lf_fetch_add_relaxed(&r->gen, 1u);
	region_forget_events(r);
	lf_store_release(&r->state, (uint32_t)REGION_FREE);
}

static void region_sweep_now(sb_arena_t *a)
{
	sb_sweep_arena(a, true);
}

/* Delete a region that holds blocks: the coordinator plans first (a
 * refusal changes nothing), then the region is closed to new allocations,
 * every superblock moved out, and the region released; if a move fails
 * midway, the region is open again and what moved stays moved. */
static int region_delete_evacuating(struct hl_region *r)
{
	uint64_t moved;
	if (!region_evac_hook || region_evac_hook(r->id, true, &moved) != HL_OK)
		return HL_EBUSY;
	int e = region_quiesce(r, REGION_DELETING);
	if (e)
		return e;
	region_each_arena(r, region_sweep_now);   /* empty superblocks need no move */
	/* A job looks at a bounded number of superblocks: rounds until all
	 * moved, or one moves nothing. */
	do {
		e = region_evac_hook(r->id, false, &moved);
		region_each_arena(r, region_sweep_now);
	} while (e == HL_OK && moved && lf_load_acquire(&r->live_blocks));
	if (e == HL_OK && !lf_load_acquire(&r->live_blocks) && !lf_load_acquire(&r->bk->backed)) {
		region_release(r);
		e = HL_OK;
	} else {
		lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
		e = HL_EBUSY;
	}
	region_fire_events();   /* the targets' crossings, the moves done */
	return e;
}

HL_EXPORT int hl_region_delete(hl_region_t *region)
{
	if (!region_handle_ok(region))
		return HL_EINVAL;
	struct hl_region *r = region;
	if (r->id == 0)
		return HL_EPERM;   /* the default region is malloc's */
	/* Refuse before closing: a refused delete changes nothing, not even
	 * for a moment (allocations in the region go on meanwhile). */
	uint32_t st = lf_load_acquire(&r->state);
	if (st != REGION_ALIVE)
		return st == REGION_DELETING || st == REGION_RESETTING ? HL_EBUSY : HL_EINVAL;
	if (lf_load_relaxed(&r->inherited)) {
		/* The parent's heap: the child gives up its view of it (its
		 * mapping and descriptor), and touches none of its pages. */
		if (region_quiesce(r, REGION_DELETING) != HL_OK)
			return HL_EBUSY;
		region_release(r);
		return HL_OK;
	}
	if (lf_load_acquire(&r->live_blocks))
		return region_delete_evacuating(r);
	int e = region_quiesce(r, REGION_DELETING);
	if (e)
		return e;
	if (lf_load_acquire(&r->live_blocks)) {
		/* A block was allocated between the check and the close. */
		lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
		return HL_EBUSY;
	}
	/* Nothing live: every superblock is fully free, in an arena's slot
	 * or on its partial list.  Retire them all. */
	region_each_arena(r, region_sweep_now);
	if (lf_load_acquire(&r->bk->backed)) {
		/* Should not happen; never release memory that is still
		 * backed.  Report busy and keep the region. */
		lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
		return HL_EBUSY;
	}
	region_release(r);
	return HL_OK;
}

typedef struct region_reset_ctx {
	struct hl_region *r;
	lf_hp_rec_t *hp;   /* the caller's, to retire the superblocks */
	size_t n;
} region_reset_ctx_t;

static void region_reset_one(pm_slot_t *rec, void *ctx)
{
	region_reset_ctx_t *c = ctx;
	uint64_t w = lf_load_acquire(&rec->word);
	unsigned ai = PM_ARENA(w);
	if (ai == 0 || ai >= HL_MAX_ARENAS || !region_arena_ok(sb_arena(ai), c->r))
		return;
	sb_force_retire_owned(desc_at(PM_DESC(w)), c->hp);
	c->n++;
}

static bool region_reset_pick(unsigned arena, void *ctx)
{
	region_reset_ctx_t *c = ctx;
	return arena < HL_MAX_ARENAS && region_arena_ok(sb_arena(arena), c->r);
}

static void region_reset_large(unsigned arena, void *p, size_t len, bool unmap, void *ctx)
{
	(void)ctx;
	region_large_freed(arena, p, len);
	if (unmap)
		lb_unmap(p, len);   /* else the coordinator, which holds it, does */
}

/* The blocks of a are gone: take them off its task's books. */
static void region_reset_books(sb_arena_t *a)
{
	uint64_t b = lf_exchange_acq_rel(&a->live_bytes, 0);
	uint64_t k = lf_exchange_acq_rel(&a->live_blocks, 0);
	lf_fetch_sub_relaxed(&a->task->live_bytes, b);
	lf_fetch_sub_relaxed(&a->task->live_blocks, k);
}

HL_EXPORT int hl_region_reset(hl_region_t *region)
{
	if (!region_handle_ok(region))
		return HL_EINVAL;
	struct hl_region *r = region;
	if (r->id == 0 || lf_load_relaxed(&r->inherited))
		return HL_EPERM;   /* malloc's region; the parent's shared heap */
	/* Retiring the superblocks takes this thread's hazard record: if
	 * the OS refuses one, fail before anything has changed. */
	lf_hp_rec_t *hp = desc_hp_rec();
	if (!hp)
		return HL_ENOMEM;
	int e = region_quiesce(r, REGION_RESETTING);
	if (e)
		return e;
	/* Take every superblock out of the arenas' slots and lists, then
	 * retire each one found in the page map. */
	region_each_arena(r, sb_arena_drop_all);
	region_reset_ctx_t ctx = { r, hp, 0 };
	pm_scan(region_reset_one, &ctx);
	large_reset(region_reset_pick, region_reset_large, &ctx);
	region_each_arena(r, region_reset_books);
	lf_store_release(&r->live_bytes, 0);
	lf_store_release(&r->live_blocks, 0);
	lf_store_release(&r->state, (uint32_t)REGION_ALIVE);
	region_fire_events();
	return HL_OK;
}

/* ---- queries ------------------------------------------------------------ */

HL_EXPORT hl_region_t *hl_region_default(void)
{
	hl_ensure_init();
	return &region_tab[0];
}

HL_EXPORT hl_region_t *hl_region_of(const void *p)
{
	if (!p)
		return NULL;
	int arena = arena_id_of(p);
	if (arena < 0 || arena >= (int)HL_MAX_ARENAS)
		return NULL;
	sb_arena_t *a = sb_arena((unsigned)arena);
	return a ? &region_tab[a->region] : NULL;
}

HL_EXPORT const char *hl_region_name(const hl_region_t *r)
{
	return region_handle_ok(r) ? r->name : NULL;
}

HL_EXPORT int hl_region_stats(const hl_region_t *r, hl_region_stats_t *out)
{
	if (!region_handle_ok(r) || !hl_struct_out_ok(out))
		return HL_EINVAL;
	uint32_t s = lf_load_acquire(&r->state);
	if (s == REGION_FREE || s == REGION_CREATING)
		return HL_EINVAL;
	hl_region_stats_t stats = { .struct_size = sizeof stats }, *st = &stats;
	st->capacity = r->bk->capacity;
	if (r->id == 0) {
		/* The default region: its superblocks and large blocks.  Its
		 * live blocks are not counted (the fast path counts nothing). */
		sb_arena_t *a0 = sb_arena(0);
		st->bytes_backed = lf_load_relaxed(&a0->acct.backed) +
				   lf_load_relaxed(&hl_ctr.large_bytes);
		st->superblocks = lf_load_relaxed(&a0->superblocks);
	} else {
		st->bytes_backed = lf_load_relaxed(&r->bk->backed);
		st->superblocks = lf_load_relaxed(&r->bk->superblocks);
	}
	st->bytes_live = lf_load_relaxed(&r->live_bytes);
	st->blocks_live = lf_load_relaxed(&r->live_blocks);
	tk_filter_t f = { 0, NULL, (int)r->id };
	region_live_held(&f, &st->bytes_live, &st->blocks_live);
	st->allocs = lf_load_relaxed(&r->allocs);
	st->frees = lf_load_relaxed(&r->frees);
	st->events_low = lf_load_relaxed(&r->ev_low);
	st->events_high = lf_load_relaxed(&r->ev_high);
	hl_struct_out(out, st, sizeof stats);
	return HL_OK;
}
