/*
 * Backing moves of live spans: the books of a move (which memfd offsets,
 * the page map's backing words, the mapping budget, the source's offsets
 * after), around rebind.c's barrier, copy and remap.
 *
 * bk_spans_move moves n adjacent spans of one order at once (a batch: a
 * power of two of them, 512 KiB in all at most, anonymous now, into a
 * memfd): one run of the target's offsets, one registration, one
 * write-protection, one copy and one remap for all of them.  Each such
 * call costs the other threads of the process two TLB shootdowns (the
 * protection and the remap), whatever its size, and a few system calls:
 * an evacuation batches to spare the program beside it.  Writers into a
 * batch wait for its copy, which is at most one 512 KiB span's.
 *
 * Concurrency: runs in the thread that holds the spans (the coordinator,
 * or a test); moves of different spans may run at once.
 */
#define _GNU_SOURCE
#include "mem/mem.h"

#define BK_BATCH_MAX (1u << (HL_SPAN_ORDERS - 1))   /* spans of a batch */

bk_t *bk_span_backing(const char *base, uint64_t *off)
{
	uint32_t back = pm_back_get(base);
	*off = 0;
	if (!PM_BACK_IS_FD(back))
		return NULL;
	*off = bk_unit_off(PM_BACK_UNIT(back));
	return bk_at(PM_BACK_ID(back));
}

int bk_span_move(char *base, unsigned order, bk_t *to, const char **why)
{
	return bk_spans_move(base, order, 1, to, why);
}

int bk_spans_move(char *base, unsigned order, unsigned n, bk_t *to, const char **why)
{
	size_t span = HL_SLOT_SIZE << order, bytes = span * n;
	unsigned k = n ? (unsigned)__builtin_ctz(n) : 0, maps = 0;
	uint32_t old[BK_BATCH_MAX];
	bool fd = to->kind == HL_BACKING_MEMFD;
	*why = NULL;
	if (to->kind == HL_BACKING_HUGETLB || to->kind == HL_BACKING_BUFFER) {
		*why = "hugetlb and buffer regions are pools: their addresses are their own";
		return HL_EINVAL;
	}
	if (!n || (n & (n - 1)) || order + k >= HL_SPAN_ORDERS || (n > 1 && !fd)) {
		*why = "a batch is a power of two of spans, 512 KiB at most, into a memfd";
		return HL_EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		old[i] = pm_back_get(base + i * span);
		maps += old[i] ? 0 : 2;
		if (n > 1 && PM_BACK_IS_FD(old[i])) {
			*why = "a batch moves anonymous spans only";
			return HL_EINVAL;
		}
	}
	bk_t *from = PM_BACK_IS_FD(old[0]) ? bk_at(PM_BACK_ID(old[0])) : NULL;
	if (from == to || (!from && !fd))
		return HL_OK;   /* backed as asked already */
	uint32_t unit = 0;
	bool warm = false;
	if (fd) {
		if (!(warm = n == 1 && (unit = rb_warm_take(to, order)) != 0))   /* pages ready */
			unit = bk_units_take(to, order + k);
		if (!unit) {
			*why = "no free offsets in the target's memfd";
			return HL_ENOMEM;
		}
		unit--;
	}
	int e = HL_ENOMEM;
	bool took = false;
	unsigned set = 0;
	if (maps && !(took = rb_maps_take(maps))) {
		*why = "mapping budget spent (half of vm.max_map_count)";
	} else {
		while (set < n && pm_back_set(base + set * span,
					      fd ? PM_BACK(to->id, unit + (set << order)) : PM_BACK_ANON))
			set++;
		if (set < n)
			*why = "no memory for the page map's backing table";
		else
			e = rb_move(base, bytes, fd ? to->fd : -1, bk_unit_off(unit),
				    fd ? to->pool + bk_unit_off(unit) : NULL, warm,
				    from ? from->pool + bk_unit_off(PM_BACK_UNIT(old[0])) : NULL, why);
	}
	if (e) {
		while (set--)
			pm_back_set(base + set * span, old[set]);
		if (took)
			rb_maps_put(maps);
		if (fd) {
			os_punch(to->fd, bk_unit_off(unit), bytes);   /* the copy's pages */
			bk_unit_push(to, order + k, unit);
		}
		return e;
	}
	for (unsigned i = 0; fd && i < n; i++) {
		lf_store_relaxed(&to->units[unit + (i << order)].order, order);
		lf_store_relaxed(&to->units[unit + (i << order)].base, base + i * span);
	}
	if (to->secure && !os_lock(base, bytes))
		hl_warn("hl_migrate", base, "cannot lock a moved secure span (RLIMIT_MEMLOCK?)");
	if (from && !rb_warm_put(from, PM_BACK_UNIT(old[0]), order))
		bk_units_free(from, PM_BACK_UNIT(old[0]), order);
	return HL_OK;
}
