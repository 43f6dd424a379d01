/*
 * What is kept of freed large blocks goes back to the OS after
 * HEAPLIB_DECAY_MS unused, even in a program that allocates nothing but
 * large blocks (their malloc and free run the decay): the page heap's
 * free pages are purged, cached mappings are unmapped; what was freed
 * just now stays.
 *
 * Run with HEAPLIB_DECAY_MS=200 (set by re-executing itself).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)
#define PAGE ((size_t)4096)

static hl_stats_t stats(void)
{
	hl_stats_t s = { .struct_size = sizeof s };
	hl_stats_get(&s);
	return s;
}

/* Resident pages of [p, p + len); -1 if some of it is not mapped. */
static long resident(const void *p, size_t len)
{
	static unsigned char v[(64 * MiB) / PAGE];
	size_t n = (len + PAGE - 1) / PAGE;
	if (n > sizeof v || mincore((void *)p, len, v) != 0)
		return -1;
	long r = 0;
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	return r;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_DECAY_MS", "200", (char *)NULL);
	plan(5);
	hl_trim();
	/* k, freed last, runs the decay; a whole number of 64-page words of
	 * the page heap, so that its free leaves h's words' clocks alone. */
	size_t hsz = 8 * MiB, msz = 48 * MiB, ksz = MiB;
	char *k = hl_malloc(ksz);
	char *h = hl_malloc(hsz);    /* a page-heap block */
	char *m = hl_malloc(msz);    /* a mapping of its own */
	memset(h, 1, hsz);
	memset(m, 2, msz);
	memset(k, 3, ksz);
	hl_stats_t a = stats();
	hl_free(h);
	hl_free(m);
	hl_stats_t b = stats();
	ok(b.large_cached == a.large_cached + hsz + msz,
	   "freed, an 8 MiB block and a 48 MiB one are kept (large_cached %llu -> %llu)",
	   (unsigned long long)a.large_cached, (unsigned long long)b.large_cached);
	ok(resident(h, hsz) == (long)(hsz / PAGE) && resident(m, msz) == (long)(msz / PAGE),
	   "their pages stay resident");

	sleep_ms(3 * 200);
	hl_free(k);                  /* no other call into heaplib meanwhile */
	hl_stats_t c = stats();
	is_int((long long)c.large_cached, (long long)ksz,
	       "after the decay time, the next free gives back all but the block it frees");
	ok(resident(h, hsz) == 0, "the page heap's free pages are purged (%ld resident)", resident(h, hsz));
	ok(resident(m, msz) < 0, "the cached mapping is unmapped");
	return done_testing();
}
