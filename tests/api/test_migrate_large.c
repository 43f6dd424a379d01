/*
 * Nomadic memory for large blocks (over 32 KiB) of regions, through the
 * public API: a large block moves as a superblock of one block.  Each
 * tier with its bytes checked after the move (the books only; page
 * attributes into a secure region: locked and out of dumps; tier 3 is in
 * tests/core/test_move_node, this machine having one node), the region
 * and task books exact after moves and frees, each refusal rule (pinned,
 * CPU-private, secure to non-secure, reach, another backing, malloc's own
 * heap), region deletion by evacuation of large and small blocks, task
 * migration, OOM resolution and move events.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

/* A region, or NULL (tests/api/ includes only heaplib.h and tap.h, so
 * tests/lib/regions.h's helpers are spelled out here). */
static hl_region_t *test_region(const char *name, size_t cap, unsigned reach, int secure,
				hl_backing_t kind)
{
	hl_region_attr_t a = { .struct_size = sizeof a, .name = name, .capacity = cap,
			       .reach = reach, .secure = secure, .backing = kind };
	hl_region_t *r = NULL;
	return hl_region_create(&a, &r) == HL_OK ? r : NULL;
}

static hl_region_stats_t test_rst(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s;
}

static hl_migrate_stats_t mst(void)
{
	hl_migrate_stats_t s = { .struct_size = sizeof s };
	hl_migrate_stats(&s);
	return s;
}

/* The index of the refusal reason called name. */
static unsigned why(const char *name)
{
	for (unsigned i = 1; hl_migrate_why_name(i); i++)
		if (!strcmp(hl_migrate_why_name(i), name))
			return i;
	bail_out("no refusal reason %s", name);
	return 0;
}

static void *in(hl_region_t *r, unsigned reach, size_t size, unsigned flags)
{
	hl_place_t pl = { .reach = reach, .node = -1, .region = r };
	void *p = NULL;
	int e = hl_alloc(size, &pl, flags, &p);
	return e == HL_OK ? p : NULL;
}

static void fill(void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 8)
		((uint64_t *)p)[i / 8] = seed * 0x9e3779b97f4a7c15ull + i;
}

static bool intact(const void *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 8)
		if (((const uint64_t *)p)[i / 8] != seed * 0x9e3779b97f4a7c15ull + i)
			return false;
	return true;
}

static int move(void *p, hl_region_t *to)
{
	hl_place_t pl = { .node = -1, .region = to };
	return hl_migrate(p, &pl, 0);
}

/* From /proc/self/smaps: the kB of field of the mapping holding p, and
 * whether its VmFlags hold flag; -1 when not found. */
static long smaps_of(const void *p, const char *field, const char *flag, bool *has)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool here = false;
	long kb = -1;
	*has = false;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			here = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (here && !strncmp(line, field, strlen(field)))
			kb = strtol(line + strlen(field), NULL, 10);
		if (here && !strncmp(line, "VmFlags:", 8))
			*has = strstr(line, flag) != NULL;
	}
	if (f)
		fclose(f);
	return kb;
}

/* 300 KiB asked: a region block is whole slots, so 320 KiB are booked. */
#define L (320 * KB)

static void test_account(void)
{
	hl_region_t *a = test_region("lg-a", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *b = test_region("lg-b", 8 * MB, 0, 0, HL_BACKING_ANON);
	void *p = in(a, 0, 300 * KB, 0), *q = in(a, 0, 100 * KB, 0);
	if (!p || !q)
		bail_out("large blocks in a");
	fill(p, 300 * KB, 1);
	fill(q, 100 * KB, 2);
	hl_region_stats_t sa = test_rst(a), sb = test_rst(b);
	hl_migrate_stats_t m0 = mst();
	is_int(move(p, b), HL_OK, "hl_migrate moves a large block to another region");
	hl_migrate_stats_t m1 = mst();
	is_ptr(hl_region_of(p), b, "it is b's now");
	ok(intact(p, 300 * KB, 1), "its bytes are kept at its address");
	ok(m1.moves[1] == m0.moves[1] + 1 && m1.bytes[1] == m0.bytes[1] + L,
	   "counted as an accounting move of 320 KiB (%llu moves, %llu bytes)",
	   (unsigned long long)(m1.moves[1] - m0.moves[1]), (unsigned long long)(m1.bytes[1] - m0.bytes[1]));
	hl_region_stats_t sa1 = test_rst(a), sb1 = test_rst(b);
	is_int((long long)sa1.blocks_live, (long long)sa.blocks_live - 1, "a: one live block fewer");
	is_int((long long)sa1.bytes_live, (long long)sa.bytes_live - L, "a: 320 KiB fewer live bytes");
	is_int((long long)sa1.bytes_backed, (long long)sa.bytes_backed - L, "a: 320 KiB fewer backed");
	is_int((long long)sb1.blocks_live, (long long)sb.blocks_live + 1, "b: one live block more");
	is_int((long long)sb1.bytes_live, (long long)sb.bytes_live + L, "b: 320 KiB more live bytes");
	is_int((long long)sb1.bytes_backed, (long long)sb.bytes_backed + L, "b: 320 KiB more backed");
	is_int(move(p, a), HL_OK, "and back to a");
	is_int(move(p, b), HL_OK, "and to b again");
	ok(intact(p, 300 * KB, 1) && intact(q, 100 * KB, 2), "both blocks kept their bytes");
	hl_free(p);
	hl_region_stats_t sb2 = test_rst(b);
	ok(sb2.blocks_live == 0 && sb2.bytes_live == 0 && sb2.bytes_backed == 0,
	   "its free is booked to b: nothing live or backed there (%llu, %llu, %llu)",
	   (unsigned long long)sb2.blocks_live, (unsigned long long)sb2.bytes_live,
	   (unsigned long long)sb2.bytes_backed);
	is_int((long long)test_rst(a).blocks_live, 1, "a holds the other block only");
	hl_free(q);
	ok(test_rst(a).blocks_live == 0 && test_rst(a).bytes_backed == 0, "a, after its free: nothing");
	is_int(hl_region_delete(a), HL_OK, "a deleted");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
}

static void test_attr(void)
{
	hl_region_t *a = test_region("lg-plain", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *s = test_region("lg-secure", 8 * MB, 0, 1, HL_BACKING_ANON);
	void *p = in(a, 0, 128 * KB, 0);
	void *x = s ? in(s, 0, 64 * KB, 0) : NULL;
	if (!s || !x) {
		skip(7, "no secure region here (RLIMIT_MEMLOCK?)");
		hl_free(p);
		if (s)
			hl_region_delete(s);
		hl_region_delete(a);
		return;
	}
	fill(p, 128 * KB, 3);
	bool dd;
	long locked = smaps_of(p, "Locked:", " dd", &dd);
	ok(locked == 0 && !dd, "before: its pages are not locked, and dumped (%ld kB locked)", locked);
	hl_migrate_stats_t m0 = mst();
	is_int(move(p, s), HL_OK, "a plain large block moves into a secure region (tier 2)");
	hl_migrate_stats_t m1 = mst();
	ok(m1.moves[2] == m0.moves[2] + 1, "counted as a page-attribute move");
	ok(intact(p, 128 * KB, 3) && hl_region_of(p) == s, "in place, bytes kept, now the secure region's");
	locked = smaps_of(p, "Locked:", " dd", &dd);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	locked = 128;   /* the sanitizers make mlock a no-op */
#endif
	ok(locked >= 128 && dd, "its pages are locked (%ld kB) and out of core dumps", locked);
	is_int(move(p, a), HL_EPERM, "secure memory is never moved to a non-secure region");
	ok(mst().refused[why("secure")] == m1.refused[why("secure")] + 1 && hl_region_of(p) == s,
	   "refused as secure, and it stays");
	hl_free(p);
	hl_free(x);
	ok(test_rst(s).blocks_live == 0 && test_rst(s).bytes_backed == 0 && test_rst(a).bytes_backed == 0,
	   "the free was booked to the secure region");
	hl_region_delete(s);
	hl_region_delete(a);
}

static void test_refusals(void)
{
	hl_region_t *a = test_region("lg-r-a", 8 * MB, HL_REACH_SYS | HL_REACH_CLUSTER | HL_REACH_CPU, 0,
				HL_BACKING_ANON);
	hl_region_t *b = test_region("lg-r-b", 8 * MB, 0, 0, HL_BACKING_ANON);
	if (!a || !b)
		bail_out("regions");
	hl_migrate_stats_t m0 = mst();
	void *pin = in(a, 0, 64 * KB, HL_NOMIGRATE);
	is_int(move(pin, b), HL_EPERM, "a pinned (HL_NOMIGRATE) large block is not moved");
	void *cpu = in(a, HL_REACH_CPU, 64 * KB, 0);
	is_int(move(cpu, b), HL_EPERM, "nor a CPU-private one");
	void *clu = in(a, HL_REACH_CLUSTER, 64 * KB, 0);
	is_int(move(clu, b), HL_ENOREGION, "nor a CLUSTER one to a region it cannot be reached in");
	hl_migrate_stats_t m1 = mst();
	ok(m1.refused[why("pinned")] == m0.refused[why("pinned")] + 1 &&
	   m1.refused[why("cpu_private")] == m0.refused[why("cpu_private")] + 1 &&
	   m1.refused[why("reach")] == m0.refused[why("reach")] + 1,
	   "each counted under its reason");
	ok(hl_region_of(pin) == a && hl_region_of(cpu) == a && hl_region_of(clu) == a, "all three stay in a");
	/* A user buffer's region serves no large block (its addresses are
	 * the user's, and a large block is a mapping of its own). */
	static _Alignas(65536) char buf[512 * 1024];
	hl_region_attr_t ba = { .struct_size = sizeof ba, .name = "lg-buf", .backing = HL_BACKING_BUFFER,
				.buffer = buf, .capacity = sizeof buf };
	hl_region_t *m = NULL;
	is_int(hl_region_create(&ba, &m), HL_OK, "a region over a user buffer");
	void *bl = in(m, 0, 64 * KB, 0), *bs = in(m, 0, 64, 0);
	ok(!bl && bs && hl_region_of(bs) == m, "it serves small blocks only: a large one is refused");
	hl_free(bs);
	void *p = in(a, 0, 64 * KB, 0);
	void *mal = hl_malloc(64 * KB);
	is_int(move(mal, b), HL_OK, "malloc's own large blocks move too (test_migrate_default)");
	is_int(move((char *)p + 4096, b), HL_EINVAL, "a pointer inside a large block: HL_EINVAL");
	hl_free(mal);
	hl_region_stats_t sa = test_rst(a);
	is_int(hl_region_delete(a), HL_EBUSY, "a, holding a pinned large block, is not deleted");
	hl_region_stats_t sa2 = test_rst(a);
	ok(sa2.blocks_live == sa.blocks_live && sa2.bytes_backed == sa.bytes_backed &&
	   hl_region_of(p) == a, "and nothing of it moved (planned first)");
	hl_free(pin);
	hl_free(cpu);
	hl_free(clu);
	hl_free(p);
	is_int(hl_region_delete(a), HL_OK, "emptied, a is deleted");
	hl_region_delete(b);
	is_int(hl_region_delete(m), HL_OK, "the buffer's region deleted");
}

/* Whether the mapping holding p is shared (a memfd's offsets). */
static bool shared_at(const void *p)
{
	bool sh;
	smaps_of(p, "Rss:", " sh", &sh);
	return sh;
}

/* Tier 4: a large block changes backing in place, piece by piece (700
 * KiB: 11 slots, pieces of 8, 2 and 1), and memfd regions serve large
 * blocks, copied privately into a fork child. */
static void test_backing(void)
{
	hl_region_t *a = test_region("lg-back-anon", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *m = test_region("lg-back-memfd", 8 * MB, 0, 0, HL_BACKING_MEMFD);
	void *p = in(a, 0, 700 * KB, 0);
	if (!m || !p)
		bail_out("memfd region, block");
	fill(p, 700 * KB, 5);
	hl_migrate_stats_t m0 = mst();
	int e = move(p, m);
	if (e == HL_EPERM) {
		ok(mst().refused[why("no_userfaultfd")] == m0.refused[why("no_userfaultfd")] + 1 &&
		   hl_region_of(p) == a && intact(p, 700 * KB, 5),
		   "without userfaultfd a backing move is refused (%s), the block stays", m0.uffd_reason);
		skip(11, "backing moves are not available here: %s", m0.uffd_reason);
		hl_free(p);
		hl_region_delete(m);
		hl_region_delete(a);
		return;
	}
	is_int(e, HL_OK, "a large block moves from anonymous memory to a memfd region");
	hl_migrate_stats_t m1 = mst();
	ok(hl_region_of(p) == m && intact(p, 700 * KB, 5) && shared_at(p) &&
	   shared_at((char *)p + 700 * KB - 1),
	   "in place, bytes kept, every piece now the memfd's (a shared mapping)");
	ok(m1.moves[4] == m0.moves[4] + 1 && m1.bytes[4] == m0.bytes[4] + 704 * KB,
	   "counted as one backing move of 704 KiB");
	hl_region_stats_t sm = test_rst(m);
	ok(sm.blocks_live == 1 && sm.bytes_live == 704 * KB && sm.bytes_backed == 704 * KB &&
	   test_rst(a).bytes_backed == 0, "booked to the memfd region, nothing left in a");
	fill(p, 700 * KB, 6);   /* writes land in the memfd now */
	is_int(move(p, a), HL_OK, "and back to anonymous memory");
	ok(hl_region_of(p) == a && intact(p, 700 * KB, 6) && !shared_at(p), "with its bytes, private again");
	void *q = in(m, 0, 300 * KB, 0);
	bool zero = q != NULL;
	for (size_t i = 0; q && i < 300 * KB; i++)
		zero &= ((unsigned char *)q)[i] == 0;
	ok(q && hl_region_of(q) == m && shared_at(q) && zero,
	   "a memfd region serves large blocks of its own offsets, zeroed");
	fill(q, 300 * KB, 7);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child's copy is private: its writes stay its own. */
		int bad = !intact(q, 300 * KB, 7);
		memset(q, 0x11, 300 * KB);
		_exit(bad);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && intact(q, 300 * KB, 7),
	   "a fork child gets a private copy of the memfd's large block (status %d)", status);
	/* Between two memfd regions a move is a copy too: after the delete
	 * of the first, nothing of the moved blocks may be left in its memfd. */
	hl_region_t *m2 = test_region("lg-back-memfd2", 8 * MB, 0, 0, HL_BACKING_MEMFD);
	void *small = in(m, 0, 200, 0);
	fill(small, 200, 8);
	hl_migrate_stats_t m2s = mst();
	ok(move(q, m2) == HL_OK && move(small, m2) == HL_OK && mst().moves[4] == m2s.moves[4] + 2,
	   "memfd to memfd: a large and a small block, each a backing move");
	is_int(hl_region_delete(m), HL_OK, "the first memfd region, emptied by the moves, is deleted");
	ok(hl_region_of(q) == m2 && hl_region_of(small) == m2 && intact(q, 300 * KB, 7) && intact(small, 200, 8),
	   "the moved blocks keep their bytes in the second");
	m = m2;
	hl_free(small);
	is_int(move(p, m), HL_OK, "p into the memfd region again");
	is_int(hl_region_delete(m), HL_OK, "the memfd region, holding two large blocks, is evacuated");
	ok(hl_region_of(p) == a && hl_region_of(q) == a && intact(p, 700 * KB, 6) &&
	   intact(q, 300 * KB, 7) && !shared_at(p) && !shared_at(q),
	   "to anonymous memory, bytes kept");
	hl_free(p);
	hl_free(q);
	hl_region_stats_t sa = test_rst(a);
	ok(sa.blocks_live == 0 && sa.bytes_backed == 0, "after the frees a holds nothing");
	hl_region_delete(a);
}

static void test_evacuate(void)
{
	hl_region_t *a = test_region("lg-evac-a", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *b = test_region("lg-evac-b", 16 * MB, 0, 0, HL_BACKING_ANON);
	enum { NL = 12, NS = 500 };
	void *lg[NL], *sm[NS];
	uint64_t bytes = 0;
	for (int i = 0; i < NL; i++) {
		size_t len = (size_t)(40 + 60 * i) * KB;
		lg[i] = in(a, 0, len, 0);
		if (!lg[i])
			bail_out("large %d", i);
		fill(lg[i], len, 10u + (unsigned)i);
		bytes += len;
	}
	for (int i = 0; i < NS; i++) {
		sm[i] = in(a, 0, 200, 0);
		if (!sm[i])
			bail_out("small %d", i);
		fill(sm[i], 200, 100u + (unsigned)i);
	}
	hl_region_stats_t sb = test_rst(b);
	is_int(hl_region_delete(a), HL_OK, "a, holding large and small blocks, is deleted by evacuation");
	bool all = true, where = true;
	for (int i = 0; i < NL; i++) {
		all &= intact(lg[i], (size_t)(40 + 60 * i) * KB, 10u + (unsigned)i);
		where &= hl_region_of(lg[i]) == b;
	}
	ok(all && where, "every large block is b's now, with its bytes");
	all = where = true;
	for (int i = 0; i < NS; i++) {
		all &= intact(sm[i], 200, 100u + (unsigned)i);
		where &= hl_region_of(sm[i]) == b;
	}
	ok(all && where, "and every small block");
	hl_region_stats_t sb1 = test_rst(b);
	is_int((long long)sb1.blocks_live, (long long)sb.blocks_live + NL + NS, "b's books count them all");
	ok(sb1.bytes_live >= sb.bytes_live + bytes + NS * 200, "with their bytes");
	for (int i = 0; i < NL; i++)
		hl_free(lg[i]);
	for (int i = 0; i < NS; i++)
		hl_free(sm[i]);
	hl_region_stats_t sb2 = test_rst(b);
	ok(sb2.blocks_live == 0 && sb2.bytes_live == 0, "after the frees nothing is live in b");
	is_int(hl_region_delete(b), HL_OK, "b deleted");
}

static int events;
static size_t event_bytes;

static void on_move(hl_task_t *t, const hl_move_event_t *ev, void *arg)
{
	(void)t;
	(void)arg;
	events++;
	event_bytes += ev->bytes;
}

static void test_task_and_oom(void)
{
	hl_region_t *a = test_region("lg-oom-a", 1 * MB, HL_REACH_SYS | HL_REACH_CLUSTER, 0, HL_BACKING_ANON);
	hl_region_t *b = test_region("lg-oom-b", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *c = test_region("lg-task-c", 8 * MB, 0, 0, HL_BACKING_ANON);
	hl_region_t *abc[3] = { a, b, c };
	hl_task_t *t = NULL;
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "lg-tenant", .regions = abc,
			      .nregions = 3, .on_move = on_move };
	is_int(hl_task_create(&ta, &t), HL_OK, "a task allowed a, b and c");
	hl_task_join(t);
	void *v[8];
	int n = 0;
	for (; n < 8; n++) {
		v[n] = in(NULL, HL_REACH_SYS, 200 * KB, 0);
		if (!v[n])
			break;
		if (hl_region_of(v[n]) != a) {
			hl_free(v[n]);   /* a is full: the next region took it */
			break;
		}
		fill(v[n], 200 * KB, 20u + (unsigned)n);
	}
	ok(n >= 4 && n < 8, "its large SYS blocks fill a (%d of them)", n);
	events = 0;
	event_bytes = 0;
	void *cl = in(NULL, HL_REACH_CLUSTER, 200 * KB, 0);
	ok(cl && hl_region_of(cl) == a,
	   "a CLUSTER allocation only a can serve succeeds once the coordinator moved large blocks out");
	int in_b = 0;
	bool all = true;
	for (int i = 0; i < n; i++) {
		in_b += hl_region_of(v[i]) == b;
		all &= intact(v[i], 200 * KB, 20u + (unsigned)i);
	}
	ok(in_b > 0 && all, "%d of them moved to b, bytes kept", in_b);
	hl_task_poll();
	ok(events >= in_b && event_bytes >= (size_t)in_b * 200 * KB,
	   "the task was told of each move (%d events, %zu bytes)", events, event_bytes);
	hl_place_t to_c = { .node = -1, .region = c };
	is_int(hl_task_migrate(t, &to_c, 0), HL_ENOREGION,
	       "hl_task_migrate onto c: all but the CLUSTER block move (HL_ENOREGION for it)");
	all = true;
	bool where = true;
	for (int i = 0; i < n; i++) {
		all &= intact(v[i], 200 * KB, 20u + (unsigned)i);
		where &= hl_region_of(v[i]) == c;
	}
	ok(all && where && hl_region_of(cl) == a, "the task's large blocks are c's, bytes kept");
	hl_task_stats_t st = { .struct_size = sizeof st };
	hl_task_stats(t, c, &st);
	ok(st.blocks_live >= (uint64_t)n && st.bytes_live >= (uint64_t)n * 200 * KB,
	   "booked to the task in c (%llu blocks)", (unsigned long long)st.blocks_live);
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	hl_free(cl);
	hl_task_stats(t, NULL, &st);
	ok(st.blocks_live == 0 && st.bytes_live == 0, "after the frees the task holds nothing");
	ok(test_rst(a).bytes_backed == 0 && test_rst(b).bytes_backed == 0 && test_rst(c).bytes_backed == 0,
	   "and no region is charged for it");
	hl_task_join(NULL);
	hl_task_destroy(t);
	hl_region_delete(a);
	hl_region_delete(b);
	hl_region_delete(c);
}

int main(void)
{
	plan_no_plan();
	test_account();
	test_attr();
	test_refusals();
	test_backing();
	test_evacuate();
	test_task_and_oom();
	return done_testing();
}
