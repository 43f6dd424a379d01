/*
 * Placement: where a block goes, and the slow paths of every block that
 * is not the default task's on the default region.
 *
 * An allocation states what it needs (reach: "may be accessed from"), what
 * it prefers (node: "preferably close to"), or names one region.  The
 * fallback list holds the qualifying regions, those above their min
 * watermark first, nearest first, then by id; each is tried in turn inside
 * its teardown handshake.  Blocks of arenas other than 0 are allocated and
 * freed one at a time (one anchor CAS each), so that quotas, isolation
 * and wipe-on-free hold on every block, except where a task thread's
 * cache serves them (place_task_cached): its own task's blocks of the
 * default region, counted live from when they leave their superblock.
 *
 * Concurrency: every function may run in any threads at once; each
 * allocation linearizes on the anchor CAS that pops its block (small) or
 * on its range-table insert (large), each free on its push.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "policy/policy.h"

static place_fail_fn place_fail_hook;

void place_set_fail_hook(place_fail_fn fn)
{
	place_fail_hook = fn;
}

/* ---- what a block was allocated under ----------------------------------- */

/* The descriptor of the superblock holding small block p; NULL for a
 * large block. */
static hl_desc_t *place_desc_of(const void *p)
{
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
	return rec && PM_KIND(w) == PM_SMALL ? desc_at(PM_DESC(w)) : NULL;
}

/* Remember on the block's superblock what it was allocated under, so that
 * a mover can tell where the superblock may legally go. */
static void place_note_need(void *p, uint32_t need)
{
	hl_desc_t *d = place_desc_of(p);
	if ((lf_load_relaxed(&d->need) | need) != lf_load_relaxed(&d->need))
		lf_fetch_or_acq_rel(&d->need, need);
}

static uint32_t place_need_of(unsigned reach, unsigned flags)
{
	return (reach ? reach : HL_REACH_SYS) | (flags & HL_SECURE ? HL_NEED_SECURE : 0) |
	       (flags & HL_NOMIGRATE ? HL_NEED_PINNED : 0);
}

/* ---- task threads' caches ----------------------------------------------
 *
 * A thread of a task other than the default caches the blocks of one
 * arena: its own task's in the default region, where its malloc goes
 * first (that region is never deleted or reset, and a cache is emptied
 * whenever its thread changes tasks or exits, so it never holds a block
 * of a region that went away nor of another task).  A block is counted
 * live in its arena, region and task when it leaves its superblock into
 * the cache, and counted off when it goes back (the hook task.c
 * registers); statistics subtract what the caches hold. */
static bool place_qualifies(struct hl_region *r, const struct hl_task *t, unsigned need,
			    bool secure);

static bool place_cacheable(const sb_arena_t *a)
{
	return hl_cur_task && a->task == hl_cur_task && a->region == 0;
}

/* A block of class cls of arena a, the thread's task's in the default
 * region (place_cacheable), from the thread's task cache, refilled a
 * batch at a time and the batch counted live.  NULL: none, with *err the
 * refill's error, or HL_OK if the cache could not take one (then the
 * caller allocates the block alone). */
static void *place_cached(struct hl_region *r, sb_arena_t *a, unsigned cls, int *err)
{
	*err = HL_OK;
	void *p = tk_alloc(cls);
	if (p)
		return p;
	unsigned want = tk_want(a, cls);
	void *v[HL_MAX_BATCH];
	unsigned n = want ? sb_alloc_batch_err(a, 0, cls, v, want, err) : 0;
	if (!n)
		return NULL;
	lf_store_relaxed(&a->last_ms, os_now_ms());
	region_live(r, a, (int64_t)n * sc_table[cls].size, (int64_t)n);
	tk_fill(cls, v + 1, n - 1);
	p = v[0];
	((uint64_t *)p)[1] = 0;
	return p;
}

/* malloc of a small size in a task thread (hl_cur_task set): a cached
 * block, without building the fallback list, whose first choice the
 * default region is for a task allowed it and not secure.  NULL: take
 * the full path (no cache, another region first, or the quota is
 * reached: the full path then empties this cache and looks for free
 * superblocks). */
static void *place_task_cached(size_t size)
{
	unsigned cls = sc_of(size);
	void *p = tk_alloc(cls);
	if (HL_LIKELY(p))
		return p;
	struct hl_task *t = hl_cur_task;
	struct hl_region *r = region_at(0);
	if (t->secure || !place_qualifies(r, t, HL_REACH_SYS, false))
		return NULL;
	sb_arena_t *a = task_arena_use(t, r);
	if (!a)
		return NULL;
	int err;
	p = place_cached(r, a, cls, &err);
	task_arena_done(a);
	return p;
}

/* ---- allocation in one region ------------------------------------------- */

/* Freed space that is not yet reachable, made reachable before a request
 * at a limit is refused: every arena drawing on r's capacity or on a's
 * task's quota gives back its empty superblocks (heap slots included).
 * (The caller's own task cache has been emptied first; other threads'
 * task caches are the README's slack.)  Returns whether anything went
 * back. */
static bool place_reclaim(struct hl_region *r, sb_arena_t *a)
{
	size_t n = 0;
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *b = sb_arena(i);
		if (b && lf_load_relaxed(&b->superblocks) &&
		    (b->region == r->id || b->task == a->task))
			n += region_sweep(b);
	}
	return n != 0;
}

static void *place_alloc_in_once(struct hl_region *r, sb_arena_t *a, size_t size,
				 size_t align, unsigned flags, uint32_t need, int *err);

/* Allocation in one region; at its capacity or the task's quota, once
 * more after what is free there has been made reachable. */
static void *place_alloc_in(struct hl_region *r, sb_arena_t *a, size_t size,
			    size_t align, unsigned flags, uint32_t need, int *err)
{
	void *p = place_alloc_in_once(r, a, size, align, flags, need, err);
	if (!p && *err == HL_ENOMEM) {
		tk_flush();   /* this thread's cached blocks are free ones */
		if (place_reclaim(r, a))
			p = place_alloc_in_once(r, a, size, align, flags, need, err);
	}
	return p;
}

static void *place_alloc_in_once(struct hl_region *r, sb_arena_t *a, size_t size,
			    size_t align, unsigned flags, uint32_t need, int *err)
{
	unsigned cls = size <= HL_SMALL_MAX && align <= HL_SMALL_MAX
			       ? sc_class_aligned(size, align) : HL_NCLASSES;
	void *p = NULL;
	lf_store_relaxed(&a->last_ms, os_now_ms());   /* for decay */
	if (cls < HL_NCLASSES) {
		if (place_cacheable(a)) {
			p = place_cached(r, a, cls, err);
			if (!p && *err != HL_OK)
				return NULL;
		}
		if (!p) {
			if (sb_alloc_batch_err(a, 0, cls, &p, 1, err) != 1)
				return NULL;
			((uint64_t *)p)[1] = 0;
			region_live(r, a, sc_table[cls].size, 1);
		}
		place_note_need(p, need);
		if (flags & HL_ZERO)
			memset(p, 0, sc_table[cls].size);
		return p;
	}
	if (bk_small_only(r->bk)) {
		*err = HL_ENOMEM;   /* pools serve blocks up to 32 KiB */
		return NULL;
	}
	size_t len;
	if (!lb_len(size, &len) || !bk_reserve(&a->acct, len, err))
		return NULL;
	p = lb_alloc(r->bk, len, align, a->id, need, err);
	if (!p) {
		bk_unreserve(&a->acct, len);
		return NULL;
	}
	region_live(r, a, (int64_t)len, 1);
	return p;
}

void place_free_small(void *p, uint64_t w, const char *call)
{
	sb_arena_t *a = PM_ARENA(w) < HL_MAX_ARENAS ? sb_arena(PM_ARENA(w)) : NULL;
	if (!a)
		hl_fatal(call, p, HL_WHY_INVALID);
	unsigned cls = PM_CLS(w);
	if (!sc_is_block(cls, pm_block_off(p, w)))
		hl_fatal(call, p, HL_WHY_INTERIOR);
	if (((uint64_t *)p)[1] == hl_key)
		hl_fatal(call, p, HL_WHY_FREE_FREE);
	struct hl_region *r = region_at(a->region);
	if (HL_UNLIKELY(lf_load_relaxed(&r->inherited)))
		hl_fatal(call, p, HL_WHY_INHERITED);
	size_t size = sc_table[cls].size;
	if (r->bk->secure)
		memset(p, 0, size);   /* before any cache could hold it */
	int saved = errno;
	if (place_cacheable(a) && tk_free(a, p, cls)) {
		errno = saved;
		return;
	}
	/* The books of the arena the block was freed into: the coordinator
	 * may have moved its superblock since w was read. */
	unsigned ai = sb_free_one(cls, p, call);
	if (ai != a->id) {
		a = sb_arena(ai);
		r = region_at(a->region);
	}
	region_live(r, a, -(int64_t)size, -1);
	decay_tick();
	region_fire_events();
	errno = saved;
}

/* ---- choosing a region -------------------------------------------------- */

/* The fallback list is built from relaxed reads: a region may be deleted
 * and another created in its place meanwhile.  The choice is checked
 * again (place_qualifies) once the allocation is counted in the region's
 * inflight and has seen it alive: from then on its attributes cannot
 * change. */
static bool place_below_min(struct hl_region *r)
{
	uint64_t cap = lf_load_relaxed(&r->bk->capacity), wmin = lf_load_relaxed(&r->wmin);
	if (!cap || !wmin)
		return false;
	uint64_t backed = lf_load_relaxed(&r->bk->backed);
	return backed >= cap || cap - backed < wmin;
}

static unsigned place_distance(struct hl_region *r, int node)
{
	if (node < 0)
		return 0;
	int rn = lf_load_relaxed(&r->node);
	return (unsigned)(rn > node ? rn - node : node - rn);
}

static bool place_qualifies(struct hl_region *r, const struct hl_task *t, unsigned need,
			    bool secure)
{
	return (lf_load_relaxed(&r->reach) & need) == need &&
	       (!secure || lf_load_relaxed(&r->bk->secure)) &&
	       (t->allowed & ((uint64_t)1 << r->id)) &&
	       /* A permission is for a region, not for its slot: a region
	        * created later in the same slot is another one. */
	       (!t->some_regions ||
		lf_load_relaxed(&t->allowed_gen[r->id]) == lf_load_relaxed(&r->gen));
}

static unsigned place_candidates(struct hl_task *t, unsigned need, bool secure,
				 int node, const hl_region_t *only, uint32_t *out)
{
	unsigned n = 0;
	uint64_t key[HL_MAX_REGIONS];
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = region_at(id);
		if (lf_load_acquire(&r->state) != REGION_ALIVE)
			continue;
		if (!place_qualifies(r, t, need, secure) || (only && only != r))
			continue;
		uint64_t k = ((uint64_t)place_below_min(r) << 48) |
			     ((uint64_t)place_distance(r, node) << 8) | id;
		unsigned j = n++;
		while (j > 0 && key[j - 1] > k) {
			key[j] = key[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		key[j] = k;
		out[j] = id;
	}
	return n;
}

/* One pass over the fallback list; HL_OK with *out, or the error. */
static int place_try(struct hl_task *t, size_t size, size_t align,
		     unsigned flags, unsigned need,
		     bool secure, const uint32_t *cand, unsigned n, void **out,
		     place_dflt_fn dflt)
{
	int result = HL_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct hl_region *r = region_at(cand[i]);
		void *p = NULL;
		int err = HL_ENOMEM;
		if (r->id == 0 && task_is_default(t)) {
			/* The default: the thread-cached path of malloc. */
			p = dflt(size, align);
			if (p && (flags & HL_ZERO))
				memset(p, 0, size);
		} else if (lf_load_relaxed(&r->inherited)) {
			err = HL_EPERM;   /* a fork child's view of the parent's heap */
		} else {
			if (region_enter(r) && place_qualifies(r, t, need, secure)) {
				sb_arena_t *a = task_arena_use(t, r);
				if (a) {
					p = place_alloc_in(r, a, size, align, flags,
							   place_need_of(need, secure ? flags | HL_SECURE : flags),
							   &err);
					task_arena_done(a);
				}
			}
			region_leave(r);
		}
		if (p) {
			*out = p;
			return HL_OK;
		}
		if (err == HL_EPERM)
			result = HL_EPERM;
		if (t->budget.limit && lf_load_relaxed(&t->budget.used) + size > t->budget.limit)
			break;   /* the quota, not the region, is full */
	}
	return result;
}

int place_alloc(size_t size, size_t align, const hl_place_t *place,
		unsigned flags, void **out, place_dflt_fn dflt)
{
	hl_ensure_init();
	struct hl_task *t = task_cur();
	unsigned need = place && place->reach ? place->reach : HL_REACH_SYS;
	if (need & ~REGION_REACH_ALL)
		return HL_EINVAL;
	if (place && place->region && !region_handle_ok(place->region))
		return HL_EINVAL;
	bool secure = (flags & HL_SECURE) || t->secure;
	uint32_t cand[HL_MAX_REGIONS];
	unsigned n = place_candidates(t, need, secure, place ? place->node : -1,
				      place ? place->region : NULL, cand);
	if (!n)
		return HL_ENOREGION;
	decay_tick();
	int e = place_try(t, size, align, flags, need, secure, cand, n, out, dflt);
	if (e == HL_ENOMEM && place_fail_hook) {
		int h = place_fail_hook(size, align, need, flags, cand[0]);
		if (h == HL_OK)
			e = place_try(t, size, align, flags, need, secure, cand, n, out, dflt);
		else if (h == HL_EAGAIN)
			e = HL_EAGAIN;
	}
	region_fire_events();
	task_fire_events();
	return e;
}

/* The default allocation is never used here: a task thread's task is not
 * the default. */
static void *place_no_default(size_t size, size_t align)
{
	(void)size;
	(void)align;
	return NULL;
}

void *place_task_alloc(size_t size, size_t align, bool zero)
{
	void *p;
	if (!align && !zero && size <= HL_SMALL_MAX && (p = place_task_cached(size)) != NULL)
		return p;
	p = NULL;
	if (size > ((size_t)1 << 47) ||
	    place_alloc(size, align, NULL, zero ? HL_ZERO : 0, &p, place_no_default) != HL_OK) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *place_realloc(void *p, unsigned arena, size_t old, size_t size)
{
	sb_arena_t *a = sb_arena(arena);
	struct hl_region *r = region_at(a->region);
	void *q = NULL;
	int err = HL_ENOMEM;
	/* The new block inherits what the old one (or its superblock) was
	 * allocated under. */
	hl_desc_t *d = place_desc_of(p);
	uint32_t need = d ? lf_load_relaxed(&d->need) : place_need_of(0, 0);
	unsigned la;
	size_t ll;
	if (!d)
		large_info(p, &la, &ll, &need);
	if (HL_UNLIKELY(lf_load_relaxed(&r->inherited)))
		hl_fatal("realloc", p, HL_WHY_INHERITED);
	if (region_enter(r))
		q = place_alloc_in(r, a, size, 0, 0, need, &err);
	region_leave(r);
	if (!q) {
		region_fire_events();
		errno = ENOMEM;
		return NULL;   /* p untouched */
	}
	memcpy(q, p, old < size ? old : size);
	return q;
}
