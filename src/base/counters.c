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
