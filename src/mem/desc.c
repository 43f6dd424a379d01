/*
 * Descriptors: a reserved arena of 64-byte descriptors, named by 32-bit
 * index (index 0 is never used: it means "none" in slots and lists).
 *
 * Each 4 KiB page of the arena has a 64-bit mask of its free descriptors.
 * Pages with free descriptors sit on a tagged stack (`onstack` keeps a page
 * there at most once).  A descriptor leaves use only through the hazard
 * domain: desc_retire() hands it to lf_hp_retire, and desc_free() runs
 * once no hazard names it; before it fails for want of a descriptor,
 * desc_alloc scans the caller's record (adopting exited threads' retired
 * lists) and tries once more.  A page whose 64 descriptors are all free is
 * given back to the OS (MADV_DONTNEED) when enough other free descriptors
 * remain, and reused later from the released stack.
 */
#define _GNU_SOURCE
#include <stddef.h>

#include "mem/mem.h"

typedef struct desc_page {
	uint64_t freemask;   /* bit i: descriptor i of the page is free */
	uint32_t onstack;    /* 1 while on desc_avail (or being taken off) */
	uint32_t link;       /* desc_avail link */
	uint32_t rlink;      /* desc_released link */
	uint32_t released;   /* 1 while its memory is given back */
} desc_page_t;

char *desc_arena;
static desc_page_t desc_pages[HL_DESC_PAGES];
static uint32_t desc_npages;
static lf_tstack_t desc_avail;
static lf_tstack_t desc_released;
static int64_t desc_slack;   /* free descriptors in mapped pages */
lf_hp_domain_t desc_hp;

static __thread lf_hp_rec_t *desc_tls_rec HL_TLS;

#define DESC_KEEP_SLACK (3 * HL_DESC_PER_PAGE)

static inline uint64_t desc_full_mask(uint32_t pg)
{
	return pg == 0 ? ~(uint64_t)1 : ~(uint64_t)0;
}

static uint32_t *desc_page_link(void *ctx, uint32_t node)
{
	(void)ctx;
	return &desc_pages[node - 1].link;
}

static uint32_t *desc_page_rlink(void *ctx, uint32_t node)
{
	(void)ctx;
	return &desc_pages[node - 1].rlink;
}

static void desc_free(hl_desc_t *d);

static void desc_hp_free(void *ctx, lf_hp_node_t *node)
{
	(void)ctx;
	desc_free((hl_desc_t *)((char *)node - offsetof(hl_desc_t, hp)));
}

void desc_init(void)
{
	desc_arena = os_map((size_t)HL_DESC_PAGES * HL_PAGE);
	if (!desc_arena)
		hl_fatal("init", NULL, "cannot reserve the descriptor arena");
	HL_CTR_ADD(reserved, (uint64_t)HL_DESC_PAGES * HL_PAGE);
	lf_tstack_init(&desc_avail);
	lf_tstack_init(&desc_released);
	lf_hp_domain_init(&desc_hp, desc_hp_free, NULL);
}

/* A failure to get memory from the OS is ENOMEM, never an abort: without
 * a record the caller goes on without what needs one (mem.h), and the
 * next call tries again. */
lf_hp_rec_t *desc_hp_rec(void)
{
	lf_hp_rec_t *r = desc_tls_rec;
	if (HL_UNLIKELY(!r)) {
		r = lf_hp_acquire(&desc_hp);
		if (!r)
			return NULL;
		desc_tls_rec = r;
		thread_exit_ensure();
	}
	return r;
}

void desc_hp_thread_exit(void)
{
	lf_hp_rec_t *r = desc_tls_rec;
	if (r) {
		lf_hp_scan(r);
		lf_hp_release(r);
		desc_tls_rec = NULL;
	}
}

/* Put page pg on the avail stack unless it is there already. */
static void desc_page_offer(uint32_t pg)
{
	uint32_t zero = 0;
	if (lf_cas_strong_seq_cst(&desc_pages[pg].onstack, &zero, 1))
		lf_tstack_push(&desc_avail, pg + 1, &desc_pages[pg].link);
}

/* Take one free descriptor of page pg; -1 if it has none. */
static int desc_take_bit(uint32_t pg)
{
	desc_page_t *p = &desc_pages[pg];
	uint64_t m = lf_load_acquire(&p->freemask);
	while (m) {
		if (lf_cas_weak_acq_rel(&p->freemask, &m, m & (m - 1)))
			return __builtin_ctzll(m);
	}
	return -1;
}

static hl_desc_t *desc_init_one(uint32_t pg, int bit)
{
	uint32_t idx = pg * HL_DESC_PER_PAGE + (uint32_t)bit;
	hl_desc_t *d = desc_at(idx);
	d->idx = idx;
	lf_fetch_sub_relaxed(&desc_slack, 1);
	HL_CTR_ADD(desc_live, 1);
	return d;
}

/* A free descriptor, or NULL when every page is full and none is left. */
static hl_desc_t *desc_take(void)
{
	for (;;) {
		uint32_t node = lf_tstack_pop(&desc_avail, desc_page_link, NULL);
		if (node) {
			uint32_t pg = node - 1;
			lf_store_seq_cst(&desc_pages[pg].onstack, 0);
			int bit = desc_take_bit(pg);
			if (lf_load_seq_cst(&desc_pages[pg].freemask))
				desc_page_offer(pg);
			if (bit >= 0)
				return desc_init_one(pg, bit);
			continue;
		}
		node = lf_tstack_pop(&desc_released, desc_page_rlink, NULL);
		uint32_t pg;
		if (node) {
			pg = node - 1;
			lf_store_relaxed(&desc_pages[pg].released, 0);
			HL_CTR_SUB(desc_pages_released, 1);
		} else {
			/* A page never used before.  A bounded take: a
			 * fetch-add passed the bound on every failure and,
			 * after 2^32 of them, wrapped onto page 0, whose
			 * descriptors are live. */
			int64_t fresh = ctr_take_bounded(&desc_npages, HL_DESC_PAGES);
			if (fresh < 0)
				return NULL;
			pg = (uint32_t)fresh;
		}
		HL_CTR_ADD(desc_pages_mapped, 1);
		/* We own the page: nobody else can take its bits yet. */
		uint64_t full = desc_full_mask(pg);
		int bit = __builtin_ctzll(full);
		lf_fetch_add_relaxed(&desc_slack, (int64_t)os_popcount64(full));
		lf_store_seq_cst(&desc_pages[pg].freemask, full & (full - 1));
		desc_page_offer(pg);
		return desc_init_one(pg, bit);
	}
}

/* Before failing, scan the caller's record: its own retired descriptors
 * wait for up to 2 x 4 x (live records) retires, and the scan adopts the
 * lists of exited threads, so they may be all that stands between the
 * caller and a descriptor.  The scan frees only what no hazard names. */
hl_desc_t *desc_alloc(void)
{
	hl_desc_t *d = desc_take();
	if (HL_LIKELY(d))
		return d;
	lf_hp_rec_t *r = desc_hp_rec();
	if (r)
		lf_hp_scan(r);
	return desc_take();
}

static void desc_free(hl_desc_t *d)
{
	uint32_t idx = d->idx, pg = idx / HL_DESC_PER_PAGE;
	uint64_t bit = (uint64_t)1 << (idx % HL_DESC_PER_PAGE);
	desc_page_t *p = &desc_pages[pg];
	HL_CTR_SUB(desc_live, 1);
	HL_CTR_ADD(desc_freed, 1);
	int64_t slack = lf_fetch_add_relaxed(&desc_slack, 1) + 1;
	uint64_t old = __atomic_fetch_or(&p->freemask, bit, __ATOMIC_SEQ_CST);
	HL_ASSERT(!(old & bit));
	uint64_t now = old | bit, full = desc_full_mask(pg);
	if (now == full && pg != 0 && slack > (int64_t)DESC_KEEP_SLACK &&
	    lf_cas_strong_seq_cst(&p->freemask, &now, 0)) {
		/* All 64 are free and claimed by us: give the page back. */
		lf_fetch_sub_relaxed(&desc_slack, (int64_t)HL_DESC_PER_PAGE);
		os_purge(desc_arena + (size_t)pg * HL_PAGE, HL_PAGE);
		lf_store_relaxed(&p->released, 1);
		HL_CTR_SUB(desc_pages_mapped, 1);
		HL_CTR_ADD(desc_pages_released, 1);
		lf_tstack_push(&desc_released, pg + 1, &p->rlink);
		return;
	}
	if (old == 0)
		desc_page_offer(pg);
}

void desc_retire(hl_desc_t *d, lf_hp_rec_t *r)
{
	HL_CTR_ADD(desc_retired, 1);
	lf_hp_retire(r, &d->hp);
}

/* Test and statistics view: is descriptor page pg given back? */
int desc_page_released(uint32_t pg)
{
	return pg < HL_DESC_PAGES && lf_load_relaxed(&desc_pages[pg].released);
}

#ifdef HL_TEST_HOOKS
/* Pages taken so far, and a way to pretend n have been (never below the
 * pages really taken; quiescent use only), so that a test reaches the
 * bound without using 2^15 pages. */
uint32_t desc_test_npages(void) { return lf_load_relaxed(&desc_npages); }
void desc_test_seed_pages(uint32_t n) { lf_store_relaxed(&desc_npages, n); }

/* Free descriptors in pages not given back (quiescent use only). */
uint64_t desc_test_free_bits(void)
{
	uint64_t n = 0;
	uint32_t np = lf_load_relaxed(&desc_npages);
	for (uint32_t pg = 0; pg < np && pg < HL_DESC_PAGES; pg++)
		if (!lf_load_relaxed(&desc_pages[pg].released))
			n += (uint64_t)os_popcount64(lf_load_relaxed(&desc_pages[pg].freemask));
	return n;
}
#endif
