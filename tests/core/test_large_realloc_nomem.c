/*
 * A large realloc that cannot get memory from the OS fails with ENOMEM and
 * leaves the old block as it was: it never aborts, even when what failed
 * was the range table's own map (the table is never full; a new table of
 * it is mapped when the last one is half full, and that map can fail).
 *
 * The range table is brought to the point where the next new entry needs
 * a new table; then every map fails (fault injection) and a block that
 * cannot grow in place is reallocated.
 *
 * A move the kernel refuses (the program split the block's mapping with
 * mprotect: mremap fails with EFAULT, and some kernels have unmapped the
 * destination by then) leaves the block and no reserved destination
 * behind; realloc then copies.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mem/mem.h"
#include "tap.h"

#define LEN ((size_t)256 << 10)
#define MAXLIVE 100000

static char *live[MAXLIVE];

static void fill(char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 256)
		p[i] = (char)(i / 256 + 11);
}

static int intact(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 256)
		if (p[i] != (char)(i / 256 + 11))
			return 0;
	return 1;
}

/* This process's address space in bytes (VmSize), 0 if unknown. */
static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb << 10;
}

static void refused_move(void)
{
	size_t big = (size_t)64 << 20;
	hl_trim();
	char *p = hl_malloc(4 * LEN);
	fill(p, 4 * LEN);
	mprotect(p + LEN, HL_PAGE, PROT_READ);   /* two mappings now */
	size_t before = vm_size();
	char *q = hl_realloc(p, big);
	size_t after = vm_size();
	ok(q && q != p && intact(q, 4 * LEN),
	   "a block split by mprotect is reallocated by a copy (%p -> %p)", (void *)p, (void *)q);
	ok(before && after - before <= big + (1 << 20),
	   "and no destination is left mapped (address space grew by %zu MiB for a %zu MiB block)",
	   (after - before) >> 20, big >> 20);
	hl_free(q);
}

int main(void)
{
	plan(8);
	lheap_test_set_max(0);   /* every block a mapping of its own: the paths here */
	hl_trim();
	char *p = hl_malloc(LEN);
	fill(p, LEN);
	void *guard = mmap(p + LEN, HL_PAGE, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	/* Live blocks at new addresses until the table has no room left. */
	int n = 0;
	while (large_test_table_room() > 0 && n < MAXLIVE)
		live[n++] = hl_malloc(64 << 10);
	ok(large_test_table_room() == 0, "%d live blocks fill the range table to its next table", n);

	hl_trim();          /* no warm mapping to grow into */
	unsigned long f0 = os_test_failed();
	os_test_fail_maps(-1);
	errno = 0;
	char *q = hl_realloc(p, 4 * LEN);
	int err = errno;
	os_test_fail_maps(0);
	ok(q == NULL && err == ENOMEM,
	   "with every map failing, realloc returns NULL with ENOMEM (got %p, errno %d)",
	   (void *)q, err);
	ok(os_test_failed() > f0, "the maps it tried were refused (%lu)", os_test_failed() - f0);
	ok(intact(p, LEN) && hl_usable_size(p) == LEN, "the old block is intact, 256 KiB");

	q = hl_realloc(p, 4 * LEN);
	ok(q && intact(q, LEN) && hl_usable_size(q) == 4 * LEN,
	   "once maps work again the same realloc succeeds and keeps the contents");
	ok(large_test_table_room() > 0, "the range table has room again (a new table)");
	hl_free(q);
	for (int i = 0; i < n; i++)
		hl_free(live[i]);
	if (guard != MAP_FAILED)
		munmap(guard, HL_PAGE);

	refused_move();
	return done_testing();
}
