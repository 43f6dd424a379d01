/*
 * Helpers of the tests that move superblock spans by hand (mem/ level):
 * a block's superblock span, a block placed in a region, a region, and
 * a check of bytes.  Include after "policy/policy.h" and "tap.h".
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

/* A region of that kind and capacity (the test bails out if it cannot
 * be made). */
static inline hl_region_t *region(const char *name, hl_backing_t kind, uint64_t cap)
{
	hl_region_attr_t a = { .struct_size = sizeof a, .name = name, .backing = kind,
			       .capacity = cap };
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("hl_region_create(%s)", name);
	return r;
}

/* Whether the n bytes at p are all c. */
static inline int all(const char *p, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != c)
			return 0;
	return 1;
}

#endif
