/*
 * Trimming: give back now what decay would give back later.  This is the
 * one place that sweeps every arena: the default one with its heaps'
 * slots, each region's inside that region's teardown handshake (so that a
 * delete or reset never runs under it).
 */
#include "api/api.h"

static size_t trim_sweep_all(void)
{
	size_t n = 0;
	uint32_t na = lf_load_acquire(&sb_narenas);
	for (uint32_t i = 0; i < na && i < HL_MAX_ARENAS; i++) {
		sb_arena_t *a = sb_arena(i);
		if (a)
			n += i == 0 ? sb_sweep_arena(a, true) : region_sweep(a);
	}
	return n;
}

HL_EXPORT void hl_thread_flush(void)
{
	tc_thread_flush();
}

HL_EXPORT int hl_trim(void)
{
	hl_ensure_init();
	tc_thread_flush();
	tc_drain_transfer();
	size_t n = trim_sweep_all();
	region_fire_events();
	size_t b = decay_purge_all();
	b += rb_spare_trim();   /* the move targets kept ready, too */
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = region_at(id);
		if (region_enter(r))
			b += rb_warm_drain(r->bk);
		region_leave(r);
	}
	return n || b;
}
