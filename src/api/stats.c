/*
 * Statistics: the relaxed counters kept by the modules (base/counters.c),
 * read without stopping anyone (so a snapshot taken while others run is
 * approximate; when nothing is in flight it is exact).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"

HL_EXPORT int hl_stats_get(hl_stats_t *out)
{
	if (!hl_struct_out_ok(out)) {
		errno = EINVAL;
		return -1;
	}
	hl_ensure_init();
	hl_stats_t s = { .struct_size = sizeof s }, *st = &s;
#define R(f) lf_load_relaxed(&hl_ctr.f)
	st->bytes_reserved = R(reserved);
	st->bytes_mapped = R(span_slots_used) * HL_SLOT_SIZE;
	st->bytes_purged = R(bytes_purged);
	st->superblocks_created = R(sb_created);
	st->superblocks_retired = R(sb_retired);
	st->superblocks_live = st->superblocks_created - st->superblocks_retired;
	st->superblocks_cached = R(spans_cached);
	st->descriptors_live = R(desc_live);
	st->descriptors_retired_pending = R(desc_retired) - R(desc_freed);
	st->descriptor_pages_mapped = R(desc_pages_mapped);
	st->descriptor_pages_released = R(desc_pages_released);
	st->large_live = R(large_live);
	st->large_bytes = R(large_bytes);
	st->tcache_bytes = R(tcache_bytes);
	st->transfer_bytes = R(transfer_bytes);
	st->threads_live = R(threads_live);
	st->heaps = sb_heap_count();
	st->large_cached = R(large_cached);
#undef R
	hl_struct_out(out, st, sizeof s);
	return 0;
}

static void stats_print_task(struct hl_task *t, void *ctx)
{
	FILE *out = ctx;
	hl_task_stats_t ts = { .struct_size = sizeof ts };
	if (hl_task_stats(t, NULL, &ts) != HL_OK)
		return;
	fprintf(out,
		"task_%u_threads %llu\ntask_%u_quota %llu\ntask_%u_bytes_backed %llu\n"
		"task_%u_bytes_live %llu\ntask_%u_blocks_live %llu\n",
		t->id, (unsigned long long)ts.threads, t->id, (unsigned long long)ts.quota,
		t->id, (unsigned long long)ts.bytes_backed, t->id, (unsigned long long)ts.bytes_live,
		t->id, (unsigned long long)ts.blocks_live);
}

HL_EXPORT void hl_stats_print(FILE *out)
{
	hl_stats_t s = { .struct_size = sizeof s };
	if (hl_stats_get(&s))
		return;
	if (!out)
		out = stderr;
	fprintf(out,
		"bytes_reserved %llu\nbytes_mapped %llu\nbytes_purged %llu\n"
		"superblocks_live %llu\nsuperblocks_created %llu\n"
		"superblocks_retired %llu\nsuperblocks_cached %llu\n"
		"descriptors_live %llu\ndescriptors_retired_pending %llu\n"
		"descriptor_pages_mapped %llu\ndescriptor_pages_released %llu\n"
		"large_live %llu\nlarge_bytes %llu\ntcache_bytes %llu\n"
		"transfer_bytes %llu\nthreads_live %llu\nheaps %llu\nlarge_cached %llu\n",
		(unsigned long long)s.bytes_reserved, (unsigned long long)s.bytes_mapped,
		(unsigned long long)s.bytes_purged, (unsigned long long)s.superblocks_live,
		(unsigned long long)s.superblocks_created,
		(unsigned long long)s.superblocks_retired,
		(unsigned long long)s.superblocks_cached,
		(unsigned long long)s.descriptors_live,
		(unsigned long long)s.descriptors_retired_pending,
		(unsigned long long)s.descriptor_pages_mapped,
		(unsigned long long)s.descriptor_pages_released,
		(unsigned long long)s.large_live, (unsigned long long)s.large_bytes,
		(unsigned long long)s.tcache_bytes, (unsigned long long)s.transfer_bytes,
		(unsigned long long)s.threads_live, (unsigned long long)s.heaps,
		(unsigned long long)s.large_cached);
	/* Every line "name value": the options in force (option_KEY), then
	 * each live region (region_ID_...) and task (task_ID_...); their
	 * names are hl_region_name's and the task attributes'. */
	char opts[512];
	config_print(opts);
	for (char *tok = strtok(opts, " \n"); tok; tok = strtok(NULL, " \n")) {
		char *colon = strchr(tok, ':');
		if (colon) {
			*colon = 0;
			fprintf(out, "option_%s %s\n", tok, colon + 1);
		}
	}
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		hl_region_stats_t rs = { .struct_size = sizeof rs };
		if (hl_region_stats(region_at(id), &rs) != HL_OK)
			continue;
		fprintf(out,
			"region_%u_capacity %llu\nregion_%u_bytes_backed %llu\n"
			"region_%u_bytes_live %llu\nregion_%u_blocks_live %llu\n"
			"region_%u_superblocks %llu\nregion_%u_allocs %llu\nregion_%u_frees %llu\n"
			"region_%u_events_low %llu\nregion_%u_events_high %llu\n",
			id, (unsigned long long)rs.capacity, id, (unsigned long long)rs.bytes_backed,
			id, (unsigned long long)rs.bytes_live, id, (unsigned long long)rs.blocks_live,
			id, (unsigned long long)rs.superblocks, id, (unsigned long long)rs.allocs,
			id, (unsigned long long)rs.frees, id, (unsigned long long)rs.events_low,
			id, (unsigned long long)rs.events_high);
	}
	task_each(stats_print_task, out);
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	hl_migrate_stats(&ms);
	fprintf(out, "migrate_running %d\nmigrate_requests %llu\nmigrate_waits_timed_out %llu\n",
		ms.running, (unsigned long long)ms.requests, (unsigned long long)ms.waits_timed_out);
	for (unsigned i = 1; i < HL_MIGRATE_TIERS; i++)
		fprintf(out, "migrate_tier%u_moves %llu\nmigrate_tier%u_bytes %llu\n", i,
			(unsigned long long)ms.moves[i], i, (unsigned long long)ms.bytes[i]);
	for (unsigned i = 1; hl_migrate_why_name(i); i++)
		fprintf(out, "migrate_refused_%s %llu\n", hl_migrate_why_name(i),
			(unsigned long long)ms.refused[i]);
	fprintf(out, "migrate_uffd %d\nmigrate_own_maps %llu\nmigrate_map_limit %llu\n"
		"migrate_span_moves %llu\nmigrate_span_moves_refused %llu\nmigrate_reserve_bytes %llu\n",
		ms.uffd,
		(unsigned long long)lf_load_relaxed(&hl_ctr.own_maps),
		(unsigned long long)rb_map_limit(),
		(unsigned long long)lf_load_relaxed(&hl_ctr.span_moves),
		(unsigned long long)lf_load_relaxed(&hl_ctr.span_moves_refused),
		(unsigned long long)lf_load_relaxed(&hl_ctr.move_reserve));
	if (ms.uffd_reason[0])
		fprintf(out, "migrate_uffd_reason %s\n", ms.uffd_reason);
}


/* HEAPLIB_STATS=1: the statistics on stderr at exit, from a destructor
 * (it runs after atexit handlers and for every way out through exit). */
__attribute__((destructor)) static void hl_exit_report(void)
{
	if (lf_load_acquire(&hl_inited) != 2 || !hl_config.stats || hl_config.stats_fd < 0)
		return;
	FILE *f = fdopen(hl_config.stats_fd, "w");
	if (f) {
		hl_stats_print(f);
		fclose(f);
	}
}
