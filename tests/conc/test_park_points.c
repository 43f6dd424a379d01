/*
 * Lock-freedom at the points that matter, deterministically: a thread is
 * parked at each named hook between a read of shared state and its CAS —
 * while it holds a heap's active slot and pops a superblock, while it
 * pushes blocks to a superblock, inside a tagged-stack pop (transfer
 * cache, span cache, descriptor pages), inside a hazard-guarded
 * partial-list pop — and the main thread, on the same heap shard and the
 * same size classes, must complete its operations while it stays parked.
 *
 * One heap shard and no cache budget (set by re-executing the test), so
 * both threads contend for the same slots and lists.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

#define OPS 20000

static int t1_stop;
static sem_t t1_go;

static void *t1_loop(void *arg)
{
	(void)arg;
	void *v[600];
	while (sem_wait(&t1_go) != 0)
		;
	park_arm_self();
	unsigned seed = 3;
	while (!__atomic_load_n(&t1_stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 600; i++) {
			seed = seed * 1103515245u + 12345u;
			v[i] = hl_malloc(i % 2 ? 4096 : 16 + (seed >> 8) % 512);
		}
		for (int i = 0; i < 600; i++)
			hl_free(v[i]);
	}
	return NULL;
}

static int wait_parked(double secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	while (sem_timedwait(&park_parked, &ts) != 0)
		if (errno != EINTR)
			return 0;
	return 1;
}

static const char *cur_point;

static void on_alarm(int sig)
{
	(void)sig;
	char buf[200];
	int n = snprintf(buf, sizeof buf,
			 "not ok - with a thread parked at %s, the main thread did not finish in 60 s\n",
			 cur_point);
	(void)!write(1, buf, (size_t)n);
	_exit(1);
}

static void scenario(const char *point)
{
	cur_point = point;
	sem_init(&t1_go, 0, 0);
	__atomic_store_n(&t1_stop, 0, __ATOMIC_RELEASE);
	pthread_t t;
	pthread_create(&t, NULL, t1_loop, NULL);
	park_setup(point);
	sem_post(&t1_go);
	if (!wait_parked(30)) {
		ok(0, "a thread reaches %s within 30 s", point);
		__atomic_store_n(&t1_stop, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		return;
	}
	/* T1 is parked mid-operation: everything below must complete. */
	alarm(60);
	unsigned seed = 11;
	void *v[600];
	long done = 0;
	for (int r = 0; r < OPS / 1200; r++) {
		for (int i = 0; i < 600; i++) {
			seed = seed * 1103515245u + 12345u;
			v[i] = hl_malloc(i % 2 ? 4096 : 16 + (seed >> 8) % 512);
			if (v[i])
				done++;
		}
		for (int i = 0; i < 600; i++) {
			hl_free(v[i]);
			done++;
		}
	}
	hl_thread_flush();
	alarm(0);
	ok(done >= OPS - 1200, "a thread parked at %s: the other completed %ld mallocs and frees of the same classes on the same heap",
	   point, done);
	__atomic_store_n(&t1_stop, 1, __ATOMIC_RELEASE);
	park_release();
	pthread_join(t, NULL);
	__atomic_store_n(&lf_hook_callback, NULL, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_HEAPS", "1", "HEAPLIB_CACHE_BUDGET", "0", (char *)NULL);
	static const char *points[] = {
		HOOK_SB_POP_READ,
		HOOK_SB_PUSH_READ,
		HOOK_TSTACK_POP_READ,
		HOOK_TSTACK_GUARD_READ,
	};
	int n = (int)(sizeof points / sizeof points[0]);
	plan(n);
	signal(SIGALRM, on_alarm);
	for (int i = 0; i < n; i++)
		scenario(points[i]);
	return done_testing();
}
