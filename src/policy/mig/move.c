/*
 * Moving one superblock: the mechanism, no policy.  Only the coordinator
 * thread calls it.
 *
 *   1. reserve the span's bytes in the target arena's account (capacity
 *      and quota, by CAS: a full target refuses before anything changed);
 *   2. claim the superblock from the core (sb_claim: it then is ours, as
 *      a popper holds one; frees go on pushing into it all along);
 *   3. check again what the snapshot said: same superblock, same arena,
 *      no pinned block since, the target still qualifies;
 *   4. change what must change for the tier: nothing (books only), the
 *      pages' attributes (lock, out of dumps), their node, their backing;
 *   5. retag it to the target arena (slot records, the anchor's epoch):
 *      from then on every free is booked to the target, and a free whose
 *      push landed before it to the source;
 *   6. move the books (live bytes and blocks as the anchor counted them
 *      at the flip, the span's backed bytes, superblock counts) and let
 *      go of it into the target arena.
 * Nobody waits for a move: allocating threads find the superblock gone
 * from its slot for a moment and take another.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy/mig/mig.h"

/* Hazard slot of the coordinator's record used while it looks at a
 * descriptor of a snapshot (0 and 1 are the partial lists'). */
#define MOVE_HP 2

int mig_target_why(const struct hl_region *to, uint32_t need, bool secure)
{
	unsigned reach = need & REGION_REACH_ALL;
	if (need & HL_NEED_PINNED)
		return MIG_R_PINNED;
	if (need & HL_REACH_CPU)
		return MIG_R_CPU;
	if ((lf_load_relaxed(&to->reach) & reach) != reach)
		return MIG_R_REACH;
	if (((need & HL_NEED_SECURE) || secure) && !lf_load_relaxed(&to->bk->secure))
		return MIG_R_SECURE;
	return MIG_OK;
}

/* Tier 3: the kernel moves the pages to the target's node, a batch of
 * pages a call.  One node here: the call is made, and its refusals are
 * ours. */
int mig_pages_to_node(char *base, size_t len, int node)
{
	enum { BATCH = HL_MAX_SB_SLOTS * (HL_SLOT_SIZE / HL_PAGE) };
	void *pages[BATCH];
	int nodes[BATCH], status[BATCH];
	size_t n = len / HL_PAGE;
	int saved = errno;
	long rc = 0;
	for (size_t i = 0; i < n && rc >= 0; i += BATCH) {
		unsigned long k = n - i < BATCH ? n - i : BATCH;
		for (unsigned long j = 0; j < k; j++) {
			pages[j] = base + (i + j) * HL_PAGE;
			nodes[j] = node;
		}
		rc = syscall(SYS_move_pages, 0, k, pages, nodes, status, 2 /* MPOL_MF_MOVE (1 << 1) */);
	}
	errno = saved;
	return rc < 0 ? MIG_R_NUMA : MIG_OK;
}

/* Tier 4: another backing (anonymous <-> a memfd region's offsets), in
 * place under a userfaultfd write-protect barrier (mem/bkmove.c,
 * mem/rebind.c), for n adjacent spans at once (a batch); refused where
 * that mechanism is not available.  The time of the call bounds the time
 * the spans were protected. */
static int move_backing(char *base, unsigned order, unsigned n, bk_t *to, uint64_t *protect_ns)
{
	const char *why;
	uint64_t t0 = os_now_ns();
	int e = bk_spans_move(base, order, n, to, &why);
	*protect_ns = os_now_ns() - t0;
	return mig_backing_why(e, why);
}

int mig_backing_why(int e, const char *why)
{
	switch (e) {
	case HL_OK: return MIG_OK;
	case HL_EPERM: return MIG_R_NOUFFD;
	case HL_EINVAL: return MIG_R_BUFFER;
	default: return why && why[0] == 'm' ? MIG_R_MAPS : MIG_R_NOROOM;
	}
}

sb_arena_t *mig_target_take(struct hl_region *to_r, struct hl_task *t, uint64_t bytes, int *why)
{
	int err;
	*why = MIG_R_NOROOM;
	if (region_enter(to_r)) {
		sb_arena_t *to = task_arena_use(t, to_r);
		if (to && bk_reserve(&to->acct, bytes, &err))
			return to;   /* arena 0's account charges only its bytes */
		if (to)
			task_arena_done(to);
	}
	region_leave(to_r);
	return NULL;
}

void mig_target_done(struct hl_region *to_r, sb_arena_t *to, uint64_t unreserve)
{
	if (unreserve)
		bk_unreserve(&to->acct, unreserve);
	task_arena_done(to);
	region_leave(to_r);
}

/* One superblock's move in progress. */
typedef struct move_ctx {
	hl_desc_t *d;
	sb_arena_t *from, *to;
	struct hl_region *fr, *to_r;
	uint64_t bytes;
} move_ctx_t;

/* Steps 1-3: the target reserved, the superblock claimed and checked
 * again.  MIG_OK with the superblock held (the hazard pointer is let go:
 * the holder is its only owner), or the reason, nothing held. */
static int move_begin(const mig_sbsnap_t *s, struct hl_region *to_r, move_ctx_t *c)
{
	lf_hp_rec_t *hp = desc_hp_rec();
	if (!hp)
		return MIG_R_BUSY;
	hl_desc_t *d = desc_at(s->desc);
	lf_hp_set(hp, MOVE_HP, d);
	/* Protected, then checked: a descriptor reused since the snapshot is
	 * another superblock. */
	unsigned fai = desc_arena_id(d);
	sb_arena_t *from = fai < HL_MAX_ARENAS ? sb_arena(fai) : NULL;
	int why = MIG_R_BUSY;
	if (!from || from->region != s->region ||
	    lf_load_relaxed(&d->nslots) == 0 || lf_load_relaxed(&d->base) != s->base ||
	    ((uint64_t)lf_load_relaxed(&d->nslots) << HL_SLOT_SHIFT) != s->bytes) {
		lf_hp_clear(hp, MOVE_HP);
		return MIG_R_BUSY;
	}
	struct hl_region *fr = region_at(from->region);
	struct hl_task *t = from->task;
	uint64_t bytes = s->bytes;
	sb_arena_t *to = mig_target_take(to_r, t, bytes, &why);
	if (!to) {
		lf_hp_clear(hp, MOVE_HP);
		return why;
	}
	if (!sb_claim(d)) {
		why = MIG_R_BUSY;
		goto out;
	}
	uint32_t need = lf_load_acquire(&d->need);
	if (desc_arena_id(d) != fai || d->base != s->base)
		why = MIG_R_BUSY;   /* another superblock since the snapshot */
	else
		why = mig_target_why(to_r, need, t->secure || fr->bk->secure);
	if (why != MIG_OK) {
		sb_release_owned(d);
		goto out;
	}
	lf_hp_clear(hp, MOVE_HP);
	*c = (move_ctx_t){ .d = d, .from = from, .to = to, .fr = fr, .to_r = to_r, .bytes = bytes };
	return MIG_OK;
out:
	mig_target_done(to_r, to, bytes);
	lf_hp_clear(hp, MOVE_HP);
	return why;
}

/* A held superblock that does not move after all: let go, unreserved. */
static void move_abort(move_ctx_t *c)
{
	sb_release_owned(c->d);
	mig_target_done(c->to_r, c->to, c->bytes);
}

/* Steps 5-6: retagged to the target, the books moved, let go. */
static void move_finish(move_ctx_t *c)
{
	hl_desc_t *d = c->d;
	uint32_t live = sb_retag_owned(d, c->to);
	int64_t lb = (int64_t)live * sc_table[d->cls].size;
	region_live_move(c->fr, c->from, c->to_r, c->to, lb, live);
	lf_fetch_sub_relaxed(&c->from->superblocks, 1);
	lf_fetch_add_relaxed(&c->to->superblocks, 1);
	bk_span_handover(&c->to->acct, &c->from->acct, (unsigned)__builtin_ctz(d->nslots));
	lf_store_relaxed(&c->to->last_ms, os_now_ms());
	sb_release_owned(d);
	task_note_move(c->from->task, c->fr->id, c->to_r->id, c->bytes);
	mig_target_done(c->to_r, c->to, 0);
}

int mig_move(const mig_sbsnap_t *s, struct hl_region *to_r, unsigned tier, uint64_t *ns,
	     uint64_t *protect_ns)
{
	uint64_t t0 = os_now_ns();
	move_ctx_t c;
	int why = move_begin(s, to_r, &c);
	if (why != MIG_OK)
		return why;
	bk_t *fb = c.fr->bk, *tb = to_r->bk;
	switch (tier) {
	case MIG_T_ATTR:
		if (tb->secure && !fb->secure && !os_lock(c.d->base, c.bytes))
			why = MIG_R_SECURE;
		break;
	case MIG_T_NODE:
		why = mig_pages_to_node(c.d->base, c.bytes, lf_load_relaxed(&to_r->node));
		break;
	case MIG_T_BACKING:
		why = move_backing(c.d->base, (unsigned)__builtin_ctz(c.d->nslots), 1, tb, protect_ns);
		break;
	default:
		break;
	}
	if (why != MIG_OK) {
		move_abort(&c);
		return why;
	}
	move_finish(&c);
	*ns = os_now_ns() - t0;
	return MIG_OK;
}

unsigned mig_move_batch(const mig_sbsnap_t *const *s, unsigned n, struct hl_region *to_r,
			uint64_t *ns, uint64_t *protect_ns)
{
	uint64_t t0 = os_now_ns();
	move_ctx_t c[MIG_BATCH_MAX];
	unsigned held = 0;
	while (held < n && held < MIG_BATCH_MAX && move_begin(s[held], to_r, &c[held]) == MIG_OK)
		held++;
	unsigned k = held ? 1u << (31 - __builtin_clz(held)) : 0;   /* a power of two */
	while (held > k)
		move_abort(&c[--held]);
	if (k < 2 || move_backing(s[0]->base, (unsigned)__builtin_ctzll(s[0]->bytes >> HL_SLOT_SHIFT),
				  k, to_r->bk, protect_ns) != MIG_OK) {
		while (held)
			move_abort(&c[--held]);
		return 0;
	}
	for (unsigned i = 0; i < k; i++)
		move_finish(&c[i]);
	*ns = os_now_ns() - t0;
	return k;
}
