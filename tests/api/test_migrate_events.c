/*
 * Watermark events caused by the coordinator's moves: the coordinator
 * runs no callback of the program's, so each crossing it causes is told
 * on a thread of the program's, once: by the hl_migrate that asked for
 * the move before it returns, or, for background moves (watermark
 * relief), at any thread's next hl_task_poll or slow path.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

typedef struct seen {
	int low, high;
	bool elsewhere;   /* a callback ran on a thread other than main's */
} seen_t;

static pthread_t main_thread;

static void notify(hl_region_t *r, hl_region_event_t ev, void *arg)
{
	(void)r;
	seen_t *s = arg;
	if (ev == HL_EVENT_LOW)
		s->low++;
	else
		s->high++;
	if (!pthread_equal(pthread_self(), main_thread))
		s->elsewhere = true;
}

static hl_region_t *watched(const char *name, size_t cap, size_t low, size_t high, int relieve,
			    seen_t *s)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	a.name = name;
	a.capacity = cap;
	a.wmark_low = low;
	a.wmark_high = high;
	a.relieve = relieve;
	a.notify = s ? notify : NULL;
	a.notify_arg = s;
	hl_region_t *r = NULL;
	if (hl_region_create(&a, &r) != HL_OK)
		bail_out("cannot create region %s", name);
	return r;
}

static uint64_t free_bytes(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s.capacity - s.bytes_backed;
}

static uint64_t high_events(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	hl_region_stats(r, &s);
	return s.events_high;
}

/* hl_migrate moves a block's superblock into a watched region and takes
 * it below its low watermark: the callback has run when it returns. */
static void test_asked(void)
{
	seen_t s = { 0, 0, false };
	hl_region_t *from = watched("ev-from", 8 * MB, 0, 0, 0, NULL);
	hl_region_t *to = watched("ev-to", 1 * MB, 1 * MB - 32 * KB, 1 * MB - 16 * KB, 0, &s);
	hl_place_t pf = { .node = -1, .region = from }, pt = { .node = -1, .region = to };
	void *p = NULL;
	is_int(hl_alloc(1000, &pf, 0, &p), HL_OK, "a block in the unwatched region");
	is_int(s.low, 0, "the watched region is empty: no event yet");
	is_int(hl_migrate(p, &pt, 0), HL_OK, "hl_migrate moved its superblock into the watched one");
	ok(hl_region_of(p) == to, "the block is in the watched region now");
	ok(free_bytes(to) < 1 * MB - 32 * KB, "which is below its low watermark (%llu free)",
	   (unsigned long long)free_bytes(to));
	ok(s.low == 1 && !s.elsewhere,
	   "the low event the coordinator caused was told once, on the caller's thread, "
	   "by the time hl_migrate returned (%d low)", s.low);
	hl_free(p);
	is_int(hl_region_delete(to), HL_OK, "watched region deleted");
	is_int(hl_region_delete(from), HL_OK, "source deleted");
}

/* Relief moves memory out of a region in the background until it is
 * above high: the high event is told at the next hl_task_poll. */
static void test_background(void)
{
	seen_t s = { 0, 0, false };
	hl_region_t *a = watched("ev-relieved", 1 * MB, 256 * KB, 512 * KB, 1, &s);
	hl_region_t *b = watched("ev-room", 8 * MB, 0, 0, 0, NULL);
	hl_region_t *ab[2] = { a, b };
	hl_task_t *t = NULL;
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "ev-task", .regions = ab, .nregions = 2 };
	is_int(hl_task_create(&ta, &t), HL_OK, "a task on both regions");
	hl_task_join(t);
	static void *v[900];
	hl_place_t pa = { .node = -1, .region = a };
	int n = 0;
	while (n < 850 && hl_alloc(1000, &pa, 0, &v[n]) == HL_OK)
		n++;
	ok(n == 850 && s.low == 1 && !s.elsewhere,
	   "filling it past low told the low event on this thread (%d blocks, %d low)", n, s.low);
	for (int i = 0; i < 500 && !high_events(a); i++)
		usleep(10000);
	ok(high_events(a) >= 1 && free_bytes(a) >= 512 * KB,
	   "the coordinator relieved it above high (%llu free)", (unsigned long long)free_bytes(a));
	/* The relief began while this thread was still allocating: its
	 * last hl_alloc calls may have told the event already. */
	int high_before = s.high;
	hl_task_poll();
	ok(s.high == 1 && !s.elsewhere,
	   "the high event of the coordinator's moves was told once on this thread, by its "
	   "hl_task_poll at the latest (%d before it, %d after)", high_before, s.high);
	hl_task_poll();
	is_int(s.high, 1, "and only once");
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	hl_task_join(NULL);
	hl_task_destroy(t);
	is_int(hl_region_delete(a), HL_OK, "relieved region deleted");
	is_int(hl_region_delete(b), HL_OK, "its neighbour deleted");
}

int main(void)
{
	main_thread = pthread_self();
	plan_no_plan();
	test_asked();
	test_background();
	return done_testing();
}
