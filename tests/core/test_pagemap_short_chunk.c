/*
 * A chunk that cannot have its whole 1 GiB (the address space is short)
 * is a smaller piece, still 1 GiB aligned: its records come first, spans
 * are handed out only from its mapped slots, and then the next chunk is
 * used.  A region's pool in the rest of the same 1 GiB shares the chunk's
 * records.
 *
 * The slot counter is seeded at an unused chunk and the first map of it
 * (the whole 1 GiB) fails by fault injection, so it gets 256 MiB.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "mem/mem.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)
#define PIECE (256 * MiB)
#define RECS 4   /* slots of records: 16384 records of 16 bytes */

int main(void)
{
	plan(8);
	hl_free(hl_malloc(16));
	bool fresh;
	while (pm_span_get(3, NULL, &fresh))
		;   /* no cached span of order 3 */
	uint64_t k = pm_test_next() / HL_SLOTS_PER_CHUNK + 2;
	pm_test_set_next(k * HL_SLOTS_PER_CHUNK + RECS);

	os_test_fail_maps(1);
	char *b0;
	uint32_t sp = pm_span_get(3, &b0, &fresh);
	os_test_fail_maps(0);
	char *base = (char *)((uintptr_t)b0 & ~(uintptr_t)(HL_CHUNK_SIZE - 1));
	ok(sp && b0 == base + RECS * HL_SLOT_SIZE,
	   "the whole 1 GiB refused, the chunk's first span follows its records (%p)", (void *)b0);

	unsigned n = 1, past = 0;
	char *b;
	for (;;) {
		if (!pm_span_get(3, &b, &fresh))
			break;
		if (b < base || b >= base + HL_CHUNK_SIZE)
			break;
		if (b + 8 * HL_SLOT_SIZE > base + PIECE)
			past++;
		b[0] = 1;
		b[8 * HL_SLOT_SIZE - 1] = 1;   /* mapped: this must not fault */
		n++;
	}
	is_int(n, (PIECE / HL_SLOT_SIZE - RECS) / 8, "511 spans of 8 slots fill the 256 MiB piece");
	ok(past == 0, "none lies past the piece (%u do)", past);
	ok(b && (b < base || b >= base + HL_CHUNK_SIZE), "the next span comes from another chunk (%p)", (void *)b);
	ok(pm_lookup(b0) == (pm_slot_t *)base + RECS, "the page map finds the chunk's own records");

	char *buf = mmap(base + 512 * MiB, 4 * MiB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (buf == MAP_FAILED) {
		skip(3, "the rest of the chunk's 1 GiB is taken");
		return done_testing();
	}
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.reach = HL_REACH_SYS;
	a.backing = HL_BACKING_BUFFER;
	a.buffer = buf;
	a.capacity = 4 * MiB;
	hl_region_t *r = NULL;
	int rc = hl_region_create(&a, &r);
	hl_place_t pl = { .reach = HL_REACH_SYS, .node = -1, .region = r };
	void *p = NULL;
	if (rc == HL_OK)
		rc = hl_alloc(100, &pl, 0, &p);
	ok(rc == HL_OK && p && (char *)p >= buf && (char *)p < buf + 4 * MiB,
	   "a region's pool in the rest of that 1 GiB allocates (rc %d)", rc);
	ok(p && pm_lookup(p) == (pm_slot_t *)base + (((char *)p - base) >> HL_SLOT_SHIFT),
	   "its blocks' records are the chunk's");
	hl_free(p);
	ok(r && hl_region_delete(r) == HL_OK && pm_lookup(b0) == (pm_slot_t *)base + RECS,
	   "the region is deleted and the chunk's records stay");
	munmap(buf, 4 * MiB);
	return done_testing();
}
