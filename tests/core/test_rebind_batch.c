/*
 * Batched backing moves (mem/bkmove.c bk_spans_move; policy/mig's
 * evacuation uses them):
 *  1. four adjacent anonymous spans move into a memfd at once: each has
 *     its own run of consecutive offsets, its bytes, and its mapping
 *     budget counted;
 *  2. a writer storing into every span of the batch while it moves in
 *     (and the spans move out one by one) loses no store;
 *  3. what is not a batch is refused with HL_EINVAL and changes nothing:
 *     three spans, more than 512 KiB, a span that is a memfd's already;
 *  4. the spans go back one by one when their superblocks retire: the
 *     memfd's pages punched, the budget back where it was;
 *  5. hl_region_delete of an anonymous region into a memfd region moves
 *     its superblocks (in batches) with their bytes.
 * Skipped without userfaultfd.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy.h"
#include "tap.h"
#include "span.h"

#define NB 4

static char *run;          /* NB adjacent spans */
static size_t span;
static atomic_int stop;
static uint64_t lost;

/* Stores a counter into a word of every span, and checks the one before
 * is still there. */
static void *writer(void *arg)
{
	(void)arg;
	uint64_t k = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int i = 0; i < NB; i++) {
			volatile uint64_t *w = (volatile uint64_t *)(run + i * span + 4096 * (k % 16));
			volatile uint64_t *prev = (volatile uint64_t *)(run + i * span + 4096 * ((k + 15) % 16));
			if (k && *prev != k - 1)
				lost++;
			*w = k;
		}
		k++;
	}
	return NULL;
}

/* Whether the /proc/self/maps line of p names memfd `name`. */
static int mapped_from(const void *p, const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int has = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			has = strstr(line, name) != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return has;
}

int main(void)
{
	plan(9);
	const char *why = NULL;
	if (rb_probe(&why) != HL_OK) {
		skip(9, "%s", why);
		return done_testing();
	}
	hl_region_t *a = region("batch_anon", HL_BACKING_ANON, 16u << 20);
	hl_region_t *m = region("batch_memfd", HL_BACKING_MEMFD, 16u << 20);
	bk_t *bk = m->bk;
	/* NB adjacent 64 KiB spans of a's. */
	static char *blk[4096];
	int nblk = 0, count = 0;
	char *prev = NULL;
	unsigned order = 0;
	while (nblk < 4096 && count < NB) {
		char *p = blk[nblk++] = in(a, 1000);
		if (!p)
			bail_out("blocks");
		char *b = sb_of(p, &order);
		if (b == prev)
			continue;
		span = HL_SLOT_SIZE << order;
		count = prev && b == prev + span ? count + 1 : 1;
		if (count == 1)
			run = b;
		prev = b;
	}
	for (int i = 0; i < NB; i++)
		memset(run + i * span, 0x11 * (i + 1), span);

	/* 3 first: refusals change nothing. */
	uint64_t maps0 = lf_load_relaxed(&hl_ctr.own_maps);
	int e3 = bk_spans_move(run, order, 3, bk, &why);
	int e9 = bk_spans_move(run, order, 16, bk, &why);
	int ok3 = e3 == HL_EINVAL && e9 == HL_EINVAL && pm_back_get(run) == 0 &&
		  lf_load_relaxed(&hl_ctr.own_maps) == maps0;
	bk_span_move(run + span, order, bk, &why);   /* one of them a memfd's */
	uint64_t off1 = 0;
	bk_span_backing(run + span, &off1);
	int em = bk_spans_move(run, order, 2, bk, &why);
	ok(ok3 && em == HL_EINVAL && pm_back_get(run) == 0 && bk_span_backing(run + span, &off1) == bk,
	   "3: no batch of 3 spans (%s), of over 512 KiB (%s), or over a memfd span (%s): nothing "
	   "changed", hl_strerror(e3), hl_strerror(e9), hl_strerror(em));
	bk_span_move(run + span, order, bk_at(0), &why);

	/* 1 */
	maps0 = lf_load_relaxed(&hl_ctr.own_maps);
	int fresh = 0;   /* spans with no mapping of their own yet (2 each) */
	for (int i = 0; i < NB; i++)
		fresh += pm_back_get(run + i * span) == 0;
	int e1 = bk_spans_move(run, order, NB, bk, &why);
	uint64_t off[NB];
	int each = 1;
	for (int i = 0; i < NB; i++) {
		each &= bk_span_backing(run + i * span, &off[i]) == bk &&
			mapped_from(run + i * span, "memfd:batch_memfd");
		each &= !i || off[i] == off[0] + i * span;
	}
	ok(e1 == HL_OK && each, "1: %d adjacent spans moved into the memfd at once (%s), mapped from it on "
	   "consecutive offsets from %llu", NB, hl_strerror(e1), (unsigned long long)off[0]);
	int bytes = 1;
	for (int i = 0; i < NB; i++)
		bytes &= all(run + i * span, span, (unsigned char)(0x11 * (i + 1)));
	ok(bytes, "1: every span kept its bytes");
	ok(fresh > 0 && lf_load_relaxed(&hl_ctr.own_maps) == maps0 + 2 * (uint64_t)fresh,
	   "1: each span not counted yet counts 2 mappings against the budget (%d of them: %llu -> "
	   "%llu)", fresh, (unsigned long long)maps0,
	   (unsigned long long)lf_load_relaxed(&hl_ctr.own_maps));

	/* 2: under a writer, in as a batch and out one by one. */
	for (int i = 0; i < NB; i++)
		bk_span_move(run + i * span, order, bk_at(0), &why);
	pthread_t th;
	pthread_create(&th, NULL, writer, NULL);
	int rounds = 300 * (int)tap_scale(), done = 0;
	for (int r = 0; r < rounds; r++) {
		int e = bk_spans_move(run, order, NB, bk, &why);
		if (e == HL_OK)
			done++;
		else
			diag("batch %d: %s (%s)", r, hl_strerror(e), why);
		for (int i = 0; i < NB; i++)
			bk_span_move(run + i * span, order, bk_at(0), &why);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ok(done == rounds && lost == 0, "2: %d of %d batches moved under a writer, %llu stores lost",
	   done, rounds, (unsigned long long)lost);

	/* 4 */
	bk_spans_move(run, order, NB, bk, &why);
	maps0 = lf_load_relaxed(&hl_ctr.own_maps);
	for (int i = 0; i < nblk; i++)
		hl_free(blk[i]);
	hl_thread_flush();
	int er = hl_region_reset(a);
	hl_trim();   /* warm units too */
	struct stat st;
	fstat(bk->fd, &st);
	ok(er == HL_OK && st.st_blocks == 0 && pm_back_get(run) == 0,
	   "4: the spans go back one by one as their superblocks retire (reset %s, memfd %lld blocks)",
	   hl_strerror(er), (long long)st.st_blocks);
	ok(lf_load_relaxed(&hl_ctr.own_maps) == maps0 - 2 * NB,
	   "4: and their mappings leave the budget (%llu -> %llu)", (unsigned long long)maps0,
	   (unsigned long long)lf_load_relaxed(&hl_ctr.own_maps));

	/* 5 */
	hl_migrate_stats_t s0 = { .struct_size = sizeof s0 }, s1 = { .struct_size = sizeof s1 };
	hl_migrate_stats(&s0);
	static char *v[2048];
	for (int i = 0; i < 2048; i++) {
		v[i] = in(a, 4000);
		if (!v[i])
			bail_out("blocks");
		memset(v[i], (unsigned char)i, 4000);
	}
	int ed = hl_region_delete(a);
	hl_migrate_stats(&s1);
	int kept = 1;
	for (int i = 0; i < 2048; i++)
		kept &= all(v[i], 4000, (unsigned char)i) && hl_region_of(v[i]) == m;
	ok(ed == HL_OK && s1.moves[4] > s0.moves[4], "5: an anonymous region is evacuated into the "
	   "memfd region (%s, %llu backing moves)", hl_strerror(ed),
	   (unsigned long long)(s1.moves[4] - s0.moves[4]));
	ok(kept, "5: every block kept its bytes and now belongs to the memfd region");
	for (int i = 0; i < 2048; i++)
		hl_free(v[i]);
	return done_testing();
}
