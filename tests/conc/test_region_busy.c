/*
 * A refused hl_region_delete changes nothing, not even for a moment:
 * while one thread keeps asking to delete a region that holds a block
 * that cannot move (HL_NOMIGRATE: the evacuation is refused at planning,
 * HL_EBUSY every time), another allocates and frees in that region and
 * is never refused.  (Through hl_* only, so the TSan build runs it.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "heaplib.h"
#include "tap.h"

static hl_region_t *reg;
static int stop;
static long refused, served;

static void *allocator(void *arg)
{
	(void)arg;
	hl_place_t pl = { .region = reg, .node = -1 };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		void *p = NULL;
		if (hl_alloc(64, &pl, 0, &p) != HL_OK) {
			__atomic_fetch_add(&refused, 1, __ATOMIC_RELEASE);
			continue;
		}
		__atomic_fetch_add(&served, 1, __ATOMIC_RELEASE);
		hl_free(p);
	}
	return NULL;
}

int main(void)
{
	plan(3);
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "busy", .capacity = 1 << 20 };
	if (hl_region_create(&ra, &reg) != HL_OK)
		bail_out("hl_region_create failed");
	hl_place_t pl = { .region = reg, .node = -1 };
	void *pin = NULL;
	if (hl_alloc(32, &pl, HL_NOMIGRATE, &pin) != HL_OK)
		bail_out("hl_alloc failed");

	pthread_t t;
	pthread_create(&t, NULL, allocator, NULL);
	while (__atomic_load_n(&served, __ATOMIC_ACQUIRE) == 0)
		sched_yield();
	/* Deletes go on until the allocator has made many attempts beside
	 * them, however the two threads are scheduled. */
	long deletes = 0, busy = 0, want = (long)(20000 * tap_scale());
	while (deletes < want || __atomic_load_n(&served, __ATOMIC_ACQUIRE) +
						     __atomic_load_n(&refused, __ATOMIC_ACQUIRE) < 2000) {
		busy += hl_region_delete(reg) == HL_EBUSY;
		deletes++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);

	ok(busy == deletes, "hl_region_delete of a region holding a pinned block: HL_EBUSY %ld times of %ld",
	   busy, deletes);
	ok(refused == 0 && served > 0,
	   "meanwhile allocations in the region were never refused (%ld refused, %ld served)",
	   refused, served);
	hl_free(pin);
	ok(hl_region_delete(reg) == HL_OK, "once the block is freed the region is deleted");
	return done_testing();
}
