/*
 * The conventions of glibc's malloc, as the real exported names (plain
 * build, linked with libheaplib.so like test_override): mallopt where a
 * tunable maps onto heaplib's own, mallinfo, malloc_info's XML, and the
 * version heaplib.h, hl_version() and heaplib.pc agree on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

int main(void)
{
	plan(9);

	/* M_MMAP_THRESHOLD: above it a block is a large one (a page-heap
	 * run or a mapping), which malloc_usable_size shows as whole pages. */
	void *before = malloc(10000);
	size_t ub = malloc_usable_size(before);
	int r = mallopt(M_MMAP_THRESHOLD, 4096);
	void *after = malloc(10000);
	size_t ua = malloc_usable_size(after);
	void *small = malloc(1000);
	ok(r == 1 && ub < 12288 && ua == 12288 && malloc_usable_size(small) < 4096,
	   "mallopt(M_MMAP_THRESHOLD, 4096) = 1: malloc(10000) is then a 3-page large block (usable %zu, %zu before), malloc(1000) is not",
	   ua, ub);
	free(before);
	free(after);
	free(small);
	mallopt(M_MMAP_THRESHOLD, 32768);
	ok(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 0,
	   "a threshold above 32 KiB cannot take effect (every larger block is a large one): 0");
	ok(mallopt(M_TRIM_THRESHOLD, -1) == 1 && mallopt(M_TRIM_THRESHOLD, 0) == 1 &&
	   mallopt(M_TRIM_THRESHOLD, 128 << 10) == 0,
	   "M_TRIM_THRESHOLD: -1 (never) and 0 (at once) map onto the decay, a size does not");
	ok(mallopt(M_TOP_PAD, 4096) == 0 && mallopt(M_ARENA_MAX, 2) == 0 && mallopt(M_MXFAST, 0) == 0,
	   "M_TOP_PAD, M_ARENA_MAX (after start-up) and the rest: 0, nothing pretended");

	char *volatile big = malloc(1 << 20);
	big[0] = 1;
	struct mallinfo mi = mallinfo();
	struct mallinfo2 m2 = mallinfo2();
	ok(mi.hblks >= 1 && (size_t)mi.hblkhd == m2.hblkhd && (size_t)mi.arena == m2.arena,
	   "mallinfo agrees with mallinfo2 (%d mapped blocks of %d bytes)", mi.hblks, mi.hblkhd);

	char *xml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&xml, &len);
	r = malloc_info(0, f);
	fclose(f);
	ok(r == 0 && xml && strncmp(xml, "<malloc version=", 16) == 0 &&
	   strstr(xml, "<heap nr=\"0\" name=\"default\">") && strstr(xml, "<total type=\"mmap\"") &&
	   strstr(xml, "</malloc>\n"),
	   "malloc_info(0, f) writes glibc's XML elements, one heap per region");
	free(xml);
	errno = 0;
	ok(malloc_info(1, stderr) == -1 && errno == EINVAL, "malloc_info with options != 0 is -1, EINVAL");
	free(big);

	char want[32];
	snprintf(want, sizeof want, "%d.%d.%d", HL_VERSION_MAJOR, HL_VERSION_MINOR, HL_VERSION_PATCH);
	ok(hl_version() == HL_VERSION, "hl_version() is the header's HL_VERSION (%u)", hl_version());
	is_str(want, PACKAGE_VERSION, "HL_VERSION_MAJOR.MINOR.PATCH is the package's (and heaplib.pc's) version");
	return done_testing();
}
