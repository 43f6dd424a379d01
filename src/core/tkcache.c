/*
 * Task caches: the thread caches of threads of tasks other than the
 * default (DESIGN.md section 4: a block cached by a thread is already
 * accounted to its task and region).
 *
 * A task thread's cache holds blocks of one arena at a time (tk->arena,
 * the pair of the thread's task and the region policy/ chose), per class
 * an array of at most a batch of them, and at most tk->limit bytes in
 * all: TK_BYTES, or a sixteenth of the task's quota if that is less.
 * Every block in it was accounted live in its arena, region and task when
 * it left its superblock (policy/place.c takes the batch and counts it),
 * and goes off those books when tk_flush_bin pushes it back (the hook
 * policy/ registers: tk_set_account_hook).  policy/ caches only arenas of
 * the default region, which is never deleted or reset, and empties the
 * cache whenever its thread changes tasks or exits, so a cache only ever
 * holds blocks of the task its thread is in.
 *
 * Concurrency contract:
 *   operation              may run with          linearizes on
 *   tk_alloc, _free,       nothing: the owner    (thread-local; the counts it
 *   _want, _fill, _flush   thread only           publishes are relaxed stores)
 *   tk_release             anything              the pool stack's push
 *   tk_cached              anything              (relaxed reads: exact when
 *                                                the caches are at rest)
 */
#define _GNU_SOURCE
#include <string.h>

#include "core/core.h"

#define TK_MAX 65536u
#define TK_BYTES ((uint64_t)256 << 10)     /* per task cache (thread, arena) */

/* A task thread's cache: blocks of one arena (see the task-cache part). */
typedef struct tk_cache {
	uint32_t arena;      /* arena of the blocks it holds, 0: none (relaxed) */
	uint32_t id;         /* 1-based index in the task-cache pool */
	uint32_t link;       /* pool free-stack link */
	uint64_t bytes;      /* held now: stored by the owner, read by anyone */
	uint64_t blocks;
	uint64_t limit;      /* bytes it may hold for this arena */
	int64_t acct;        /* bytes counted in tcache_bytes */
	tc_bin_t bin[HL_NCLASSES];
	void *store[];
} tk_cache_t;

static __thread tk_cache_t *hl_tk HL_TLS;
static __thread uint8_t tk_off HL_TLS;   /* the thread exited */

static tk_cache_t *tk_pool[TK_MAX];
static uint32_t tk_pool_next;
static lf_tstack_t tk_pool_free;
static size_t tk_bytes_each;
static void (*tk_account_hook)(sb_arena_t *a, int64_t bytes, int64_t blocks);

static uint32_t *tk_pool_link(void *ctx, uint32_t id)
{
	(void)ctx;
	return &tk_pool[id - 1]->link;
}

void tk_init(void)
{
	size_t slots = 0;
	for (unsigned c = 0; c < HL_NCLASSES; c++)
		slots += sc_table[c].batch;
	os_page_round(sizeof(tk_cache_t) + slots * sizeof(void *), &tk_bytes_each);
	lf_tstack_init(&tk_pool_free);
}

void tk_set_account_hook(void (*fn)(sb_arena_t *a, int64_t bytes, int64_t blocks))
{
	tk_account_hook = fn;
}

static tk_cache_t *tk_new(void)
{
	if (lf_load_acquire(&tk_pool_next) >= TK_MAX)
		return NULL;
	tk_cache_t *tk = os_map(tk_bytes_each);
	if (!tk)
		return NULL;
	int64_t n = ctr_take_bounded(&tk_pool_next, TK_MAX);
	if (n < 0) {
		os_unmap(tk, tk_bytes_each);
		return NULL;
	}
	uint32_t id = (uint32_t)n + 1;
	tk->id = id;
	void **s = tk->store;
	for (unsigned c = 0; c < HL_NCLASSES; c++) {
		tk->bin[c].cap = sc_table[c].batch;
		tk->bin[c].slots = s;
		s += tk->bin[c].cap;
	}
	lf_store_release(&tk_pool[id - 1], tk);
	return tk;
}

/* The calling thread's task cache, made on first use; NULL when the
 * thread exits, in check mode, or when none can be had. */
static tk_cache_t *tk_get(void)
{
	tk_cache_t *tk = hl_tk;
	if (HL_LIKELY(tk))
		return tk;
	if (tk_off || hl_config.check)
		return NULL;
	uint32_t id = lf_tstack_pop(&tk_pool_free, tk_pool_link, NULL);
	tk = id ? tk_pool[id - 1] : tk_new();
	if (!tk)
		return NULL;
	lf_store_relaxed(&tk->arena, 0u);
	tk->acct = 0;
	hl_tk = tk;
	thread_exit_ensure();
	return tk;
}

static void tk_publish(tk_cache_t *tk, int64_t bytes, int64_t blocks)
{
	lf_store_relaxed(&tk->bytes, tk->bytes + (uint64_t)bytes);
	lf_store_relaxed(&tk->blocks, tk->blocks + (uint64_t)blocks);
}

/* The global cache counter (the budget's) follows at slow paths only. */
static void tk_sync(tk_cache_t *tk)
{
	int64_t d = (int64_t)tk->bytes - tk->acct;
	tk->acct = (int64_t)tk->bytes;
	if (d)
		lf_fetch_add_relaxed((int64_t *)&hl_ctr.tcache_bytes, d);
}

void tk_book_freed(unsigned arena, unsigned blocks, void *ctx)
{
	unsigned cls = *(const unsigned *)ctx;
	/* Arena 0, malloc's own heap, keeps no books: a block cached here
	 * whose superblock moved there meanwhile was taken off them at the
	 * move, and one of malloc's whose superblock moved to a region was
	 * counted live there at the move. */
	if (arena != 0 && tk_account_hook)
		tk_account_hook(sb_arena(arena), -(int64_t)blocks * sc_table[cls].size,
				-(int64_t)blocks);
}

/* Push the oldest blocks of bin c back to their superblocks, down to
 * keep, and take them off the books (after the push: see region_live). */
static void tk_flush_bin(tk_cache_t *tk, unsigned c, unsigned keep)
{
	tc_bin_t *b = &tk->bin[c];
	if (b->n <= keep)
		return;
	unsigned k = b->n - keep;
	int64_t bytes = (int64_t)k * sc_table[c].size;
	unsigned cls = c;
	/* Off the books of the arena each block's superblock is in at its
	 * push: the coordinator may have moved it while the block sat here. */
	sb_free_batch_booked(c, b->slots, k, "free", tk_book_freed, &cls);
	memmove(b->slots, b->slots + k, keep * sizeof(void *));
	b->n = keep;
	tk_publish(tk, -bytes, -(int64_t)k);
}

static void tk_flush_all(tk_cache_t *tk)
{
	if (tk->blocks)
		for (unsigned c = 0; c < HL_NCLASSES; c++)
			tk_flush_bin(tk, c, 0);
	tk_sync(tk);
}

void tk_flush(void)
{
	if (hl_tk)
		tk_flush_all(hl_tk);
}

void tk_release(bool exiting)
{
	tk_cache_t *tk = hl_tk;
	if (exiting)
		tk_off = 1;
	if (!tk)
		return;
	tk_flush_all(tk);
	lf_store_relaxed(&tk->arena, 0u);
	hl_tk = NULL;
	lf_tstack_push(&tk_pool_free, tk->id, &tk->link);
}

/* Make the cache hold arena a's blocks (another arena's go back first). */
static tk_cache_t *tk_for(sb_arena_t *a)
{
	tk_cache_t *tk = tk_get();
	if (!tk)
		return NULL;
	if (lf_load_relaxed(&tk->arena) != a->id) {
		tk_flush_all(tk);
		lf_store_relaxed(&tk->arena, a->id);
	} else if (tk->blocks) {
		return tk;
	}
	/* Empty: the arena id may have passed to another pair meanwhile
	 * (task.c takes over idle arenas), so the bound is read again. */
	uint64_t q = a->acct.budget ? lf_load_relaxed(&a->acct.budget->limit) : 0;
	tk->limit = q && q / 16 < TK_BYTES ? q / 16 : TK_BYTES;
	return tk;
}

bool tk_holds(const void *p, unsigned cls)
{
	return hl_tk && tc_bin_holds(&hl_tk->bin[cls], p);
}

void *tk_alloc(unsigned cls)
{
	tk_cache_t *tk = hl_tk;
	if (!tk || !tk->bin[cls].n)
		return NULL;
	tc_bin_t *b = &tk->bin[cls];
	void *p = b->slots[--b->n];
	tk_publish(tk, -(int64_t)sc_table[cls].size, -1);
	((uint64_t *)p)[1] = 0;
	return p;
}

unsigned tk_want(sb_arena_t *a, unsigned cls)
{
	tk_cache_t *tk = tk_for(a);
	uint64_t size = sc_table[cls].size;
	if (!tk || size > tk->limit || tc_over_budget())
		return 0;
	if (tk->bytes + size > tk->limit)
		tk_flush_all(tk);   /* the other classes' blocks make room */
	uint64_t room = (tk->limit - tk->bytes) / size;
	tc_bin_t *b = &tk->bin[cls];
	unsigned want = b->cap - b->n;
	return room < want ? (unsigned)room : want;
}

void tk_fill(unsigned cls, void *const *v, unsigned n)
{
	tk_cache_t *tk = hl_tk;
	tc_bin_t *b = &tk->bin[cls];
	HL_ASSERT(b->n + n <= b->cap);
	memcpy(b->slots + b->n, v, n * sizeof *v);
	b->n += n;
	tk_publish(tk, (int64_t)n * sc_table[cls].size, (int64_t)n);
	tk_sync(tk);
	decay_tick();
}

bool tk_free(sb_arena_t *a, void *p, unsigned cls)
{
	tk_cache_t *tk = tk_for(a);
	uint64_t size = sc_table[cls].size;
	if (!tk || size > tk->limit)
		return false;
	tc_bin_t *b = &tk->bin[cls];
	if (HL_UNLIKELY(b->n == b->cap || tk->bytes + size > tk->limit)) {
		if (tc_over_budget())
			return false;
		tk_flush_bin(tk, cls, b->cap / 2);
		if (tk->bytes + size > tk->limit)
			tk_flush_all(tk);
		tk_sync(tk);
		decay_tick();
	}
	((uint64_t *)p)[1] = hl_key;
	b->slots[b->n++] = p;
	tk_publish(tk, (int64_t)size, 1);
	return true;
}

void tk_cached(const tk_filter_t *f, uint64_t *bytes, uint64_t *blocks)
{
	uint64_t by = 0, bl = 0;
	uint32_t n = lf_load_acquire(&tk_pool_next);
	for (uint32_t i = 0; i < n && i < TK_MAX; i++) {
		tk_cache_t *tk = lf_load_acquire(&tk_pool[i]);
		uint32_t id = tk ? lf_load_relaxed(&tk->arena) : 0;
		sb_arena_t *a = id ? sb_arena(id) : NULL;
		if (!a || (f->arena && f->arena != id) || (f->task && f->task != lf_load_relaxed(&a->task)) ||
		    (f->region >= 0 && (uint32_t)f->region != lf_load_relaxed(&a->region)))
			continue;
		by += lf_load_relaxed(&tk->bytes);
		bl += lf_load_relaxed(&tk->blocks);
	}
	*bytes = by;
	*blocks = bl;
}
