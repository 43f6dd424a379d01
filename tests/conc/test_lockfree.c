/*
 * Lock-freedom: one thread is stopped by a signal at random points while
 * it is inside hl_malloc / hl_free / hl_realloc (the handler parks it
 * until told to go on), at least 200 times; during every park the other
 * threads, allocating from the same heap shard and classes, must complete
 * operations.  The test runs with one heap shard and no cache budget
 * (HEAPLIB_HEAPS=1, HEAPLIB_CACHE_BUDGET=0, set by re-executing itself),
 * so the parked thread often holds shared structures: an active slot, a
 * superblock it is popping, a partial-list or transfer-cache head.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define NW 2
#define PROGRESS 2000

static volatile sig_atomic_t in_call;
static int parked_inside, handler_done, go;
static uint64_t work_ops;
static int stop;

static void nap_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	if (in_call) {
		__atomic_store_n(&parked_inside, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&handler_done, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
			nap_us(20);
		__atomic_store_n(&go, 0, __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&parked_inside, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&handler_done, 1, __ATOMIC_RELEASE);
	}
	errno = saved;
}

static size_t pick(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	unsigned r = *seed >> 8;
	if (r % 50 == 0)
		return 40000 + r % 200000;
	return 16 + r % 1024;
}

static void *victim(void *arg)
{
	(void)arg;
	unsigned seed = 1;
	void *v[300] = { 0 };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 300; i++) {
			size_t sz = pick(&seed);
			in_call = 1;
			v[i] = hl_malloc(sz);
			in_call = 0;
		}
		for (int i = 0; i < 300; i += 3) {
			in_call = 1;
			void *q = hl_realloc(v[i], pick(&seed));
			in_call = 0;
			if (q)
				v[i] = q;
		}
		for (int i = 0; i < 300; i++) {
			in_call = 1;
			hl_free(v[i]);
			in_call = 0;
		}
	}
	return NULL;
}

static void *worker(void *arg)
{
	unsigned seed = 100 + (unsigned)(intptr_t)arg;
	void *v[64] = { 0 };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 64; i++)
			v[i] = hl_malloc(pick(&seed));
		for (int i = 0; i < 64; i++)
			hl_free(v[i]);
		__atomic_add_fetch(&work_ops, 128, __ATOMIC_RELAXED);
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_HEAPS", "1", "HEAPLIB_CACHE_BUDGET", "0", (char *)NULL);
#if defined(__SANITIZE_THREAD__)
	plan_skip_all("ThreadSanitizer defers signals to its own safe points");
	return 0;
#endif
	plan(3);
	int want = (int)(200 * (tap_scale() < 1 ? 1 : tap_scale()));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	pthread_t vt, wt[NW];
	pthread_create(&vt, NULL, victim, NULL);
	for (int i = 0; i < NW; i++)
		pthread_create(&wt[i], NULL, worker, (void *)(intptr_t)i);

	int inside = 0, stalled = 0, attempts = 0;
	double worst = 0;
	unsigned seed = 7;
	while (inside < want && attempts < 200 * want) {
		attempts++;
		seed = seed * 1103515245u + 12345u;
		nap_us((seed >> 8) % 300);
		__atomic_store_n(&handler_done, 0, __ATOMIC_RELEASE);
		pthread_kill(vt, SIGUSR1);
		while (!__atomic_load_n(&handler_done, __ATOMIC_ACQUIRE))
			nap_us(10);
		if (!__atomic_load_n(&parked_inside, __ATOMIC_ACQUIRE))
			continue;
		inside++;
		uint64_t start = __atomic_load_n(&work_ops, __ATOMIC_RELAXED);
		double t0 = now_s(), t;
		while (__atomic_load_n(&work_ops, __ATOMIC_RELAXED) < start + PROGRESS &&
		       (t = now_s()) - t0 < 10.0)
			nap_us(50);
		t = now_s() - t0;
		if (t > worst)
			worst = t;
		if (__atomic_load_n(&work_ops, __ATOMIC_RELAXED) < start + PROGRESS) {
			stalled++;
			diag("park %d: others made %llu ops in 10 s", inside,
			     (unsigned long long)(__atomic_load_n(&work_ops, __ATOMIC_RELAXED) - start));
		}
		__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&go, __ATOMIC_ACQUIRE))
			nap_us(10);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(vt, NULL);
	for (int i = 0; i < NW; i++)
		pthread_join(wt[i], NULL);
	diag("%d parks inside the allocator out of %d signals; slowest park saw %d ops after %.3f s",
	     inside, attempts, PROGRESS, worst);
	ok(inside >= want, "the thread was parked inside malloc/free/realloc %d times (want %d)", inside, want);
	ok(stalled == 0, "during every park the other threads completed %d operations (%d parks stalled)",
	   PROGRESS, stalled);
	ok(__atomic_load_n(&work_ops, __ATOMIC_RELAXED) > 0, "workers ran");
	return done_testing();
}
