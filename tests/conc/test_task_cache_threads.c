/*
 * Task caches under concurrency (through hl_* only, so the TSan build runs
 * it): four threads, two in a task with a quota and two in a task without,
 * each replacing blocks of 16 B to 2 KiB in a ring and handing one block
 * in eight to a shared mailbox, from which any thread (of either task)
 * takes and frees another's block; a third task's threads join and leave
 * meanwhile.  Checked: every block keeps its pattern until it is freed;
 * the quota is never exceeded (read while the threads run); and once the
 * threads are gone
 * every task and the default region hold nothing: every cached block went
 * home at its thread's exit.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplib.h"
#include "tap.h"

#define NT 4
#define RING 128
#define MAIL 64
#define QUOTA (8u << 20)

static hl_task_t *task[3];
static _Atomic(void *) mail[MAIL];
static atomic_int corrupt, refused, over_quota;
static int rounds;

static uint8_t tag_of(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	return (uint8_t)(v >> 4 ^ v >> 12);
}

static void stamp(unsigned char *p, size_t n)
{
	memset(p, tag_of(p), n < 48 ? n : 48);
}

static void check_free(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < (n < 48 ? n : 48); i++)
		if (p[i] != tag_of(p)) {
			atomic_fetch_add(&corrupt, 1);
			break;
		}
	hl_free(p);
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	unsigned char *ring[RING] = { 0 };
	size_t sz[RING] = { 0 };
	uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
	hl_task_join(task[id % 2]);
	for (int r = 0; r < rounds; r++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		unsigned i = (unsigned)(rng % RING);
		if (ring[i])
			check_free(ring[i], sz[i]);
		sz[i] = 16 + (size_t)(rng >> 20) % 2032;
		ring[i] = hl_malloc(sz[i]);
		if (!ring[i]) {
			atomic_fetch_add(&refused, 1);
			continue;
		}
		stamp(ring[i], sz[i]);
		if (r % 8 == 0) {
			/* Hand it on; free what another thread left there.  A
			 * block in the mailbox is stamped over its first 16
			 * bytes only, which every size has. */
			unsigned char *q = atomic_exchange(&mail[(rng >> 40) % MAIL], ring[i]);
			ring[i] = q;
			sz[i] = q ? 16 : 0;
		}
		if (r % 4096 == 0) {
			hl_task_stats_t s = { .struct_size = sizeof s };
			hl_task_stats(task[0], NULL, &s);
			if (s.bytes_backed > QUOTA)
				atomic_fetch_add(&over_quota, 1);
		}
		if (id == NT - 1 && r % 1024 == 512) {
			/* Leave for a third task and come back: the join
			 * flushes this thread's cache both ways. */
			hl_task_join(task[2]);
			void *p = hl_malloc(100);
			hl_free(p);
			hl_task_join(task[id % 2]);
		}
	}
	for (int i = 0; i < RING; i++)
		if (ring[i])
			check_free(ring[i], sz[i]);
	return NULL;
}

int main(void)
{
	rounds = (int)(100000 * tap_scale());
	hl_task_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.quota = QUOTA;
	hl_task_create(&a, &task[0]);
	a.quota = 0;
	hl_task_create(&a, &task[1]);
	hl_task_create(&a, &task[2]);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < MAIL; i++) {
		unsigned char *q = atomic_exchange(&mail[i], NULL);
		if (q)
			check_free(q, 16);
	}
	ok(corrupt == 0 && refused == 0,
	   "%d threads of two tasks, %d rounds each, blocks handed between them: all intact (%d), "
	   "none refused (%d)", NT, rounds, (int)corrupt, (int)refused);
	ok(over_quota == 0, "the task with an 8 MiB quota never had more backed (%d)", (int)over_quota);
	int held = 0;
	for (int i = 0; i < 3; i++) {
		hl_task_stats_t s = { .struct_size = sizeof s };
		hl_task_stats(task[i], NULL, &s);
		held += s.blocks_live != 0 || s.bytes_live != 0;
	}
	hl_region_stats_t r = { .struct_size = sizeof r };
	hl_region_stats(hl_region_default(), &r);
	ok(held == 0 && r.blocks_live == 0 && r.bytes_live == 0,
	   "threads gone: no task holds a block, nor the default region (%llu blocks), so every "
	   "cached block went home", (unsigned long long)r.blocks_live);
	ok(r.allocs == r.frees, "every block that left a superblock came back (%llu, %llu)",
	   (unsigned long long)r.allocs, (unsigned long long)r.frees);
	int destroyed = 0;
	for (int i = 0; i < 3; i++)
		destroyed += hl_task_destroy(task[i]) == HL_OK;
	ok(destroyed == 3, "and the tasks are destroyed");
	return done_testing();
}
