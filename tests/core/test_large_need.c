/*
 * A region's large block records in its range-table entry what it was
 * allocated under (reach, secure, pinned), as a small block's superblock
 * does, so that a mover can tell where it may legally go; and a free
 * learns its arena from its own CAS on the entry's word: a free while the
 * coordinator holds the block is booked to the arena in the word it
 * replaced, and leaves the unmap to the holder, whose let-go then fails.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <string.h>

#include "policy/policy.h"
#include "regions.h"
#include "tap.h"

#define KB ((size_t)1 << 10)

static uint32_t need_of(const void *p)
{
	unsigned arena;
	size_t len;
	uint32_t need = 0;
	if (!large_info(p, &arena, &len, &need))
		return 0xffffffffu;
	return need;
}

int main(void)
{
	plan_no_plan();
	hl_region_t *r = test_region("need", 4 << 20, HL_REACH_SYS | HL_REACH_CLUSTER, 0,
				     HL_BACKING_ANON);
	if (!r)
		bail_out("region");
	hl_place_t sys = { .reach = HL_REACH_SYS, .node = -1, .region = r };
	hl_place_t clu = { .reach = HL_REACH_CLUSTER, .node = -1, .region = r };
	void *p1 = NULL, *p2 = NULL, *p3 = NULL;
	hl_alloc(100 * KB, &sys, 0, &p1);
	is_int(need_of(p1), HL_REACH_SYS, "a SYS large block needs SYS");
	hl_alloc(100 * KB, &clu, 0, &p2);
	is_int(need_of(p2), HL_REACH_CLUSTER, "a CLUSTER one needs CLUSTER");
	hl_alloc(100 * KB, &sys, HL_NOMIGRATE, &p3);
	ok(need_of(p3) & HL_NEED_PINNED, "HL_NOMIGRATE is recorded (need %#x)", need_of(p3));
	void *p4 = hl_realloc(p3, 300 * KB);
	ok(p4 && p4 != p3 && (need_of(p4) & HL_NEED_PINNED),
	   "realloc carries it to the new block (need %#x)", need_of(p4));
	unsigned arena = 0, ma = 1;
	size_t len = 0;
	uint32_t need, mneed = 1;
	bool got = large_info(p1, &arena, &len, &need);
	ok(got && arena && (int)arena == arena_id_of(p1) && len == 128 * KB,
	   "the entry names the block's arena (%u) and length (%zu)", arena, len);
	void *m = hl_malloc(100 * KB);
	got = large_info(m, &ma, &len, &mneed);
	ok(got && ma == 0 && mneed == 0, "a default-arena large block: arena 0, no need bits");
	/* malloc's own (arena 0) may be held too (hl_migrate of one of
	 * malloc's); freed while held, its release is the holder's. */
	hl_stats_t st0 = { .struct_size = sizeof st0 }, st1 = st0, st2 = st0;
	hl_stats_get(&st0);
	ok(large_hold(m, 0), "the coordinator may hold a default-arena block");
	hl_free(m);
	hl_stats_get(&st1);
	ok(st1.large_live == st0.large_live && !large_let_go(m, 0, 0),
	   "freed while held, it is still malloc's to give back: the let-go fails");
	large_release_default(m, 100 * KB);
	hl_stats_get(&st2);
	is_int((long long)st2.large_live, (long long)st0.large_live - 1,
	       "and the holder's release gives it back to malloc's heap");

	/* A free while the block is held. */
	hl_region_stats_t s0 = test_rst(r);
	ok(large_hold(p1, arena), "the coordinator holds the block (its word, by CAS)");
	ok(!large_hold(p1, arena), "once");
	memset(p1, 0x5a, 100 * KB);
	hl_free(p1);   /* never waits for the holder */
	hl_region_stats_t s1 = test_rst(r);
	ok(s1.blocks_live == s0.blocks_live - 1 && s1.bytes_backed == s0.bytes_backed - 128 * KB,
	   "the free is booked to the arena it replaced in the word (live %llu -> %llu)",
	   (unsigned long long)s0.blocks_live, (unsigned long long)s1.blocks_live);
	ok(((unsigned char *)p1)[100 * KB - 1] == 0x5a, "its pages are left mapped for the holder");
	ok(!large_let_go(p1, arena, arena), "the holder's let-go fails: freed while held");
	lb_unmap(p1, 128 * KB);
	ok(large_arena_of(p1) < 0, "and the entry is a tombstone");
	/* Held and let go: nothing changed. */
	ok(large_hold(p2, arena) && large_let_go(p2, arena, arena) && large_arena_of(p2) == (int)arena,
	   "held and let go unchanged, the block is as it was");
	/* Moved into a secure region, a block is wiped by its free: the
	 * free reads the region from the word it replaced (held here, so
	 * that its pages stay mapped to be looked at). */
	hl_region_t *sec = test_region("need-secure", 4 << 20, 0, 1, HL_BACKING_ANON);
	void *w = NULL;
	hl_alloc(64 * KB, &sys, 0, &w);
	hl_place_t to_sec = { .node = -1, .region = sec };
	if (!sec || hl_migrate(w, &to_sec, 0) != HL_OK) {
		skip(2, "no secure region here (RLIMIT_MEMLOCK?)");
		hl_free(w);
	} else {
		memset(w, 0x6b, 64 * KB);
		unsigned wa = (unsigned)large_arena_of(w);
		ok(large_hold(w, wa), "a block moved into a secure region, held");
		hl_free(w);
		bool zero = true;
		for (size_t i = 0; i < 64 * KB; i++)
			zero &= ((unsigned char *)w)[i] == 0;
		ok(zero && !large_let_go(w, wa, wa), "its free wiped it (the secure region's rule)");
		lb_unmap(w, 64 * KB);
	}
	if (sec)
		hl_region_delete(sec);
	hl_free(p2);
	hl_free(p4);
	hl_region_stats_t s2 = test_rst(r);
	is_int((long long)s2.blocks_live, 0, "nothing live in the region after the frees");
	is_int((long long)s2.bytes_backed, 0, "nothing backed");
	is_int(hl_region_delete(r), HL_OK, "the region is deleted");
	return done_testing();
}
