/*
 * fork and nomadic memory (plain and ASan builds: TSan's children of
 * threaded parents die by design):
 *  1. a memfd region not made to be shared: the child gets a private,
 *     consistent copy while a parent thread keeps writing into it and
 *     allocating in it; the child may allocate and free there, and its
 *     writes never reach the parent;
 *  2. a memfd region made to be shared: the child's writes reach the
 *     parent, and the child may neither allocate nor free in it;
 *  3. fork while the coordinator moves superblocks: both sides
 *     consistent, and the child, which starts with no coordinator, gets
 *     one of its own for its moves.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
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

static hl_region_t *memfd_region(const char *name, int shared)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = 4 * MB;
	a.backing = HL_BACKING_MEMFD;
	a.shared = shared;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("memfd region %s", name);
	return r;
}

static void *in(hl_region_t *r, size_t size, int *err)
{
	hl_place_t pl = { .node = -1, .region = r };
	void *p = NULL;
	*err = hl_alloc(size, &pl, 0, &p);
	return p;
}

static atomic_int stop;
static hl_region_t *wr_region;
static volatile uint64_t *wr_word;   /* the parent writer's counter */

static void *writer(void *arg)
{
	(void)arg;
	int e;
	while (!atomic_load(&stop)) {
		(*wr_word)++;
		void *p = in(wr_region, 200, &e);
		if (p) {
			memset(p, 0x5c, 200);
			hl_free(p);
		}
	}
	return NULL;
}

/* Child of test 1: exit status says what held (0: all). */
static int child_private(hl_region_t *m, unsigned char **v, int n, unsigned char *mine)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 500; k++)
			if (v[i][k] != (unsigned char)(i + k))
				return 1;   /* the copy is not the parent's bytes */
	if (hl_region_of(v[0]) != m)
		return 2;
	int e;
	void *p = in(m, 100, &e);
	if (!p || e != HL_OK)
		return 3;   /* a private copy is the child's own heap */
	hl_free(p);
	memset(mine, 0xee, 500);   /* must not reach the parent */
	hl_free(v[n - 1]);
	return 0;
}

static void test_private(void)
{
	hl_region_t *m = memfd_region("fork-private", 0);
	enum { N = 64 };
	unsigned char *v[N];
	int e;
	for (int i = 0; i < N; i++) {
		v[i] = in(m, 500, &e);
		for (int k = 0; k < 500; k++)
			v[i][k] = (unsigned char)(i + k);
	}
	unsigned char *mine = in(m, 500, &e);
	memset(mine, 0x11, 500);
	wr_region = m;
	wr_word = (volatile uint64_t *)in(m, 64, &e);
	*wr_word = 0;
	atomic_store(&stop, 0);
	pthread_t th;
	pthread_create(&th, NULL, writer, NULL);
	usleep(20000);
	int bad = 0, done = 0;
	for (int round = 0; round < 5; round++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_private(m, v, N, mine));
		int st = -1;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			diag("child %d: status %d", round, st);
			bad++;
		}
		done++;
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ok(!bad, "%d children forked while a thread wrote and allocated in a memfd region: each "
	   "had the parent's bytes, and its own heap there", done);
	bool kept = true;
	for (int k = 0; k < 500; k++)
		kept &= mine[k] == 0x11;
	ok(kept, "the children's writes did not reach the parent");
	ok(*wr_word > 0, "the parent's writer went on (%llu stores)", (unsigned long long)*wr_word);
	int e2;
	void *p = in(m, 100, &e2);
	ok(p != NULL, "the parent still allocates there");
	hl_free(p);
	for (int i = 0; i < N; i++)
		hl_free(v[i]);
	hl_free(mine);
	hl_free((void *)wr_word);
	is_int(hl_region_delete(m), HL_OK, "the private region is deleted in the parent");
}

static void test_shared(void)
{
	hl_region_t *s = memfd_region("fork-shared", 1);
	int e;
	unsigned char *b = in(s, 300, &e);
	memset(b, 0x22, 300);
	pid_t pid = fork();
	if (pid == 0) {
		void *p = in(s, 100, &e);
		if (p || e != HL_EPERM)
			_exit(1);
		memset(b, 0x33, 300);
		_exit(0);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "in a region made to be shared, the child may not allocate (HL_EPERM)");
	ok(b[0] == 0x33 && b[299] == 0x33, "and its writes reach the parent (shared pages)");
	hl_free(b);
	is_int(hl_region_delete(s), HL_OK, "the shared region is deleted");
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.shared = 1;
	hl_region_t *x = NULL;
	is_int(hl_region_create(&a, &x), HL_EINVAL, "only a memfd region can be shared");
}

static hl_region_t *ra, *rb;
static void *probe[32];

static void *mover(void *arg)
{
	(void)arg;
	unsigned k = 0;
	while (!atomic_load(&stop)) {
		void *p = probe[k++ % 32];
		hl_place_t to = { .node = -1, .region = hl_region_of(p) == ra ? rb : ra };
		hl_migrate(p, &to, 0);
	}
	return NULL;
}

static void test_moving(void)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.capacity = 16 * MB;
	hl_region_create(&a, &ra);
	hl_region_create(&a, &rb);
	int e;
	for (int i = 0; i < 32; i++) {
		probe[i] = in(ra, 1000, &e);
		memset(probe[i], i, 1000);
	}
	atomic_store(&stop, 0);
	pthread_t th;
	pthread_create(&th, NULL, mover, NULL);
	usleep(10000);
	int bad = 0;
	for (int round = 0; round < 10; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < 32; i++)
				for (int k = 0; k < 1000; k++)
					if (((unsigned char *)probe[i])[k] != (unsigned char)i)
						_exit(1);
			hl_migrate_stats_t ms = { .struct_size = sizeof ms };
			hl_migrate_stats(&ms);
			if (ms.running)
				_exit(2);   /* the parent's coordinator is not the child's */
			hl_place_t to = { .node = -1, .region = hl_region_of(probe[0]) == ra ? rb : ra };
			if (hl_migrate(probe[0], &to, 0) != HL_OK || hl_region_of(probe[0]) != to.region)
				_exit(3);
			_exit(0);
		}
		int st = -1;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			diag("child %d: status %d", round, st);
			bad++;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ok(!bad, "10 forks while superblocks moved: every child consistent, with no coordinator "
	   "until its own move started one");
	bool all = true;
	for (int i = 0; i < 32; i++)
		for (int k = 0; k < 1000; k++)
			all &= ((unsigned char *)probe[i])[k] == (unsigned char)i;
	ok(all, "and the parent's blocks intact");
	for (int i = 0; i < 32; i++)
		hl_free(probe[i]);
	is_int(hl_region_delete(ra), HL_OK, "regions deleted");
	hl_region_delete(rb);
}

int main(void)
{
	plan_no_plan();
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	hl_migrate_stats(&ms);
	if (!ms.uffd)
		diag("no userfaultfd here (%s): the private copy cannot be protected", ms.uffd_reason);
	if (ms.uffd)
		test_private();
	else
		skip(5, "userfaultfd unavailable: %s", ms.uffd_reason);
	test_shared();
	test_moving();
	return done_testing();
}
