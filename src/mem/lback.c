/*
 * What backs a region's large blocks.  A region block is a mapping of
 * its own, in whole slots (64 KiB) and slot-aligned, so that it can be
 * cut into pieces: spans of 1, 2, 4 or 8 slots, the longest first (the
 * cut is a function of the length alone, so whoever walks a block's
 * pieces finds the same ones).  Each piece is backed as a span of the
 * reservation is (mem/backing.c): the mapping's own anonymous memory, or
 * a run of a memfd region's offsets mapped over it, with what backs it in
 * the page map's backing word of its first slot (pm_back_get).  So a
 * memfd region serves large blocks, a fork child copies their pieces as
 * it copies spans (mem/bkfork.c finds them among the backing's live
 * units), and a block changes backing in place piece by piece
 * (bk_span_move: a copy under a userfaultfd write-protect barrier).
 * Each piece that is not the mapping's own memory counts in the mapping
 * budget, as a span does.
 *
 * Concurrency: a block's pieces change only in the hands of its owner:
 * the coordinator while it holds the block (mem/large.c), the thread that
 * allocates it before it is published, the one whose free (or reset)
 * took it out of the range table when it was not held.
 */
#include "mem/mem.h"

/* The order of the piece at the start of what is left (left slots). */
static unsigned lb_order(size_t left)
{
	unsigned o = HL_SPAN_ORDERS - 1;
	while (((size_t)1 << o) > left)
		o--;
	return o;
}

bool lb_len(size_t size, size_t *len)
{
	if (size > ((size_t)1 << 48) - HL_SLOT_SIZE)
		return false;
	*len = (size + HL_SLOT_SIZE - 1) & ~(HL_SLOT_SIZE - 1);
	return true;
}

/* Give every piece of [p, p + len) that is not the mapping's own memory
 * anonymous memory again and its offsets back; false if the kernel
 * refused one (that piece keeps its offsets: never reused, the block's
 * address range lost rather than two owners for one offset). */
static bool lb_unback(char *p, size_t len)
{
	bool ok = true;
	for (size_t left = len >> HL_SLOT_SHIFT; left;) {
		unsigned o = lb_order(left);
		if (pm_back_get(p))
			ok &= bk_span_unback(p, o);
		p += HL_SLOT_SIZE << o;
		left -= (size_t)1 << o;
	}
	return ok;
}

void *lb_alloc(bk_t *bk, size_t len, size_t align, unsigned arena, uint32_t need, int *err)
{
	if (bk->kind != HL_BACKING_MEMFD)
		return large_alloc_arena(len, align, arena, need, bk->secure, err);
	*err = HL_ENOMEM;
	char *p = os_map_aligned(len, align > HL_SLOT_SIZE ? align : HL_SLOT_SIZE);
	if (!p)
		return NULL;
	char *q = p;
	for (size_t left = len >> HL_SLOT_SHIFT; left;) {
		unsigned o = lb_order(left);
		int e = bk_memfd_back(bk, q, o);   /* locks a secure region's piece */
		if (e != HL_OK) {
			*err = e;
			lb_unmap(p, len);
			return NULL;
		}
		q += HL_SLOT_SIZE << o;
		left -= (size_t)1 << o;
	}
	if (!large_publish_arena(p, len, arena, need)) {
		lb_unmap(p, len);
		return NULL;
	}
	*err = HL_OK;
	return p;   /* fresh offsets read as zero (punched, or never used) */
}

void lb_unmap(void *p, size_t len)
{
	if (lheap_owns(p)) {
		/* One of malloc's page-heap runs, moved to a region (never
		 * cut into pieces): back to the heap, out of a secure
		 * region's lock and back in dumps. */
		os_unlock(p, len);
		lheap_free(p, len);
		return;
	}
	if (lb_unback(p, len))
		os_unmap(p, len);   /* unlocks secure pages too */
	else
		hl_warn("hl_free", p, "cannot map a large block's piece back (vm.max_map_count?): it is lost");
}

int lb_move(char *p, size_t len, bk_t *to, bk_t *from, const char **why)
{
	size_t done = 0;
	int e = HL_OK;
	for (size_t left = len >> HL_SLOT_SHIFT; left;) {
		unsigned o = lb_order(left);
		e = bk_span_move(p + done, o, to, why);
		if (e != HL_OK)
			break;
		done += HL_SLOT_SIZE << o;
		left -= (size_t)1 << o;
	}
	if (e == HL_OK)
		return HL_OK;
	/* Back where they were, the way they came: the block is whole in
	 * one backing again, as its region's books say. */
	const char *w2;
	for (size_t off = 0, left = len >> HL_SLOT_SHIFT; off < done;) {
		unsigned o = lb_order(left);
		if (bk_span_move(p + off, o, from, &w2) != HL_OK)
			hl_warn("hl_migrate", p + off, "cannot move a large block's piece back: it stays where it went");
		off += HL_SLOT_SIZE << o;
		left -= (size_t)1 << o;
	}
	return e;
}
