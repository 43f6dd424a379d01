/*
 * Hazard-pointer domain: a protected node is never freed and every retired
 * node is freed exactly once; protect() publishes a value *src really held;
 * readers never see a node freed under their hazard while writers swap and
 * retire; more than 512 live hazards (where ck_hp 0.7.1 fails) are all
 * honoured; records are reused instead of mapped again.
 *
 * Nodes live in static arrays (type-stable), so a node freed too early is
 * seen through its `freed` flag and generation instead of crashing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* pthread barriers under -std=c11 */
#endif
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hp.h"
#include "tstack.h"
#include "tap.h"

typedef struct tnode {
	lf_hp_node_t hn;    /* first: a hazard on the node covers its link */
	uint32_t freed;     /* set by free_fn, cleared when reused */
	uint32_t gen;       /* +1 per free */
	uint32_t retires;   /* times retired */
	uint32_t frees;     /* times free_fn ran on it */
	uint32_t link;      /* free-pool link (stress test) */
} lf_cacheline_aligned tnode_t;   /* a hazard reaches 64 bytes: no neighbours */

_Static_assert(sizeof(tnode_t) == LF_HP_NODE_REACH, "one node per hazard reach");

static tnode_t *node_of(lf_hp_node_t *hn)
{
	return (tnode_t *)(void *)((char *)hn - offsetof(tnode_t, hn));
}

static void retire(lf_hp_rec_t *r, tnode_t *n)
{
	lf_fetch_add_relaxed(&n->retires, 1);
	lf_hp_retire(r, &n->hn);
}

/* free_fn of every domain here but the stress test's. */
static void mark_freed(void *ctx, lf_hp_node_t *hn)
{
	(void)ctx;
	tnode_t *n = node_of(hn);
	lf_store_relaxed(&n->freed, 1);
	lf_fetch_add_relaxed(&n->gen, 1);
	lf_fetch_add_relaxed(&n->frees, 1);
}

static int is_freed(tnode_t *n) { return lf_load_acquire(&n->freed) != 0; }

/* Non-NULL hazards published in d right now. */
static int live_hazards(lf_hp_domain_t *d)
{
	int n = 0;
	for (lf_hp_rec_t *r = lf_load_acquire(&d->hp_records); r;
	     r = lf_load_relaxed(&r->hp_next_rec))
		for (int i = 0; i < LF_HP_PER_THREAD; i++)
			n += lf_load_seq_cst(&r->hp_slot[i]) != NULL;
	return n;
}

static void *start_and_join(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	void *ret = NULL;
	pthread_create(&t, NULL, fn, arg);
	pthread_join(t, &ret);
	return ret;
}

/* ---- 1. single thread ---------------------------------------------------- */

static lf_hp_domain_t d1;

static void *retire_and_exit(void *arg)
{
	lf_hp_rec_t *r = lf_hp_acquire(&d1);
	retire(r, arg);
	lf_hp_release(r);
	return NULL;
}

/* Objects shaped like a descriptor: 64 bytes, the link 40 bytes in. */
typedef struct obj {
	char head[40];
	lf_hp_node_t hn;
	char tail[16];
} obj_t;

static lf_hp_domain_t d1o;
static obj_t objs[2];
static int obj_frees[2];

static void obj_freed(void *ctx, lf_hp_node_t *hn)
{
	(void)ctx;
	obj_t *o = (obj_t *)(void *)((char *)hn - offsetof(obj_t, hn));
	obj_frees[o - objs]++;
}

static void test_single(void)
{
	static tnode_t prot, ctrl, bulk[LF_HP_MIN_THRESHOLD], orphan;
	lf_hp_domain_init(&d1, mark_freed, NULL);
	lf_hp_rec_t *r = lf_hp_acquire(&d1);

	lf_hp_set(r, 0, &prot);
	retire(r, &prot);
	retire(r, &ctrl);
	size_t f = lf_hp_scan(r);
	ok(f == 1 && prot.frees == 0 && ctrl.frees == 1 && lf_hp_pending(&d1) == 1,
	   "a scan keeps the protected node and frees the unprotected one (freed %zu)", f);

	lf_hp_clear(r, 0);
	f = lf_hp_scan(r);
	size_t again = lf_hp_scan(r);
	ok(f == 1 && again == 0 && prot.frees == 1 && ctrl.frees == 1 && lf_hp_pending(&d1) == 0,
	   "after the hazard is cleared the next scan frees it, once; later scans free nothing");

	lf_hp_domain_init(&d1o, obj_freed, NULL);
	lf_hp_rec_t *ro = lf_hp_acquire(&d1o);
	lf_hp_set(ro, 1, &objs[0]);
	lf_hp_retire(ro, &objs[0].hn);
	lf_hp_retire(ro, &objs[1].hn);
	f = lf_hp_scan(ro);
	int first = obj_frees[0], second = obj_frees[1];
	lf_hp_clear(ro, 1);
	lf_hp_scan(ro);
	ok(sizeof(obj_t) == 64 && f == 1 && first == 0 && second == 1 && obj_frees[0] == 1,
	   "a hazard on an object covers the node embedded 40 bytes in, not the next object's");
	lf_hp_release(ro);

	start_and_join(retire_and_exit, &orphan);
	uint64_t pend = lf_hp_pending(&d1);
	f = lf_hp_scan(r);
	ok(pend == 1 && f == 1 && orphan.frees == 1 && lf_hp_pending(&d1) == 0,
	   "a released record's retired node is adopted and freed by another record's scan");

	uint64_t scans = lf_load_relaxed(&r->hp_scans);
	for (int i = 0; i < LF_HP_MIN_THRESHOLD; i++)
		retire(r, &bulk[i]);
	int all = 1;
	for (int i = 0; i < LF_HP_MIN_THRESHOLD; i++)
		all &= bulk[i].frees == 1;
	ok(lf_load_relaxed(&r->hp_scans) == scans + 1 && all && lf_hp_pending(&d1) == 0,
	   "retire scans by itself when the record holds max(%d, 2 x hazard slots of live records) nodes",
	   LF_HP_MIN_THRESHOLD);

	/* Two records now (this one and the exiting thread's): releasing
	 * and acquiring reuses them, maps none. */
	lf_hp_set(r, 2, &prot);
	lf_hp_release(r);
	int cleared = 1;
	for (int i = 0; i < LF_HP_PER_THREAD; i++)
		cleared &= lf_load_relaxed(&r->hp_slot[i]) == NULL;
	lf_hp_rec_t *ra = lf_hp_acquire(&d1), *rb = lf_hp_acquire(&d1);
	ok(cleared && (ra == r || rb == r) && ra != rb && lf_hp_records(&d1) == 2,
	   "release clears the hazards and later acquires reuse released records (%llu records)",
	   (unsigned long long)lf_hp_records(&d1));
	lf_hp_release(ra);
	lf_hp_release(rb);
}

/* ---- 2. protect ---------------------------------------------------------- */

static lf_hp_domain_t d2;
static void *moving;          /* fake pointers 64, 128, ... in increasing order */
static int mover_go, mover_stop;
static long protect_steps;

static void *mover(void *arg)
{
	(void)arg;
	while (!lf_load_acquire(&mover_go))
		lf_cpu_relax();
	for (uintptr_t i = 2; !lf_load_acquire(&mover_stop); i++) {
		lf_store_release(&moving, (void *)(i * 64));
		for (int spin = 0; spin < 16; spin++)
			lf_cpu_relax();
	}
	return NULL;
}

static void test_protect(void)
{
	lf_hp_domain_init(&d2, mark_freed, NULL);
	lf_hp_rec_t *r = lf_hp_acquire(&d2);
	static tnode_t x;
	void *src = &x, *nul = NULL;
	void *p = lf_hp_protect(r, 3, &src);
	void *q = lf_hp_protect(r, 2, &nul);
	ok(p == &x && lf_load_relaxed(&r->hp_slot[3]) == &x && q == NULL &&
	   lf_load_relaxed(&r->hp_slot[2]) == NULL,
	   "protect returns *src and publishes it in the slot (NULL as NULL)");

	lf_store_relaxed(&moving, (void *)(uintptr_t)64);
	pthread_t t;
	pthread_create(&t, NULL, mover, NULL);
	lf_store_release(&mover_go, 1);
	long calls = 0, bad = 0, changes = 0;
	uintptr_t last = 64;
	/* Until enough calls, and at least one of them saw the value move. */
	while (calls < protect_steps || changes == 0) {
		uintptr_t before = (uintptr_t)lf_load_acquire(&moving);
		uintptr_t got = (uintptr_t)lf_hp_protect(r, 0, &moving);
		uintptr_t after = (uintptr_t)lf_load_acquire(&moving);
		if (got < before || got > after ||
		    (uintptr_t)lf_load_relaxed(&r->hp_slot[0]) != got)
			bad++;
		changes += got != last;
		last = got;
		calls++;
	}
	lf_store_release(&mover_stop, 1);
	pthread_join(t, NULL);
	ok(bad == 0, "under a concurrent writer protect returns a value *src held during the call and leaves it published (%ld calls, %ld changes seen, %ld bad)",
	   calls, changes, bad);
	lf_hp_release(r);
}

/* ---- 3. stress: readers against swapping writers ------------------------- */

#define K 16
#define STRESS_NODES 4096

static lf_hp_domain_t d3;
static tnode_t spool[STRESS_NODES + 1];   /* index 0 unused */
static lf_tstack_t spool_free;
static tnode_t *sslot[K];
static long stress_ops;
static uint64_t stress_violations, stress_double_frees, stress_starved;

static uint32_t *spool_link(void *ctx, uint32_t idx)
{
	(void)ctx;
	return &spool[idx].link;
}

static void stress_free(void *ctx, lf_hp_node_t *hn)
{
	(void)ctx;
	tnode_t *n = node_of(hn);
	if (lf_exchange_acq_rel(&n->freed, 1) != 0)
		lf_fetch_add_relaxed(&stress_double_frees, 1);
	lf_fetch_add_relaxed(&n->gen, 1);
	lf_fetch_add_relaxed(&n->frees, 1);
	lf_tstack_push(&spool_free, (uint32_t)(n - spool), &n->link);
}

static tnode_t *stress_take(lf_hp_rec_t *r)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t i = lf_tstack_pop(&spool_free, spool_link, NULL);
		if (i) {
			lf_store_release(&spool[i].freed, 0);
			return &spool[i];
		}
		lf_hp_scan(r);
		sched_yield();
	}
	return NULL;
}

/* Read node n under a hazard: it must stay unfreed and keep its gen. */
static void stress_check(tnode_t *n)
{
	if (!n)
		return;
	uint32_t g = lf_load_acquire(&n->gen);
	int bad = is_freed(n);
	for (int spin = 0; spin < 8; spin++)
		bad |= is_freed(n);
	bad |= lf_load_acquire(&n->gen) != g;
	if (bad)
		lf_fetch_add_relaxed(&stress_violations, 1);
}

static void *stress_thread(void *arg)
{
	uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	lf_hp_rec_t *r = lf_hp_acquire(&d3);
	for (long op = 0; op < stress_ops; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = (unsigned)(x % K), k2 = (unsigned)((x >> 20) % K);
		switch ((x >> 40) % 4) {
		case 0: {   /* write: swap a fresh node in, retire the old one */
			tnode_t *n = stress_take(r);
			if (!n) {
				lf_fetch_add_relaxed(&stress_starved, 1);
				break;
			}
			tnode_t *old = lf_exchange_seq_cst(&sslot[k], n);
			if (old)
				retire(r, old);
			break;
		}
		case 1: {   /* read two slots at once, in two hazard slots */
			tnode_t *a = lf_hp_protect(r, 1, (void *const *)&sslot[k]);
			tnode_t *b = lf_hp_protect(r, 2, (void *const *)&sslot[k2]);
			stress_check(a);
			stress_check(b);
			lf_hp_clear(r, 1);
			lf_hp_clear(r, 2);
			break;
		}
		default: {
			tnode_t *a = lf_hp_protect(r, 0, (void *const *)&sslot[k]);
			stress_check(a);
			lf_hp_clear(r, 0);
		}
		}
	}
	lf_hp_release(r);
	return NULL;
}

static void test_stress(double scale)
{
	enum { THREADS = 4 };
	lf_hp_domain_init(&d3, stress_free, NULL);
	lf_tstack_init(&spool_free);
	for (uint32_t i = STRESS_NODES; i > K; i--)
		lf_tstack_push(&spool_free, i, &spool[i].link);
	for (uint32_t k = 0; k < K; k++)
		lf_store_relaxed(&sslot[k], &spool[k + 1]);
	stress_ops = (long)(200000 * scale);
	if (stress_ops < 2000)
		stress_ops = 2000;

	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, stress_thread, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);

	ok(lf_load_relaxed(&stress_violations) == 0,
	   "%d threads x %ld ops: a node read under a hazard is never freed meanwhile (%llu violations)",
	   THREADS, stress_ops, (unsigned long long)lf_load_relaxed(&stress_violations));

	uint64_t pend = lf_hp_pending(&d3);
	lf_hp_rec_t *r = lf_hp_acquire(&d3);
	lf_hp_scan(r);
	uint64_t retired = 0, mismatched = 0;
	for (uint32_t i = 1; i <= STRESS_NODES; i++) {
		retired += spool[i].retires;
		mismatched += spool[i].retires != spool[i].frees;
	}
	diag("%llu nodes retired, %llu pending after the threads released, %llu writes starved",
	     (unsigned long long)retired, (unsigned long long)pend,
	     (unsigned long long)stress_starved);
	ok(lf_hp_pending(&d3) == 0 && mismatched == 0 && stress_double_frees == 0,
	   "after release and one scan nothing is pending and every retired node was freed exactly once (%llu mismatched, %llu double)",
	   (unsigned long long)mismatched, (unsigned long long)stress_double_frees);
	lf_hp_release(r);
}

/* ---- 4. thousands of threads, > 512 live hazards ------------------------- */

#define BATCH 200   /* 200 threads x 4 slots = 800 live hazards */

static lf_hp_domain_t d4;
static tnode_t held[BATCH][LF_HP_PER_THREAD];
static pthread_barrier_t all_set, scanned;
static uint64_t many_violations;

static void *holder(void *arg)
{
	tnode_t *mine = held[(uintptr_t)arg];
	lf_hp_rec_t *r = lf_hp_acquire(&d4);
	for (int i = 0; i < LF_HP_PER_THREAD; i++)
		lf_hp_set(r, i, &mine[i]);
	pthread_barrier_wait(&all_set);
	pthread_barrier_wait(&scanned);
	for (int i = 0; i < LF_HP_PER_THREAD; i++) {
		if (is_freed(&mine[i]))
			lf_fetch_add_relaxed(&many_violations, 1);
		lf_hp_clear(r, i);
	}
	lf_hp_release(r);
	return NULL;
}

static void test_many(double scale)
{
	long total = (long)(2000 * scale);
	if (total < 600)
		total = 600;
	int batches = (int)((total + BATCH - 1) / BATCH);
	lf_hp_domain_init(&d4, mark_freed, NULL);
	lf_hp_rec_t *me = lf_hp_acquire(&d4);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	static pthread_t t[BATCH];
	static tnode_t ctrl[LF_HP_PER_THREAD];
	int min_live = 1 << 30, created = 0;
	long protected_freed = 0, ctrl_freed = 0, not_once = 0;

	for (int b = 0; b < batches; b++) {
		memset(held, 0, sizeof held);
		memset(ctrl, 0, sizeof ctrl);
		pthread_barrier_init(&all_set, NULL, BATCH + 1);
		pthread_barrier_init(&scanned, NULL, BATCH + 1);
		for (int i = 0; i < BATCH; i++)
			if (pthread_create(&t[i], &attr, holder, (void *)(uintptr_t)i) == 0)
				created++;
		pthread_barrier_wait(&all_set);
		int live = live_hazards(&d4);
		if (live < min_live)
			min_live = live;
		/* Unlinked elsewhere, retired here, while every hazard is up. */
		for (int i = 0; i < BATCH; i++)
			for (int j = 0; j < LF_HP_PER_THREAD; j++)
				retire(me, &held[i][j]);
		for (int j = 0; j < LF_HP_PER_THREAD; j++)
			retire(me, &ctrl[j]);
		lf_hp_scan(me);
		for (int i = 0; i < BATCH; i++)
			for (int j = 0; j < LF_HP_PER_THREAD; j++)
				protected_freed += held[i][j].frees != 0;
		for (int j = 0; j < LF_HP_PER_THREAD; j++)
			ctrl_freed += ctrl[j].frees == 1;
		pthread_barrier_wait(&scanned);
		for (int i = 0; i < BATCH; i++)
			pthread_join(t[i], NULL);
		lf_hp_scan(me);
		for (int i = 0; i < BATCH; i++)
			for (int j = 0; j < LF_HP_PER_THREAD; j++)
				not_once += held[i][j].frees != 1;
		pthread_barrier_destroy(&all_set);
		pthread_barrier_destroy(&scanned);
	}
	pthread_attr_destroy(&attr);
	diag("%d threads in %d batches of %d; at least %d hazards live during each scan; %llu records",
	     created, batches, BATCH, min_live, (unsigned long long)lf_hp_records(&d4));
	ok(created == batches * BATCH && min_live == BATCH * LF_HP_PER_THREAD && min_live > 512,
	   "%d concurrent threads hold all %d slots each: %d live hazards, more than ck_hp's 512",
	   BATCH, LF_HP_PER_THREAD, min_live);
	ok(protected_freed == 0 && lf_load_relaxed(&many_violations) == 0,
	   "a scan from another thread while >512 hazards are live frees none of the protected nodes (%ld freed)",
	   protected_freed);
	ok(ctrl_freed == (long)batches * LF_HP_PER_THREAD,
	   "the same scan frees the unprotected nodes retired with them");
	ok(not_once == 0 && lf_hp_pending(&d4) == 0,
	   "once the threads clear and release, the next scan frees every protected node exactly once");
	lf_hp_release(me);
}

/* ---- 5. record reuse ----------------------------------------------------- */

#define REUSE_THREADS 8

static lf_hp_domain_t d5;
static pthread_barrier_t round_held, round_done;
static int reuse_rounds;
static tnode_t reuse_nodes[REUSE_THREADS];

static void *reuser(void *arg)
{
	tnode_t *n = &reuse_nodes[(uintptr_t)arg];
	for (int round = 0; round < reuse_rounds; round++) {
		lf_hp_rec_t *r = lf_hp_acquire(&d5);
		lf_hp_set(r, 0, n);
		pthread_barrier_wait(&round_held);   /* all threads hold a record */
		lf_hp_clear(r, 0);
		lf_hp_release(r);
		pthread_barrier_wait(&round_done);
		/* Churn: acquire and release without waiting for the others. */
		for (int i = 0; i < 8; i++)
			lf_hp_release(lf_hp_acquire(&d5));
		pthread_barrier_wait(&round_done);
	}
	return NULL;
}

static void test_reuse(double scale)
{
	lf_hp_domain_init(&d5, mark_freed, NULL);
	reuse_rounds = (int)(200 * scale);
	if (reuse_rounds < 20)
		reuse_rounds = 20;
	pthread_barrier_init(&round_held, NULL, REUSE_THREADS);
	pthread_barrier_init(&round_done, NULL, REUSE_THREADS);
	pthread_t t[REUSE_THREADS];
	for (int i = 0; i < REUSE_THREADS; i++)
		pthread_create(&t[i], NULL, reuser, (void *)(uintptr_t)i);
	for (int i = 0; i < REUSE_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&round_held);
	pthread_barrier_destroy(&round_done);
	ok(lf_hp_records(&d5) == REUSE_THREADS,
	   "%d threads acquiring and releasing over %d rounds map only %d records (%llu)",
	   REUSE_THREADS, reuse_rounds, REUSE_THREADS,
	   (unsigned long long)lf_hp_records(&d5));
}

int main(void)
{
	plan(15);
	double scale = tap_scale();
	protect_steps = (long)(200000 * scale);
	if (protect_steps < 2000)
		protect_steps = 2000;
	test_single();
	test_protect();
	test_stress(scale);
	test_many(scale);
	test_reuse(scale);
	return done_testing();
}
