/*
 * bench/redis-preload.c -- preloads that make Debian's redis-server use the
 * allocator under test, and a check that it does.  Built three times by
 * bench/redis.sh (never part of the library or the tests):
 *
 *   -DPRELOAD_GLIBC  bench-glibc.so: malloc and friends pass straight to
 *                    glibc's (__libc_malloc, ...).  Debian links redis-server
 *                    against libjemalloc.so.2, which comes before libc in the
 *                    symbol search, so without this "no preload" measures
 *                    jemalloc, not the system allocator.  Also holds the stubs.
 *   -DPRELOAD_STUBS  bench-stubs.so: only jemalloc's extras that redis calls
 *                    (mallctl, nallocx, malloc_stats_print), answering "not
 *                    supported", so that an allocator without them does not
 *                    leave redis calling into (and starting) an idle jemalloc.
 *                    Preloaded after the allocator: one that has them wins.
 *   -DPRELOAD_CHECK  bench-check.so: preloaded first, in front of the
 *                    allocator's own preload.  Forwards every call to the
 *                    next definition (RTLD_NEXT: the allocator under test)
 *                    and remembers every pointer that allocator returned, so
 *                    that a free, realloc or malloc_usable_size of a pointer
 *                    it never returned -- one that crossed from another
 *                    allocator -- is counted.  Writes its counts at exit to
 *                    $BENCH_CHECK_OUT.  Slow (one lock per call): for one
 *                    short check run per allocator, never for a timed run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

#if defined(PRELOAD_GLIBC) || defined(PRELOAD_STUBS)
/* jemalloc's control interface, answered as an allocator without one. */
EXPORT int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
{
	(void)name; (void)oldp; (void)oldlenp; (void)newp; (void)newlen;
	return ENOENT;
}

EXPORT size_t nallocx(size_t size, int flags)
{
	(void)flags;
	return size;       /* a request of size gets at least size */
}

EXPORT void malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts)
{
	(void)opts;
	if (write_cb)
		write_cb(cbopaque, "no allocator statistics (bench stub)\n");
}
#endif

#ifdef PRELOAD_GLIBC
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t k, size_t n) { return __libc_calloc(k, n); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT void *aligned_alloc(size_t a, size_t n)
{
	if (a == 0 || (a & (a - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return __libc_memalign(a, n);
}

EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
	if (a < sizeof(void *) || (a & (a - 1)))
		return EINVAL;
	int saved = errno;
	void *p = __libc_memalign(a, n);
	if (!p)
		return ENOMEM;
	errno = saved;
	*out = p;
	return 0;
}

/* glibc has no __libc_ name for it: take libc's own definition (the next
 * one in the search order would be jemalloc's). */
EXPORT size_t malloc_usable_size(void *p)
{
	static size_t (*libc_mus)(void *);
	if (!libc_mus) {
		void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		if (h)
			libc_mus = (size_t (*)(void *))dlsym(h, "malloc_usable_size");
		if (!libc_mus)
			return 0;
	}
	return libc_mus(p);
}
#endif

#ifdef PRELOAD_CHECK
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);
static void *(*next_memalign)(size_t, size_t);
static size_t (*next_usable)(void *);
static int (*next_mallctl)(const char *, void *, size_t *, void *, size_t);
static size_t (*next_nallocx)(size_t, int);

/* Allocations made while dlsym itself allocates, before the next malloc is
 * known: served from here, never freed. */
static char boot[1 << 16] __attribute__((aligned(64)));
static size_t boot_used;
static int resolving;

/* The set of pointers the allocator under test returned and that are not
 * yet freed: open addressing, linear probing; 1 marks a freed slot. */
#define SLOTS (1u << 22)
static uintptr_t *slot;
static volatile int lock_word;

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_ALIGNED, C_FREE, C_USABLE, C_MALLCTL, C_NALLOCX,
       C_FOREIGN_FREE, C_FOREIGN_REALLOC, C_FOREIGN_USABLE, C_DOUBLE_HANDOUT, C_BOOT, C_FULL, C_N };
static const char *const cname[C_N] = {
	"malloc", "calloc", "realloc", "aligned", "free", "usable_size", "mallctl", "nallocx",
	"foreign_free", "foreign_realloc", "foreign_usable_size", "double_handout", "bootstrap", "table_full",
};
static unsigned long count[C_N];
static unsigned long live, max_live;

static void lock(void) { while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) ; }
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

static size_t hash(uintptr_t p) { return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull >> 40) & (SLOTS - 1); }

static void resolve(void)
{
	if (next_malloc || resolving)
		return;
	resolving = 1;
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	next_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	next_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	next_usable = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
	next_mallctl = (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_NEXT, "mallctl");
	next_nallocx = (size_t (*)(size_t, int))dlsym(RTLD_NEXT, "nallocx");
	slot = mmap(NULL, SLOTS * sizeof *slot, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (slot == MAP_FAILED)
		abort();
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	resolving = 0;
}

static int in_boot(void *p) { return (char *)p >= boot && (char *)p < boot + sizeof boot; }

static void *boot_alloc(size_t n)
{
	n = (n + 63) & ~(size_t)63;
	if (boot_used + n > sizeof boot)
		abort();
	void *p = boot + boot_used;
	boot_used += n;
	count[C_BOOT]++;
	return p;
}

/* Remembers p as handed out by the allocator under test. */
static void *track(void *p, int kind)
{
	if (!p)
		return p;
	lock();
	count[kind]++;
	size_t i = hash((uintptr_t)p), n;
	for (n = 0; n < SLOTS && slot[i] > 1; n++) {
		if (slot[i] == (uintptr_t)p) {
			count[C_DOUBLE_HANDOUT]++;
			break;
		}
		i = (i + 1) & (SLOTS - 1);
	}
	if (n == SLOTS)
		count[C_FULL]++;
	else if (slot[i] != (uintptr_t)p) {
		slot[i] = (uintptr_t)p;
		if (++live > max_live)
			max_live = live;
	}
	unlock();
	return p;
}

/* Whether p is in the set; removes it when forget. Called locked. */
static int known(void *p, int forget)
{
	size_t i = hash((uintptr_t)p);
	for (size_t n = 0; n < SLOTS && slot[i]; n++) {
		if (slot[i] == (uintptr_t)p) {
			if (forget) {
				slot[i] = 1;
				live--;
			}
			return 1;
		}
		i = (i + 1) & (SLOTS - 1);
	}
	return 0;
}

/* Counts a call on p; 0 when p crossed from elsewhere (then not forwarded). */
static int check(void *p, int kind, int foreign_kind, int forget)
{
	lock();
	count[kind]++;
	int ok = known(p, forget);
	if (!ok)
		count[foreign_kind]++;
	unlock();
	return ok;
}

EXPORT void *malloc(size_t n)
{
	resolve();
	if (!next_malloc)
		return boot_alloc(n);
	return track(next_malloc(n), C_MALLOC);
}

EXPORT void *calloc(size_t k, size_t n)
{
	resolve();
	if (!next_malloc)
		return boot_alloc(k * n);   /* static memory is zero */
	return track(next_calloc(k, n), C_CALLOC);
}

EXPORT void free(void *p)
{
	if (!p || in_boot(p))
		return;
	resolve();
	if (check(p, C_FREE, C_FOREIGN_FREE, 1))
		next_free(p);
}

EXPORT void *realloc(void *p, size_t n)
{
	resolve();
	if (!p)
		return track(next_realloc(NULL, n), C_REALLOC);
	if (in_boot(p)) {
		void *q = malloc(n);
		if (q)
			memcpy(q, p, n < (size_t)(boot + sizeof boot - (char *)p) ? n : (size_t)(boot + sizeof boot - (char *)p));
		return q;
	}
	if (!check(p, C_REALLOC, C_FOREIGN_REALLOC, 1)) {
		errno = ENOMEM;
		return NULL;
	}
	void *q = next_realloc(p, n);
	if (!q && n) {              /* p stays valid */
		track(p, C_REALLOC);
		return NULL;
	}
	return track(q, C_REALLOC);
}

EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
	resolve();
	int rc = next_posix_memalign(out, a, n);
	if (rc == 0)
		track(*out, C_ALIGNED);
	return rc;
}

EXPORT void *aligned_alloc(size_t a, size_t n) { resolve(); return track(next_aligned_alloc(a, n), C_ALIGNED); }
EXPORT void *memalign(size_t a, size_t n) { resolve(); return track(next_memalign(a, n), C_ALIGNED); }

EXPORT size_t malloc_usable_size(void *p)
{
	resolve();
	if (!p)
		return 0;
	if (!check(p, C_USABLE, C_FOREIGN_USABLE, 0))
		return 0;
	return next_usable(p);
}

EXPORT int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
{
	resolve();
	__atomic_fetch_add(&count[C_MALLCTL], 1, __ATOMIC_RELAXED);
	return next_mallctl ? next_mallctl(name, oldp, oldlenp, newp, newlen) : ENOENT;
}

EXPORT size_t nallocx(size_t size, int flags)
{
	resolve();
	__atomic_fetch_add(&count[C_NALLOCX], 1, __ATOMIC_RELAXED);
	return next_nallocx ? next_nallocx(size, flags) : size;
}

/* One line of name=value pairs; snprintf into a stack buffer, no malloc. */
__attribute__((destructor)) static void report(void)
{
	const char *out = getenv("BENCH_CHECK_OUT");
	if (!out)
		return;
	char buf[1024];
	size_t n = 0;
	lock();
	for (int k = 0; k < C_N; k++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s=%lu ", cname[k], count[k]);
	n += (size_t)snprintf(buf + n, sizeof buf - n, "live_at_exit=%lu max_live=%lu\n", live, max_live);
	unlock();
	int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, buf, n < sizeof buf ? n : sizeof buf - 1);
		(void)w;
		close(fd);
	}
}
#endif
