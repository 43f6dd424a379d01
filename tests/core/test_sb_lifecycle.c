/*
 * Superblock lifecycles across threads: threads take every block of
 * superblocks through the real refill path (heap slots, partial lists,
 * new superblocks), free them through the real overflow path, half of
 * them from another thread, and sweep, so that fully free superblocks are
 * retired and their descriptors recycled through the hazard domain.  At
 * the end every count must balance: no descriptor lost, leaked or listed
 * twice (test builds abort on a second listing).
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>

#include "core/core.h"
#include "tap.h"

#define NT 4
#define HAND 256

static unsigned lc_cls;
static uint64_t lc_target;
static void *hand[NT][HAND];
static unsigned hand_n[NT];
static pthread_mutex_t hand_mu[NT];
static uint64_t lc_corrupt;

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, h = id % sb_heap_count();
	const sc_info_t *ci = &sc_table[lc_cls];
	void *blk[4 * 8 * HL_MAX_BATCH];
	unsigned want = 4 * ci->maxcount;
	uint64_t rounds = 0;
	while (lf_load_relaxed(&hl_ctr.sb_retired) < lc_target) {
		unsigned n = 0;
		while (n < want) {
			unsigned got = sb_alloc_batch(sb_arena(0), h, lc_cls, blk + n, want - n);
			if (!got)
				break;
			n += got;
		}
		for (unsigned i = 0; i < n; i++) {
			uint64_t *w = blk[i];
			w[2] = (uintptr_t)w ^ id;   /* we own it: write it */
		}
		for (unsigned i = 0; i < n; i++)
			if (((uint64_t *)blk[i])[2] != ((uintptr_t)blk[i] ^ id))
				lf_fetch_add_relaxed(&lc_corrupt, 1);
		/* Half go to the next thread to free (remote frees). */
		unsigned half = n / 2, peer = (id + 1) % NT;
		pthread_mutex_lock(&hand_mu[peer]);
		unsigned room = HAND - hand_n[peer];
		unsigned give = half < room ? half : room;
		for (unsigned i = 0; i < give; i++)
			hand[peer][hand_n[peer]++] = blk[i];
		pthread_mutex_unlock(&hand_mu[peer]);
		for (unsigned i = give; i < n; i += ci->batch) {
			unsigned k = n - i < ci->batch ? n - i : ci->batch;
			sb_free_batch(lc_cls, blk + i, k, "free");
		}
		void *mine[HAND];
		pthread_mutex_lock(&hand_mu[id]);
		unsigned m = hand_n[id];
		for (unsigned i = 0; i < m; i++)
			mine[i] = hand[id][i];
		hand_n[id] = 0;
		pthread_mutex_unlock(&hand_mu[id]);
		for (unsigned i = 0; i < m; i += ci->batch) {
			unsigned k = m - i < ci->batch ? m - i : ci->batch;
			sb_free_batch(lc_cls, mine + i, k, "free");
		}
		if (++rounds % 2 == 0)
			sb_sweep(sb_arena(0));
	}
	return NULL;
}

static uint64_t count_free_desc_bits(void);

int main(void)
{
	plan(6);
	hl_free(hl_malloc(1));
	lc_cls = sc_of(8192);
	double scale = tap_scale();
	lc_target = (uint64_t)(1000000 * scale);
	if (lc_target < 1000)
		lc_target = 1000;
	for (int i = 0; i < NT; i++)
		pthread_mutex_init(&hand_mu[i], NULL);

	hl_stats_t s0 = { .struct_size = sizeof s0 };
	hl_stats_get(&s0);
	uint64_t r0 = s0.superblocks_retired;
	uint64_t live_cls0 = lf_load_relaxed(&hl_ctr.sb_live_cls[lc_cls]);
	lc_target += r0;

	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	/* Blocks still handed over: free them. */
	for (int i = 0; i < NT; i++)
		for (unsigned j = 0; j < hand_n[i]; j++)
			sb_free_batch(lc_cls, &hand[i][j], 1, "free");
	sb_sweep_arena(sb_arena(0), true);
	lf_hp_scan(desc_hp_rec());

	hl_stats_t s1 = { .struct_size = sizeof s1 };
	hl_stats_get(&s1);
	uint64_t cycles = s1.superblocks_retired - r0;
	ok(cycles >= (uint64_t)(1000000 * scale) || cycles >= 1000,
	   "%llu superblock lifecycles completed across %d threads",
	   (unsigned long long)cycles, NT);
	ok(lc_corrupt == 0, "no block was handed to two owners (%llu overlaps)",
	   (unsigned long long)lc_corrupt);
	/* Only the test's class: pthread_create and stdio allocate in others. */
	uint64_t live_cls = lf_load_relaxed(&hl_ctr.sb_live_cls[lc_cls]);
	ok(live_cls == live_cls0,
	   "every superblock of the test's class was retired (live %llu, before %llu)",
	   (unsigned long long)live_cls, (unsigned long long)live_cls0);
	ok(s1.descriptors_retired_pending == 0, "no retired descriptor waits on a hazard (%llu)",
	   (unsigned long long)s1.descriptors_retired_pending);
	ok(s1.descriptors_live == s1.superblocks_live,
	   "descriptors allocated equal superblocks live (%llu vs %llu): none lost or leaked",
	   (unsigned long long)s1.descriptors_live, (unsigned long long)s1.superblocks_live);
	uint64_t free_bits = count_free_desc_bits();
	uint64_t slots = s1.descriptor_pages_mapped * HL_DESC_PER_PAGE - 1;
	ok(free_bits + s1.descriptors_live == slots,
	   "page masks agree: %llu free + %llu live == %llu descriptor slots mapped",
	   (unsigned long long)free_bits, (unsigned long long)s1.descriptors_live,
	   (unsigned long long)slots);
	return done_testing();
}

uint64_t desc_test_free_bits(void);
static uint64_t count_free_desc_bits(void) { return desc_test_free_bits(); }
