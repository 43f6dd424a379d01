/*
 * Backings: what stands behind a region's superblock spans, and the
 * charging of capacity and quota for them.
 *
 * An ANON backing takes spans from the reservation (mem/pagemap.c) and
 * gives them back purged.  MEMFD, HUGETLB and BUFFER backings are pools:
 * one mapping of `capacity` bytes made (or given) at setup, carved into
 * 64 KiB slots with slot records of their own in the page map; they serve
 * superblocks only (blocks up to 32 KiB).
 *
 * Concurrency: bk_reserve/bk_unreserve and bk_span_get/bk_span_put may run
 * in any threads at once (capacity and budget are bounded counters
 * changed by CAS; pool slots come from a CAS-bumped index and tagged
 * stacks).  bk_setup and bk_release run on a backing nobody else uses
 * (policy/region.c's create and delete see to it).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/mem.h"

bk_t bk_tab[HL_MAX_REGIONS];
static void (*bk_level_hook)(bk_t *bk);

void bk_init(void)
{
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		bk_tab[i].id = i;
		bk_tab[i].kind = HL_BACKING_ANON;
		bk_tab[i].fd = -1;
	}
}

void bk_set_level_hook(void (*fn)(bk_t *bk))
{
	bk_level_hook = fn;
}

static void bk_level_changed(bk_t *bk)
{
	if (bk_level_hook)
		bk_level_hook(bk);
}

/* ---- charging ----------------------------------------------------------- */

bool bk_reserve(hl_account_t *ac, uint64_t n, int *err)
{
	bk_t *bk = ac->bk;
	hl_budget_t *b = ac->budget;
	*err = HL_ENOMEM;
	if (!ctr_add_bounded(&bk->backed, n, bk->capacity ? bk->capacity : UINT64_MAX))
		return false;
	if (!ctr_add_bounded(&b->used, n, b->limit ? b->limit : UINT64_MAX)) {
		lf_fetch_sub_relaxed(&bk->backed, n);
		return false;
	}
	lf_fetch_add_relaxed(&ac->backed, n);
	bk_level_changed(bk);
	return true;
}

void bk_unreserve(hl_account_t *ac, uint64_t n)
{
	lf_fetch_sub_relaxed(&ac->backed, n);
	lf_fetch_sub_relaxed(&ac->budget->used, n);
	lf_fetch_sub_relaxed(&ac->bk->backed, n);
	bk_level_changed(ac->bk);
}

/* ---- spans -------------------------------------------------------------- */

/* The slot record of a pool's slot: pools have records for every slot
 * from setup on. */
static pm_slot_t *bk_rec(bk_t *bk, uint32_t slot)
{
	pm_slot_t *rec = pm_lookup(bk->pool + ((size_t)slot << HL_SLOT_SHIFT));
	if (!rec)
		__builtin_unreachable();
	return rec;
}

static uint32_t *bk_pool_link(void *ctx, uint32_t idx)
{
	return &bk_rec(ctx, idx - 1)->link;
}

static char *bk_slot_addr(bk_t *bk, uint32_t slot)
{
	return bk->pool + ((size_t)slot << HL_SLOT_SHIFT);
}

/* Hand the free run [slot, slot + n) to the pool's stacks, cut greedily
 * into spans of 8, 4, 2 and 1 slots (a pool's spans need no alignment
 * beyond the slot's). */
static void bk_pool_give(bk_t *bk, uint32_t slot, uint32_t n)
{
	while (n) {
		unsigned o = HL_SPAN_ORDERS - 1;
		while ((1u << o) > n)
			o--;
		lf_tstack_push(&bk->pool_free[o], slot + 1, &bk_rec(bk, slot)->link);
		slot += 1u << o;
		n -= 1u << o;
	}
}

/* Merge: take every free span of the pool (popping a whole stack makes us
 * its spans' owner; spans freed meanwhile wait on the stacks), mark their
 * slots, and give them back as the longest runs they form.  Lock-free:
 * nobody waits for a regroup, they only find fewer spans while it runs. */
static void bk_pool_regroup(bk_t *bk)
{
	uint32_t total = (uint32_t)(bk->pool_len >> HL_SLOT_SHIFT);
	size_t words = ((size_t)total + 63) / 64;
	uint64_t local[128], *bits = local;
	if (words > sizeof local / sizeof local[0]) {
		bits = os_map(words * sizeof *bits);
		if (!bits)
			return;   /* no room to merge: the split path still works */
	} else {
		for (size_t w = 0; w < words; w++)
			local[w] = 0;
	}
	bool any = false;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++) {
		uint32_t idx = lf_tstack_pop_all(&bk->pool_free[o]);
		while (idx) {
			uint32_t next = lf_load_relaxed(bk_pool_link(bk, idx));
			for (uint32_t k = 0; k < (1u << o); k++)
				bits[(idx - 1 + k) / 64] |= (uint64_t)1 << ((idx - 1 + k) % 64);
			any = true;
			idx = next;
		}
	}
	for (uint32_t s = 0; any && s < total;) {
		if (!(bits[s / 64] >> (s % 64) & 1)) {
			s++;
			continue;
		}
		uint32_t e = s;
		while (e < total && bits[e / 64] >> (e % 64) & 1)
			e++;
		bk_pool_give(bk, s, e - s);
		s = e;
	}
	if (bits != local)
		os_unmap(bits, words * sizeof *bits);
}

/* A span of (1 << order) slots: a free one of that size, the untouched
 * tail, a bigger free one split (the rest goes back), or, once, all free
 * spans merged and then those again. */
static char *bk_pool_take(bk_t *bk, unsigned order)
{
	uint32_t n = 1u << order, total = (uint32_t)(bk->pool_len >> HL_SLOT_SHIFT);
	for (int pass = 0; pass < 2; pass++) {
		uint32_t idx = lf_tstack_pop(&bk->pool_free[order], bk_pool_link, bk);
		if (idx)
			return bk_slot_addr(bk, idx - 1);
		uint32_t cur = lf_load_relaxed(&bk->pool_next);
		while (cur + n <= total) {
			if (lf_cas_weak_acq_rel(&bk->pool_next, &cur, cur + n))
				return bk_slot_addr(bk, cur);
		}
		for (unsigned o = order + 1; o < HL_SPAN_ORDERS; o++) {
			idx = lf_tstack_pop(&bk->pool_free[o], bk_pool_link, bk);
			if (idx) {
				bk_pool_give(bk, idx - 1 + n, (1u << o) - n);
				return bk_slot_addr(bk, idx - 1);
			}
		}
		if (pass == 0)
			bk_pool_regroup(bk);
	}
	return NULL;
}

char *bk_span_get(hl_account_t *ac, unsigned order, uint32_t *span, int *err)
{
	bk_t *bk = ac->bk;
	size_t bytes = HL_SLOT_SIZE << order;
	if (!bk_reserve(ac, bytes, err))
		return NULL;
	char *base = NULL;
	*span = 0;
	if (bk->pool) {
		base = bk_pool_take(bk, order);
	} else {
		bool fresh;
		uint32_t sp = pm_span_get(order, &base, &fresh);
		if (sp && bk->secure && !os_lock(base, bytes)) {
			hl_warn("hl_alloc", base, "cannot lock a secure region's pages (RLIMIT_MEMLOCK?): HL_EPERM");
			pm_span_put(sp, order);
			bk_unreserve(ac, bytes);
			*err = HL_EPERM;
			return NULL;
		}
		*span = sp;
		if (!sp)
			base = NULL;
	}
	if (!base) {
		bk_unreserve(ac, bytes);
		*err = HL_ENOMEM;
		return NULL;
	}
	lf_fetch_add_relaxed(&bk->superblocks, 1);
	return base;
}

void bk_span_put(hl_account_t *ac, char *base, uint32_t span, unsigned order)
{
	bk_t *bk = ac->bk;
	size_t bytes = HL_SLOT_SIZE << order;
	if (bk->pool) {
		uint32_t first = (uint32_t)((size_t)(base - bk->pool) >> HL_SLOT_SHIFT);
		pm_mark_cached(base, order);
		if (bk->kind == HL_BACKING_MEMFD)
			fallocate(bk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(base - bk->pool), (off_t)bytes);
		else if (bk->secure)
			/* A secure buffer or huge-page span keeps its pages: no
			 * block of the next owner may read this one's bytes
			 * (a reset drops blocks that were never freed, and so
			 * never wiped). */
			memset(base, 0, bytes);
		lf_tstack_push(&bk->pool_free[order], first + 1,
			       &pm_lookup(base)->link);
	} else {
		if (bk->secure)
			os_unlock(base, bytes);
		os_purge(base, bytes);
		pm_span_put_clean(span, order);
	}
	lf_fetch_sub_relaxed(&bk->superblocks, 1);
	bk_unreserve(ac, bytes);
}

/* ---- pools: setup and release ------------------------------------------- */

/* Undo a pool: its pages unlocked and unmapped (a user's buffer only
 * unlocked), its descriptor closed; with records, its slot records are
 * forgotten too (not when setup failed before they were installed: the
 * range may hold records that are not the pool's). */
static void bk_unmake(bk_t *bk, bool records)
{
	if (!bk->pool)
		return;
	if (records)
		pm_forget(bk->pool, bk->pool_len);
	if (bk->secure)
		os_unlock(bk->pool, bk->pool_len);
	if (bk->kind != HL_BACKING_BUFFER)
		os_unmap(bk->pool, bk->pool_len);
	if (bk->fd >= 0)
		close(bk->fd);
	bk->fd = -1;
	lf_store_seq_cst(&bk->pool, (char *)NULL);
	bk->pool_len = 0;
}

void bk_release(bk_t *bk)
{
	bk_unmake(bk, true);
}

/* A user's buffer may back one region only, and never memory heaplib
 * manages itself.  Its range is published (seq_cst) before the others are
 * read (seq_cst), so of two regions made over one buffer at once at least
 * one sees the other and refuses. */
static bool bk_buffer_claim(bk_t *bk, char *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, e = a + len;
	size_t sz;
	uintptr_t st;
	if (large_lookup(p, &sz, &st) != 0)
		return false;   /* a large block heaplib handed out */
	lf_store_seq_cst(&bk->pool_len, len);
	lf_store_seq_cst(&bk->pool, p);
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		bk_t *o = &bk_tab[i];
		if (o == bk)
			continue;
		uintptr_t oa = (uintptr_t)lf_load_seq_cst(&o->pool);
		uintptr_t oe = oa + lf_load_seq_cst(&o->pool_len);
		if (oa && oa < e && a < oe) {
			lf_store_seq_cst(&bk->pool, (char *)NULL);
			lf_store_relaxed(&bk->pool_len, (size_t)0);
			return false;
		}
	}
	return true;
}

/* A memfd of len bytes mapped shared at a 64 KiB-aligned address. */
static char *bk_map_memfd(bk_t *bk, size_t len, const char *name)
{
	int fd = memfd_create(name && name[0] ? name : "heaplib", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)len) != 0) {
		close(fd);
		return NULL;
	}
	/* 64 KiB-aligned: reserve, then map the file over it. */
	char *res = os_map_aligned(len, HL_SLOT_SIZE);
	if (!res ||
	    mmap(res, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		if (res)
			os_unmap(res, len);
		close(fd);
		return NULL;
	}
	bk->fd = fd;
	return res;
}

int bk_setup(bk_t *bk, hl_backing_t kind, uint64_t capacity, int secure,
	     void *buffer, const char *name)
{
	bk->kind = kind;
	lf_store_relaxed(&bk->secure, secure != 0);
	lf_store_relaxed(&bk->capacity, capacity);
	bk->backed = bk->superblocks = 0;
	size_t len = capacity;
	char *p = NULL;
	switch (kind) {
	case HL_BACKING_MEMFD:
		p = bk_map_memfd(bk, len, name);
		if (!p)
			return HL_ENOMEM;
		break;
	case HL_BACKING_HUGETLB:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (p == MAP_FAILED)
			return HL_ENOMEM;   /* no huge pages reserved */
		break;
	case HL_BACKING_BUFFER:
		p = buffer;
		if (!bk_buffer_claim(bk, p, len))
			return HL_EINVAL;
		break;
	default:
		return HL_OK;
	}
	bk->pool = p;
	bk->pool_len = len;
	bk->pool_next = 0;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++)
		lf_tstack_init(&bk->pool_free[o]);
	if (!pm_map_foreign(p, len)) {
		bk->secure = 0;   /* nothing is locked yet */
		bk_unmake(bk, false);
		return HL_EINVAL;
	}
	if (bk->secure && !os_lock(p, len)) {
		hl_warn("hl_region_create", p, "cannot lock the region's pages (RLIMIT_MEMLOCK?): HL_EPERM");
		bk->secure = 0;
		bk_unmake(bk, true);
		return HL_EPERM;
	}
	return HL_OK;
}
