/*
 * server (larson shape): slot arrays, random replacement, arrays handed on.
 * A thread replaces every slot of the array it holds once, in a random order
 * and with random sizes, then puts the array at the back of a shared FIFO
 * pool (mutex-protected) and takes the oldest array there that another thread
 * held last.  So with two or more threads nearly every free is remote.
 *
 * Verifies: the pattern of every block freed, most of them allocated by
 * another thread; one allocation in 16 is a calloc, checked for zeros.
 * Extra figure: remote_free_pct, the share of frees whose block another
 * thread allocated.
 *
 * The engine (setup, one thread's loop, teardown) is shared with
 * wl/larson-sized.c, which frees with the block's size: server_run's
 * sized_free, NULL here, where the compiler folds it away.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "../verify.h"

#define SRV_SLOTS 1000

struct srv_ent { struct blk *a; int holder; };

static struct {
	pthread_mutex_t mu;
	struct srv_ent *pool;		/* FIFO, oldest first */
	int count, cap;
	sized_free_fn *sized_free;	/* set by setup, read-only while threads run */
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* every free of the workload: free, or sized_free with the block's size */
static inline __attribute__((always_inline))
void srv_free(struct blk *b, sized_free_fn *sized_free)
{
	if (sized_free)
		blk_free_sized(b, sized_free);
	else
		blk_free(b);
}

static struct blk *srv_new_array(struct rng *r)
{
	struct blk *a = calloc(SRV_SLOTS, sizeof *a);
	if (!a)
		fail_null("calloc", SRV_SLOTS * sizeof *a);
	for (int i = 0; i < SRV_SLOTS; i++)
		blk_new(&a[i], rng_size(r), false);
	return a;
}

static void srv_free_array(struct blk *a, sized_free_fn *sized_free)
{
	for (int i = 0; i < SRV_SLOTS; i++)
		if (a[i].p)
			srv_free(&a[i], sized_free);
	free(a);
}

void server_setup_with(int n, sized_free_fn *sized_free)
{
	struct rng r = { opt.seed ^ 0x5e17e5ULL };
	srv.sized_free = sized_free;
	srv.cap = 2 * n;			/* n held by threads + n spares */
	srv.pool = calloc((size_t)srv.cap, sizeof *srv.pool);
	if (!srv.pool)
		fail_null("calloc", (size_t)srv.cap * sizeof *srv.pool);
	for (srv.count = 0; srv.count < n; srv.count++) {
		srv.pool[srv.count].a = srv_new_array(&r);
		srv.pool[srv.count].holder = -1;
	}
}

static struct blk *srv_exchange(struct blk *a, int tid, int nthreads)
{
	pthread_mutex_lock(&srv.mu);
	int k = 0;
	while (k < srv.count && srv.pool[k].holder == tid)
		k++;
	if (k == srv.count && nthreads > 1) {
		/* Only arrays we held ourselves: the others have not run for a while
		   (more threads than cores).  Let them run once, then look again. */
		pthread_mutex_unlock(&srv.mu);
		sched_yield();
		pthread_mutex_lock(&srv.mu);
		for (k = 0; k < srv.count && srv.pool[k].holder == tid; k++)
			;
	}
	if (k == srv.count)			/* still only ours: the oldest */
		k = 0;
	struct blk *in = srv.pool[k].a;
	memmove(&srv.pool[k], &srv.pool[k + 1], (size_t)(srv.count - k - 1) * sizeof *srv.pool);
	srv.pool[srv.count - 1].a = a;
	srv.pool[srv.count - 1].holder = tid;
	pthread_mutex_unlock(&srv.mu);
	return in;
}

static void server_setup(int n)
{
	server_setup_with(n, NULL);
}

/* one thread's loop; sized_free as in srv_free */
static inline __attribute__((always_inline))
void *srv_run(struct worker *w, sized_free_fn *sized_free)
{
	struct blk *a = srv_new_array(&w->rng);
	uint16_t perm[SRV_SLOTS];
	for (int i = 0; i < SRV_SLOTS; i++)
		perm[i] = (uint16_t)i;
	uint64_t remote = 0, frees = 0;
	start_barrier();
	while (keep_going(w)) {
		for (int i = SRV_SLOTS - 1; i > 0; i--) {		/* random order */
			int j = (int)rng_below(&w->rng, (uint64_t)i + 1);
			uint16_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
		}
		for (int i = 0; i < SRV_SLOTS && keep_going(w); i++) {
			struct blk *b = &a[perm[i]];
			remote += b->owner != w->tid;
			frees++;
			srv_free(b, sized_free);
			blk_new(b, rng_size(&w->rng), (rng_next(&w->rng) & 15) == 0);
			count_ops(w, 2);
		}
		a = srv_exchange(a, w->tid, w->nthreads);
	}
	for (int i = 0; i < SRV_SLOTS; i++) {
		remote += a[i].owner != w->tid;
		frees++;
	}
	srv_free_array(a, sized_free);
	count_ops(w, SRV_SLOTS);
	atomic_store(&g_count[w->tid].aux, remote);
	atomic_store(&g_count[w->tid].aux2, frees);
	return NULL;
}

static void *server_thread(void *arg)
{
	return srv_run(arg, NULL);
}

void *server_run(struct worker *w, sized_free_fn *sized_free)
{
	return srv_run(w, sized_free);
}

void server_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)secs;
	for (int i = 0; i < srv.count; i++)
		srv_free_array(srv.pool[i].a, srv.sized_free);
	free(srv.pool);
	srv.pool = NULL;
	srv.count = 0;
	uint64_t remote = sum_aux(n, 1), frees = sum_aux(n, 2);
	ex->name = "remote_free_pct";
	ex->value = frees ? 100.0 * (double)remote / (double)frees : 0;
}

const struct workload wl_server = {
	.name = "server",
	.thread_fn = server_thread,
	.setup = server_setup,
	.teardown = server_done,
	.desc = "larson shape: random slot replacement, slot arrays handed between threads",
};
