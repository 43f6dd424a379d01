/*
 * Misuse that means the heap is already wrong aborts with one line:
 *
 *     heaplib: CALL(0xPOINTER): REASON
 *
 * (DESIGN.md section 7).  Each case runs in a forked child through
 * tap_expect_abort, which passes only if the child died of SIGABRT and its
 * stderr holds the expected text.  Where the pointer is known in advance
 * the expected text is the whole prefix of the line, pointer included.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)

/* "heaplib: CALL(0xPTR): REASON" up to and including the reason given. */
static const char *line(const char *call, const void *p, const char *reason)
{
	static char buf[8][160];
	static int next;
	char *b = buf[next++ & 7];
	snprintf(b, sizeof buf[0], "heaplib: %s(0x%lx): %s", call,
		 (unsigned long)(uintptr_t)p, reason);
	return b;
}

static void do_free(void *p) { hl_free(p); }

static void do_free_twice(void *p)
{
	hl_free(p);
	hl_free(p);
}

/* The block goes back to its superblock, which hl_trim retires (it was
 * the class's only block); the second free finds no live block there. */
static void do_free_trim_free(void *p)
{
	hl_free(p);
	hl_trim();
	hl_free(p);
}

static void do_usable_size(void *p)
{
	volatile size_t n = hl_usable_size(p);
	(void)n;
}

static void do_realloc(void *p)
{
	void *volatile q = hl_realloc(p, 200);
	(void)q;
}

/* realloc of a block that sits freed in the thread cache (a shrink that
 * would keep it in place). */
static void do_free_realloc(void *p)
{
	hl_free(p);
	void *volatile q = hl_realloc(p, 60);
	(void)q;
}

/* free(a); free(b); free(a) in a thread's first calls, on blocks another
 * thread allocated. */
static void *abafree_thread(void *arg)
{
	void **v = arg;
	hl_free(v[0]);
	hl_free(v[1]);
	hl_free(v[0]);
	return NULL;
}

static void do_free_aba_new_thread(void *arg)
{
	pthread_t t;
	pthread_create(&t, NULL, abafree_thread, arg);
	pthread_join(t, NULL);
}

/* A double free long after the first: the block went back to its
 * superblock (hl_trim drains every cache) before it is freed again. */
static void do_free_trim_free_live(void *arg)
{
	void **v = arg;
	hl_free(v[0]);
	hl_trim();
	hl_free(v[0]);
	hl_trim();
}

/* Run fn(arg) in a new thread that first joins a task of its own (it
 * then runs without a thread cache). */
struct in_task { void (*fn)(void *); void *arg; };

static void *task_thread(void *arg)
{
	struct in_task *it = arg;
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "t" };
	hl_task_t *t;
	hl_task_create(&ta, &t);
	hl_task_join(t);
	it->fn(it->arg);
	return NULL;
}

static void in_task_thread(void (*fn)(void *), void *arg)
{
	struct in_task it = { fn, arg };
	pthread_t t;
	pthread_create(&t, NULL, task_thread, &it);
	pthread_join(t, NULL);
}

/* A malloc block freed twice: the second push finds its free bit set. */
static void do_task_free_twice(void *arg) { in_task_thread(do_free_twice, arg); }

/* Freed once: free's fast path finds the check constants of a bin that
 * passes no offset, and the block goes to the slow paths, which must
 * still catch the misuse (hl_free_unproven, then sb_free_one's check). */
static void do_task_free(void *arg) { in_task_thread(do_free, arg); }

/* Use after free: half of 5000 blocks of 48 bytes are freed and pushed
 * back into their superblocks (hl_trim drains the thread and transfer
 * caches; the superblocks stay, being half full).  Their first 16 bytes
 * are then overwritten, and allocating again must trip the check made
 * before a free-list link is followed. */

int main(void)
{
	plan(19);

	int on_stack = 0;
	tap_expect_abort(do_free, &on_stack, line("free", &on_stack, "invalid pointer"),
			 "hl_free of a stack address aborts: free(PTR): invalid pointer");

	char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		skip(1, "mmap failed");
	} else {
		tap_expect_abort(do_free, m + 256, line("free", m + 256, "invalid pointer"),
				 "hl_free of a pointer into a mapping heaplib does not own aborts: invalid pointer");
		munmap(m, 65536);
	}

	/* Above the 47 bits of the address space: the page map's index
	 * would be far past its end if the one bound on it were missing. */
	char *high = (char *)((uintptr_t)1 << 62);
	tap_expect_abort(do_free, high, line("free", high, "invalid pointer"),
			 "hl_free of a pointer above the address space aborts: invalid pointer");

	/* 48-byte blocks: a superblock is one 64 KiB slot, 1365 blocks
	 * (65520 bytes) and 16 bytes over.  Its offset 65520 is a multiple
	 * of 48 where no block is, which free's one-compare check must
	 * tell from a block (base/base.h, sc_is_block). */
	char *s48 = hl_malloc(48);
	char *past = (char *)((uintptr_t)s48 & ~(uintptr_t)0xffff) + 65520;
	tap_expect_abort(do_free, past, line("free", past, "interior pointer"),
			 "hl_free of the multiple of 48 past the last 48-byte block of a superblock aborts: interior pointer");

	tap_expect_abort(do_task_free, past, line("free", past, "interior pointer"),
			 "the same free from a thread without a cache (another task's) aborts: interior pointer");

	char *s64 = hl_malloc(64), *s4k = hl_malloc(4096), *l1m = hl_malloc(MiB);
	tap_expect_abort(do_free, s64 + 8, line("free", s64 + 8, "interior pointer"),
			 "hl_free(p + 8) of a 64-byte block aborts: interior pointer");
	tap_expect_abort(do_free, s4k + 16, line("free", s4k + 16, "interior pointer"),
			 "hl_free(p + 16) of a 4 KiB block aborts: interior pointer");
	tap_expect_abort(do_free, l1m + 4096, line("free", l1m + 4096, "interior pointer"),
			 "hl_free(p + 4096) of a 1 MiB block aborts: interior pointer");
	tap_expect_abort(do_free, l1m + 100, line("free", l1m + 100, "interior pointer"),
			 "hl_free(p + 100) of a 1 MiB block aborts: interior pointer");

	tap_expect_abort(do_free_twice, s64, line("free", s64, "double free"),
			 "hl_free twice in a row of a small block aborts: double free");
	/* A freed large block is gone from the range table: either reason
	 * is right, as long as the line names free and the pointer. */
	tap_expect_abort(do_free_twice, l1m, line("free", l1m, ""),
			 "hl_free twice in a row of a large block aborts, naming free and the pointer");

	char *lone = hl_malloc(28000);
	tap_expect_abort(do_free_trim_free, lone, line("free", lone, ""),
			 "hl_free of a small block after hl_trim retired its superblock aborts, naming free and the pointer");

	tap_expect_abort(do_usable_size, &on_stack,
			 line("malloc_usable_size", &on_stack, "invalid pointer"),
			 "hl_usable_size of a stack address aborts: malloc_usable_size(PTR): invalid pointer");
	tap_expect_abort(do_realloc, s64 + 8, line("realloc", s64 + 8, "interior pointer"),
			 "hl_realloc(p + 8, 200) of a 64-byte block aborts: realloc(PTR): interior pointer");
	tap_expect_abort(do_realloc, l1m + 4096, line("realloc", l1m + 4096, "interior pointer"),
			 "hl_realloc(p + 4096, 200) of a 1 MiB block aborts: realloc(PTR): interior pointer");

	char *r64 = hl_malloc(64);
	tap_expect_abort(do_free_realloc, r64, line("realloc", r64, "block is already free"),
			 "hl_realloc(p, 60) of a 64-byte block already freed into the thread cache aborts: realloc(PTR): block is already free");
	void *ab[2] = { hl_malloc(64), hl_malloc(64) };
	tap_expect_abort(do_free_aba_new_thread, ab, line("free", ab[0], "double free"),
			 "free(a); free(b); free(a) as a new thread's first calls aborts: free(a): double free");

	/* Other blocks keep the superblock alive, so the freed one stays
	 * free in it. */
	void *keep[3] = { hl_malloc(96), hl_malloc(96), hl_malloc(96) };
	tap_expect_abort(do_free_trim_free_live, keep, line("free", keep[0], "double free (block is already free)"),
			 "free(p); hl_trim(); free(p): the second free aborts at once: free(p): double free (block is already free)");
	void *tb = hl_malloc(200);
	tap_expect_abort(do_task_free_twice, tb, line("free", tb, "double free (block is already free)"),
			 "a task thread (no cache) freeing a malloc block twice aborts: free(p): double free (block is already free)");

	hl_free(s48);
	hl_free(s64);
	hl_free(s4k);
	hl_free(l1m);
	hl_free(lone);
	return done_testing();
}
