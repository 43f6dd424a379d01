/*
 * nomadic (heaplib only): live memory moved under verified load.  Main
 * creates two regions, A and B; every worker replaces blocks in 256 slots
 * with hl_alloc into A or B and hl_free, writing each block's pattern and
 * checking it before the free, while worker 0 also keeps probe blocks
 * and, every 16 of its operations, asks the coordinator to move one
 * probe's superblock to the other region (hl_migrate): superblocks the
 * other workers are allocating and freeing in move under them.  The
 * functions are found with dlsym, so heaplib must be preloaded.
 *
 * Verifies: every block's pattern before it is freed (a lost or torn
 * write is a FAIL line and exit 2), every moved probe's region after its
 * move, and that neither region counts a live block after the run (the
 * books of frees that raced moves; else exit 1).  Prints the moves, the
 * moves per second and the latency of hl_migrate (p50, p99, max: the
 * round trip through the coordinator's queue) to stderr.
 * Extra figure: moves.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heaplib.h"	/* types only: the functions are found with dlsym */

#include "../util.h"
#include "../verify.h"

#define NM_SLOTS 256
#define NM_PROBES 32
#define NM_LAT 65536

static struct {
	int (*region_create)(const hl_region_attr_t *, hl_region_t **);
	int (*region_delete)(hl_region_t *);
	int (*region_stats)(const hl_region_t *, hl_region_stats_t *);
	hl_region_t *(*region_of)(const void *);
	int (*alloc)(size_t, const hl_place_t *, unsigned, void **);
	void (*free)(void *);
	int (*migrate)(void *, const hl_place_t *, unsigned);
	const char *(*strerror)(hl_error_t);
	hl_region_t *reg[2];
	uint32_t lat_us[NM_LAT];    /* worker 0's moves */
	size_t nlat;
	uint64_t refused;
} nm;

#define nm_sym(name) heaplib_sym("nomadic", name)

static void nomadic_setup(int n)
{
	(void)n;
	nm.region_create = nm_sym("hl_region_create");
	nm.region_delete = nm_sym("hl_region_delete");
	nm.region_stats = nm_sym("hl_region_stats");
	nm.region_of = nm_sym("hl_region_of");
	nm.alloc = nm_sym("hl_alloc");
	nm.free = nm_sym("hl_free");
	nm.migrate = nm_sym("hl_migrate");
	nm.strerror = nm_sym("hl_strerror");
	for (int i = 0; i < 2; i++) {
		hl_region_attr_t a;
		memset(&a, 0, sizeof a);
		a.struct_size = sizeof a;
		a.name = i ? "nomad-b" : "nomad-a";
		a.capacity = (size_t)256 << 20;
		int e = nm.region_create(&a, &nm.reg[i]);
		if (e)
			die("hl_region_create: %s", nm.strerror(e));
	}
}

static double nm_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *nm_alloc(struct worker *w, hl_region_t *r, size_t size)
{
	hl_place_t pl = { .reach = 0, .node = -1, .region = r };
	void *p = NULL;
	int e = nm.alloc(size, &pl, 0, &p);
	if (e == HL_ENOMEM)
		return NULL;
	if (e)
		die("hl_alloc(%zu): %s", size, nm.strerror(e));
	(void)w;
	return p;
}

/* Worker 0: move one probe's superblock to the other region. */
static void nm_move(struct worker *w, struct blk *probe)
{
	struct blk *b = &probe[rng_below(&w->rng, NM_PROBES)];
	if (!b->p)
		return;
	hl_region_t *to = nm.region_of(b->p) == nm.reg[0] ? nm.reg[1] : nm.reg[0];
	hl_place_t pl = { .reach = 0, .node = -1, .region = to };
	double t0 = nm_now_us();
	int e = nm.migrate(b->p, &pl, 0);
	double us = nm_now_us() - t0;
	if (e == HL_EBUSY || e == HL_ENOMEM) {
		nm.refused++;
		return;
	}
	if (e)
		die("hl_migrate: %s", nm.strerror(e));
	if (nm.region_of(b->p) != to) {
		fprintf(stderr, PROG ": FAIL workload=nomadic block=%p: hl_migrate said it "
			"moved, and it is not in the target region\n", b->p);
		exit(2);
	}
	check_before_free(b->p, b->size);   /* the moved probe's own bytes */
	if (nm.nlat < NM_LAT)
		nm.lat_us[nm.nlat++] = (uint32_t)(us < 4e9 ? us : 4e9);
	count_aux(w, 1);
}

static void *nomadic_thread(void *arg)
{
	struct worker *w = arg;
	struct blk slot[NM_SLOTS], probe[NM_PROBES];
	memset(slot, 0, sizeof slot);
	memset(probe, 0, sizeof probe);
	if (w->tid == 0)
		for (int i = 0; i < NM_PROBES; i++) {
			size_t size = rng_size(&w->rng);
			probe[i].p = nm_alloc(w, nm.reg[0], size);
			if (probe[i].p) {
				fill_block(probe[i].p, size);
				probe[i].size = (uint32_t)size;
				probe[i].owner = t_tid;
			}
		}
	start_barrier();
	uint64_t k = 0;
	while (keep_going(w)) {
		struct blk *b = &slot[rng_below(&w->rng, NM_SLOTS)];
		if (b->p) {
			check_before_free(b->p, b->size);
			nm.free(b->p);
			b->p = NULL;
			count_ops(w, 1);
		}
		size_t size = rng_size(&w->rng);
		void *p = nm_alloc(w, nm.reg[rng_below(&w->rng, 2)], size);
		if (p) {
			fill_block(p, size);
			b->p = p;
			b->size = (uint32_t)size;
			b->owner = t_tid;
			count_ops(w, 1);
		}
		if (w->tid == 0 && ++k % 16 == 0)
			nm_move(w, probe);
	}
	for (int i = 0; i < NM_SLOTS; i++)
		if (slot[i].p) {
			check_before_free(slot[i].p, slot[i].size);
			nm.free(slot[i].p);
		}
	for (int i = 0; i < NM_PROBES; i++)
		if (probe[i].p) {
			check_before_free(probe[i].p, probe[i].size);
			nm.free(probe[i].p);
		}
	return NULL;
}

static int nm_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void nomadic_done(int n, double secs, struct wl_result_extra *ex)
{
	uint64_t moves = sum_aux(n, 1);
	ex->name = "moves";
	ex->value = (double)moves;
	qsort(nm.lat_us, nm.nlat, sizeof nm.lat_us[0], nm_cmp);
	uint32_t p50 = nm.nlat ? nm.lat_us[nm.nlat / 2] : 0;
	uint32_t p99 = nm.nlat ? nm.lat_us[nm.nlat * 99 / 100] : 0;
	uint32_t mx = nm.nlat ? nm.lat_us[nm.nlat - 1] : 0;
	fprintf(stderr, PROG ": nomadic: %llu moves (%.0f/s), %llu refused (busy or full); "
		"hl_migrate latency p50 %u us, p99 %u us, max %u us\n",
		(unsigned long long)moves, secs > 0 ? (double)moves / secs : 0.0,
		(unsigned long long)nm.refused, p50, p99, mx);
	for (int i = 0; i < 2; i++) {
		hl_region_stats_t st = { .struct_size = sizeof st };
		nm.region_stats(nm.reg[i], &st);
		if (st.blocks_live || st.bytes_live)
			die("nomadic: region %d still counts %llu blocks live after every thread "
			    "freed its own", i, (unsigned long long)st.blocks_live);
		int e = nm.region_delete(nm.reg[i]);
		if (e)
			die("hl_region_delete: %s", nm.strerror(e));
	}
}

const struct workload wl_nomadic = {
	.name = "nomadic",
	.thread_fn = nomadic_thread,
	.setup = nomadic_setup,
	.teardown = nomadic_done,
	.desc = "heaplib only: blocks of two regions replaced and verified while worker 0\n"
		"               moves live superblocks between them (hl_migrate)",
	.heaplib_only = true,
};
