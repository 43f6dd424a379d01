/*
 * Retired descriptors stay bounded by the hazards live now, not by the
 * threads there ever were: PEAK threads at once each create and retire a
 * superblock (so each takes a hazard record of the descriptor domain)
 * and exit; then NT threads create and retire RETIRES superblocks each.
 * Descriptors retired but not yet freed (the domain's count and the
 * descriptors_retired_pending statistic) must stay below
 * live records x max(LF_HP_MIN_THRESHOLD, 2 x LF_HP_PER_THREAD x live
 * records), where the threshold of the records ever made would allow
 * 2 x 4 x PEAK per thread.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "core/core.h"
#include "tap.h"

#define PEAK 256
#define NT 4
#define RETIRES 3000
#define ROUND 50

_Static_assert(RETIRES % ROUND == 0, "whole rounds");

static unsigned rb_cls;
static pthread_barrier_t peak_held, go;
static uint64_t most_domain[NT], most_stat[NT];
static uint64_t failed_new;

static void retire_one(void)
{
	hl_desc_t *d = sb_test_new(0, rb_cls);
	if (!d) {
		lf_fetch_add_relaxed(&failed_new, 1);
		return;
	}
	sb_test_retire(d);
}

/* Takes a record (the retire does) and holds it until all PEAK do and
 * the main thread has counted them. */
static void *peak_thread(void *arg)
{
	(void)arg;
	retire_one();
	pthread_barrier_wait(&peak_held);
	pthread_barrier_wait(&peak_held);
	return NULL;
}

static uint64_t stat_pending(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return st.descriptors_retired_pending;
}

/* RETIRES in rounds of ROUND; between rounds, with every thread at the
 * barrier, thread 0 reads the statistic (two counters read one after the
 * other are exact only when nothing runs). */
static void *churn_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	retire_one();   /* takes its record before the others start */
	pthread_barrier_wait(&go);
	uint64_t md = 0, ms = 0;
	for (int i = 0; i < RETIRES; i++) {
		retire_one();
		uint64_t d = lf_hp_pending(&desc_hp);
		md = d > md ? d : md;
		if ((i + 1) % ROUND == 0) {
			pthread_barrier_wait(&go);
			if (id == 0) {
				uint64_t s = stat_pending();
				ms = s > ms ? s : ms;
			}
			pthread_barrier_wait(&go);
		}
	}
	most_domain[id] = md;
	most_stat[id] = ms;
	return NULL;
}

static uint64_t per_record(uint64_t live)
{
	uint64_t t = LF_HP_SCAN_FACTOR * LF_HP_PER_THREAD * live;
	return t > LF_HP_MIN_THRESHOLD ? t : LF_HP_MIN_THRESHOLD;
}

int main(void)
{
	plan(4);
	hl_free(hl_malloc(1));
	rb_cls = sc_of(20000);
	lf_hp_rec_t *me = desc_hp_rec();
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);

	pthread_barrier_init(&peak_held, NULL, PEAK + 1);
	static pthread_t pt[PEAK];
	int made = 0;
	for (int i = 0; i < PEAK; i++)
		made += pthread_create(&pt[i], &attr, peak_thread, NULL) == 0;
	if (made != PEAK)
		bail_out("only %d of %d threads started", made, PEAK);
	pthread_barrier_wait(&peak_held);
	uint64_t live_at_peak = lf_hp_active(&desc_hp);
	pthread_barrier_wait(&peak_held);
	for (int i = 0; i < PEAK; i++)
		pthread_join(pt[i], NULL);
	pthread_barrier_destroy(&peak_held);
	lf_hp_scan(me);
	uint64_t records = lf_hp_records(&desc_hp), live = lf_hp_active(&desc_hp);
	ok(live_at_peak >= PEAK + 1 && records >= PEAK + 1 && live == 1,
	   "%d threads held a record at once (%llu live then); once they exit 1 of %llu records is live (%llu)",
	   PEAK, (unsigned long long)live_at_peak, (unsigned long long)records,
	   (unsigned long long)live);

	pthread_barrier_init(&go, NULL, NT);
	pthread_t ct[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&ct[i], &attr, churn_thread, (void *)(uintptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(ct[i], NULL);
	pthread_barrier_destroy(&go);
	pthread_attr_destroy(&attr);
	uint64_t md = 0, ms = 0;
	for (int i = 0; i < NT; i++) {
		md = most_domain[i] > md ? most_domain[i] : md;
		ms = most_stat[i] > ms ? most_stat[i] : ms;
	}
	uint64_t bound = (NT + 1) * per_record(NT + 1);
	diag("with the records ever made counted, a record would scan every %llu retires",
	     (unsigned long long)per_record(records));
	ok(md < bound && failed_new == 0,
	   "%d threads retiring %d superblocks each keep fewer than %llu descriptors pending in the domain (at most %llu)",
	   NT, RETIRES, (unsigned long long)bound, (unsigned long long)md);
	ok(ms < bound,
	   "and so does descriptors_retired_pending, read every %d retires with the threads stopped (at most %llu)",
	   ROUND, (unsigned long long)ms);

	lf_hp_scan(me);
	ok(lf_hp_pending(&desc_hp) == 0 && stat_pending() == 0,
	   "once they exit and one scan adopts what they left, nothing is pending");
	return done_testing();
}
