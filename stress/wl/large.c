/*
 * large: blocks of 64 KiB - 8 MiB in 4 slots per thread, at random
 * allocated, grown by realloc (by half and up to 64 KiB more, to at most
 * 8 MiB), shrunk to half or freed; one allocation in 8 is a calloc.
 *
 * Verifies: realloc keeps the contents up to min(old, new) size, calloc
 * memory is zero, and every block's pattern before it is reallocated or
 * freed.
 * Extra figure: realloc_moved_pct, the share of reallocs that moved the block.
 */
#define _GNU_SOURCE
#include <string.h>

#include "../util.h"
#include "../verify.h"

#define LARGE_MIN (64u << 10)
#define LARGE_MAX (8u << 20)
#define LARGE_SLOTS 4

static size_t large_size(struct rng *r)
{
	unsigned shift = (unsigned)rng_below(r, 7);		/* 64K .. 4M base */
	size_t base = (size_t)LARGE_MIN << shift;
	size_t s = base + (size_t)rng_below(r, base);
	return s > LARGE_MAX ? LARGE_MAX : s;
}

static void *large_thread(void *arg)
{
	struct worker *w = arg;
	struct blk s[LARGE_SLOTS];
	memset(s, 0, sizeof s);
	uint64_t reallocs = 0, moved = 0;
	start_barrier();
	while (keep_going(w)) {
		struct blk *b = &s[rng_below(&w->rng, LARGE_SLOTS)];
		if (!b->p) {
			blk_new(b, large_size(&w->rng), rng_below(&w->rng, 8) == 0);
			count_ops(w, 1);
			continue;
		}
		unsigned r = (unsigned)rng_below(&w->rng, 8);
		if (r < 4 && b->size < LARGE_MAX) {			/* grow */
			size_t ns = b->size + b->size / 2 + (size_t)rng_below(&w->rng, 65536);
			if (ns > LARGE_MAX)
				ns = LARGE_MAX;
			moved += blk_realloc(b, ns);
			reallocs++;
		} else if (r == 4 && b->size >= 2 * LARGE_MIN) {	/* shrink */
			moved += blk_realloc(b, b->size / 2);
			reallocs++;
		} else {
			blk_free(b);
		}
		count_ops(w, 1);
	}
	for (int i = 0; i < LARGE_SLOTS; i++)
		if (s[i].p) {
			blk_free(&s[i]);
			count_ops(w, 1);
		}
	atomic_store(&g_count[w->tid].aux, moved);
	atomic_store(&g_count[w->tid].aux2, reallocs);
	return NULL;
}

static void large_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)secs;
	uint64_t moved = sum_aux(n, 1), re = sum_aux(n, 2);
	ex->name = "realloc_moved_pct";
	ex->value = re ? 100.0 * (double)moved / (double)re : 0;
}

const struct workload wl_large = {
	.name = "large",
	.thread_fn = large_thread,
	.setup = NULL,
	.teardown = large_done,
	.desc = "64 KiB - 8 MiB blocks with realloc growth",
};
