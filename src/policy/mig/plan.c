/*
 * The planner: which superblock goes where.  Pure: snapshots of regions
 * and superblocks in, a list of moves out; no atomics, no globals, no
 * system calls, so that tests drive it without threads (the coordinator
 * takes the snapshots and carries the moves out, each checked again as it
 * is made: a snapshot is only a guess about a moving heap).
 *
 * The rules, in the order a superblock meets them:
 *   - never moved: a block allocated HL_NOMIGRATE (pinned), CPU-private
 *     memory, a user buffer's memory (its addresses are the user's);
 *   - a target region is open, in the goal's target set, allowed to the
 *     superblock's task, reachable as its blocks need (its reach contains
 *     theirs), secure if they, their task or their region are, and keeps at least its
 *     min watermark free after every move planned into it;
 *   - among targets: the nearest to the goal's node (or the source's),
 *     then the lowest id (the placement's fallback order);
 *   - the tier is the cheapest that is safe: the books only, page
 *     attributes in place, the kernel's page migration, a copy under
 *     write protection; huge-page backings are refused.
 */
#include "policy/mig/mig.h"

static const char *const mig_why_names[MIG_NWHY] = {
	[MIG_OK] = "ok",
	[MIG_R_PINNED] = "pinned",
	[MIG_R_SECURE] = "secure",
	[MIG_R_REACH] = "reach",
	[MIG_R_CPU] = "cpu_private",
	[MIG_R_BUFFER] = "user_buffer",
	[MIG_R_HUGETLB] = "hugetlb",
	[MIG_R_NOROOM] = "no_room",
	[MIG_R_NOUFFD] = "no_userfaultfd",
	[MIG_R_MAPS] = "map_budget",
	[MIG_R_BUSY] = "busy",
	[MIG_R_NUMA] = "move_pages",
	[MIG_R_DEFAULT] = "default_heap",
};

const char *mig_why_name(int why)
{
	return why >= 0 && why < MIG_NWHY ? mig_why_names[why] : "unknown";
}

unsigned mig_tier_of(const mig_rsnap_t *a, const mig_rsnap_t *b, bool numa, int *why)
{
	*why = MIG_OK;
	if (a->kind == HL_BACKING_BUFFER || b->kind == HL_BACKING_BUFFER) {
		*why = MIG_R_BUFFER;
		return 0;
	}
	if (a->kind == HL_BACKING_HUGETLB || b->kind == HL_BACKING_HUGETLB) {
		*why = MIG_R_HUGETLB;
		return 0;
	}
	if (a->kind != b->kind || a->kind == HL_BACKING_MEMFD)
		return MIG_T_BACKING;   /* two memfd regions: two memfds */
	if (numa && a->node != b->node)
		return MIG_T_NODE;
	if (a->secure != b->secure)
		return MIG_T_ATTR;
	return MIG_T_ACCOUNT;
}

static const mig_rsnap_t *plan_region(const mig_rsnap_t *r, unsigned nr, uint32_t id)
{
	for (unsigned i = 0; i < nr; i++)
		if (r[i].id == id)
			return &r[i];
	return NULL;
}

/* Whether superblock s may ever leave its region: MIG_OK or the reason. */
static int plan_movable(const mig_sbsnap_t *s, const mig_rsnap_t *src)
{
	if (s->need & HL_NEED_PINNED)
		return MIG_R_PINNED;
	if (s->need & HL_REACH_CPU)
		return MIG_R_CPU;
	if (src && src->kind == HL_BACKING_BUFFER)
		return MIG_R_BUFFER;
	return MIG_OK;
}

/* Why target t cannot take s (MIG_OK: it can, as far as rules go). */
static int plan_fits(const mig_sbsnap_t *s, const mig_rsnap_t *src, const mig_rsnap_t *t,
		     const mig_goal_t *g)
{
	unsigned reach = s->need & (HL_REACH_SYS | HL_REACH_DMA | HL_REACH_CLUSTER | HL_REACH_CPU);
	if (!t->open || t->id == s->region || (g->to && !(g->to >> t->id & 1)) ||
	    !(s->allowed >> t->id & 1))
		return MIG_R_NOROOM;
	if ((t->reach & reach) != reach)
		return MIG_R_REACH;
	if (((s->need & HL_NEED_SECURE) || s->task_secure || src->secure) && !t->secure)
		return MIG_R_SECURE;
	if (s->large && s->task == 0 && t->id == 0)
		return MIG_R_DEFAULT;   /* a region's mapping never joins malloc's large blocks */
	return MIG_OK;
}

/* Room left in t above its min watermark, with planned[] bytes already
 * promised to it. */
static bool plan_room(const mig_rsnap_t *t, uint64_t planned, uint64_t bytes, bool keep_low)
{
	if (!t->capacity)
		return true;
	uint64_t used = t->backed + planned + bytes;
	uint64_t floor = keep_low && t->wlow > t->wmin ? t->wlow : t->wmin;
	return used <= t->capacity && t->capacity - used >= floor;
}

/* Of the reasons the targets gave, the one said: the further a target
 * got through the rules, the more its reason tells (a target that only
 * lacked userfaultfd says more than one out of reach, which says more
 * than "no room"). */
static int plan_rank(int why)
{
	switch (why) {
	case MIG_OK: return -1;
	case MIG_R_NOROOM: return 0;
	case MIG_R_REACH: return 1;
	case MIG_R_SECURE: return 2;
	default: return 3;
	}
}

static unsigned plan_dist(int a, int b)
{
	if (a < 0 || b < 0)
		return 0;
	return (unsigned)(a > b ? a - b : b - a);
}

/* The order superblocks are considered in: those of the task that holds
 * the most first (OOM resolution asks for it), then the emptiest first
 * (every move frees a whole span; the fewer live blocks it holds, the
 * fewer writers a backing move can stall).  Insertion sort: snapshots are
 * small. */
static void plan_order(mig_sbsnap_t *sb, size_t n, bool top_task_first)
{
	uint32_t top = 0;
	if (top_task_first) {
		uint64_t best = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t sum = 0;
			for (size_t j = 0; j < n; j++)
				if (sb[j].task == sb[i].task)
					sum += sb[j].bytes;
			if (sum > best || (sum == best && sb[i].task < top)) {
				best = sum;
				top = sb[i].task;
			}
		}
	}
	for (size_t i = 1; i < n; i++) {
		mig_sbsnap_t x = sb[i];
		size_t j = i;
		for (; j > 0; j--) {
			const mig_sbsnap_t *y = &sb[j - 1];
			bool xt = top_task_first && x.task == top, yt = top_task_first && y->task == top;
			bool before = xt != yt ? xt : x.live < y->live;
			if (!before)
				break;
			sb[j] = sb[j - 1];
		}
		sb[j] = x;
	}
}

void mig_plan(const mig_goal_t *g, const mig_rsnap_t *r, unsigned nr,
	      mig_sbsnap_t *sb, size_t nsb, mig_move_t *mv, size_t cap, mig_plan_t *out)
{
	uint64_t planned[HL_MAX_REGIONS] = { 0 };
	*out = (mig_plan_t){ .status = HL_OK };
	plan_order(sb, nsb, g->top_task_first);
	for (size_t i = 0; i < nsb; i++) {
		mig_sbsnap_t *s = &sb[i];
		if ((g->kind == MIG_G_EVACUATE || g->kind == MIG_G_RELIEVE) && s->region != g->from)
			continue;
		if (g->kind == MIG_G_RELIEVE && out->bytes >= g->want)
			break;
		const mig_rsnap_t *src = plan_region(r, nr, s->region);
		int why = src ? plan_movable(s, src) : MIG_R_NOROOM;
		const mig_rsnap_t *best = NULL;
		unsigned best_tier = 0, best_d = 0;
		int first_why = MIG_OK;
		for (unsigned k = 0; why == MIG_OK && k < nr; k++) {
			const mig_rsnap_t *t = &r[k];
			int w = plan_fits(s, src, t, g);
			unsigned tier = 0;
			if (w == MIG_OK)
				tier = mig_tier_of(src, t, g->numa, &w);
			if (w == MIG_OK && tier == MIG_T_BACKING && g->no_backing)
				w = MIG_R_NOUFFD;
			if (w == MIG_OK && tier == MIG_T_BACKING && s->fixed)
				w = MIG_R_DEFAULT;   /* one of malloc's large blocks: no pieces */
			if (w == MIG_OK && (t->id >= HL_MAX_REGIONS ||
					    !plan_room(t, planned[t->id], s->bytes, g->keep_low)))
				w = MIG_R_NOROOM;
			if (w != MIG_OK) {
				if (plan_rank(w) > plan_rank(first_why))
					first_why = w;
				continue;
			}
			/* Nearest, then a region of the program's before
			 * malloc's own heap (the spill of last resort), then
			 * the cheapest, then the lowest id. */
			unsigned d = plan_dist(g->node >= 0 ? g->node : src->node, t->node);
			bool mine = t->id != 0, best_mine = best && best->id != 0;
			if (!best || d < best_d || (d == best_d && mine > best_mine) ||
			    (d == best_d && mine == best_mine &&
			     (tier < best_tier || (tier == best_tier && t->id < best->id)))) {
				best = t;
				best_tier = tier;
				best_d = d;
			}
		}
		if (why == MIG_OK && !best)
			why = first_why != MIG_OK ? first_why : MIG_R_NOROOM;
		if (why != MIG_OK || out->nmoves >= cap) {
			if (why == MIG_OK)
				why = MIG_R_NOROOM;   /* past the caller's room for moves */
			out->refused[why]++;
			out->refused_bytes += s->bytes;
			continue;
		}
		planned[best->id] += s->bytes;
		mv[out->nmoves++] = (mig_move_t){ (uint32_t)i, best->id, (uint8_t)best_tier };
		out->bytes += s->bytes;
	}
	if (g->kind == MIG_G_EVACUATE && out->refused_bytes) {
		/* All or nothing: a region that cannot be emptied is left as
		 * it is. */
		out->nmoves = 0;
		out->bytes = 0;
		out->status = HL_EBUSY;
	}
}
