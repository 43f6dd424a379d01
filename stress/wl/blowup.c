/*
 * blowup: fill with class A, free 90%, fill the hole with class B.  Each
 * thread allocates 8 MiB of blocks of one size (64 B, or 384 B in the next
 * round), frees a random 90% of them, allocates as many bytes of the other
 * size as it freed, then frees everything.  An allocator that cannot give
 * the memory of one size class to another grows: the table prints peak RSS
 * over peak live bytes.
 *
 * Verifies: every block's pattern when it is freed.
 * Extra figure: peak_live_mib, the peak of live bytes over all threads.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "../util.h"
#include "../verify.h"

#define BLOW_BUDGET (8u << 20)		/* live bytes per thread at the A peak */
#define BLOW_SA 64
#define BLOW_SB 384

const size_t blowup_array_bytes = BLOW_BUDGET / BLOW_SA * sizeof(void *);

static _Atomic int64_t g_live, g_peak_live;

static void live_flush(int64_t *pending)
{
	int64_t v = atomic_fetch_add(&g_live, *pending) + *pending;
	*pending = 0;
	int64_t pk = atomic_load(&g_peak_live);
	while (v > pk && !atomic_compare_exchange_weak(&g_peak_live, &pk, v))
		;
}

static void blowup_setup(int n)
{
	(void)n;
	atomic_store(&g_live, 0);
	atomic_store(&g_peak_live, 0);
}

static void *blowup_thread(void *arg)
{
	struct worker *w = arg;
	size_t cap = BLOW_BUDGET / BLOW_SA;
	unsigned char **a = calloc(cap, sizeof *a);
	if (!a)
		fail_null("calloc", cap * sizeof *a);
	int64_t pending = 0;
	start_barrier();
	for (unsigned round = 0; keep_going(w); round++) {
		size_t sa = round & 1 ? BLOW_SB : BLOW_SA;
		size_t sb = round & 1 ? BLOW_SA : BLOW_SB;
		size_t na = 0, nsurv = 0, nb = 0;
		struct blk b;
		/* phase 1: class A up to the budget */
		while (na < BLOW_BUDGET / sa && keep_going(w)) {
			blk_new(&b, sa, false);
			a[na++] = b.p;
			pending += (int64_t)sa;
			count_ops(w, 1);
			if ((na & 255) == 0)
				live_flush(&pending);
		}
		live_flush(&pending);
		/* phase 2: free 90% at random, compact the survivors */
		size_t freed_bytes = 0;
		for (size_t i = 0; i < na; i++) {
			if (rng_below(&w->rng, 10) == 0) {
				a[nsurv++] = a[i];
			} else {
				check_before_free(a[i], sa);
				free(a[i]);
				freed_bytes += sa;
				pending -= (int64_t)sa;
				count_ops(w, 1);
			}
		}
		live_flush(&pending);
		/* phase 3: class B into the hole */
		size_t want = freed_bytes / sb;
		while (nb < want && keep_going(w)) {
			blk_new(&b, sb, false);
			a[nsurv + nb++] = b.p;
			pending += (int64_t)sb;
			count_ops(w, 1);
			if ((nb & 255) == 0)
				live_flush(&pending);
		}
		live_flush(&pending);
		/* phase 4: free everything */
		for (size_t i = 0; i < nsurv + nb; i++) {
			size_t s = i < nsurv ? sa : sb;
			check_before_free(a[i], s);
			free(a[i]);
			pending -= (int64_t)s;
		}
		count_ops(w, nsurv + nb);
		live_flush(&pending);
		if (nb == want)
			count_aux(w, 1);
	}
	free(a);
	return NULL;
}

static void blowup_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)n; (void)secs;
	ex->name = "peak_live_mib";
	ex->value = (double)atomic_load(&g_peak_live) / (1 << 20);
}

const struct workload wl_blowup = {
	.name = "blowup",
	.thread_fn = blowup_thread,
	.setup = blowup_setup,
	.teardown = blowup_done,
	.desc = "8 MiB/thread of class A, free 90%, refill with class B: peak RSS vs live",
};
