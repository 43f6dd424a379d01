/*
 * heaplib-stress's shared declarations: the options, the random generator,
 * the per-worker counters, the workload descriptor, and what each module
 * offers the others (blocks and their checks are verify.h's).
 *
 * The modules (a section below for each .c file but verify.c):
 *   main.c      options, --help and main
 *   harness.c   the workload table, threads, timing, RSS, the monitor, run_one
 *   verify.h    block patterns and their checks, inline: the workloads' hot path
 *   verify.c    the slow check, the FAIL lines, realloc, the selftest
 *   report.c    text and JSON output, of one run and of --compare
 *   compare.c   --compare: this program re-run per (workload, threads, run,
 *               allocator), each with its own LD_PRELOAD
 *   wl/NAME.c   one workload each; its header says its shape and what it checks
 *
 * Nothing here is linked with heaplib: the allocator is whatever is preloaded.
 * Only wl/regions.c, wl/taskpath.c and wl/nomadic.c include heaplib.h, for types, and
 * find the functions with dlsym.
 */
#ifndef HEAPLIB_STRESS_UTIL_H
#define HEAPLIB_STRESS_UTIL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROG "heaplib-stress"
#define MAX_THREADS 512
#define NWORKLOADS 14			/* entries of harness.c's table */

/* ---- main.c: options ---------------------------------------------------- */

/* Set by main before any thread starts, read-only after. */
struct options {
	const char *workload;		/* name or comma list */
	int threads;
	bool threads_given;
	double duration;
	uint64_t ops;			/* per thread; 0 = use duration */
	bool duration_given;
	size_t min_size, max_size;
	uint64_t seed;
	const char *json;
	bool quiet;
	bool verify;
	const char *alloc_name;
	/* --compare */
	bool compare;
	const char *lib;
	bool peers;
	const char *threads_list;
	int runs;
};

extern struct options opt;

/* ---- random numbers ----------------------------------------------------- */

/* xoshiro-like small generator: splitmix64 stepping, good enough here */
struct rng { uint64_t s; };

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

static inline uint64_t rng_below(struct rng *r, uint64_t n)	/* 0 .. n-1 */
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* a small block size, --min-size .. --max-size */
static inline size_t rng_size(struct rng *r)
{
	return opt.min_size + (size_t)rng_below(r, opt.max_size - opt.min_size + 1);
}

/* ---- harness.c: utilities ----------------------------------------------- */

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* heaplib's function NAME for workload WL (found with dlsym); dies saying
 * heaplib must be preloaded when it is not there. */
void *heaplib_sym(const char *wl, const char *name);
double now_sec(void);
const char *allocator_label(void);	/* --allocator-name, else from LD_PRELOAD */

/* ---- harness.c: workers ------------------------------------------------- */

/* Written by its own worker only; read by the monitor while the workers run
 * and by the workload's teardown after they are joined. */
struct pcount {				/* one cache line per worker */
	_Atomic uint64_t ops;
	_Atomic uint64_t aux;		/* workload specific (threads, writes ...) */
	_Atomic uint64_t aux2;
	char pad[64 - 3 * sizeof(uint64_t)];
} __attribute__((aligned(64)));

extern struct pcount g_count[MAX_THREADS];
extern atomic_int g_stop;		/* set by the monitor when the time is up */

extern __thread int t_tid;		/* worker index; -1 = main thread */
extern __thread const char *t_wl;	/* running workload, for FAIL lines */

struct worker {
	int tid;
	int nthreads;
	uint64_t ops;			/* local copy of g_count[tid].ops */
	struct rng rng;
} __attribute__((aligned(64)));

/* The worker's own counters: only its thread calls these. */
static inline void count_ops(struct worker *w, uint64_t n)
{
	w->ops += n;
	atomic_store_explicit(&g_count[w->tid].ops, w->ops, memory_order_relaxed);
}

static inline void count_aux(struct worker *w, uint64_t n)
{
	atomic_fetch_add_explicit(&g_count[w->tid].aux, n, memory_order_relaxed);
}

static inline bool keep_going(const struct worker *w)
{
	if (opt.ops)
		return w->ops < opt.ops;
	return !atomic_load_explicit(&g_stop, memory_order_relaxed);
}

void start_barrier(void);		/* every worker, once set up */
/* Run fn(arg) on a new thread made with attr and wait for it to end; a
 * thread that cannot be made is a FAIL of workload name (exit 2). */
void run_child_thread(const struct worker *w, const char *name, pthread_attr_t *attr,
		      void *(*fn)(void *), void *arg);
uint64_t sum_ops(int n);
uint64_t sum_aux(int n, int which);	/* which: 1 = aux, 2 = aux2 */

/* ---- harness.c: workloads ----------------------------------------------- */

struct wl_result_extra { const char *name; double value; };

struct workload {
	const char *name;
	void *(*thread_fn)(void *);	/* runs on every worker, gets its worker */
	void (*setup)(int nthreads);	/* main, before threads; may be NULL */
	void (*teardown)(int nthreads, double secs, struct wl_result_extra *ex);
	const char *desc;		/* one line of --help */
	bool heaplib_only;		/* calls heaplib's own API: not in "all" */
};

/* in --help order, which is also the order of "all" */
extern const struct workload *const workloads[NWORKLOADS];

const struct workload *find_workload(const char *name);
/* Expands "mix", "all" and comma lists into out[] (names), at most max;
 * from_mix[i] (if not NULL) tells whether out[i] came from "mix".  Dies on
 * an unknown name. */
int expand_workloads(const char *spec, const char **out, int max, bool *from_mix);

/* ---- harness.c: running one workload ------------------------------------ */

struct result {
	char workload[16];
	char allocator[32];
	int threads;
	uint64_t ops;
	double seconds, ops_per_sec;
	long peak_rss_kib, rss_start_kib, rss_end_kib;
	long rss_q1_kib;		/* at 25% of the duration (-1: not sampled) */
	char extra_name[32];
	double extra_value;
};

void monitor_init(void);		/* once, before the first run_one */
void run_one(const struct workload *wl, int nthreads, double duration, struct result *res);

/* ---- report.c: output --------------------------------------------------- */

/* millions per second, with enough digits for slow workloads */
const char *fmt_mops(char *buf, size_t n, double per_sec);
void print_table(const struct result *r, int n);
void write_json(const char *path, const struct result *r, int n);

/* ---- compare.c: --compare ----------------------------------------------- */

#define CMP_MAX_ALLOCS 5		/* glibc, heaplib, jemalloc, tcmalloc, mimalloc */

struct alloc_ent {
	const char *name;
	char path[PATH_MAX];		/* "" = no LD_PRELOAD (glibc) */
};

enum { ST_OK = 0, ST_EXIT, ST_SIGNAL, ST_TIMEOUT, ST_NORESULT, ST_NOTRUN };

struct run_rec {
	int st, code;			/* status kind and exit code / signal */
	struct result r;
};

/* Every run of a comparison: cmp_rec(m, w, t, a, r) is that of workload w,
 * thread count t, allocator a, run r. */
struct cmp_runs {
	int nw, nt, na, runs;
	const char *const *wls;
	const int *tl;
	const struct alloc_ent *al;
	int heap_idx;			/* heaplib's index in al, or -1 */
	struct run_rec *recs;
};

static inline struct run_rec *cmp_rec(const struct cmp_runs *m, int w, int t, int a, int r)
{
	return &m->recs[(((size_t)w * m->nt + t) * m->na + a) * m->runs + r];
}

int do_compare(void);
void status_str(const struct run_rec *rr, char *buf, size_t n);

/* report.c's half of --compare */
void compare_report(const struct cmp_runs *m, double elapsed);
void compare_write_json(const char *path, const struct cmp_runs *m);

/* ---- wl/NAME.c: the workloads ------------------------------------------- */

extern const struct workload wl_fastpath, wl_server, wl_prodcons, wl_batches,
	wl_falseshare, wl_churn, wl_blowup, wl_large, wl_malloclarge, wl_mstress,
	wl_larson_sized, wl_regions, wl_taskpath, wl_nomadic;

/* wl/blowup.c: bytes of block pointers each blowup thread keeps, which
 * report.c names as harness overhead in the peak RSS */
extern const size_t blowup_array_bytes;

/* wl/server.c: the larson engine, which wl/larson-sized.c runs with sized
 * frees.  sized_free NULL: every block is freed with free. */
typedef void sized_free_fn(void *ptr, size_t size);
void server_setup_with(int nthreads, sized_free_fn *sized_free);
void *server_run(struct worker *w, sized_free_fn *sized_free);
void server_done(int nthreads, double secs, struct wl_result_extra *ex);

#endif
