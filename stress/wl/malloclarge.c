/*
 * malloclarge (malloc-large shape): blocks of 5-25 MiB, at most 20 live,
 * each replaced at random and filled by the program.  The process has 20
 * slots (one per thread when there are more than 20 threads), thread t the
 * slots t, t + n, t + 2n ...; each step picks one of its slots at random,
 * frees the block there, if any, and puts a new one of a uniformly random
 * size (5 MiB to 25 MiB, to the byte) in its place, which it memsets whole
 * before writing its pattern.  So every page of every block is touched, as
 * a program that fills its buffers does: an allocator that gives the freed
 * pages back to the system at once pays for faulting them in again.
 *
 * Verifies: every block's pattern before it is freed (for blocks this big,
 * the first and last words and one word in every 4 KiB page, over the fill).
 * Extra figure: faults_per_alloc, the process's minor page faults during the
 * run (getrusage) per block allocated; a 15 MiB block has 3840 pages.
 *
 * Unlike the single-threaded program, the blocks come from a worker thread
 * even at --threads 1, so glibc serves them from a thread arena (heaps of
 * at most 64 MiB, unmapped as they empty) and not from the main thread's
 * brk heap: its munmap count here is some ten times the program's.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../util.h"
#include "../verify.h"

#define ML_MIN (5u << 20)
#define ML_MAX (25u << 20)
#define ML_LIVE 20			/* slots of the process */

static struct {
	int nslots;
	struct blk *slot;		/* slot i is thread i % nthreads's */
	long minflt0;			/* at setup */
} ml;

static long ml_minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static void ml_setup(int n)
{
	ml.nslots = n > ML_LIVE ? n : ML_LIVE;
	ml.slot = calloc((size_t)ml.nslots, sizeof *ml.slot);
	if (!ml.slot)
		fail_null("calloc", (size_t)ml.nslots * sizeof *ml.slot);
	ml.minflt0 = ml_minflt();
}

static void *ml_thread(void *arg)
{
	struct worker *w = arg;
	int mine = (ml.nslots - w->tid + w->nthreads - 1) / w->nthreads;
	uint64_t allocs = 0;
	start_barrier();
	while (keep_going(w)) {
		int k = (int)rng_below(&w->rng, (uint64_t)mine);
		struct blk *b = &ml.slot[w->tid + k * w->nthreads];
		if (b->p) {
			blk_free(b);
			count_ops(w, 1);
		}
		size_t size = ML_MIN + (size_t)rng_below(&w->rng, ML_MAX - ML_MIN + 1);
		unsigned char *p = malloc(size);
		if (!p)
			fail_null("malloc", size);
		memset(p, 1 + (int)rng_below(&w->rng, 255), size);	/* the program's fill */
		fill_block(p, size);				/* the pattern, over it */
		b->p = p;
		b->size = (uint32_t)size;
		b->owner = t_tid;
		allocs++;
		count_ops(w, 1);
	}
	for (int i = w->tid; i < ml.nslots; i += w->nthreads)
		if (ml.slot[i].p) {
			blk_free(&ml.slot[i]);
			count_ops(w, 1);
		}
	atomic_store(&g_count[w->tid].aux, allocs);
	return NULL;
}

static void ml_done(int n, double secs, struct wl_result_extra *ex)
{
	(void)secs;
	long faults = ml_minflt() - ml.minflt0;
	uint64_t allocs = sum_aux(n, 1);
	free(ml.slot);
	ml.slot = NULL;
	ex->name = "faults_per_alloc";
	ex->value = allocs ? (double)faults / (double)allocs : 0;
}

const struct workload wl_malloclarge = {
	.name = "malloclarge",
	.thread_fn = ml_thread,
	.setup = ml_setup,
	.teardown = ml_done,
	.desc = "malloc-large shape: 5-25 MiB blocks, at most 20 live, replaced, memset whole",
};
