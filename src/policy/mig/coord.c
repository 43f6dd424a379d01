/*
 * The coordinator: one thread that carries out migrations, the queue that
 * reaches it, and the entry points that ask for them.
 *
 * Requests.  A thread asks through its request record: type-stable (a
 * static pool, never freed), one per thread, taken on first use and given
 * back at thread exit.  Its state word says where it is:
 *   IDLE -> POSTED (the owner enqueues it) -> BUSY (the coordinator took
 *   it) -> DONE (result in it; the owner reads it and sets IDLE).
 *   A waiter that gives up turns POSTED into CANCELLED (the coordinator
 *   skips it) or BUSY into ABANDONED (the coordinator finishes, and sets
 *   IDLE instead of DONE).  An asynchronous request (HL_NOWAIT) goes from
 *   BUSY straight back to IDLE.
 * The queue is liburcu's wait-free wfcqueue (lf/wfq.h); the coordinator
 * is its only consumer.  Nothing here allocates: the coordinator's
 * snapshots are mapped once when it starts.
 *
 * Who waits: free, and every allocation that can be served without
 * migration, never reach this file.  An allocation that would otherwise
 * fail waits for its request at most HEAPLIB_MIGRATE_WAIT_MS, then fails
 * (ENOMEM); with HL_NOWAIT it gets HL_EAGAIN at once while the
 * coordinator works.  hl_migrate, hl_task_migrate and hl_region_delete's
 * evacuation wait until their request is done.
 *
 * fork: prepare parks the coordinator between two moves; the parent lets
 * it go on; the child has no coordinator (a new one starts on the next
 * request) and no request of the parent's threads.  exit: a destructor
 * stops it between two moves.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "policy/mig/mig.h"
#include "wfq.h"

#define MIG_NREQ 4096u

enum { RQ_FREE = 0, RQ_IDLE, RQ_POSTED, RQ_BUSY, RQ_DONE, RQ_CANCELLED, RQ_ABANDONED };

typedef struct mig_req {
	lf_wfq_node_t node;
	uint32_t state;
	uint32_t orphan;        /* its thread exited */
	uint32_t link;          /* free stack */
	bool async;
	mig_job_t job;
} mig_req_t;

static mig_req_t mig_reqs[MIG_NREQ];
static uint32_t mig_reqs_next;
static lf_tstack_t mig_reqs_free;
static __thread mig_req_t *mig_self HL_TLS;

static lf_wfq_t mig_q;
static uint64_t mig_relief;     /* regions below low that asked for relief */
#define MIG_PASS_NS 2000000u    /* a background pass's time budget */
#define MIG_SPIN_NS 50000u      /* the look for a next request (mig_spin) */
static uint32_t mig_started;    /* 0 none, 1 starting, 2 running */
static uint32_t mig_wake;       /* bumped on every post (futex word) */
static uint32_t mig_pause, mig_paused, mig_stopped;
static pthread_t mig_thread;
static uint64_t mig_done_ns;    /* when the last request was answered */


/* ---- request records ---------------------------------------------------- */

static uint32_t *mig_req_link(void *ctx, uint32_t idx)
{
	(void)ctx;
	return &mig_reqs[idx - 1].link;
}

static void mig_req_free(mig_req_t *q)
{
	lf_tstack_push(&mig_reqs_free, (uint32_t)(q - mig_reqs) + 1, &q->link);
}

/* The calling thread's record, IDLE; NULL when the pool is spent or the
 * record is still in the coordinator's hands from an earlier request. */
static mig_req_t *mig_req_get(void)
{
	mig_req_t *q = mig_self;
	if (!q) {
		uint32_t idx = lf_tstack_pop(&mig_reqs_free, mig_req_link, NULL);
		if (idx) {
			q = &mig_reqs[idx - 1];
		} else {
			int64_t n = ctr_take_bounded(&mig_reqs_next, MIG_NREQ);
			if (n < 0)
				return NULL;
			q = &mig_reqs[n];
		}
		lf_store_relaxed(&q->orphan, 0u);
		lf_store_release(&q->state, (uint32_t)RQ_IDLE);
		mig_self = q;
		thread_exit_ensure();
	}
	return lf_load_acquire(&q->state) == RQ_IDLE ? q : NULL;
}

/* The record reached a final state s (IDLE or DONE) on the coordinator's
 * side: if its thread is gone, the record goes back to the pool. */
static void mig_req_settle(mig_req_t *q, uint32_t s)
{
	if (lf_load_seq_cst(&q->orphan) && lf_cas_strong_seq_cst(&q->state, &s, (uint32_t)RQ_FREE))
		mig_req_free(q);
}

void mig_thread_exit(void)
{
	mig_req_t *q = mig_self;
	if (!q)
		return;
	mig_self = NULL;
	lf_store_seq_cst(&q->orphan, 1u);
	for (;;) {
		uint32_t s = lf_load_seq_cst(&q->state);
		if (s == RQ_IDLE || s == RQ_DONE) {
			if (lf_cas_strong_seq_cst(&q->state, &s, (uint32_t)RQ_FREE))
				mig_req_free(q);
			else
				continue;
		} else if (s == RQ_POSTED) {
			if (!lf_cas_strong_seq_cst(&q->state, &s, (uint32_t)RQ_CANCELLED))
				continue;
		}
		return;   /* BUSY, CANCELLED, ABANDONED: the coordinator frees it */
	}
}

/* ---- the thread --------------------------------------------------------- */

static void mig_take(mig_req_t *q)
{
	uint32_t s = RQ_POSTED;
	if (!lf_cas_strong_acq_rel(&q->state, &s, (uint32_t)RQ_BUSY)) {
		/* Cancelled by a waiter that gave up. */
		uint32_t c = RQ_CANCELLED;
		if (lf_cas_strong_acq_rel(&q->state, &c, (uint32_t)RQ_IDLE))
			mig_req_settle(q, RQ_IDLE);
		return;
	}
	mig_serve(&q->job);
	uint32_t fin = q->async ? RQ_IDLE : RQ_DONE;
	s = RQ_BUSY;
	if (!lf_cas_strong_acq_rel(&q->state, &s, fin)) {
		fin = RQ_IDLE;   /* abandoned by its waiter */
		lf_store_release(&q->state, fin);
	}
	os_wake_word(&q->state);
	mig_done_ns = os_now_ns();
	mig_req_settle(q, fin);
}

/* Watermark relief: a region that asked for it and is below its low
 * watermark has movable memory moved out, a time budget per pass, until
 * its free bytes are above high (the region's below_low flag, cleared at
 * the high crossing: hysteresis).  Returns whether work is left. */
static bool mig_relieve(void)
{
	uint64_t m = lf_exchange_acq_rel(&mig_relief, (uint64_t)0);
	uint64_t again = 0;
	for (; m; m &= m - 1) {
		struct hl_region *r = region_at((uint32_t)__builtin_ctzll(m));
		if (lf_load_acquire(&r->state) != REGION_ALIVE || !lf_load_relaxed(&r->below_low))
			continue;
		uint64_t cap = lf_load_relaxed(&r->bk->capacity);
		uint64_t backed = lf_load_relaxed(&r->bk->backed);
		uint64_t free = backed < cap ? cap - backed : 0;
		mig_job_t j = { .kind = MIG_J_RELIEF, .region = r->id, .budget_ns = MIG_PASS_NS,
				.want = (r->whigh > free ? r->whigh - free : 0) + HL_SLOT_SIZE };
		mig_serve(&j);
		lf_fetch_add_relaxed(&mig_st.passes, 1);
		/* Still low and something moved: another pass after a pause. */
		if (j.moved_bytes && lf_load_relaxed(&r->below_low))
			again |= (uint64_t)1 << r->id;
	}
	if (again)
		lf_fetch_or_acq_rel(&mig_relief, again);
	return again != 0;
}

typedef struct mig_share_ctx {
	bool more;
} mig_share_ctx_t;

/* A task above its share limit of a region has its movable memory there
 * moved to other regions it may use. */
static void mig_share_one(struct hl_task *t, void *ctx)
{
	mig_share_ctx_t *c = ctx;
	uint32_t rid = lf_load_relaxed(&t->share_region);
	if (!rid)
		return;
	struct hl_region *r = region_at(rid - 1);
	sb_arena_t *a = lf_load_acquire(&t->arena[r->id]);
	if (!a || lf_load_acquire(&r->state) != REGION_ALIVE ||
	    lf_load_relaxed(&a->gen) != lf_load_relaxed(&r->gen))
		return;
	uint64_t held = lf_load_relaxed(&a->acct.backed), lim = t->share_limit;
	if (held <= lim)
		return;
	mig_job_t j = { .kind = MIG_J_SHARE, .task = t, .region = r->id, .want = held - lim,
			.budget_ns = MIG_PASS_NS };
	mig_serve(&j);
	lf_fetch_add_relaxed(&mig_st.passes, 1);
	c->more |= j.moved_bytes != 0 && lf_load_relaxed(&a->acct.backed) > lim;
}

static bool mig_background(void)
{
	bool more = mig_relieve();
	mig_share_ctx_t c = { false };
	task_each(mig_share_one, &c);
	return more || c.more;
}

/* region.c's watermark hook, on the thread that crossed: note the region
 * and wake the coordinator (no allocation, no wait). */
static void mig_wmark(struct hl_region *r, hl_region_event_t ev)
{
	if (ev != HL_EVENT_LOW || !r->relieve || !mig_running())
		return;
	lf_fetch_or_acq_rel(&mig_relief, (uint64_t)1 << r->id);
	lf_fetch_add_acq_rel(&mig_wake, 1u);
	os_wake_word(&mig_wake);
}

/* rb_spare_fill's stop: a request (or a pause, or the stop) came since
 * the wake word read *ctx. */
static bool mig_asked(void *ctx)
{
	return lf_load_acquire(&mig_wake) != *(const uint32_t *)ctx || lf_load_acquire(&mig_stop) ||
	       lf_load_acquire(&mig_pause);
}

/* Right after an answer the next request often follows (its thread runs
 * on and asks again): the coordinator looks for it up to MIG_SPIN_NS
 * after the answer rather than sleep and be woken (measured here: 64 KiB
 * round trips ~10% faster; a waiter that spins instead slowed the moves
 * twofold and held a writer off a shared core for milliseconds, so
 * waiters sleep).  True if one came. */
static bool mig_spin(uint32_t v)
{
	if (os_now_ns() - mig_done_ns > MIG_SPIN_NS)
		return false;
	while (os_now_ns() - mig_done_ns < MIG_SPIN_NS) {
		if (mig_asked(&v))
			return true;
		lf_cpu_relax();
	}
	return false;
}

/* Warm memfd units unused a while go back to their regions' files. */
static void mig_reserve_decay(void)
{
	uint32_t now = os_now_ms();
	for (uint32_t id = 0; id < HL_MAX_REGIONS; id++) {
		struct hl_region *r = region_at(id);
		if (region_enter(r))
			rb_warm_decay(r->bk, now);
		region_leave(r);
	}
}

static void *mig_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);   /* the program's signals are not ours */
	region_defer_events();   /* nor are its callbacks */
	for (;;) {
		if (lf_load_acquire(&mig_stop)) {
			lf_store_release(&mig_stopped, 1u);
			os_wake_word(&mig_stopped);
			return NULL;
		}
		if (lf_load_acquire(&mig_pause)) {
			lf_store_release(&mig_paused, 1u);
			os_wake_word(&mig_paused);
			while (lf_load_acquire(&mig_pause) && !lf_load_acquire(&mig_stop))
				os_wait_word(&mig_pause, 1u, 100);
			lf_store_release(&mig_paused, 0u);
			continue;
		}
		uint32_t v = lf_load_acquire(&mig_wake);
		lf_wfq_node_t *n = lf_wfq_dequeue(&mig_q);
		if (!n) {
			/* Requests first; between them, the next moves' target
			 * pages made ready (stopping for a request), then the
			 * background. */
			if (rb_spare_fill(mig_asked, &v) || mig_spin(v))
				continue;
			bool more = mig_background();
			mig_reserve_decay();
			os_wait_word(&mig_wake, v, more ? 10 : 100);
			continue;
		}
		mig_take((mig_req_t *)((char *)n - offsetof(mig_req_t, node)));
	}
}

bool mig_running(void)
{
	return lf_load_acquire(&mig_started) == 2;
}

/* Start the coordinator if it is not running; false if it cannot be. */
static bool mig_start(void)
{
	uint32_t s = lf_load_acquire(&mig_started);
	if (s == 2)
		return true;
	if (s != 0 || !lf_cas_strong_acq_rel(&mig_started, &s, 1u)) {
		/* Another thread is starting it: look a bounded number of times. */
		for (int i = 0; i < 1000 && (s = lf_load_acquire(&mig_started)) == 1; i++)
			sched_yield();
		return s == 2;
	}
	pthread_attr_t at;
	bool ok = mig_serve_init() && pthread_attr_init(&at) == 0;
	if (ok) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		ok = pthread_create(&mig_thread, &at, mig_main, NULL) == 0;
		pthread_attr_destroy(&at);
	}
	lf_store_release(&mig_started, ok ? 2u : 0u);
	return ok;
}

/* Post q (IDLE, filled in) and, unless async, wait for it: at most ms
 * milliseconds (0: until done).  Returns its result; HL_EAGAIN for an
 * async post; HL_ENOMEM when the wait ran out. */
static int mig_post(mig_req_t *q, uint32_t ms)
{
	lf_fetch_add_relaxed(&mig_st.requests, 1);
	lf_wfq_node_init(&q->node);
	lf_store_release(&q->state, (uint32_t)RQ_POSTED);
	lf_wfq_enqueue(&mig_q, &q->node);
	lf_fetch_add_acq_rel(&mig_wake, 1u);
	os_wake_word(&mig_wake);
	if (q->async)
		return HL_EAGAIN;
	uint32_t start = os_now_ms();
	for (;;) {
		uint32_t s = lf_load_acquire(&q->state);
		if (s == RQ_DONE) {
			int r = q->job.result;
			lf_store_release(&q->state, (uint32_t)RQ_IDLE);
			return r;
		}
		uint32_t spent = os_now_ms() - start;
		if (ms && spent >= ms) {
			uint32_t e = s;
			if ((s == RQ_POSTED || s == RQ_BUSY) &&
			    lf_cas_strong_acq_rel(&q->state, &e,
						  s == RQ_POSTED ? (uint32_t)RQ_CANCELLED
								 : (uint32_t)RQ_ABANDONED)) {
				lf_fetch_add_relaxed(&mig_st.timeouts, 1);
				return HL_ENOMEM;
			}
			continue;   /* it changed under us: look again */
		}
		os_wait_word(&q->state, s, ms ? ms - spent : 100);
	}
}

/* ---- what asks for moves ------------------------------------------------ */

/* Placement's fail hook: every qualifying region refused memory.  Ask for
 * room in the first one (the nearest), and wait for it, bounded. */
static int mig_oom(size_t size, size_t align, unsigned need, unsigned flags,
		   uint32_t region)
{
	(void)align;
	(void)need;
	if (region == 0 || !lf_load_acquire(&mig_started) || !hl_config.migrate_wait_ms)
		return HL_ENOMEM;   /* no coordinator, or no migration asked for */
	mig_req_t *q = mig_req_get();
	if (!q && !(flags & HL_NOWAIT) && mig_self) {
		/* The thread's earlier HL_NOWAIT request is still in the
		 * coordinator's hands: wait for it, within the same bound. */
		uint32_t start = os_now_ms(), s;
		while ((s = lf_load_acquire(&mig_self->state)) != RQ_IDLE &&
		       os_now_ms() - start < hl_config.migrate_wait_ms)
			os_wait_word(&mig_self->state, s, 10);
		q = mig_req_get();
	}
	if (!q)
		return flags & HL_NOWAIT ? HL_EAGAIN : HL_ENOMEM;
	q->job.kind = MIG_J_OOM;
	q->job.region = region;
	q->job.want = size < HL_SLOT_SIZE ? HL_SLOT_SIZE : size;
	q->job.has_place = false;
	q->async = (flags & HL_NOWAIT) != 0;
	return mig_post(q, hl_config.migrate_wait_ms);
}

/* region.c's evacuation hook: move every superblock out of region id
 * (closed to new allocations by the caller). */
static int mig_evacuate(uint32_t region, bool dry, uint64_t *moved)
{
	*moved = 0;
	if (!mig_start())
		return HL_ENOMEM;
	mig_req_t *q = mig_req_get();
	if (!q)
		return HL_ENOMEM;
	q->job.kind = MIG_J_EVAC;
	q->job.region = region;
	q->job.dry = dry;
	q->job.has_place = false;
	q->async = false;
	int e = mig_post(q, 0);
	*moved = q->job.moved_bytes;
	return e;
}

static void mig_region_created(void)
{
	mig_start();
}

/* hl_migrate and hl_task_migrate: a job of kind for ptr or task, onto
 * place, waited for unless HL_NOWAIT. */
static int mig_ask(uint32_t kind, const void *ptr, hl_task_t *task, const hl_place_t *place,
		   unsigned flags)
{
	if ((!ptr && !task) || (place && place->region && !region_handle_ok(place->region)) ||
	    (place && (place->reach & ~REGION_REACH_ALL)) || (flags & ~(unsigned)HL_NOWAIT))
		return HL_EINVAL;
	hl_ensure_init();
	if (!mig_start())
		return HL_ENOMEM;
	mig_req_t *q = mig_req_get();
	if (!q)
		return flags & HL_NOWAIT ? HL_EAGAIN : HL_EBUSY;
	q->job.kind = kind;
	q->job.ptr = ptr;
	q->job.task = task;
	q->job.has_place = place != NULL;
	if (place)
		q->job.place = *place;
	q->async = (flags & HL_NOWAIT) != 0;
	int e = mig_post(q, 0);
	region_fire_events();   /* the crossings the moves caused, told here */
	return e;
}

HL_EXPORT int hl_migrate(void *ptr, const hl_place_t *place, unsigned flags)
{
	return mig_ask(MIG_J_PTR, ptr, NULL, place, flags);
}

HL_EXPORT int hl_task_migrate(hl_task_t *task, const hl_place_t *place, unsigned flags)
{
	return mig_ask(MIG_J_TASK, NULL, task, place, flags);
}

/* ---- statistics --------------------------------------------------------- */

HL_EXPORT int hl_migrate_stats(hl_migrate_stats_t *out)
{
	if (!hl_struct_out_ok(out))
		return HL_EINVAL;
	hl_migrate_stats_t st = { .struct_size = sizeof st };
	for (unsigned i = 0; i < MIG_NTIERS; i++) {
		st.moves[i] = lf_load_relaxed(&mig_st.moves[i]);
		st.bytes[i] = lf_load_relaxed(&mig_st.bytes[i]);
		st.move_ns[i] = lf_load_relaxed(&mig_st.move_ns[i]);
	}
	for (unsigned i = 0; i < MIG_NWHY; i++)
		st.refused[i] = lf_load_relaxed(&mig_st.refused[i]);
	for (unsigned i = 0; i < HL_MIGRATE_HIST; i++) {
		st.move_us[i] = lf_load_relaxed(&mig_st.move_us[i]);
		st.protect_us[i] = lf_load_relaxed(&mig_st.protect_us[i]);
	}
	st.requests = lf_load_relaxed(&mig_st.requests);
	st.waits_timed_out = lf_load_relaxed(&mig_st.timeouts);
	st.running = mig_running();
	/* Probed here if no move has probed yet (the probe opens and closes
	 * nothing else: it keeps the descriptor for the moves). */
	const char *why = NULL;
	st.uffd = rb_probe(&why) == HL_OK;
	if (!st.uffd || rb_reason())
		strncpy(st.uffd_reason, why ? why : rb_reason() ? rb_reason() : "",
			sizeof st.uffd_reason - 1);
	hl_struct_out(out, &st, sizeof st);
	return HL_OK;
}

/* ---- fork and exit ------------------------------------------------------ */

static void mig_fork_prepare(void)
{
	if (lf_load_acquire(&mig_started) != 2)
		return;
	lf_store_release(&mig_pause, 1u);
	lf_fetch_add_acq_rel(&mig_wake, 1u);
	os_wake_word(&mig_wake);
	while (!lf_load_acquire(&mig_paused))
		os_wait_word(&mig_paused, 0u, 10);
}

static void mig_fork_parent(void)
{
	lf_store_release(&mig_pause, 0u);
	os_wake_word(&mig_pause);
}

static void mig_fork_child(void)
{
	/* No coordinator here, and no request of the parent's threads. */
	memset(mig_reqs, 0, sizeof mig_reqs);
	lf_store_relaxed(&mig_reqs_next, 0u);
	lf_tstack_init(&mig_reqs_free);
	mig_self = NULL;
	lf_wfq_init(&mig_q);
	lf_store_relaxed(&mig_pause, 0u);
	lf_store_relaxed(&mig_paused, 0u);
	lf_store_relaxed(&mig_started, 0u);
}

__attribute__((destructor)) static void mig_exit(void)
{
	if (lf_load_acquire(&mig_started) != 2)
		return;
	lf_store_release(&mig_stop, 1u);
	lf_fetch_add_acq_rel(&mig_wake, 1u);
	os_wake_word(&mig_wake);
	os_wake_word(&mig_pause);
	/* Between two moves, bounded: a move takes microseconds. */
	for (int i = 0; i < 20 && !lf_load_acquire(&mig_stopped); i++)
		os_wait_word(&mig_stopped, 0u, 10);
}

void mig_init(void)
{
	lf_wfq_init(&mig_q);
	lf_tstack_init(&mig_reqs_free);
	thread_exit_register(THREAD_EXIT_MIG, mig_thread_exit);
	thread_atfork_register(mig_fork_prepare, mig_fork_parent, mig_fork_child);
	place_set_fail_hook(mig_oom);
	region_set_mig_hooks(mig_region_created, mig_evacuate);
	region_set_watermark_hook(mig_wmark);
}
