/*
 * Producer/consumer: producers only allocate, consumers only free what
 * they are handed, through bounded queues.  Blocks arrive intact; after
 * the run and a trim, memory drains back (no superblock stranded FULL).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define QN 1024
#define PAIRS 2

typedef struct queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void *v[QN];
	unsigned head, tail;
	int done;
} queue_t;

static queue_t q[PAIRS];
static long per_producer;
static int errors;

static void *producer(void *arg)
{
	queue_t *qq = &q[(intptr_t)arg];
	unsigned seed = 17u + (unsigned)(intptr_t)arg;
	for (long i = 0; i < per_producer; i++) {
		seed = seed * 1103515245u + 12345u;
		size_t sz = 16 + (seed >> 8) % 496;
		unsigned char *p = hl_malloc(sz);
		if (!p) {
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		memset(p, (int)(sz & 0xff), sz);
		memcpy(p, &sz, sizeof sz);
		pthread_mutex_lock(&qq->mu);
		while (qq->tail - qq->head == QN)
			pthread_cond_wait(&qq->cv, &qq->mu);
		qq->v[qq->tail++ % QN] = p;
		pthread_cond_broadcast(&qq->cv);
		pthread_mutex_unlock(&qq->mu);
	}
	pthread_mutex_lock(&qq->mu);
	qq->done = 1;
	pthread_cond_broadcast(&qq->cv);
	pthread_mutex_unlock(&qq->mu);
	return NULL;
}

static void *consumer(void *arg)
{
	queue_t *qq = &q[(intptr_t)arg];
	for (;;) {
		pthread_mutex_lock(&qq->mu);
		while (qq->tail == qq->head && !qq->done)
			pthread_cond_wait(&qq->cv, &qq->mu);
		if (qq->tail == qq->head && qq->done) {
			pthread_mutex_unlock(&qq->mu);
			return NULL;
		}
		unsigned char *p = qq->v[qq->head++ % QN];
		pthread_cond_broadcast(&qq->cv);
		pthread_mutex_unlock(&qq->mu);
		size_t sz;
		memcpy(&sz, p, sizeof sz);
		int good = sz >= 16 && sz < 512 && hl_usable_size(p) >= sz;
		for (size_t k = sizeof sz; good && k < sz; k++)
			good = p[k] == (unsigned char)(sz & 0xff);
		if (!good)
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		hl_free(p);
	}
}

int main(void)
{
	plan(2);
	per_producer = (long)(400000 * tap_scale());
	if (per_producer < 1000)
		per_producer = 1000;
	hl_stats_t a = { .struct_size = sizeof a };
	hl_stats_get(&a);
	pthread_t t[2 * PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		pthread_mutex_init(&q[i].mu, NULL);
		pthread_cond_init(&q[i].cv, NULL);
		pthread_create(&t[2 * i], NULL, producer, (void *)(intptr_t)i);
		pthread_create(&t[2 * i + 1], NULL, consumer, (void *)(intptr_t)i);
	}
	for (int i = 0; i < 2 * PAIRS; i++)
		pthread_join(t[i], NULL);
	ok(errors == 0, "%ld blocks per producer reached their consumer intact (%d errors)",
	   per_producer, errors);
	hl_trim();
	hl_stats_t b = { .struct_size = sizeof b };
	hl_stats_get(&b);
	ok(b.superblocks_live <= a.superblocks_live + 2 * b.heaps,
	   "consumer-freed superblocks drain back after trim (%llu live, %llu before)",
	   (unsigned long long)b.superblocks_live, (unsigned long long)a.superblocks_live);
	return done_testing();
}
