/*
 * fastpath: malloc/free pairs of --min-size..--max-size bytes (default
 * 16-512 B), each thread on its own: the allocator's thread-local fast path,
 * with no block ever crossing threads.
 *
 * Verifies: every block's pattern between its malloc and its free.
 * Extra figure: ns_per_pair, wall time per malloc/free pair and thread.
 */
#define _GNU_SOURCE
#include "../util.h"
#include "../verify.h"

static void *fastpath_thread(void *arg)
{
	struct worker *w = arg;
	struct blk b;
	start_barrier();
	while (keep_going(w)) {
		blk_new(&b, rng_size(&w->rng), false);
		blk_free(&b);
		count_ops(w, 2);
	}
	return NULL;
}

static void fastpath_done(int n, double secs, struct wl_result_extra *ex)
{
	uint64_t ops = sum_ops(n);
	ex->name = "ns_per_pair";
	ex->value = ops ? secs * n * 1e9 / ((double)ops / 2) : 0;
}

const struct workload wl_fastpath = {
	.name = "fastpath",
	.thread_fn = fastpath_thread,
	.setup = NULL,
	.teardown = fastpath_done,
	.desc = "malloc/free pairs of 16-512 B, each thread on its own",
};
