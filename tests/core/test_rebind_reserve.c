/*
 * The reserves of backing moves' targets (mem/rbkeep.c):
 *  1. a memfd span that moves out leaves its offsets warm (pages kept in
 *     the file, counted); the next move in takes that offset, and the
 *     span it brings keeps its own bytes, none of the warm unit's;
 *  2. warm units are bounded (1/16 of a small region's capacity): the
 *     moves out past the bound punch their offsets as before;
 *  3. a region whose offsets are all live or warm still serves a new
 *     superblock (warm units are not charged to its capacity: they are
 *     taken back, punched, before an allocation fails);
 *  4. hl_trim gives every reserve back (warm units punched out of the
 *     memfd, the coordinator's spare anonymous spans unmapped);
 *  5. a fork child has no reserve and its copy of the region holds the
 *     parent's bytes; the parent's warm unit, reused after the fork,
 *     brings the moved span's bytes.
 * Skipped without userfaultfd (no backing move, no reserve).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tap.h"
#include "span.h"

static long long blocks_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

int main(int argc, char **argv)
{
	(void)argc;
	/* Part 3 fills a region: without OOM resolution, which would move
	 * its superblocks out (into malloc's heap) instead. */
	tap_reexec_with_env(argv, "HEAPLIB_MIGRATE_WAIT_MS", "0", (char *)NULL);
	plan(10);
	const char *why = NULL;
	if (rb_probe(&why) != HL_OK) {
		skip(10, "%s", why);
		return done_testing();
	}
	hl_region_t *m = region("reserve_memfd", HL_BACKING_MEMFD, 4u << 20);
	hl_region_t *an = region("reserve_anon", HL_BACKING_ANON, 16u << 20);
	bk_t *bk = m->bk;
	uint64_t bound = (4u << 20) / 16;

	/* 1: X (memfd, 0xaa) moves out; Y (anonymous, 0x55) moves in. */
	char *x = in(m, 1000), *y = in(an, 1000);
	if (!x || !y)
		bail_out("blocks");
	unsigned ox, oy;
	char *bx = sb_of(x, &ox), *by = sb_of(y, &oy);
	memset(bx, 0xaa, HL_SLOT_SIZE << ox);
	memset(by, 0x55, HL_SLOT_SIZE << oy);
	uint64_t offx = 0, offy = 1;
	bk_span_backing(bx, &offx);
	long long file0 = blocks_of(bk->fd);
	int e1 = bk_span_move(bx, ox, bk_at(0), &why);
	uint64_t warm1 = rb_test_warm_bytes(bk);
	ok(e1 == HL_OK && warm1 == HL_SLOT_SIZE << ox && blocks_of(bk->fd) == file0 &&
	   lf_load_relaxed(&hl_ctr.move_reserve) >= warm1,
	   "1: a span moved out of the memfd leaves its offset warm, its pages kept and counted "
	   "(%s, %llu warm bytes, file %lld -> %lld bytes)", hl_strerror(e1),
	   (unsigned long long)warm1, file0, blocks_of(bk->fd));
	int e2 = bk_span_move(by, oy, bk, &why);
	ok(e2 == HL_OK && bk_span_backing(by, &offy) == bk && offy == offx &&
	   rb_test_warm_bytes(bk) == 0,
	   "1: the next move in takes that warm offset (%llu, was %llu)",
	   (unsigned long long)offy, (unsigned long long)offx);
	ok(all(by, HL_SLOT_SIZE << oy, 0x55) && all(bx, HL_SLOT_SIZE << ox, 0xaa),
	   "1: both spans keep their own bytes, none of the warm unit's");

	/* 2: 8 more memfd spans (64 KiB, every page written) move out: only
	 * the bound stays warm. */
	char *z[640], *bz[8];
	unsigned oz[8];
	int nb = 0, nz = 0;
	while (nb < 8 && nz < 640) {
		char *p = z[nz++] = in(m, 1000);
		if (!p)
			bail_out("blocks");
		unsigned o;
		char *b = sb_of(p, &o);
		if (b == bx || (nb && b == bz[nb - 1]))
			continue;
		bz[nb] = b;
		oz[nb++] = o;
	}
	for (int i = 0; i < nb; i++)
		memset(bz[i], i + 1, HL_SLOT_SIZE << oz[i]);
	long long file1 = blocks_of(bk->fd);
	uint64_t moved = 0, maxwarm = 0;
	for (int i = 0; i < nb; i++) {
		if (bk_span_move(bz[i], oz[i], bk_at(0), &why) == HL_OK)
			moved += HL_SLOT_SIZE << oz[i];
		if (rb_test_warm_bytes(bk) > maxwarm)
			maxwarm = rb_test_warm_bytes(bk);
	}
	long long file2 = blocks_of(bk->fd);
	ok(nb == 8 && moved > bound && maxwarm == bound && file1 - file2 == (long long)(moved - maxwarm),
	   "2: warm units stay within their bound (%llu of %llu bytes; %llu moved out, the file "
	   "%lld -> %lld bytes)", (unsigned long long)maxwarm, (unsigned long long)bound,
	   (unsigned long long)moved, file1, file2);
	int intact = 1;
	for (int i = 0; i < nb; i++)
		intact &= all(bz[i], HL_SLOT_SIZE << oz[i], (unsigned char)(i + 1));
	ok(intact, "2: every span moved out kept its bytes");

	/* 3: a small region (its bound one 64 KiB unit): every offset live,
	 * then one warm. */
	hl_region_t *s = region("reserve_small", HL_BACKING_MEMFD, 1u << 20);
	static char *v[4096];
	int nv = 0;
	while (nv < 4096 && (v[nv] = in(s, 1000)))
		nv++;
	hl_place_t to = { .region = an, .node = -1 };
	int e3 = nv ? hl_migrate(v[0], &to, 0) : HL_ENOMEM;
	uint64_t warm3 = rb_test_warm_bytes(s->bk);
	char *w = in(s, 1000);
	ok(nv > 0 && e3 == HL_OK && warm3 > 0 && w && hl_region_of(w) == s,
	   "3: a region full but for a warm unit still serves a superblock (%d blocks filled it, "
	   "move %s, %llu warm, then %s)", nv, hl_strerror(e3), (unsigned long long)warm3,
	   w ? "served" : "refused");

	/* 4: hl_trim gives it all back. */
	bk_span_move(by, oy, bk_at(0), &why);   /* one warm unit in m again */
	long long file3 = blocks_of(bk->fd);
	uint64_t warm4 = rb_test_warm_bytes(bk), spare = 0;
	/* The moves to anonymous memory asked the coordinator for spares:
	 * it makes them between requests (bounded look, no timing asserted). */
	for (int i = 0; i < 400 && !spare; i++) {
		uint64_t r = lf_load_relaxed(&hl_ctr.move_reserve), k = rb_test_warm_bytes(bk) +
			rb_test_warm_bytes(s->bk);
		spare = r > k ? r - k : 0;
		if (!spare)
			usleep(1000);
	}
	hl_trim();
	uint64_t warm_after = rb_test_warm_bytes(bk);
	long long file4 = blocks_of(bk->fd);
	/* The coordinator may be making a spare as trim runs: it drops it at
	 * its next step.  Bounded look, no timing asserted. */
	for (int i = 0; i < 200 && lf_load_relaxed(&hl_ctr.move_reserve); i++)
		usleep(1000);
	ok(warm4 > 0 && spare > 0 && warm_after == 0 && file4 <= file3 - (long long)warm4 &&
	   lf_load_relaxed(&hl_ctr.move_reserve) == 0,
	   "4: hl_trim gives every reserve back (%llu warm bytes punched: file %lld -> %lld; "
	   "%llu bytes of spares; reserve now %llu)", (unsigned long long)warm4, file3, file4,
	   (unsigned long long)spare,
	   (unsigned long long)lf_load_relaxed(&hl_ctr.move_reserve));

	/* 5: fork with x live in m (private), a warm unit there, and y in
	 * anonymous memory made from a spare (MADV_DOFORK'd as it moved). */
	bk_span_move(bx, ox, bk, &why);          /* x back into m */
	memset(bx, 0x3c, HL_SLOT_SIZE << ox);
	bk_span_move(by, oy, bk, &why);          /* y into m */
	bk_span_move(bz[0], oz[0], bk, &why);    /* a move out asks for a spare */
	bk_span_move(bz[0], oz[0], bk_at(0), &why);
	uint64_t before = 0;
	for (int i = 0; i < 400 && (before = lf_load_relaxed(&hl_ctr.move_reserve)) <=
					   rb_test_warm_bytes(bk) + rb_test_warm_bytes(s->bk); i++)
		usleep(1000);
	uint64_t warm_b = rb_test_warm_bytes(bk);
	bk_span_move(by, oy, bk_at(0), &why);    /* y out, onto the spare: its unit warm */
	uint64_t warm5 = rb_test_warm_bytes(bk);
	int from_spare = lf_load_relaxed(&hl_ctr.move_reserve) + (HL_SLOT_SIZE << oy) <=
			 before + (warm5 - warm_b);
	fflush(NULL);
#ifdef __SANITIZE_THREAD__
	skip(2, "ThreadSanitizer kills the children of threaded parents");
	(void)warm5;
	(void)from_spare;
#else
	pid_t pid = fork();
	if (pid == 0) {
		int bad = lf_load_relaxed(&hl_ctr.move_reserve) != 0 || rb_test_warm_bytes(bk) != 0;
		bad |= !all(bx, HL_SLOT_SIZE << ox, 0x3c) << 1;
		bad |= !all(by, HL_SLOT_SIZE << oy, 0x55) << 2;
		char *c = in(m, 1000);
		bad |= (!c) << 3;
		_exit(bad);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	ok(warm5 > 0 && from_spare && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "5: a fork child has no reserve, the bytes of a memfd span and of a span made from a "
	   "spare, and allocates in the region (status %d, signal %d; spare used: %d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0, from_spare);
	memset(by, 0x77, HL_SLOT_SIZE << oy);
	int e5 = bk_span_move(by, oy, bk, &why);
	ok(e5 == HL_OK && rb_test_warm_bytes(bk) == warm5 - (HL_SLOT_SIZE << oy) && all(by, HL_SLOT_SIZE << oy, 0x77) &&
	   all(bx, HL_SLOT_SIZE << ox, 0x3c),
	   "5: after the fork the parent's warm unit takes a span in with its bytes (%s)",
	   hl_strerror(e5));
#endif
	hl_free(x);
	hl_free(y);
	for (int i = 0; i < nz; i++)
		hl_free(z[i]);
	for (int i = 0; i < nv; i++)
		hl_free(v[i]);
	hl_free(w);
	hl_thread_flush();
	ok(hl_region_delete(s) == HL_OK && hl_region_delete(m) == HL_OK &&
	   hl_region_delete(an) == HL_OK, "the regions are deleted, warm units and all");
	return done_testing();
}
