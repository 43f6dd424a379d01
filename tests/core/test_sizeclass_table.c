/* Size classes: the table is monotone, every class is a multiple of 16,
 * every size maps to the smallest class that holds it, rounding wastes at
 * most 25% from 64 bytes up, and superblock geometry fits the anchor's
 * fields. */
#include "base/base.h"
#include "tap.h"

int main(void)
{
	plan(10);
	hl_ensure_init();

	int mono = 1;
	for (unsigned c = 1; c < HL_NCLASSES; c++)
		mono &= sc_table[c].size > sc_table[c - 1].size;
	ok(mono && sc_table[HL_NCLASSES - 1].size == HL_SMALL_MAX,
	   "classes strictly increase and end at 32 KiB");

	unsigned odd = HL_NCLASSES;
	for (unsigned c = 0; c < HL_NCLASSES && odd == HL_NCLASSES; c++)
		if (sc_table[c].size % 16)
			odd = c;
	ok(odd == HL_NCLASSES, "every class is a multiple of 16 (max_align_t), first odd class: %u",
	   odd);

	int smallest = 1;
	size_t bad = 0;
	for (size_t s = 0; s <= HL_SMALL_MAX; s++) {
		unsigned c = sc_of(s);
		if (sc_table[c].size < s || (c > 0 && sc_table[c - 1].size >= s && s > 0)) {
			smallest = 0;
			bad = s;
			break;
		}
	}
	ok(smallest, "every size 0..32768 maps to the smallest class that holds it (first bad: %zu)", bad);

	int least = 1;
	for (size_t s = 0; s <= HL_SMALL_MAX && least; s++) {
		unsigned c = sc_of(s);
		least = sc_table[c].least <= s && (c + 1 == HL_NCLASSES || sc_table[c + 1].least > s);
		if (!least)
			diag("size %zu: class %u, least %u", s, c, sc_table[c].least);
	}
	ok(least, "sc_of(s) is the class c with least(c) <= s < least(c + 1), for every s 0..32768");

	size_t worst = 0;
	double worst_ratio = 0;
	for (size_t s = 64; s <= HL_SMALL_MAX; s++) {
		double r = (double)(sc_table[sc_of(s)].size - s) / (double)s;
		if (r > worst_ratio) {
			worst_ratio = r;
			worst = s;
		}
	}
	ok(worst_ratio <= 0.25, "rounding wastes at most 25%% from 64 bytes up (worst %.3f at %zu)",
	   worst_ratio, worst);

	int geometry = 1, batches = 1;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		const sc_info_t *ci = &sc_table[c];
		geometry &= ci->maxcount >= 8 && ci->maxcount <= HL_ANCHOR_COUNT_MAX &&
			    ci->maxcount * ci->size <= ci->nslots * HL_SLOT_SIZE &&
			    ci->nslots <= HL_MAX_SB_SLOTS;
		batches &= ci->batch >= 1 && ci->batch <= HL_MAX_BATCH &&
			   ci->batch <= ci->maxcount && ci->list_at >= 1 &&
			   ci->list_at <= ci->maxcount;
	}
	ok(geometry, "every superblock holds at least 8 blocks and fits its anchor");
	ok(batches, "batch sizes and listing thresholds are within the superblock");

	int boundary = 1;
	for (unsigned c = 0; c < HL_NCLASSES && boundary; c++) {
		const sc_info_t *ci = &sc_table[c];
		for (size_t off = 0; off < ci->nslots * HL_SLOT_SIZE; off += 1 + off % 7) {
			long want = (off % ci->size == 0 && off / ci->size < ci->maxcount)
					    ? (long)(off / ci->size) : -1;
			if (sc_block_index(c, off) != want || sc_is_block(c, off) != (want >= 0)) {
				boundary = 0;
				diag("class %u size %u off %zu: got %ld want %ld", c, ci->size,
				     off, sc_block_index(c, off), want);
				break;
			}
		}
	}
	ok(boundary, "both block-boundary checks (reciprocal index, divisibility by multiply) agree with division");

	/* Every offset a slot record and an address can give (below the
	 * superblock's bytes): free's one-compare check against division. */
	int every = 1;
	for (unsigned c = 0; c < HL_NCLASSES && every; c++) {
		const sc_info_t *ci = &sc_table[c];
		for (size_t off = 0; off < ci->nslots * HL_SLOT_SIZE; off++) {
			bool want = off % ci->size == 0 && off / ci->size < ci->maxcount;
			if (sc_is_block(c, off) != want) {
				every = 0;
				diag("class %u size %u off %zu: got %d", c, ci->size, off, !want);
				break;
			}
		}
	}
	ok(every, "sc_is_block(c, off) is (size divides off and off / size < maxcount) for every offset of every class");

	int tail = 1;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		const sc_info_t *ci = &sc_table[c];
		size_t bytes = ci->nslots * HL_SLOT_SIZE;
		tail &= (bytes - (size_t)ci->maxcount * ci->size) * 8 <= bytes;
	}
	ok(tail, "no superblock leaves more than 1/8 of itself unused");
	return done_testing();
}
