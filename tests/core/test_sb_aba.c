/*
 * ABA, deterministically: a thread is parked at the test hook between
 * reading a stack head (and its link) and its CAS, while the main thread
 * recycles the very superblock / descriptor it read, so that the head
 * returns to the same node with the tag advanced by exactly 4.
 *
 * With the real tag the parked CAS fails and the pop retries: pass.  The
 * build with HL_TAG_BITS=2 wraps the tag back to what the parked thread
 * saw, its CAS succeeds and installs a node the main thread holds: each
 * scenario must then report failure (tests/conc/test_teeth.sh checks it).
 *
 * Each scenario runs in a child process so that a corrupted heap (or the
 * test build's "descriptor unlisted twice" assertion) fails one test.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

/* The parked thread is created before a scenario sets up its stack and
 * waits for this: creating a thread allocates (its TLS), and that must not
 * take the nodes the scenario placed. */
static sem_t t1_go;

static pthread_t t1_start(void *(*fn)(void *))
{
	pthread_t t;
	sem_init(&t1_go, 0, 0);
	pthread_create(&t, NULL, fn, NULL);
	return t;
}

static void t1_wait_go(void)
{
	while (sem_wait(&t1_go) != 0)
		;
}

/* ---- span cache: superblock address ranges recycled ------------------- */

static uint32_t t1_span;

static void *span_popper(void *arg)
{
	(void)arg;
	bool fresh;
	t1_wait_go();
	park_arm_self();
	t1_span = pm_span_get(0, NULL, &fresh);
	return NULL;
}

static int scenario_span(void)
{
	bool fresh;
	char *base;
	pthread_t t = t1_start(span_popper);
	/* Empty the cache of whatever start-up left there. */
	while (pm_span_get(0, NULL, &fresh))
		;
	uint32_t s1 = pm_span_get(0, &base, &fresh);
	uint32_t s2 = pm_span_get(0, &base, &fresh);
	uint32_t s3 = pm_span_get(0, &base, &fresh);
	uint32_t s4 = pm_span_get(0, &base, &fresh);
	pm_span_put(s3, 0);
	pm_span_put(s2, 0);
	pm_span_put(s1, 0);            /* cache: s1 s2 s3 */

	park_setup(HOOK_TSTACK_POP_READ);
	sem_post(&t1_go);
	park_wait_parked();            /* T1 read head s1, link s2 */
	uint32_t a = pm_span_get(0, NULL, &fresh);   /* s1 */
	uint32_t b = pm_span_get(0, NULL, &fresh);   /* s2: now ours */
	pm_span_put(s4, 0);
	pm_span_put(a, 0);             /* cache: s1 s4 s3, tag +4 */
	park_release();
	pthread_join(t, NULL);

	int bad = 0;
	if (a != s1 || b != s2) {
		fprintf(stderr, "setup: popped %u %u, expected %u %u\n", a, b, s1, s2);
		return 3;
	}
	uint32_t got[8];
	unsigned n = 0;
	uint32_t s;
	while (n < 8 && (s = pm_span_get(0, NULL, &fresh)) != 0)
		got[n++] = s;
	for (unsigned i = 0; i < n; i++)
		if (got[i] == s2) {
			fprintf(stderr, "span %u is held by main but was still cached\n", s2);
			bad = 1;
		}
	if (t1_span != s1) {
		fprintf(stderr, "parked pop returned %u, expected %u\n", t1_span, s1);
		bad = 1;
	}
	if (n != 2) {
		fprintf(stderr, "cache held %u spans after the race, expected 2 (s4, s3)\n", n);
		bad = 1;
	}
	return bad;
}

/* ---- partial list: descriptors recycled -------------------------------- */

static hl_desc_t *t1_desc;
static unsigned aba_cls;

static void *list_popper(void *arg)
{
	(void)arg;
	t1_wait_go();
	park_arm_self();
	t1_desc = sb_test_unlist(aba_cls);
	return NULL;
}

static int scenario_plist(void)
{
	aba_cls = sc_of(28672);
	pthread_t t = t1_start(list_popper);
	while (sb_test_unlist(aba_cls))
		;
	hl_desc_t *A = sb_test_new(0, aba_cls), *B = sb_test_new(0, aba_cls);
	hl_desc_t *C = sb_test_new(0, aba_cls), *D = sb_test_new(0, aba_cls);
	sb_test_list(C);
	sb_test_list(B);
	sb_test_list(A);               /* list: A B C */

	park_setup(HOOK_TSTACK_POP_READ);
	sem_post(&t1_go);
	park_wait_parked();            /* T1 holds a hazard on A, read link B */
	hl_desc_t *a = sb_test_unlist(aba_cls);
	hl_desc_t *b = sb_test_unlist(aba_cls);     /* B is ours now */
	sb_test_list(D);
	sb_test_list(a);               /* list: A D C, tag +4 */
	park_release();
	pthread_join(t, NULL);

	if (a != A || b != B) {
		fprintf(stderr, "setup: unlisted %p %p, expected %p %p\n",
			(void *)a, (void *)b, (void *)A, (void *)B);
		return 3;
	}
	int bad = 0;
	if (t1_desc != A) {
		fprintf(stderr, "parked pop returned %p, expected A %p\n", (void *)t1_desc, (void *)A);
		bad = 1;
	}
	hl_desc_t *d;
	unsigned n = 0;
	while (n < 8 && (d = sb_test_unlist(aba_cls)) != NULL) {
		n++;
		if (d == B) {
			fprintf(stderr, "descriptor B is held by main but was still listed\n");
			bad = 1;
		}
	}
	if (n != 2) {
		fprintf(stderr, "list held %u descriptors after the race, expected 2 (D, C)\n", n);
		bad = 1;
	}
	return bad;
}

static void run(int (*fn)(void), const char *name)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		diag("%s: child killed by signal %d", name, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		diag("%s: child exit status %d", name, WEXITSTATUS(st));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", name);
}

int main(void)
{
	plan(2);
	hl_free(hl_malloc(1));
	diag("tag bits: %d (stack), %d (anchor)", HL_TAG_BITS, HL_ANCHOR_TAG_BITS);
	run(scenario_span, "span cache pop parked across pop-pop-push-push of the same span fails its CAS and retries");
	run(scenario_plist, "partial-list pop parked across unlist-unlist-list-list of the same descriptor fails its CAS and retries");
	return done_testing();
}
