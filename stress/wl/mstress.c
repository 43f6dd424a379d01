/*
 * mstress (mimalloc test-stress shape): threads that keep a random set of
 * live objects of mixed sizes, hand some to other threads, and are replaced
 * by new threads.  Each worker runs short-lived threads one after another.
 * Such a thread starts with 500 empty slots and takes 4000 steps; a step
 * picks one of its slots at random and, one time in 8, swaps what it holds
 * with one of 1024 transfer slots that the whole process shares (the object
 * goes to whichever thread picks that transfer slot next: another worker's,
 * or one started later), else fills the slot if it is empty, or frees its
 * object (2 times in 7) or replaces it (5 in 7).  Then the thread frees what
 * its slots hold and exits, and its worker starts the next one.  Over a
 * thread's life about 2 slots in 3 are full.  Sizes: mostly --min-size ..
 * --max-size (16-512 B), one in 16 from 512 B to 16 KiB, one in 256 from
 * 32 to 512 KiB; one allocation in 16 is a calloc.  A transfer slot is
 * taken with a try-lock: a step that finds it taken does nothing.
 *
 * Verifies: the pattern of every block before it is freed, about one in ten
 * allocated by another thread, often one that has exited; what the transfer
 * slots hold at the end is checked and freed by the main thread; calloc
 * memory is zero.  A failed pthread_create is a FAIL line and exit 2.
 * Extra figure: foreign_free_pct, the share of the threads' frees whose
 * block another thread allocated (each thread has its own number in the
 * blocks' owner field, so a worker's earlier threads count as others).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util.h"
#include "../verify.h"

#define MS_LIVE 500			/* slots of a thread */
#define MS_STEPS 4000			/* steps of a thread's life */
#define MS_XFER 1024			/* transfer slots of the process */

struct ms_xfer {
	atomic_flag busy;		/* the try-lock of b */
	struct blk b;
} __attribute__((aligned(64)));

static struct ms_xfer ms_xfer[MS_XFER];
static atomic_int ms_serial;		/* the next thread's number */

struct ms_child {
	struct worker *w;
	struct blk live[MS_LIVE];
};

static size_t ms_size(struct rng *r)
{
	uint64_t x = rng_below(r, 256);
	if (x == 0)
		return (32u << 10) + (size_t)rng_below(r, (480u << 10) + 1);
	if (x < 16)
		return 512 + (size_t)rng_below(r, (16u << 10) - 512 + 1);
	return rng_size(r);
}

static void ms_new(struct blk *b, struct rng *r, int32_t me)
{
	blk_new(b, ms_size(r), rng_below(r, 16) == 0);
	b->owner = me;
}

/* swap *b with transfer slot k's block, unless another thread holds it */
static void ms_transfer(struct blk *b, int k)
{
	struct ms_xfer *x = &ms_xfer[k];
	if (atomic_flag_test_and_set_explicit(&x->busy, memory_order_acquire))
		return;
	struct blk t = x->b;
	x->b = *b;
	*b = t;
	atomic_flag_clear_explicit(&x->busy, memory_order_release);
}

static void *ms_child_fn(void *arg)
{
	struct ms_child *c = arg;
	struct worker *w = c->w;
	t_tid = w->tid;
	t_wl = "mstress";
	int32_t me = atomic_fetch_add(&ms_serial, 1);
	uint64_t foreign = 0, frees = 0;
	memset(c->live, 0, sizeof c->live);
	for (int step = 0; step < MS_STEPS && keep_going(w); step++) {
		struct blk *b = &c->live[rng_below(&w->rng, MS_LIVE)];
		unsigned r = (unsigned)rng_below(&w->rng, 8);
		if (r == 0) {
			ms_transfer(b, (int)rng_below(&w->rng, MS_XFER));
			continue;
		}
		if (!b->p) {
			ms_new(b, &w->rng, me);
			count_ops(w, 1);
			continue;
		}
		foreign += b->owner != me;
		frees++;
		blk_free(b);
		if (r < 3) {
			count_ops(w, 1);
		} else {
			ms_new(b, &w->rng, me);
			count_ops(w, 2);
		}
	}
	uint64_t n = 0;
	for (int i = 0; i < MS_LIVE; i++)
		if (c->live[i].p) {
			foreign += c->live[i].owner != me;
			blk_free(&c->live[i]);
			n++;
		}
	frees += n;
	count_ops(w, n);
	atomic_fetch_add_explicit(&g_count[w->tid].aux, foreign, memory_order_relaxed);
	atomic_fetch_add_explicit(&g_count[w->tid].aux2, frees, memory_order_relaxed);
	return NULL;
}

static void ms_setup(int n)
{
	(void)n;
	for (int k = 0; k < MS_XFER; k++) {
		atomic_flag_clear(&ms_xfer[k].busy);
		memset(&ms_xfer[k].b, 0, sizeof ms_xfer[k].b);
	}
	atomic_store(&ms_serial, 0);
}

static void *ms_thread(void *arg)
{
	struct worker *w = arg;
	struct ms_child *c = malloc(sizeof *c);
	if (!c)
		fail_null("malloc", sizeof *c);
	c->w = w;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	start_barrier();
	while (keep_going(w)) {
		run_child_thread(w, "mstress", &attr, ms_child_fn, c);
	}
	pthread_attr_destroy(&attr);
	free(c);
	return NULL;
}

static void ms_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)secs;
	for (int k = 0; k < MS_XFER; k++)	/* the threads are joined: no lock */
		if (ms_xfer[k].b.p)
			blk_free(&ms_xfer[k].b);
	uint64_t foreign = sum_aux(n, 1), frees = sum_aux(n, 2);
	ex->name = "foreign_free_pct";
	ex->value = frees ? 100.0 * (double)foreign / (double)frees : 0;
}

const struct workload wl_mstress = {
	.name = "mstress",
	.thread_fn = ms_thread,
	.setup = ms_setup,
	.teardown = ms_done,
	.desc = "test-stress shape: random live sets, objects handed on, threads replaced",
};
