/*
 * memfd regions after "regions supply backing, superblocks keep their
 * address" (mem/backing.c):
 *  1. a block's superblock span lies in the reservation, outside the
 *     memfd's own view, with the memfd offset mapped over it (its line in
 *     /proc/self/maps names the memfd); the page map finds its record and
 *     hl_region_of names the region;
 *  2. a memfd span is counted against the mapping budget while it lives;
 *  3. its superblock moves to anonymous memory and back in place, its
 *     bytes and its region intact (skipped without userfaultfd);
 *  4. when the superblocks are retired (reset), their offsets are punched
 *     out of the memfd (its st_blocks drop to 0), the spans are anonymous
 *     again, and the budget is back where it was;
 *  5. a secure memfd region's spans are locked and out of core dumps.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tap.h"
#include "span.h"

/* The /proc/self/maps line of p's mapping, or "" */
static void maps_of(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	out[0] = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			snprintf(out, len, "%s", line);
			break;
		}
	}
	if (f)
		fclose(f);
}

static int vmflags_has(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	int inside = 0, has = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (inside && !strncmp(line, "VmFlags:", 8))
			has = strstr(line, flag) != NULL;
	}
	if (f)
		fclose(f);
	return has;
}

int main(void)
{
	plan(12);
	uint64_t maps0 = lf_load_relaxed(&hl_ctr.own_maps);
	hl_region_attr_t a = { .struct_size = sizeof a, .name = "rebind_memfd",
			       .backing = HL_BACKING_MEMFD, .capacity = 4u << 20 };
	hl_region_t *r;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("a memfd region");
	bk_t *bk = r->bk;
	char *p = in(r, 1000);
	if (!p)
		bail_out("hl_alloc in the memfd region");
	memset(p, 0x5a, 1000);
	unsigned order;
	char *base = sb_of(p, &order);
	uint64_t off = 1;
	char line[512];
	maps_of(base, line, sizeof line);
	int outside = !(base >= bk->pool && base < bk->pool + bk->pool_len);
	bk_t *backs = bk_span_backing(base, &off);
	ok(outside && backs == bk && strstr(line, "memfd:rebind_memfd"),
	   "1: the superblock's span is outside the memfd's view, at memfd offset %llu (%s)",
	   (unsigned long long)off, line);
	ok(pm_lookup(p) && PM_KIND(pm_lookup(p)->word) == PM_SMALL && hl_region_of(p) == r,
	   "1: the page map finds the block's record, and hl_region_of names the region");
	ok(lf_load_relaxed(&hl_ctr.own_maps) == maps0 + 2,
	   "2: the live memfd span counts 2 mappings against the budget (%llu -> %llu)",
	   (unsigned long long)maps0, (unsigned long long)lf_load_relaxed(&hl_ctr.own_maps));

	const char *why = NULL;
	if (rb_probe(&why) != HL_OK) {
		skip(3, "%s", why);
	} else {
		int e = bk_span_move(base, order, bk_at(0), &why);
		maps_of(base, line, sizeof line);
		int intact = 1;
		for (int i = 0; i < 1000; i++)
			intact &= (unsigned char)p[i] == 0x5a;
		ok(e == HL_OK && !bk_span_backing(base, &off) && !strstr(line, "memfd:") && intact,
		   "3: moved to anonymous memory in place, bytes intact (%s; %s)", hl_strerror(e), line);
		e = bk_span_move(base, order, bk, &why);
		maps_of(base, line, sizeof line);
		intact = 1;
		for (int i = 0; i < 1000; i++)
			intact &= (unsigned char)p[i] == 0x5a;
		ok(e == HL_OK && bk_span_backing(base, &off) == bk && strstr(line, "memfd:rebind_memfd") && intact,
		   "3: and back to the region's memfd, bytes intact (%s)", hl_strerror(e));
		ok(hl_region_of(p) == r && pm_lookup(p) && PM_KIND(pm_lookup(p)->word) == PM_SMALL,
		   "3: the block keeps its address, record and region through the moves");
	}

	/* Fill some more superblocks, then retire them all. */
	char *q[40];
	for (int i = 0; i < 40; i++) {
		q[i] = in(r, 30000);
		if (q[i])
			memset(q[i], 1, 30000);
	}
	struct stat st0, st1;
	fstat(bk->fd, &st0);
	hl_free(p);
	for (int i = 0; i < 40; i++)
		hl_free(q[i]);
	int e = hl_region_reset(r);
	fstat(bk->fd, &st1);
	ok(e == HL_OK && st0.st_blocks > 0 && st1.st_blocks == 0,
	   "4: retired superblocks give their pages back to the memfd (st_blocks %lld -> %lld)",
	   (long long)st0.st_blocks, (long long)st1.st_blocks);
	maps_of(base, line, sizeof line);
	ok(!strstr(line, "memfd:") && pm_back_get(base) == 0,
	   "4: the span is the reservation's anonymous memory again (%s)", line);
	ok(lf_load_relaxed(&hl_ctr.own_maps) == maps0,
	   "4: and the mapping budget is back where it was (%llu)",
	   (unsigned long long)lf_load_relaxed(&hl_ctr.own_maps));
	ok(hl_region_delete(r) == HL_OK, "the memfd region is deleted");

	a.secure = 1;
	a.name = "rebind_secure";
	if (hl_region_create(&a, &r) != HL_OK) {
		skip(2, "no secure memfd region here (RLIMIT_MEMLOCK)");
	} else {
		p = in(r, 100);
		base = p ? sb_of(p, &order) : NULL;
		ok(p && vmflags_has(base, " dd"), "5: a secure memfd region's span is out of core dumps");
#ifdef HL_SANITIZER
		skip(1, "the sanitizer makes mlock a no-op: locking is checked in the plain build");
#else
		ok(p && vmflags_has(base, " lo"), "5: and locked");
#endif
		hl_free(p);
		hl_region_reset(r);
		hl_region_delete(r);
	}
	return done_testing();
}
