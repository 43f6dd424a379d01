/*
 * Arenas, heap shards and partial lists.
 *
 * An arena is the superblocks of one (task, region) pair.  Arena 0 (the
 * default task on the default region) has HEAPLIB_HEAPS heap shards that
 * threads are spread over; every other arena has one.  Each heap has, per
 * class, an `active` and a `partial` slot holding a descriptor index: an
 * ownership token, taken by exchange and put back by CAS (core/sb.c).
 * Each arena has, per class, a partial list: a tagged stack of
 * descriptors, popped under a hazard pointer because descriptor pages can
 * be given back.
 *
 * Concurrency contract:
 *   operation        may run with          linearizes on
 *   arena_new        anything              the CAS taking its id (the store
 *                                          of sb_arenas[id] then publishes it)
 *   arena_list       anything              the list head's CAS (push)
 *   arena_unlist     anything              the list head's CAS (pop); the
 *                                          popper then owns the descriptor
 *   arena_id_of      anything but a free   the slot record's load
 *                    of the same block
 */
#define _GNU_SOURCE
#include "core/core.h"

static sb_heap_t sb_heaps[HL_MAX_HEAPS];
static unsigned sb_nheaps;
static unsigned sb_heap_next;
static sb_arena_t sb_arena0;
sb_arena_t *sb_arenas[HL_MAX_ARENAS];
uint32_t sb_narenas;

void arena_init(void)
{
	unsigned n = hl_config.heaps ? hl_config.heaps : os_ncpu() * 4;
	sb_nheaps = n > HL_MAX_HEAPS ? HL_MAX_HEAPS : n;
	for (unsigned c = 0; c < HL_NCLASSES; c++)
		lf_tstack_init(&sb_arena0.plist[c]);
	sb_arena0.heaps = sb_heaps;
	sb_arena0.nheaps = sb_nheaps;
	sb_arena0.acct.bk = bk_at(0);
	lf_store_release(&sb_arenas[0], &sb_arena0);
	lf_store_release(&sb_narenas, 1u);
}

#ifdef HL_TEST_HOOKS
static int arena_fail_map;
void arena_test_fail_map(int on) { lf_store_relaxed(&arena_fail_map, on); }
void arena_test_seed(uint32_t n) { lf_store_relaxed(&sb_narenas, n); }
static void *arena_map(size_t bytes)
{
	return lf_load_relaxed(&arena_fail_map) ? NULL : os_map(bytes);
}
#else
#define arena_map os_map
#endif

sb_arena_t *arena_new(uint32_t region, struct hl_task *task, bk_t *bk,
		      hl_budget_t *budget)
{
	/* Full already: do not map what would be unmapped at once. */
	if (lf_load_relaxed(&sb_narenas) >= HL_MAX_ARENAS)
		return NULL;
	/* Mapped before the id is taken, so that the OS saying no spends
	 * no id. */
	size_t bytes = sizeof(sb_arena_t) + sizeof(sb_heap_t) + 64;
	sb_arena_t *a = arena_map(bytes);
	if (!a)
		return NULL;
	/* A bounded take: a failed creation leaves the count as it was (a
	 * fetch-add passed the bound on every failure and, after 2^32 of
	 * them, wrapped and handed out id 0 again), and racing creators
	 * get different ids. */
	int64_t got = ctr_take_bounded(&sb_narenas, HL_MAX_ARENAS);
	if (got < 0) {
		os_unmap(a, bytes);
		return NULL;
	}
	uint32_t id = (uint32_t)got;
	for (unsigned c = 0; c < HL_NCLASSES; c++)
		lf_tstack_init(&a->plist[c]);
	a->heaps = (sb_heap_t *)(((uintptr_t)(a + 1) + 63) & ~(uintptr_t)63);
	a->nheaps = 1;
	a->id = id;
	a->region = region;
	a->task = task;
	a->acct.bk = bk;
	a->acct.budget = budget;
	lf_store_release(&sb_arenas[id], a);
	return a;
}

unsigned sb_heap_count(void) { return sb_nheaps; }

unsigned sb_heap_pick(void)
{
	return lf_fetch_add_relaxed(&sb_heap_next, 1u) % sb_nheaps;
}

int arena_id_of(const void *p)
{
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_acquire(&rec->word) : 0;
	if (rec && PM_KIND(w) == PM_SMALL)
		return (int)PM_ARENA(w);
	return large_arena_of(p);
}

/* ---- partial lists ------------------------------------------------------ */

static uint32_t *arena_plist_link(void *ctx, uint32_t idx)
{
	(void)ctx;
	return &desc_at(idx)->plist_link;
}

static int arena_plist_guard(void *ctx, uint32_t idx)
{
	lf_hp_set((lf_hp_rec_t *)ctx, 0, desc_at(idx));
	return 1;
}

void arena_list(hl_desc_t *d)
{
#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
	uint32_t zero = 0;
	if (!lf_cas_strong_acq_rel(&d->listed, &zero, 1))
		hl_fatal_assert("descriptor listed twice", __FILE__, __LINE__);
#endif
	lf_tstack_push(&sb_arena(desc_arena_id(d))->plist[d->cls], d->idx, &d->plist_link);
}

hl_desc_t *arena_unlist(sb_arena_t *a, unsigned cls)
{
	lf_hp_rec_t *r = desc_hp_rec();
	if (HL_UNLIKELY(!r))
		return NULL;   /* no hazard, no safe pop: as if the list were empty */
	uint32_t idx = lf_tstack_pop_guarded(&a->plist[cls], arena_plist_link,
					     arena_plist_guard, r);
	lf_hp_clear(r, 0);
	if (!idx)
		return NULL;
	hl_desc_t *d = desc_at(idx);
#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
	uint32_t one = 1;
	if (!lf_cas_strong_acq_rel(&d->listed, &one, 0))
		hl_fatal_assert("descriptor unlisted twice", __FILE__, __LINE__);
#endif
	return d;
}

#ifdef HL_TEST_HOOKS
/* The partial lists of arena 0, for the deterministic tests (sb_test_*
 * in core.h: they are the superblock tests' hooks). */
void sb_test_list(hl_desc_t *d) { arena_list(d); }
hl_desc_t *sb_test_unlist(unsigned cls) { return arena_unlist(sb_arena(0), cls); }
bool sb_test_take(hl_desc_t *d)
{
	hl_desc_t *x = NULL, *other[64];
	unsigned n = 0;
	while (n < 64 && (x = sb_test_unlist(d->cls)) != NULL && x != d)
		other[n++] = x;
	while (n)
		sb_test_list(other[--n]);
	return x == d;
}
#endif
