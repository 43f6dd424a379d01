/*
 * batches (threadtest shape): allocate 2000 blocks, free them all, repeat;
 * each thread on its own.  One allocation in 8 is a calloc.
 *
 * Verifies: calloc memory is zero, and every block's pattern when it is
 * freed.
 * Extra figure: rounds_per_sec, complete rounds of 2000 per second.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "../util.h"
#include "../verify.h"

#define BATCH_K 2000

static void *batches_thread(void *arg)
{
	struct worker *w = arg;
	struct blk *a = calloc(BATCH_K, sizeof *a);
	if (!a)
		fail_null("calloc", BATCH_K * sizeof *a);
	start_barrier();
	while (keep_going(w)) {
		int k = 0;
		while (k < BATCH_K && keep_going(w)) {
			blk_new(&a[k++], rng_size(&w->rng), (rng_next(&w->rng) & 7) == 0);
			count_ops(w, 1);
		}
		for (int i = 0; i < k; i++)
			blk_free(&a[i]);
		count_ops(w, (uint64_t)k);
		if (k == BATCH_K)
			count_aux(w, 1);
	}
	free(a);
	return NULL;
}

static void batches_done(int n, double secs, struct wl_result_extra *ex)
{
	ex->name = "rounds_per_sec";
	ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs : 0;
}

const struct workload wl_batches = {
	.name = "batches",
	.thread_fn = batches_thread,
	.setup = NULL,
	.teardown = batches_done,
	.desc = "threadtest shape: allocate 2000, free them all, repeat",
};
