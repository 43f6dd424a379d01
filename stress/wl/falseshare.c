/*
 * falseshare (cache-scratch shape): each thread allocates an object of
 * --min-size bytes, writes every byte of it 100 times and hands it to the
 * next thread, which frees it and allocates its own; the first object each
 * thread frees was allocated by main.  An allocator that puts objects of
 * different threads on one cache line shows it as slow writes.
 *
 * Verifies: the pattern of every object when it is freed, by the thread it
 * was handed to or (not taken in time) by its owner.
 * Extra figure: Mwrites_per_sec, millions of byte writes per second.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "../util.h"
#include "../verify.h"

#define FS_PASSES 100			/* write passes over each object */

static struct { _Atomic(unsigned char *) *box; size_t size; } fs;

static void falseshare_setup(int n)
{
	fs.size = opt.min_size;
	fs.box = calloc((size_t)n, sizeof *fs.box);
	if (!fs.box)
		fail_null("calloc", n * sizeof *fs.box);
	/* the first object every thread frees was allocated by main */
	for (int i = 0; i < n; i++) {
		struct blk b;
		blk_new(&b, fs.size, false);
		atomic_store(&fs.box[i], b.p);
	}
}

static void *falseshare_thread(void *arg)
{
	struct worker *w = arg;
	size_t sz = fs.size;
	uint64_t writes = 0;
	start_barrier();
	while (keep_going(w)) {
		unsigned char *got = atomic_exchange(&fs.box[w->tid], NULL);
		if (got) {			/* object handed from the neighbour */
			check_before_free(got, sz);
			free(got);
			count_ops(w, 1);
		}
		struct blk b;
		blk_new(&b, sz, false);
		count_ops(w, 1);
		volatile unsigned char *v = b.p;
		for (int pass = 0; pass < FS_PASSES; pass++)
			for (size_t i = 0; i < sz; i++)
				v[i] = (unsigned char)(v[i] + 1);
		writes += (uint64_t)FS_PASSES * sz;
		fill_block(b.p, sz);
		unsigned char *old = atomic_exchange(&fs.box[(w->tid + 1) % w->nthreads], b.p);
		if (old) {			/* our previous one, not taken yet */
			check_before_free(old, sz);
			free(old);
			count_ops(w, 1);
		}
	}
	atomic_store(&g_count[w->tid].aux, writes);
	return NULL;
}

static void falseshare_done(int n, double secs, struct wl_result_extra *ex)
{
	for (int i = 0; i < n; i++) {
		unsigned char *p = atomic_exchange(&fs.box[i], NULL);
		if (p) {
			check_before_free(p, fs.size);
			free(p);
		}
	}
	free(fs.box);
	fs.box = NULL;
	ex->name = "Mwrites_per_sec";
	ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs / 1e6 : 0;
}

const struct workload wl_falseshare = {
	.name = "falseshare",
	.thread_fn = falseshare_thread,
	.setup = falseshare_setup,
	.teardown = falseshare_done,
	.desc = "cache-scratch shape: objects freed/reallocated by another thread, written hard",
};
