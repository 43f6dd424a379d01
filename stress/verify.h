/*
 * Block verification, its inline half: patterning a new block and checking
 * one about to be freed run on every allocator call of every workload, so
 * they live here, where the compiler inlines them into each workload's loop
 * (and computes a block's hash once for its fill and its check).  verify.c
 * has the rest: the slow check that finds and reports the first mismatch,
 * the FAIL lines, realloc and the selftest.
 *
 * A 64-bit hash of (address, size) is written into every block (the whole
 * block for sizes <= 256 B; otherwise the first 8 bytes, the last 8 bytes
 * and one word every 4 KiB in between) and checked just before the block is
 * freed or reallocated.  realloc must preserve the old pattern up to
 * min(old, new) size.  calloc memory is checked for zeros.
 */
#ifndef HEAPLIB_STRESS_VERIFY_H
#define HEAPLIB_STRESS_VERIFY_H

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define FULL_CHECK_MAX 256		/* blocks up to this size are patterned fully */
#define PAGE_STRIDE 4096

struct blk {
	unsigned char *p;
	uint32_t size;
	int32_t owner;			/* tid of the allocating thread */
};

/* ---- verify.c ----------------------------------------------------------- */

/* the FAIL line for a NULL from an allocator call; exits 2 */
void fail_null(const char *fn, size_t size) __attribute__((noreturn));
/* compares byte by byte below limit (the path of realloc's prefix check and
 * of any mismatch): the first mismatch gets its FAIL line and exits 2 */
void check_slow(const unsigned char *p, size_t layout, size_t limit, uint64_t hh,
		uint64_t kk);
/* check, realloc, check the kept prefix, pattern anew; true if it moved */
bool blk_realloc(struct blk *b, size_t ns);
#ifdef STRESS_SELFTEST_CORRUPT
/* corrupts the first block a worker frees, once per process */
void selftest_corrupt(unsigned char *p, size_t size);
#endif

/* ---- the patterns ------------------------------------------------------- */

static inline uint64_t blk_hash(const void *p, size_t size)
{
	return mix64((uint64_t)(uintptr_t)p ^ ((uint64_t)size << 40) ^ 0x2545f4914f6cdd1dULL);
}

#define PAT_K 0x9e3779b97f4a7c15ULL

/* Expected word at offset off: hh + off * kk, stored in native byte order;
 * (hh, kk) = (hash, PAT_K) for a patterned block, (0, 0) for calloc memory.
 * A word cut short (block tail, realloc limit) holds the first bytes of the
 * native representation. */
static inline uint64_t pat_word(uint64_t h, size_t off)
{
	return h + (uint64_t)off * PAT_K;
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline void store64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/*
 * Check the pattern of a block laid out for `layout` bytes with hash h,
 * looking only at bytes below `limit` (realloc prefix), in block p (which
 * may be at another address than the one h was made from).
 * zero: expect zeros at the same positions (calloc).
 */
static inline void check_block(const unsigned char *p, size_t layout, size_t limit,
			       uint64_t h, bool zero)
{
	if (!opt.verify && !zero)
		return;
	uint64_t hh = zero ? 0 : h, kk = zero ? 0 : PAT_K;
	if (limit >= layout) {
		uint64_t bad = 0;
		if (layout <= FULL_CHECK_MAX) {
			size_t off = 0;
			uint64_t e = hh;
			for (; off + 8 <= layout; off += 8, e += 8 * kk)
				bad |= load64(p + off) ^ e;
			if (off < layout) {
				unsigned char eb[8];
				memcpy(eb, &e, 8);
				for (size_t i = 0; off + i < layout; i++)
					bad |= (uint64_t)(p[off + i] ^ eb[i]);
			}
		} else {
			bad |= load64(p) ^ hh;
			for (size_t off = PAGE_STRIDE; off + 16 <= layout; off += PAGE_STRIDE)
				bad |= load64(p + off) ^ (hh + (uint64_t)off * kk);
			bad |= load64(p + layout - 8) ^ (hh + (uint64_t)(layout - 8) * kk);
		}
		if (__builtin_expect(!bad, 1))
			return;
	}
	check_slow(p, layout, limit, hh, kk);
}

/* write the pattern of a block of size bytes at p */
static inline void fill_block(unsigned char *p, size_t size)
{
	uint64_t h = blk_hash(p, size);
	if (size <= FULL_CHECK_MAX) {
		size_t off = 0;
		uint64_t e = h;
		for (; off + 8 <= size; off += 8, e += 8 * PAT_K)
			store64(p + off, e);
		if (off < size) {
			unsigned char eb[8];
			memcpy(eb, &e, 8);
			for (size_t i = 0; off + i < size; i++)
				p[off + i] = eb[i];
		}
		return;
	}
	store64(p, h);
	for (size_t off = PAGE_STRIDE; off + 16 <= size; off += PAGE_STRIDE)
		store64(p + off, pat_word(h, off));
	store64(p + size - 8, pat_word(h, size - 8));
}

/* check the pattern of a block that is about to be freed */
static inline void check_before_free(unsigned char *p, size_t size)
{
#ifdef STRESS_SELFTEST_CORRUPT
	selftest_corrupt(p, size);
#endif
	check_block(p, size, size, blk_hash(p, size), false);
}

/* malloc (or calloc if zero, checking the zeros) and pattern a block */
static inline void blk_new(struct blk *b, size_t size, bool zero)
{
	unsigned char *p = zero ? calloc(1, size) : malloc(size);
	if (__builtin_expect(!p, 0))
		fail_null(zero ? "calloc" : "malloc", size);
	if (zero)
		check_block(p, size, size, 0, true);
	fill_block(p, size);
	b->p = p;
	b->size = (uint32_t)size;
	b->owner = t_tid;
}

/* check the pattern, free */
static inline void blk_free(struct blk *b)
{
	check_before_free(b->p, b->size);
	free(b->p);
	b->p = NULL;
}

/* check the pattern, free with its size (C23's free_sized, or the like) */
static inline void blk_free_sized(struct blk *b, void (*free_sized_fn)(void *, size_t))
{
	check_before_free(b->p, b->size);
	free_sized_fn(b->p, b->size);
	b->p = NULL;
}

#endif
