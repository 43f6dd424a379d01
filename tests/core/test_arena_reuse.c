/*
 * Arena ids of (task, region) pairs that hold nothing are reused: with
 * two ids left, five idle tasks in turn malloc and free a block each;
 * every one of them gets its block, the later ones in arenas taken over
 * from the earlier, emptied ones.  A pair that holds a block keeps its
 * arena.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "policy/policy.h"
#include "tap.h"

void arena_test_seed(uint32_t n);

static hl_task_t *task[6];
static void *kept;
static int got[6];

static void *in_task(void *arg)
{
	int i = (int)(intptr_t)arg;
	hl_task_join(task[i]);
	void *p = hl_malloc(64);
	got[i] = p != NULL;
	if (i == 0) {
		kept = p;   /* task 0 holds its block: its arena is not free */
		if (p)
			memset(p, 0x5a, 64);
	}
	else
		hl_free(p);
	hl_task_join(NULL);
	return NULL;
}

int main(void)
{
	plan(3);
	hl_free(hl_malloc(1));
	arena_test_seed(HL_MAX_ARENAS - 2);
	int all = 1;
	for (int i = 0; i < 6; i++) {
		hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "idle" };
		hl_task_create(&ta, &task[i]);
		pthread_t t;
		pthread_create(&t, NULL, in_task, (void *)(intptr_t)i);
		pthread_join(t, NULL);
		all &= got[i];
	}
	ok(all, "with 2 arena ids left, 6 idle tasks each malloc a block (%d %d %d %d %d %d)", got[0],
	   got[1], got[2], got[3], got[4], got[5]);
	ok(lf_load_relaxed(&sb_narenas) == HL_MAX_ARENAS, "no arena id past the bound");
	hl_task_stats_t st = { .struct_size = sizeof st };
	hl_task_stats(task[0], NULL, &st);
	int intact = kept != NULL;
	for (int i = 0; kept && i < 64; i++)
		intact &= ((unsigned char *)kept)[i] == 0x5a;
	ok(intact && st.blocks_live == 1,
	   "the block task 0 kept is intact and still counted to task 0 (%llu live)",
	   (unsigned long long)st.blocks_live);
	hl_free(kept);
	return done_testing();
}
