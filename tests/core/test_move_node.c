/*
 * Tier 3 (a NUMA node) through the mover itself: this machine has one
 * node, so the planner never plans it (mig_goal_t.numa is false); the
 * call is tested here directly.  A move to node 0 (which exists) goes
 * through move_pages and succeeds; a move to a node that does not exist
 * is refused by the kernel, and the mover says so (MIG_R_NUMA) and
 * changes nothing: the block stays in its region with its bytes.
 */
#define _GNU_SOURCE
#include <string.h>

#include "policy/mig/mig.h"
#include "tap.h"

static hl_region_t *region(const char *name, int node)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = 4u << 20;
	a.node = node;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("region %s", name);
	return r;
}

/* The snapshot of the superblock holding p, as the coordinator takes it. */
static mig_sbsnap_t snap_of(void *p)
{
	uint64_t w = lf_load_acquire(&pm_lookup(p)->word);
	hl_desc_t *d = desc_at(PM_DESC(w));
	sb_arena_t *a = sb_arena(PM_ARENA(w));
	return (mig_sbsnap_t){ .desc = PM_DESC(w), .base = d->base, .region = a->region, .task = a->task->id,
			       .need = d->need, .allowed = ~(uint64_t)0,
			       .bytes = (uint64_t)d->nslots << HL_SLOT_SHIFT };
}

int main(void)
{
	plan_no_plan();
	hl_region_t *a = region("node-a", 0), *b = region("node-0", 0), *far = region("node-60", 60);
	hl_place_t pa = { .node = -1, .region = a };
	void *p = NULL;
	if (hl_alloc(500, &pa, 0, &p) != HL_OK)
		bail_out("alloc");
	memset(p, 0x42, 500);
	uint64_t ns = 0, pns = 0;
	mig_sbsnap_t s = snap_of(p);
	is_int(mig_move(&s, far, MIG_T_NODE, &ns, &pns), MIG_R_NUMA,
	       "move_pages to a node that does not exist is refused (MIG_R_NUMA)");
	ok(hl_region_of(p) == a && ((unsigned char *)p)[499] == 0x42, "and the block stays, bytes kept");
	s = snap_of(p);
	is_int(mig_move(&s, b, MIG_T_NODE, &ns, &pns), MIG_OK, "move_pages to node 0 goes through");
	ok(hl_region_of(p) == b && ((unsigned char *)p)[0] == 0x42, "the block is b's, bytes kept");
	hl_region_stats_t st = { .struct_size = sizeof st };
	hl_region_stats(b, &st);
	is_int((long long)st.blocks_live, 1, "its books moved");
	hl_free(p);
	hl_region_stats(b, &st);
	is_int((long long)st.blocks_live, 0, "and its free was booked to b");
	is_str(mig_why_name(MIG_R_NUMA), "move_pages", "the refusal's name");
	/* A large block: the same call over its pages, in batches. */
	void *lg = NULL;
	if (hl_alloc(600 << 10, &pa, 0, &lg) != HL_OK)
		bail_out("large alloc");
	memset(lg, 0x24, 600 << 10);
	mig_sbsnap_t ls = { .desc = (uint32_t)arena_id_of(lg), .base = lg, .large = true,
			    .region = s.region, .need = HL_REACH_SYS, .allowed = ~(uint64_t)0,
			    .bytes = 640 << 10 };   /* whole slots */
	ls.region = sb_arena(ls.desc)->region;
	is_int(mig_move_large(&ls, far, MIG_T_NODE, &ns, &pns), MIG_R_NUMA,
	       "a large block: move_pages to a missing node is refused");
	ok(hl_region_of(lg) == a && ((unsigned char *)lg)[(600 << 10) - 1] == 0x24, "and it stays");
	is_int(mig_move_large(&ls, b, MIG_T_NODE, &ns, &pns), MIG_OK, "to node 0 it goes through");
	ok(hl_region_of(lg) == b && ((unsigned char *)lg)[0] == 0x24, "b's now, bytes kept");
	hl_free(lg);
	hl_region_stats(b, &st);
	ok(st.blocks_live == 0 && st.bytes_live == 0, "its free was booked to b");
	hl_region_delete(a);
	hl_region_delete(b);
	hl_region_delete(far);
	return done_testing();
}
