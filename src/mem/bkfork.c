/*
 * fork of a memfd region's heap.  Two processes must never manage one
 * heap, and a memfd span is shared memory: after fork, parent and child
 * would both allocate in it.  Unless the region was created to be shared
 * (hl_region_attr_t.shared: the child then keeps its hands off, see
 * policy/region.c), the child gets a private copy, as anonymous memory
 * would give it:
 *
 *   prepare (parent, the coordinator parked): every live span of such a
 *     region is write-protected (userfaultfd), so the parent's writers,
 *     and the kernel on their behalf, wait from here;
 *   child: each span gets anonymous memory holding its bytes, read through
 *     the memfd's view (mremap'd in place: its address stays), its record
 *     says anonymous, the region's memfd is closed: the region is
 *     anonymous memory in the child;
 *   parent: waits for the child's word on a pipe (bounded; the child may
 *     die), then lifts the protection, which wakes the writers held.
 * The copy is consistent: no byte changed in the parent between the
 * protection and the child's copy.  Its cost: the parent's writers into
 * those spans wait for the child's copy of all of them (about a
 * millisecond per few MiB here).  Where write protection of memfd pages
 * cannot be had, nothing is protected and the child keeps its hands off
 * the region, as for a shared one.
 *
 * Concurrency: runs in fork's handlers only.  The coordinator is parked,
 * so no span changes backing meanwhile; other threads go on making and
 * putting spans.  A span made after the prepare's scan passed its unit
 * protects itself (rb_fork_holding tells which backings the fork holds,
 * before the scan).  A span put meanwhile belonged to an empty
 * superblock: whatever the child copies of it, no block of the child's
 * reads it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/mem.h"
#include "copy.h"

#define BKF_WAIT_MS 10000   /* the parent's wait for its child's copy */

static int bkf_pipe[2] = { -1, -1 };
static uint64_t bkf_held;   /* backings whose spans are protected (bit per id) */
static uint64_t bkf_want;   /* those the prepare tried to hold: a span of one
			     * may have protected itself (rb_fork_hold_new) */

static bool bkf_private(const bk_t *bk)
{
	return bk->kind == HL_BACKING_MEMFD && bk->units && !bk->shared && bk->pool;
}

/* Call fn on every live span of bk. */
static bool bkf_each(bk_t *bk, bool (*fn)(bk_t *bk, uint32_t u, char *base, size_t len))
{
	uint32_t n = (uint32_t)(bk->pool_len >> HL_SLOT_SHIFT);
	bool ok = true;
	for (uint32_t u = 0; u < n; u++) {
		char *b = lf_load_seq_cst(&bk->units[u].base);
		if (b)
			ok &= fn(bk, u, b, HL_SLOT_SIZE << lf_load_relaxed(&bk->units[u].order));
	}
	return ok;
}

static bool bkf_protect(bk_t *bk, uint32_t u, char *base, size_t len)
{
	(void)bk;
	(void)u;
	return rb_protect(base, len);
}

static bool bkf_unprotect(bk_t *bk, uint32_t u, char *base, size_t len)
{
	(void)bk;
	(void)u;
	rb_unprotect(base, len);
	return true;
}

void bk_fork_prepare(void)
{
	uint64_t want = 0;
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++)
		if (bkf_private(bk_at(i)))
			want |= (uint64_t)1 << i;
	bkf_held = 0;
	if (!want || (bkf_pipe[0] < 0 && pipe2(bkf_pipe, O_CLOEXEC) != 0))
		return;   /* no pipe: nothing held, the child keeps its hands off */
	bkf_want = want;
	rb_fork_holding(want);   /* before the scan: spans made after it hold themselves */
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		if (!(want >> i & 1))
			continue;
		bk_t *bk = bk_at(i);
		if (bkf_each(bk, bkf_protect)) {
			bkf_held |= (uint64_t)1 << i;
		} else {
			bkf_each(bk, bkf_unprotect);   /* not all of it: none of it */
		}
	}
	rb_fork_holding(bkf_held);
	HL_HOOK("bk_fork_scanned");
}

void bk_fork_parent(void)
{
	if (bkf_held && bkf_pipe[0] >= 0) {
		/* The child copies while our writers wait: its word, or its
		 * end (a child that died closed the pipe), or the bound. */
		struct pollfd pf = { bkf_pipe[0], POLLIN, 0 };
		int saved = errno;
		close(bkf_pipe[1]);
		if (poll(&pf, 1, BKF_WAIT_MS) > 0) {
			char c;
			(void)!read(bkf_pipe[0], &c, 1);
		}
		errno = saved;
	} else if (bkf_pipe[1] >= 0) {
		close(bkf_pipe[1]);
	}
	rb_fork_holding(0);   /* before the spans are let go (rb_fork_hold_new) */
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++)
		if (bkf_want >> i & 1)
			bkf_each(bk_at(i), bkf_unprotect);
	bkf_want = 0;
	if (bkf_pipe[0] >= 0)
		close(bkf_pipe[0]);
	bkf_pipe[0] = bkf_pipe[1] = -1;
	bkf_held = 0;
}

/* Child: span [base, base + len) becomes private anonymous memory with
 * the bytes the memfd holds at offset u (read through the view). */
static bool bkf_copy(bk_t *bk, uint32_t u, char *base, size_t len)
{
	char *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return false;
	lf_copy_unseen(tmp, bk->pool + ((uint64_t)u << HL_SLOT_SHIFT), len);
	if ((void *)syscall(SYS_mremap, tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, base) != base) {
		munmap(tmp, len);
		return false;
	}
	if (bk->secure)
		os_lock(base, len);
	pm_back_set(base, PM_BACK_ANON);
	lf_store_relaxed(&bk->units[u].base, (char *)NULL);
	return true;
}

void bk_fork_child(void)
{
	rb_fork_holding(0);
	bkf_want = 0;
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		bk_t *bk = bk_at(i);
		if (!(bkf_held >> i & 1))
			continue;
		if (!bkf_each(bk, bkf_copy))
			continue;   /* a span left shared: the region stays hands-off */
		/* Anonymous memory from now on: the memfd is the parent's. */
		os_unmap(bk->pool, bk->pool_len);
		os_unmap(bk->units, (size_t)(bk->pool_len >> HL_SLOT_SHIFT) * sizeof *bk->units);
		bk->units = NULL;
		close(bk->fd);
		bk->fd = -1;
		bk->pool = NULL;
		bk->pool_len = 0;
		lf_store_release(&bk->kind, HL_BACKING_ANON);
	}
	bkf_held = 0;
	if (bkf_pipe[1] >= 0) {
		(void)!write(bkf_pipe[1], "c", 1);
		close(bkf_pipe[1]);
	}
	if (bkf_pipe[0] >= 0)
		close(bkf_pipe[0]);
	bkf_pipe[0] = bkf_pipe[1] = -1;
}
