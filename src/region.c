/*
 * Regions and tasks (DESIGN.md sections 4 and 6).
 *
 * A region is a pool of memory with attributes; a task is a group of
 * threads with a policy.  Their superblocks live in arenas, one per
 * (task, region) pair (heap.c): arena 0 is the default task on the default
 * region, the only one the thread caches feed; every other arena is
 * reached through the slow paths here, one block per anchor CAS, so that
 * quotas, isolation and wipe-on-free hold on every block.
 *
 * Backing: an ANON region takes superblock spans from the global
 * reservation and gives them back purged; capacity and quota are reserved
 * by CAS before a span is taken.  MEMFD, HUGETLB and BUFFER regions are
 * pools: one mapping of `capacity` bytes made (or given) at creation,
 * carved into 64 KiB slots with slot records of their own in the page map;
 * they serve blocks up to 32 KiB.
 *
 * Deletion and reset: an allocation counts itself in the region's
 * `inflight` (seq_cst) and then checks the region is alive; delete and
 * reset first change the state, then wait for `inflight` to drain (those
 * allocations are lock-free, so they finish), so that no allocation starts
 * on a region being torn down and none is cut off in the middle.
 *
 * Watermark events are recorded where the crossing happens and told by
 * the public call that caused it, once its work is done (rg_fire_events),
 * outside every internal structure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

enum rg_state { RG_FREE = 0, RG_CREATING, RG_ALIVE, RG_DELETING, RG_RESETTING };

#define RG_REACH_ALL (HL_REACH_SYS | HL_REACH_DMA | HL_REACH_CLUSTER | HL_REACH_CPU)
#define RG_HUGE ((size_t)2 << 20)

struct hl_region {
	uint32_t state;               /* rg_state */
	uint32_t id;
	uint32_t gen;                 /* bumped at delete: old arenas retire */
	char name[32];
	unsigned reach;
	int secure, node;
	hl_backing_t backing;
	uint64_t capacity, wmin, wlow, whigh;
	hl_notify_fn notify;
	void *notify_arg;
	/* pools: [pool, pool + pool_len), slots bump-allocated from pool_next */
	char *pool;
	size_t pool_len;
	int fd;
	uint32_t pool_next;
	lf_tstack_t pool_free[HL_SPAN_ORDERS];   /* slot index + 1 */
	/* accounting (relaxed, except inflight) */
	uint64_t inflight;
	uint64_t backed, live_bytes, live_blocks, superblocks, allocs, frees;
	uint64_t ev_low, ev_high;
	uint32_t below_low;
} lf_cacheline_aligned;

struct hl_task {
	uint32_t state;               /* 1 alive, 2 being destroyed, 0 dead */
	uint32_t id;
	char name[32];
	uint64_t quota;
	int secure;
	uint64_t allowed;             /* bit per region id */
	sb_arena_t *arena[HL_MAX_REGIONS];
	uint64_t threads, backed, live_bytes, live_blocks;
};

static struct hl_region rg_tab[HL_MAX_REGIONS];
static struct hl_task rg_default_task;
static uint32_t rg_task_ids;

__thread struct hl_task *hl_cur_task __attribute__((tls_model("initial-exec")));
static __thread uint64_t rg_pend_low, rg_pend_high;
static __thread int rg_in_notify;

_Static_assert(HL_MAX_REGIONS <= 64, "one bit per region in a task's set");

void rg_init(void)
{
	struct hl_region *r = &rg_tab[0];
	r->id = 0;
	memcpy(r->name, "default", 8);
	r->reach = HL_REACH_SYS;
	r->backing = HL_BACKING_ANON;
	r->fd = -1;
	lf_store_release(&r->state, (uint32_t)RG_ALIVE);
	for (uint32_t i = 1; i < HL_MAX_REGIONS; i++) {
		rg_tab[i].id = i;
		rg_tab[i].fd = -1;
	}
	rg_default_task.state = 1;
	rg_default_task.allowed = ~(uint64_t)0;
	memcpy(rg_default_task.name, "default", 8);
}

HL_EXPORT const char *hl_strerror(hl_error_t err)
{
	switch (err) {
	case HL_OK: return "success";
	case HL_ENOMEM: return "out of memory: every qualifying region or the task's quota is full";
	case HL_EINVAL: return "invalid argument";
	case HL_ENOREGION: return "no region satisfies the constraint";
	case HL_EAGAIN: return "would have to wait (HL_NOWAIT)";
	case HL_EPERM: return "not permitted (a rule, or a system limit such as RLIMIT_MEMLOCK)";
	case HL_EBUSY: return "busy: still holds memory or threads";
	}
	return "unknown error";
}

static struct hl_task *rg_task_cur(void)
{
	struct hl_task *t = hl_cur_task;
	return t ? t : &rg_default_task;
}

static bool rg_handle_ok(const hl_region_t *r)
{
	uintptr_t a = (uintptr_t)r, b = (uintptr_t)rg_tab;
	return a >= b && a < b + sizeof rg_tab && (a - b) % sizeof(rg_tab[0]) == 0;
}

/* ---- accounting and watermarks ------------------------------------------ */

static void rg_check_wmark(struct hl_region *r)
{
	if (!r->capacity || !(r->wlow | r->whigh))
		return;
	uint64_t backed = lf_load_relaxed(&r->backed);
	uint64_t free = backed >= r->capacity ? 0 : r->capacity - backed;
	uint32_t bl = lf_load_relaxed(&r->below_low);
	if (!bl && free < r->wlow) {
		if (lf_cas_strong_acq_rel(&r->below_low, &bl, 1u)) {
			lf_fetch_add_relaxed(&r->ev_low, 1);
			rg_pend_low |= (uint64_t)1 << r->id;
		}
	} else if (bl && free > r->whigh) {
		if (lf_cas_strong_acq_rel(&r->below_low, &bl, 0u)) {
			lf_fetch_add_relaxed(&r->ev_high, 1);
			rg_pend_high |= (uint64_t)1 << r->id;
		}
	}
}

/* Tell the calling thread's pending watermark crossings. */
void rg_fire_events(void)
{
	if (HL_LIKELY(!(rg_pend_low | rg_pend_high)) || rg_in_notify)
		return;
	rg_in_notify = 1;
	while (rg_pend_low | rg_pend_high) {
		bool low = rg_pend_low != 0;
		uint64_t *set = low ? &rg_pend_low : &rg_pend_high;
		unsigned id = (unsigned)__builtin_ctzll(*set);
		*set &= *set - 1;
		struct hl_region *r = &rg_tab[id];
		hl_notify_fn fn = r->notify;
		if (fn)
			fn(r, low ? HL_EVENT_LOW : HL_EVENT_HIGH, r->notify_arg);
	}
	rg_in_notify = 0;
}

/* Bound a counter by CAS: add n unless the sum would pass limit. */
static bool rg_add_bounded(uint64_t *ctr, uint64_t n, uint64_t limit)
{
	uint64_t cur = lf_load_relaxed(ctr);
	do {
		if (cur + n > limit || cur + n < cur)
			return false;
	} while (!lf_cas_weak_acq_rel(ctr, &cur, cur + n));
	return true;
}

static bool rg_reserve(struct hl_region *r, sb_arena_t *a, uint64_t n, int *err)
{
	struct hl_task *t = a->task;
	*err = HL_ENOMEM;
	if (!rg_add_bounded(&r->backed, n, r->capacity ? r->capacity : UINT64_MAX))
		return false;
	if (!rg_add_bounded(&t->backed, n, t->quota ? t->quota : UINT64_MAX)) {
		lf_fetch_sub_relaxed(&r->backed, n);
		return false;
	}
	lf_fetch_add_relaxed(&a->backed, n);
	rg_check_wmark(r);
	return true;
}

static void rg_unreserve(struct hl_region *r, sb_arena_t *a, uint64_t n)
{
	lf_fetch_sub_relaxed(&a->backed, n);
	lf_fetch_sub_relaxed(&a->task->backed, n);
	lf_fetch_sub_relaxed(&r->backed, n);
	rg_check_wmark(r);
}

static void rg_live(struct hl_region *r, sb_arena_t *a, int64_t bytes, int64_t blocks)
{
	lf_fetch_add_relaxed(&r->live_bytes, (uint64_t)bytes);
	lf_fetch_add_relaxed(&r->live_blocks, (uint64_t)blocks);
	lf_fetch_add_relaxed(&a->live_bytes, (uint64_t)bytes);
	lf_fetch_add_relaxed(&a->live_blocks, (uint64_t)blocks);
	lf_fetch_add_relaxed(&a->task->live_bytes, (uint64_t)bytes);
	lf_fetch_add_relaxed(&a->task->live_blocks, (uint64_t)blocks);
	lf_fetch_add_relaxed(blocks > 0 ? &r->allocs : &r->frees, 1);
}

/* The allocation side of the teardown handshake (see the top of the file):
 * count the caller in the region's inflight, then say whether the region
 * is alive.  Every rg_enter is paired with an rg_leave, alive or not. */
static bool rg_enter(struct hl_region *r)
{
	lf_fetch_add_seq_cst(&r->inflight, 1);
	return lf_load_seq_cst(&r->state) == RG_ALIVE;
}

static void rg_leave(struct hl_region *r)
{
	lf_fetch_sub_release(&r->inflight, 1);
}

/* ---- spans for superblocks ---------------------------------------------- */

static uint32_t *rg_pool_link(void *ctx, uint32_t idx)
{
	struct hl_region *r = ctx;
	return &pm_lookup(r->pool + ((size_t)(idx - 1) << HL_SLOT_SHIFT))->link;
}

static char *rg_pool_take(struct hl_region *r, unsigned order)
{
	uint32_t idx = lf_tstack_pop(&r->pool_free[order], rg_pool_link, r);
	if (idx)
		return r->pool + ((size_t)(idx - 1) << HL_SLOT_SHIFT);
	uint32_t n = 1u << order, total = (uint32_t)(r->pool_len >> HL_SLOT_SHIFT);
	uint32_t cur = lf_load_relaxed(&r->pool_next);
	do {
		if (cur + n > total)
			return NULL;
	} while (!lf_cas_weak_acq_rel(&r->pool_next, &cur, cur + n));
	return r->pool + ((size_t)cur << HL_SLOT_SHIFT);
}

char *rg_span_get(sb_arena_t *a, unsigned order, uint32_t *span, int *err)
{
	struct hl_region *r = &rg_tab[a->region];
	size_t bytes = HL_SLOT_SIZE << order;
	if (!rg_reserve(r, a, bytes, err))
		return NULL;
	char *base = NULL;
	*span = 0;
	if (r->pool) {
		base = rg_pool_take(r, order);
	} else {
		bool fresh;
		uint32_t sp = pm_span_get(order, &base, &fresh);
		if (sp && r->secure) {
			if (mlock(base, bytes) != 0) {
				pm_span_put(sp, order);
				rg_unreserve(r, a, bytes);
				*err = HL_EPERM;
				return NULL;
			}
			madvise(base, bytes, MADV_DONTDUMP);
		}
		*span = sp;
		if (!sp)
			base = NULL;
	}
	if (!base) {
		rg_unreserve(r, a, bytes);
		*err = HL_ENOMEM;
		return NULL;
	}
	lf_fetch_add_relaxed(&r->superblocks, 1);
	return base;
}

void rg_span_put(sb_arena_t *a, char *base, uint32_t span, unsigned order)
{
	struct hl_region *r = &rg_tab[a->region];
	size_t bytes = HL_SLOT_SIZE << order;
	if (r->pool) {
		uint32_t first = (uint32_t)((size_t)(base - r->pool) >> HL_SLOT_SHIFT);
		for (uint32_t i = 0; i < (1u << order); i++)
			lf_store_release(&pm_lookup(base + ((size_t)i << HL_SLOT_SHIFT))->word,
					 PM_WORD(0, 0, i, PM_CACHED, 0));
		if (r->backing == HL_BACKING_MEMFD)
			fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(base - r->pool), (off_t)bytes);
		lf_tstack_push(&r->pool_free[order], first + 1,
			       &pm_lookup(base)->link);
	} else {
		if (r->secure) {
			munlock(base, bytes);
			madvise(base, bytes, MADV_DODUMP);
		}
		os_purge(base, bytes);
		pm_span_put_clean(span, order);
	}
	lf_fetch_sub_relaxed(&r->superblocks, 1);
	rg_unreserve(r, a, bytes);
}

/* ---- the arena of (task, region) ---------------------------------------- */

static sb_arena_t *rg_arena(struct hl_task *t, struct hl_region *r)
{
	if (t == &rg_default_task && r->id == 0)
		return sb_arena(0);
	sb_arena_t *a = lf_load_acquire(&t->arena[r->id]);
	uint32_t gen = lf_load_acquire(&r->gen);
	if (a) {
		/* The task's arena of an earlier region in this slot: that
		 * region was deleted only once it held nothing, so the arena
		 * is empty and is taken over (arena ids are not spent on
		 * every create/delete cycle). */
		uint32_t old = lf_load_acquire(&a->gen);
		while (old != gen && !lf_cas_strong_acq_rel(&a->gen, &old, gen))
			;
		return a;
	}
	sb_arena_t *mine = sb_arena_new(r->id, t);
	if (!mine)
		return NULL;
	lf_store_relaxed(&mine->gen, gen);
	if (lf_cas_strong_acq_rel(&t->arena[r->id], &a, mine))
		return mine;
	return a;   /* another thread installed one first (the id is spent) */
}

/* ---- allocation in one region ------------------------------------------- */

static unsigned rg_class_for(size_t size, size_t align)
{
	if (size == 0)
		size = 1;
	if (align <= 16)
		return sc_of(size);
	for (unsigned c = sc_of(size); c < HL_NCLASSES; c++)
		if (sc_table[c].size % align == 0)
			return c;
	return HL_NCLASSES;
}

int rg_arena_id_of(const void *p)
{
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
	if (rec && PM_KIND(w) == PM_SMALL)
		return (int)PM_ARENA(w);
	return large_arena_of(p);
}

/* The descriptor of the superblock holding small block p; NULL for a
 * large block. */
static hl_desc_t *rg_desc_of(const void *p)
{
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
	return rec && PM_KIND(w) == PM_SMALL ? desc_at(PM_DESC(w)) : NULL;
}

/* Remember on the block's superblock what it was allocated under, so that
 * a mover can tell where the superblock may legally go. */
static void rg_note_need(void *p, uint32_t need)
{
	hl_desc_t *d = rg_desc_of(p);
	if ((lf_load_relaxed(&d->need) | need) != lf_load_relaxed(&d->need))
		lf_fetch_or_acq_rel(&d->need, need);
}

static uint32_t rg_need_of(unsigned reach, unsigned flags)
{
	return (reach ? reach : HL_REACH_SYS) | (flags & HL_SECURE ? HL_NEED_SECURE : 0) |
	       (flags & HL_NOMIGRATE ? HL_NEED_PINNED : 0);
}

static void *rg_alloc_in(struct hl_region *r, sb_arena_t *a, size_t size,
			 size_t align, unsigned flags, uint32_t need, int *err)
{
	unsigned cls = size <= HL_SMALL_MAX && align <= HL_SMALL_MAX
			       ? rg_class_for(size, align) : HL_NCLASSES;
	void *p = NULL;
	if (cls < HL_NCLASSES) {
		if (sb_alloc_batch_err(a, 0, cls, &p, 1, err) != 1)
			return NULL;
		((uint64_t *)p)[1] = 0;
		rg_note_need(p, need);
		if (flags & HL_ZERO)
			memset(p, 0, sc_table[cls].size);
		rg_live(r, a, sc_table[cls].size, 1);
		return p;
	}
	if (r->pool) {
		*err = HL_ENOMEM;   /* pools serve blocks up to 32 KiB */
		return NULL;
	}
	size_t len = (size + HL_PAGE - 1) & ~(size_t)(HL_PAGE - 1);
	if (len < size || !rg_reserve(r, a, len, err))
		return NULL;
	p = large_alloc_arena(size, align, (flags & HL_ZERO) != 0, a->id, r->secure, err);
	if (!p) {
		rg_unreserve(r, a, len);
		return NULL;
	}
	rg_live(r, a, (int64_t)len, 1);
	return p;
}

void rg_large_freed(unsigned arena, void *p, size_t len)
{
	sb_arena_t *a = sb_arena(arena);
	struct hl_region *r = &rg_tab[a->region];
	if (r->secure)
		memset(p, 0, len);
	rg_live(r, a, -(int64_t)len, -1);
	rg_unreserve(r, a, len);
}

void rg_free_small(void *p, uint64_t w, const char *call)
{
	sb_arena_t *a = PM_ARENA(w) < HL_MAX_ARENAS ? sb_arena(PM_ARENA(w)) : NULL;
	if (!a)
		hl_fatal(call, p, "invalid pointer (not allocated by heaplib, or already freed)");
	unsigned cls = PM_CLS(w);
	if (!sc_is_block(cls, pm_block_off(p, w)))
		hl_fatal(call, p, "interior pointer (not the start of a block)");
	if (((uint64_t *)p)[1] == hl_key)
		hl_fatal(call, p, "double free (block is already free)");
	struct hl_region *r = &rg_tab[a->region];
	size_t size = sc_table[cls].size;
	if (r->secure)
		memset(p, 0, size);
	int saved = errno;
	sb_free_batch(cls, &p, 1, call);
	rg_live(r, a, -(int64_t)size, -1);
	rg_fire_events();
	errno = saved;
}

/* ---- choosing a region --------------------------------------------------- */

/* The fallback list is built from relaxed reads: a region may be deleted
 * and another created in its place meanwhile.  The choice is checked
 * again (rg_qualifies) once the allocation is counted in the region's
 * inflight and has seen it alive: from then on its attributes cannot
 * change. */
static bool rg_below_min(struct hl_region *r)
{
	uint64_t cap = lf_load_relaxed(&r->capacity), wmin = lf_load_relaxed(&r->wmin);
	if (!cap || !wmin)
		return false;
	uint64_t backed = lf_load_relaxed(&r->backed);
	return backed >= cap || cap - backed < wmin;
}

static unsigned rg_distance(struct hl_region *r, int node)
{
	if (node < 0)
		return 0;
	int rn = lf_load_relaxed(&r->node);
	return (unsigned)(rn > node ? rn - node : node - rn);
}

static bool rg_qualifies(struct hl_region *r, const struct hl_task *t, unsigned need,
			 bool secure)
{
	return (lf_load_relaxed(&r->reach) & need) == need &&
	       (!secure || lf_load_relaxed(&r->secure)) &&
	       (t->allowed & ((uint64_t)1 << r->id));
}

/* The zone-style fallback list: qualifying regions, those above their min
 * watermark first, nearest first, then by id. */
static unsigned rg_candidates(struct hl_task *t, unsigned need, bool secure,
			      int node, const hl_region_t *only, uint32_t *out)
{
	unsigned n = 0;
	uint64_t key[HL_MAX_REGIONS];
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = &rg_tab[id];
		if (lf_load_acquire(&r->state) != RG_ALIVE)
			continue;
		if (!rg_qualifies(r, t, need, secure) || (only && only != r))
			continue;
		uint64_t k = ((uint64_t)rg_below_min(r) << 48) |
			     ((uint64_t)rg_distance(r, node) << 8) | id;
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

static int rg_alloc(size_t size, size_t align, const hl_place_t *place,
		    unsigned flags, void **out)
{
	hl_ensure_init();
	struct hl_task *t = rg_task_cur();
	unsigned need = place && place->reach ? place->reach : HL_REACH_SYS;
	if (need & ~RG_REACH_ALL)
		return HL_EINVAL;
	if (place && place->region && !rg_handle_ok(place->region))
		return HL_EINVAL;
	bool secure = (flags & HL_SECURE) || t->secure;
	uint32_t cand[HL_MAX_REGIONS];
	unsigned n = rg_candidates(t, need, secure, place ? place->node : -1,
				   place ? place->region : NULL, cand);
	if (!n)
		return HL_ENOREGION;
	int result = HL_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct hl_region *r = &rg_tab[cand[i]];
		void *p = NULL;
		int err = HL_ENOMEM;
		if (r->id == 0 && t == &rg_default_task) {
			/* The default: the thread-cached path of malloc. */
			int saved = errno;
			p = align > 16 ? hl_aligned_alloc(align, size) : hl_malloc(size);
			errno = saved;
			if (p && (flags & HL_ZERO))
				memset(p, 0, size);
		} else {
			if (rg_enter(r) && rg_qualifies(r, t, need, secure)) {
				sb_arena_t *a = rg_arena(t, r);
				if (a)
					p = rg_alloc_in(r, a, size, align, flags,
							rg_need_of(need, secure ? flags | HL_SECURE : flags),
							&err);
			}
			rg_leave(r);
		}
		if (p) {
			*out = p;
			rg_fire_events();
			return HL_OK;
		}
		if (err == HL_EPERM)
			result = HL_EPERM;
		if (t->quota && lf_load_relaxed(&t->backed) + size > t->quota)
			break;   /* the quota, not the region, is full */
	}
	rg_fire_events();
	return result;
}

HL_EXPORT int hl_alloc_aligned(size_t size, size_t align, const hl_place_t *place,
			       unsigned flags, void **out)
{
	if (!out || (align & (align - 1)) || align > ((size_t)1 << 30) ||
	    (flags & ~(HL_ZERO | HL_NOWAIT | HL_NOMIGRATE | HL_SECURE)))
		return HL_EINVAL;
	if (size > ((size_t)1 << 47))
		return HL_ENOMEM;
	return rg_alloc(size ? size : 1, align, place, flags, out);
}

HL_EXPORT int hl_alloc(size_t size, const hl_place_t *place, unsigned flags, void **out)
{
	return hl_alloc_aligned(size, 0, place, flags, out);
}

/* malloc and friends in a thread of a task other than the default. */
void *rg_task_alloc(size_t size, size_t align, bool zero)
{
	void *p = NULL;
	if (size > ((size_t)1 << 47) ||
	    rg_alloc(size, align, NULL, zero ? HL_ZERO : 0, &p) != HL_OK) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *rg_realloc(void *p, unsigned arena, size_t old, size_t size)
{
	sb_arena_t *a = sb_arena(arena);
	struct hl_region *r = &rg_tab[a->region];
	void *q = NULL;
	int err = HL_ENOMEM;
	/* The new block inherits what the old one's superblock was
	 * allocated under. */
	hl_desc_t *d = rg_desc_of(p);
	uint32_t need = d ? lf_load_relaxed(&d->need) : rg_need_of(0, 0);
	if (rg_enter(r))
		q = rg_alloc_in(r, a, size, 0, 0, need, &err);
	rg_leave(r);
	if (!q) {
		rg_fire_events();
		errno = ENOMEM;
		return NULL;   /* p untouched */
	}
	memcpy(q, p, old < size ? old : size);
	hl_free(p);
	return q;
}

size_t rg_sweep(sb_arena_t *a)
{
	struct hl_region *r = &rg_tab[a->region];
	size_t n = 0;
	if (rg_enter(r) && lf_load_relaxed(&a->gen) == lf_load_relaxed(&r->gen))
		n = sb_sweep_arena(a, true);
	rg_leave(r);
	return n;
}

/* ---- regions: create, delete, reset, query ------------------------------ */

static void rg_pool_release(struct hl_region *r)
{
	if (!r->pool)
		return;
	/* Forget the slot records: a stale pointer is then "invalid". */
	for (size_t off = 0; off < r->pool_len; off += HL_SLOT_SIZE) {
		pm_slot_t *rec = pm_lookup(r->pool + off);
		lf_store_release(&rec->word, 0);
		lf_store_relaxed(&rec->link, 0);
	}
	if (r->secure)
		munlock(r->pool, r->pool_len);
	if (r->backing != HL_BACKING_BUFFER)
		os_unmap(r->pool, r->pool_len);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->pool = NULL;
	r->pool_len = 0;
}

static int rg_pool_setup(struct hl_region *r, const hl_region_attr_t *at)
{
	size_t len = r->capacity;
	char *p = NULL;
	switch (r->backing) {
	case HL_BACKING_MEMFD: {
		int fd = memfd_create(r->name[0] ? r->name : "heaplib", MFD_CLOEXEC);
		if (fd < 0)
			return HL_ENOMEM;
		if (ftruncate(fd, (off_t)len) != 0) {
			close(fd);
			return HL_ENOMEM;
		}
		/* 64 KiB-aligned: reserve, then map the file over it. */
		char *res = os_map_aligned(len, HL_SLOT_SIZE);
		if (!res ||
		    mmap(res, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
			if (res)
				os_unmap(res, len);
			close(fd);
			return HL_ENOMEM;
		}
		r->fd = fd;
		p = res;
		break;
	}
	case HL_BACKING_HUGETLB:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED)
			return HL_ENOMEM;   /* no huge pages reserved */
		break;
	case HL_BACKING_BUFFER:
		p = at->buffer;
		break;
	default:
		return HL_OK;
	}
	r->pool = p;
	r->pool_len = len;
	r->pool_next = 0;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++)
		lf_tstack_init(&r->pool_free[o]);
	if (!pm_map_foreign(p, len)) {
		rg_pool_release(r);
		return HL_EINVAL;
	}
	if (r->secure) {
		if (mlock(p, len) != 0) {
			rg_pool_release(r);
			return HL_EPERM;
		}
		madvise(p, len, MADV_DONTDUMP);
	}
	return HL_OK;
}

static int rg_attr_check(const hl_region_attr_t *at)
{
	if (!at || at->struct_size < sizeof(hl_region_attr_t))
		return HL_EINVAL;
	unsigned reach = at->reach ? at->reach : HL_REACH_SYS;
	if (reach & ~RG_REACH_ALL)
		return HL_EINVAL;
	if ((reach & HL_REACH_DMA) && at->backing != HL_BACKING_BUFFER)
		return HL_EINVAL;   /* anonymous pages cannot be made DMA-capable */
	if ((unsigned)at->backing > HL_BACKING_BUFFER)
		return HL_EINVAL;
	size_t cap = at->capacity;
	if (at->backing != HL_BACKING_ANON) {
		if (!cap || cap % HL_SLOT_SIZE)
			return HL_EINVAL;
		if (at->backing == HL_BACKING_HUGETLB && cap % RG_HUGE)
			return HL_EINVAL;
		if (at->backing == HL_BACKING_BUFFER &&
		    (!at->buffer || (uintptr_t)at->buffer % HL_SLOT_SIZE))
			return HL_EINVAL;
	} else if (at->buffer) {
		return HL_EINVAL;
	}
	if ((at->wmark_min | at->wmark_low | at->wmark_high) &&
	    (!cap || at->wmark_min > at->wmark_low || at->wmark_low > at->wmark_high ||
	     at->wmark_high > cap))
		return HL_EINVAL;
	return HL_OK;
}

HL_EXPORT int hl_region_create(const hl_region_attr_t *at, hl_region_t **out)
{
	if (!out)
		return HL_EINVAL;
	int e = rg_attr_check(at);
	if (e)
		return e;
	hl_ensure_init();
	struct hl_region *r = NULL;
	for (uint32_t id = 1; id < HL_MAX_REGIONS && !r; id++) {
		uint32_t st = RG_FREE;
		if (lf_cas_strong_acq_rel(&rg_tab[id].state, &st, (uint32_t)RG_CREATING))
			r = &rg_tab[id];
	}
	if (!r)
		return HL_ENOMEM;   /* all HL_MAX_REGIONS - 1 regions exist */
	memset(r->name, 0, sizeof r->name);
	if (at->name)
		strncpy(r->name, at->name, sizeof r->name - 1);
	/* Relaxed stores: a racing fallback-list builder may read these
	 * before the region is alive (and then checks again). */
	lf_store_relaxed(&r->reach, at->reach ? at->reach : HL_REACH_SYS);
	lf_store_relaxed(&r->secure, at->secure != 0);
	lf_store_relaxed(&r->node, at->node);
	r->backing = at->backing;
	lf_store_relaxed(&r->capacity, (uint64_t)at->capacity);
	lf_store_relaxed(&r->wmin, (uint64_t)at->wmark_min);
	r->wlow = at->wmark_low;
	r->whigh = at->wmark_high;
	r->notify = at->notify;
	r->notify_arg = at->notify_arg;
	r->backed = r->live_bytes = r->live_blocks = r->superblocks = 0;
	r->allocs = r->frees = r->ev_low = r->ev_high = 0;
	r->below_low = 0;
	e = rg_pool_setup(r, at);
	if (e) {
		lf_store_release(&r->state, (uint32_t)RG_FREE);
		return e;
	}
	rg_check_wmark(r);   /* a region made smaller than low starts low */
	rg_pend_low &= ~((uint64_t)1 << r->id);
	lf_store_release(&r->state, (uint32_t)RG_ALIVE);
	*out = r;
	return HL_OK;
}

/* Enter a teardown state and wait for allocations in flight to finish
 * (they are lock-free: the wait is bounded by their steps). */
static int rg_quiesce(struct hl_region *r, uint32_t to)
{
	uint32_t st = RG_ALIVE;
	if (!lf_cas_strong_seq_cst(&r->state, &st, to))
		return st == RG_DELETING || st == RG_RESETTING ? HL_EBUSY : HL_EINVAL;
	while (lf_load_seq_cst(&r->inflight))
		sched_yield();
	return HL_OK;
}

static bool rg_arena_of_region(sb_arena_t *a, const struct hl_region *r)
{
	return a && a->id != 0 && a->region == r->id &&
	       lf_load_relaxed(&a->gen) == lf_load_relaxed(&r->gen);
}

HL_EXPORT int hl_region_delete(hl_region_t *region)
{
	if (!rg_handle_ok(region))
		return HL_EINVAL;
	struct hl_region *r = region;
	if (r->id == 0)
		return HL_EPERM;   /* the default region is malloc's */
	int e = rg_quiesce(r, RG_DELETING);
	if (e)
		return e;
	if (lf_load_acquire(&r->live_blocks)) {
		lf_store_release(&r->state, (uint32_t)RG_ALIVE);
		return HL_EBUSY;
	}
	/* Nothing live: every superblock is fully free, in an arena's slot
	 * or on its partial list.  Retire them all. */
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (rg_arena_of_region(a, r))
			sb_sweep_arena(a, true);
	}
	if (lf_load_acquire(&r->backed)) {
		/* Should not happen; never release memory that is still
		 * backed.  Report busy and keep the region. */
		lf_store_release(&r->state, (uint32_t)RG_ALIVE);
		return HL_EBUSY;
	}
	rg_pool_release(r);
	lf_fetch_add_relaxed(&r->gen, 1u);
	rg_pend_low &= ~((uint64_t)1 << r->id);
	rg_pend_high &= ~((uint64_t)1 << r->id);
	lf_store_release(&r->state, (uint32_t)RG_FREE);
	return HL_OK;
}

typedef struct rg_reset_ctx {
	struct hl_region *r;
	size_t n;
} rg_reset_ctx_t;

static void rg_reset_one(pm_slot_t *rec, void *ctx)
{
	rg_reset_ctx_t *c = ctx;
	uint64_t w = lf_load_acquire(&rec->word);
	unsigned ai = PM_ARENA(w);
	if (ai == 0 || ai >= HL_MAX_ARENAS || !rg_arena_of_region(sb_arena(ai), c->r))
		return;
	sb_force_retire(desc_at(PM_DESC(w)));
	c->n++;
}

static bool rg_reset_pick(unsigned arena, void *ctx)
{
	return arena < HL_MAX_ARENAS && rg_arena_of_region(sb_arena(arena), ctx);
}

HL_EXPORT int hl_region_reset(hl_region_t *region)
{
	if (!rg_handle_ok(region))
		return HL_EINVAL;
	struct hl_region *r = region;
	if (r->id == 0)
		return HL_EPERM;
	int e = rg_quiesce(r, RG_RESETTING);
	if (e)
		return e;
	/* Take every superblock out of the arenas' slots and lists, then
	 * retire each one found in the page map. */
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (!rg_arena_of_region(a, r))
			continue;
		for (unsigned c = 0; c < HL_NCLASSES; c++) {
			lf_store_release(&a->heaps[0].slot[c].active, 0u);
			lf_store_release(&a->heaps[0].slot[c].partial, 0u);
			uint32_t idx = lf_tstack_pop_all(&a->plist[c]);
			while (idx) {
				hl_desc_t *d = desc_at(idx);
				idx = lf_load_relaxed(&d->plist_link);
				lf_store_relaxed(&d->listed, 0u);
			}
		}
	}
	rg_reset_ctx_t ctx = { r, 0 };
	pm_scan(rg_reset_one, &ctx);
	large_reset(rg_reset_pick, r);
	/* The blocks are gone: take them off the books. */
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (!rg_arena_of_region(a, r))
			continue;
		uint64_t b = lf_exchange_acq_rel(&a->live_bytes, 0);
		uint64_t k = lf_exchange_acq_rel(&a->live_blocks, 0);
		lf_fetch_sub_relaxed(&a->task->live_bytes, b);
		lf_fetch_sub_relaxed(&a->task->live_blocks, k);
	}
	lf_store_release(&r->live_bytes, 0);
	lf_store_release(&r->live_blocks, 0);
	lf_store_release(&r->state, (uint32_t)RG_ALIVE);
	rg_fire_events();
	return HL_OK;
}

HL_EXPORT hl_region_t *hl_region_default(void)
{
	hl_ensure_init();
	return &rg_tab[0];
}

HL_EXPORT hl_region_t *hl_region_of(const void *p)
{
	if (!p)
		return NULL;
	int arena = rg_arena_id_of(p);
	if (arena < 0 || arena >= (int)HL_MAX_ARENAS)
		return NULL;
	sb_arena_t *a = sb_arena((unsigned)arena);
	return a ? &rg_tab[a->region] : NULL;
}

HL_EXPORT const char *hl_region_name(const hl_region_t *r)
{
	return rg_handle_ok(r) ? r->name : NULL;
}

HL_EXPORT int hl_region_stats(const hl_region_t *r, hl_region_stats_t *st)
{
	if (!rg_handle_ok(r) || !st || st->struct_size < sizeof *st)
		return HL_EINVAL;
	uint32_t s = lf_load_acquire(&r->state);
	if (s == RG_FREE || s == RG_CREATING)
		return HL_EINVAL;
	size_t sz = st->struct_size;
	memset(st, 0, sizeof *st);
	st->struct_size = sz;
	st->capacity = r->capacity;
	if (r->id == 0) {
		/* The default region: its superblocks and large blocks.  Its
		 * live blocks are not counted (the fast path counts nothing). */
		sb_arena_t *a0 = sb_arena(0);
		st->bytes_backed = lf_load_relaxed(&a0->backed) + lf_load_relaxed(&hl_ctr.large_bytes);
		st->superblocks = lf_load_relaxed(&a0->superblocks);
	} else {
		st->bytes_backed = lf_load_relaxed(&r->backed);
		st->superblocks = lf_load_relaxed(&r->superblocks);
	}
	st->bytes_live = lf_load_relaxed(&r->live_bytes);
	st->blocks_live = lf_load_relaxed(&r->live_blocks);
	st->allocs = lf_load_relaxed(&r->allocs);
	st->frees = lf_load_relaxed(&r->frees);
	st->events_low = lf_load_relaxed(&r->ev_low);
	st->events_high = lf_load_relaxed(&r->ev_high);
	return HL_OK;
}

/* ---- tasks --------------------------------------------------------------- */

static bool rg_task_ok(const hl_task_t *t)
{
	return t && (t == &rg_default_task || lf_load_acquire(&t->id) != 0);
}

/* Every task ever created, so that a destroyed one can be taken over. */
#define RG_MAX_TASKS 65536u
static struct hl_task *rg_tasks[RG_MAX_TASKS];
static uint32_t rg_ntasks;

/* A destroyed task that holds nothing any more, claimed for reuse with its
 * arenas (arena ids are not spent on every create/destroy cycle); NULL if
 * there is none.  State 3 = being taken over. */
static struct hl_task *rg_task_recycle(void)
{
	uint32_t n = lf_load_acquire(&rg_ntasks);
	for (uint32_t i = 0; i < n && i < RG_MAX_TASKS; i++) {
		struct hl_task *t = lf_load_acquire(&rg_tasks[i]);
		uint32_t st = 0;
		if (!t || lf_load_relaxed(&t->state) != 0 ||
		    !lf_cas_strong_acq_rel(&t->state, &st, 3u))
			continue;
		if (lf_load_acquire(&t->live_blocks) == 0) {
			/* Its empty superblocks go back; then nothing is
			 * backed for it. */
			for (uint32_t r = 0; r < HL_MAX_REGIONS; r++) {
				sb_arena_t *a = lf_load_acquire(&t->arena[r]);
				if (a)
					rg_sweep(a);
			}
			if (lf_load_acquire(&t->backed) == 0)
				return t;
		}
		lf_store_release(&t->state, 0u);
	}
	return NULL;
}

HL_EXPORT int hl_task_create(const hl_task_attr_t *at, hl_task_t **out)
{
	if (!out || !at || at->struct_size < sizeof(hl_task_attr_t) ||
	    (at->nregions && !at->regions))
		return HL_EINVAL;
	hl_ensure_init();
	uint64_t allowed = at->regions ? 0 : ~(uint64_t)0;
	for (size_t i = 0; i < at->nregions; i++) {
		const hl_region_t *r = at->regions[i];
		if (!rg_handle_ok(r) || lf_load_acquire(&r->state) != RG_ALIVE)
			return HL_EINVAL;
		allowed |= (uint64_t)1 << r->id;
	}
	struct hl_task *t = rg_task_recycle();
	bool fresh = t == NULL;
	if (fresh) {
		uint32_t slot = lf_fetch_add_relaxed(&rg_ntasks, 1u);
		if (slot >= RG_MAX_TASKS)
			return HL_ENOMEM;   /* RG_MAX_TASKS tasks hold memory at once */
		t = os_map(sizeof *t);
		if (!t)
			return HL_ENOMEM;
		t->state = 3;   /* ours until set up: not for recycling */
		lf_store_release(&rg_tasks[slot], t);
	}
	memset(t->name, 0, sizeof t->name);
	if (at->name)
		strncpy(t->name, at->name, sizeof t->name - 1);
	t->quota = at->quota;
	t->secure = at->secure != 0;
	t->allowed = allowed;
	if (fresh)
		lf_store_release(&t->id, lf_fetch_add_relaxed(&rg_task_ids, 1u) + 1);
	lf_store_release(&t->state, 1u);
	*out = t;
	return HL_OK;
}

HL_EXPORT int hl_task_join(hl_task_t *task)
{
	hl_ensure_init();
	struct hl_task *t = task ? task : &rg_default_task;
	if (!rg_task_ok(t))
		return HL_EINVAL;
	struct hl_task *old = rg_task_cur();
	if (old == t)
		return HL_OK;
	/* Threads are counted in the tasks other than the default. */
	if (t != &rg_default_task) {
		lf_fetch_add_seq_cst(&t->threads, 1);
		if (lf_load_seq_cst(&t->state) != 1) {
			lf_fetch_sub_release(&t->threads, 1);
			return HL_EINVAL;   /* destroyed */
		}
	}
	if (t != &rg_default_task) {
		/* The cache holds the old task's blocks: flush it, and go on
		 * without one (thread caches are the default task's). */
		tc_detach();
		tc_exit_hook_ensure();
	}
	hl_cur_task = t == &rg_default_task ? NULL : t;
	if (old != &rg_default_task)
		lf_fetch_sub_release(&old->threads, 1);
	return HL_OK;
}

void rg_thread_exit(void)
{
	struct hl_task *t = hl_cur_task;
	if (t) {
		hl_cur_task = NULL;
		lf_fetch_sub_release(&t->threads, 1);
	}
}

HL_EXPORT int hl_task_destroy(hl_task_t *t)
{
	if (!rg_task_ok(t))
		return HL_EINVAL;
	if (t == &rg_default_task)
		return HL_EPERM;
	uint32_t st = 1;
	if (!lf_cas_strong_seq_cst(&t->state, &st, 2u))
		return HL_EINVAL;
	if (lf_load_seq_cst(&t->threads)) {
		lf_store_release(&t->state, 1u);
		return HL_EBUSY;
	}
	/* Its blocks stay valid and are freed as usual; the task record and
	 * its arenas stay (type-stable), never to be joined again. */
	lf_store_release(&t->state, 0u);
	return HL_OK;
}

HL_EXPORT int hl_task_stats(const hl_task_t *t, const hl_region_t *region,
			    hl_task_stats_t *st)
{
	if (!rg_task_ok(t) || !st || st->struct_size < sizeof *st ||
	    (region && !rg_handle_ok(region)))
		return HL_EINVAL;
	size_t sz = st->struct_size;
	memset(st, 0, sizeof *st);
	st->struct_size = sz;
	st->threads = lf_load_relaxed(&t->threads);
	st->quota = t->quota;
	if (!region) {
		st->bytes_backed = lf_load_relaxed(&t->backed);
		st->bytes_live = lf_load_relaxed(&t->live_bytes);
		st->blocks_live = lf_load_relaxed(&t->live_blocks);
		return HL_OK;
	}
	sb_arena_t *a = t == &rg_default_task && region->id == 0
				? sb_arena(0)
				: lf_load_acquire(&((struct hl_task *)t)->arena[region->id]);
	if (a && lf_load_relaxed(&a->gen) == lf_load_acquire(&region->gen)) {
		st->bytes_backed = lf_load_relaxed(&a->backed);
		st->bytes_live = lf_load_relaxed(&a->live_bytes);
		st->blocks_live = lf_load_relaxed(&a->live_blocks);
	}
	return HL_OK;
}

HL_EXPORT hl_task_t *hl_task_self(void)
{
	return rg_task_cur();
}
