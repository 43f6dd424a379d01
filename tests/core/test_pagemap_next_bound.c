/*
 * The slot counter of the reservation (pm_next) moves only when a span is
 * handed out, and never past its bound (HL_MAX_CHUNKS chunks): a failed
 * attempt (its chunk could not be mapped) leaves no trace, so small
 * mallocs work again once memory is back, and a counter at its bound
 * stays there.
 *
 * The counter is seeded at the last chunk; every map fails (fault
 * injection) for many small mallocs that need fresh spans.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include "mem/mem.h"
#include "tap.h"

#define RECS 4   /* slots of records: 16384 records of 16 bytes */
#define TRIES 40000
#define BOUND ((uint64_t)HL_MAX_CHUNKS * HL_SLOTS_PER_CHUNK)

static void *got[TRIES];

static int in_last_chunk(const void *p, char *base)
{
	return (const char *)p >= base && (const char *)p < base + HL_CHUNK_SIZE;
}

int main(void)
{
	plan(6);
	hl_free(hl_malloc(16384));
	uint64_t seed = BOUND - HL_SLOTS_PER_CHUNK + RECS;
	pm_test_set_next(seed);

	os_test_fail_maps(-1);
	int failed = 0;
	for (int i = 0; i < TRIES; i++) {
		got[i] = hl_malloc(16384);
		failed += got[i] == NULL;
	}
	os_test_fail_maps(0);
	ok(failed > TRIES / 2, "with every map failing, small mallocs fail (%d of %d)", failed, TRIES);
	ok(pm_test_next() == seed, "and leave the slot counter where it was (%llu slots on)",
	   (unsigned long long)(pm_test_next() - seed));

	void *p = NULL;
	for (int i = 0; i < TRIES && !p; i++) {
		void *q = hl_malloc(16384);
		if (!q)
			break;
		if (pm_test_next() != seed)
			p = q;   /* a fresh span was needed, and there was one */
		else
			got[failed++ % TRIES] = q;   /* kept: freed at the end */
	}
	ok(p != NULL, "once maps work, small mallocs take fresh spans again");
	char *last = (char *)((uintptr_t)p & ~(uintptr_t)(HL_CHUNK_SIZE - 1));

	/* At the bound: the last slots go, then nothing, and the counter
	 * does not move past it however often it is asked. */
	pm_test_set_next(BOUND - 4);
	bool fresh;
	while (pm_span_get(1, NULL, &fresh))
		;   /* no cached span of order 1 */
	char *b1 = NULL, *b2 = NULL, *b3 = NULL;
	pm_span_get(1, &b1, &fresh);
	pm_span_get(1, &b2, &fresh);
	uint32_t s3 = pm_span_get(1, &b3, &fresh);
	ok(b1 && b2 && in_last_chunk(b1, last) && in_last_chunk(b2, last) && s3 == 0,
	   "the last four slots make two spans of order 1, then there are none");
	for (int i = 0; i < 10000; i++)
		pm_span_get(1, &b3, &fresh);
	ok(pm_test_next() <= BOUND, "10000 more asks leave the counter at its bound (%lld past it)",
	   (long long)(pm_test_next() - BOUND));
	pm_test_set_next(BOUND - 2);
	ok(pm_span_get(1, &b3, &fresh) && in_last_chunk(b3, last),
	   "a counter just under its bound still serves its last span");

	hl_free(p);
	for (int i = 0; i < TRIES; i++)
		hl_free(got[i]);
	return done_testing();
}
