/*
 * Helpers of the tests that move superblock spans by hand (mem/ level):
 * a block's superblock span, and a block placed in a region.  Include
 * after "policy/policy.h".
 */
#ifndef HL_TEST_SPAN_H
#define HL_TEST_SPAN_H

/* The superblock of block p: its first slot and its order. */
static inline char *sb_of(void *p, unsigned *order)
{
	uint64_t w = lf_load_acquire(&pm_lookup(p)->word);
	char *slot = (char *)((uintptr_t)p & ~(uintptr_t)(HL_SLOT_SIZE - 1));
	*order = (unsigned)__builtin_ctz(desc_at(PM_DESC(w))->nslots);
	return slot - ((size_t)PM_OFF(w) << HL_SLOT_SHIFT);
}

/* A block of n bytes in region r, or NULL. */
static inline char *in(hl_region_t *r, size_t n)
{
	hl_place_t pl = { .region = r, .node = -1 };
	void *p = NULL;
	hl_alloc(n, &pl, 0, &p);
	return p;
}

#endif
