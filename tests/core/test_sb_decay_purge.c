/*
 * Decay gives back the free pages inside a partly used superblock: a page
 * that only blocks free in the superblock cover is purged (mincore says it
 * is not resident any more) once the superblock has sat on its partial
 * list for SB_IDLE_PASSES decay passes without a refill, while live
 * blocks, a page with one live block, and blocks held as a thread cache
 * holds them (free mark set, free bit clear) keep their bytes.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "tap.h"

#define NPAGES (HL_SLOT_SIZE / HL_PAGE)

static unsigned cls;

static void resident(hl_desc_t *d, unsigned char *vec)
{
	if (mincore(d->base, HL_SLOT_SIZE, vec))
		memset(vec, 0xff, NPAGES);
}

static bool pattern_ok(const unsigned char *b, size_t len, unsigned char c)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != c)
			return false;
	return true;
}

int main(void)
{
	plan(7);
	hl_free(hl_malloc(1));
	cls = sc_of(256);
	const sc_info_t *ci = &sc_table[cls];
	unsigned per_page = HL_PAGE / ci->size;
	hl_desc_t *d = sb_test_new(0, cls);
	static void *out[HL_SLOT_SIZE / 16];
	unsigned n = 0;
	bool full = false;
	while (!full)
		n += sb_test_pop(d, out + n, HL_MAX_BATCH, &full);
	for (unsigned i = 0; i < n; i++)
		memset(out[i], (int)(i & 0x7f) + 1, ci->size);

	/* Free into the superblock: pages 2..5 whole, page 8 all but one
	 * block.  Page 10's blocks stay ours, marked as a cache marks them. */
	void *v[8 * HL_MAX_BATCH];
	unsigned nf = 0;
	for (unsigned i = 2 * per_page; i < 6 * per_page; i++)
		v[nf++] = out[i];
	for (unsigned i = 8 * per_page + 1; i < 9 * per_page; i++)
		v[nf++] = out[i];
	for (unsigned i = 10 * per_page; i < 11 * per_page; i++)
		((uint64_t *)out[i])[1] = hl_key;
	sb_free_batch(cls, v, nf, "free");   /* count passes list_at: listed */

	unsigned char before[NPAGES], mid[NPAGES], after[NPAGES];
	resident(d, before);
	for (unsigned k = 1; k < 4; k++)
		sb_decay(false);
	resident(d, mid);
	sb_decay(false);   /* the fourth pass: due */
	resident(d, after);

	bool was = true, kept_early = true, gone = true, stayed = true;
	for (unsigned p = 0; p < NPAGES; p++) {
		was &= before[p] & 1;
		kept_early &= mid[p] & 1;
		if (p >= 2 && p < 6)
			gone &= !(after[p] & 1);
		else
			stayed &= after[p] & 1;
	}
	ok(was, "every page of the superblock was resident after its blocks were written");
	ok(kept_early, "three decay passes without a refill give nothing back yet");
	ok(gone, "the fourth pass gives back the 4 pages only free blocks cover (mincore)");
	ok(stayed, "it keeps every page with a live or cached block (page 8: one live block; page 10: cached)");

	bool live = true;
	for (unsigned i = 0; i < n; i++) {
		unsigned page = (unsigned)(i / per_page);
		bool freed = (page >= 2 && page < 6) || (page == 8 && i % per_page);
		if (freed)
			continue;
		const unsigned char *b = out[i];
		unsigned char c = (unsigned char)((i & 0x7f) + 1);
		if (page == 10)
			live &= ((const uint64_t *)b)[1] == hl_key && pattern_ok(b, 8, c) &&
				pattern_ok(b + 16, ci->size - 16, c);
		else
			live &= pattern_ok(b, ci->size, c);
	}
	ok(live, "live blocks keep their bytes, cached ones their free mark");

	/* Two more passes, then own it again and refill: the first free bit
	 * is page 2's first block, whose page went back.  The refill resets
	 * the count of passes (without that, the second pass after it would
	 * be the eighth, due). */
	sb_decay(false);
	sb_decay(false);
	bool own = sb_test_take(d);
	void *back[HL_MAX_BATCH];
	unsigned m = own ? sb_test_pop(d, back, 1, &full) : 0;
	ok(m == 1 && back[0] == out[2 * per_page] && pattern_ok(back[0], ci->size, 0),
	   "a refill takes the superblock's freed blocks again: the first, purged, reads zero");
	nf = 0;
	for (unsigned i = 12 * per_page; i < 13 * per_page; i++)
		v[nf++] = out[i];
	sb_free_batch(cls, v, nf, "free");
	if (own)
		sb_test_list(d);
	for (unsigned k = 1; k < 4; k++)
		sb_decay(false);
	resident(d, mid);
	sb_decay(false);
	resident(d, after);
	ok((mid[12] & 1) && !(after[12] & 1),
	   "after that refill, page 12 freed then goes back at the fourth pass, not before (%d %d)",
	   mid[12] & 1, after[12] & 1);
	return done_testing();
}
