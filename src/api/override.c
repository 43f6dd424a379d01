/*
 * glibc's malloc extras, exported for linking and LD_PRELOAD (the plain
 * allocation names are aliases in alloc.c).  Sanitizer builds export none
 * of them: the sanitizer owns these names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
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

/* No glibc tunable maps onto heaplib's policy: say so (0) rather than
 * pretend it took effect. */
HL_EXPORT int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 0;
}

HL_EXPORT void malloc_stats(void)
{
	hl_stats_print(stderr);
}
#endif
