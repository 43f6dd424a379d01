/*
 * A thread that cannot get a hazard record (the OS refuses the memory:
 * lf_hp_test_fail_acquire in test builds) never aborts.  Its first
 * malloc(16), malloc(100) and malloc(20000) either succeed or return NULL
 * with errno ENOMEM, and free works; it exits cleanly; hl_trim leaves the
 * empty superblocks it cannot retire where they are; hl_region_reset
 * returns HL_ENOMEM and frees nothing.  Once the OS gives memory again,
 * the same thread gets a record and allocates, trims and resets as usual.
 *
 * HEAPLIB_HEAPS=64: each new thread's cache draws on a heap of its own,
 * whose slots are empty, so its first refill tries the partial list,
 * the pop that needs a record.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "core/core.h"
#include "tap.h"

static const size_t sizes[] = { 16, 100, 20000 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static hl_region_t *reg;

/* Results, checked by main once the thread has exited. */
static int first_ok, first_got, no_record, exited_ok;
static int trim_kept, reset_err, reset_kept;
static int later_ok, later_record, later_trim, later_reset, later_freed;

static uint64_t retired(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return st.superblocks_retired;
}

static uint64_t reg_blocks(void)
{
	hl_region_stats_t st = { .struct_size = sizeof st };
	hl_region_stats(reg, &st);
	return st.blocks_live;
}

/* malloc and free of each size: 1 if each succeeded or said ENOMEM. */
static int alloc_each(int *got)
{
	void *p[NSIZES];
	int good = 1;
	*got = 0;
	for (size_t i = 0; i < NSIZES; i++) {
		errno = 0;
		p[i] = hl_malloc(sizes[i]);
		good &= p[i] != NULL || errno == ENOMEM;
		*got += p[i] != NULL;
	}
	for (size_t i = 0; i < NSIZES; i++)
		hl_free(p[i]);
	return good;
}

static void *exits_without(void *arg)
{
	(void)arg;
	int got;
	exited_ok = alloc_each(&got);
	return NULL;   /* its exit releases no record */
}

static void *without_then_with(void *arg)
{
	(void)arg;
	first_ok = alloc_each(&first_got);
	no_record = desc_hp_rec() == NULL;

	uint64_t r0 = retired();
	hl_trim();
	trim_kept = retired() == r0;

	uint64_t b0 = reg_blocks();
	reset_err = hl_region_reset(reg);
	reset_kept = reg_blocks() == b0 && b0 == 1;

	lf_hp_test_fail_acquire(0);
	int got;
	later_ok = alloc_each(&got) && got == (int)NSIZES;
	later_record = desc_hp_rec() != NULL;
	r0 = retired();
	hl_trim();
	later_trim = retired() > r0;
	later_reset = hl_region_reset(reg);
	later_freed = reg_blocks() == 0;
	return NULL;
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_HEAPS", "64", NULL);
	plan(8);
	hl_free(hl_malloc(1));
	hl_region_attr_t at = { .struct_size = sizeof at, .name = "reset" };
	if (hl_region_create(&at, &reg) != HL_OK)
		bail_out("hl_region_create failed");
	hl_place_t in_reg = { .node = -1, .region = reg };
	void *kept = NULL;
	if (hl_alloc(64, &in_reg, 0, &kept) != HL_OK)
		bail_out("hl_alloc in the region failed");
	(void)kept;   /* freed by the region's reset */

	pthread_t t;
	lf_hp_test_fail_acquire(1);
	pthread_create(&t, NULL, exits_without, NULL);
	pthread_join(t, NULL);
	ok(exited_ok, "a new thread with no hazard record mallocs and frees 16, 100 and 20000 bytes without aborting, and exits");

	pthread_create(&t, NULL, without_then_with, NULL);
	pthread_join(t, NULL);
	lf_hp_test_fail_acquire(0);
	ok(first_ok && no_record,
	   "another one's first malloc of each size succeeds or fails with ENOMEM (%d of %zu succeeded) while it has no record",
	   first_got, NSIZES);
	ok(trim_kept, "its hl_trim retires none of the empty superblocks it cannot retire");
	ok(reset_err == HL_ENOMEM && reset_kept,
	   "its hl_region_reset returns HL_ENOMEM (%d) and frees nothing", reset_err);
	ok(later_ok && later_record,
	   "once records can be had, the same thread gets one and allocates every size");
	ok(later_trim, "its hl_trim then retires the empty superblocks");
	ok(later_reset == HL_OK && later_freed, "and its hl_region_reset frees the region's blocks");
	ok(lf_hp_active(&desc_hp) == 1 && desc_hp_rec() != NULL,
	   "only this thread holds a record now (%llu live)",
	   (unsigned long long)lf_hp_active(&desc_hp));
	return done_testing();
}
