/*
 * regions (heaplib only): tasks on several regions with constraints.  Main
 * creates three regions (local on node 2, reach CLUSTER on node 1, secure)
 * and two tasks; each worker joins one of the tasks and replaces blocks in
 * 256 slots with hl_alloc, asking at random for reach SYS (on node 0-2),
 * reach CLUSTER or HL_SECURE, and hl_free.  The functions are found with
 * dlsym, so heaplib must be preloaded; without it the run exits 1.  Its
 * descriptor is marked heaplib_only, so "all" leaves it out.
 *
 * Verifies: hl_region_of of every block satisfies its request (CLUSTER: the
 * cluster region; secure: the secure region; SYS: some region), else a FAIL
 * line and exit 2; every block's pattern before it is freed; and no region
 * has a block live after the run (else exit 1).
 * Extra figure: placements_checked, blocks whose region was checked.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"	/* types only: the functions are found with dlsym */

#include "../util.h"
#include "../verify.h"

#define RG_SLOTS 256
#define RG_N 3

static struct {
	int (*region_create)(const hl_region_attr_t *, hl_region_t **);
	int (*region_delete)(hl_region_t *);
	int (*region_stats)(const hl_region_t *, hl_region_stats_t *);
	hl_region_t *(*region_of)(const void *);
	hl_region_t *(*region_default)(void);
	int (*alloc)(size_t, const hl_place_t *, unsigned, void **);
	void (*free)(void *);
	int (*task_create)(const hl_task_attr_t *, hl_task_t **);
	int (*task_join)(hl_task_t *);
	int (*task_destroy)(hl_task_t *);
	const char *(*strerror)(hl_error_t);
	hl_region_t *reg[RG_N];
	hl_task_t *task[2];
} rg;

#define rg_sym(name) heaplib_sym("regions", name)

static void regions_setup(int n)
{
	(void)n;
	rg.region_create = rg_sym("hl_region_create");
	rg.region_delete = rg_sym("hl_region_delete");
	rg.region_stats = rg_sym("hl_region_stats");
	rg.region_of = rg_sym("hl_region_of");
	rg.region_default = rg_sym("hl_region_default");
	rg.alloc = rg_sym("hl_alloc");
	rg.free = rg_sym("hl_free");
	rg.task_create = rg_sym("hl_task_create");
	rg.task_join = rg_sym("hl_task_join");
	rg.task_destroy = rg_sym("hl_task_destroy");
	rg.strerror = rg_sym("hl_strerror");
	static const struct {
		const char *name;
		unsigned reach;
		int secure, node;
		size_t cap;
	} def[RG_N] = {
		{ "local", HL_REACH_SYS, 0, 2, 64u << 20 },
		{ "cluster", HL_REACH_SYS | HL_REACH_CLUSTER, 0, 1, 64u << 20 },
		{ "secure", HL_REACH_SYS, 1, 0, 16u << 20 },
	};
	for (int i = 0; i < RG_N; i++) {
		hl_region_attr_t a;
		memset(&a, 0, sizeof a);
		a.struct_size = sizeof a;
		a.name = def[i].name;
		a.reach = def[i].reach;
		a.secure = def[i].secure;
		a.node = def[i].node;
		a.capacity = def[i].cap;
		int e = rg.region_create(&a, &rg.reg[i]);
		if (e)
			die("hl_region_create(%s): %s", def[i].name, rg.strerror(e));
	}
	for (int i = 0; i < 2; i++) {
		hl_task_attr_t t;
		memset(&t, 0, sizeof t);
		t.struct_size = sizeof t;
		t.name = i ? "tenant-b" : "tenant-a";
		int e = rg.task_create(&t, &rg.task[i]);
		if (e)
			die("hl_task_create: %s", rg.strerror(e));
	}
}

static void __attribute__((noreturn, cold))
rg_misplaced(const void *p, const char *want, hl_region_t *got)
{
	fprintf(stderr, PROG ": FAIL workload=regions thread=%d block=%p: placed in region %p, "
		"which does not satisfy %s\n", t_tid, p, (void *)got, want);
	exit(2);
}

static void *regions_thread(void *arg)
{
	struct worker *w = arg;
	struct blk slot[RG_SLOTS];
	memset(slot, 0, sizeof slot);
	rg.task_join(rg.task[w->tid % 2]);
	start_barrier();
	while (keep_going(w)) {
		struct blk *b = &slot[rng_below(&w->rng, RG_SLOTS)];
		if (b->p) {
			check_before_free(b->p, b->size);
			rg.free(b->p);
			b->p = NULL;
			count_ops(w, 1);
		}
		size_t size = rng_size(&w->rng);
		unsigned kind = (unsigned)rng_below(&w->rng, 10);
		hl_place_t pl = { .reach = HL_REACH_SYS, .node = (int)rng_below(&w->rng, 3),
				  .region = NULL };
		unsigned flags = 0;
		if (kind >= 5 && kind < 8)
			pl.reach = HL_REACH_CLUSTER;
		else if (kind >= 8)
			flags = HL_SECURE;
		void *p = NULL;
		int e = rg.alloc(size, &pl, flags, &p);
		if (e == HL_ENOMEM)
			continue;
		if (e)
			die("hl_alloc(%zu): %s", size, rg.strerror(e));
		hl_region_t *got = rg.region_of(p);
		if (pl.reach == HL_REACH_CLUSTER && got != rg.reg[1])
			rg_misplaced(p, "reach CLUSTER", got);
		if (flags & HL_SECURE && got != rg.reg[2])
			rg_misplaced(p, "secure", got);
		if (!got)
			rg_misplaced(p, "reach SYS", got);
		fill_block(p, size);
		b->p = p;
		b->size = (uint32_t)size;
		b->owner = t_tid;
		count_ops(w, 1);
		count_aux(w, 1);
	}
	for (int i = 0; i < RG_SLOTS; i++)
		if (slot[i].p) {
			check_before_free(slot[i].p, slot[i].size);
			rg.free(slot[i].p);
		}
	rg.task_join(NULL);
	return NULL;
}

static void regions_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)secs;
	ex->name = "placements_checked";
	ex->value = (double)sum_aux(n, 1);
	for (int i = 0; i < RG_N; i++) {
		hl_region_stats_t st = { .struct_size = sizeof st };
		rg.region_stats(rg.reg[i], &st);
		fprintf(stderr, PROG ": regions: region %d: %llu allocs, %llu frees, "
			"%llu live after the run, %llu bytes backed of %llu\n", i,
			(unsigned long long)st.allocs,
			(unsigned long long)st.frees, (unsigned long long)st.blocks_live,
			(unsigned long long)st.bytes_backed, (unsigned long long)st.capacity);
		if (st.blocks_live || st.bytes_live)
			die("regions: region %d still has %llu blocks live after every thread "
			    "freed its own", i, (unsigned long long)st.blocks_live);
		int e = rg.region_delete(rg.reg[i]);
		if (e)
			die("hl_region_delete: %s", rg.strerror(e));
	}
	for (int i = 0; i < 2; i++)
		rg.task_destroy(rg.task[i]);
}

const struct workload wl_regions = {
	.name = "regions",
	.thread_fn = regions_thread,
	.setup = regions_setup,
	.teardown = regions_done,
	.desc = "heaplib only: 2 tasks, 3 regions (local on node 2, cluster on node 1, "
		"secure) and the\n"
		"               default (node 0); every block's region checked against its "
		"constraint",
	.heaplib_only = true,
};
