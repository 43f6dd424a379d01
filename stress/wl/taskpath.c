/*
 * taskpath (heaplib only): the fastpath shape in a task.  Main creates one
 * task (no quota, every region allowed); each worker joins it and then
 * replaces blocks of --min-size..--max-size bytes in a ring of 64 with
 * malloc and free, so its blocks come from the task's own superblocks in
 * the default region, through the task threads' slow paths and caches.
 * hl_task_create and hl_task_join are found with dlsym, so heaplib must be
 * preloaded; without it the run exits 1.
 *
 * Verifies: every block's pattern before it is freed.
 * Extra figure: ns_per_pair, wall time per malloc/free pair and thread.
 */
#define _GNU_SOURCE
#include <string.h>

#include "heaplib.h"	/* types only: the functions are found with dlsym */

#include "../util.h"
#include "../verify.h"

#define TP_RING 64

static struct {
	int (*task_join)(hl_task_t *);
	int (*task_destroy)(hl_task_t *);
	hl_task_t *task;
} tp;

#define tp_sym(name) heaplib_sym("taskpath", name)

static void taskpath_setup(int n)
{
	(void)n;
	int (*task_create)(const hl_task_attr_t *, hl_task_t **) = tp_sym("hl_task_create");
	tp.task_join = tp_sym("hl_task_join");
	tp.task_destroy = tp_sym("hl_task_destroy");
	hl_task_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = "taskpath";
	if (task_create(&a, &tp.task) != HL_OK)
		die("taskpath: hl_task_create failed");
}

static void *taskpath_thread(void *arg)
{
	struct worker *w = arg;
	struct blk ring[TP_RING];
	if (tp.task_join(tp.task) != HL_OK)
		die("taskpath: hl_task_join failed");
	for (int i = 0; i < TP_RING; i++)
		blk_new(&ring[i], rng_size(&w->rng), false);
	start_barrier();
	unsigned i = 0;
	while (keep_going(w)) {
		blk_free(&ring[i]);
		blk_new(&ring[i], rng_size(&w->rng), false);
		i = (i + 1) % TP_RING;
		count_ops(w, 2);
	}
	for (int k = 0; k < TP_RING; k++)
		blk_free(&ring[k]);
	tp.task_join(NULL);
	return NULL;
}

static void taskpath_done(int n, double secs, struct wl_result_extra *ex)
{
	uint64_t ops = sum_ops(n);
	ex->name = "ns_per_pair";
	ex->value = ops ? secs * n * 1e9 / ((double)ops / 2) : 0;
	tp.task_destroy(tp.task);
}

const struct workload wl_taskpath = {
	.name = "taskpath",
	.thread_fn = taskpath_thread,
	.setup = taskpath_setup,
	.teardown = taskpath_done,
	.desc = "heaplib only: fastpath's pairs in a ring of 64, every thread joined to one task",
	.heaplib_only = true,
};
