/*
 * The planner (policy/mig/plan.c) without threads: snapshots in, moves
 * out.  Each rule once: pinned and CPU-private memory stays, secure
 * memory goes only to secure regions, reach is obeyed, a target keeps its
 * min watermark with every planned move counted, the nearest target
 * wins, the tier is the cheapest safe one (user buffers and huge pages
 * refused), an evacuation is all or nothing, relief stops at its goal,
 * and OOM resolution takes the biggest task's superblocks first.
 */
#include <string.h>

#include "policy/mig/mig.h"
#include "tap.h"

#define SB ((uint64_t)64 << 10)

static mig_rsnap_t R(uint32_t id, unsigned reach, bool secure, int node, hl_backing_t kind,
		     uint64_t cap, uint64_t backed, uint64_t wmin)
{
	return (mig_rsnap_t){ .id = id, .open = true, .reach = reach, .secure = secure,
			      .node = node, .kind = kind, .capacity = cap, .backed = backed,
			      .wmin = wmin };
}

static mig_sbsnap_t S(uint32_t desc, uint32_t region, uint32_t task, uint32_t need)
{
	return (mig_sbsnap_t){ .desc = desc, .region = region, .task = task, .need = need,
			       .allowed = ~(uint64_t)0, .bytes = SB, .live = 100 };
}

static mig_plan_t run(const mig_goal_t *g, const mig_rsnap_t *r, unsigned nr,
		      mig_sbsnap_t *s, size_t ns, mig_move_t *mv)
{
	mig_plan_t p;
	mig_plan(g, r, nr, s, ns, mv, 64, &p);
	return p;
}

int main(void)
{
	plan_no_plan();
	mig_move_t mv[64];
	mig_rsnap_t r[6] = {
		R(0, HL_REACH_SYS, false, 2, HL_BACKING_ANON, 0, 0, 0),
		R(1, HL_REACH_SYS, false, 0, HL_BACKING_ANON, 4 * SB, 0, 0),      /* source */
		R(2, HL_REACH_SYS, false, 3, HL_BACKING_ANON, 8 * SB, 0, 0),      /* far */
		R(3, HL_REACH_SYS, false, 1, HL_BACKING_ANON, 8 * SB, 0, 0),      /* near */
		R(4, HL_REACH_SYS, true, 1, HL_BACKING_ANON, 8 * SB, 0, 0),       /* secure */
		R(5, HL_REACH_SYS | HL_REACH_CLUSTER, false, 5, HL_BACKING_MEMFD, 8 * SB, 0, 0),
	};
	mig_goal_t evac = { .kind = MIG_G_EVACUATE, .from = 1, .node = -1 };

	/* Nearest first: node 0's source, targets on nodes 1 (3, 4) and 3 (2). */
	mig_sbsnap_t s[4] = { S(10, 1, 1, HL_REACH_SYS), S(11, 1, 1, HL_REACH_SYS) };
	mig_plan_t p = run(&evac, r, 6, s, 2, mv);
	ok(p.status == HL_OK && p.nmoves == 2, "two plain superblocks are planned out (%zu)", p.nmoves);
	ok(mv[0].to == 3 && mv[1].to == 3, "to the nearest region, the lowest id among equals (%u %u)",
	   mv[0].to, mv[1].to);
	is_int(mv[0].tier, MIG_T_ACCOUNT, "same kind of memory: the books only");

	/* Default task: region 0 is malloc's own heap, a target like any. */
	r[3].open = false;
	r[2].open = false;
	r[4].open = false;
	r[5].open = false;
	s[0] = S(10, 1, 0, HL_REACH_SYS);
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_OK && p.nmoves == 1 && mv[0].to == 0,
	   "the default task's superblock may go back into malloc's heap");
	s[0] = S(10, 1, 7, HL_REACH_SYS);
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_OK && mv[0].to == 0, "another task's may go to region 0");
	r[2].open = r[3].open = r[4].open = r[5].open = true;
	/* As near as region 3: malloc's heap is the spill of last resort. */
	r[0].node = 1;
	s[0] = S(10, 1, 0, HL_REACH_SYS);
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_OK && mv[0].to == 3,
	   "of two equally near targets, a region of the program's before malloc's heap (%u)", mv[0].to);
	r[0].node = 2;

	/* Pinned, CPU-private: an evacuation that would leave one is refused
	 * whole. */
	s[0] = S(10, 1, 1, HL_REACH_SYS);
	s[1] = S(11, 1, 1, HL_REACH_SYS | HL_NEED_PINNED);
	p = run(&evac, r, 6, s, 2, mv);
	ok(p.status == HL_EBUSY && p.nmoves == 0 && p.refused[MIG_R_PINNED] == 1,
	   "a pinned superblock makes the evacuation HL_EBUSY with nothing planned");
	s[1] = S(11, 1, 1, HL_REACH_SYS | HL_REACH_CPU);
	p = run(&evac, r, 6, s, 2, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_CPU] == 1, "so does CPU-private memory");

	/* Secure: only to a secure region, whichever way it is secure. */
	s[0] = S(10, 1, 1, HL_REACH_SYS | HL_NEED_SECURE);
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 4 && mv[0].tier == MIG_T_ATTR,
	   "an HL_SECURE block's superblock goes to the secure region, its pages locked (tier %u)",
	   mv[0].tier);
	s[0] = S(10, 1, 1, HL_REACH_SYS);
	s[0].task_secure = true;
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 4, "so does a secure task's");
	r[4].open = false;
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_SECURE] == 1,
	   "without a secure target it is refused as secure, not for room");
	r[4].open = true;
	mig_rsnap_t rs[2] = { R(1, HL_REACH_SYS, true, 0, HL_BACKING_ANON, 4 * SB, 0, 0),
			      R(2, HL_REACH_SYS, false, 0, HL_BACKING_ANON, 8 * SB, 0, 0) };
	s[0] = S(10, 1, 1, HL_REACH_SYS);
	p = run(&evac, rs, 2, s, 1, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_SECURE] == 1,
	   "a secure region's memory never goes to a non-secure one");

	/* Reach: CLUSTER memory only where CLUSTER reaches; another backing
	 * is a copy under write protection. */
	s[0] = S(10, 1, 1, HL_REACH_SYS | HL_REACH_CLUSTER);
	r[1].reach |= HL_REACH_CLUSTER;
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 5 && mv[0].tier == MIG_T_BACKING,
	   "CLUSTER memory goes to the one CLUSTER region, a memfd: tier 4 (%u)", mv[0].tier);
	evac.no_backing = true;
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_NOUFFD] == 1,
	   "without userfaultfd that move is refused at planning (no_userfaultfd)");
	evac.no_backing = false;
	s[0].large = true;   /* a large block: the same rules, the same tier */
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 5 && mv[0].tier == MIG_T_BACKING,
	   "a large block is planned as a superblock of one block (tier %u)", mv[0].tier);
	s[0].fixed = true;   /* one of malloc's, not cut into pieces */
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_DEFAULT] == 1,
	   "one that is not cut into pieces changes no backing (default_heap)");
	s[0].fixed = false;
	s[0].large = false;
	int w;
	is_int(mig_tier_of(&r[5], &r[5], false, &w), MIG_T_BACKING,
	       "between two memfd regions a move is a copy (two memfds), never the books alone");
	r[5].open = false;
	p = run(&evac, r, 6, s, 1, mv);
	ok(p.refused[MIG_R_REACH] == 1, "without it, refused for reach");
	r[5].open = true;

	/* Room: capacity less min watermark, counting what is planned. */
	r[3].capacity = 3 * SB;
	r[3].wmin = SB;
	r[2].open = r[4].open = r[5].open = false;
	mig_sbsnap_t s3[3] = { S(1, 1, 1, HL_REACH_SYS), S(2, 1, 1, HL_REACH_SYS),
			       S(3, 1, 1, HL_REACH_SYS) };
	r[0].open = false;
	p = run(&evac, r, 6, s3, 3, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_NOROOM] == 1,
	   "a target with room for two above its min takes two, the third is refused");
	mig_goal_t rel = { .kind = MIG_G_RELIEVE, .from = 1, .want = 2 * SB, .node = -1 };
	p = run(&rel, r, 6, s3, 3, mv);
	ok(p.status == HL_OK && p.nmoves == 2 && p.bytes == 2 * SB,
	   "relief moves what it was asked for (%zu moves)", p.nmoves);
	rel.want = SB;
	p = run(&rel, r, 6, s3, 3, mv);
	ok(p.nmoves == 1, "and stops there");
	r[0].open = r[2].open = r[4].open = r[5].open = true;
	r[3].capacity = 8 * SB;
	r[3].wmin = 0;

	/* Tiers. */
	int why;
	mig_rsnap_t an = R(1, 1, false, 0, HL_BACKING_ANON, 0, 0, 0);
	mig_rsnap_t an2 = R(2, 1, false, 1, HL_BACKING_ANON, 0, 0, 0);
	mig_rsnap_t hu = R(3, 1, false, 0, HL_BACKING_HUGETLB, SB, 0, 0);
	mig_rsnap_t bu = R(4, 1, false, 0, HL_BACKING_BUFFER, SB, 0, 0);
	is_int(mig_tier_of(&an, &an2, true, &why), MIG_T_NODE, "another node with NUMA: tier 3");
	is_int(mig_tier_of(&an, &an2, false, &why), MIG_T_ACCOUNT, "one node: the books only");
	ok(mig_tier_of(&an, &hu, false, &why) == 0 && why == MIG_R_HUGETLB, "huge pages: refused");
	ok(mig_tier_of(&bu, &an, false, &why) == 0 && why == MIG_R_BUFFER, "a user buffer: refused");
	mig_rsnap_t rb[2] = { R(1, HL_REACH_SYS | HL_REACH_DMA, false, 0, HL_BACKING_BUFFER, SB, SB, 0),
			      R(2, HL_REACH_SYS | HL_REACH_DMA, false, 0, HL_BACKING_BUFFER, 8 * SB, 0, 0) };
	s[0] = S(10, 1, 1, HL_REACH_SYS);
	p = run(&evac, rb, 2, s, 1, mv);
	ok(p.status == HL_EBUSY && p.refused[MIG_R_BUFFER] == 1,
	   "a user buffer's memory is never planned out");

	/* OOM: the task holding the most goes first; a task's permissions. */
	mig_sbsnap_t so[4] = { S(1, 1, 5, HL_REACH_SYS), S(2, 1, 6, HL_REACH_SYS),
			       S(3, 1, 6, HL_REACH_SYS), S(4, 1, 5, HL_REACH_SYS) };
	so[0].live = so[3].live = 10;
	so[1].bytes = so[2].bytes = 2 * SB;
	mig_goal_t oom = { .kind = MIG_G_RELIEVE, .from = 1, .want = SB, .node = -1,
			   .top_task_first = true };
	p = run(&oom, r, 6, so, 4, mv);
	ok(p.nmoves == 1 && so[mv[0].sb].task == 6,
	   "OOM resolution starts with the task holding the most (task %u)", so[mv[0].sb].task);
	mig_sbsnap_t sa = S(1, 1, 5, HL_REACH_SYS);
	sa.allowed = (uint64_t)1 << 1 | (uint64_t)1 << 2;
	p = run(&evac, r, 6, &sa, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 2, "a task's superblock goes only where the task may (%u)",
	   mv[0].to);
	mig_goal_t place = { .kind = MIG_G_PLACE, .to = (uint64_t)1 << 2, .node = -1 };
	s[0] = S(10, 1, 1, HL_REACH_SYS);
	p = run(&place, r, 6, s, 1, mv);
	ok(p.nmoves == 1 && mv[0].to == 2, "a placement's target set is obeyed");
	is_str(mig_why_name(MIG_R_PINNED), "pinned", "reasons have names");
	is_str(mig_why_name(MIG_NWHY), "unknown", "and past the last, 'unknown'");
	return done_testing();
}
