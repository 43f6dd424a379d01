/*
 * Thread caches are numbered from a counter with a bound (the pool's
 * size).  A cache that cannot be made (its map fails) spends no number,
 * so threads get caches again once memory is back; at the bound, threads
 * run without one and the counter stays at its bound.
 *
 * The counter is seeded one short of its bound; each thread makes 100
 * small mallocs, every one of which asks for a cache while it has none.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <semaphore.h>

#include "core/core.h"
#include "tap.h"

static sem_t done, go_on;

static void *worker(void *arg)
{
	int *had = arg;
	for (int i = 0; i < 100; i++)
		hl_free(hl_malloc(48));
	*had = tc_mine() != NULL;
	sem_post(&done);
	while (sem_wait(&go_on) != 0)
		;   /* keep the cache (if any) out of the pool */
	return NULL;
}

static pthread_t start(int *had)
{
	pthread_t t;
	if (pthread_create(&t, NULL, worker, had) != 0)
		bail_out("pthread_create failed");
	while (sem_wait(&done) != 0)
		;
	return t;
}

int main(void)
{
	plan(5);
	sem_init(&done, 0, 0);
	sem_init(&go_on, 0, 0);
	hl_free(hl_malloc(48));
	tc_test_seed_pool(1);

	int had1 = -1, had2 = -1, had3 = -1;
	os_test_fail_maps(-1);
	pthread_t t1 = start(&had1);
	os_test_fail_maps(0);
	ok(had1 == 0, "a thread whose cache cannot be mapped runs without one");
	is_int(tc_test_pool_left(), 1, "its 100 failed attempts spend no cache number");

	pthread_t t2 = start(&had2);
	ok(had2 == 1, "once maps work, a new thread gets the last cache");
	pthread_t t3 = start(&had3);
	ok(had3 == 0, "at the bound, the next thread runs without one");
	is_int(tc_test_pool_left(), 0, "and the counter stays at its bound");

	for (int i = 0; i < 3; i++)
		sem_post(&go_on);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_join(t3, NULL);
	return done_testing();
}
