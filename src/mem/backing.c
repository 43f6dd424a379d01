/*
 * Backings: what stands behind a region's superblock spans, and the
 * charging of capacity and quota for them.
 *
 * ANON and MEMFD spans come from the reservation (mem/pagemap.c), so a
 * superblock keeps its address whatever backs it: an ANON span keeps the
 * reservation's anonymous memory and is given back purged; a MEMFD span
 * has a free range of offsets of the region's memfd mapped over it
 * (shared, MAP_FIXED) and, when it empties, its offsets punched out and
 * fresh anonymous memory mapped back before the span goes back clean.
 * What backs each span is in the page map's side table (pm_back_*), so a
 * backing move (bk_span_move in bkmove.c, through rebind.c) can change it
 * in place.
 * HUGETLB and BUFFER backings are pools: one mapping of `capacity` bytes
 * made (or given) at setup, carved into 64 KiB slots with slot records of
 * their own; their addresses are theirs, and they never move.  MEMFD and
 * the pools serve superblocks only (blocks up to 32 KiB).
 *
 * Concurrency: bk_reserve/bk_unreserve and bk_span_get/bk_span_put may run
 * in any threads at once (capacity and budget are bounded counters
 * changed by CAS; pool slots and memfd offsets come from a CAS-bumped
 * index and tagged stacks).  Backing moves are bkmove.c's.  bk_setup and
 * bk_release run on a backing nobody else uses (policy/region.c's create
 * and delete see to it).
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
	/* Start-up registers the fork steps (src/README.md): a child must
	 * not keep the userfaultfd of backing moves. */
	thread_atfork_register(NULL, NULL, rb_fork_child);
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

/* An account without a budget is arena 0's: only its backed bytes count
 * (as core/sb.c charges its spans), for moves into or out of it. */
bool bk_reserve(hl_account_t *ac, uint64_t n, int *err)
{
	bk_t *bk = ac->bk;
	hl_budget_t *b = ac->budget;
	*err = HL_ENOMEM;
	if (!b) {
		lf_fetch_add_relaxed(&ac->backed, n);
		return true;
	}
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
	if (!ac->budget)
		return;
	lf_fetch_sub_relaxed(&ac->budget->used, n);
	lf_fetch_sub_relaxed(&ac->bk->backed, n);
	bk_level_changed(ac->bk);
}

/* ---- units: pool slots and memfd offsets -------------------------------- */

/* The slot record of a pool's slot: pools have records for every slot
 * from setup on. */
static pm_slot_t *bk_rec(bk_t *bk, uint32_t slot)
{
	pm_slot_t *rec = pm_lookup(bk->pool + ((size_t)slot << HL_SLOT_SHIFT));
	if (!rec)
		__builtin_unreachable();
	return rec;
}

/* The free-stack link of unit idx - 1: in a memfd's unit table, or in
 * the slot record of a pool's slot. */
static uint32_t *bk_unit_link(void *ctx, uint32_t idx)
{
	bk_t *bk = ctx;
	if (bk->units)
		return &bk->units[idx - 1].link;
	return &bk_rec(bk, idx - 1)->link;
}

static char *bk_slot_addr(bk_t *bk, uint32_t slot)
{
	return bk->pool + ((size_t)slot << HL_SLOT_SHIFT);
}

void bk_unit_push(bk_t *bk, unsigned order, uint32_t unit)
{
	lf_tstack_push(&bk->pool_free[order], unit + 1, bk_unit_link(bk, unit + 1));
}

/* Hand the free run [unit, unit + n) to the stacks, cut greedily into
 * runs of 8, 4, 2 and 1 units (spans need no alignment of their units
 * beyond the unit's). */
static void bk_units_give(bk_t *bk, uint32_t unit, uint32_t n)
{
	while (n) {
		unsigned o = HL_SPAN_ORDERS - 1;
		while ((1u << o) > n)
			o--;
		bk_unit_push(bk, o, unit);
		unit += 1u << o;
		n -= 1u << o;
	}
}

/* Merge: take every free run (popping a whole stack makes us its runs'
 * owner; runs freed meanwhile wait on the stacks), mark their units, and
 * give them back as the longest runs they form.  Lock-free: nobody waits
 * for a regroup, they only find fewer runs while it runs. */
static void bk_units_regroup(bk_t *bk)
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
			uint32_t next = lf_load_relaxed(bk_unit_link(bk, idx));
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
		bk_units_give(bk, s, e - s);
		s = e;
	}
	if (bits != local)
		os_unmap(bits, words * sizeof *bits);
}

/* A run of (1 << order) units, as its first unit + 1 (0: none): a free
 * one of that size, the untouched tail, a bigger free one split (the rest
 * goes back), or, once, all free runs merged and then those again. */
uint32_t bk_units_take(bk_t *bk, unsigned order)
{
	uint32_t n = 1u << order, total = (uint32_t)(bk->pool_len >> HL_SLOT_SHIFT);
	for (int pass = 0; pass < 2; pass++) {
		uint32_t idx = lf_tstack_pop(&bk->pool_free[order], bk_unit_link, bk);
		if (idx)
			return idx;
		uint32_t cur = lf_load_relaxed(&bk->pool_next);
		while (cur + n <= total) {
			if (lf_cas_weak_acq_rel(&bk->pool_next, &cur, cur + n))
				return cur + 1;
		}
		for (unsigned o = order + 1; o < HL_SPAN_ORDERS; o++) {
			idx = lf_tstack_pop(&bk->pool_free[o], bk_unit_link, bk);
			if (idx) {
				bk_units_give(bk, idx - 1 + n, (1u << o) - n);
				return idx;
			}
		}
		if (pass == 0) {
			if (bk->units)
				rb_warm_drain(bk);   /* warm units are free offsets too */
			bk_units_regroup(bk);
		}
	}
	return 0;
}

/* ---- memfd spans -------------------------------------------------------- */

/* Offsets [unit, unit + 2^order) of bk back to its memfd (a hole) and to
 * its free stacks; the span that had them no longer does. */
void bk_units_free(bk_t *bk, uint32_t unit, unsigned order)
{
	os_punch(bk->fd, bk_unit_off(unit), HL_SLOT_SIZE << order);
	lf_store_relaxed(&bk->units[unit].base, (char *)NULL);
	bk_unit_push(bk, order, unit);
}

/* Whatever backs the span at base now goes: fresh anonymous memory, as
 * the reservation's, is mapped over it; memfd offsets go back to their
 * backing.  False (nothing changed) if the kernel refuses the mapping. */
bool bk_span_unback(char *base, unsigned order)
{
	size_t bytes = HL_SLOT_SIZE << order;
	uint32_t back = pm_back_get(base);
	if (!back)
		return true;
	if (!os_map_anon_fixed(base, bytes))
		return false;
	if (PM_BACK_IS_FD(back))
		bk_units_free(bk_at(PM_BACK_ID(back)), PM_BACK_UNIT(back), order);
	pm_back_set(base, 0);
	rb_maps_put(2);
	return true;
}

/* Map a free run of bk's offsets over the reservation span at base. */
int bk_memfd_back(bk_t *bk, char *base, unsigned order)
{
	size_t bytes = HL_SLOT_SIZE << order;
	uint32_t unit = bk_units_take(bk, order);
	if (!unit)
		return HL_ENOMEM;
	unit--;
	uint32_t back = pm_back_get(base);
	if (!back && !rb_maps_take(2)) {
		hl_warn("hl_alloc", base, "mapping budget spent (half of vm.max_map_count): HL_ENOMEM");
		bk_unit_push(bk, order, unit);
		return HL_ENOMEM;
	}
	if (!pm_back_set(base, PM_BACK(bk->id, unit)) ||
	    !os_map_file_fixed(base, bytes, bk->fd, bk_unit_off(unit))) {
		pm_back_set(base, back);
		if (!back)
			rb_maps_put(2);
		bk_unit_push(bk, order, unit);
		return HL_ENOMEM;
	}
	lf_store_relaxed(&bk->units[unit].order, order);
	HL_HOOK("bk_memfd_publish");
	lf_store_seq_cst(&bk->units[unit].base, base);
	rb_fork_hold_new(bk->id, base, bytes);   /* a fork's scan may have passed it */
	if (bk->secure && !os_lock(base, bytes)) {
		hl_warn("hl_alloc", base, "cannot lock a secure region's pages (RLIMIT_MEMLOCK?): HL_EPERM");
		if (!bk_span_unback(base, order))
			hl_warn("hl_alloc", base, "cannot map the span back: it is lost");
		return HL_EPERM;
	}
	return HL_OK;
}

/* ---- spans -------------------------------------------------------------- */

static bool bk_is_pool(const bk_t *bk)
{
	return bk->kind == HL_BACKING_HUGETLB || bk->kind == HL_BACKING_BUFFER;
}

char *bk_span_get(hl_account_t *ac, unsigned order, uint32_t *span, int *err)
{
	bk_t *bk = ac->bk;
	size_t bytes = HL_SLOT_SIZE << order;
	if (!bk_reserve(ac, bytes, err))
		return NULL;
	char *base = NULL;
	*span = 0;
	if (bk_is_pool(bk)) {
		uint32_t idx = bk_units_take(bk, order);
		if (idx)
			base = bk_slot_addr(bk, idx - 1);
	} else {
		bool fresh;
		uint32_t sp = pm_span_get(order, &base, &fresh);
		int e = HL_OK;
		if (sp && bk->kind == HL_BACKING_MEMFD)
			e = bk_memfd_back(bk, base, order);
		else if (sp && bk->secure && !os_lock(base, bytes)) {
			hl_warn("hl_alloc", base, "cannot lock a secure region's pages (RLIMIT_MEMLOCK?): HL_EPERM");
			e = HL_EPERM;
		}
		if (sp && e) {
			pm_span_put(sp, order);
			bk_unreserve(ac, bytes);
			*err = e;
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
	if (bk_is_pool(bk)) {
		uint32_t first = (uint32_t)((size_t)(base - bk->pool) >> HL_SLOT_SHIFT);
		pm_mark_cached(base, order);
		if (bk->secure)
			/* A secure buffer or huge-page span keeps its pages: no
			 * block of the next owner may read this one's bytes
			 * (a reset drops blocks that were never freed, and so
			 * never wiped). */
			memset(base, 0, bytes);
		bk_unit_push(bk, order, first);
	} else {
		if (bk->secure)
			os_unlock(base, bytes);
		/* What backs it says what to undo, whatever the region: a
		 * move may have changed it since bk_span_get. */
		if (!pm_back_get(base))
			os_purge(base, bytes);
		else if (!bk_span_unback(base, order)) {
			/* Its pages stay mapped where they are: the span is
			 * kept out of the caches (lost), never reused. */
			hl_warn("hl_free", base, "cannot map a span back (vm.max_map_count?): it is lost");
			lf_fetch_sub_relaxed(&bk->superblocks, 1);
			bk_unreserve(ac, bytes);
			return;
		}
		pm_span_put_clean(span, order);
	}
	lf_fetch_sub_relaxed(&bk->superblocks, 1);
	bk_unreserve(ac, bytes);
}

void bk_span_handover(hl_account_t *to, hl_account_t *from, unsigned order)
{
	if (to->budget)
		lf_fetch_add_relaxed(&to->bk->superblocks, 1);
	if (from->budget)
		lf_fetch_sub_relaxed(&from->bk->superblocks, 1);
	bk_unreserve(from, HL_SLOT_SIZE << order);
}

/* ---- pools: setup and release ------------------------------------------- */

/* Undo a pool: its pages unlocked and unmapped (a user's buffer only
 * unlocked), its descriptor closed; with records, its slot records are
 * forgotten too (not when setup failed before they were installed: the
 * range may hold records that are not the pool's).  A MEMFD backing's
 * live spans (only a fork child deleting its parent's region has any)
 * get anonymous memory back and are forgotten: the child drops its view
 * of the parent's pages, touching none. */
static void bk_unmake(bk_t *bk, bool records)
{
	if (!bk->pool)
		return;
	if (bk->units) {
		uint32_t n = (uint32_t)(bk->pool_len >> HL_SLOT_SHIFT);
		rb_warm_forget(bk);   /* their pages go with the memfd */
		for (uint32_t u = 0; u < n; u++) {
			char *b = lf_load_relaxed(&bk->units[u].base);
			size_t bytes = HL_SLOT_SIZE << bk->units[u].order;
			if (!b)
				continue;
			os_map_anon_fixed(b, bytes);
			pm_forget(b, bytes);
			pm_back_set(b, 0);
			rb_maps_put(2);
		}
		os_unmap(bk->units, (size_t)n * sizeof *bk->units);
		bk->units = NULL;
	} else {
		if (records)
			pm_forget(bk->pool, bk->pool_len);
		if (bk->secure)
			os_unlock(bk->pool, bk->pool_len);
	}
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

/* A memfd of len bytes, its shared view, and its table of offset units.
 * Secure: the view is kept out of core dumps, and one page locked and
 * let go says whether the span locks can work at all (HL_EPERM). */
static int bk_make_memfd(bk_t *bk, size_t len, const char *name)
{
	uint32_t n = (uint32_t)(len >> HL_SLOT_SHIFT);
	if (len >> HL_SLOT_SHIFT > PM_BACK_UNITS_MAX)
		return HL_EINVAL;
	int fd = memfd_create(name && name[0] ? name : "heaplib", MFD_CLOEXEC);
	if (fd < 0)
		return HL_ENOMEM;
	char *view = MAP_FAILED;
	bk_unit_t *units = NULL;
	if (ftruncate(fd, (off_t)len) == 0)
		view = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (view != MAP_FAILED)
		units = os_map((size_t)n * sizeof *units);
	if (!units) {
		if (view != MAP_FAILED)
			os_unmap(view, len);
		close(fd);
		return HL_ENOMEM;
	}
	if (bk->secure) {
		madvise(view, len, MADV_DONTDUMP);
		bool lockable = os_lock(view, HL_PAGE);
		os_unlock(view, HL_PAGE);
		madvise(view, len, MADV_DONTDUMP);
		os_punch(fd, 0, HL_PAGE);
		if (!lockable) {
			hl_warn("hl_region_create", view,
				"cannot lock the region's pages (RLIMIT_MEMLOCK?): HL_EPERM");
			os_unmap(units, (size_t)n * sizeof *units);
			os_unmap(view, len);
			close(fd);
			return HL_EPERM;
		}
	}
	bk->fd = fd;
	bk->units = units;
	bk->pool = view;
	bk->pool_len = len;
	return HL_OK;
}

int bk_setup(bk_t *bk, hl_backing_t kind, uint64_t capacity, int secure,
	     void *buffer, const char *name)
{
	bk->kind = kind;
	lf_store_relaxed(&bk->secure, secure != 0);
	lf_store_relaxed(&bk->capacity, capacity);
	bk->backed = bk->superblocks = 0;
	bk->pool_next = 0;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++)
		lf_tstack_init(&bk->pool_free[o]);
	size_t len = capacity;
	char *p = NULL;
	switch (kind) {
	case HL_BACKING_MEMFD:
		return bk_make_memfd(bk, len, name);
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
