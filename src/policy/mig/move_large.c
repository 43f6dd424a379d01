/*
 * Moving one large block of a region: a superblock of one block, moved
 * the way move.c moves superblocks, with the range table's word in place
 * of the core's claim.  Only the coordinator thread calls it.
 *
 *   1. check the snapshot against the entry: the same block, its arena,
 *      what it was allocated under (pinned, CPU-private, reach, secure);
 *   2. reserve its bytes in the target arena's account (capacity and
 *      quota, by CAS: a full target refuses before anything changed);
 *   3. hold it (mem/large.c: a bit of its word, by CAS);
 *   4. change what the tier asks: nothing (books only), its pages'
 *      attributes (locked, out of dumps: a secure target), their node,
 *      their backing;
 *   5. let go by the CAS that retags the word to the target arena: a free
 *      before it is booked to the source, one after it to the target;
 *   6. move the books: its live bytes and block, and its charge.
 * A free while the block is held does not wait: it is booked to the
 * source, and the unmap it leaves is done here, once the let-go has
 * failed; nothing else changes then (the target's reservation goes back).
 * Another backing (tier 4) is a backing move of each of its pieces
 * (mem/lback.c), one write-protect barrier a piece, all of them while it
 * is held; a refusal midway moves the pieces done back.
 */
#include "policy/mig/mig.h"

int mig_move_large(const mig_sbsnap_t *s, struct hl_region *to_r, unsigned tier, uint64_t *ns,
		   uint64_t *protect_ns)
{
	uint64_t t0 = os_now_ns();
	void *p = s->base;
	unsigned fai;
	size_t len;
	uint32_t need;
	if (!large_info(p, &fai, &len, &need) || fai != s->desc || len != s->bytes)
		return MIG_R_BUSY;   /* freed, or another block, since the snapshot */
	sb_arena_t *from = fai < HL_MAX_ARENAS ? sb_arena(fai) : NULL;
	if (!from || from->region != s->region)
		return MIG_R_BUSY;
	if (fai == 0)
		need |= HL_REACH_SYS;   /* malloc's blocks record none: they are SYS */
	if (tier == MIG_T_BACKING && s->fixed)
		return MIG_R_DEFAULT;   /* not cut into pieces (the plan says so first) */
	struct hl_region *fr = region_at(from->region);
	struct hl_task *t = from->task;
	int why = mig_target_why(to_r, need, t->secure || fr->bk->secure);
	if (why != MIG_OK)
		return why;
	if (bk_small_only(to_r->bk))
		return MIG_R_BUFFER;   /* a pool's addresses are its own (the plan says so first) */
	sb_arena_t *to = mig_target_take(to_r, t, len, &why);
	if (!to)
		return why;
	if (to->id == 0) {
		/* malloc's own large blocks are its page heap's and cache's:
		 * a region's mapping does not become one of them. */
		mig_target_done(to_r, to, len);
		return MIG_R_DEFAULT;
	}
	if (!large_hold(p, fai)) {
		mig_target_done(to_r, to, len);
		return MIG_R_BUSY;
	}
	why = MIG_OK;
	bool locked = false;
	if (tier == MIG_T_ATTR && to_r->bk->secure && !fr->bk->secure && !(locked = os_lock(p, len)))
		why = MIG_R_SECURE;
	else if (tier == MIG_T_NODE)
		why = mig_pages_to_node(p, len, lf_load_relaxed(&to_r->node));
	else if (tier == MIG_T_BACKING) {
		const char *bwhy;
		uint64_t b0 = os_now_ns();
		why = mig_backing_why(lb_move(p, len, to_r->bk, fr->bk, &bwhy), bwhy);
		*protect_ns = os_now_ns() - b0;
	}
	if (!large_let_go(p, fai, why == MIG_OK ? to->id : fai)) {
		/* Freed while held: booked to the source by its free, which
		 * left the unmap (malloc's own: the release) to us. */
		if (fai != 0)
			lb_unmap(p, len);
		else {
			if (locked)
				os_unlock(p, len);
			large_release_default(p, len);
		}
		why = MIG_R_BUSY;
	}
	if (why != MIG_OK) {
		mig_target_done(to_r, to, len);
		return why;
	}
	region_live_move(fr, from, to_r, to, (int64_t)len, 1);
	if (fai != 0)
		bk_unreserve(&from->acct, len);   /* the charge is the target's now */
	lf_store_relaxed(&to->last_ms, os_now_ms());
	task_note_move(t, fr->id, to_r->id, len);
	mig_target_done(to_r, to, 0);
	*ns = os_now_ns() - t0;
	return MIG_OK;
}
