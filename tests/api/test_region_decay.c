/*
 * A region's empty superblocks go back on the decay timer, as the README
 * says ("after this many ms unused"), not only on hl_trim: after the
 * program frees everything and waits, the region's bytes backed fall to
 * zero and the HIGH watermark event is told, on the next heaplib call of
 * the thread whose call ran the decay.
 */
#define _GNU_SOURCE
#include <time.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

static int lows, highs;

static void on_event(hl_region_t *r, hl_region_event_t e, void *arg)
{
	(void)r;
	(void)arg;
	if (e == HL_EVENT_LOW)
		lows++;
	else
		highs++;
}

int main(int argc, char **argv)
{
	(void)argc;
	tap_reexec_with_env(argv, "HEAPLIB_DECAY_MS", "50", (char *)NULL);
	plan(4);
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "decay", .capacity = 1 << 20,
				.wmark_low = 256 << 10, .wmark_high = 768 << 10, .notify = on_event };
	hl_region_t *r;
	if (hl_region_create(&ra, &r) != HL_OK)
		bail_out("hl_region_create failed");
	hl_place_t pl = { .region = r, .node = -1 };
	enum { N = 100 };
	void *v[N];
	int n = 0;
	while (n < N && hl_alloc(8192, &pl, 0, &v[n]) == HL_OK)
		n++;
	ok(lows == 1, "filling the region crosses its low watermark once (%d blocks, %d LOW events)",
	   n, lows);
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	void *p = NULL;
	hl_alloc(100, NULL, 0, &p);   /* any heaplib call that ticks the decay */
	hl_free(p);
	hl_region_stats_t st = { .struct_size = sizeof st };
	hl_region_stats(r, &st);
	ok(st.bytes_backed == 0 && st.superblocks == 0,
	   "200 ms after everything was freed (decay 50 ms) the region backs nothing (%llu bytes, %llu superblocks)",
	   (unsigned long long)st.bytes_backed, (unsigned long long)st.superblocks);
	ok(highs == 1, "and its HIGH event was told (%d)", highs);
	ok(hl_region_delete(r) == HL_OK, "the region is deleted");
	return done_testing();
}
