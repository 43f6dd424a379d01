/*
 * Thread caches and transfer caches.
 *
 * A thread cache is per thread, per class, an array of block pointers: the
 * fast path (alloc.c) pops and pushes there with no atomic read-modify-
 * write and follows no link stored in user memory.  When a bin runs dry it
 * takes one batch from the class's transfer cache (one CAS) or from a
 * superblock (one anchor CAS); when it fills, its oldest batch goes to the
 * transfer cache, or, past that cache's bound or the global byte budget,
 * back into its superblocks (one CAS per superblock).
 *
 * Caches are mapped with mmap and kept in a pool for the next thread; a
 * thread's cache is handed back at its exit (base/thread.c's registry
 * calls tc_thread_exit).
 *
 * A thread of a task other than the default has a task cache instead
 * (core/tkcache.c); a thread's flush and exit empty both.
 *
 * Concurrency contract:
 *   operation              may run with          linearizes on
 *   the bins (fast path,   nothing: the owner    (thread-local)
 *   tc_*_slow, flush)      thread only
 *   tc_xfer_put/_get       anything              the transfer stack's CAS
 *   tc_create/exit         anything              the pool stack's CAS, or the
 *                                                pool counter's (a new cache)
 */
#define _GNU_SOURCE
#include <string.h>

#include "core/core.h"

#define TC_MAX 65536u
#define TC_NODES 65536u
#define TC_XFER_BYTES ((size_t)4 << 20)   /* per class transfer bound */

typedef struct tc_node {
	uint32_t link;
	uint32_t n;
	void *ptr[HL_MAX_BATCH];
} tc_node_t;

/* What a thread without a cache points at: every bin's top and low at
 * one TC_FULL slot, so empty (top == low) and full (*top == TC_FULL) at
 * once, with check constants that pass no offset.  Never written: the
 * fast paths write a bin only past those tests, the slow paths ask
 * tc_mine().  The TLS initializer is relocated before any thread
 * starts, its first included. */
static void *const tc_none_full = TC_FULL;
const hl_tcache_t tc_none = {
	.bin = { [0 ... HL_NCLASSES - 1] = { (void **)&tc_none_full, (void **)&tc_none_full, 0, 0 } },
};
__thread hl_tcache_t *hl_tc HL_TLS = (hl_tcache_t *)&tc_none;
/* 1: the thread exited; 2: it runs without a cache (tc_detach). */
static __thread uint8_t tc_off HL_TLS;

static hl_tcache_t *tc_pool[TC_MAX];
static uint32_t tc_pool_next;
static lf_tstack_t tc_pool_free;
static size_t tc_bytes_each;

static tc_node_t *tc_nodes;
static uint32_t tc_nodes_next;
static lf_tstack_t tc_nodes_free;
static lf_tstack_t tc_xfer[HL_NCLASSES];
static uint32_t tc_xfer_len[HL_NCLASSES];
static uint32_t tc_xfer_max[HL_NCLASSES];

#ifdef HL_TEST_HOOKS
void tc_test_seed_pool(uint32_t left) { lf_store_release(&tc_pool_next, TC_MAX - left); }
int64_t tc_test_pool_left(void) { return (int64_t)TC_MAX - lf_load_acquire(&tc_pool_next); }
#endif

static uint32_t *tc_pool_link(void *ctx, uint32_t id)
{
	(void)ctx;
	return &tc_pool[id - 1]->link;
}

static uint32_t *tc_node_link(void *ctx, uint32_t id)
{
	(void)ctx;
	return &tc_nodes[id - 1].link;
}

void tc_init(void)
{
	size_t slots = 0;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		slots += tc_fbin_cap(c) + 1;   /* and its TC_FULL */
		size_t per = (size_t)sc_table[c].batch * sc_table[c].size;
		size_t m = TC_XFER_BYTES / per;
		tc_xfer_max[c] = (uint32_t)(m < 4 ? 4 : m > 256 ? 256 : m);
		lf_tstack_init(&tc_xfer[c]);
	}
	os_page_round(sizeof(hl_tcache_t) + slots * sizeof(void *), &tc_bytes_each);
	tc_nodes = os_map((size_t)TC_NODES * sizeof(tc_node_t));
	if (!tc_nodes)
		hl_fatal("init", NULL, "cannot reserve the transfer-cache nodes");
	HL_CTR_ADD(reserved, (uint64_t)TC_NODES * sizeof(tc_node_t));
	lf_tstack_init(&tc_pool_free);
	lf_tstack_init(&tc_nodes_free);
	tk_init();
}

/* Take the next of n numbers from *ctr by CAS: false at the bound, where
 * *ctr stays.  Any thread. */
static bool tc_take_number(uint32_t *ctr, uint32_t n, uint32_t *id)
{
	uint32_t cur = lf_load_acquire(ctr);
	do {
		if (cur >= n)
			return false;
	} while (!lf_cas_weak_acq_rel(ctr, &cur, cur + 1));
	*id = cur + 1;
	return true;
}

/* A new cache: mapped first and numbered after, so that a failed map
 * spends no number. */
static hl_tcache_t *tc_new(void)
{
	if (lf_load_acquire(&tc_pool_next) >= TC_MAX)
		return NULL;
	hl_tcache_t *tc = os_map(tc_bytes_each);
	if (!tc)
		return NULL;
	uint32_t id;
	if (!tc_take_number(&tc_pool_next, TC_MAX, &id)) {
		os_unmap(tc, tc_bytes_each);
		return NULL;
	}
	tc->id = id;
	void **s = tc->store;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		tc_fbin_t *b = &tc->bin[c];
		b->low = b->top = s;
		s += tc_fbin_cap(c);
		*s++ = TC_FULL;
		b->divm = sc_checks[c].divm;
		b->bound = sc_checks[c].bound;
	}
	lf_store_release(&tc_pool[id - 1], tc);
	return tc;
}

static hl_tcache_t *tc_create(void)
{
	uint32_t id = lf_tstack_pop(&tc_pool_free, tc_pool_link, NULL);
	hl_tcache_t *tc = id ? tc_pool[id - 1] : tc_new();
	if (!tc)
		return NULL;
	tc->heap = sb_heap_pick();
	tc->last_ms = os_now_ms();
	tc->bytes = 0;
	hl_tc = tc;
	HL_CTR_ADD(threads_live, 1);
	thread_exit_ensure();
	return tc;
}

/* ---- transfer cache ---------------------------------------------------- */

static tc_node_t *tc_node_get(void)
{
	uint32_t id = lf_tstack_pop(&tc_nodes_free, tc_node_link, NULL);
	if (!id && !tc_take_number(&tc_nodes_next, TC_NODES, &id))
		return NULL;
	return &tc_nodes[id - 1];
}

static void tc_node_put(tc_node_t *nd)
{
	uint32_t id = (uint32_t)(nd - tc_nodes) + 1;
	lf_tstack_push(&tc_nodes_free, id, &nd->link);
}

/* Any thread: hand n blocks of class cls to the transfer cache, or back
 * to their superblocks when it is full. */
static void tc_xfer_put(unsigned cls, void **v, unsigned n, const char *call)
{
	if (lf_load_relaxed(&tc_xfer_len[cls]) < tc_xfer_max[cls] && !tc_over_budget()) {
		tc_node_t *nd = tc_node_get();
		if (nd) {
			nd->n = n;
			memcpy(nd->ptr, v, n * sizeof *v);
			lf_fetch_add_relaxed(&tc_xfer_len[cls], 1);
			HL_CTR_ADD(transfer_bytes, (uint64_t)n * sc_table[cls].size);
			lf_tstack_push(&tc_xfer[cls], (uint32_t)(nd - tc_nodes) + 1, &nd->link);
			return;
		}
	}
	void *tmp[2 * HL_MAX_BATCH];
	memcpy(tmp, v, n * sizeof *v);
	sb_free_batch_booked(cls, tmp, n, call, tk_book_freed, &cls);
}

/* Any thread: take one batch; returns its size (0 when empty). */
static unsigned tc_xfer_get(unsigned cls, void **out)
{
	uint32_t id = lf_tstack_pop(&tc_xfer[cls], tc_node_link, NULL);
	if (!id)
		return 0;
	tc_node_t *nd = &tc_nodes[id - 1];
	unsigned n = nd->n;
	memcpy(out, nd->ptr, n * sizeof *out);
	lf_fetch_sub_relaxed(&tc_xfer_len[cls], 1);
	HL_CTR_SUB(transfer_bytes, (uint64_t)n * sc_table[cls].size);
	tc_node_put(nd);
	return n;
}

void tc_drain_transfer(void)
{
	void *v[HL_MAX_BATCH];
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		unsigned n;
		while ((n = tc_xfer_get(c, v)) != 0)
			sb_free_batch_booked(c, v, n, "malloc_trim", tk_book_freed, &c);
	}
}

/* ---- thread cache slow paths ------------------------------------------- */

static void tc_account(hl_tcache_t *tc)
{
	int64_t b = 0;
	for (unsigned c = 0; c < HL_NCLASSES; c++)
		b += (int64_t)tc_fbin_count(&tc->bin[c]) * sc_table[c].size;
	int64_t d = b - tc->bytes;
	tc->bytes = b;
	if (d)
		lf_fetch_add_relaxed((int64_t *)&hl_ctr.tcache_bytes, d);
}

static void tc_flush_bin(hl_tcache_t *tc, unsigned c, unsigned keep)
{
	tc_fbin_t *b = &tc->bin[c];
	unsigned batch = sc_table[c].batch;
	unsigned n;
	while ((n = tc_fbin_count(b)) > keep) {
		unsigned k = n - keep < batch ? n - keep : batch;
		/* The oldest blocks (bottom of the bin) go first. */
		tc_xfer_put(c, b->low, k, "free");
		memmove(b->low, b->low + k, (n - k) * sizeof(void *));
		b->top -= k;
	}
}

static void tc_flush_all(hl_tcache_t *tc)
{
	for (unsigned c = 0; c < HL_NCLASSES; c++)
		tc_flush_bin(tc, c, 0);
	tc_account(tc);
}

void tc_thread_flush(void)
{
	hl_tcache_t *tc = tc_mine();
	if (tc)
		tc_flush_all(tc);
	tk_flush();
}

/* Hand the cache back to the pool (exit or detach). */
static void tc_give_back(hl_tcache_t *tc)
{
	tc_flush_all(tc);
	hl_tc = (hl_tcache_t *)&tc_none;
	HL_CTR_SUB(threads_live, 1);
	lf_tstack_push(&tc_pool_free, tc->id, &tc->link);
}

void tc_thread_exit(void)
{
	hl_tcache_t *tc = tc_mine();
	tc_off = 1;
	if (tc)
		tc_give_back(tc);
	tk_release(true);
}

/* HEAPLIB_CHECK: a freed block is filled with junk past its link and
 * mark; a block that comes back from a free list must still hold it. */
#define TC_JUNK 0xdf

static HL_NOINLINE void tc_check_junk(void *p, unsigned cls)
{
	const unsigned char *c = p;
	if (((const uint64_t *)p)[1] != hl_key)
		return;   /* never handed out before: nothing to check */
	for (size_t i = 16; i < sc_table[cls].size; i++)
		if (c[i] != TC_JUNK)
			hl_fatal("malloc", p, HL_WHY_JUNK);
}

static hl_tcache_t *tc_get(void)
{
	hl_tcache_t *tc = tc_mine();
	if (HL_LIKELY(tc))
		return tc;
	if (tc_off || hl_config.check)
		return NULL;   /* thread exiting, of another task, or check mode */
	return tc_create();
}

/* The thread joins a task other than the default: its cache may hold only
 * the default task's blocks, so it is flushed and given back, and the
 * thread goes on without one. */
void tc_detach(void)
{
	hl_tcache_t *tc = tc_mine();
	if (tc_off != 1)
		tc_off = 2;
	if (tc)
		tc_give_back(tc);
}

void tc_attach(void)
{
	if (tc_off == 2)
		tc_off = 0;
}

static void tc_idle_check(hl_tcache_t *tc)
{
	uint32_t now = os_now_ms();
	if (now - tc->last_ms > hl_config.idle_ms)
		tc_flush_all(tc);
	tc->last_ms = now;
}

void *tc_alloc_slow(unsigned cls)
{
	hl_tcache_t *tc = tc_get();
	if (!tc) {
		void *p;
		bool ok = sb_alloc_batch(sb_arena(0), 0, cls, &p, 1) == 1;
		if (ok && HL_UNLIKELY(hl_config.check))
			tc_check_junk(p, cls);
		if (ok)
			((uint64_t *)p)[1] = 0;
		return ok ? p : NULL;
	}
	tc_idle_check(tc);
	tc_fbin_t *b = &tc->bin[cls];
	if (b->top == b->low) {
		unsigned n = tc_xfer_get(cls, b->low);
		if (!n)
			n = sb_alloc_batch(sb_arena(0), tc->heap, cls, b->low,
					   sc_table[cls].batch);
		b->top = b->low + n;
		tc_account(tc);
		decay_tick();
		if (!n)
			return NULL;
	}
	void *p = *--b->top;
	((uint64_t *)p)[1] = 0;
	return p;
}

void tc_free_slow(void *p, unsigned cls)
{
	hl_tcache_t *tc = tc_get();
	if (!tc) {
		if (HL_UNLIKELY(hl_config.check)) {
			/* No cache holds it, so a set mark means it is free. */
			if (((uint64_t *)p)[1] == hl_key)
				hl_fatal("free", p, HL_WHY_FREE_FREE);
			memset((char *)p + 16, TC_JUNK, sc_table[cls].size - 16);
		}
		sb_free_batch_booked(cls, &p, 1, "free", tk_book_freed, &cls);
		return;
	}
	tc_idle_check(tc);
	tc_fbin_t *b = &tc->bin[cls];
	unsigned keep = tc_fbin_cap(cls) - sc_table[cls].batch;
	if (tc_over_budget())
		keep = 0;
	tc_flush_bin(tc, cls, keep);
	((uint64_t *)p)[1] = hl_key;
	*b->top++ = p;
	tc_account(tc);
	decay_tick();
}

bool tc_in_thread_cache(void *p, unsigned cls)
{
	const tc_fbin_t *b = &hl_tc->bin[cls];   /* tc_none's: empty */
	for (void **s = b->low; s != b->top; s++)
		if (*s == p)
			return true;
	return tk_holds(p, cls);
}
