/*
 * The page heap is lock-free: a thread parked in the middle of claiming a
 * run (HOOK_LARGE_HEAP_CLAIMING: the run's first word taken, the rest
 * not yet) stops nobody.  Meanwhile the main thread allocates, writes
 * and frees large blocks of the same sizes, all of which succeed; none of
 * them lies on the pages the parked thread holds, and once it goes on,
 * its block is its own.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

#define ASK ((size_t)1 << 20)
#define KEEP 32

static char *a_block;

static void *thread_a(void *arg)
{
	(void)arg;
	park_arm_self();
	a_block = hl_malloc(ASK);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "not ok - with a thread parked mid-claim, the main thread did not finish in 60 s\n";
	(void)!write(1, msg, sizeof msg - 1);
	_exit(1);
}

static int overlap(const char *a, size_t na, const char *b, size_t nb)
{
	return a < b + nb && b < a + na;
}

int main(void)
{
	plan(4);
	hl_trim();
	park_setup(HOOK_LARGE_HEAP_CLAIMING);
	pthread_t t;
	pthread_create(&t, NULL, thread_a, NULL);
	park_wait_parked();

	signal(SIGALRM, on_alarm);
	alarm(60);
	char *keep[KEEP];
	int done = 0, failed = 0;
	for (int r = 0; r < 50; r++) {
		for (int i = 0; i < KEEP; i++) {
			size_t n = i % 2 ? ASK : ASK / 4 + (size_t)i * 4096;
			keep[i] = hl_malloc(n);
			if (!keep[i]) {
				failed++;
				continue;
			}
			memset(keep[i], i, n);
			done++;
		}
		if (r < 49)
			for (int i = 0; i < KEEP; i++)
				hl_free(keep[i]);
	}
	alarm(0);
	ok(done == 50 * KEEP && failed == 0,
	   "with a thread parked mid-claim, %d large mallocs of the same sizes succeed (%d failed)",
	   done, failed);

	park_release();
	pthread_join(t, NULL);
	ok(a_block != NULL, "the parked thread's malloc completes once it goes on");
	int bad = 0;
	for (int i = 0; i < KEEP; i++)
		if (keep[i] && overlap(a_block, ASK, keep[i], hl_usable_size(keep[i])))
			bad++;
	ok(bad == 0, "its block shares no page with the %d blocks made meanwhile (%d do)", KEEP, bad);
	memset(a_block, 0xee, ASK);
	int intact = 1;
	for (int i = 0; i < KEEP; i++)
		for (size_t j = 0; keep[i] && j < hl_usable_size(keep[i]); j += 4096)
			if (keep[i][j] != (char)i)
				intact = 0;
	ok(intact, "writing it leaves every other block intact");
	hl_free(a_block);
	for (int i = 0; i < KEEP; i++)
		hl_free(keep[i]);
	return done_testing();
}
