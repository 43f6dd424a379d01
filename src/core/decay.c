/*
 * Decay: when to give back what is cached.  Empty spans (mem/pagemap.c)
 * and cached large mappings (mem/large.c) stay warm for HEAPLIB_DECAY_MS
 * after they were last used, because a page fault costs more here than
 * keeping a page (DESIGN.md section 3); what and how to purge is theirs,
 * when is this file's.  Regions' empty superblocks go back on the same
 * clock, through a hook policy/region.c registers at start (their sweep
 * runs inside each region's teardown handshake).
 *
 * Concurrency: decay_tick may run in any number of threads; one of them
 * wins the CAS on the next purge time and purges, the others go on.
 */
#include "core/core.h"

static uint32_t decay_next_ms;
static void (*decay_sweep_hook)(uint32_t now);

void decay_set_sweep_hook(void (*fn)(uint32_t now))
{
	decay_sweep_hook = fn;
}

void decay_tick(void)
{
	uint32_t now = os_now_ms();
	uint32_t next = lf_load_relaxed(&decay_next_ms);
	if ((int32_t)(now - next) < 0)
		return;
	uint32_t step = hl_config.decay_ms / 4 ? hl_config.decay_ms / 4 : 1;
	if (!lf_cas_strong_acq_rel(&decay_next_ms, &next, now + step))
		return;
	pm_purge(false);
	sb_decay(false);
	large_trim(false);
	if (decay_sweep_hook)
		decay_sweep_hook(now);
}

size_t decay_purge_all(void)
{
	size_t b = pm_purge(true) + sb_decay(true);
	return b + large_trim(true);
}
