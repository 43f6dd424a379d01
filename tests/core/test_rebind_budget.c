/*
 * The limits of backing moves (mem/rebind.c, mem/backing.c):
 *  1. the mapping budget: with the count of mappings heaplib made seeded
 *     just under half of vm.max_map_count, a move that would split off a
 *     new mapping is refused with HL_ENOMEM and a clear reason, the span
 *     left as it was, and so is a new memfd span; with room for one, the
 *     move is made;
 *  2. a pool (hugetlb, user buffer) is never a move's target: HL_EINVAL;
 *  3. a fork child does not keep the userfaultfd: the descriptor is
 *     closed in it, and the parent's still moves.
 * Skipped where userfaultfd is unavailable.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/mem.h"
#include "tap.h"

int main(void)
{
	hl_free(hl_malloc(1));
	const char *why = NULL;
	if (rb_probe(&why) != HL_OK)
		plan_skip_all(why);
	plan(7);
	bk_t *mfd = bk_at(HL_MAX_REGIONS - 1), *anon = bk_at(HL_MAX_REGIONS - 2);
	if (bk_setup(mfd, HL_BACKING_MEMFD, 1u << 20, 0, NULL, "budget") != HL_OK)
		bail_out("a memfd backing");
	hl_budget_t budget = { 0, 0 };
	hl_account_t am = { mfd, &budget, 0 }, aa = { anon, &budget, 0 };
	uint32_t sp, sp2;
	int err;
	char *b = bk_span_get(&aa, 0, &sp, &err);
	memset(b, 3, HL_SLOT_SIZE);

	uint64_t had = lf_load_relaxed(&hl_ctr.own_maps), lim = rb_map_limit();
	rb_test_set_maps(lim - 1);
	int e = bk_span_move(b, 0, mfd, &why);
	int intact = 1;
	for (size_t i = 0; i < HL_SLOT_SIZE; i += 512)
		intact &= b[i] == 3;
	ok(e == HL_ENOMEM && why && strstr(why, "mapping budget") && pm_back_get(b) == 0 && intact,
	   "1: one mapping under half of vm.max_map_count (%llu): the move is refused, %s: %s",
	   (unsigned long long)lim, hl_strerror(e), why ? why : "no reason");
	char *c = bk_span_get(&am, 0, &sp2, &err);
	ok(!c && err == HL_ENOMEM, "1: and so is a new memfd span (HL_ENOMEM)");
	ok(lf_load_relaxed(&hl_ctr.own_maps) == lim - 1, "1: neither counted anything");
	rb_test_set_maps(lim - 2);
	e = bk_span_move(b, 0, mfd, &why);
	ok(e == HL_OK && lf_load_relaxed(&hl_ctr.own_maps) == lim,
	   "1: with room for one more, the move is made and counted (%s)", hl_strerror(e));
	rb_test_set_maps(had + 2);

	bk_t pool = { .kind = HL_BACKING_HUGETLB };
	e = bk_span_move(b, 0, &pool, &why);
	ok(e == HL_EINVAL && why, "2: a pool is never a move's target: %s (%s)", hl_strerror(e),
	   why ? why : "no reason");

	int fd = rb_test_fd();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		errno = 0;
		int closed = fcntl(fd, F_GETFD) == -1 && errno == EBADF;
		_exit(closed && rb_test_fd() == -2 ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "3: a fork child has the userfaultfd (%d) closed (status %d)", fd, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	e = bk_span_move(b, 0, anon, &why);
	intact = 1;
	for (size_t i = 0; i < HL_SLOT_SIZE; i += 512)
		intact &= b[i] == 3;
	ok(e == HL_OK && rb_test_fd() == fd && intact, "3: the parent's descriptor still moves spans");
	bk_span_put(&aa, b, sp, 0);
	bk_release(mfd);
	return done_testing();
}
