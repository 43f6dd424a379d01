/*
 * The public allocation API and its fast paths.
 *
 * malloc of a small size: size -> class by one table, pop the thread
 * cache's bin (19 instructions).  free: one page-map load gives class,
 * slot offset, kind and arena; the bin's own constants check the offset
 * is a block's; a small block of the default region goes on the bin (39
 * instructions).  hl_tc is never NULL (tc_none, core/tcache.c), free(NULL)
 * is found by the page map, not tested.  Neither path does an atomic
 * read-modify-write; everything else is a call out of line.  A sized free (free_sized, free_aligned_sized, C++'s sized
 * delete) takes the same path and checks the size against the class.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "api/api.h"

#define HL_MAX_ALIGN ((size_t)1 << 40)

static HL_NOINLINE void *hl_alloc_slow(size_t size)
{
	hl_ensure_init();
	if (HL_UNLIKELY(hl_cur_task))
		return place_task_alloc(size, 0, false);
	void *p;
	/* small_max is HL_SMALL_MAX unless mallopt(M_MMAP_THRESHOLD) lowered
	 * it: then no cache is refilled for the classes above it (the fast
	 * path finds their bins empty and comes here). */
	if (size <= hl_config.small_max) {
		p = tc_alloc_slow(sc_of(size));
	} else {
		p = large_alloc(size, 0, false);
		decay_tick();   /* a program of large blocks only decays too */
	}
	if (HL_UNLIKELY(!p))
		errno = ENOMEM;
	/* A decay tick on this path may have given a region's pages back:
	 * its watermark events are told now, the call's work done. */
	region_fire_events();
	return p;
}

/* hl_tc is never NULL (a thread without a cache has tc_none's bins,
 * always empty), so the bin's bound is the only test past the size's. */
static inline __attribute__((always_inline)) void *hl_alloc_fast(size_t size, const char *call)
{
	(void)call;
	hl_tcache_t *tc = hl_tc;
	if (HL_LIKELY(size <= HL_SMALL_MAX)) {
		tc_fbin_t *b = &tc->bin[sc_of(size)];
		void **top = b->top;
		if (HL_LIKELY(top != b->low)) {
			void *p = top[-1];
			b->top = top - 1;
			((uint64_t *)p)[1] = 0;   /* its free mark */
			return p;
		}
	}
	return hl_alloc_slow(size);
}

/* free(NULL) comes here too (pm_lookup finds no record for it, or one of
 * kind PM_NONE), so that the fast path has no test of its own for it. */
static HL_NOINLINE void hl_free_large(void *p, const char *call)
{
	if (!p)
		return;
	int saved = errno;
	size_t len;
	bool unmap;
	unsigned arena = large_free(p, call, &len, &unmap);
	if (arena) {
		/* A region's block: its region accounts for it first (the
		 * coordinator unmaps one it was moving). */
		region_large_freed(arena, p, len);
		if (unmap)
			lb_unmap(p, len);
	}
	decay_tick();
	region_fire_events();   /* as in hl_alloc_slow */
	errno = saved;
}

/* ---- what a sized free says of its block ---------------------------------
 *
 * The size is checked, not trusted in place of the slot record: only the
 * record tells a default-arena block from a task's or a region's of the
 * same class (their superblocks share chunks), a small block from a large
 * one (aligned_alloc past 32 KiB of alignment), and the start of a block
 * from an interior or foreign pointer.  The class is in the word loaded
 * anyway, so the check costs a compare or two.
 */
enum hl_sized {
	HL_UNSIZED,         /* free: nothing */
	HL_SIZED_REALLOC,   /* free_sized: malloc, calloc or realloc made it
			     * for size bytes */
	HL_SIZED_EXACT,     /* free_aligned_sized, C++'s sized delete: an
			     * allocation of size bytes aligned to align */
};

/* Whether a small block of class cls can be what the rule says.  Exact:
 * the class that allocation picks (hl_aligned_impl and placement alike);
 * up to 16 bytes of alignment sc_of's, whose sizes are [least, class].
 * After realloc, which keeps a block shrunk by at most half in place, any
 * size in (class / 2, class]; malloc's sizes are among them, every class
 * being at most twice the one below. */
static inline bool hl_small_fits(unsigned cls, size_t size, size_t align, enum hl_sized rule)
{
	const sc_info_t *c = &sc_table[cls];
	if (rule == HL_SIZED_REALLOC)
		return size <= c->size && (size > c->size / 2 || c->size <= HL_MIN_BLOCK);
	if (align <= 16)
		return size - c->least <= c->size - c->least;
	/* sc_class_aligned's choice, without its division: the smallest class
	 * that holds size and is a multiple of align, a power of two (none
	 * past 32 KiB of size or alignment: a large block). */
	size_t mask = align - 1;
	if (size > c->size || (c->size & mask) || (align & mask))
		return false;
	for (unsigned d = cls; d-- > 0 && sc_table[d].size >= size;)
		if (!(sc_table[d].size & mask))
			return false;   /* the allocation would have taken class d */
	return true;
}

/* Whether a large block of len bytes can be: a request a class would have
 * served never made one. */
static bool hl_large_fits(size_t len, size_t size, size_t align, enum hl_sized rule)
{
	bool small = size <= HL_SMALL_MAX && (rule == HL_SIZED_REALLOC || align <= HL_SMALL_MAX);
	return size <= len && !small;
}

static HL_COLD __attribute__((noreturn)) void hl_size_mismatch(void *p, unsigned cls, size_t size,
								 const char *call)
{
	hl_fatal_size(call, p, size, "class of", sc_table[cls].size);
}

/* A bad pointer is left to hl_free_large to name. */
static HL_NOINLINE void hl_free_large_sized(void *p, size_t size, size_t align,
					    enum hl_sized rule, const char *call)
{
	if (!p)
		return;
	size_t len;
	uintptr_t start;
	if (large_lookup(p, &len, &start) > 0 && !hl_large_fits(len, size, align, rule))
		hl_fatal_size(call, p, size, "large block of", len);
	hl_free_large(p, call);
}

/* p's slot record is not a default-arena small block: a block of another
 * task or region, a large block sharing a region pool's chunk-map entry,
 * or a bad pointer. */
static HL_NOINLINE void hl_free_other(void *p, uint64_t w, const char *call)
{
	if (PM_KIND(w) == PM_SMALL) {
		place_free_small(p, w, call);
		return;
	}
	if (PM_KIND(w) == PM_NONE) {
		hl_free_large(p, call);
		return;
	}
	hl_fatal(call, p, HL_WHY_INVALID);
}

/* As hl_free_other, for a sized free: a small block is checked as on the
 * fast path (interior first) before its arena takes it. */
static HL_NOINLINE void hl_free_other_sized(void *p, uint64_t w, size_t size, size_t align,
					    enum hl_sized rule, const char *call)
{
	if (PM_KIND(w) == PM_SMALL) {
		unsigned cls = PM_CLS(w);
		if (!sc_is_block(cls, pm_block_off(p, w)))
			hl_fatal(call, p, HL_WHY_INTERIOR);
		if (!hl_small_fits(cls, size, align, rule))
			hl_size_mismatch(p, cls, size, call);
		place_free_small(p, w, call);
		return;
	}
	if (PM_KIND(w) == PM_NONE) {
		hl_free_large_sized(p, size, align, rule, call);
		return;
	}
	hl_fatal(call, p, HL_WHY_INVALID);
}

static HL_COLD void hl_double_free(void *p, const char *call)
{
	hl_fatal(call, p, HL_WHY_FREE_CACHED);
}

/* The free of a default-arena small block that the fast path did not
 * finish: its free mark is set (double free, or user data that happens
 * to match the key), the thread has no cache yet, or the bin is full. */
static HL_NOINLINE void hl_free_small_slow(void *p, unsigned cls, const char *call)
{
	if (((uint64_t *)p)[1] == hl_key) {
		if (tc_in_thread_cache(p, cls))
			hl_double_free(p, call);
		/* Free in its superblock: its free bit says so (a block the
		 * owner has popped has its bit cleared before it is handed out). */
		uint64_t m;
		if (lf_load_acquire(pm_free_word(p, &m)) & m)
			hl_fatal(call, p, HL_WHY_FREE_FREE);
	}
	tc_fbin_t *b = &hl_tc->bin[cls];
	if (*b->top != TC_FULL) {   /* never for tc_none's bins */
		((uint64_t *)p)[1] = hl_key;
		*b->top++ = p;
		return;
	}
	int saved = errno;
	tc_free_slow(p, cls);
	region_fire_events();   /* as in hl_alloc_slow */
	errno = saved;
}

/* The fast path's check with the bin's constants failed: an interior
 * pointer, or a thread without a cache (tc_none's bins pass no offset),
 * told apart here by the class's own. */
static HL_NOINLINE void hl_free_unproven(void *p, uint64_t w, size_t size, size_t align,
					 enum hl_sized rule, const char *call)
{
	unsigned cls = PM_CLS(w);
	if (!sc_is_block(cls, pm_block_off(p, w)))
		hl_fatal(call, p, HL_WHY_INTERIOR);
	if (rule != HL_UNSIZED && !hl_small_fits(cls, size, align, rule))
		hl_size_mismatch(p, cls, size, call);
	hl_free_small_slow(p, cls, call);
}

/* Every way out of the fast path is a tail call, so it needs no frame;
 * inlined into each public free, rule a constant there (size and align
 * count only in a sized free). */
static inline __attribute__((always_inline)) void hl_free_fast(void *p, size_t size, size_t align,
							       enum hl_sized rule, const char *call)
{
	pm_slot_t *rec = pm_lookup(p);   /* NULL, or PM_NONE, for p NULL */
	if (HL_UNLIKELY(!rec)) {
		if (rule == HL_UNSIZED)
			hl_free_large(p, call);
		else
			hl_free_large_sized(p, size, align, rule, call);
		return;
	}
	uint64_t w = lf_load_relaxed(&rec->word);
	/* w >> 40 is off | kind << 4 | arena << 8 (PM_WORD), so with 16 =
	 * PM_SMALL << 4 flipped it is PM_OFF(w) exactly when PM_FASTKIND(w)
	 * is PM_SMALL (a small block of arena 0), and 16 or more otherwise:
	 * one test for the kind and the arena, and the slot offset ready. */
	size_t slot_off = (size_t)(w >> 40) ^ (PM_SMALL << 4);
	if (HL_UNLIKELY(slot_off >= 16)) {
		if (rule == HL_UNSIZED)
			hl_free_other(p, w, call);
		else
			hl_free_other_sized(p, w, size, align, rule, call);
		return;
	}
	/* pm_block_off(p, w) */
	size_t off = ((uintptr_t)p & (HL_SLOT_SIZE - 1)) | (slot_off << HL_SLOT_SHIFT);
	/* &hl_tc->bin[PM_CLS(w)], with the class times 16 taken straight
	 * from the word and doubled by the address mode (bins are 32 bytes);
	 * hl_tc is never NULL (see hl_alloc_fast). */
	size_t cls16 = (size_t)(w >> 28) & ((size_t)0xff << 4);
	tc_fbin_t *b = (tc_fbin_t *)((char *)hl_tc->bin + 2 * cls16);
	if (HL_UNLIKELY(!sc_check_off(b->divm, b->bound, off))) {
		hl_free_unproven(p, w, size, align, rule, call);
		return;
	}
	if (rule != HL_UNSIZED && HL_UNLIKELY(!hl_small_fits(PM_CLS(w), size, align, rule)))
		hl_size_mismatch(p, PM_CLS(w), size, call);
	uint64_t key = hl_key;
	void **top = b->top;
	if (HL_UNLIKELY(((uint64_t *)p)[1] == key || *top == TC_FULL)) {
		hl_free_small_slow(p, PM_CLS(w), call);
		return;
	}
	((uint64_t *)p)[1] = key;
	*top = p;
	b->top = top + 1;
}

void *hl_alloc_impl(size_t size, const char *call) { return hl_alloc_fast(size, call); }
void hl_free_impl(void *p, const char *call) { hl_free_fast(p, 0, 0, HL_UNSIZED, call); }

void hl_free_exact(void *p, size_t size, const char *call)
{
	hl_free_fast(p, size, 0, HL_SIZED_EXACT, call);
}

void hl_free_exact_aligned(void *p, size_t size, size_t align, const char *call)
{
	hl_free_fast(p, size, align, HL_SIZED_EXACT, call);
}

size_t hl_usable_impl(const void *p, const char *call)
{
	if (!p)
		return 0;
	pm_slot_t *rec = pm_lookup(p);
	uint64_t w = rec ? lf_load_relaxed(&rec->word) : 0;
	if (rec && PM_KIND(w) != PM_NONE) {
		if (PM_KIND(w) != PM_SMALL)
			hl_fatal(call, p, HL_WHY_INVALID);
		unsigned cls = PM_CLS(w);
		if (!sc_is_block(cls, pm_block_off(p, w)))
			hl_fatal(call, p, HL_WHY_INTERIOR);
		return sc_table[cls].size;
	}
	size_t sz;
	uintptr_t st;
	int r = large_lookup(p, &sz, &st);
	if (r > 0)
		return sz;
	if (r < 0)
		hl_fatal(call, p, HL_WHY_INTERIOR);
	hl_fatal(call, p, HL_WHY_INVALID);
}

HL_EXPORT void *hl_malloc(size_t size) { return hl_alloc_fast(size, "malloc"); }
HL_EXPORT void hl_free(void *p) { hl_free_fast(p, 0, 0, HL_UNSIZED, "free"); }
HL_EXPORT size_t hl_usable_size(const void *p) { return hl_usable_impl(p, "malloc_usable_size"); }

HL_EXPORT void hl_free_sized(void *p, size_t size)
{
	hl_free_fast(p, size, 0, HL_SIZED_REALLOC, "free_sized");
}

HL_EXPORT void hl_free_aligned_sized(void *p, size_t alignment, size_t size)
{
	hl_free_fast(p, size, alignment, HL_SIZED_EXACT, "free_aligned_sized");
}

HL_EXPORT void *hl_calloc(size_t n, size_t m)
{
	size_t size;
	if (__builtin_mul_overflow(n, m, &size)) {
		errno = ENOMEM;
		return NULL;
	}
	if (size > hl_config.small_max) {
		hl_ensure_init();
		if (HL_UNLIKELY(hl_cur_task))
			return place_task_alloc(size, 0, true);
		return large_alloc(size, 0, true);
	}
	void *p = hl_alloc_impl(size, "calloc");
	if (p)
		memset(p, 0, size);
	return p;
}

/* Small block whose address is a multiple of align (align <= 32 KiB, a
 * power of two): a class whose size is a multiple of align, since every
 * superblock starts on a 64 KiB boundary. */
static void *hl_aligned_impl(size_t align, size_t size, const char *call)
{
	hl_ensure_init();
	if (align <= 8)
		return hl_alloc_impl(size, call);
	if (align <= HL_SMALL_MAX && size <= hl_config.small_max) {
		unsigned c = sc_class_aligned(size, align);
		if (c < HL_NCLASSES)
			return hl_alloc_impl(sc_table[c].size, call);
	}
	if (HL_UNLIKELY(hl_cur_task))
		return place_task_alloc(size ? size : 1, align, false);
	return large_alloc(size ? size : 1, align, false);
}

static inline bool hl_pow2(size_t a) { return a && !(a & (a - 1)); }

HL_EXPORT void *hl_aligned_alloc(size_t align, size_t size)
{
	if (!hl_pow2(align) || align > HL_MAX_ALIGN) {
		errno = EINVAL;
		return NULL;
	}
	return hl_aligned_impl(align, size, "aligned_alloc");
}

HL_EXPORT int hl_posix_memalign(void **out, size_t align, size_t size)
{
	if (!hl_pow2(align) || align % sizeof(void *) || align > HL_MAX_ALIGN)
		return EINVAL;
	int saved = errno;
	void *p = hl_aligned_impl(align, size, "posix_memalign");
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

HL_EXPORT void *hl_memalign(size_t align, size_t size)
{
	if (align > HL_MAX_ALIGN) {
		errno = EINVAL;
		return NULL;
	}
	if (!hl_pow2(align)) {
		/* As glibc does: round a non-power-of-two alignment up. */
		size_t a = 1;
		while (a < align)
			a <<= 1;
		align = a;
	}
	return hl_aligned_impl(align ? align : 1, size, "memalign");
}

HL_EXPORT void *hl_realloc(void *p, size_t size)
{
	if (!p)
		return hl_alloc_impl(size, "realloc");
	if (size == 0) {
		/* glibc's choice, which programs rely on: free, return NULL. */
		hl_free_impl(p, "realloc");
		return NULL;
	}
	size_t old = hl_usable_impl(p, "realloc");
	/* A small block shrunk by at most half stays where it is, unless it
	 * is free: a block in the thread cache carries the free mark. */
	if (old <= HL_SMALL_MAX && size <= old && (size > old / 2 || old <= HL_MIN_BLOCK)) {
		if (HL_UNLIKELY(((uint64_t *)p)[1] == hl_key) && tc_in_thread_cache(p, sc_of(old)))
			hl_fatal("realloc", p, HL_WHY_REALLOC_FREE);
		return p;
	}
	int arena = arena_id_of(p);
	if (HL_UNLIKELY(arena > 0)) {
		/* It stays in its region. */
		void *q = place_realloc(p, (unsigned)arena, old, size);
		if (q)
			hl_free_impl(p, "realloc");
		return q;
	}
	if (old > HL_SMALL_MAX && size > HL_SMALL_MAX) {
		void *q = large_realloc(p, size);
		if (q)
			return q;
	}
	void *q = hl_alloc_impl(size, "realloc");
	if (!q)
		return NULL;   /* errno is ENOMEM; p is untouched */
	memcpy(q, p, old < size ? old : size);
	hl_free_impl(p, "realloc");
	return q;
}

HL_EXPORT void *hl_reallocarray(void *p, size_t n, size_t m)
{
	size_t size;
	if (__builtin_mul_overflow(n, m, &size)) {
		errno = ENOMEM;
		return NULL;
	}
	return hl_realloc(p, size);
}

/* ---- allocation under a placement (policy/place.c) ----------------------- */

/* The default task on the default region: malloc's own path. */
static void *hl_alloc_default(size_t size, size_t align)
{
	int saved = errno;
	void *p = align > 16 ? hl_aligned_alloc(align, size) : hl_malloc(size);
	errno = saved;
	return p;
}

HL_EXPORT int hl_alloc_aligned(size_t size, size_t align, const hl_place_t *place,
			       unsigned flags, void **out)
{
	if (!out || (align & (align - 1)) || align > ((size_t)1 << 30) ||
	    (flags & ~(HL_ZERO | HL_NOWAIT | HL_NOMIGRATE | HL_SECURE)))
		return HL_EINVAL;
	if (size > ((size_t)1 << 47))
		return HL_ENOMEM;
	return place_alloc(size ? size : 1, align, place, flags, out, hl_alloc_default);
}

HL_EXPORT int hl_alloc(size_t size, const hl_place_t *place, unsigned flags, void **out)
{
	return hl_alloc_aligned(size, 0, place, flags, out);
}

#ifndef HL_NO_OVERRIDE
/* The standard names, for linking and LD_PRELOAD. */
HL_EXPORT void *malloc(size_t) __attribute__((malloc, alias("hl_malloc")));
HL_EXPORT void free(void *) __attribute__((alias("hl_free")));
HL_EXPORT void cfree(void *) __attribute__((alias("hl_free")));
HL_EXPORT void *calloc(size_t, size_t) __attribute__((malloc, alias("hl_calloc")));
HL_EXPORT void *realloc(void *, size_t) __attribute__((alias("hl_realloc")));
HL_EXPORT void *reallocarray(void *, size_t, size_t) __attribute__((alias("hl_reallocarray")));
HL_EXPORT void *aligned_alloc(size_t, size_t) __attribute__((malloc, alias("hl_aligned_alloc")));
HL_EXPORT int posix_memalign(void **, size_t, size_t) __attribute__((alias("hl_posix_memalign")));
HL_EXPORT void *memalign(size_t, size_t) __attribute__((malloc, alias("hl_memalign")));
HL_EXPORT size_t malloc_usable_size(void *) __attribute__((alias("hl_usable_size")));
HL_EXPORT void free_sized(void *, size_t) __attribute__((alias("hl_free_sized")));
HL_EXPORT void free_aligned_sized(void *, size_t, size_t) __attribute__((alias("hl_free_aligned_sized")));

HL_EXPORT void *valloc(size_t size)
{
	return hl_aligned_impl(HL_PAGE, size, "valloc");
}

HL_EXPORT void *pvalloc(size_t size)
{
	size_t r;
	if (!os_page_round(size ? size : 1, &r)) {
		errno = ENOMEM;
		return NULL;
	}
	return hl_aligned_impl(HL_PAGE, r, "pvalloc");
}
#endif
