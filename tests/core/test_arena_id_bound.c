/*
 * Arena ids never pass HL_MAX_ARENAS and a failed creation spends none,
 * with the count seeded near its bound (a test cannot make 2^32
 * creations):
 *  - a creation whose mapping fails returns ENOMEM and leaves the id to
 *    the next creation;
 *  - creators racing for the last ids each get a different one, and only
 *    as many succeed as ids remain;
 *  - past the bound every creation fails and the count stays at the bound;
 *  - a count that stands at UINT32_MAX (where 2^32 failed fetch-adds
 *    would have left it) does not wrap: arena 0 stays malloc's own.
 * Every pair keeps its block to the end: an arena that holds nothing
 * would be taken over by the next pair (test_arena_reuse).
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "core/core.h"
#include "tap.h"

#define RACERS 16
#define LEFT 8            /* ids left when they race */
#define FAILS 1000

static hl_region_t *reg;
static hl_place_t in_reg;
static pthread_barrier_t go;
static int racer_err[RACERS];
static int racer_id[RACERS];
static void *held[RACERS + 4];
static int nheld;

static uint32_t narenas(void) { return lf_load_acquire(&sb_narenas); }

static hl_task_t *new_task(void)
{
	hl_task_attr_t at = { .struct_size = sizeof at, .name = "t" };
	hl_task_t *t = NULL;
	if (hl_task_create(&at, &t) != HL_OK)
		bail_out("hl_task_create failed");
	return t;
}

/* The calling thread joins a new task and allocates in reg: the
 * task's arena there is created on the way. */
static int alloc_in_new_task(int *arena)
{
	hl_task_join(new_task());
	void *p = NULL;
	int e = hl_alloc(64, &in_reg, 0, &p);
	*arena = p ? arena_id_of(p) : -1;
	if (p)
		held[__atomic_fetch_add(&nheld, 1, __ATOMIC_RELAXED)] = p;
	hl_task_join(NULL);
	return e;
}

static void *racer(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	hl_task_t *t = new_task();
	hl_task_join(t);
	pthread_barrier_wait(&go);
	void *p = NULL;
	racer_err[i] = hl_alloc(64, &in_reg, 0, &p);
	racer_id[i] = p ? arena_id_of(p) : -1;
	if (p)
		held[__atomic_fetch_add(&nheld, 1, __ATOMIC_RELAXED)] = p;
	hl_task_join(NULL);
	return NULL;
}

int main(void)
{
	plan(6);
	hl_free(hl_malloc(1));
	sb_arena_t *a0 = sb_arena(0);
	hl_region_attr_t at = { .struct_size = sizeof at, .name = "ids" };
	if (hl_region_create(&at, &reg) != HL_OK)
		bail_out("hl_region_create failed");
	in_reg = (hl_place_t){ .node = -1, .region = reg };

	/* The OS refuses the arena's mapping. */
	const uint32_t first = HL_MAX_ARENAS - LEFT - 1;
	arena_test_seed(first);
	hl_task_join(new_task());
	void *p = NULL;
	arena_test_fail_map(1);
	int e1 = hl_alloc(64, &in_reg, 0, &p);
	uint32_t n1 = narenas();
	arena_test_fail_map(0);
	int e2 = hl_alloc(64, &in_reg, 0, &p);
	int id2 = p ? arena_id_of(p) : -1;
	if (p)
		held[nheld++] = p;
	hl_task_join(NULL);
	ok(e1 == HL_ENOMEM && n1 == first,
	   "a creation whose mapping fails returns HL_ENOMEM (%d) and spends no id (count %u, was %u)",
	   e1, n1, first);
	ok(e2 == HL_OK && id2 == (int)first,
	   "the same task's next allocation creates its arena with that id (%d)", id2);

	/* RACERS creators, LEFT ids. */
	pthread_barrier_init(&go, NULL, RACERS);
	pthread_t t[RACERS];
	for (int i = 0; i < RACERS; i++)
		pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)i);
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	int won = 0, lost = 0, other = 0;
	uint32_t seen = 0;   /* bit k: id first + 1 + k handed out */
	for (int i = 0; i < RACERS; i++) {
		if (racer_err[i] == HL_ENOMEM && racer_id[i] < 0) {
			lost++;
			continue;
		}
		int k = racer_id[i] - (int)first - 1;
		if (racer_err[i] != HL_OK || k < 0 || k >= LEFT || (seen >> k & 1))
			other++;
		else
			seen |= 1u << k;
		won++;
	}
	ok(won == LEFT && lost == RACERS - LEFT && other == 0 &&
	   seen == (1u << LEFT) - 1 && narenas() == HL_MAX_ARENAS,
	   "%d creators racing for the last %d ids: %d get one each, all different (%d wrong), %d get HL_ENOMEM, the count ends at %u",
	   RACERS, LEFT, won, other, lost, narenas());

	/* Past the bound. */
	hl_task_join(new_task());
	int fails = 0;
	uint32_t most = 0;
	for (int i = 0; i < FAILS; i++) {
		fails += hl_alloc(64, &in_reg, 0, &p) == HL_ENOMEM;
		if (narenas() > most)
			most = narenas();
	}
	hl_task_join(NULL);
	ok(fails == FAILS && most == HL_MAX_ARENAS && narenas() == HL_MAX_ARENAS,
	   "%d creations past the bound all fail (%d) and the count never passes %u (at most %u)",
	   FAILS, fails, HL_MAX_ARENAS, most);

	/* As if 2^32 creations had failed before. */
	arena_test_seed(UINT32_MAX);
	int id_w = 0, ew1 = alloc_in_new_task(&id_w), ew2 = alloc_in_new_task(&id_w);
	ok(ew1 == HL_ENOMEM && ew2 == HL_ENOMEM && narenas() == UINT32_MAX,
	   "at UINT32_MAX the count does not wrap: creations fail (%d, %d), the count stays (%u)",
	   ew1, ew2, narenas());
	arena_test_seed(HL_MAX_ARENAS);

	int works = 1;
	for (size_t sz = 1; sz <= 65536; sz *= 2) {
		void *q = hl_malloc(sz);
		works &= q != NULL && hl_region_of(q) == hl_region_default();
		hl_free(q);
	}
	ok(sb_arena(0) == a0 && a0->id == 0 && a0->nheaps == sb_heap_count() && works,
	   "arena 0 is still malloc's default arena, and malloc and free work");
	for (int i = 0; i < nheld; i++)
		hl_free(held[i]);
	return done_testing();
}
