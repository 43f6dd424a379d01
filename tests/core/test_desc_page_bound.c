/*
 * The descriptor arena's page count never passes its bound: with the
 * count seeded one page short of HL_DESC_PAGES, the last page is handed
 * out, then every further attempt fails and leaves the count at exactly
 * HL_DESC_PAGES; a count that stands at UINT32_MAX (where 2^32 failed
 * fetch-adds would have left it) does not wrap onto page 0, whose
 * descriptors are live.  A descriptor given back is handed out again.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <stdint.h>

#include "core/core.h"
#include "tap.h"

#define HOLD_MAX 8192
#define FAILS 1000

static hl_desc_t *held[HOLD_MAX];

int main(void)
{
	plan(6);
	hl_free(hl_malloc(1));
	unsigned cls = sc_of(20000);
	lf_hp_rec_t *me = desc_hp_rec();

	uint32_t before = desc_test_npages();
	desc_test_seed_pages(HL_DESC_PAGES - 1);
	unsigned n = 0;
	while (n < HOLD_MAX && (held[n] = sb_test_new(0, cls)) != NULL)
		n++;
	int last_page = 0;
	for (unsigned i = 0; i < n; i++)
		last_page |= held[i]->idx / HL_DESC_PER_PAGE == HL_DESC_PAGES - 1;
	ok(n < HOLD_MAX && last_page && desc_test_npages() == HL_DESC_PAGES,
	   "seeded at %u pages (from %u), %u descriptors are handed out, the last page's among them, and the count stops at %u",
	   HL_DESC_PAGES - 1, before, n, desc_test_npages());

	unsigned got = 0;
	for (int i = 0; i < FAILS; i++) {
		hl_desc_t *d = sb_test_new(0, cls);
		if (d) {
			got++;
			sb_test_retire(d);
		}
	}
	ok(got == 0 && desc_test_npages() == HL_DESC_PAGES,
	   "%d more attempts all fail (%u succeeded) and the count stays at %u (is %u)",
	   FAILS, got, HL_DESC_PAGES, desc_test_npages());

	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	uint64_t live = st.descriptors_live;
	desc_test_seed_pages(UINT32_MAX);
	hl_desc_t *w1 = sb_test_new(0, cls), *w2 = sb_test_new(0, cls);
	hl_stats_get(&st);
	ok(w1 == NULL && w2 == NULL && desc_test_npages() == UINT32_MAX &&
	   st.descriptors_live == live,
	   "at UINT32_MAX the count does not wrap: no attempt hands out a descriptor of page 0 again (%s, %s; count %u)",
	   w1 ? "one was" : "none", w2 ? "one was" : "none", desc_test_npages());
	desc_test_seed_pages(HL_DESC_PAGES);

	sb_test_retire(held[n - 1]);
	lf_hp_scan(me);
	held[n - 1] = sb_test_new(0, cls);
	ok(held[n - 1] != NULL && desc_test_npages() == HL_DESC_PAGES,
	   "a descriptor retired and freed is handed out again, with no new page");

	for (unsigned i = 0; i < n; i++)
		if (held[i])
			sb_test_retire(held[i]);
	lf_hp_scan(me);
	ok(lf_hp_pending(&desc_hp) == 0, "every descriptor retired is freed");

	void *p = hl_malloc(100);
	ok(p != NULL, "malloc still works at the bound (free descriptors remain)");
	hl_free(p);
	return done_testing();
}
