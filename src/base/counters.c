/*
 * Statistics counters (relaxed: a snapshot taken while others run is
 * approximate, exact when nothing is in flight) and bounded counters.
 */
#include "base/base.h"

hl_counters_t hl_ctr;

bool ctr_add_bounded(uint64_t *ctr, uint64_t n, uint64_t limit)
{
	uint64_t cur = lf_load_relaxed(ctr);
	do {
		if (cur + n > limit || cur + n < cur)
			return false;
	} while (!lf_cas_weak_acq_rel(ctr, &cur, cur + n));
	return true;
}

/* A failed take leaves no trace: the count never passes limit and so
 * never wraps, however many takes fail (a fetch-add and check would). */
int64_t ctr_take_bounded(uint32_t *ctr, uint32_t limit)
{
	uint32_t cur = lf_load_relaxed(ctr);
	do {
		if (cur >= limit)
			return -1;
	} while (!lf_cas_weak_acq_rel(ctr, &cur, cur + 1));
	return cur;
}
