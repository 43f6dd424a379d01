/*
 * bench/migrate: nomadic memory measured through the public API (a
 * benchmark, never a test: it reports, it does not judge).  Prints one
 * "name value" line per figure, then nothing else:
 *
 *   move_<tier>_inside_mean_us   the move alone, as the coordinator times it,
 *       the mean over every move of the run (evacuation's included);
 *   move_<tier>_<size>_<load>_inside_p50_us, _inside_p99_us   the move
 *       alone, per hl_migrate call (the coordinator's own time of the one
 *       move each call makes, read from hl_migrate_stats: no queue, no
 *       wake): the figure issue 10's move-latency targets are held against;
 *   move_<tier>_<size>_<load>_p50_us, _p99_us   hl_migrate round trips
 *       (the request through the coordinator's queue, the move, the
 *       answer) of one superblock, tier account (anonymous -> anonymous)
 *       or backing (anonymous <-> memfd), 64 KiB or 512 KiB superblocks,
 *       idle or with a writer thread storing into the moving blocks;
 *   stall_<size>_p50_us, _p99_us, _max_us   the writer's stores that took
 *       longer than 5 us while backing moves ran (write-protect waits, and
 *       preemption: the machine is shared);
 *   evac_mb_per_s, evac_mb   hl_region_delete of a region full of blocks,
 *       evacuated into another (a backing move each): 64 MiB a scale
 *       below 4, 1 GiB (the size) from scale 4 on;
 *   evac_app_loss   1 - (an application thread's operations per second
 *       during the evacuation / before it);
 *   oom_p50_us, oom_p99_us   hl_alloc calls that only succeed once the
 *       coordinator has moved other memory out of a full region.
 *
 * Usage: bench/migrate [scale]   (scale 1: CI-sized; make bench uses 4).
 * Run with heaplib linked (make bench/migrate links the library).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heaplib.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmpd);
	size_t i = (size_t)(p * (double)(n - 1));
	return v[i];
}

static hl_region_t *region(const char *name, size_t cap, hl_backing_t kind)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = cap;
	a.backing = kind;
	hl_region_t *r = NULL;
	int e = hl_region_create(&a, &r);
	if (e) {
		fprintf(stderr, "migrate: hl_region_create(%s): %s\n", name, hl_strerror(e));
		exit(1);
	}
	return r;
}

static void *in(hl_region_t *r, size_t size)
{
	hl_place_t pl = { .node = -1, .region = r };
	void *p = NULL;
	return hl_alloc(size, &pl, 0, &p) == HL_OK ? p : NULL;
}

/* ---- move latency, and writer stalls ----------------------------------- */

static atomic_int w_stop;
static unsigned char *w_target;
static size_t w_len;
static double *w_stall;
static size_t w_nstall, w_cap;

static void *writer(void *arg)
{
	(void)arg;
	unsigned k = 0;
	while (!atomic_load_explicit(&w_stop, memory_order_relaxed)) {
		double t0 = now_us();
		w_target[(k * 64u) % w_len] = (unsigned char)k;
		double dt = now_us() - t0;
		if (dt > 5 && w_nstall < w_cap)
			w_stall[w_nstall++] = dt;
		k++;
	}
	return NULL;
}

/* The coordinator's own time of all moves of the tier so far (ns). */
static uint64_t inside_ns(unsigned tier)
{
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	hl_migrate_stats(&ms);
	return ms.move_ns[tier];
}

static void bench_moves(const char *tier, bool backing, size_t block, const char *size,
			int rounds)
{
	unsigned ti = backing ? 4 : 1;   /* the tier's counter: account 1, backing 4 */
	for (int loaded = 0; loaded < 2; loaded++) {
		hl_region_t *a = region("bench-a", 64 * MB, HL_BACKING_ANON);
		hl_region_t *b = region("bench-b", 64 * MB, backing ? HL_BACKING_MEMFD : HL_BACKING_ANON);
		unsigned char *p = in(a, block);
		if (!p) {
			fprintf(stderr, "migrate: no block\n");
			exit(1);
		}
		memset(p, 1, block);
		pthread_t th;
		w_target = p;
		w_len = block;
		w_nstall = 0;
		w_cap = (size_t)1 << 20;
		if (!w_stall)
			w_stall = malloc(w_cap * sizeof *w_stall);
		atomic_store(&w_stop, 0);
		if (loaded)
			pthread_create(&th, NULL, writer, NULL);
		double *lat = malloc(sizeof(double) * (size_t)rounds);
		double *own = malloc(sizeof(double) * (size_t)rounds);
		size_t n = 0;
		for (int i = 0; i < rounds; i++) {
			hl_place_t to = { .node = -1, .region = i % 2 ? a : b };
			uint64_t m0 = inside_ns(ti);
			double t0 = now_us();
			int e = hl_migrate(p, &to, 0);
			double dt = now_us() - t0;
			own[n] = (double)(inside_ns(ti) - m0) / 1e3;
			if (e == HL_EPERM) {
				printf("move_%s_%s_%s unavailable\n", tier, size, loaded ? "loaded" : "idle");
				break;
			}
			if (e == HL_OK)
				lat[n++] = dt;
		}
		if (loaded) {
			atomic_store(&w_stop, 1);
			pthread_join(th, NULL);
		}
		const char *ld = loaded ? "loaded" : "idle";
		if (n) {
			printf("move_%s_%s_%s_p50_us %.1f\n", tier, size, ld, pct(lat, n, 0.5));
			printf("move_%s_%s_%s_p99_us %.1f\n", tier, size, ld, pct(lat, n, 0.99));
			printf("move_%s_%s_%s_inside_p50_us %.1f\n", tier, size, ld, pct(own, n, 0.5));
			printf("move_%s_%s_%s_inside_p99_us %.1f\n", tier, size, ld, pct(own, n, 0.99));
		}
		if (loaded && backing && n) {
			printf("stall_%s_count %zu\n", size, w_nstall);
			printf("stall_%s_p50_us %.1f\n", size, pct(w_stall, w_nstall, 0.5));
			printf("stall_%s_p99_us %.1f\n", size, pct(w_stall, w_nstall, 0.99));
			printf("stall_%s_max_us %.1f\n", size, w_nstall ? w_stall[w_nstall - 1] : 0.0);
		}
		free(lat);
		free(own);
		hl_free(p);
		hl_region_delete(a);
		hl_region_delete(b);
	}
}

/* ---- evacuation beside an application thread --------------------------- */

static atomic_int app_stop;
static atomic_ulong app_ops;

static void *app(void *arg)
{
	(void)arg;
	void *ring[64] = { 0 };
	unsigned k = 0;
	while (!atomic_load_explicit(&app_stop, memory_order_relaxed)) {
		unsigned i = k++ % 64;
		free(ring[i]);
		ring[i] = malloc(16 + (k % 32) * 16);
		atomic_fetch_add_explicit(&app_ops, 1, memory_order_relaxed);
	}
	for (int i = 0; i < 64; i++)
		free(ring[i]);
	return NULL;
}

static double app_rate(double ms)
{
	unsigned long o0 = atomic_load(&app_ops);
	double t0 = now_us();
	struct timespec ts = { 0, (long)(ms * 1e6) };
	nanosleep(&ts, NULL);
	return (double)(atomic_load(&app_ops) - o0) / (now_us() - t0);
}

static void bench_evacuate(size_t mb)
{
	hl_region_t *src = region("evac-src", mb * MB + 8 * MB, HL_BACKING_ANON);
	hl_region_t *dst = region("evac-dst", mb * MB + 64 * MB, HL_BACKING_MEMFD);
	size_t n = mb * MB / (16 * KB);
	void **v = malloc(n * sizeof *v);
	for (size_t i = 0; i < n; i++) {
		v[i] = in(src, 16 * KB - 64);
		if (!v[i]) {
			n = i;
			break;
		}
		memset(v[i], (int)i, 64);
	}
	pthread_t th;
	pthread_create(&th, NULL, app, NULL);
	double before = app_rate(200);
	unsigned long o0 = atomic_load(&app_ops);
	double t0 = now_us();
	int e = hl_region_delete(src);
	double dt = now_us() - t0;
	double during = (double)(atomic_load(&app_ops) - o0) / dt;
	atomic_store(&app_stop, 1);
	pthread_join(th, NULL);
	if (e == HL_OK) {
		printf("evac_mb %.0f\n", (double)n * 16 * KB / MB);
		printf("evac_mb_per_s %.0f\n", (double)n * 16 * KB / MB / (dt / 1e6));
		printf("evac_app_loss %.3f\n", before > 0 ? 1 - during / before : 0.0);
	} else {
		printf("evac unavailable (%s)\n", hl_strerror(e));
		hl_region_delete(src);
	}
	for (size_t i = 0; i < n; i++)
		hl_free(v[i]);
	free(v);
	hl_region_delete(dst);
}

/* ---- OOM resolution ------------------------------------------------------ */

static void bench_oom(int rounds)
{
	hl_region_attr_t at;
	memset(&at, 0, sizeof at);
	at.struct_size = sizeof at;
	at.name = "oom-a";
	at.capacity = 1 * MB;
	at.reach = HL_REACH_SYS | HL_REACH_CLUSTER;
	hl_region_t *a = NULL;
	hl_region_create(&at, &a);
	hl_region_t *b = region("oom-b", 512 * MB, HL_BACKING_ANON);
	hl_region_t *ab[2] = { a, b };
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "oom", .regions = ab, .nregions = 2 };
	hl_task_t *t = NULL;
	hl_task_create(&ta, &t);
	hl_task_join(t);
	double *lat = malloc(sizeof(double) * (size_t)rounds);
	size_t nl = 0;
	void **keep = malloc(sizeof(void *) * (size_t)rounds * 64);
	size_t nk = 0;
	for (int r = 0; r < rounds; r++) {
		/* SYS blocks fill a (then fall back to b)... */
		for (;;) {
			hl_place_t sys = { .reach = HL_REACH_SYS, .node = -1 };
			void *p = NULL;
			if (hl_alloc(1000, &sys, 0, &p) != HL_OK)
				break;
			if (hl_region_of(p) != a) {
				hl_free(p);
				break;
			}
			keep[nk++] = p;
		}
		/* ... then a CLUSTER block only a can serve. */
		hl_place_t cl = { .reach = HL_REACH_CLUSTER, .node = -1 };
		void *c = NULL;
		double t0 = now_us();
		int e = hl_alloc(1000, &cl, 0, &c);
		double dt = now_us() - t0;
		if (e == HL_OK) {
			lat[nl++] = dt;
			keep[nk++] = c;
		}
	}
	printf("oom_resolved %zu\n", nl);
	printf("oom_p50_us %.1f\n", pct(lat, nl, 0.5));
	printf("oom_p99_us %.1f\n", pct(lat, nl, 0.99));
	for (size_t i = 0; i < nk; i++)
		hl_free(keep[i]);
	free(keep);
	free(lat);
	hl_task_join(NULL);
	hl_task_destroy(t);
	hl_region_delete(a);
	hl_region_delete(b);
}

int main(int argc, char **argv)
{
	int scale = argc > 1 ? atoi(argv[1]) : 1;
	if (scale < 1)
		scale = 1;
	/* 1000 B blocks: 64 KiB superblocks; 32 KiB - 64 B: 512 KiB ones. */
	bench_moves("account", false, 1000, "64k", 500 * scale);
	bench_moves("account", false, 32 * KB - 64, "512k", 500 * scale);
	bench_moves("backing", true, 1000, "64k", 500 * scale);
	bench_moves("backing", true, 32 * KB - 64, "512k", 250 * scale);
	bench_evacuate(scale >= 4 ? 1024 : 64 * (size_t)scale);
	bench_oom(50 * scale);
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	hl_migrate_stats(&ms);
	printf("moves_total %llu\n", (unsigned long long)(ms.moves[1] + ms.moves[2] + ms.moves[3] + ms.moves[4]));
	/* The moves themselves, inside the coordinator (no queue, no wake). */
	static const char *const tn[5] = { "", "account", "attr", "node", "backing" };
	for (int i = 1; i < 5; i++)
		if (ms.moves[i])
			printf("move_%s_inside_mean_us %.2f\n", tn[i],
			       (double)ms.move_ns[i] / 1e3 / (double)ms.moves[i]);
	return 0;
}
