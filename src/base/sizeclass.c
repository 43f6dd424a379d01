/*
 * Size classes: 16-byte steps to 128, then four classes per doubling to
 * 32 KiB.  Every class is a multiple of 16, so every block of 16 bytes or
 * more is aligned for max_align_t, as C17 (DR 445) and glibc give it; a
 * superblock starts on a 64 KiB boundary, so a block's alignment is its
 * class's.  Rounding wastes at most 25% of any request of 64 bytes or
 * more (15/65 at worst in the 16-byte steps, 63/257 after); below that
 * the 16-byte step sets the floor.
 */
#include "base/base.h"

sc_info_t sc_table[HL_NCLASSES];
uint8_t sc_lut[(HL_SMALL_MAX >> 3) + 1] __attribute__((aligned(64)));
sc_check_t sc_checks[HL_NCLASSES] __attribute__((aligned(64)));

static unsigned sc_pick_slots(uint32_t size)
{
	for (unsigned n = 1; n <= HL_MAX_SB_SLOTS; n <<= 1) {
		size_t bytes = n * HL_SLOT_SIZE;
		if (bytes / size >= 8 && (bytes % size) * 8 <= bytes)
			return n;
	}
	return HL_MAX_SB_SLOTS;
}

void sc_init(void)
{
	uint32_t sizes[HL_NCLASSES];
	unsigned n = 0;
	for (uint32_t s = 16; s <= 128; s += 16)
		sizes[n++] = s;
	for (uint32_t p = 128; p < HL_SMALL_MAX; p <<= 1)
		for (uint32_t q = 5; q <= 8; q++)
			sizes[n++] = p * q / 4;
	HL_ASSERT(n == HL_NCLASSES && sizes[n - 1] == HL_SMALL_MAX);

	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		sc_info_t *ci = &sc_table[c];
		ci->size = sizes[c];
		ci->recip = (uint32_t)((((uint64_t)1 << 32) + sizes[c] - 1) / sizes[c]);
		ci->divm = UINT64_MAX / sizes[c] + 1;
		ci->nslots = sc_pick_slots(sizes[c]);
		ci->maxcount = (uint32_t)(ci->nslots * HL_SLOT_SIZE / sizes[c]);
		ci->limit = ci->maxcount * sizes[c];
		ci->least = c ? sizes[c - 1] + 1 : 0;
		uint32_t b = 16384u / sizes[c];
		b = b < 4 ? 4 : b > HL_MAX_BATCH ? HL_MAX_BATCH : b;
		ci->batch = b < ci->maxcount ? b : ci->maxcount;
		ci->list_at = ci->maxcount / 4 ? ci->maxcount / 4 : 1;
		HL_ASSERT(ci->maxcount <= HL_ANCHOR_COUNT_MAX);
	}
	unsigned c = 0;
	for (size_t i = 0; i < sizeof sc_lut; i++) {
		size_t sz = i << 3;
		while (sc_table[c].size < sz)
			c++;
		sc_lut[i] = (uint8_t)c;
	}
	for (c = 0; c < HL_NCLASSES; c++) {
		/* sc_is_block's constants (base/base.h says why they work). */
		uint32_t size = sc_table[c].size;
		uint64_t divm = sc_table[c].divm;
		uint64_t e = (uint64_t)size * divm;   /* wraps to size * divm - 2^64 */
		sc_checks[c].divm = divm;
		sc_checks[c].bound = e ? (uint64_t)sc_table[c].maxcount * e : 1;
		HL_ASSERT(e ? e < size : !(size & (size - 1)));
	}
}

unsigned sc_class_aligned(size_t size, size_t align)
{
	if (align <= 8)
		return sc_of(size);
	for (unsigned c = sc_of(size); c < HL_NCLASSES; c++)
		if (sc_table[c].size % align == 0)
			return c;
	return HL_NCLASSES;
}
