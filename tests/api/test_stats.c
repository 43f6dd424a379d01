/*
 * hl_stats_get and hl_stats_print: the counters move with what the
 * program does, and when nothing is in flight they add up exactly —
 * every superblock has its descriptor, and no descriptor is leaked.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)

static hl_stats_t stats(void)
{
	hl_stats_t st;
	memset(&st, 0xee, sizeof st);   /* nothing left over from the stack */
	st.struct_size = sizeof st;
	if (hl_stats_get(&st))
		diag("hl_stats_get failed");
	return st;
}

static void test_get(void)
{
	void *keep = hl_malloc(100);
	hl_stats_t st;
	st.struct_size = sizeof st;
	int r = hl_stats_get(&st);
	ok(r == 0 && st.struct_size == sizeof st, "hl_stats_get returns 0 and keeps struct_size");
	ok(st.bytes_reserved > 0, "bytes_reserved > 0 once a block is allocated (%llu)",
	   (unsigned long long)st.bytes_reserved);
	ok(st.heaps >= 1, "heaps >= 1 (%llu)", (unsigned long long)st.heaps);
	ok(st.threads_live >= 1, "threads_live >= 1 once this thread allocated (%llu)",
	   (unsigned long long)st.threads_live);
	ok(st.superblocks_live >= 1, "superblocks_live >= 1 while a small block is live (%llu)",
	   (unsigned long long)st.superblocks_live);
	hl_free(keep);
}

static void test_large_counters(void)
{
	hl_stats_t before = stats();
	void *p = hl_malloc(MiB);
	hl_stats_t during = stats();
	is_int((long long)during.large_live, (long long)before.large_live + 1,
	       "large_live counts up by one after hl_malloc(1 MiB)");
	ok(during.large_bytes >= before.large_bytes + MiB,
	   "large_bytes grows by at least 1 MiB after hl_malloc(1 MiB)");
	hl_free(p);
	hl_stats_t after = stats();
	is_int((long long)after.large_live, (long long)before.large_live,
	       "large_live counts down by one after hl_free of that block");
	is_int((long long)after.large_bytes, (long long)before.large_bytes,
	       "large_bytes returns to its value before the block");
}

/* Every line "name value": a lower-case name, one space, a decimal. */
static int is_name_value(const char *s, char *name, size_t cap, unsigned long long *value)
{
	size_t n = 0;
	while ((islower((unsigned char)s[n]) || s[n] == '_' || isdigit((unsigned char)s[n])) && n + 1 < cap)
		n++;
	if (n == 0 || s[n] != ' ' || !isdigit((unsigned char)s[n + 1]))
		return 0;
	memcpy(name, s, n);
	name[n] = 0;
	char *end;
	*value = strtoull(s + n + 1, &end, 10);
	return *end == '\n' || *end == 0;
}

static void test_print(void)
{
	FILE *f = tmpfile();
	if (!f) {
		skip(3, "tmpfile failed");
		return;
	}
	/* Our own buffer: in a plain build the stream's buffer would come
	 * from heaplib and could move the counters being printed. */
	static char fbuf[8192];
	setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
	void *keep = hl_malloc(64);
	hl_stats_t st = stats();
	hl_stats_print(f);
	rewind(f);
	char buf[256], name[64];
	int lines = 0, bad = 0, found = 0;
	unsigned long long v, printed_sb = 0;
	/* The counters come first, then the options line ("options" and
	 * key:value pairs), then one line per live region and task. */
	while (fgets(buf, sizeof buf, f) && strncmp(buf, "options ", 8) != 0) {
		lines++;
		if (!is_name_value(buf, name, sizeof name, &v)) {
			if (!bad++)
				diag("line %d is not \"name value\": %s", lines, buf);
			continue;
		}
		if (!strcmp(name, "superblocks_live")) {
			found = 1;
			printed_sb = v;
		}
	}
	fclose(f);
	ok(lines > 0 && bad == 0, "hl_stats_print writes its counters as lines of the form \"name value\" (%d lines)", lines);
	ok(found, "hl_stats_print writes a superblocks_live line");
	is_int((long long)printed_sb, (long long)st.superblocks_live,
	       "the printed superblocks_live equals hl_stats_get's");
	hl_free(keep);
}

static void test_after_trim(void)
{
	enum { N = 100000 };
	void **v = hl_calloc(N, sizeof *v);
	if (!v) {
		skip(6, "no memory for the workload's table");
		return;
	}
	unsigned seed = 7;
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = hl_malloc(16 + (seed >> 8) % 1009);
	}
	hl_stats_t peak = stats();
	for (int i = 0; i < N; i++)
		hl_free(v[i]);
	hl_free(v);
	int trimmed = hl_trim();
	hl_stats_t st = stats();

	is_int(trimmed, 1, "hl_trim returns 1 after 100000 small blocks were freed");
	ok(st.superblocks_live < peak.superblocks_live,
	   "hl_trim retires the emptied superblocks (superblocks_live %llu -> %llu)",
	   (unsigned long long)peak.superblocks_live, (unsigned long long)st.superblocks_live);
	is_int((long long)st.superblocks_live,
	       (long long)(st.superblocks_created - st.superblocks_retired),
	       "superblocks_live == superblocks_created - superblocks_retired");
	is_int((long long)st.descriptors_live,
	       (long long)(st.superblocks_live + st.descriptors_retired_pending),
	       "descriptors_live == superblocks_live + descriptors_retired_pending (no descriptor leaked)");
	ok(st.bytes_purged > peak.bytes_purged,
	   "bytes_purged grows with hl_trim (%llu -> %llu)",
	   (unsigned long long)peak.bytes_purged, (unsigned long long)st.bytes_purged);
	ok(st.tcache_bytes == 0 && st.transfer_bytes == 0,
	   "after hl_trim in a single-threaded program, tcache_bytes and transfer_bytes are 0 (%llu, %llu)",
	   (unsigned long long)st.tcache_bytes, (unsigned long long)st.transfer_bytes);
}

int main(void)
{
	plan(5 + 4 + 3 + 6);
	test_get();
	test_large_counters();
	test_print();
	test_after_trim();
	return done_testing();
}
