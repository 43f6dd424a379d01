/* The struct_size rule: a program built against an older heaplib.h (a
 * shorter struct) or a newer one (a longer struct whose extra bytes are
 * zero) keeps working; output structs are filled up to their struct_size
 * and not a byte past it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

/* Today's layouts, written out: when fields are added these stay what a
 * binary built today passes. */
#define REGION_ATTR_TODAY (offsetof(hl_region_attr_t, notify_arg) + sizeof(void *))
#define TASK_ATTR_TODAY (offsetof(hl_task_attr_t, nregions) + sizeof(size_t))

#define SENTINEL 0xa5a5a5a5a5a5a5a5ull

/* A caller's struct with room after it, as a newer header would have. */
typedef struct {
	hl_region_attr_t a;
	uint64_t newer[4];
} region_attr_newer_t;

typedef struct {
	hl_task_attr_t a;
	uint64_t newer[4];
} task_attr_newer_t;

static void test_region_attr(void)
{
	hl_region_t *r = NULL;
	hl_region_attr_t a = { .struct_size = REGION_ATTR_TODAY, .name = "compat" };
	ok(hl_region_create(&a, &r) == HL_OK && r, "hl_region_create accepts today's hl_region_attr_t size");
	if (r)
		hl_region_delete(r);

	region_attr_newer_t n;
	memset(&n, 0, sizeof n);
	n.a.struct_size = sizeof n;
	n.a.name = "newer";
	r = NULL;
	ok(hl_region_create(&n.a, &r) == HL_OK && r,
	   "a longer hl_region_attr_t whose extra bytes are zero is accepted");
	if (r)
		hl_region_delete(r);

	n.newer[2] = 1;
	r = NULL;
	ok(hl_region_create(&n.a, &r) == HL_EINVAL && !r,
	   "a longer hl_region_attr_t asking for something unknown (a non-zero extra byte) is HL_EINVAL");

	if (r)
		hl_region_delete(r);
	r = NULL;
	a.struct_size = offsetof(hl_region_attr_t, capacity);
	ok(hl_region_create(&a, &r) == HL_EINVAL && !r,
	   "an hl_region_attr_t shorter than the first header's is HL_EINVAL");
}

static void test_task_attr(void)
{
	hl_task_t *t = NULL;
	hl_task_attr_t a = { .struct_size = TASK_ATTR_TODAY, .name = "compat" };
	ok(hl_task_create(&a, &t) == HL_OK && t, "hl_task_create accepts today's hl_task_attr_t size");
	if (t)
		hl_task_destroy(t);
	task_attr_newer_t n;
	memset(&n, 0, sizeof n);
	n.a.struct_size = sizeof n;
	t = NULL;
	ok(hl_task_create(&n.a, &t) == HL_OK && t,
	   "a longer hl_task_attr_t whose extra bytes are zero is accepted");
	if (t)
		hl_task_destroy(t);
	n.newer[0] = 7;
	t = NULL;
	ok(hl_task_create(&n.a, &t) == HL_EINVAL && !t,
	   "a longer hl_task_attr_t with a non-zero extra byte is HL_EINVAL");
}

static void test_stats_cut(void)
{
	hl_region_stats_t rs;
	memset(&rs, 0xa5, sizeof rs);
	rs.struct_size = offsetof(hl_region_stats_t, events_high);
	int e = hl_region_stats(hl_region_default(), &rs);
	ok(e == HL_OK && rs.struct_size == offsetof(hl_region_stats_t, events_high) &&
	   rs.events_high == SENTINEL && rs.capacity == 0,
	   "hl_region_stats fills a cut hl_region_stats_t up to its struct_size only");

	hl_task_stats_t ts;
	memset(&ts, 0xa5, sizeof ts);
	ts.struct_size = offsetof(hl_task_stats_t, quota);
	e = hl_task_stats(hl_task_self(), NULL, &ts);
	ok(e == HL_OK && ts.quota == SENTINEL && ts.blocks_live != SENTINEL,
	   "hl_task_stats fills a cut hl_task_stats_t up to its struct_size only");

	hl_stats_t s;
	memset(&s, 0xa5, sizeof s);
	s.struct_size = offsetof(hl_stats_t, bytes_purged);
	ok(hl_stats_get(&s) == 0 && s.bytes_purged == SENTINEL && s.bytes_reserved != SENTINEL,
	   "hl_stats_get fills a cut hl_stats_t up to its struct_size only");

	struct {
		hl_stats_t s;
		uint64_t newer[2];
	} big;
	memset(&big, 0xa5, sizeof big);
	big.s.struct_size = sizeof big;
	ok(hl_stats_get(&big.s) == 0 && big.newer[0] == SENTINEL && big.s.heaps != SENTINEL,
	   "hl_stats_get fills a longer hl_stats_t's known fields and leaves the rest");
}

int main(void)
{
	plan(11);
	test_region_attr();
	test_task_attr();
	test_stats_cut();
	return done_testing();
}
