/* Regions and their books for tests: one call each (tests only). */
#ifndef HL_TEST_REGIONS_H
#define HL_TEST_REGIONS_H

#include <string.h>

#include "heaplib.h"

/* A region of the given attributes, or NULL (the reason is the test's to
 * say: a secure region needs RLIMIT_MEMLOCK, for one). */
static inline hl_region_t *test_region(const char *name, size_t cap, unsigned reach, int secure,
				       hl_backing_t kind)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = cap;
	a.reach = reach;
	a.secure = secure;
	a.backing = kind;
	hl_region_t *r = NULL;
	return hl_region_create(&a, &r) == HL_OK ? r : NULL;
}

static inline hl_region_stats_t test_rst(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s;
}

#endif
