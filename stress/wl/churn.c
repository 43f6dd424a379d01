/*
 * churn: threads created and joined continually.  Each worker starts a child
 * thread, which allocates 300 blocks, frees 200 of them and exits, leaving
 * the other 100 to the worker, which frees them after the join: frees of
 * blocks whose thread is gone.  Whether an allocator reuses what dead
 * threads held shows in the RSS at the start, after warm-up (25% of the
 * run) and at the end, which the table prints.
 *
 * Verifies: the pattern of every block, those of dead threads included.  A
 * failed pthread_create is a FAIL line and exit 2.
 * Extra figure: threads_per_sec, children created and joined per second.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util.h"
#include "../verify.h"

#define CHURN_BLOCKS 300
#define CHURN_KEEP 100			/* handed back to the parent, freed after join */

struct churn_child {
	struct worker *w;
	struct blk keep[CHURN_KEEP];
};

static void *churn_child_fn(void *arg)
{
	struct churn_child *c = arg;
	struct worker *w = c->w;
	t_tid = w->tid;
	t_wl = "churn";
	struct blk a[CHURN_BLOCKS - CHURN_KEEP];
	int n = CHURN_BLOCKS - CHURN_KEEP;
	for (int i = 0; i < n; i++)
		blk_new(&a[i], rng_size(&w->rng), false);
	for (int i = 0; i < CHURN_KEEP; i++)
		blk_new(&c->keep[i], rng_size(&w->rng), false);
	for (int i = 0; i < n; i++)
		blk_free(&a[i]);
	count_ops(w, CHURN_BLOCKS + (uint64_t)n);	/* allocations + own frees */
	return NULL;
}

static void *churn_thread(void *arg)
{
	struct worker *w = arg;
	struct churn_child *c = malloc(sizeof *c);
	if (!c)
		fail_null("malloc", sizeof *c);
	c->w = w;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	start_barrier();
	while (keep_going(w)) {
		run_child_thread(w, "churn", &attr, churn_child_fn, c);
		for (int i = 0; i < CHURN_KEEP; i++)	/* blocks of a dead thread */
			blk_free(&c->keep[i]);
		count_ops(w, CHURN_KEEP);
		count_aux(w, 1);
	}
	pthread_attr_destroy(&attr);
	free(c);
	return NULL;
}

static void churn_done(int n, double secs, struct wl_result_extra *ex)
{
	ex->name = "threads_per_sec";
	ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs : 0;
}

const struct workload wl_churn = {
	.name = "churn",
	.thread_fn = churn_thread,
	.setup = NULL,
	.teardown = churn_done,
	.desc = "threads created and joined continually, 300 blocks each",
};
