/*
 * The retire bound: a record scans once it holds max(LF_HP_MIN_THRESHOLD,
 * LF_HP_SCAN_FACTOR x LF_HP_PER_THREAD x live records) nodes, live meaning
 * acquired now, not ever mapped.  After a peak of PEAK records, the few
 * live ones keep as few nodes pending as if the peak had never been, the
 * hazards they publish are still honoured, and every node is freed once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* pthread barriers under -std=c11 */
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hp.h"
#include "tap.h"

#define PEAK 2048        /* records live at once, then released */
#define ALONE 20000      /* nodes one live record retires after the peak */
#define NT 4             /* threads retiring at once after the peak */
#define EACH 4000        /* nodes each of them retires */

typedef struct tnode {
	lf_hp_node_t hn;    /* first: a hazard on the node covers its link */
	uint32_t frees;     /* times free_fn ran on it */
} lf_cacheline_aligned tnode_t;   /* a hazard reaches 64 bytes: no neighbours */

_Static_assert(sizeof(tnode_t) == LF_HP_NODE_REACH, "one node per hazard reach");

static lf_hp_domain_t dom;
static tnode_t alone[ALONE], prot, shared[NT][EACH];

static void count_free(void *ctx, lf_hp_node_t *hn)
{
	(void)ctx;
	tnode_t *n = (tnode_t *)(void *)((char *)hn - offsetof(tnode_t, hn));
	lf_fetch_add_relaxed(&n->frees, 1);
}

/* The most one record may hold with `live` records acquired. */
static uint64_t bound_per_record(uint64_t live)
{
	uint64_t t = LF_HP_SCAN_FACTOR * LF_HP_PER_THREAD * live;
	return t > LF_HP_MIN_THRESHOLD ? t : LF_HP_MIN_THRESHOLD;
}

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

static pthread_barrier_t start;
static uint64_t thread_max[NT];

static void *retirer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	lf_hp_rec_t *r = lf_hp_acquire(&dom);
	pthread_barrier_wait(&start);
	uint64_t most = 0;
	for (int i = 0; i < EACH; i++) {
		lf_hp_retire(r, &shared[id][i].hn);
		most = max_u64(most, lf_hp_pending(&dom));
	}
	thread_max[id] = most;
	pthread_barrier_wait(&start);   /* all retired before any releases */
	lf_hp_release(r);
	return NULL;
}

int main(void)
{
	plan(6);
	lf_hp_domain_init(&dom, count_free, NULL);

	/* The peak: PEAK records acquired at once (none is idle, so each is
	 * a new one), then all but one released. */
	static lf_hp_rec_t *recs[PEAK];
	for (int i = 0; i < PEAK; i++)
		recs[i] = lf_hp_acquire(&dom);
	int got = 1;
	for (int i = 0; i < PEAK; i++)
		got &= recs[i] != NULL;
	uint64_t active_peak = lf_hp_active(&dom);
	for (int i = 1; i < PEAK; i++)
		lf_hp_release(recs[i]);
	lf_hp_rec_t *me = recs[0];
	ok(got && lf_hp_records(&dom) == PEAK && active_peak == PEAK &&
	   lf_hp_active(&dom) == 1,
	   "%d records acquired at once count %llu live; after releasing all but one, 1 live (%llu) of %llu mapped",
	   PEAK, (unsigned long long)active_peak, (unsigned long long)lf_hp_active(&dom),
	   (unsigned long long)lf_hp_records(&dom));

	/* One live record retires many nodes: it scans every
	 * bound_per_record(1) of them, not every 2 x 4 x PEAK. */
	lf_hp_set(me, 0, &prot);
	lf_hp_retire(me, &prot.hn);
	uint64_t most = 0;
	for (int i = 0; i < ALONE; i++) {
		lf_hp_retire(me, &alone[i].hn);
		most = max_u64(most, lf_hp_pending(&dom));
	}
	ok(most < bound_per_record(1),
	   "one live record after a peak of %d retires %d nodes and never holds %llu or more (held at most %llu; the peak would allow %llu)",
	   PEAK, ALONE, (unsigned long long)bound_per_record(1), (unsigned long long)most,
	   (unsigned long long)bound_per_record(PEAK) - 1);
	ok(prot.frees == 0,
	   "the node under the live record's hazard survives every one of those scans");
	lf_hp_clear(me, 0);
	lf_hp_scan(me);

	/* NT threads and this one live, retiring at once: the domain holds
	 * at most (NT + 1) records' worth. */
	pthread_barrier_init(&start, NULL, NT);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, retirer, (void *)(uintptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	uint64_t all_max = 0;
	for (int i = 0; i < NT; i++)
		all_max = max_u64(all_max, thread_max[i]);
	uint64_t bound = (NT + 1) * bound_per_record(NT + 1);
	ok(all_max < bound,
	   "%d live threads retiring %d nodes each keep fewer than %llu pending in all (at most %llu seen)",
	   NT, EACH, (unsigned long long)bound, (unsigned long long)all_max);

	/* Their records went to the orphan list on release; one scan here
	 * adopts and frees them. */
	lf_hp_scan(me);
	uint64_t wrong = prot.frees != 1;
	for (int i = 0; i < ALONE; i++)
		wrong += alone[i].frees != 1;
	for (int i = 0; i < NT; i++)
		for (int j = 0; j < EACH; j++)
			wrong += shared[i][j].frees != 1;
	ok(wrong == 0 && lf_hp_pending(&dom) == 0,
	   "after the threads release and one scan, every node was freed exactly once (%llu not once, %llu pending)",
	   (unsigned long long)wrong, (unsigned long long)lf_hp_pending(&dom));
	lf_hp_release(me);
	ok(lf_hp_active(&dom) == 0 && lf_hp_records(&dom) == PEAK,
	   "once every record is released none is live, and no record was mapped past the peak (%llu)",
	   (unsigned long long)lf_hp_records(&dom));
	return done_testing();
}
