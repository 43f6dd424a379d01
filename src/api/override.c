/*
 * glibc's malloc extras, exported for linking and LD_PRELOAD (the plain
 * allocation names are aliases in alloc.c).  Sanitizer builds export none
 * of them: the sanitizer owns these names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <stdio.h>

#include "api/api.h"

#ifndef HL_NO_OVERRIDE
HL_EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	return hl_trim();
}

HL_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi = { 0 };
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	mi.arena = st.bytes_mapped;
	mi.hblks = st.large_live;
	mi.hblkhd = st.large_bytes;
	mi.fordblks = st.tcache_bytes + st.transfer_bytes;
	mi.uordblks = st.bytes_mapped > mi.fordblks ? st.bytes_mapped - mi.fordblks : 0;
	mi.keepcost = 0;
	return mi;
}

/* glibc's tunables, where one maps onto heaplib's own: 1 when it took
 * effect, 0 otherwise (as glibc returns for a value it refuses). */
HL_EXPORT int mallopt(int param, int value)
{
	hl_ensure_init();
	switch (param) {
	case M_MMAP_THRESHOLD:
		/* The size above which a block is a large, page-granular one
		 * (a page-heap run or a mapping of its own): at most
		 * HL_SMALL_MAX here (every block above it is one). */
		if (value < 0 || value > (int)HL_SMALL_MAX)
			return 0;
		lf_store_relaxed(&hl_config.small_max, (uint32_t)value);
		hl_thread_flush();   /* this thread's cache serves no such class */
		return 1;
	case M_TRIM_THRESHOLD:
		/* heaplib purges by time, not by size: -1 (never trim) stops
		 * the decay, 0 (trim at once) purges on every decay tick;
		 * other sizes have no counterpart. */
		if (value == -1)
			lf_store_relaxed(&hl_config.decay_ms, UINT32_MAX);
		else if (value == 0)
			lf_store_relaxed(&hl_config.decay_ms, 0u);
		else
			return 0;
		return 1;
	default:
		/* M_TOP_PAD: there is no heap top to pad.  M_ARENA_MAX: the
		 * heap shards are made at start-up (HEAPLIB_HEAPS), before any
		 * program code can call this.  The rest have no counterpart. */
		return 0;
	}
}

static int clamp_int(uint64_t v)
{
	return v > INT_MAX ? INT_MAX : (int)v;
}

HL_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = { 0 };
	mi.arena = clamp_int(m2.arena);
	mi.hblks = clamp_int(m2.hblks);
	mi.hblkhd = clamp_int(m2.hblkhd);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.fordblks = clamp_int(m2.fordblks);
	return mi;
}

/* glibc's XML, in its element names, with one <heap> per live region
 * (the default region is heap 0). */
HL_EXPORT int malloc_info(int options, FILE *fp)
{
	if (options != 0 || !fp) {
		errno = EINVAL;
		return -1;
	}
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	fprintf(fp, "<malloc version=\"heaplib-1\">\n");
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		hl_region_stats_t rs = { .struct_size = sizeof rs };
		if (hl_region_stats(region_at(id), &rs) != HL_OK)
			continue;
		fprintf(fp,
			"<heap nr=\"%u\" name=\"%s\">\n"
			"<total type=\"live\" count=\"%llu\" size=\"%llu\"/>\n"
			"<system type=\"current\" size=\"%llu\"/>\n"
			"<system type=\"max\" size=\"%llu\"/>\n"
			"</heap>\n",
			id, region_at(id)->name, (unsigned long long)rs.blocks_live,
			(unsigned long long)rs.bytes_live, (unsigned long long)rs.bytes_backed,
			(unsigned long long)rs.capacity);
	}
	fprintf(fp,
		"<total type=\"fast\" count=\"0\" size=\"%llu\"/>\n"
		"<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
		"<system type=\"current\" size=\"%llu\"/>\n"
		"<aspace type=\"total\" size=\"%llu\"/>\n"
		"<aspace type=\"mprotect\" size=\"%llu\"/>\n"
		"</malloc>\n",
		(unsigned long long)(st.tcache_bytes + st.transfer_bytes),
		(unsigned long long)st.large_live, (unsigned long long)st.large_bytes,
		(unsigned long long)(st.bytes_mapped + st.large_bytes),
		(unsigned long long)st.bytes_reserved, (unsigned long long)st.bytes_mapped);
	return 0;
}

HL_EXPORT void malloc_stats(void)
{
	hl_stats_print(stderr);
}
#endif
