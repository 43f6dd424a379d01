/*
 * Each superblock records the constraints its blocks were allocated under
 * (reach, secure, pinned), so that a mover can tell where it may legally
 * go: the union over its blocks, never less.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <string.h>

#include "core/core.h"
#include "tap.h"

static uint32_t need_of(const void *p)
{
	uint64_t w = lf_load_acquire(&pm_lookup(p)->word);
	return lf_load_relaxed(&desc_at(PM_DESC(w))->need);
}

int main(void)
{
	plan(5);
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.reach = HL_REACH_SYS | HL_REACH_CLUSTER;
	a.secure = 1;
	a.capacity = 4 << 20;
	hl_region_t *r;
	hl_region_create(&a, &r);
	hl_place_t sys = { .reach = HL_REACH_SYS, .node = -1, .region = r };
	hl_place_t clu = { .reach = HL_REACH_CLUSTER, .node = -1, .region = r };
	void *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
	hl_alloc(100, &sys, 0, &p1);
	ok(need_of(p1) == HL_REACH_SYS, "a SYS block's superblock may go to any SYS region (need %#x)",
	   need_of(p1));
	hl_alloc(100, &clu, 0, &p2);
	ok(need_of(p2) == (HL_REACH_SYS | HL_REACH_CLUSTER),
	   "a CLUSTER block in the same superblock adds CLUSTER to it (need %#x)", need_of(p2));
	hl_alloc(100, &sys, HL_SECURE | HL_NOMIGRATE, &p3);
	ok(need_of(p3) & HL_NEED_SECURE && need_of(p3) & HL_NEED_PINNED,
	   "HL_SECURE and HL_NOMIGRATE are recorded (need %#x)", need_of(p3));
	void *m = hl_malloc(100);
	ok(need_of(m) == HL_REACH_SYS, "plain malloc superblocks need only SYS");
	hl_free(m);
	p4 = hl_realloc(p3, 3000);
	ok(p4 && (need_of(p4) & (HL_NEED_SECURE | HL_NEED_PINNED)) == (HL_NEED_SECURE | HL_NEED_PINNED),
	   "realloc carries the constraints to the new block's superblock (need %#x)", need_of(p4));
	hl_free(p1);
	hl_free(p2);
	hl_free(p4);
	hl_region_delete(r);
	return done_testing();
}
