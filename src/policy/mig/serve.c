/*
 * Serving one migration job (a request, or a background pass): snapshot
 * the regions and the superblocks the job is about, plan (plan.c), make
 * the moves (move.c), and count everything in the statistics.  Runs on
 * the coordinator thread only.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mig/mig.h"

#define MIG_SNAP_SB 65536u      /* superblocks looked at per job */
#define MIG_BUSY_TRIES 16       /* claims of a superblock in use */

static mig_sbsnap_t *mig_sb;    /* snapshot buffers, mapped once */
static mig_move_t *mig_mv;

mig_stats_t mig_st;
uint32_t mig_stop;

_Static_assert(MIG_NWHY <= HL_MIGRATE_WHY, "every reason has a counter");
_Static_assert(MIG_NTIERS == HL_MIGRATE_TIERS, "one counter a tier");

bool mig_serve_init(void)
{
	if (!mig_sb) {
		mig_sb = os_map(MIG_SNAP_SB * sizeof *mig_sb);
		mig_mv = os_map(MIG_SNAP_SB * sizeof *mig_mv);
	}
	return mig_sb && mig_mv;
}

static void mig_hist(uint64_t *h, uint64_t ns)
{
	static const uint64_t edge_us[HL_MIGRATE_HIST - 1] = { 10, 50, 100, 200, 500, 1000, 10000 };
	uint64_t us = ns / 1000;
	unsigned i = 0;
	while (i < HL_MIGRATE_HIST - 1 && us >= edge_us[i])
		i++;
	lf_fetch_add_relaxed(&h[i], 1);
}

static unsigned mig_snap_regions(mig_rsnap_t *out)
{
	unsigned n = 0;
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = region_at(id);
		uint32_t st = lf_load_acquire(&r->state);
		if (st != REGION_ALIVE && st != REGION_DELETING)
			continue;
		bk_t *bk = r->bk;
		out[n++] = (mig_rsnap_t){
			.id = id, .open = st == REGION_ALIVE && !lf_load_relaxed(&r->inherited),
			.reach = lf_load_relaxed(&r->reach), .secure = lf_load_relaxed(&bk->secure),
			.node = lf_load_relaxed(&r->node), .kind = bk->kind,
			.capacity = lf_load_relaxed(&bk->capacity), .backed = lf_load_relaxed(&bk->backed),
			.wmin = lf_load_relaxed(&r->wmin), .wlow = r->wlow,
		};
	}
	return n;
}

typedef struct mig_scan {
	const mig_job_t *q;
	size_t n;
	const void *ptr_base;   /* MIG_J_PTR: the superblock wanted */
} mig_scan_t;

/* Whether memory at base of arena a is what job q is about. */
static bool mig_wanted(mig_scan_t *c, const sb_arena_t *a, const void *base)
{
	const mig_job_t *q = c->q;
	bool want;
	switch (q->kind) {
	case MIG_J_PTR: want = base == c->ptr_base; break;
	case MIG_J_TASK: want = a->task == q->task; break;
	case MIG_J_SHARE: want = a->task == q->task && a->region == q->region; break;
	default: want = a->region == q->region; break;
	}
	return want && c->n < MIG_SNAP_SB;
}

static void mig_scan_one(pm_slot_t *rec, void *ctx)
{
	mig_scan_t *c = ctx;
	uint64_t w = lf_load_acquire(&rec->word);
	if (PM_KIND(w) != PM_SMALL || PM_OFF(w) != 0)
		return;   /* not a live superblock's first slot (any more) */
	hl_desc_t *d = desc_at(PM_DESC(w));
	unsigned ai = PM_ARENA(w);
	sb_arena_t *a = ai < HL_MAX_ARENAS ? sb_arena(ai) : NULL;
	if (!a || !mig_wanted(c, a, lf_load_relaxed(&d->base)))
		return;
	struct hl_task *t = a->task;
	c->n++;
	mig_sb[c->n - 1] = (mig_sbsnap_t){
		.desc = PM_DESC(w), .region = a->region, .task = t->id,
		.need = lf_load_relaxed(&d->need), .allowed = t->allowed,
		.task_secure = t->secure != 0,
		.base = lf_load_relaxed(&d->base),
		.bytes = (uint64_t)lf_load_relaxed(&d->nslots) << HL_SLOT_SHIFT,
		.live = (uint64_t)(lf_load_relaxed(&d->maxcount) - sb_free_count(d)) *
			sc_table[lf_load_relaxed(&d->cls) % HL_NCLASSES].size,
	};
}

/* A region's large block: a superblock of one block, all of it live. */
static void mig_scan_large(void *p, size_t len, unsigned ai, uint32_t need, void *ctx)
{
	mig_scan_t *c = ctx;
	sb_arena_t *a = ai < HL_MAX_ARENAS ? sb_arena(ai) : NULL;
	if (!a || !mig_wanted(c, a, p))
		return;
	struct hl_task *t = a->task;
	mig_sb[c->n++] = (mig_sbsnap_t){
		.desc = ai, .base = p, .large = true, .region = a->region, .task = t->id,
		.fixed = lheap_owns(p) || (((uintptr_t)p | len) & (HL_SLOT_SIZE - 1)),
		.need = ai ? need : need | HL_REACH_SYS,   /* malloc's record none */
		.allowed = t->allowed, .task_secure = t->secure != 0,
		.bytes = len, .live = len,
	};
}

/* The target set a placement names: a bit per region; 0 when no region
 * qualifies. */
static uint64_t mig_targets(const hl_place_t *p)
{
	uint64_t m = 0;
	unsigned need = p->reach ? p->reach : HL_REACH_SYS;
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = region_at(id);
		if ((lf_load_relaxed(&r->reach) & need) == need && (!p->region || p->region == r))
			m |= (uint64_t)1 << id;
	}
	return m;
}

static int mig_result_of(int why)
{
	switch (why) {
	case MIG_OK: return HL_OK;
	case MIG_R_NOROOM: return HL_ENOMEM;
	case MIG_R_BUSY: return HL_EBUSY;
	case MIG_R_REACH: return HL_ENOREGION;
	default: return HL_EPERM;
	}
}

/* Evacuation's moves in order of target, tier and address, so that
 * adjacent superblocks going to one memfd region move as a batch. */
static int mig_mv_cmp(const void *x, const void *y)
{
	const mig_move_t *a = x, *b = y;
	uintptr_t pa = (uintptr_t)mig_sb[a->sb].base, pb = (uintptr_t)mig_sb[b->sb].base;
	if (a->to != b->to)
		return a->to < b->to ? -1 : 1;
	if (a->tier != b->tier)
		return a->tier < b->tier ? -1 : 1;
	return pa < pb ? -1 : pa > pb;
}

/* How many moves from i on make a batch (mig_move_batch): superblocks
 * (no large block), tier 4 into one memfd region, from an anonymous one,
 * each span right after the one before, of one size, 512 KiB in all at
 * most (the loop's first pass looks at move i itself). */
static unsigned mig_run(const mig_plan_t *pl, size_t i, const mig_sbsnap_t **out)
{
	const mig_move_t *m = &mig_mv[i];
	const mig_sbsnap_t *s0 = &mig_sb[m->sb];
	if (m->tier != MIG_T_BACKING || region_at(m->to)->bk->kind != HL_BACKING_MEMFD ||
	    region_at(s0->region)->bk->kind != HL_BACKING_ANON)
		return 0;
	unsigned n = 0;
	uint64_t max = HL_SLOT_SIZE << (HL_SPAN_ORDERS - 1);
	while (i + n < pl->nmoves && n < MIG_BATCH_MAX && (n + 1) * s0->bytes <= max) {
		const mig_move_t *mj = &mig_mv[i + n];
		const mig_sbsnap_t *sj = &mig_sb[mj->sb];
		if (sj->large || mj->to != m->to || mj->tier != m->tier || sj->bytes != s0->bytes ||
		    sj->region != s0->region || sj->base != s0->base + n * s0->bytes)
			break;
		out[n++] = sj;
	}
	return n;
}

static void mig_count(const mig_move_t *m, uint64_t ns, uint64_t pns, mig_job_t *q)
{
	lf_fetch_add_relaxed(&mig_st.moves[m->tier], 1);
	lf_fetch_add_relaxed(&mig_st.bytes[m->tier], mig_sb[m->sb].bytes);
	mig_hist(mig_st.move_us, ns);
	lf_fetch_add_relaxed(&mig_st.move_ns[m->tier], ns);
	if (m->tier == MIG_T_BACKING)
		mig_hist(mig_st.protect_us, pns);
	q->moved_bytes += mig_sb[m->sb].bytes;
}

void mig_serve(mig_job_t *q)
{
	mig_rsnap_t rs[HL_MAX_REGIONS];
	unsigned nr = mig_snap_regions(rs);
	mig_scan_t sc = { .q = q };
	if (q->kind == MIG_J_PTR) {
		pm_slot_t *rec = pm_lookup(q->ptr);
		uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
		unsigned la;
		size_t len;
		uint32_t need;
		if (rec && PM_KIND(w) == PM_SMALL) {
			/* One superblock: its first slot record, not a scan of all. */
			sc.ptr_base = lf_load_relaxed(&desc_at(PM_DESC(w))->base);
			pm_slot_t *first = pm_lookup(sc.ptr_base);
			if (first)
				mig_scan_one(first, &sc);
		} else if (large_info(q->ptr, &la, &len, &need)) {
			sc.ptr_base = q->ptr;   /* one large block: its entry */
			mig_scan_large((void *)q->ptr, len, la, need, &sc);
		} else {
			q->result = HL_EINVAL;
			return;
		}
	} else {
		pm_scan(mig_scan_one, &sc);
		large_each(mig_scan_large, &sc);
	}
	mig_goal_t g = { .node = -1 };
	switch (q->kind) {
	case MIG_J_EVAC:
		g.kind = MIG_G_EVACUATE;
		g.from = q->region;
		break;
	case MIG_J_OOM:
	case MIG_J_RELIEF:
	case MIG_J_SHARE:
		g.kind = MIG_G_RELIEVE;
		g.from = q->region;
		g.want = q->want;
		g.top_task_first = q->kind == MIG_J_OOM;
		/* Background moves never push a target below its low
		 * watermark: no region relieves itself into another's trouble. */
		g.keep_low = q->kind != MIG_J_OOM;
		break;
	default:
		g.kind = MIG_G_PLACE;
		if (q->has_place) {
			g.to = mig_targets(&q->place);   /* 0 in a goal: any region */
			g.node = q->place.node;
			if (!g.to) {
				q->result = HL_ENOREGION;   /* the placement names none */
				q->moved_bytes = 0;
				return;
			}
		}
		break;
	}
	const char *why;
	g.no_backing = rb_probe(&why) != HL_OK;
	mig_plan_t pl;
	mig_plan(&g, rs, nr, mig_sb, sc.n, mig_mv, MIG_SNAP_SB, &pl);
	if (q->kind == MIG_J_EVAC && q->dry) {
		q->moved_bytes = 0;
		q->result = pl.status;
		return;
	}
	int first = MIG_OK;
	for (unsigned w = 1; w < MIG_NWHY; w++) {
		lf_fetch_add_relaxed(&mig_st.refused[w], pl.refused[w]);
		if (pl.refused[w] && first == MIG_OK)
			first = (int)w;
	}
	if (q->kind == MIG_J_PTR && !sc.n)
		first = MIG_R_BUSY;   /* retired meanwhile */
	q->moved_bytes = 0;
	if (pl.status != HL_OK) {
		q->result = HL_EBUSY;
		return;
	}
	if (q->kind == MIG_J_EVAC)
		qsort(mig_mv, pl.nmoves, sizeof *mig_mv, mig_mv_cmp);
	uint64_t t0 = os_now_ns();
	for (size_t i = 0; i < pl.nmoves && !lf_load_acquire(&mig_stop); i++) {
		if (q->budget_ns && os_now_ns() - t0 > q->budget_ns)
			break;   /* a background pass's time is up: the next one goes on */
		const mig_move_t *m = &mig_mv[i];
		const mig_sbsnap_t *run[MIG_BATCH_MAX];
		unsigned n = mig_run(&pl, i, run), k;
		uint64_t bns = 0, bpns = 0;
		if (n > 1 && (k = mig_move_batch(run, n, region_at(m->to), &bns, &bpns))) {
			/* A batch: each move's time its share of the batch's,
			 * each span protected as long as the batch. */
			for (unsigned j = 0; j < k; j++)
				mig_count(&mig_mv[i + j], bns / k, bpns, q);
			i += k - 1;
			continue;
		}
		int why = MIG_R_BUSY;
		uint64_t ns = 0, pns = 0;
		for (int k = 0; k < MIG_BUSY_TRIES && why == MIG_R_BUSY; k++) {
			const mig_sbsnap_t *sn = &mig_sb[m->sb];
			why = sn->large ? mig_move_large(sn, region_at(m->to), m->tier, &ns, &pns)
					: mig_move(sn, region_at(m->to), m->tier, &ns, &pns);
			if (why == MIG_R_BUSY)
				sched_yield();
		}
		if (why != MIG_OK) {
			lf_fetch_add_relaxed(&mig_st.refused[why], 1);
			if (first == MIG_OK)
				first = why;
			if (q->kind == MIG_J_EVAC)
				break;   /* the caller reopens the region */
			continue;
		}
		mig_count(m, ns, pns, q);
	}
	q->result = mig_result_of(first);
	if (q->kind == MIG_J_OOM || q->kind == MIG_J_RELIEF || q->kind == MIG_J_SHARE)
		q->result = q->moved_bytes ? HL_OK : HL_ENOMEM;
	if (q->kind == MIG_J_EVAC && first != MIG_OK)
		q->result = HL_EBUSY;
}

HL_EXPORT const char *hl_migrate_why_name(unsigned i)
{
	return i < MIG_NWHY ? mig_why_name((int)i) : NULL;
}
