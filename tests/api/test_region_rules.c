/*
 * Regions and placement, one rule at a time: attribute checking, the
 * error codes, capacity and exact accounting, delete and reset, the
 * fallback list (reachability, secure, proximity, min watermark), each
 * backing, secure memory (locked, out of core dumps, wiped on free),
 * realloc and aligned allocation within a region, and watermark events.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

static hl_region_attr_t attr(void)
{
	hl_region_attr_t a;
	memset(&a, 0, sizeof a);
	a.struct_size = sizeof a;
	return a;
}

static hl_region_stats_t rstats(hl_region_t *r)
{
	hl_region_stats_t s = { .struct_size = sizeof s };
	if (hl_region_stats(r, &s) != HL_OK)
		s.struct_size = 0;
	return s;
}

static void *in(hl_region_t *r, size_t size, unsigned flags, int *err)
{
	hl_place_t pl = { .reach = 0, .node = -1, .region = r };
	void *p = NULL;
	*err = hl_alloc(size, &pl, flags, &p);
	return p;
}

/* Field `name` of /proc/self/status, in kB. */
static long status_kb(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(name);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* The VmFlags line of the mapping that holds p. */
static int vmflags_of(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	int found = 0, inside = 0;
	uintptr_t a = (uintptr_t)p;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			found = 1;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

static void test_errors(void)
{
	const char *prev = "";
	int distinct = 1;
	for (int e = HL_OK; e <= HL_EBUSY; e++) {
		const char *s = hl_strerror((hl_error_t)e);
		if (!s || !*s || !strcmp(s, prev))
			distinct = 0;
		prev = s;
	}
	ok(distinct && !strcmp(hl_strerror((hl_error_t)99), "unknown error"),
	   "hl_strerror names every code and says 'unknown error' otherwise");

	hl_region_t *r = NULL;
	hl_region_attr_t a = attr();
	int bad = 0;
	bad += hl_region_create(NULL, &r) == HL_EINVAL;
	a.struct_size = 8;
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.reach = HL_REACH_DMA;   /* DMA: only a user-supplied buffer */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.backing = HL_BACKING_MEMFD;   /* no capacity */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.backing = HL_BACKING_BUFFER;
	a.capacity = 1 << 20;
	a.buffer = (char *)malloc(1) + 1;   /* not 64 KiB aligned */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.wmark_low = 4096;   /* watermarks need a capacity */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.capacity = 1 << 20;
	a.wmark_min = 8192;
	a.wmark_low = 4096;   /* min > low */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	a = attr();
	a.reach = 0x100;      /* unknown reach bit */
	bad += hl_region_create(&a, &r) == HL_EINVAL;
	ok(bad == 8, "hl_region_create refuses 8 kinds of bad attributes with HL_EINVAL (%d did)", bad);
	ok(r == NULL, "and leaves its out-parameter untouched");
	ok(hl_region_delete(hl_region_default()) == HL_EPERM,
	   "the default region cannot be deleted (HL_EPERM)");
	void *p = NULL;
	ok(hl_alloc(10, NULL, 0x100, &p) == HL_EINVAL && p == NULL,
	   "hl_alloc with an unknown flag is HL_EINVAL");
}

static void test_capacity(void)
{
	hl_region_attr_t a = attr();
	a.name = "cap";
	a.capacity = 1 << 20;
	hl_region_t *r;
	if (!ok(hl_region_create(&a, &r) == HL_OK, "create an anonymous region of 1 MiB"))
		return;
	ok(!strcmp(hl_region_name(r), "cap"), "its name is kept");
	int err;
	void *p = in(r, 100, 0, &err);
	hl_region_stats_t s = rstats(r);
	ok(err == HL_OK && hl_region_of(p) == r, "a block placed in it reports it as its region");
	ok(s.blocks_live == 1 && s.bytes_live == hl_usable_size(p) && s.bytes_backed == 65536,
	   "accounting is exact: 1 block, %llu bytes live (usable %zu), 64 KiB backed (%llu)",
	   (unsigned long long)s.bytes_live, hl_usable_size(p),
	   (unsigned long long)s.bytes_backed);
	hl_free(p);
	s = rstats(r);
	ok(s.blocks_live == 0 && s.bytes_live == 0 && s.frees == 1 && s.allocs == 1,
	   "after the free: nothing live, 1 alloc and 1 free counted");

	/* Fill it: small and large blocks until HL_ENOMEM. */
	enum { MAX = 4096 };
	static void *v[MAX];
	int n = 0, over = 0;
	uint64_t live = 0;
	for (; n < MAX; n++) {
		size_t sz = n % 10 == 9 ? 50000 : 3000;
		v[n] = in(r, sz, 0, &err);
		if (!v[n])
			break;
		live += hl_usable_size(v[n]);
		if (rstats(r).bytes_backed > a.capacity)
			over++;
	}
	s = rstats(r);
	ok(err == HL_ENOMEM && n > 0 && n < MAX,
	   "allocation stops with HL_ENOMEM when the capacity is used (%d blocks)", n);
	ok(over == 0 && s.bytes_backed <= a.capacity,
	   "the region never backs more than its capacity (%llu of %zu)",
	   (unsigned long long)s.bytes_backed, a.capacity);
	ok(s.bytes_live == live && s.blocks_live == (uint64_t)n,
	   "live bytes and blocks are exact (%llu = %llu, %llu = %d)",
	   (unsigned long long)s.bytes_live, (unsigned long long)live,
	   (unsigned long long)s.blocks_live, n);
	void *keep = v[0];
	ok(hl_region_delete(r) == HL_EBUSY, "deleting a region with live blocks is HL_EBUSY");
	memset(keep, 0x5a, 3000);
	ok(rstats(r).blocks_live == (uint64_t)n && hl_region_of(keep) == r,
	   "and changes nothing: the blocks are still there");
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	s = rstats(r);
	ok(s.blocks_live == 0 && s.bytes_live == 0, "all freed: nothing live");
	ok(hl_region_delete(r) == HL_OK, "an empty region is deleted");
	ok(in(r, 10, 0, &err) == NULL && err == HL_ENOREGION,
	   "an allocation from the deleted region finds no region (HL_ENOREGION)");
}

static void test_reset(void)
{
	hl_region_attr_t a = attr();
	a.capacity = 4 << 20;
	hl_region_t *r;
	if (!ok(hl_region_create(&a, &r) == HL_OK, "create a region to reset"))
		return;
	int err, got = 0;
	for (int i = 0; i < 200; i++)
		got += in(r, 16 + i * 37, 0, &err) != NULL;
	got += in(r, 300000, 0, &err) != NULL;
	hl_region_stats_t s0 = rstats(r);
	ok(got == 201 && s0.blocks_live == 201, "201 blocks in it, one large");
	ok(hl_region_reset(r) == HL_OK, "hl_region_reset frees them all at once");
	hl_region_stats_t s = rstats(r);
	ok(s.blocks_live == 0 && s.bytes_live == 0 && s.bytes_backed == 0 && s.superblocks == 0,
	   "after reset nothing is live or backed (%llu backed, %llu superblocks)",
	   (unsigned long long)s.bytes_backed, (unsigned long long)s.superblocks);
	void *p = in(r, 64, 0, &err);
	ok(p && hl_region_of(p) == r, "the region serves again after a reset");
	hl_free(p);
	ok(hl_region_delete(r) == HL_OK, "and is deleted");
}

static void test_fallback(void)
{
	hl_region_attr_t a = attr();
	hl_region_t *near, *far, *low;
	a.reach = HL_REACH_SYS | HL_REACH_CLUSTER;
	a.capacity = 512 << 10;
	a.node = 1;
	a.name = "node1";
	int e1 = hl_region_create(&a, &far);
	a.node = 2;
	a.name = "node2";
	int e2 = hl_region_create(&a, &near);
	if (!ok(e1 == HL_OK && e2 == HL_OK, "two CLUSTER regions on nodes 1 and 2"))
		return;
	hl_place_t pl = { .reach = HL_REACH_CLUSTER, .node = 2, .region = NULL };
	void *p = NULL;
	ok(hl_alloc(100, &pl, 0, &p) == HL_OK && hl_region_of(p) == near,
	   "a CLUSTER allocation near node 2 lands on node 2");
	hl_free(p);
	pl.node = 1;
	ok(hl_alloc(100, &pl, 0, &p) == HL_OK && hl_region_of(p) == far,
	   "near node 1 it lands on node 1");
	hl_free(p);
	/* Fill node 2: allocations near it fall back to node 1. */
	static void *v[1024];
	int n = 0, err;
	while (n < 1024 && (v[n] = in(near, 8192, 0, &err)) != NULL)
		n++;
	pl.node = 2;
	ok(hl_alloc(8192, &pl, 0, &p) == HL_OK && hl_region_of(p) == far,
	   "with node 2 full, the next one falls back to node 1");
	hl_free(p);
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	pl.reach = HL_REACH_DMA;
	ok(hl_alloc(100, &pl, 0, &p) == HL_ENOREGION, "no DMA region: HL_ENOREGION");
	pl.reach = 0;
	ok(hl_alloc(100, &pl, HL_SECURE, &p) == HL_ENOREGION,
	   "no secure region: a secure allocation is HL_ENOREGION");

	/* Min watermark: a nearer region below its min is skipped while
	 * another qualifies, and used when nothing else does. */
	a = attr();
	a.reach = HL_REACH_SYS | HL_REACH_CLUSTER;
	a.capacity = 256 << 10;
	a.wmark_min = 200 << 10;
	a.wmark_low = 200 << 10;
	a.wmark_high = 200 << 10;
	a.node = 3;
	hl_region_create(&a, &low);
	void *first = in(low, 8192, 0, &err);   /* 64 KiB backed: free < min */
	pl.reach = HL_REACH_CLUSTER;
	pl.node = 3;
	ok(hl_alloc(100, &pl, 0, &p) == HL_OK && hl_region_of(p) != low,
	   "a region below its min watermark is passed over for another");
	hl_free(p);
	hl_region_delete(far);
	hl_region_delete(near);
	ok(hl_alloc(100, &pl, 0, &p) == HL_OK && hl_region_of(p) == low,
	   "and used when it is the only one that qualifies");
	hl_free(p);
	hl_free(first);
	ok(hl_region_delete(low) == HL_OK, "fallback regions deleted");
}

static void test_backings(void)
{
	hl_region_attr_t a = attr();
	hl_region_t *r;
	int err;
	a.backing = HL_BACKING_MEMFD;
	a.capacity = 1 << 20;
	if (ok(hl_region_create(&a, &r) == HL_OK, "a memfd region of 1 MiB")) {
		char *p = in(r, 1000, HL_ZERO, &err);
		int zero = p != NULL;
		for (int i = 0; p && i < 1000; i++)
			zero &= p[i] == 0;
		ok(p && hl_region_of(p) == r && zero, "serves zeroed blocks (HL_ZERO)");
		char fl[256] = "";
		ok(p && vmflags_of(p, fl, sizeof fl) && strstr(fl, " sh"),
		   "its memory is a shared mapping (VmFlags:%s)", fl);
		char *big = in(r, 40000, 0, &err);
		ok(big && hl_region_of(big) == r && vmflags_of(big, fl, sizeof fl) && strstr(fl, " sh"),
		   "and large blocks, of its memfd too (VmFlags:%s)", fl);
		hl_free(big);
		hl_free(p);
		ok(hl_region_delete(r) == HL_OK, "memfd region deleted");
	}

	size_t blen = 1 << 20;
	char *raw = mmap(NULL, blen + 65536, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *buf = (char *)(((uintptr_t)raw + 65535) & ~(uintptr_t)65535);
	a = attr();
	a.backing = HL_BACKING_BUFFER;
	a.buffer = buf;
	a.capacity = blen;
	a.reach = HL_REACH_SYS | HL_REACH_DMA;
	if (ok(hl_region_create(&a, &r) == HL_OK, "a region on a user-supplied 1 MiB buffer, DMA-reachable")) {
		hl_place_t pl = { .reach = HL_REACH_DMA, .node = -1, .region = NULL };
		void *p = NULL;
		int e = hl_alloc(2000, &pl, 0, &p);
		ok(e == HL_OK && (char *)p >= buf && (char *)p < buf + blen && hl_region_of(p) == r,
		   "a DMA allocation lands inside the buffer");
		hl_free(p);
		ok(hl_region_delete(r) == HL_OK, "buffer region deleted");
		buf[0] = 1;   /* still the caller's memory */
		ok(buf[0] == 1, "the buffer stays the caller's after delete");
	}
	munmap(raw, blen + 65536);

	a = attr();
	a.backing = HL_BACKING_HUGETLB;
	a.capacity = 2 << 20;
	int e = hl_region_create(&a, &r);
	if (e == HL_OK) {
		void *p = in(r, 5000, 0, &err);
		ok(p && hl_region_of(p) == r, "a hugetlb region serves blocks");
		hl_free(p);
		hl_region_delete(r);
	} else {
		ok(e == HL_ENOMEM, "a hugetlb region without reserved huge pages is HL_ENOMEM (%s)",
		   hl_strerror((hl_error_t)e));
	}
}

static void test_secure(void)
{
	hl_region_attr_t a = attr();
	a.secure = 1;
	a.capacity = 1 << 20;
	hl_region_t *r;
	if (!ok(hl_region_create(&a, &r) == HL_OK, "a secure anonymous region"))
		return;
	long lck0 = status_kb("VmLck");
	int err;
	unsigned char *p = in(r, 4000, 0, &err);
	long lck1 = status_kb("VmLck");
#ifdef HL_SANITIZER
	/* AddressSanitizer makes mlock a no-op: the plain build checks it. */
	(void)lck1;
	skip(1, "the sanitizer makes mlock a no-op; checked in the plain build");
#else
	ok(p && lck1 >= lck0 + 64, "its pages are locked (VmLck %ld -> %ld kB)", lck0, lck1);
#endif
	char fl[256] = "";
	ok(p && vmflags_of(p, fl, sizeof fl) && strstr(fl, " dd"),
	   "and excluded from core dumps (VmFlags:%s)", fl);
	memset(p, 0xa5, 4000);
	size_t us = hl_usable_size(p);
	hl_free(p);
	/* The first 16 bytes of a free block hold its encoded free-list link
	 * and free mark, no user data; the rest must be zero. */
	size_t nz = 0;
	for (size_t i = 16; i < us; i++)
		nz += p[i] != 0;
	ok(nz == 0, "a freed block is wiped (%zu nonzero bytes after the link)", nz);
	hl_place_t pl = { .reach = 0, .node = -1, .region = NULL };
	void *q = NULL;
	ok(hl_alloc(100, &pl, HL_SECURE, &q) == HL_OK && hl_region_of(q) == r,
	   "an HL_SECURE allocation goes to the secure region");
	hl_free(q);
	q = in(r, 100000, 0, &err);
#ifdef HL_SANITIZER
	ok(q && vmflags_of(q, fl, sizeof fl) && strstr(fl, " dd"),
	   "large secure blocks are out of dumps too (locking: plain build)");
#else
	ok(q && vmflags_of(q, fl, sizeof fl) && strstr(fl, " dd") && strstr(fl, " lo"),
	   "large secure blocks are locked and out of dumps too");
#endif
	hl_free(q);
	ok(hl_region_delete(r) == HL_OK, "secure region deleted");
}

/* Past RLIMIT_MEMLOCK (in a child without CAP_IPC_LOCK, which root has):
 * a clear HL_EPERM, for a pool at creation and for anonymous memory at
 * allocation. */
static int memlock_child(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].effective &= ~(1u << CAP_IPC_LOCK);
		syscall(SYS_capset, &h, d);
	}
	struct rlimit rl = { 0, 0 };
	if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return 10;
	hl_region_attr_t a = attr();
	a.secure = 1;
	a.backing = HL_BACKING_MEMFD;
	a.capacity = 1 << 20;
	hl_region_t *r;
	if (hl_region_create(&a, &r) != HL_EPERM)
		return 11;
	a.backing = HL_BACKING_ANON;
	if (hl_region_create(&a, &r) != HL_OK)
		return 12;
	int err;
	if (in(r, 100, 0, &err) != NULL || err != HL_EPERM)
		return 13;
	if (rstats(r).bytes_backed != 0)
		return 14;
	return 0;
}

static void test_memlock(void)
{
#ifdef HL_SANITIZER
	skip(1, "the sanitizer makes mlock a no-op; RLIMIT_MEMLOCK is checked in the plain build");
	return;
#endif
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(memlock_child());
	int st = 0;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "past RLIMIT_MEMLOCK a secure pool is refused at creation and secure memory at allocation, "
	   "with HL_EPERM and nothing left backed (child status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void test_realloc_align(void)
{
	hl_region_attr_t a = attr();
	a.capacity = 4 << 20;
	hl_region_t *r;
	hl_region_create(&a, &r);
	int err;
	char *p = in(r, 100, 0, &err);
	memset(p, 7, 100);
	char *q = hl_realloc(p, 5000);
	ok(q && hl_region_of(q) == r && q[99] == 7, "realloc of a region block stays in its region");
	char *g = hl_realloc(q, 200000);
	ok(g && hl_region_of(g) == r && g[99] == 7, "and so does growing it into a large block");
	hl_region_stats_t s = rstats(r);
	ok(s.blocks_live == 1, "with one block live after the moves (%llu)",
	   (unsigned long long)s.blocks_live);
	hl_free(g);
	hl_place_t pl = { .reach = 0, .node = -1, .region = r };
	void *al = NULL;
	ok(hl_alloc_aligned(100, 4096, &pl, 0, &al) == HL_OK && ((uintptr_t)al & 4095) == 0 &&
	   hl_region_of(al) == r, "hl_alloc_aligned gives an aligned block in the region");
	hl_free(al);
	ok(hl_alloc_aligned(100, 3, &pl, 0, &al) == HL_EINVAL, "a non-power-of-two alignment is HL_EINVAL");
	hl_region_delete(r);
	void *m = malloc(10);
	ok(hl_region_of(m) == hl_region_default() || hl_region_of(m) == NULL,
	   "plain malloc blocks belong to the default region (when heaplib is malloc)");
	free(m);
	void *h = hl_malloc(10);
	ok(hl_region_of(h) == hl_region_default(), "hl_malloc blocks belong to the default region");
	hl_free(h);
	int x;
	ok(hl_region_of(&x) == NULL, "a stack address has no region");
}

/* ---- watermark events ---------------------------------------------------- */

static pthread_t ev_thread;
static int ev_low, ev_high, ev_inner_ok;
static hl_region_t *ev_region;

static void on_event(hl_region_t *r, hl_region_event_t e, void *arg)
{
	(void)arg;
	ev_thread = pthread_self();
	if (e == HL_EVENT_LOW) {
		ev_low++;
		/* Outside every internal structure: allocating here works. */
		int err;
		void *p = in(r, 64, 0, &err);
		ev_inner_ok = p != NULL;
		hl_free(p);
	} else {
		ev_high++;
	}
}

static void test_watermarks(void)
{
	hl_region_attr_t a = attr();
	a.capacity = 1 << 20;
	a.wmark_min = 64 << 10;
	a.wmark_low = 600 << 10;
	a.wmark_high = 768 << 10;
	a.notify = on_event;
	if (!ok(hl_region_create(&a, &ev_region) == HL_OK, "a region with watermarks and a callback"))
		return;
	static void *v[64];
	int n = 0, err, low_at = -1;
	while (n < 64) {
		v[n] = in(ev_region, 30000, 0, &err);
		if (!v[n])
			break;
		n++;
		if (ev_low && low_at < 0)
			low_at = n;
	}
	hl_region_stats_t s = rstats(ev_region);
	ok(ev_low == 1 && s.events_low == 1, "crossing low calls the callback once (%d)", ev_low);
	ok(pthread_equal(ev_thread, pthread_self()),
	   "on the thread whose allocation crossed it");
	ok(ev_inner_ok, "after that call's work: the callback itself allocated from the region");
	for (int i = 0; i < n; i++)
		hl_free(v[i]);
	hl_trim();
	s = rstats(ev_region);
	ok(ev_high == 1 && s.events_high == 1,
	   "rising back above high is told once (%d), when the superblocks are retired", ev_high);
	hl_region_delete(ev_region);
}

/* A 64 KiB-aligned buffer of len bytes in a mapping of its own (*raw,
 * len + 64 KiB, to unmap). */
static char *aligned_buffer(size_t len, char **raw)
{
	*raw = mmap(NULL, len + 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return (char *)(((uintptr_t)*raw + 65535) & ~(uintptr_t)65535);
}

/* A buffer region's rules: one region per buffer, never heaplib's own
 * memory; a secure one is wiped by reset and given back to core dumps at
 * delete. */
static void test_buffer_rules(void)
{
	size_t blen = 256 << 10;
	char *raw, *buf = aligned_buffer(blen, &raw);
	hl_region_attr_t a = attr();
	a.backing = HL_BACKING_BUFFER;
	a.buffer = buf;
	a.capacity = blen;
	a.secure = 1;
	hl_region_t *r = NULL, *r2 = NULL;
	if (!ok(hl_region_create(&a, &r) == HL_OK, "a secure region on a 256 KiB buffer")) {
		munmap(raw, blen + 65536);
		return;
	}
	hl_region_attr_t b = a;
	b.secure = 0;
	ok(hl_region_create(&b, &r2) == HL_EINVAL && !r2,
	   "a second region on the same buffer is HL_EINVAL");
	b.buffer = buf + 65536;
	b.capacity = 64 << 10;
	r2 = NULL;
	ok(hl_region_create(&b, &r2) == HL_EINVAL && !r2,
	   "a region on a buffer overlapping another region's is HL_EINVAL");

	int err;
	char *p = in(r, 100, 0, &err);
	if (p)
		memset(p, 's', 100);
	ok(p && hl_region_reset(r) == HL_OK, "a block of the secure buffer region, then a reset");
	int wiped = p != NULL;
	for (int i = 0; p && i < 100; i++)
		wiped &= p[i] == 0;
	ok(wiped, "the reset wiped the block's bytes (no next owner reads them)");

	char fl[256] = "";
	ok(vmflags_of(buf, fl, sizeof fl) && strstr(fl, " dd"),
	   "while the region lives its buffer is out of core dumps (VmFlags:%s)", fl);
	ok(hl_region_delete(r) == HL_OK, "the secure buffer region is deleted");
	fl[0] = 0;
	ok(vmflags_of(buf, fl, sizeof fl) && !strstr(fl, " dd"),
	   "after delete the buffer is the caller's again, in core dumps too (VmFlags:%s)", fl);
	munmap(raw, blen + 65536);

	/* A 64 KiB-aligned small block is heaplib's own memory. */
	void *blk[64];
	char *own = NULL;
	for (int i = 0; i < 64; i++) {
		blk[i] = hl_malloc(32768);
		if (!own && blk[i] && ((uintptr_t)blk[i] & 65535) == 0)
			own = blk[i];
	}
	b = attr();
	b.backing = HL_BACKING_BUFFER;
	b.buffer = own;
	b.capacity = 64 << 10;
	r2 = NULL;
	ok(own && hl_region_create(&b, &r2) == HL_EINVAL && !r2,
	   "a region on memory inside heaplib's own superblocks is HL_EINVAL");
	for (int i = 0; i < 64; i++)
		hl_free(blk[i]);
}

/* A task's permission is for the region it named, not for the slot of
 * the region table that region had. */
static hl_task_t *perm_task;
static hl_region_t *perm_new;
static int perm_result;

static void *perm_thread(void *arg)
{
	(void)arg;
	hl_task_join(perm_task);
	hl_place_t pl = { .region = perm_new, .node = -1 };
	void *p = NULL;
	perm_result = hl_alloc(64, &pl, 0, &p);
	hl_free(p);
	hl_task_join(NULL);
	return NULL;
}

static void test_permission_follows_region(void)
{
	hl_region_attr_t a = attr();
	hl_region_t *old = NULL;
	hl_region_create(&a, &old);
	hl_task_attr_t ta = { .struct_size = sizeof ta, .name = "only-old",
			      .regions = (hl_region_t *const[]){ old }, .nregions = 1 };
	int e = hl_task_create(&ta, &perm_task);
	hl_region_delete(old);
	hl_region_create(&a, &perm_new);   /* the first free slot: old's */
	pthread_t t;
	pthread_create(&t, NULL, perm_thread, NULL);
	pthread_join(t, NULL);
	ok(e == HL_OK && perm_new == old && perm_result == HL_ENOREGION,
	   "a task allowed a deleted region may not allocate in the region made after it in its slot (%s)",
	   hl_strerror((hl_error_t)perm_result));
	hl_task_destroy(perm_task);
	hl_region_delete(perm_new);
}

/* A pool's spans are split for smaller superblocks and merged again for
 * bigger ones: an empty 256 KiB pool that held one 32 KiB block serves
 * 8 KiB blocks, and then 32 KiB ones again. */
static void test_pool_split_merge(void)
{
	size_t blen = 256 << 10;
	char *raw, *buf = aligned_buffer(blen, &raw);
	hl_region_attr_t a = attr();
	a.backing = HL_BACKING_BUFFER;
	a.buffer = buf;
	a.capacity = blen;
	hl_region_t *r = NULL;
	if (!ok(hl_region_create(&a, &r) == HL_OK, "a 256 KiB buffer pool")) {
		munmap(raw, blen + 65536);
		return;
	}
	int err;
	void *big = in(r, 32768, 0, &err);
	ok(big != NULL, "holds a 32 KiB block (its superblock is the whole pool)");
	hl_free(big);
	hl_region_reset(r);
	void *small[8];
	int got = 0;
	for (int i = 0; i < 8; i++)
		got += (small[i] = in(r, 8192, 0, &err)) != NULL;
	ok(got == 8, "emptied, it serves 8 KiB blocks from the split span (%d of 8)", got);
	for (int i = 0; i < 8; i++)
		hl_free(small[i]);
	hl_region_reset(r);
	big = in(r, 32768, 0, &err);
	ok(big != NULL, "emptied again, its split spans merge for a 32 KiB block (%s)",
	   big ? "ok" : hl_strerror((hl_error_t)err));
	hl_free(big);
	hl_region_delete(r);
	munmap(raw, blen + 65536);
}

/* Pools in distinct 1 GiB ranges need slot records for each range: at
 * most 256 ranges ever, past which a pool is refused, not made with
 * records a reset could not find. */
static void test_pool_ranges(void)
{
	int made = 0, refused = 0, other = 0;
	for (int k = 0; k < 300; k++) {
		char *want = (char *)((uintptr_t)0x200000000000ull + ((uintptr_t)k << 30));
		char *b = mmap(want, 65536, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (b != want) {
			if (b != MAP_FAILED)
				munmap(b, 65536);
			continue;
		}
		hl_region_attr_t a = attr();
		a.backing = HL_BACKING_BUFFER;
		a.buffer = b;
		a.capacity = 65536;
		hl_region_t *r = NULL;
		int e = hl_region_create(&a, &r);
		if (e == HL_OK) {
			made++;
			if (refused)
				other++;   /* made after one was refused: no trace */
			hl_region_delete(r);
		} else if (e == HL_EINVAL) {
			refused++;
		} else {
			other++;
		}
		munmap(b, 65536);
	}
	ok(made > 200 && made <= 256 && refused > 0 && other == 0,
	   "buffer pools in 300 distinct 1 GiB ranges: %d made, then %d refused with HL_EINVAL", made,
	   refused);
}

int main(int argc, char **argv)
{
	(void)argc;
	/* Placement's own rules, without the coordinator's OOM resolution
	 * (tests/api/test_migrate has that): a full region fails here. */
	tap_reexec_with_env(argv, "HEAPLIB_MIGRATE_WAIT_MS", "0", (char *)NULL);
	plan_no_plan();
	test_errors();
	test_capacity();
	test_reset();
	test_fallback();
	test_backings();
	test_secure();
	test_memlock();
	test_realloc_align();
	test_watermarks();
	test_buffer_rules();
	test_pool_split_merge();
	test_pool_ranges();
	test_permission_follows_region();
	return done_testing();
}
