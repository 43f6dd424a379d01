/*
 * Tasks (DESIGN.md section 6): groups of threads with a policy, and the
 * (task, region) -> arena map.
 *
 * A task has its own arenas (its superblocks are its own), exact
 * accounting per region, an optional quota (its budget, charged by
 * mem/backing.c), a secure flag and the set of regions it may use.  Task
 * records and their arenas are never freed (type-stable): a destroyed
 * task that holds nothing is taken over by the next hl_task_create.
 *
 * Concurrency: every call may run in any threads at once.  Joining and
 * destroying meet on the task's state and thread count (seq_cst both
 * ways: a join that counts itself and then sees the task alive keeps
 * destroy from succeeding).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>

#include "policy/policy.h"

/* hl_task_attr_t as the first header had it: the least a caller gives. */
#define TASK_ATTR_V1 (offsetof(hl_task_attr_t, nregions) + sizeof(size_t))

static struct hl_task task_default;
static uint32_t task_ids;

__thread struct hl_task *hl_cur_task HL_TLS;

/* Every task ever created, so that a destroyed one can be taken over. */
#define TASK_MAX 65536u
static struct hl_task *task_tab[TASK_MAX];
static uint32_t task_n;

/* Blocks a task thread's cache put back into their superblocks (they
 * were counted live when they left them: place.c). */
static void task_cache_account(sb_arena_t *a, int64_t bytes, int64_t blocks)
{
	region_live(region_at(a->region), a, bytes, blocks);
}

void task_init(void)
{
	tk_set_account_hook(task_cache_account);
	task_default.state = TASK_ALIVE;
	task_default.allowed = ~(uint64_t)0;
	memcpy(task_default.name, "default", 8);
	/* malloc's own arena is the default task's in region 0 (the mover
	 * reads a superblock's task from its arena). */
	lf_store_release(&sb_arena(0)->task, &task_default);
}

struct hl_task *task_cur(void)
{
	struct hl_task *t = hl_cur_task;
	return t ? t : &task_default;
}

bool task_is_default(const struct hl_task *t)
{
	return t == &task_default;
}

static bool task_ok(const hl_task_t *t)
{
	return t && (t == &task_default || lf_load_acquire(&t->id) != 0);
}

/* ---- the arena of (task, region) ---------------------------------------- */

static sb_arena_t *task_arena_reclaim(struct hl_task *t, struct hl_region *r);

static sb_arena_t *task_arena(struct hl_task *t, struct hl_region *r)
{
	if (t == &task_default && r->id == 0)
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
	sb_arena_t *mine = arena_new(r->id, t, r->bk, &t->budget);
	if (!mine)
		return task_arena_reclaim(t, r);
	lf_store_relaxed(&mine->gen, gen);
	if (lf_cas_strong_acq_rel(&t->arena[r->id], &a, mine))
		return mine;
	return a;   /* another thread installed one first (the id is spent) */
}

/* Arena ids are few (HL_MAX_ARENAS): an arena whose pair holds nothing
 * is taken over for another pair.  Its users count (allocations that
 * found it in their task's slot) and its owner slot meet in a Dekker
 * handshake, both sides seq_cst: an allocation counts itself and then
 * checks the slot still names the arena; a reclaim empties the slot and
 * then checks nobody counts.  One of the two sees the other, and nobody
 * waits: a busy arena is given back and another one looked at. */
sb_arena_t *task_arena_use(struct hl_task *t, struct hl_region *r)
{
	for (int tries = 0; tries < 4; tries++) {
		sb_arena_t *a = task_arena(t, r);
		if (!a || a->id == 0)
			return a;
		lf_fetch_add_seq_cst(&a->users, 1);
		if (lf_load_seq_cst(&t->arena[r->id]) == a)
			return a;
		lf_fetch_sub_release(&a->users, 1);   /* taken over meanwhile */
	}
	return NULL;
}

void task_arena_done(sb_arena_t *a)
{
	if (a->id != 0)
		lf_fetch_sub_release(&a->users, 1);
}

static bool task_arena_empty(sb_arena_t *a)
{
	return !lf_load_acquire(&a->live_blocks) && !lf_load_acquire(&a->superblocks) &&
	       !lf_load_acquire(&a->acct.backed);
}

static sb_arena_t *task_arena_reclaim(struct hl_task *t, struct hl_region *r)
{
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 1; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		uint32_t zero = 0;
		if (!a || lf_load_relaxed(&a->live_blocks) ||
		    !lf_cas_strong_acq_rel(&a->claim, &zero, 1u))
			continue;
		if (lf_load_relaxed(&a->superblocks))
			region_sweep(a);   /* its empty superblocks first */
		struct hl_task *ot = a->task;
		uint32_t orid = a->region;
		sb_arena_t *exp = a;
		/* Its pair forgets it (or already has: an orphan of an earlier
		 * reclaim that lost its install). */
		bool was_slot = task_arena_empty(a) &&
				lf_cas_strong_seq_cst(&ot->arena[orid], &exp, (sb_arena_t *)NULL);
		if ((was_slot || exp != a) && task_arena_empty(a) && !lf_load_seq_cst(&a->users)) {
			lf_store_relaxed(&a->region, r->id);
			lf_store_relaxed(&a->task, t);   /* tk_cached may read it */
			a->acct.bk = r->bk;
			a->acct.budget = &t->budget;
			lf_store_relaxed(&a->gen, lf_load_acquire(&r->gen));
			lf_store_relaxed(&a->last_ms, 0u);
			sb_arena_t *none = NULL;
			bool mine = lf_cas_strong_seq_cst(&t->arena[r->id], &none, a);
			lf_store_release(&a->claim, 0u);
			return mine ? a : none;   /* else an orphan, for the next reclaim */
		}
		if (was_slot) {
			/* Busy after all: give it back if its slot is still free. */
			sb_arena_t *none = NULL;
			lf_cas_strong_seq_cst(&ot->arena[orid], &none, a);
		}
		lf_store_release(&a->claim, 0u);
	}
	return NULL;
}

/* ---- life --------------------------------------------------------------- */

/* A destroyed task that holds nothing any more, claimed for reuse with its
 * arenas (arena ids are not spent on every create/destroy cycle); NULL if
 * there is none. */
static struct hl_task *task_recycle(void)
{
	uint32_t n = lf_load_acquire(&task_n);
	for (uint32_t i = 0; i < n && i < TASK_MAX; i++) {
		struct hl_task *t = lf_load_acquire(&task_tab[i]);
		uint32_t st = TASK_DEAD;
		if (!t || lf_load_relaxed(&t->state) != TASK_DEAD ||
		    !lf_cas_strong_acq_rel(&t->state, &st, (uint32_t)TASK_CLAIMED))
			continue;
		if (lf_load_acquire(&t->live_blocks) == 0) {
			/* Its empty superblocks go back; then nothing is
			 * backed for it. */
			for (uint32_t r = 0; r < HL_MAX_REGIONS; r++) {
				sb_arena_t *a = lf_load_acquire(&t->arena[r]);
				if (a)
					region_sweep(a);
			}
			if (lf_load_acquire(&t->budget.used) == 0)
				return t;
		}
		lf_store_release(&t->state, (uint32_t)TASK_DEAD);
	}
	return NULL;
}

HL_EXPORT int hl_task_create(const hl_task_attr_t *user, hl_task_t **out)
{
	hl_task_attr_t attr, *at = &attr;
	if (!out || !hl_struct_in(&attr, sizeof attr, user, TASK_ATTR_V1) ||
	    (at->nregions && !at->regions) ||
	    (at->share_limit && !region_handle_ok(at->share_region)) ||
	    (at->share_region && !at->share_limit))
		return HL_EINVAL;
	hl_ensure_init();
	uint64_t allowed = at->regions ? 0 : ~(uint64_t)0;
	uint32_t gen[HL_MAX_REGIONS];
	for (size_t i = 0; i < at->nregions; i++) {
		const hl_region_t *r = at->regions[i];
		if (!region_handle_ok(r))
			return HL_EINVAL;
		gen[r->id] = lf_load_acquire(&r->gen);
		if (lf_load_acquire(&r->state) != REGION_ALIVE)
			return HL_EINVAL;
		allowed |= (uint64_t)1 << r->id;
	}
	struct hl_task *t = task_recycle();
	bool fresh = t == NULL;
	if (fresh) {
		uint32_t slot = lf_fetch_add_relaxed(&task_n, 1u);
		if (slot >= TASK_MAX)
			return HL_ENOMEM;   /* TASK_MAX tasks hold memory at once */
		t = os_map(sizeof *t);
		if (!t)
			return HL_ENOMEM;
		t->state = TASK_CLAIMED;   /* ours until set up: not for recycling */
		lf_store_release(&task_tab[slot], t);
	}
	memset(t->name, 0, sizeof t->name);
	if (at->name)
		strncpy(t->name, at->name, sizeof t->name - 1);
	t->budget.limit = at->quota;
	t->share_region = at->share_limit ? at->share_region->id + 1 : 0;
	t->share_limit = at->share_limit;
	t->on_move = at->on_move;
	t->on_move_arg = at->on_move_arg;
	lf_store_relaxed(&t->ev_lost, 0u);
	lf_store_release(&t->ev_tail, lf_load_acquire(&t->ev_head));   /* a reused record's old events */
	t->secure = at->secure != 0;
	t->allowed = allowed;
	t->some_regions = at->regions != NULL;
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++)
		lf_store_relaxed(&t->allowed_gen[id],
				 allowed & ((uint64_t)1 << id) && t->some_regions ? gen[id] : 0u);
	if (fresh)
		lf_store_release(&t->id, lf_fetch_add_relaxed(&task_ids, 1u) + 1);
	lf_store_release(&t->state, (uint32_t)TASK_ALIVE);
	*out = t;
	return HL_OK;
}

HL_EXPORT int hl_task_join(hl_task_t *task)
{
	hl_ensure_init();
	struct hl_task *t = task ? task : &task_default;
	if (!task_ok(t))
		return HL_EINVAL;
	struct hl_task *old = task_cur();
	if (old == t)
		return HL_OK;
	/* Threads are counted in the tasks other than the default. */
	if (t != &task_default) {
		lf_fetch_add_seq_cst(&t->threads, 1);
		if (lf_load_seq_cst(&t->state) != TASK_ALIVE) {
			lf_fetch_sub_release(&t->threads, 1);
			return HL_EINVAL;   /* destroyed */
		}
		/* The caches hold the old task's blocks: the default cache is
		 * flushed and given back, the task cache emptied for the new
		 * task's blocks; the thread's exit must leave the task. */
		tc_detach();
		tk_flush();
		thread_exit_ensure();
	} else {
		tc_attach();
		tk_release(false);
	}
	hl_cur_task = t == &task_default ? NULL : t;
	if (old != &task_default)
		lf_fetch_sub_release(&old->threads, 1);
	return HL_OK;
}

void task_thread_exit(void)
{
	struct hl_task *t = hl_cur_task;
	tk_release(true);   /* its blocks go home while it is still counted */
	if (t) {
		hl_cur_task = NULL;
		lf_fetch_sub_release(&t->threads, 1);
	}
}

HL_EXPORT int hl_task_destroy(hl_task_t *t)
{
	if (!task_ok(t))
		return HL_EINVAL;
	if (t == &task_default)
		return HL_EPERM;
	uint32_t st = TASK_ALIVE;
	if (!lf_cas_strong_seq_cst(&t->state, &st, (uint32_t)TASK_DESTROYING))
		return HL_EINVAL;
	if (lf_load_seq_cst(&t->threads)) {
		lf_store_release(&t->state, (uint32_t)TASK_ALIVE);
		return HL_EBUSY;
	}
	/* Its blocks stay valid and are freed as usual; the task record and
	 * its arenas stay (type-stable), never to be joined again. */
	lf_store_release(&t->state, (uint32_t)TASK_DEAD);
	return HL_OK;
}

HL_EXPORT int hl_task_stats(const hl_task_t *t, const hl_region_t *region,
			    hl_task_stats_t *out)
{
	if (!task_ok(t) || !hl_struct_out_ok(out) || (region && !region_handle_ok(region)))
		return HL_EINVAL;
	hl_task_stats_t stats = { .struct_size = sizeof stats }, *st = &stats;
	tk_filter_t f = { 0, t, -1 };
	st->threads = lf_load_relaxed(&t->threads);
	st->quota = t->budget.limit;
	if (!region) {
		st->bytes_backed = lf_load_relaxed(&t->budget.used);
		st->bytes_live = lf_load_relaxed(&t->live_bytes);
		st->blocks_live = lf_load_relaxed(&t->live_blocks);
	} else {
		sb_arena_t *a = t == &task_default && region->id == 0
					? sb_arena(0)
					: lf_load_acquire(&((struct hl_task *)t)->arena[region->id]);
		if (a && lf_load_relaxed(&a->gen) == lf_load_acquire(&region->gen)) {
			st->bytes_backed = lf_load_relaxed(&a->acct.backed);
			st->bytes_live = lf_load_relaxed(&a->live_bytes);
			st->blocks_live = lf_load_relaxed(&a->live_blocks);
			f.arena = a->id;
		}
	}
	region_live_held(&f, &st->bytes_live, &st->blocks_live);
	hl_struct_out(out, st, sizeof stats);
	return HL_OK;
}

void task_each(void (*fn)(struct hl_task *t, void *ctx), void *ctx)
{
	fn(&task_default, ctx);
	uint32_t n = lf_load_acquire(&task_n);
	for (uint32_t i = 0; i < n && i < TASK_MAX; i++) {
		struct hl_task *t = lf_load_acquire(&task_tab[i]);
		if (t && lf_load_acquire(&t->state) == TASK_ALIVE)
			fn(t, ctx);
	}
}

HL_EXPORT hl_task_t *hl_task_self(void)
{
	return task_cur();
}

/* ---- move events (the coordinator) -------------------------------------- */

void task_note_move(struct hl_task *t, uint32_t from, uint32_t to, uint64_t bytes)
{
	if (!t->on_move)
		return;
	uint64_t h = lf_load_relaxed(&t->ev_head);
	if (h - lf_load_acquire(&t->ev_tail) >= TASK_EVENTS) {
		lf_fetch_add_relaxed(&t->ev_lost, 1u);
		return;
	}
	unsigned i = (unsigned)(h % TASK_EVENTS);
	lf_store_relaxed(&t->ev[i].from, from);
	lf_store_relaxed(&t->ev[i].to, to);
	lf_store_relaxed(&t->ev[i].bytes, bytes);
	lf_store_release(&t->ev_head, h + 1);
}

int task_fire_events(void)
{
	struct hl_task *t = hl_cur_task;
	static __thread int in_event;
	if (HL_LIKELY(!t) || lf_load_acquire(&t->ev_head) == lf_load_relaxed(&t->ev_tail) ||
	    in_event || !t->on_move)
		return 0;
	in_event = 1;   /* a callback that allocates does not run the next one inside */
	int n = 0;
	for (;;) {
		uint64_t tail = lf_load_acquire(&t->ev_tail);
		if (tail == lf_load_acquire(&t->ev_head))
			break;
		unsigned i = (unsigned)(tail % TASK_EVENTS);
		uint32_t from = lf_load_relaxed(&t->ev[i].from), to = lf_load_relaxed(&t->ev[i].to);
		uint64_t bytes = lf_load_relaxed(&t->ev[i].bytes);
		/* Read, then claimed: another of the task's threads may have
		 * taken it meanwhile (the slot is not rewritten before the
		 * claim, the coordinator waits for the tail to pass it). */
		if (!lf_cas_strong_acq_rel(&t->ev_tail, &tail, tail + 1))
			continue;
		hl_move_event_t ev = { region_at(from), region_at(to), (size_t)bytes,
				       lf_exchange_acq_rel(&t->ev_lost, 0u) };
		t->on_move(t, &ev, t->on_move_arg);
		n++;
	}
	in_event = 0;
	return n;
}

HL_EXPORT int hl_task_poll(void)
{
	region_fire_events();   /* the coordinator's watermark crossings too */
	return task_fire_events();
}
