/*
 * Hazard-pointer domain; the contract is in hp.h.
 *
 * Records are carved from 16 KiB mappings, one record per acquire (a
 * fetch-add on the mapping's use count hands out the next one), and pushed
 * on the domain's push-only list.  Nothing here is ever unmapped except a
 * mapping that lost the race to become the current one and was never seen
 * by another thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "hp.h"

#define HP_CHUNK_BYTES 16384
#define HP_SCRATCH_MIN 4096

typedef struct hp_chunk {
	uint64_t hc_used lf_cacheline_aligned; /* records handed out (may overshoot) */
	lf_hp_rec_t hc_recs[];
} hp_chunk_t;

#define HP_CHUNK_RECS \
	((HP_CHUNK_BYTES - offsetof(hp_chunk_t, hc_recs)) / sizeof(lf_hp_rec_t))

_Static_assert(sizeof(lf_hp_rec_t) == 2 * LF_CACHELINE,
	       "a record is two cache lines: slots, then shared fields");
_Static_assert(HP_CHUNK_RECS >= 16, "a chunk holds several records");

static void *hp_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void lf_hp_domain_init(lf_hp_domain_t *d, lf_hp_free_fn free_fn, void *ctx)
{
	d->hp_free = free_fn;
	d->hp_ctx = ctx;
}

/* ---- records ------------------------------------------------------------ */

/* A never-used record (zeroed memory).  Lock-free: a thread that finds the
 * current chunk spent maps a new one and tries to install it; the loser of
 * that race unmaps its own, unseen mapping and takes from the winner's. */
static lf_hp_rec_t *hp_carve(lf_hp_domain_t *d)
{
	for (;;) {
		hp_chunk_t *c = lf_load_acquire(&d->hp_chunk);
		if (c) {
			uint64_t i = lf_fetch_add_relaxed(&c->hc_used, 1);
			if (i < HP_CHUNK_RECS)
				return &c->hc_recs[i];
		}
		hp_chunk_t *fresh = hp_map(HP_CHUNK_BYTES);
		if (!fresh)
			return NULL;
		lf_store_relaxed(&fresh->hc_used, 1);
		if (lf_cas_strong_acq_rel(&d->hp_chunk, &c, fresh))
			return &fresh->hc_recs[0];
		munmap(fresh, HP_CHUNK_BYTES);
	}
}

/* An idle record, claimed by the CAS of its active flag; NULL if none. */
static lf_hp_rec_t *hp_claim(lf_hp_domain_t *d)
{
	for (lf_hp_rec_t *r = lf_load_acquire(&d->hp_records); r;
	     r = lf_load_relaxed(&r->hp_next_rec)) {
		uint32_t idle = 0;
		if (lf_load_relaxed(&r->hp_active) == 0 &&
		    lf_cas_strong_acq_rel(&r->hp_active, &idle, 1))
			return r;
	}
	return NULL;
}

/* A new record, active before the CAS that pushes it on the list. */
static lf_hp_rec_t *hp_push_new(lf_hp_domain_t *d)
{
	lf_hp_rec_t *r = hp_carve(d);
	if (!r)
		return NULL;
	r->hp_domain = d;
	lf_store_relaxed(&r->hp_active, 1);
	lf_fetch_add_relaxed(&d->hp_nrecords, 1);
	lf_hp_rec_t *head = lf_load_relaxed(&d->hp_records);
	do {
		lf_store_relaxed(&r->hp_next_rec, head);
	} while (!lf_cas_weak_acq_rel(&d->hp_records, &head, r));
	return r;
}

#ifdef HL_TEST_HOOKS
static int hp_fail_acquire;
void lf_hp_test_fail_acquire(int on) { lf_store_relaxed(&hp_fail_acquire, on); }
#endif

/* Any thread.  Linearizes on the CAS of a record's active flag, or on the
 * CAS that pushes a new (already active) record. */
lf_hp_rec_t *lf_hp_acquire(lf_hp_domain_t *d)
{
#ifdef HL_TEST_HOOKS
	if (lf_load_relaxed(&hp_fail_acquire))
		return NULL;
#endif
	lf_hp_rec_t *r = hp_claim(d);
	if (!r)
		r = hp_push_new(d);
	if (r)   /* only the scan threshold reads it: relaxed is enough */
		lf_fetch_add_relaxed(&d->hp_nactive, 1);
	return r;
}

/* Owner only.  Linearizes on the release store of the active flag; the
 * orphans are visible before it. */
void lf_hp_release(lf_hp_rec_t *r)
{
	lf_hp_domain_t *d = r->hp_domain;
	for (int i = 0; i < LF_HP_PER_THREAD; i++)
		lf_store_release(&r->hp_slot[i], NULL);
	lf_hp_node_t *first = r->hp_retired;
	if (first) {
		uint64_t n = 1;
		lf_hp_node_t *last = first;
		while (last->hp_next) {
			last = last->hp_next;
			n++;
		}
		/* Count the orphans before they leave the record: pending may
		 * briefly count them twice, never zero times. */
		lf_fetch_add_relaxed(&d->hp_norphans, n);
		lf_hp_node_t *head = lf_load_relaxed(&d->hp_orphans);
		do {
			last->hp_next = head;
		} while (!lf_cas_weak_acq_rel(&d->hp_orphans, &head, first));
		r->hp_retired = NULL;
		lf_store_relaxed(&r->hp_nretired, 0);
	}
	/* Before the flag: once it is clear another thread may acquire the
	 * record and count it again. */
	lf_fetch_sub_relaxed(&d->hp_nactive, 1);
	lf_store_release(&r->hp_active, 0);
}

/* ---- hazards ------------------------------------------------------------ */

void lf_hp_set(lf_hp_rec_t *r, int i, const void *p)
{
	lf_store_seq_cst(&r->hp_slot[i], (void *)(uintptr_t)p);
}

void lf_hp_clear(lf_hp_rec_t *r, int i)
{
	lf_store_release(&r->hp_slot[i], NULL);
}

/* The returned pointer was in *src after the hazard on it was visible to
 * every later scan, so no scan that starts after its unlink misses it. */
void *lf_hp_protect(lf_hp_rec_t *r, int i, void *const *src)
{
	void *p = lf_load_relaxed(src);
	for (;;) {
		lf_store_seq_cst(&r->hp_slot[i], p);
		void *again = lf_load_seq_cst(src);
		if (again == p)
			return p;
		p = again;
	}
}

/* ---- retire and scan ---------------------------------------------------- */

/* The hazards that can be published now are the slots of the records
 * acquired now; the records ever mapped would let every live record sit
 * on 2 x LF_HP_PER_THREAD x (the peak thread count) nodes long after the
 * peak. */
static uint64_t hp_threshold(lf_hp_domain_t *d)
{
	uint64_t t = LF_HP_SCAN_FACTOR * LF_HP_PER_THREAD *
		     lf_load_relaxed(&d->hp_nactive);
	return t > LF_HP_MIN_THRESHOLD ? t : LF_HP_MIN_THRESHOLD;
}

void lf_hp_retire(lf_hp_rec_t *r, lf_hp_node_t *node)
{
	node->hp_next = r->hp_retired;
	r->hp_retired = node;
	uint64_t n = lf_load_relaxed(&r->hp_nretired) + 1;
	lf_store_relaxed(&r->hp_nretired, n);
	if (!r->hp_in_scan && n >= hp_threshold(r->hp_domain))
		lf_hp_scan(r);
}

/* Take the whole orphan list onto r's retired list. */
static void hp_adopt(lf_hp_rec_t *r)
{
	lf_hp_domain_t *d = r->hp_domain;
	if (!lf_load_relaxed(&d->hp_orphans))
		return;
	lf_hp_node_t *first = lf_exchange_acq_rel(&d->hp_orphans, NULL);
	if (!first)
		return;
	uint64_t n = 1;
	lf_hp_node_t *last = first;
	while (last->hp_next) {
		last = last->hp_next;
		n++;
	}
	last->hp_next = r->hp_retired;
	r->hp_retired = first;
	lf_store_relaxed(&r->hp_nretired, lf_load_relaxed(&r->hp_nretired) + n);
	lf_fetch_sub_relaxed(&d->hp_norphans, n);
}

/* Make room for `want` hazards in r's scratch buffer; 0 if the OS says no. */
static int hp_scratch_reserve(lf_hp_rec_t *r, size_t want)
{
	size_t have = r->hp_scratch_bytes;
	size_t need = want * sizeof(uintptr_t);
	if (need <= have)
		return 1;
	size_t bytes = have ? have : HP_SCRATCH_MIN;
	while (bytes < need)
		bytes *= 2;
	void *p;
	if (r->hp_scratch) {
		p = mremap(r->hp_scratch, have, bytes, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return 0;
	} else {
		p = hp_map(bytes);
		if (!p)
			return 0;
	}
	r->hp_scratch = p;
	r->hp_scratch_bytes = bytes;
	return 1;
}

/* Copy every published hazard of every record into r's scratch buffer;
 * returns how many, or -1 when the buffer cannot grow. */
static ptrdiff_t hp_snapshot(lf_hp_rec_t *r)
{
	lf_hp_domain_t *d = r->hp_domain;
	if (!hp_scratch_reserve(r, lf_load_relaxed(&d->hp_nrecords) * LF_HP_PER_THREAD))
		return -1;
	size_t n = 0;
	for (lf_hp_rec_t *o = lf_load_acquire(&d->hp_records); o;
	     o = lf_load_relaxed(&o->hp_next_rec)) {
		for (int i = 0; i < LF_HP_PER_THREAD; i++) {
			uintptr_t h = (uintptr_t)lf_load_seq_cst(&o->hp_slot[i]);
			if (!h)
				continue;
			/* Records pushed since we sized the buffer. */
			if (!hp_scratch_reserve(r, n + 1))
				return -1;
			r->hp_scratch[n++] = h;
		}
	}
	return (ptrdiff_t)n;
}

static void hp_sift_down(uintptr_t *a, size_t root, size_t n)
{
	uintptr_t v = a[root];
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			break;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[child] <= v)
			break;
		a[root] = a[child];
		root = child;
	}
	a[root] = v;
}

/* Heapsort: in place, no recursion, no allocation (qsort may malloc). */
static void hp_sort(uintptr_t *a, size_t n)
{
	if (n < 2)
		return;
	for (size_t i = n / 2; i-- > 0;)
		hp_sift_down(a, i, n);
	for (size_t end = n - 1; end > 0; end--) {
		uintptr_t t = a[0];
		a[0] = a[end];
		a[end] = t;
		hp_sift_down(a, 0, end);
	}
}

/* Does a hazard in sorted a[0..n) cover node address x? */
static int hp_covered(const uintptr_t *a, size_t n, uintptr_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {   /* first hazard above x */
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && x - a[lo - 1] < LF_HP_NODE_REACH;
}

/* Owner only.  Nodes retired by free_fn during the walk wait for the next
 * scan: they were not in the list when the hazards were read. */
size_t lf_hp_scan(lf_hp_rec_t *r)
{
	lf_hp_domain_t *d = r->hp_domain;
	if (r->hp_in_scan)
		return 0;
	hp_adopt(r);
	if (!r->hp_retired)
		return 0;
	r->hp_in_scan = 1;
	lf_store_relaxed(&r->hp_scans, r->hp_scans + 1);
	ptrdiff_t nh = hp_snapshot(r);
	if (nh < 0) {   /* no complete snapshot: free nothing */
		r->hp_in_scan = 0;
		return 0;
	}
	hp_sort(r->hp_scratch, (size_t)nh);

	lf_hp_node_t *node = r->hp_retired, *keep = NULL, *keep_last = NULL;
	r->hp_retired = NULL;
	size_t freed = 0;
	while (node) {
		lf_hp_node_t *next = node->hp_next;
		if (hp_covered(r->hp_scratch, (size_t)nh, (uintptr_t)node)) {
			node->hp_next = keep;
			keep = node;
			if (!keep_last)
				keep_last = node;
		} else {
			d->hp_free(d->hp_ctx, node);
			freed++;
		}
		node = next;
	}
	if (keep) {
		keep_last->hp_next = r->hp_retired;
		r->hp_retired = keep;
	}
	lf_store_relaxed(&r->hp_nretired, lf_load_relaxed(&r->hp_nretired) - freed);
	lf_store_relaxed(&r->hp_freed, r->hp_freed + freed);
	r->hp_in_scan = 0;
	return freed;
}

/* ---- counters ----------------------------------------------------------- */

uint64_t lf_hp_pending(lf_hp_domain_t *d)
{
	uint64_t n = lf_load_relaxed(&d->hp_norphans);
	for (lf_hp_rec_t *r = lf_load_acquire(&d->hp_records); r;
	     r = lf_load_relaxed(&r->hp_next_rec))
		n += lf_load_relaxed(&r->hp_nretired);
	return n;
}

uint64_t lf_hp_records(lf_hp_domain_t *d)
{
	return lf_load_relaxed(&d->hp_nrecords);
}

uint64_t lf_hp_active(lf_hp_domain_t *d)
{
	return lf_load_relaxed(&d->hp_nactive);
}
