/*
 * Cross-thread frees: blocks allocated by one thread are freed by another
 * (a ring of threads handing arrays along), in every small class and some
 * large sizes; contents checked at every hand-over.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define NT 4
#define N 512

typedef struct box {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void *v[N];
	size_t sz[N];
	int full;
} box_t;

static box_t boxes[NT];
static int rounds;
static int errors;

static uint64_t pat(const void *p, size_t sz) { return (uintptr_t)p * 0x9e3779b97f4a7c15ull ^ sz; }

static void fill(void *p, size_t sz)
{
	uint64_t x = pat(p, sz);
	memcpy(p, &x, 8);
	memcpy((char *)p + sz - 8, &x, 8);
}

static int check(void *p, size_t sz)
{
	uint64_t x = pat(p, sz), a, b;
	memcpy(&a, p, 8);
	memcpy(&b, (char *)p + sz - 8, 8);
	return a == x && b == x;
}

static void *ring(void *arg)
{
	int id = (int)(intptr_t)arg;
	box_t *out = &boxes[(id + 1) % NT], *in = &boxes[id];
	unsigned seed = (unsigned)id * 7919u + 1;
	for (int r = 0; r < rounds; r++) {
		void *v[N];
		size_t sz[N];
		for (int i = 0; i < N; i++) {
			seed = seed * 1103515245u + 12345u;
			sz[i] = (i % 64 == 0) ? 40000 + (seed >> 8) % 300000 : 16 + (seed >> 8) % 32752;
			v[i] = hl_malloc(sz[i]);
			if (!v[i]) {
				__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
				sz[i] = 0;
				continue;
			}
			fill(v[i], sz[i]);
		}
		pthread_mutex_lock(&out->mu);
		while (out->full)
			pthread_cond_wait(&out->cv, &out->mu);
		memcpy(out->v, v, sizeof v);
		memcpy(out->sz, sz, sizeof sz);
		out->full = 1;
		pthread_cond_broadcast(&out->cv);
		pthread_mutex_unlock(&out->mu);

		pthread_mutex_lock(&in->mu);
		while (!in->full)
			pthread_cond_wait(&in->cv, &in->mu);
		memcpy(v, in->v, sizeof v);
		memcpy(sz, in->sz, sizeof sz);
		in->full = 0;
		pthread_cond_broadcast(&in->cv);
		pthread_mutex_unlock(&in->mu);
		for (int i = 0; i < N; i++) {
			if (v[i] && !check(v[i], sz[i]))
				__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
			hl_free(v[i]);
		}
	}
	return NULL;
}

int main(void)
{
	plan(3);
	rounds = (int)(200 * tap_scale());
	if (rounds < 5)
		rounds = 5;
	for (int i = 0; i < NT; i++) {
		pthread_mutex_init(&boxes[i].mu, NULL);
		pthread_cond_init(&boxes[i].cv, NULL);
	}
	hl_stats_t a = { .struct_size = sizeof a };
	hl_stats_get(&a);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, ring, (void *)(intptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	ok(errors == 0, "%d rounds x %d blocks freed by the next thread in the ring, contents intact (%d errors)",
	   rounds, N * NT, errors);
	hl_stats_t b = { .struct_size = sizeof b };
	hl_stats_get(&b);
	ok(b.large_live == a.large_live, "every large block was freed remotely (%llu live, %llu before)",
	   (unsigned long long)b.large_live, (unsigned long long)a.large_live);
	hl_trim();
	hl_stats_t c = { .struct_size = sizeof c };
	hl_stats_get(&c);
	ok(c.superblocks_live <= a.superblocks_live + 2 * c.heaps,
	   "after trim, remotely freed superblocks were retired (%llu live, %llu before)",
	   (unsigned long long)c.superblocks_live, (unsigned long long)a.superblocks_live);
	return done_testing();
}
