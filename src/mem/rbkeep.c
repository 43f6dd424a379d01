/*
 * Move targets kept ready: the reserves that take the preparation of a
 * backing move's target pages off the move (mem/rebind.c), and the
 * system calls the moves make unseen by the sanitizers.
 *
 * Preparing a move's target pages is most of a move's own time (new shmem
 * pages for a memfd target, new anonymous pages for an anonymous one), so
 * two bounded reserves keep targets ready:
 *  - warm units: a memfd span that moves out to anonymous memory leaves
 *    its offsets unpunched (their pages stay in the file) on a per-order
 *    stack of its backing, at most RB_WARM_MAX bytes or 1/16 of its
 *    capacity; the next move into that backing takes them first (the
 *    copy overwrites every byte).  They are free offsets of the region's
 *    own memfd, which is the region's capacity long: its resident pages,
 *    live and warm, never pass its capacity; warm ones are not charged to
 *    it, and a span allocation that finds no free offset takes them back,
 *    punched, before it fails (bk_units_take).  Secure and shared
 *    backings keep none.
 *  - spare anonymous spans: at most one per order (960 KiB in all),
 *    prefaulted by the coordinator between requests in 64 KiB steps that
 *    stop as soon as a request waits, for the orders moves have used;
 *    a move to anonymous memory takes one.  MADV_DONTFORK: a fork child
 *    has none (MADV_DOFORK again before one becomes a span).
 * Both are counted in hl_ctr.move_reserve (hl_stats_print), given back
 * by hl_trim and malloc_trim, and by the coordinator once unused for
 * RB_IDLE_MS.  Concurrency: warm units are put and taken by the mover
 * and drained by anyone inside the region's teardown handshake (the
 * stacks are lock-free); spares are taken by exchange, filled by the
 * coordinator only, and dropped by anyone.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/mem.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* The reserves of move targets (see "move targets kept ready"). */
#define RB_WARM_MAX ((uint64_t)2 << 20)   /* warm units, bytes a backing */
#define RB_IDLE_MS 1000u                  /* a reserve unused this long goes */
typedef struct rb_warm {
	lf_tstack_t st[HL_SPAN_ORDERS];   /* unit + 1, linked through units[].link */
	uint64_t bytes;
	uint32_t used_ms;
} rb_warm_t;
static rb_warm_t rb_warm[HL_MAX_REGIONS];
static char *rb_spare[HL_SPAN_ORDERS];    /* ready anonymous targets */
static uint32_t rb_spare_want;            /* orders a move took or lacked */
static uint32_t rb_spare_ms;              /* their last use */
static uint32_t rb_trim_gen;              /* bumped by every trim */
/* The coordinator's spare in the making (only it touches these). */
static char *rb_fill;
static size_t rb_fill_done;
static unsigned rb_fill_order;
static uint32_t rb_fill_gen;

/* ---- system calls, unseen by the sanitizers ---------------------------- */

void *rb_mmap(void *p, size_t len, int flags, int fd, uint64_t off)
{
	long r = syscall(SYS_mmap, p, len, PROT_READ | PROT_WRITE, flags, fd, off);
	return r < 0 && r > -4096 ? MAP_FAILED : (void *)r;
}

void rb_munmap(void *p, size_t len)
{
	syscall(SYS_munmap, p, len);
}

bool rb_madvise(void *p, size_t len, int advice)
{
	return syscall(SYS_madvise, p, len, advice) == 0;
}

/* ---- warm units -------------------------------------------------------- */

static uint32_t *rb_unit_link(void *ctx, uint32_t idx)
{
	return &((bk_t *)ctx)->units[idx - 1].link;
}

bool rb_warm_put(bk_t *bk, uint32_t unit, unsigned order)
{
	uint64_t max = lf_load_relaxed(&bk->capacity) / 16, bytes = HL_SLOT_SIZE << order;
	rb_warm_t *w = &rb_warm[bk->id];
	if (!bk->units || lf_load_relaxed(&bk->secure) || bk->shared ||
	    !ctr_add_bounded(&w->bytes, bytes, max < RB_WARM_MAX ? max : RB_WARM_MAX))
		return false;
	HL_CTR_ADD(move_reserve, bytes);
	lf_store_relaxed(&bk->units[unit].base, (char *)NULL);
	lf_store_relaxed(&w->used_ms, os_now_ms());
	lf_tstack_push(&w->st[order], unit + 1, &bk->units[unit].link);
	return true;
}

uint32_t rb_warm_take(bk_t *bk, unsigned order)
{
	rb_warm_t *w = &rb_warm[bk->id];
	if (!bk->units)
		return 0;
	uint32_t idx = lf_tstack_pop(&w->st[order], rb_unit_link, bk);
	if (idx) {
		lf_fetch_sub_relaxed(&w->bytes, HL_SLOT_SIZE << order);
		HL_CTR_SUB(move_reserve, HL_SLOT_SIZE << order);
		lf_store_relaxed(&w->used_ms, os_now_ms());
	}
	return idx;
}

/* Every warm unit of bk (punched, back on its free stacks), or, with
 * `keep`, forgotten untouched (the backing goes away); the bytes. */
static size_t rb_warm_empty(bk_t *bk, bool keep)
{
	rb_warm_t *w = &rb_warm[bk->id];
	size_t n = 0;
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++) {
		uint32_t idx = lf_tstack_pop_all(&w->st[o]);
		while (idx) {
			uint32_t next = lf_load_relaxed(&bk->units[idx - 1].link);
			size_t bytes = HL_SLOT_SIZE << o;
			if (!keep) {
				os_punch(bk->fd, (uint64_t)(idx - 1) << HL_SLOT_SHIFT, bytes);
				lf_tstack_push(&bk->pool_free[o], idx, &bk->units[idx - 1].link);
			}
			lf_fetch_sub_relaxed(&w->bytes, (uint64_t)bytes);
			HL_CTR_SUB(move_reserve, bytes);
			n += bytes;
			idx = next;
		}
	}
	return n;
}

size_t rb_warm_drain(bk_t *bk)
{
	return bk->units ? rb_warm_empty(bk, false) : 0;
}

void rb_warm_forget(bk_t *bk)
{
	if (bk->units)
		rb_warm_empty(bk, true);
}

size_t rb_warm_decay(bk_t *bk, uint32_t now_ms)
{
	if (!lf_load_relaxed(&rb_warm[bk->id].bytes) ||
	    now_ms - lf_load_relaxed(&rb_warm[bk->id].used_ms) < RB_IDLE_MS)
		return 0;
	return rb_warm_drain(bk);
}

/* ---- spare anonymous spans --------------------------------------------- */

/* A ready spare of (1 << order) slots, ours now; NULL if none.  Every
 * call says a move wants that order: the coordinator makes the next. */
char *rb_spare_take(unsigned order)
{
	lf_fetch_or_acq_rel(&rb_spare_want, 1u << order);
	char *p = lf_exchange_acq_rel(&rb_spare[order], (char *)NULL);
	if (p) {
		HL_CTR_SUB(move_reserve, HL_SLOT_SIZE << order);
		lf_store_relaxed(&rb_spare_ms, os_now_ms());
	}
	return p;
}

size_t rb_spare_trim(void)
{
	size_t n = 0;
	lf_fetch_add_seq_cst(&rb_trim_gen, 1u);
	lf_store_relaxed(&rb_spare_want, 0u);
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++) {
		char *p = lf_exchange_seq_cst(&rb_spare[o], (char *)NULL);
		if (p) {
			rb_munmap(p, HL_SLOT_SIZE << o);
			HL_CTR_SUB(move_reserve, HL_SLOT_SIZE << o);
			n += HL_SLOT_SIZE << o;
		}
	}
	return n;
}

bool rb_spare_fill(bool (*stop)(void *ctx), void *ctx)
{
	for (;;) {
		if (!rb_fill) {
			uint32_t want = lf_load_relaxed(&rb_spare_want);
			unsigned o = 0;
			while (o < HL_SPAN_ORDERS && !(want >> o & 1 && !lf_load_relaxed(&rb_spare[o])))
				o++;
			if (o == HL_SPAN_ORDERS) {
				uint32_t now = os_now_ms();
				if (now - lf_load_relaxed(&rb_spare_ms) >= RB_IDLE_MS)
					rb_spare_trim();   /* unused a while: given back */
				return false;
			}
			lf_fetch_and_acq_rel(&rb_spare_want, ~(1u << o));
			rb_fill_gen = lf_load_seq_cst(&rb_trim_gen);
			char *p = rb_mmap(NULL, HL_SLOT_SIZE << o,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (p == MAP_FAILED)
				return false;
			rb_madvise(p, HL_SLOT_SIZE << o, MADV_DONTFORK);
			HL_CTR_ADD(move_reserve, HL_SLOT_SIZE << o);   /* counted as made */
			rb_fill = p;
			rb_fill_order = o;
			rb_fill_done = 0;
			lf_store_relaxed(&rb_spare_ms, os_now_ms());
		}
		size_t len = HL_SLOT_SIZE << rb_fill_order;
		for (; rb_fill_done < len; rb_fill_done += HL_SLOT_SIZE) {
			if (stop(ctx))
				return true;
			rb_madvise(rb_fill + rb_fill_done, HL_SLOT_SIZE, MADV_POPULATE_WRITE);
		}
		/* Published, then the trim generation looked at again: a trim
		 * that began meanwhile gets it back (from us, or by its own
		 * exchange). */
		char *none = NULL, *p = rb_fill;
		rb_fill = NULL;
		if (!lf_cas_strong_seq_cst(&rb_spare[rb_fill_order], &none, p) ||
		    (lf_load_seq_cst(&rb_trim_gen) != rb_fill_gen &&
		     lf_exchange_seq_cst(&rb_spare[rb_fill_order], (char *)NULL) == p)) {
			rb_munmap(p, len);
			HL_CTR_SUB(move_reserve, len);
		}
	}
}


#ifdef HL_TEST_HOOKS
uint64_t rb_test_warm_bytes(const bk_t *bk)
{
	return lf_load_relaxed(&rb_warm[bk->id].bytes);
}
#endif

void rb_keep_fork_child(void)
{
	/* No reserve crosses a fork: the spares are MADV_DONTFORK (not
	 * mapped here), and warm units are the parent's memfd pages (a
	 * private region's memfd is closed here, a shared one's is not
	 * ours to reuse or punch): forgotten, never touched. */
	for (uint32_t i = 0; i < HL_MAX_REGIONS; i++) {
		for (unsigned o = 0; o < HL_SPAN_ORDERS; o++)
			lf_tstack_init(&rb_warm[i].st[o]);
		rb_warm[i].bytes = 0;
	}
	for (unsigned o = 0; o < HL_SPAN_ORDERS; o++)
		rb_spare[o] = NULL;
	rb_fill = NULL;
	rb_spare_want = 0;
	lf_store_relaxed(&hl_ctr.move_reserve, (uint64_t)0);
}
