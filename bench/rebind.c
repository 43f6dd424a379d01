/*
 * bench/rebind: backing moves (mem/rebind.c) measured, for issue 10's
 * benchmark: move latency p50/p99 for 64 KiB and 512 KiB spans, idle and
 * under one writer storing across the span, and the writer's stalls (a
 * store that took over 5 us: the kernel held it, or it faulted) p50/p99/
 * max.  Not a test: it prints figures.
 *   bench/rebind [moves]      (default 3000 per case)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/mem.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
	return n ? v[(long)((double)(n - 1) * p)] : 0;
}

static char *volatile span;
static size_t span_len;
static int stop;
static double *stall;
static long nstall, maxstall = 1 << 20;

static void *writer(void *arg)
{
	(void)arg;
	uint64_t v = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (size_t o = 0; o < span_len; o += 256) {
			double t0 = now_us();
			*(volatile uint64_t *)(span + o) = ++v;
			double d = now_us() - t0;
			if (d > 5 && nstall < maxstall)
				stall[nstall++] = d;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long moves = argc > 1 ? atol(argv[1]) : 3000;
	hl_free(hl_malloc(1));
	const char *why;
	if (rb_probe(&why) != HL_OK) {
		printf("backing moves unavailable: %s\n", why);
		return 0;
	}
	bk_t *mfd = bk_at(HL_MAX_REGIONS - 1), *anon = bk_at(HL_MAX_REGIONS - 2);
	if (bk_setup(mfd, HL_BACKING_MEMFD, 8u << 20, 0, NULL, "bench") != HL_OK)
		return 1;
	hl_budget_t budget = { 0, 0 };
	hl_account_t am = { mfd, &budget, 0 };
	double *lat = malloc(sizeof *lat * (size_t)moves);
	stall = malloc(sizeof *stall * (size_t)maxstall);
	printf("%-8s %-6s %7s %9s %9s %8s %10s %10s %10s\n", "span", "load", "moves",
	       "move_p50", "move_p99", "stalls", "stall_p50", "stall_p99", "stall_max");
	for (unsigned order = 0; order <= 3; order += 3) {
		for (int loaded = 0; loaded < 2; loaded++) {
			uint32_t sp;
			int err;
			char *b = bk_span_get(&am, order, &sp, &err);
			span_len = HL_SLOT_SIZE << order;
			memset(b, 1, span_len);
			span = b;
			nstall = 0;
			stop = 0;
			pthread_t t;
			if (loaded)
				pthread_create(&t, NULL, writer, NULL);
			long n = 0;
			for (long i = 0; i < moves; i++) {
				double t0 = now_us();
				int e = bk_span_move(b, order, i % 2 ? mfd : anon, &why);
				double d = now_us() - t0;
				if (e == HL_OK)
					lat[n++] = d;
			}
			__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
			if (loaded)
				pthread_join(t, NULL);
			qsort(lat, (size_t)n, sizeof *lat, cmp);
			qsort(stall, (size_t)nstall, sizeof *stall, cmp);
			printf("%-8s %-6s %7ld %9.1f %9.1f %8ld %10.1f %10.1f %10.1f\n",
			       order ? "512KiB" : "64KiB", loaded ? "writer" : "idle", n,
			       pct(lat, n, .5), pct(lat, n, .99), nstall, pct(stall, nstall, .5),
			       pct(stall, nstall, .99), nstall ? stall[nstall - 1] : 0.0);
			if (bk_span_backing(b, &(uint64_t){ 0 }) == NULL)
				bk_span_move(b, order, mfd, &why);
			bk_span_put(&am, b, sp, order);
		}
	}
	printf("(times in us; a stall is a store that took over 5 us)\n");
	bk_release(mfd);
	return 0;
}
