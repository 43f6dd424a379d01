/*
 * Nomadic memory through the public API, one rule at a time: hl_migrate
 * of one block's superblock (bytes and addresses kept, books moved, later
 * frees booked to the new region), region deletion by evacuation (planned
 * first: a refusal changes nothing), task migration, OOM resolution (an
 * allocation that only a full region can serve succeeds once the
 * coordinator has moved other memory out; HL_NOWAIT gets HL_EAGAIN), and
 * each refusal: pinned, secure to non-secure, reach, user buffer, no room.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

static hl_region_t *region(const char *name, size_t cap, unsigned reach, int secure)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = cap;
	a.reach = reach;
	a.secure = secure;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("cannot create region %s", name);
	return r;
}

static hl_region_stats_t rst(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s;
}

static void *in(hl_region_t *r, unsigned reach, size_t size, unsigned flags, int *err)
{
	hl_place_t pl = { .reach = reach, .node = -1, .region = r };
	void *p = NULL;
	*err = hl_alloc(size, &pl, flags, &p);
	return p;
}

static void fill(void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = (unsigned char)(seed * 131 + i);
}

static bool intact(const void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (((const unsigned char *)p)[i] != (unsigned char)(seed * 131 + i))
			return false;
	return true;
}

static void test_one_block(void)
{
	hl_region_t *a = region("mig-a", 4 * MB, 0, 0), *b = region("mig-b", 4 * MB, 0, 0);
	int e;
	void *v[64];
	for (int i = 0; i < 64; i++) {
		v[i] = in(a, 0, 200, 0, &e);
		if (!v[i])
			bail_out("alloc in a: %d", e);
		fill(v[i], 200, (unsigned)i);
	}
	hl_region_stats_t sa = rst(a), sb = rst(b);
	is_int((long long)sa.blocks_live, 64, "64 blocks live in a");
	hl_place_t to_b = { .node = -1, .region = b };
	is_int(hl_migrate(v[0], &to_b, 0), HL_OK, "hl_migrate moves the superblock of a block to b");
	is_ptr(hl_region_of(v[0]), b, "the block is now b's");
	is_ptr(hl_region_of(v[63]), b, "and so is its neighbour in the superblock");
	bool all = true;
	for (int i = 0; i < 64; i++)
		all &= intact(v[i], 200, (unsigned)i);
	ok(all, "every moved block kept its bytes at its address");
	hl_region_stats_t sa2 = rst(a), sb2 = rst(b);
	is_int((long long)sa2.blocks_live, 0, "a's books: no block live");
	is_int((long long)sb2.blocks_live, (long long)sb.blocks_live + 64, "b's books: the 64 blocks");
	ok(sa2.bytes_backed < sa.bytes_backed && sb2.bytes_backed > sb.bytes_backed,
	   "the span's bytes are charged to b, not a (%llu -> %llu, %llu -> %llu)",
	   (unsigned long long)sa.bytes_backed, (unsigned long long)sa2.bytes_backed,
	   (unsigned long long)sb.bytes_backed, (unsigned long long)sb2.bytes_backed);
	for (int i = 0; i < 64; i++)
		hl_free(v[i]);
	is_int((long long)rst(b).blocks_live, 0, "frees after the move are booked to b");
	is_int((long long)rst(a).blocks_live, 0, "and none to a");
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	is_int(hl_migrate_stats(&ms), HL_OK, "hl_migrate_stats");
	ok(ms.moves[1] >= 1 && ms.running, "an accounting move was counted (%llu), coordinator running",
	   (unsigned long long)ms.moves[1]);
	is_int(hl_region_delete(a), HL_OK, "a, empty, is deleted");
	is_int(hl_region_delete(b), HL_OK, "b, empty, is deleted");
}

static void test_evacuate(void)
{
	hl_region_t *a = region("evac-a", 4 * MB, 0, 0), *b = region("evac-b", 8 * MB, 0, 0);
	enum { N = 2000 };
	static void *v[N];
	int e;
	for (int i = 0; i < N; i++) {
		size_t sz = 16 + (size_t)(i % 40) * 24;
		v[i] = in(a, 0, sz, 0, &e);
		if (!v[i])
			bail_out("alloc %d in a: %d", i, e);
		fill(v[i], sz, (unsigned)i);
	}
	/* A pinned block elsewhere keeps its region from being deleted. */
	hl_region_t *c = region("evac-c", 4 * MB, 0, 0);
	void *pin = in(c, 0, 100, HL_NOMIGRATE, &e);
	ok(pin != NULL, "a pinned block in c");
	hl_region_stats_t sc = rst(c);
	is_int(hl_region_delete(c), HL_EBUSY, "c, holding a pinned block, is not deleted");
	hl_region_stats_t sc2 = rst(c);
	ok(sc2.blocks_live == sc.blocks_live && sc2.bytes_backed == sc.bytes_backed,
	   "and nothing of it changed");
	void *more = in(c, 0, 100, 0, &e);
	ok(more != NULL, "c still serves allocations");
	hl_place_t to_a = { .node = -1, .region = a };
	is_int(hl_migrate(pin, &to_a, 0), HL_EPERM, "a pinned block's superblock is not moved");

	ok(hl_region_delete(a) == HL_OK, "a, holding %d blocks, is deleted by evacuation", N);
	bool all = true, where = true;
	for (int i = 0; i < N; i++) {
		all &= intact(v[i], 16 + (size_t)(i % 40) * 24, (unsigned)i);
		where &= hl_region_of(v[i]) != NULL && hl_region_of(v[i]) != a;
	}
	ok(all, "every block kept its bytes");
	ok(where, "every block now belongs to another region");
	int in_b = 0, in_c = 0, in_0 = 0;
	for (int i = 0; i < N; i++) {
		in_b += hl_region_of(v[i]) == b;
		in_c += hl_region_of(v[i]) == c;
		in_0 += hl_region_of(v[i]) == hl_region_default();
	}
	ok(in_b + in_c + in_0 == N && rst(b).blocks_live >= (uint64_t)in_b &&
	   rst(c).blocks_live >= (uint64_t)in_c + 2,
	   "their books went with them (b %d, c %d, and %d into malloc's heap, which counts none)",
	   in_b, in_c, in_0);
	for (int i = 0; i < N; i++)
		hl_free(v[i]);
	hl_free(more);
	hl_free(pin);
	is_int((long long)rst(b).blocks_live, 0, "after the frees nothing is live in b");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
	is_int(hl_region_delete(c), HL_OK, "c deleted");
}

static void test_refusals(void)
{
	int e;
	hl_region_t *s = region("sec", 2 * MB, 0, 1), *p = region("plain", 2 * MB, 0, 0);
	void *x = in(s, 0, 64, 0, &e);
	if (!x) {
		skip(3, "no secure region here (%d: RLIMIT_MEMLOCK?)", e);
	} else {
		hl_place_t to_p = { .node = -1, .region = p };
		is_int(hl_migrate(x, &to_p, 0), HL_EPERM, "secure memory is never moved to a non-secure region");
		is_ptr(hl_region_of(x), s, "and stays where it was");
		void *y = in(p, 0, 64, 0, &e);
		hl_place_t to_s = { .node = -1, .region = s };
		is_int(hl_migrate(y, &to_s, 0), HL_OK, "plain memory may move into a secure region (tier 2)");
		hl_free(y);
		hl_free(x);
	}
	/* A placement that names no region: HL_ENOREGION, nothing moved. */
	void *q0 = in(p, 0, 64, 0, &e);
	hl_place_t nowhere = { .reach = HL_REACH_DMA, .node = -1 };
	is_int(hl_migrate(q0, &nowhere, 0), HL_ENOREGION, "a placement no region satisfies: HL_ENOREGION");
	ok(hl_region_of(q0) == p, "and the block stays");
	hl_free(q0);
	/* Reach: a block needing CLUSTER cannot go to a SYS-only region. */
	hl_region_t *cl = region("cluster", 2 * MB, HL_REACH_SYS | HL_REACH_CLUSTER, 0);
	void *z = in(NULL, HL_REACH_CLUSTER, 64, 0, &e);
	ok(z && hl_region_of(z) == cl, "a CLUSTER block lands in the cluster region");
	hl_place_t to_p = { .node = -1, .region = p };
	is_int(hl_migrate(z, &to_p, 0), HL_ENOREGION, "it is not moved where it would be unreachable");
	hl_free(z);
	/* No room: the target is too small. */
	hl_region_t *tiny = region("tiny", 64 * KB, 0, 0);
	void *w = in(p, 0, 64, 0, &e);
	void *t1 = in(tiny, 0, 64, 0, &e);   /* tiny is full: one span */
	hl_place_t to_t = { .node = -1, .region = tiny };
	is_int(hl_migrate(w, &to_t, 0), HL_ENOMEM, "a full target refuses (HL_ENOMEM)");
	is_ptr(hl_region_of(w), p, "and the block stays");
	hl_free(w);
	hl_free(t1);
	/* A user buffer's memory never moves (its addresses are the user's). */
	void *buf = mmap(NULL, 1 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *al = (void *)(((uintptr_t)buf + 64 * KB - 1) & ~(uintptr_t)(64 * KB - 1));
	hl_region_attr_t ba;
	memset(&ba, 0, sizeof ba);
	ba.struct_size = sizeof ba;
	ba.backing = HL_BACKING_BUFFER;
	ba.buffer = al;
	ba.capacity = 512 * KB;
	hl_region_t *br = NULL;
	is_int(hl_region_create(&ba, &br), HL_OK, "a region over a user buffer");
	void *u = in(br, 0, 64, 0, &e);
	is_int(hl_migrate(u, &to_p, 0), HL_EPERM, "a user buffer's block is not moved");
	is_int(hl_region_delete(br), HL_EBUSY, "nor is its region evacuated");
	hl_free(u);
	is_int(hl_region_delete(br), HL_OK, "emptied, it is deleted");
	munmap(buf, 1 * MB);
	/* malloc's own heap moves like any region's (test_migrate_default). */
	void *m = hl_malloc(64);
	is_int(hl_migrate(m, &to_p, 0), HL_OK, "a malloc'd block's superblock moves too");
	hl_free(m);
	is_int(hl_migrate(NULL, &to_p, 0), HL_EINVAL, "NULL: HL_EINVAL");
	int stack;
	is_int(hl_migrate(&stack, &to_p, 0), HL_EINVAL, "a pointer heaplib does not know: HL_EINVAL");
	hl_region_delete(tiny);
	hl_region_delete(cl);
	hl_region_delete(p);
	hl_region_delete(s);
}

/* This program again, in a child with name=value in its environment and
 * its TAP lines thrown away: its wait status says whether they passed. */
static int run_self_with(char **argv, const char *name, const char *value)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		setenv(name, value, 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	return status;
}

/* A task allowed only regions a (SYS and CLUSTER) and b (SYS): its SYS
 * blocks fill a first, then fall back to b; a CLUSTER allocation only a
 * can serve then needs the coordinator.  Returns how many blocks went to
 * a (their bytes filled). */
static int oom_fill(hl_region_t *a, hl_region_t *b, void **v, int max)
{
	int n = 0, e;
	for (; n < max; n++) {
		v[n] = in(NULL, HL_REACH_SYS, 1024, 0, &e);
		if (!v[n] || hl_region_of(v[n]) != a)
			break;
		fill(v[n], 1024, (unsigned)n);
	}
	if (n < max && v[n])
		hl_free(v[n]);
	(void)b;
	return n;
}

static void test_task_and_oom(char **argv)
{
	int e;
	bool without = getenv("HEAPLIB_MIGRATE_WAIT_MS") && !strcmp(getenv("HEAPLIB_MIGRATE_WAIT_MS"), "0");
	hl_region_t *a = region("oom-a", 256 * KB, HL_REACH_SYS | HL_REACH_CLUSTER, 0);
	hl_region_t *b = region("oom-b", 4 * MB, 0, 0);
	hl_region_t *both[2] = { a, b };
	hl_task_t *t = NULL;
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "tenant", .regions = both, .nregions = 2 };
	is_int(hl_task_create(&ta, &t), HL_OK, "a task allowed a and b");
	is_int(hl_task_join(t), HL_OK, "joined");
	static void *v[4096];
	int n = oom_fill(a, b, v, 4096);
	ok(n > 0 && n < 4096, "its SYS blocks filled a (%d of them), then went to b", n);
	if (without) {
		void *c = in(NULL, HL_REACH_CLUSTER, 1024, 0, &e);
		ok(!c && e == HL_ENOMEM,
		   "with HEAPLIB_MIGRATE_WAIT_MS=0 (no migration asked) a CLUSTER allocation fails (%d)", e);
		c = in(NULL, HL_REACH_CLUSTER, 1024, HL_NOWAIT, &e);
		ok(!c && e == HL_ENOMEM, "and with HL_NOWAIT too (%d)", e);
		for (int i = 0; i < n; i++)
			hl_free(v[i]);
		hl_task_join(NULL);
		return;
	}
	void *c = in(NULL, HL_REACH_CLUSTER, 1024, HL_NOWAIT, &e);
	ok(!c && e == HL_EAGAIN, "with HL_NOWAIT a CLUSTER allocation gets HL_EAGAIN (%d)", e);
	c = in(NULL, HL_REACH_CLUSTER, 1024, 0, &e);
	ok(c != NULL, "waiting, it succeeds once the coordinator moved SYS memory to b (%d)", e);
	ok(c && hl_region_of(c) == a, "in a, the only region that can serve it");
	bool all = true;
	int moved = 0;
	for (int i = 0; i < n; i++) {
		all &= intact(v[i], 1024, (unsigned)i);
		moved += hl_region_of(v[i]) == b;
	}
	ok(all, "the blocks kept their bytes");
	ok(moved > 0, "%d of them now live in b", moved);
	hl_task_stats_t st = { .struct_size = sizeof st };
	hl_task_stats(t, b, &st);
	ok(st.blocks_live >= (uint64_t)moved, "booked to the task in b (%llu)",
	   (unsigned long long)st.blocks_live);
	hl_free(c);

	/* Task migration: what the task holds in a goes to b, except the
	 * superblock that served a CLUSTER block (b is not reachable so). */
	hl_place_t to_b = { .node = -1, .region = b };
	is_int(hl_task_migrate(t, &to_b, 0), HL_ENOREGION,
	       "hl_task_migrate onto b: the CLUSTER superblock stays (HL_ENOREGION)");
	int in_a = 0;
	for (int i = 0; i < n; i++)
		in_a += hl_region_of(v[i]) == a;
	hl_task_stats_t sa = { .struct_size = sizeof sa };
	hl_task_stats(t, a, &sa);
	ok(sa.blocks_live == (uint64_t)in_a && in_a < n - moved,
	   "the rest moved: %d blocks left in a, booked so (%llu)", in_a,
	   (unsigned long long)sa.blocks_live);
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	hl_task_stats(t, NULL, &st);
	is_int((long long)st.blocks_live, 0, "after the frees the task holds nothing");
	hl_task_join(NULL);
	hl_task_destroy(t);
	is_int(hl_region_delete(a), HL_OK, "a deleted");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
	is_int(hl_task_migrate(NULL, &to_b, 0), HL_EINVAL, "hl_task_migrate(NULL): HL_EINVAL");
	/* The same scenario without migration, in a fresh process (its own
	 * TAP lines are checked by its exit status). */
	int status = run_self_with(argv, "HEAPLIB_MIGRATE_WAIT_MS", "0");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "without migration (HEAPLIB_MIGRATE_WAIT_MS=0) the CLUSTER allocation fails (child: %d)", status);
	status = run_self_with(argv, "HEAPLIB_NO_UFFD", "1");
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "with HEAPLIB_NO_UFFD=1 backing moves are refused with a reason (child: %d)", status);
}

static int events;
static size_t event_bytes;
static hl_region_t *event_from, *event_to;
static hl_task_t *event_task;

static void on_move(hl_task_t *t, const hl_move_event_t *ev, void *arg)
{
	(void)arg;
	events++;
	event_bytes += ev->bytes;
	event_from = ev->from;
	event_to = ev->to;
	event_task = t;
	/* Outside the allocator: it may allocate. */
	void *p = hl_malloc(100);
	hl_free(p);
}

static bool wait_for(bool (*cond)(void *), void *arg)
{
	for (int i = 0; i < 500; i++) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return cond(arg);
}

/* Relief ran until free bytes rose above high (the region's high event),
 * and the region stays above low (allocations after the relief may have
 * used some of it: hysteresis, no new relief above low). */
static bool above_high(void *arg)
{
	hl_region_stats_t s = rst(arg);
	return s.events_high >= 1 && s.capacity - s.bytes_backed > 256 * KB;
}

static void test_relief(void)
{
	int e;
	hl_region_attr_t at;
	memset(&at, 0, sizeof at);
	at.struct_size = sizeof at;
	at.name = "relieved";
	at.capacity = 1 * MB;
	at.wmark_low = 256 * KB;
	at.wmark_high = 512 * KB;
	at.relieve = 1;
	hl_region_t *a = NULL, *b = region("relief-b", 8 * MB, 0, 0);
	is_int(hl_region_create(&at, &a), HL_OK, "a region with watermark relief");
	at.relieve = 1;
	at.wmark_low = 0;
	hl_region_t *bad = NULL;
	is_int(hl_region_create(&at, &bad), HL_EINVAL, "relief without a low watermark is HL_EINVAL");
	hl_task_t *t = NULL;
	hl_region_t *ab[2] = { a, b };
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "reliever", .on_move = on_move,
			      .regions = ab, .nregions = 2 };
	hl_task_create(&ta, &t);
	hl_task_join(t);
	events = 0;
	static void *v[900];
	int n = 0;
	for (; n < 850; n++) {   /* 850 KB of 1 MiB: below low (256 KiB free) */
		v[n] = in(a, 0, 1000, 0, &e);
		if (!v[n])
			break;
		fill(v[n], 1000, (unsigned)n);
	}
	ok(n == 850 && rst(a).events_low >= 1, "a filled past its low watermark (%d blocks, %llu low events)",
	   n, (unsigned long long)rst(a).events_low);
	ok(wait_for(above_high, a), "the coordinator relieved it until above high, and it stays above low (%llu free)",
	   (unsigned long long)(rst(a).capacity - rst(a).bytes_backed));
	bool all = true;
	int in_b = 0;
	for (int i = 0; i < n; i++) {
		all &= intact(v[i], 1000, (unsigned)i);
		in_b += hl_region_of(v[i]) == b;
	}
	ok(all && in_b > 0, "the moved blocks (%d, now in b) kept their bytes", in_b);
	usleep(300000);
	ok(rst(a).capacity - rst(a).bytes_backed < 1 * MB - 64 * KB,
	   "relief stops above high: it does not empty the region");
	int polled = hl_task_poll();
	ok(events > 0 && events >= polled && event_task == t && event_from == a && event_to == b,
	   "its hl_alloc calls and hl_task_poll told the task of the moves, a to b (%d events, %d polled)",
	   events, polled);
	is_int(hl_task_poll(), 0, "each once");
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	hl_task_join(NULL);
	hl_task_destroy(t);
	is_int(hl_region_delete(a), HL_OK, "relieved region deleted");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
}

typedef struct share_arg { hl_task_t *t; hl_region_t *r; } share_arg_t;

static bool within_share(void *arg)
{
	share_arg_t *sa = arg;
	hl_task_stats_t st = { .struct_size = sizeof st };
	hl_task_stats(sa->t, sa->r, &st);
	return st.bytes_backed <= 128 * KB;
}

static void test_share(void)
{
	int e;
	hl_region_t *a = region("scarce", 4 * MB, 0, 0), *b = region("plenty", 8 * MB, 0, 0);
	hl_task_t *t = NULL, *u = NULL;
	hl_region_t *ab[2] = { a, b };
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "greedy", .share_region = a,
			      .share_limit = 128 * KB, .on_move = on_move, .regions = ab, .nregions = 2 };
	is_int(hl_task_create(&ta, &t), HL_OK, "a task with a share limit of 128 KiB of a");
	hl_task_attr_t bad = { .struct_size = sizeof bad, .share_limit = 1 };
	is_int(hl_task_create(&bad, &u), HL_EINVAL, "a share limit without a region is HL_EINVAL");
	hl_task_join(t);
	static void *v[600];
	for (int i = 0; i < 600; i++) {
		v[i] = in(a, 0, 1000, 0, &e);
		if (!v[i])
			bail_out("alloc in a: %d", e);
		fill(v[i], 1000, (unsigned)i + 7);
	}
	share_arg_t sa = { t, a };
	ok(wait_for(within_share, &sa), "above its share the task's memory moves out of a");
	bool all = true;
	for (int i = 0; i < 600; i++)
		all &= intact(v[i], 1000, (unsigned)i + 7);
	ok(all, "and keeps its bytes");
	events = 0;
	event_bytes = 0;
	void *p = in(a, 0, 10, 0, &e);   /* its next hl_alloc runs the events */
	ok(events > 0 && event_from == a && event_to == b,
	   "its next hl_alloc told it of the moves (%d, %zu bytes)", events, event_bytes);
	hl_free(p);
	for (int i = 0; i < 600; i++)
		hl_free(v[i]);
	hl_task_join(NULL);
	hl_task_destroy(t);
	is_int(hl_region_delete(a), HL_OK, "a deleted");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
}

/* A task's blocks of the default region sit in its thread's cache when
 * the coordinator moves their superblocks: they move with them, and the
 * books stay exact when the cache gives them back. */
static void test_cached_move(void)
{
	hl_region_t *b = region("cache-b", 8 * MB, 0, 0);
	hl_task_t *t = NULL;
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "cached" };
	hl_task_create(&ta, &t);
	hl_task_join(t);
	enum { N = 400 };
	static void *v[N];
	for (int i = 0; i < N; i++) {
		v[i] = hl_malloc(48);
		fill(v[i], 48, (unsigned)i);
	}
	ok(hl_region_of(v[0]) == hl_region_default(), "the task's malloc blocks are in the default region");
	for (int i = 0; i < N; i += 2)
		hl_free(v[i]);   /* into the task's thread cache */
	hl_place_t to_b = { .node = -1, .region = b };
	is_int(hl_task_migrate(t, &to_b, 0), HL_OK, "the task's default-region memory moves to b");
	bool all = true, where = true;
	for (int i = 1; i < N; i += 2) {
		all &= intact(v[i], 48, (unsigned)i);
		where &= hl_region_of(v[i]) == b;
	}
	ok(all && where, "live blocks moved with their bytes");
	for (int i = 1; i < N; i += 2)
		hl_free(v[i]);
	hl_task_join(NULL);   /* the cache goes back to its superblocks */
	hl_task_stats_t st = { .struct_size = sizeof st };
	hl_task_stats(t, NULL, &st);
	is_int((long long)st.blocks_live, 0, "after the frees and the flush the task holds nothing");
	is_int((long long)rst(b).blocks_live, 0, "nor does b");
	hl_task_destroy(t);
	is_int(hl_region_delete(b), HL_OK, "b deleted");
}

/* Tier 4: between anonymous memory and a memfd region's, in place under
 * a userfaultfd write-protect barrier; with HEAPLIB_NO_UFFD=1 refused
 * with HL_EPERM and a reason. */
static void test_backing(void)
{
	bool no_uffd = getenv("HEAPLIB_NO_UFFD") != NULL;
	int e;
	/* Cluster-reachable, both: malloc's heap (SYS only) is no target. */
	unsigned cl = HL_REACH_SYS | HL_REACH_CLUSTER;
	hl_region_t *a = region("back-anon", 4 * MB, cl, 0);
	hl_region_attr_t at;
	memset(&at, 0, sizeof at);
	at.struct_size = sizeof at;
	at.name = "back-memfd";
	at.capacity = 4 * MB;
	at.backing = HL_BACKING_MEMFD;
	at.reach = cl;
	hl_region_t *m = NULL;
	is_int(hl_region_create(&at, &m), HL_OK, "a memfd region");
	void *v[100];
	for (int i = 0; i < 100; i++) {
		v[i] = in(a, HL_REACH_CLUSTER, 300, 0, &e);
		fill(v[i], 300, (unsigned)i + 3);
	}
	hl_place_t to_m = { .node = -1, .region = m }, to_a = { .node = -1, .region = a };
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	if (no_uffd) {
		is_int(hl_migrate(v[0], &to_m, 0), HL_EPERM,
		       "HEAPLIB_NO_UFFD=1: a move to another backing is HL_EPERM");
		ok(hl_region_of(v[0]) == a, "and the block stays");
		hl_migrate_stats(&ms);
		ok(!ms.uffd && ms.uffd_reason[0] && ms.refused[8] >= 1,
		   "the statistics say why (%s), and count the refusal as %s", ms.uffd_reason,
		   hl_migrate_why_name(8));
		is_int(hl_region_delete(a), HL_EBUSY, "an anonymous region cannot be evacuated into memfd only");
	} else {
		hl_migrate_stats(&ms);
		uint64_t before = ms.moves[4];
		e = hl_migrate(v[0], &to_m, 0);
		if (e == HL_EPERM) {
			skip(6, "backing moves are not available here: %s", ms.uffd_reason);
		} else {
			is_int(e, HL_OK, "a move from anonymous memory to the memfd region");
			bool all = true;
			for (int i = 0; i < 100; i++)
				all &= intact(v[i], 300, (unsigned)i + 3);
			ok(all && hl_region_of(v[0]) == m, "in place, bytes kept, now the memfd's");
			hl_migrate_stats(&ms);
			ok(ms.moves[4] == before + 1 && ms.protect_us[0] + ms.protect_us[1] +
			   ms.protect_us[2] + ms.protect_us[3] + ms.protect_us[4] + ms.protect_us[5] +
			   ms.protect_us[6] + ms.protect_us[7] >= 1, "counted as a backing move, its window timed");
			memset(v[0], 0x77, 300);   /* writes land in the memfd now */
			fill(v[0], 300, 3);
			is_int(hl_migrate(v[0], &to_a, 0), HL_OK, "and back to anonymous memory");
			all = true;
			for (int i = 0; i < 100; i++)
				all &= intact(v[i], 300, (unsigned)i + 3);
			ok(all && hl_region_of(v[0]) == a, "with its bytes");
			hl_migrate(v[0], &to_m, 0);
			ok(hl_region_delete(m) == HL_OK && hl_region_of(v[0]) != m,
			   "a memfd region holding blocks is deleted by evacuation to anonymous memory");
			m = NULL;
		}
	}
	for (int i = 0; i < 100; i++)
		hl_free(v[i]);
	if (m)
		is_int(hl_region_delete(m), HL_OK, "memfd region deleted");
	hl_region_delete(a);
}

int main(int argc, char **argv)
{
	(void)argc;
	plan_no_plan();
	if (getenv("HEAPLIB_MIGRATE_WAIT_MS")) {
		test_task_and_oom(argv);
		return done_testing();
	}
	if (getenv("HEAPLIB_NO_UFFD")) {
		test_backing();
		return done_testing();
	}
	test_one_block();
	test_evacuate();
	test_refusals();
	test_relief();
	test_share();
	test_cached_move();
	test_backing();
	test_task_and_oom(argv);
	return done_testing();
}
