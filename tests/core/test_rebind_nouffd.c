/*
 * The no-userfaultfd mode (HEAPLIB_NO_UFFD=1, the mode of a machine where
 * userfaultfd is refused): backing moves are refused with HL_EPERM and a
 * reason the statistics can print, the span is left as it was, and memfd
 * regions still serve (their spans need no userfaultfd).
 */
#define _GNU_SOURCE
#include <string.h>

#include "policy/policy.h"
#include "tap.h"

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_NO_UFFD", "1", NULL);
	plan(5);
	hl_free(hl_malloc(1));
	const char *why = NULL;
	int e = rb_probe(&why);
	ok(e == HL_EPERM && why && strstr(why, "HEAPLIB_NO_UFFD"),
	   "the probe refuses: %s (%s)", hl_strerror(e), why ? why : "no reason");
	hl_region_attr_t a = { .struct_size = sizeof a, .name = "nouffd",
			       .backing = HL_BACKING_MEMFD, .capacity = 1u << 20 };
	hl_region_t *r;
	hl_place_t pl = { .node = -1 };
	char *p = NULL;
	if (hl_region_create(&a, &r) == HL_OK) {
		pl.region = r;
		hl_alloc(100, &pl, 0, (void **)&p);
	}
	ok(p != NULL, "a memfd region still serves without userfaultfd");
	if (!p)
		return done_testing();
	memset(p, 7, 100);
	char *base = (char *)((uintptr_t)p & ~(uintptr_t)(HL_SLOT_SIZE - 1));
	uint64_t refused = lf_load_relaxed(&hl_ctr.span_moves_refused), off;
	why = NULL;
	e = bk_span_move(base, 0, bk_at(0), &why);
	ok(e == HL_EPERM && why && strstr(why, "HEAPLIB_NO_UFFD"),
	   "a backing move is refused with HL_EPERM: %s", why ? why : "no reason");
	int intact = 1;
	for (int i = 0; i < 100; i++)
		intact &= p[i] == 7;
	ok(intact && bk_span_backing(base, &off) == r->bk,
	   "and the span is left as it was: the region's memfd, its bytes intact");
	ok(lf_load_relaxed(&hl_ctr.span_moves_refused) == refused + 1 && rb_reason() &&
	   !strcmp(rb_reason(), why),
	   "the refusal is counted and its reason kept for the statistics (%s)",
	   rb_reason() ? rb_reason() : "none");
	hl_free(p);
	hl_region_delete(r);
	return done_testing();
}
