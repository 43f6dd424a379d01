/*
 * large_realloc never leaves a range-table entry naming memory the kernel
 * may hand to someone else.  Thread A grows a large block that cannot grow
 * in place, and is parked at the hook right after its pages have moved
 * (HOOK_LARGE_REALLOC_MOVED), before it has finished with the old entry.
 *
 * Moving path: meanwhile the main thread (B) allocates blocks of the old
 * size until the kernel gives it the old address, frees that block and
 * allocates half of it again (from the large cache).  Every block must
 * then report its own usable size and none may overlap another or A's
 * block; a stale entry for the old address would win the lookups and make
 * the next malloc return memory inside a live block.
 *
 * Warm-cache path: a concurrent free of the block being reallocated (a
 * double free) must abort, never give the old mapping back twice.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "mem/mem.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

#define LEN ((size_t)1 << 20)
#define TRIES 512

static char *a_old, *a_new;

static void *thread_a(void *arg)
{
	(void)arg;
	park_arm_self();
	a_new = hl_realloc(a_old, 2 * LEN);
	return NULL;
}

static void fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = (char)(i / 512 * 7 + seed);
}

static int intact(const char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 512)
		if (p[i] != (char)(i / 512 * 7 + seed))
			return 0;
	return 1;
}

/* Keep the block from growing in place: one page of ours right after it
 * (or somebody's mapping already there). */
static void *block_growth(char *p, size_t len)
{
	void *g = mmap(p + len, HL_PAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	return g == MAP_FAILED ? NULL : g;
}

static int overlap(const char *a, size_t na, const char *b, size_t nb)
{
	return a < b + nb && b < a + na;
}

/* ---- warm-cache path: a racing free of the old block ------------------- */

static void warm_race(void *arg)
{
	(void)arg;
	hl_trim();
	hl_free(hl_malloc(4 * LEN));   /* a warm mapping for the growth */
	a_old = hl_malloc(LEN);
	fill(a_old, LEN, 3);
	park_setup(HOOK_LARGE_REALLOC_MOVED);
	pthread_t t;
	pthread_create(&t, NULL, thread_a, NULL);
	park_wait_parked();
	hl_free(a_old);     /* the program's bug: it must abort here */
	park_release();
	pthread_join(t, NULL);
	char *x = hl_malloc(LEN), *y = hl_malloc(LEN);
	fprintf(stderr, "free did not abort; two mallocs then returned %p and %p\n",
		(void *)x, (void *)y);
}

int main(void)
{
	plan(9);
	lheap_test_set_max(0);   /* every block a mapping of its own: the paths here */
	tap_expect_abort(warm_race, NULL, "invalid pointer",
			 "a free racing the warm-cache realloc of the same block aborts (invalid pointer)");

	hl_trim();          /* no warm mapping: the realloc must move */
	a_old = hl_malloc(LEN);
	fill(a_old, LEN, 1);
	void *guard = block_growth(a_old, LEN);
	park_setup(HOOK_LARGE_REALLOC_MOVED);
	pthread_t t;
	pthread_create(&t, NULL, thread_a, NULL);
	park_wait_parked();

	/* B: the old range is the kernel's again; get it back by malloc. */
	char *got[TRIES], *b = NULL;
	int n = 0;
	while (n < TRIES && !b) {
		got[n] = hl_malloc(LEN);
		if (got[n] == a_old)
			b = got[n];
		n++;
	}
	char *b1 = NULL;
	if (b) {
		hl_free(b);
		got[n - 1] = NULL;
		b1 = hl_malloc(LEN / 2);
	}
	park_release();
	pthread_join(t, NULL);
	char *b2 = hl_malloc(LEN / 2);

	ok(a_new && a_new != a_old && intact(a_new, LEN, 1),
	   "A's block moved (%p -> %p) with its contents", (void *)a_old, (void *)a_new);
	is_int((long long)hl_usable_size(a_new), (long long)(2 * LEN), "A's block is 2 MiB");
	if (!b) {
		void *m = mmap(a_old, LEN, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		diag("the kernel did not hand the old address to %d mallocs (free to map: %s)",
		     TRIES, m == a_old ? "yes" : "no");
		if (m != MAP_FAILED)
			munmap(m, LEN);
		skip(6, "the old address never came back");
		return done_testing();
	}
	diag("B got the old address after %d mallocs", n);
	ok(b1 == a_old, "B's half-size block comes from the cache at the old address");
	is_int((long long)hl_usable_size(b1), (long long)(LEN / 2),
	       "B's block at the old address reports its own size (512 KiB)");
	is_int((long long)hl_usable_size(b2), (long long)(LEN / 2),
	       "B's second half-size block reports 512 KiB");

	/* Each as long as heaplib says it is. */
	int bad = 0;
	char *live[TRIES + 3];
	size_t len[TRIES + 3];
	int nl = 0;
	live[nl++] = a_new;
	live[nl++] = b1;
	live[nl++] = b2;
	for (int i = 0; i < n; i++)
		if (got[i])
			live[nl++] = got[i];
	for (int i = 0; i < nl; i++)
		len[i] = hl_usable_size(live[i]);
	for (int i = 0; i < nl; i++)
		for (int j = i + 1; j < nl; j++)
			if (overlap(live[i], len[i], live[j], len[j])) {
				diag("%p+%zu overlaps %p+%zu", (void *)live[i], len[i],
				     (void *)live[j], len[j]);
				bad++;
			}
	ok(!bad, "no two live blocks overlap, by their usable sizes (%d pairs do)", bad);

	/* Free B's first block; a malloc of its old size must not return
	 * memory that B's second block still holds. */
	hl_free(b1);
	char *b3 = hl_malloc(LEN);
	ok(b3 && !overlap(b3, LEN, b2, LEN / 2) && !overlap(b3, LEN, a_new, 2 * LEN),
	   "after a free, a 1 MiB malloc (%p) lies inside no live block", (void *)b3);
	fill(b2, LEN / 2, 5);
	fill(b3, LEN, 6);
	ok(intact(b2, LEN / 2, 5) && intact(a_new, LEN, 1),
	   "writing the new block leaves the live ones intact");

	hl_free(b3);
	hl_free(b2);
	hl_free(a_new);
	for (int i = 0; i < n; i++)
		hl_free(got[i]);
	if (guard)
		munmap(guard, HL_PAGE);
	return done_testing();
}
