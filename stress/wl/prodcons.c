/*
 * prodcons (xmalloc shape): producers allocate, consumers free.  Half the
 * threads (rounded up) allocate batches of 64 blocks and push them onto a
 * bounded queue (mutex and condition variables) of one consumer; the other
 * half pop the batches and free them.  One thread alone plays both roles in
 * turn.
 *
 * Verifies: the pattern of every block, freed by another thread than the one
 * that allocated it (with two or more threads).
 * Extra figure: Mblocks_per_sec, millions of blocks freed per second.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "../verify.h"

#define PC_BATCH 64
#define PC_QCAP 16

struct pc_batch { int n; struct blk b[PC_BATCH]; };

struct pc_queue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	int head, count, producers_left;
	struct pc_batch ring[PC_QCAP];
};

static struct { int nprod, ncons; struct pc_queue *q; } pc;

static void pc_setup(int n)
{
	pc.nprod = n == 1 ? 1 : (n + 1) / 2;
	pc.ncons = n == 1 ? 0 : n - pc.nprod;
	int nq = pc.ncons ? pc.ncons : 1;
	pc.q = calloc((size_t)nq, sizeof *pc.q);
	if (!pc.q)
		fail_null("calloc", nq * sizeof *pc.q);
	for (int i = 0; i < nq; i++) {
		pthread_mutex_init(&pc.q[i].mu, NULL);
		pthread_cond_init(&pc.q[i].not_empty, NULL);
		pthread_cond_init(&pc.q[i].not_full, NULL);
	}
	for (int p = 0; p < pc.nprod; p++)
		pc.q[pc.ncons ? p % pc.ncons : 0].producers_left++;
}

static void pc_push(struct pc_queue *q, const struct pc_batch *b)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == PC_QCAP)
		pthread_cond_wait(&q->not_full, &q->mu);
	struct pc_batch *dst = &q->ring[(q->head + q->count) % PC_QCAP];
	dst->n = b->n;
	memcpy(dst->b, b->b, (size_t)b->n * sizeof b->b[0]);
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

/* false when the queue is drained and all its producers are done */
static bool pc_pop(struct pc_queue *q, struct pc_batch *b)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && q->producers_left > 0)
		pthread_cond_wait(&q->not_empty, &q->mu);
	if (q->count == 0) {
		pthread_mutex_unlock(&q->mu);
		return false;
	}
	struct pc_batch *src = &q->ring[q->head];
	b->n = src->n;
	memcpy(b->b, src->b, (size_t)src->n * sizeof src->b[0]);
	q->head = (q->head + 1) % PC_QCAP;
	q->count--;
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->mu);
	return true;
}

static void *prodcons_thread(void *arg)
{
	struct worker *w = arg;
	struct pc_batch *b = malloc(sizeof *b);
	if (!b)
		fail_null("malloc", sizeof *b);
	start_barrier();
	if (w->nthreads == 1) {			/* alternate both roles */
		while (keep_going(w)) {
			b->n = 0;
			while (b->n < PC_BATCH && keep_going(w)) {
				blk_new(&b->b[b->n++], rng_size(&w->rng), false);
				count_ops(w, 1);
			}
			for (int i = 0; i < b->n; i++)
				blk_free(&b->b[i]);
			count_ops(w, (uint64_t)b->n);
			count_aux(w, (uint64_t)b->n);
		}
	} else if (w->tid < pc.nprod) {		/* producer */
		struct pc_queue *q = &pc.q[w->tid % pc.ncons];
		while (keep_going(w)) {
			b->n = 0;
			while (b->n < PC_BATCH && keep_going(w)) {
				blk_new(&b->b[b->n++], rng_size(&w->rng), false);
				count_ops(w, 1);
			}
			if (b->n)
				pc_push(q, b);
		}
		pthread_mutex_lock(&q->mu);
		q->producers_left--;
		pthread_cond_broadcast(&q->not_empty);
		pthread_mutex_unlock(&q->mu);
	} else {				/* consumer */
		struct pc_queue *q = &pc.q[w->tid - pc.nprod];
		while (pc_pop(q, b)) {
			for (int i = 0; i < b->n; i++)
				blk_free(&b->b[i]);
			count_ops(w, (uint64_t)b->n);
			count_aux(w, (uint64_t)b->n);
		}
	}
	free(b);
	return NULL;
}

static void prodcons_done(int n, double secs, struct wl_result_extra *ex)
{
	int nq = pc.ncons ? pc.ncons : 1;
	for (int i = 0; i < nq; i++) {
		pthread_mutex_destroy(&pc.q[i].mu);
		pthread_cond_destroy(&pc.q[i].not_empty);
		pthread_cond_destroy(&pc.q[i].not_full);
	}
	free(pc.q);
	pc.q = NULL;
	ex->name = "Mblocks_per_sec";
	ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs / 1e6 : 0;
}

const struct workload wl_prodcons = {
	.name = "prodcons",
	.thread_fn = prodcons_thread,
	.setup = pc_setup,
	.teardown = prodcons_done,
	.desc = "xmalloc shape: half the threads allocate, the other half free",
};
