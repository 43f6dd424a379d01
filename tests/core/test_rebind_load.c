/*
 * Backing moves under load (mem/rebind.c, through bk_span_move), without
 * regions: spans taken straight from a memfd backing and an anonymous
 * one.
 *  A. One 512 KiB span moved back and forth, anonymous <-> memfd,
 *     10^4 times (x HEAPLIB_TEST_SCALE), while two threads store into it
 *     (each checks, before every store, that its previous store is still
 *     there), one thread recv()s datagrams into it from a socketpair and
 *     another read()s a pipe into it: no store lost, no datagram or pipe
 *     byte lost or damaged, no EFAULT.
 *  B. Fresh 64 KiB anonymous spans, never touched, moved while two
 *     threads begin storing into them: the writes into never-populated
 *     pages during the first move are the ones the kernel does not
 *     protect without UFFD_FEATURE_WP_UNPOPULATED (or a populate first).
 * Built twice: test_rebind_load asks for every feature, and
 * test_rebind_prepop (REBIND_MASKED) runs with HEAPLIB_UFFD_FEATURES
 * masking WP_UNPOPULATED, the path of kernels before 6.4.  A thread the
 * kernel holds and nobody wakes fails the test by its deadline, not by
 * hanging.  Where userfaultfd is unavailable (valgrind, no privilege) the
 * test is a visible skip with the reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mem/mem.h"
#include "tap.h"

#define WP_UNPOPULATED ((uint64_t)1 << 13)
#define BIG 3                  /* order of phase A's span: 512 KiB */
#define WRITERS 2
#define WR_BYTES ((size_t)384 << 10)     /* the writers' part of the span */
#define DG_OFF WR_BYTES                  /* datagrams land here */
#define DG_SIZE 512u
#define DG_SLOTS 120u
#define PIPE_OFF ((size_t)448 << 10)     /* the pipe reader's part */
#define PIPE_CHUNK 4096u
#define PIPE_SLOTS 16u

static bk_t *mfd, *anon;
static hl_budget_t budget;
static hl_account_t ac_mfd, ac_anon;

static char *volatile span;     /* phase A's span */
static int stop;
static int quit;                /* the deadline passed: everyone out */
static long lost[4], efault[4], progress[4];

static void add(long *c, long v) { __atomic_add_fetch(c, v, __ATOMIC_RELAXED); }
static long get(long *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }
static int stopped(void) { return __atomic_load_n(&stop, __ATOMIC_ACQUIRE); }

/* ---- phase A's threads ------------------------------------------------ */

/* Words of writer w: one per 512 bytes of its part, spread over every
 * page; each store checks the one before it. */
static void *writer(void *arg)
{
	long w = (long)arg;
	size_t n = WR_BYTES / 512 / WRITERS;
	uint64_t *shadow = calloc(n, sizeof *shadow);
	uint64_t v = 0;
	while (!stopped()) {
		v++;
		for (size_t i = 0; i < n; i++) {
			volatile uint64_t *p = (uint64_t *)(span + (i * WRITERS + (size_t)w) * 512);
			if (*p != shadow[i])
				add(&lost[0], 1);
			*p = v;
			shadow[i] = v;
		}
		add(&progress[0], 1);
		sched_yield();
	}
	for (size_t i = 0; i < n; i++)
		if (*(uint64_t *)(span + (i * WRITERS + (size_t)w) * 512) != shadow[i])
			add(&lost[0], 1);
	free(shadow);
	return NULL;
}

static int sv[2], pp[2];

static void *dg_sender(void *arg)
{
	(void)arg;
	char buf[DG_SIZE];
	for (uint64_t seq = 1;; seq++) {
		uint64_t s = stopped() ? UINT64_MAX : seq;
		memcpy(buf, &s, sizeof s);
		memset(buf + 8, (int)(s & 0xff), sizeof buf - 8);
		if (send(sv[0], buf, sizeof buf, 0) != (ssize_t)sizeof buf)
			add(&lost[1], 1);
		if (s == UINT64_MAX)
			return NULL;
	}
}

static void *dg_receiver(void *arg)
{
	(void)arg;
	for (uint64_t want = 1;; want++) {
		char *at = span + DG_OFF + (want % DG_SLOTS) * DG_SIZE;
		ssize_t got = recv(sv[1], at, DG_SIZE, 0);
		if (got < 0 && errno == EFAULT) {
			add(&efault[1], 1);
			continue;
		}
		uint64_t s;
		memcpy(&s, at, sizeof s);
		if (s == UINT64_MAX)
			return NULL;
		int bad = got != DG_SIZE || s != want;
		for (unsigned i = 8; i < DG_SIZE && !bad; i++)
			bad = (unsigned char)at[i] != (s & 0xff);
		if (bad) {
			add(&lost[1], 1);
			want = s;   /* count each gap once */
		}
		add(&progress[1], 1);
	}
}

static void *pipe_writer(void *arg)
{
	(void)arg;
	uint64_t buf[PIPE_CHUNK / 8];
	for (uint64_t seq = 1;; seq++) {
		uint64_t s = stopped() ? UINT64_MAX : seq;
		for (unsigned i = 0; i < PIPE_CHUNK / 8; i++)
			buf[i] = s * 1000 + i;
		if (write(pp[1], buf, sizeof buf) != (ssize_t)sizeof buf)
			add(&lost[2], 1);
		if (s == UINT64_MAX)
			return NULL;
	}
}

static void *pipe_reader(void *arg)
{
	(void)arg;
	for (uint64_t want = 1;; want++) {
		char *at = span + PIPE_OFF + (want % PIPE_SLOTS) * PIPE_CHUNK;
		size_t have = 0;
		while (have < PIPE_CHUNK) {
			ssize_t got = read(pp[0], at + have, PIPE_CHUNK - have);
			if (got < 0 && errno == EFAULT) {
				add(&efault[2], 1);
				continue;
			}
			if (got <= 0)
				return NULL;
			have += (size_t)got;
		}
		uint64_t *w = (uint64_t *)at, s = w[0] / 1000;
		if (w[0] == UINT64_MAX * 1000)
			return NULL;
		int bad = s != want;
		for (unsigned i = 0; i < PIPE_CHUNK / 8 && !bad; i++)
			bad = w[i] != s * 1000 + i;
		if (bad) {
			add(&lost[2], 1);
			want = s;
		}
		add(&progress[2], 1);
	}
}

/* Every thread in ts joined by the deadline: 1; else the test fails
 * (the threads are left to exit(3)). */
static int join_by(pthread_t *ts, int n, int secs)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += secs;
	for (int i = 0; i < n; i++)
		if (pthread_timedjoin_np(ts[i], NULL, &dl) != 0)
			return 0;
	return 1;
}

static const char *bk_name(bk_t *b) { return b == mfd ? "memfd" : "anonymous"; }

static void phase_a(long moves)
{
	uint32_t sp;
	int err;
	char *b = bk_span_get(&ac_mfd, BIG, &sp, &err);
	if (!b)
		bail_out("bk_span_get of a memfd span failed (%d)", err);
	memset(b, 0, HL_SLOT_SIZE << BIG);
	span = b;
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0 || pipe(pp) != 0)
		bail_out("socketpair or pipe");
	pthread_t t[WRITERS + 4];
	for (long w = 0; w < WRITERS; w++)
		pthread_create(&t[w], NULL, writer, (void *)w);
	pthread_create(&t[WRITERS], NULL, dg_receiver, NULL);
	pthread_create(&t[WRITERS + 1], NULL, dg_sender, NULL);
	pthread_create(&t[WRITERS + 2], NULL, pipe_reader, NULL);
	pthread_create(&t[WRITERS + 3], NULL, pipe_writer, NULL);
	long done = 0, failed = 0;
	const char *why = NULL;
	int first_err = 0;
	for (long i = 0; i < moves; i++) {
		bk_t *to = i % 2 ? mfd : anon;
		int e = bk_span_move(b, BIG, to, &why);
		if (e) {
			if (!failed++) {
				first_err = e;
				diag("move %ld to %s: %s (%s)", i, bk_name(to), hl_strerror(e),
				     why ? why : "?");
			}
			continue;
		}
		done++;
		/* Let the writers and the kernel in between two moves. */
		if (i % 8 == 0)
			sched_yield();
	}
	uint64_t off;
	bk_t *now = bk_span_backing(b, &off);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	int joined = join_by(t, WRITERS + 4, 20);
	ok(done == moves && !first_err,
	   "A: %ld of %ld moves of a 512 KiB span, anonymous <-> memfd, under load", done, moves);
	ok(joined, "A: every writer, the receiver and the pipe reader went on to the end (none held for ever)");
	if (!joined)
		exit(done_testing());
	ok(get(&lost[0]) == 0 && get(&progress[0]) > 0,
	   "A: no store lost (%ld lost over %ld passes of the writers)", get(&lost[0]), get(&progress[0]));
	ok(get(&lost[1]) == 0 && get(&efault[1]) == 0 && get(&progress[1]) > 0,
	   "A: recv() into the moving span: %ld datagrams, none lost or damaged (%ld), no EFAULT (%ld)",
	   get(&progress[1]), get(&lost[1]), get(&efault[1]));
	ok(get(&lost[2]) == 0 && get(&efault[2]) == 0 && get(&progress[2]) > 0,
	   "A: read() of a pipe into the moving span: %ld chunks, none lost or damaged (%ld), no EFAULT (%ld)",
	   get(&progress[2]), get(&lost[2]), get(&efault[2]));
	ok(now == mfd && off < (4u << 20),
	   "A: the span ends backed as the last move said: memfd, offset %llu (%s)",
	   (unsigned long long)off, now ? bk_name(now) : "anonymous");
	bk_span_put(&ac_mfd, b, sp, BIG);
	close(sv[0]);
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
}

/* ---- phase B: fresh spans --------------------------------------------- */

static char *volatile fresh;
static int round_no, round_stop, acks;

static void *fresh_writer(void *arg)
{
	long w = (long)arg;
	int seen = 0;
	for (;;) {
		int r;
		while ((r = __atomic_load_n(&round_no, __ATOMIC_ACQUIRE)) == seen)
			if (__atomic_load_n(&quit, __ATOMIC_ACQUIRE))
				return NULL;
			else
				sched_yield();
		if (r < 0)
			return NULL;
		seen = r;
		char *b = fresh;
		uint64_t shadow[HL_SLOT_SIZE / HL_PAGE] = { 0 };
		for (uint64_t v = 1; __atomic_load_n(&round_stop, __ATOMIC_ACQUIRE) != r; v++) {
			/* Each page in turn: the first pass touches them for
			 * the first time while the first move runs. */
			for (size_t pg = 0; pg < HL_SLOT_SIZE / HL_PAGE; pg++) {
				volatile uint64_t *p = (uint64_t *)(b + pg * HL_PAGE + (size_t)w * 8);
				if (*p != shadow[pg])
					add(&lost[3], 1);
				*p = v;
				shadow[pg] = v;
			}
		}
		for (size_t pg = 0; pg < HL_SLOT_SIZE / HL_PAGE; pg++)
			if (*(uint64_t *)(b + pg * HL_PAGE + (size_t)w * 8) != shadow[pg])
				add(&lost[3], 1);
		add(&progress[3], 1);
		__atomic_add_fetch(&acks, 1, __ATOMIC_ACQ_REL);
	}
}

static void phase_b(long rounds)
{
	pthread_t t[WRITERS];
	for (long w = 0; w < WRITERS; w++)
		pthread_create(&t[w], NULL, fresh_writer, (void *)w);
	long moves = 0, want = 0, stuck = 0;
	const char *why = NULL;
	for (int r = 1; r <= rounds && !stuck; r++) {
		uint32_t sp;
		int err;
		char *b = bk_span_get(&ac_anon, 0, &sp, &err);
		if (!b)
			bail_out("bk_span_get of an anonymous span failed (%d)", err);
		os_purge(b, HL_SLOT_SIZE);   /* never touched, as fresh memory */
		fresh = b;
		__atomic_store_n(&round_no, r, __ATOMIC_RELEASE);
		bk_t *order[3] = { mfd, anon, mfd };
		for (int i = 0; i < 3; i++, want++)
			moves += bk_span_move(b, 0, order[i], &why) == HL_OK;
		__atomic_store_n(&round_stop, r, __ATOMIC_RELEASE);
		time_t dl = time(NULL) + 10;
		while (__atomic_load_n(&acks, __ATOMIC_ACQUIRE) < r * WRITERS && !stuck) {
			sched_yield();
			stuck = time(NULL) > dl;
		}
		bk_span_put(&ac_anon, b, sp, 0);
	}
	ok(!stuck, "B: every writer of a fresh span went on to the end of its round (none held for ever)");
	if (stuck)
		exit(done_testing());
	__atomic_store_n(&quit, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&round_no, -1, __ATOMIC_RELEASE);
	join_by(t, WRITERS, 10);
	ok(moves == want, "B: %ld of %ld moves of fresh 64 KiB spans, anonymous -> memfd -> anonymous -> memfd",
	   moves, want);
	ok(get(&lost[3]) == 0,
	   "B: no store into a never-touched page lost during the first move (%ld lost over %ld rounds)",
	   get(&lost[3]), rounds);
}

int main(int argc, char **argv)
{
	(void)argc;
#ifdef REBIND_MASKED
	/* Every feature but UFFD_FEATURE_WP_UNPOPULATED: Linux before 6.4. */
	tap_reexec_with_env(argv, "HEAPLIB_UFFD_FEATURES", "0xffffffffffffdfff", NULL);
#else
	(void)argv;
#endif
	hl_free(hl_malloc(1));   /* start-up */
	const char *why;
	if (rb_probe(&why) != HL_OK)
		plan_skip_all(why);
	plan(10);
	uint64_t f = rb_test_features();
#ifdef REBIND_MASKED
	ok(!(f & WP_UNPOPULATED),
	   "HEAPLIB_UFFD_FEATURES masks UFFD_FEATURE_WP_UNPOPULATED: spans are populated before they are protected (features %#llx)",
	   (unsigned long long)f);
#else
	if (!(f & WP_UNPOPULATED))
		diag("this kernel has no UFFD_FEATURE_WP_UNPOPULATED (before 6.4): the populate path runs");
	ok(f != 0, "userfaultfd granted the write-protect features (%#llx)", (unsigned long long)f);
#endif
	mfd = bk_at(HL_MAX_REGIONS - 1);
	anon = bk_at(HL_MAX_REGIONS - 2);
	if (bk_setup(mfd, HL_BACKING_MEMFD, 4u << 20, 0, NULL, "test_rebind") != HL_OK)
		bail_out("a memfd backing");
	ac_mfd = (hl_account_t){ mfd, &budget, 0 };
	ac_anon = (hl_account_t){ anon, &budget, 0 };
	double scale = tap_scale();
	phase_a((long)(10000 * scale) & ~1L);
	phase_b((long)(1500 * scale));
	bk_release(mfd);
	return done_testing();
}
