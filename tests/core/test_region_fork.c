/*
 * fork and heaplib's own state:
 *  1. a child forked while a parent thread is parked inside an allocation
 *     in region R can delete R at once (the parent thread's inflight
 *     count does not exist in the child);
 *  2. a child forked while a parent thread is in the middle of heaplib's
 *     first initialization starts again on its own instead of waiting
 *     for a thread it does not have;
 *  3. a memfd region made to be shared (hl_region_attr_t.shared) stays
 *     the parent's heap: in the child hl_alloc there is HL_EPERM and a
 *     free of one of its blocks aborts with a line naming it, while the
 *     parent goes on using the region.  (An unshared one gives the child
 *     a private copy: tests/api/test_migrate_fork.)
 * Each child has an alarm: one that hangs is killed and counted a failure.
 * (ThreadSanitizer kills the children of threaded parents by design: part
 * 1 is skipped there.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

static hl_region_t *reg;

static void *parked_alloc(void *arg)
{
	(void)arg;
	hl_place_t pl = { .region = reg, .node = -1 };
	void *p = NULL;
	park_arm_self();
	hl_alloc(48, &pl, 0, &p);
	hl_free(p);
	return NULL;
}

/* Run fn in a child with a 10 s alarm; its exit status (-1: killed). */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10);
		_exit(fn());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The child's exit status: 10 + what hl_region_delete returned.  It may
 * be HL_EBUSY: the superblock that the parked thread held is in no slot
 * or list the child can reach. */
static int child_delete(void)
{
	return 10 + hl_region_delete(reg);
}

static void test_inflight(void)
{
#ifdef __SANITIZE_THREAD__
	skip(1, "ThreadSanitizer kills the children of threaded parents");
#else
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "forked" };
	if (hl_region_create(&ra, &reg) != HL_OK)
		bail_out("hl_region_create failed");
	park_setup(HOOK_SB_POP_READ);
	pthread_t t;
	pthread_create(&t, NULL, parked_alloc, NULL);
	park_wait_parked();
	int st = in_child(child_delete);
	park_release();
	pthread_join(t, NULL);
	__atomic_store_n(&lf_hook_callback, NULL, __ATOMIC_RELEASE);
	ok(st == 10 + HL_OK || st == 10 + HL_EBUSY,
	   "a child forked while a parent thread was inside an allocation in R gets an answer from hl_region_delete(R) at once, no hang (status %d)",
	   st);
	hl_region_delete(reg);
#endif
}

/* As if the fork had come while a thread of the parent (another process)
 * was initializing: the child must not wait for it. */
static int child_init_again(void)
{
	lf_store_release(&hl_inited, 1);
	extern pid_t hl_test_init_pid_set(pid_t);
	hl_test_init_pid_set(getppid());
	hl_init_slow();
	if (lf_load_acquire(&hl_inited) != 2)
		return 1;
	void *p = hl_malloc(100), *q = hl_malloc(100000);
	if (!p || !q)
		return 2;
	hl_free(p);
	hl_free(q);
	return 0;
}

static void test_init(void)
{
	int st = in_child(child_init_again);
	ok(st == 0, "a child whose parent was mid-initialization initializes on its own (status %d)", st);
}

static hl_region_t *shared;
static char *parent_block;

static int child_alloc_shared(void)
{
	hl_place_t pl = { .region = shared, .node = -1 };
	void *p = NULL;
	int e = hl_alloc(64, &pl, 0, &p);
	int reset = hl_region_reset(shared);
	/* Its block is live in the parent: the child still drops its view. */
	int del = hl_region_delete(shared);
	return e == HL_EPERM && p == NULL && reset == HL_EPERM && del == HL_OK ? 0 : 1;
}

static void child_free_shared(void *p)
{
	hl_free(p);
}

static void test_memfd(void)
{
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "shared",
				.backing = HL_BACKING_MEMFD, .capacity = 1 << 20, .shared = 1 };
	if (hl_region_create(&ra, &shared) != HL_OK) {
		skip(3, "no memfd region here");
		return;
	}
	hl_place_t pl = { .region = shared, .node = -1 };
	hl_alloc(64, &pl, 0, (void **)&parent_block);
	strcpy(parent_block, "parent's");
	int st = in_child(child_alloc_shared);
	ok(st == 0, "in a child, hl_alloc in a memfd region is HL_EPERM, so is its reset, and its delete drops the child's view (status %d)", st);
	char want[160];
	snprintf(want, sizeof want, "heaplib: free(%p): block of a region shared with the parent process",
		 (void *)parent_block);
	tap_expect_abort(child_free_shared, parent_block, want,
			 "in a child, free of a memfd region's block aborts: free(PTR): block of a region shared with the parent process");
	void *more = NULL;
	int e = hl_alloc(64, &pl, 0, &more);
	ok(e == HL_OK && strcmp(parent_block, "parent's") == 0,
	   "the parent goes on allocating there, its block intact");
	hl_free(more);
	hl_free(parent_block);
	hl_region_delete(shared);
}

int main(void)
{
	plan(5);
	test_inflight();
	test_init();
	test_memfd();
	return done_testing();
}
