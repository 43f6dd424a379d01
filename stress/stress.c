/*
 * heaplib-stress -- multithreaded allocator stress test and benchmark harness.
 *
 * Build (one file, NOT linked to heaplib):
 *     gcc -std=gnu11 -O2 -Wall -Wextra -pthread stress.c -lm -o heaplib-stress
 * Run with an allocator preloaded, or with none (glibc):
 *     LD_PRELOAD=/path/to/libheaplib.so ./heaplib-stress --workload server --threads 8
 *     ./heaplib-stress --compare --lib /path/to/libheaplib.so --peers
 *
 * Every block is verified as it goes: a 64-bit hash of (address, size) is
 * written into it (the whole block for sizes <= 256 B; otherwise the first
 * 8 bytes, the last 8 bytes and one word every 4 KiB in between) and checked
 * just before the block is freed or reallocated.  realloc must preserve the
 * old pattern up to min(old, new) size.  calloc memory is checked for zeros.
 * A mismatch prints
 *   heaplib-stress: FAIL workload=W thread=T block=ADDR size=S offset=O expected=X found=Y
 * and exits with status 2.  A NULL from malloc/calloc/realloc also exits 2.
 *
 * Debug build flag:
 *   -DSTRESS_SELFTEST_CORRUPT   deliberately corrupts one byte of one block
 *                               (the first block a worker thread frees), to
 *                               show that the checker fires: the run must
 *                               print a FAIL line and exit with status 2.
 *
 * An "op" is one allocator call: malloc, calloc, realloc or free.
 *
 * Peak RSS: at the start of each workload the process's resident high-water
 * mark is reset (writing 5 to /proc/self/clear_refs) and read back at the end
 * (VmHWM, the counter behind getrusage's ru_maxrss), so each workload of one
 * process gets its own peak.  If the reset is not permitted, ru_maxrss is
 * used (then cumulative over the process).  --compare runs every workload in
 * its own process anyway.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heaplib.h"   /* types only: the regions workload finds heaplib with dlsym */

extern char **environ;

#define PROG "heaplib-stress"
#define MAX_THREADS 512
#define FULL_CHECK_MAX 256          /* blocks up to this size are patterned fully */
#define PAGE_STRIDE 4096
#define LARGE_MIN (64u << 10)
#define LARGE_MAX (8u << 20)

/* ------------------------------------------------------------------ options */

struct options {
    const char *workload;           /* name or comma list */
    int threads;
    bool threads_given;
    double duration;
    uint64_t ops;                   /* per thread; 0 = use duration */
    bool duration_given;
    size_t min_size, max_size;
    uint64_t seed;
    const char *json;
    bool quiet;
    bool verify;
    const char *alloc_name;
    /* --compare */
    bool compare;
    const char *lib;
    bool peers;
    const char *threads_list;
    int runs;
};

static struct options opt = {
    .workload = NULL, .threads = 2, .duration = 2.0, .ops = 0,
    .min_size = 16, .max_size = 512, .seed = 1, .json = NULL,
    .quiet = false, .verify = true, .alloc_name = NULL,
    .compare = false, .lib = NULL, .peers = false, .threads_list = NULL,
    .runs = 3,
};

/* ----------------------------------------------------------------- utilities */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* millions per second, with enough digits for slow workloads */
static const char *fmt_mops(char *buf, size_t n, double per_sec)
{
    double v = per_sec / 1e6;
    int prec = v >= 100 ? 1 : v >= 1 ? 3 : v >= 0.01 ? 4 : 6;
    snprintf(buf, n, "%.*f", prec, v);
    return buf;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* xoshiro-like small generator: splitmix64 stepping, good enough here */
struct rng { uint64_t s; };

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

static inline uint64_t rng_below(struct rng *r, uint64_t n)    /* 0 .. n-1 */
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static inline size_t rng_size(struct rng *r)
{
    return opt.min_size + (size_t)rng_below(r, opt.max_size - opt.min_size + 1);
}

static long rss_kib(void)
{
    static long page_kib;
    if (!page_kib)
        page_kib = sysconf(_SC_PAGESIZE) / 1024;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    long size = 0, res = 0;
    if (sscanf(buf, "%ld %ld", &size, &res) != 2)
        return -1;
    return res * page_kib;
}

static bool g_hwm_resettable;

static void hwm_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    g_hwm_resettable = false;
    if (fd >= 0) {
        g_hwm_resettable = write(fd, "5", 1) == 1;
        close(fd);
    }
}

/* peak resident set in KiB since the last hwm_reset() (or process start) */
static long peak_rss_kib(void)
{
    if (g_hwm_resettable) {
        FILE *f = fopen("/proc/self/status", "re");
        if (f) {
            char line[256];
            long v = -1;
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmHWM: %ld", &v) == 1)
                    break;
            fclose(f);
            if (v >= 0)
                return v;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static const char *allocator_label(void)
{
    if (opt.alloc_name)
        return opt.alloc_name;
    const char *p = getenv("LD_PRELOAD");
    if (!p || !*p)
        return "glibc";
    if (strstr(p, "heaplib")) return "heaplib";
    if (strstr(p, "jemalloc")) return "jemalloc";
    if (strstr(p, "tcmalloc")) return "tcmalloc";
    if (strstr(p, "mimalloc")) return "mimalloc";
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* ---------------------------------------------------- per-thread state */

struct pcount {                     /* one cache line per worker */
    _Atomic uint64_t ops;
    _Atomic uint64_t aux;           /* workload specific (threads, writes ...) */
    _Atomic uint64_t aux2;
    char pad[64 - 3 * sizeof(uint64_t)];
} __attribute__((aligned(64)));

static struct pcount g_count[MAX_THREADS];
static atomic_int g_stop;
static pthread_barrier_t g_start;

static __thread int t_tid = -1;     /* -1 = main thread */
static __thread const char *t_wl = "none";

struct worker {
    int tid;
    int nthreads;
    uint64_t ops;                   /* local copy of g_count[tid].ops */
    struct rng rng;
} __attribute__((aligned(64)));

static inline void count_ops(struct worker *w, uint64_t n)
{
    w->ops += n;
    atomic_store_explicit(&g_count[w->tid].ops, w->ops, memory_order_relaxed);
}

static inline void count_aux(struct worker *w, uint64_t n)
{
    atomic_fetch_add_explicit(&g_count[w->tid].aux, n, memory_order_relaxed);
}

static inline bool keep_going(const struct worker *w)
{
    if (opt.ops)
        return w->ops < opt.ops;
    return !atomic_load_explicit(&g_stop, memory_order_relaxed);
}

/* -------------------------------------------------------------- verification */

struct blk {
    unsigned char *p;
    uint32_t size;
    int32_t owner;                  /* tid of the allocating thread */
};

static inline uint64_t blk_hash(const void *p, size_t size)
{
    return mix64((uint64_t)(uintptr_t)p ^ ((uint64_t)size << 40) ^ 0x2545f4914f6cdd1dULL);
}

#define PAT_K 0x9e3779b97f4a7c15ULL

/* Expected word at offset off: hh + off * kk, stored in native byte order;
 * (hh, kk) = (hash, PAT_K) for a patterned block, (0, 0) for calloc memory.
 * A word cut short (block tail, realloc limit) holds the first bytes of the
 * native representation. */
static inline uint64_t pat_word(uint64_t h, size_t off)
{
    return h + (uint64_t)off * PAT_K;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void store64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void fail_null(const char *fn, size_t size)
{
    char tb[16];
    if (t_tid < 0) snprintf(tb, sizeof tb, "main");
    else snprintf(tb, sizeof tb, "%d", t_tid);
    fprintf(stderr, PROG ": FAIL workload=%s thread=%s %s(%zu) returned NULL\n",
            t_wl, tb, fn, size);
    _exit(2);
}

static void __attribute__((noinline, cold))
fail_pattern(const unsigned char *p, size_t size, size_t off, size_t n,
             uint64_t expected)
{
    uint64_t found = 0, exp = 0;
    memcpy(&found, p + off, n);
    memcpy(&exp, &expected, n);
    char tb[16];
    if (t_tid < 0) snprintf(tb, sizeof tb, "main");
    else snprintf(tb, sizeof tb, "%d", t_tid);
    fprintf(stderr, PROG ": FAIL workload=%s thread=%s block=%p size=%zu offset=%zu "
            "expected=0x%0*llx found=0x%0*llx\n", t_wl, tb, (const void *)p, size, off,
            (int)(2 * n), (unsigned long long)exp, (int)(2 * n), (unsigned long long)found);
    _exit(2);
}

/* slow path: compare position by position below limit; report the first mismatch */
static void check_word_slow(const unsigned char *p, size_t layout, size_t off, size_t len,
                            size_t limit, uint64_t hh, uint64_t kk)
{
    if (off >= limit)
        return;
    size_t n = len < limit - off ? len : limit - off;
    uint64_t e = hh + (uint64_t)off * kk;
    unsigned char eb[8];
    memcpy(eb, &e, 8);
    for (size_t i = 0; i < n; i++)
        if (p[off + i] != eb[i])
            fail_pattern(p, layout, off, n, e);
}

static void __attribute__((noinline))
check_slow(const unsigned char *p, size_t layout, size_t limit, uint64_t hh, uint64_t kk)
{
    if (layout <= FULL_CHECK_MAX) {
        size_t off = 0;
        for (; off + 8 <= layout; off += 8)
            check_word_slow(p, layout, off, 8, limit, hh, kk);
        if (off < layout)
            check_word_slow(p, layout, off, layout - off, limit, hh, kk);
        return;
    }
    check_word_slow(p, layout, 0, 8, limit, hh, kk);
    for (size_t off = PAGE_STRIDE; off + 16 <= layout; off += PAGE_STRIDE)
        check_word_slow(p, layout, off, 8, limit, hh, kk);
    check_word_slow(p, layout, layout - 8, 8, limit, hh, kk);
}

/*
 * Check the pattern of a block laid out for `layout` bytes with hash h,
 * looking only at bytes below `limit` (realloc prefix), in block p (which
 * may be at another address than the one h was made from).
 * zero: expect zeros at the same positions (calloc).
 */
static inline void check_block(const unsigned char *p, size_t layout, size_t limit,
                               uint64_t h, bool zero)
{
    if (!opt.verify && !zero)
        return;
    uint64_t hh = zero ? 0 : h, kk = zero ? 0 : PAT_K;
    if (limit >= layout) {
        uint64_t bad = 0;
        if (layout <= FULL_CHECK_MAX) {
            size_t off = 0;
            uint64_t e = hh;
            for (; off + 8 <= layout; off += 8, e += 8 * kk)
                bad |= load64(p + off) ^ e;
            if (off < layout) {
                unsigned char eb[8];
                memcpy(eb, &e, 8);
                for (size_t i = 0; off + i < layout; i++)
                    bad |= (uint64_t)(p[off + i] ^ eb[i]);
            }
        } else {
            bad |= load64(p) ^ hh;
            for (size_t off = PAGE_STRIDE; off + 16 <= layout; off += PAGE_STRIDE)
                bad |= load64(p + off) ^ (hh + (uint64_t)off * kk);
            bad |= load64(p + layout - 8) ^ (hh + (uint64_t)(layout - 8) * kk);
        }
        if (__builtin_expect(!bad, 1))
            return;
    }
    check_slow(p, layout, limit, hh, kk);
}

static inline void fill_block(unsigned char *p, size_t size)
{
    uint64_t h = blk_hash(p, size);
    if (size <= FULL_CHECK_MAX) {
        size_t off = 0;
        uint64_t e = h;
        for (; off + 8 <= size; off += 8, e += 8 * PAT_K)
            store64(p + off, e);
        if (off < size) {
            unsigned char eb[8];
            memcpy(eb, &e, 8);
            for (size_t i = 0; off + i < size; i++)
                p[off + i] = eb[i];
        }
        return;
    }
    store64(p, h);
    for (size_t off = PAGE_STRIDE; off + 16 <= size; off += PAGE_STRIDE)
        store64(p + off, pat_word(h, off));
    store64(p + size - 8, pat_word(h, size - 8));
}

#ifdef STRESS_SELFTEST_CORRUPT
static atomic_int g_selftest_done;
#endif

static inline void blk_new(struct blk *b, size_t size, bool zero)
{
    unsigned char *p = zero ? calloc(1, size) : malloc(size);
    if (__builtin_expect(!p, 0))
        fail_null(zero ? "calloc" : "malloc", size);
    if (zero)
        check_block(p, size, size, 0, true);
    fill_block(p, size);
    b->p = p;
    b->size = (uint32_t)size;
    b->owner = t_tid;
}

static inline void check_before_free(unsigned char *p, size_t size)
{
#ifdef STRESS_SELFTEST_CORRUPT
    if (t_tid >= 0 && size >= 8 && opt.verify &&
        !atomic_exchange(&g_selftest_done, 1)) {
        size_t off = size <= FULL_CHECK_MAX ? size / 2 : 0;
        fprintf(stderr, PROG ": selftest: corrupting byte %zu of block %p (size %zu)\n",
                off, (void *)p, size);
        p[off] ^= 0xA5;
    }
#endif
    check_block(p, size, size, blk_hash(p, size), false);
}

static inline void blk_free(struct blk *b)
{
    check_before_free(b->p, b->size);
    free(b->p);
    b->p = NULL;
}

/* returns true if the block moved */
static bool blk_realloc(struct blk *b, size_t ns)
{
    size_t os = b->size;
    uint64_t oh = blk_hash(b->p, os);
    uintptr_t old = (uintptr_t)b->p;
    check_before_free(b->p, os);
    unsigned char *np = realloc(b->p, ns);
    if (!np)
        fail_null("realloc", ns);
    check_block(np, os, os < ns ? os : ns, oh, false);
    fill_block(np, ns);
    b->p = np;
    b->size = (uint32_t)ns;
    b->owner = t_tid;
    return (uintptr_t)np != old;
}

/* -------------------------------------------------------------- workloads */

struct wl_result_extra { const char *name; double value; };

struct workload {
    const char *name;
    void *(*thread_fn)(void *);
    void (*setup)(int nthreads);            /* main, before threads; may be NULL */
    void (*teardown)(int nthreads, double secs, struct wl_result_extra *ex);
    const char *desc;
};

static void start_barrier(void) { pthread_barrier_wait(&g_start); }

static uint64_t sum_aux(int n, int which)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += which == 1 ? atomic_load(&g_count[i].aux) : atomic_load(&g_count[i].aux2);
    return s;
}

static uint64_t sum_ops(int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += atomic_load_explicit(&g_count[i].ops, memory_order_relaxed);
    return s;
}

/* ---- fastpath: malloc/free pairs, each thread on its own */

static void *fastpath_thread(void *arg)
{
    struct worker *w = arg;
    struct blk b;
    start_barrier();
    while (keep_going(w)) {
        blk_new(&b, rng_size(&w->rng), false);
        blk_free(&b);
        count_ops(w, 2);
    }
    return NULL;
}

static void fastpath_done(int n, double secs, struct wl_result_extra *ex)
{
    uint64_t ops = sum_ops(n);
    ex->name = "ns_per_pair";
    ex->value = ops ? secs * n * 1e9 / ((double)ops / 2) : 0;
}

/* ---- server (larson shape): slot arrays, random replacement, arrays handed on.
 * A thread replaces every slot of the array it holds once, in a random order
 * and with random sizes, then puts the array at the back of a shared FIFO
 * pool (mutex-protected) and takes the oldest array there that another thread
 * held last.  So with two or more threads nearly every free is remote. */

#define SRV_SLOTS 1000

struct srv_ent { struct blk *a; int holder; };

static struct {
    pthread_mutex_t mu;
    struct srv_ent *pool;           /* FIFO, oldest first */
    int count, cap;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct blk *srv_new_array(struct rng *r)
{
    struct blk *a = calloc(SRV_SLOTS, sizeof *a);
    if (!a)
        fail_null("calloc", SRV_SLOTS * sizeof *a);
    for (int i = 0; i < SRV_SLOTS; i++)
        blk_new(&a[i], rng_size(r), false);
    return a;
}

static void srv_free_array(struct blk *a)
{
    for (int i = 0; i < SRV_SLOTS; i++)
        if (a[i].p)
            blk_free(&a[i]);
    free(a);
}

static void server_setup(int n)
{
    struct rng r = { opt.seed ^ 0x5e17e5ULL };
    srv.cap = 2 * n;                        /* n held by threads + n spares */
    srv.pool = calloc((size_t)srv.cap, sizeof *srv.pool);
    if (!srv.pool)
        fail_null("calloc", (size_t)srv.cap * sizeof *srv.pool);
    for (srv.count = 0; srv.count < n; srv.count++) {
        srv.pool[srv.count].a = srv_new_array(&r);
        srv.pool[srv.count].holder = -1;
    }
}

static struct blk *srv_exchange(struct blk *a, int tid, int nthreads)
{
    pthread_mutex_lock(&srv.mu);
    int k = 0;
    while (k < srv.count && srv.pool[k].holder == tid)
        k++;
    if (k == srv.count && nthreads > 1) {
        /* Only arrays we held ourselves: the others have not run for a while
           (more threads than cores).  Let them run once, then look again. */
        pthread_mutex_unlock(&srv.mu);
        sched_yield();
        pthread_mutex_lock(&srv.mu);
        for (k = 0; k < srv.count && srv.pool[k].holder == tid; k++)
            ;
    }
    if (k == srv.count)                     /* still only ours: the oldest */
        k = 0;
    struct blk *in = srv.pool[k].a;
    memmove(&srv.pool[k], &srv.pool[k + 1], (size_t)(srv.count - k - 1) * sizeof *srv.pool);
    srv.pool[srv.count - 1].a = a;
    srv.pool[srv.count - 1].holder = tid;
    pthread_mutex_unlock(&srv.mu);
    return in;
}

static void *server_thread(void *arg)
{
    struct worker *w = arg;
    struct blk *a = srv_new_array(&w->rng);
    uint16_t perm[SRV_SLOTS];
    for (int i = 0; i < SRV_SLOTS; i++)
        perm[i] = (uint16_t)i;
    uint64_t remote = 0, frees = 0;
    start_barrier();
    while (keep_going(w)) {
        for (int i = SRV_SLOTS - 1; i > 0; i--) {           /* random order */
            int j = (int)rng_below(&w->rng, (uint64_t)i + 1);
            uint16_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        for (int i = 0; i < SRV_SLOTS && keep_going(w); i++) {
            struct blk *b = &a[perm[i]];
            remote += b->owner != w->tid;
            frees++;
            blk_free(b);
            blk_new(b, rng_size(&w->rng), (rng_next(&w->rng) & 15) == 0);
            count_ops(w, 2);
        }
        a = srv_exchange(a, w->tid, w->nthreads);
    }
    for (int i = 0; i < SRV_SLOTS; i++) {
        remote += a[i].owner != w->tid;
        frees++;
    }
    srv_free_array(a);
    count_ops(w, SRV_SLOTS);
    atomic_store(&g_count[w->tid].aux, remote);
    atomic_store(&g_count[w->tid].aux2, frees);
    return NULL;
}

static void server_done(int n, double secs, struct wl_result_extra *ex)
{
    (void)secs;
    for (int i = 0; i < srv.count; i++)
        srv_free_array(srv.pool[i].a);
    free(srv.pool);
    srv.pool = NULL;
    srv.count = 0;
    uint64_t remote = sum_aux(n, 1), frees = sum_aux(n, 2);
    ex->name = "remote_free_pct";
    ex->value = frees ? 100.0 * (double)remote / (double)frees : 0;
}

/* ---- prodcons (xmalloc shape): producers allocate, consumers free */

#define PC_BATCH 64
#define PC_QCAP 16

struct pc_batch { int n; struct blk b[PC_BATCH]; };

struct pc_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    int head, count, producers_left;
    struct pc_batch ring[PC_QCAP];
};

static struct { int nprod, ncons; struct pc_queue *q; } pc;

static void pc_setup(int n)
{
    pc.nprod = n == 1 ? 1 : (n + 1) / 2;
    pc.ncons = n == 1 ? 0 : n - pc.nprod;
    int nq = pc.ncons ? pc.ncons : 1;
    pc.q = calloc((size_t)nq, sizeof *pc.q);
    if (!pc.q)
        fail_null("calloc", nq * sizeof *pc.q);
    for (int i = 0; i < nq; i++) {
        pthread_mutex_init(&pc.q[i].mu, NULL);
        pthread_cond_init(&pc.q[i].not_empty, NULL);
        pthread_cond_init(&pc.q[i].not_full, NULL);
    }
    for (int p = 0; p < pc.nprod; p++)
        pc.q[pc.ncons ? p % pc.ncons : 0].producers_left++;
}

static void pc_push(struct pc_queue *q, const struct pc_batch *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == PC_QCAP)
        pthread_cond_wait(&q->not_full, &q->mu);
    struct pc_batch *dst = &q->ring[(q->head + q->count) % PC_QCAP];
    dst->n = b->n;
    memcpy(dst->b, b->b, (size_t)b->n * sizeof b->b[0]);
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* false when the queue is drained and all its producers are done */
static bool pc_pop(struct pc_queue *q, struct pc_batch *b)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && q->producers_left > 0)
        pthread_cond_wait(&q->not_empty, &q->mu);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    struct pc_batch *src = &q->ring[q->head];
    b->n = src->n;
    memcpy(b->b, src->b, (size_t)src->n * sizeof src->b[0]);
    q->head = (q->head + 1) % PC_QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return true;
}

static void *prodcons_thread(void *arg)
{
    struct worker *w = arg;
    struct pc_batch *b = malloc(sizeof *b);
    if (!b)
        fail_null("malloc", sizeof *b);
    start_barrier();
    if (w->nthreads == 1) {                 /* alternate both roles */
        while (keep_going(w)) {
            b->n = 0;
            while (b->n < PC_BATCH && keep_going(w)) {
                blk_new(&b->b[b->n++], rng_size(&w->rng), false);
                count_ops(w, 1);
            }
            for (int i = 0; i < b->n; i++)
                blk_free(&b->b[i]);
            count_ops(w, (uint64_t)b->n);
            count_aux(w, (uint64_t)b->n);
        }
    } else if (w->tid < pc.nprod) {         /* producer */
        struct pc_queue *q = &pc.q[w->tid % pc.ncons];
        while (keep_going(w)) {
            b->n = 0;
            while (b->n < PC_BATCH && keep_going(w)) {
                blk_new(&b->b[b->n++], rng_size(&w->rng), false);
                count_ops(w, 1);
            }
            if (b->n)
                pc_push(q, b);
        }
        pthread_mutex_lock(&q->mu);
        q->producers_left--;
        pthread_cond_broadcast(&q->not_empty);
        pthread_mutex_unlock(&q->mu);
    } else {                                /* consumer */
        struct pc_queue *q = &pc.q[w->tid - pc.nprod];
        while (pc_pop(q, b)) {
            for (int i = 0; i < b->n; i++)
                blk_free(&b->b[i]);
            count_ops(w, (uint64_t)b->n);
            count_aux(w, (uint64_t)b->n);
        }
    }
    free(b);
    return NULL;
}

static void prodcons_done(int n, double secs, struct wl_result_extra *ex)
{
    int nq = pc.ncons ? pc.ncons : 1;
    for (int i = 0; i < nq; i++) {
        pthread_mutex_destroy(&pc.q[i].mu);
        pthread_cond_destroy(&pc.q[i].not_empty);
        pthread_cond_destroy(&pc.q[i].not_full);
    }
    free(pc.q);
    pc.q = NULL;
    ex->name = "Mblocks_per_sec";
    ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs / 1e6 : 0;
}

/* ---- batches (threadtest shape): allocate K, free all K, repeat */

#define BATCH_K 2000

static void *batches_thread(void *arg)
{
    struct worker *w = arg;
    struct blk *a = calloc(BATCH_K, sizeof *a);
    if (!a)
        fail_null("calloc", BATCH_K * sizeof *a);
    start_barrier();
    while (keep_going(w)) {
        int k = 0;
        while (k < BATCH_K && keep_going(w)) {
            blk_new(&a[k++], rng_size(&w->rng), (rng_next(&w->rng) & 7) == 0);
            count_ops(w, 1);
        }
        for (int i = 0; i < k; i++)
            blk_free(&a[i]);
        count_ops(w, (uint64_t)k);
        if (k == BATCH_K)
            count_aux(w, 1);
    }
    free(a);
    return NULL;
}

static void batches_done(int n, double secs, struct wl_result_extra *ex)
{
    ex->name = "rounds_per_sec";
    ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs : 0;
}

/* ---- falseshare (cache-scratch shape) */

#define FS_PASSES 100              /* write passes over each object */

static struct { _Atomic(unsigned char *) *box; size_t size; } fs;

static void falseshare_setup(int n)
{
    fs.size = opt.min_size;
    fs.box = calloc((size_t)n, sizeof *fs.box);
    if (!fs.box)
        fail_null("calloc", n * sizeof *fs.box);
    /* the first object every thread frees was allocated by main */
    for (int i = 0; i < n; i++) {
        struct blk b;
        blk_new(&b, fs.size, false);
        atomic_store(&fs.box[i], b.p);
    }
}

static void *falseshare_thread(void *arg)
{
    struct worker *w = arg;
    size_t sz = fs.size;
    uint64_t writes = 0;
    start_barrier();
    while (keep_going(w)) {
        unsigned char *got = atomic_exchange(&fs.box[w->tid], NULL);
        if (got) {                      /* object handed from the neighbour */
            check_before_free(got, sz);
            free(got);
            count_ops(w, 1);
        }
        struct blk b;
        blk_new(&b, sz, false);
        count_ops(w, 1);
        volatile unsigned char *v = b.p;
        for (int pass = 0; pass < FS_PASSES; pass++)
            for (size_t i = 0; i < sz; i++)
                v[i] = (unsigned char)(v[i] + 1);
        writes += (uint64_t)FS_PASSES * sz;
        fill_block(b.p, sz);
        unsigned char *old = atomic_exchange(&fs.box[(w->tid + 1) % w->nthreads], b.p);
        if (old) {                      /* our previous one, not taken yet */
            check_before_free(old, sz);
            free(old);
            count_ops(w, 1);
        }
    }
    atomic_store(&g_count[w->tid].aux, writes);
    return NULL;
}

static void falseshare_done(int n, double secs, struct wl_result_extra *ex)
{
    for (int i = 0; i < n; i++) {
        unsigned char *p = atomic_exchange(&fs.box[i], NULL);
        if (p) {
            check_before_free(p, fs.size);
            free(p);
        }
    }
    free(fs.box);
    fs.box = NULL;
    ex->name = "Mwrites_per_sec";
    ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs / 1e6 : 0;
}

/* ---- churn: threads created and joined continually */

#define CHURN_BLOCKS 300
#define CHURN_KEEP 100             /* handed back to the parent, freed after join */

struct churn_child {
    struct worker *w;
    struct blk keep[CHURN_KEEP];
};

static void *churn_child_fn(void *arg)
{
    struct churn_child *c = arg;
    struct worker *w = c->w;
    t_tid = w->tid;
    t_wl = "churn";
    struct blk a[CHURN_BLOCKS - CHURN_KEEP];
    int n = CHURN_BLOCKS - CHURN_KEEP;
    for (int i = 0; i < n; i++)
        blk_new(&a[i], rng_size(&w->rng), false);
    for (int i = 0; i < CHURN_KEEP; i++)
        blk_new(&c->keep[i], rng_size(&w->rng), false);
    for (int i = 0; i < n; i++)
        blk_free(&a[i]);
    count_ops(w, CHURN_BLOCKS + (uint64_t)n);  /* allocations + own frees */
    return NULL;
}

static void *churn_thread(void *arg)
{
    struct worker *w = arg;
    struct churn_child *c = malloc(sizeof *c);
    if (!c)
        fail_null("malloc", sizeof *c);
    c->w = w;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    start_barrier();
    while (keep_going(w)) {
        pthread_t th;
        int e = pthread_create(&th, &attr, churn_child_fn, c);
        if (e) {
            fprintf(stderr, PROG ": FAIL workload=churn thread=%d pthread_create: %s\n",
                    w->tid, strerror(e));
            _exit(2);
        }
        pthread_join(th, NULL);
        for (int i = 0; i < CHURN_KEEP; i++)   /* blocks of a dead thread */
            blk_free(&c->keep[i]);
        count_ops(w, CHURN_KEEP);
        count_aux(w, 1);
    }
    pthread_attr_destroy(&attr);
    free(c);
    return NULL;
}

static void churn_done(int n, double secs, struct wl_result_extra *ex)
{
    ex->name = "threads_per_sec";
    ex->value = secs > 0 ? (double)sum_aux(n, 1) / secs : 0;
}

/* ---- blowup: fill with class A, free 90%, fill the hole with class B */

#define BLOW_BUDGET (8u << 20)     /* live bytes per thread at the A peak */
#define BLOW_SA 64
#define BLOW_SB 384

static _Atomic int64_t g_live, g_peak_live;

static void live_flush(int64_t *pending)
{
    int64_t v = atomic_fetch_add(&g_live, *pending) + *pending;
    *pending = 0;
    int64_t pk = atomic_load(&g_peak_live);
    while (v > pk && !atomic_compare_exchange_weak(&g_peak_live, &pk, v))
        ;
}

static void blowup_setup(int n)
{
    (void)n;
    atomic_store(&g_live, 0);
    atomic_store(&g_peak_live, 0);
}

static void *blowup_thread(void *arg)
{
    struct worker *w = arg;
    size_t cap = BLOW_BUDGET / BLOW_SA;
    unsigned char **a = calloc(cap, sizeof *a);
    if (!a)
        fail_null("calloc", cap * sizeof *a);
    int64_t pending = 0;
    start_barrier();
    for (unsigned round = 0; keep_going(w); round++) {
        size_t sa = round & 1 ? BLOW_SB : BLOW_SA;
        size_t sb = round & 1 ? BLOW_SA : BLOW_SB;
        size_t na = 0, nsurv = 0, nb = 0;
        struct blk b;
        /* phase 1: class A up to the budget */
        while (na < BLOW_BUDGET / sa && keep_going(w)) {
            blk_new(&b, sa, false);
            a[na++] = b.p;
            pending += (int64_t)sa;
            count_ops(w, 1);
            if ((na & 255) == 0)
                live_flush(&pending);
        }
        live_flush(&pending);
        /* phase 2: free 90% at random, compact the survivors */
        size_t freed_bytes = 0;
        for (size_t i = 0; i < na; i++) {
            if (rng_below(&w->rng, 10) == 0) {
                a[nsurv++] = a[i];
            } else {
                check_before_free(a[i], sa);
                free(a[i]);
                freed_bytes += sa;
                pending -= (int64_t)sa;
                count_ops(w, 1);
            }
        }
        live_flush(&pending);
        /* phase 3: class B into the hole */
        size_t want = freed_bytes / sb;
        while (nb < want && keep_going(w)) {
            blk_new(&b, sb, false);
            a[nsurv + nb++] = b.p;
            pending += (int64_t)sb;
            count_ops(w, 1);
            if ((nb & 255) == 0)
                live_flush(&pending);
        }
        live_flush(&pending);
        /* phase 4: free everything */
        for (size_t i = 0; i < nsurv + nb; i++) {
            size_t s = i < nsurv ? sa : sb;
            check_before_free(a[i], s);
            free(a[i]);
            pending -= (int64_t)s;
        }
        count_ops(w, nsurv + nb);
        live_flush(&pending);
        if (nb == want)
            count_aux(w, 1);
    }
    free(a);
    return NULL;
}

static void blowup_done(int n, double secs, struct wl_result_extra *ex)
{
    (void)n; (void)secs;
    ex->name = "peak_live_mib";
    ex->value = (double)atomic_load(&g_peak_live) / (1 << 20);
}

/* ---- large: 64 KiB - 8 MiB blocks, realloc growth */

#define LARGE_SLOTS 4

static size_t large_size(struct rng *r)
{
    unsigned shift = (unsigned)rng_below(r, 7);           /* 64K .. 4M base */
    size_t base = (size_t)LARGE_MIN << shift;
    size_t s = base + (size_t)rng_below(r, base);
    return s > LARGE_MAX ? LARGE_MAX : s;
}

static void *large_thread(void *arg)
{
    struct worker *w = arg;
    struct blk s[LARGE_SLOTS];
    memset(s, 0, sizeof s);
    uint64_t reallocs = 0, moved = 0;
    start_barrier();
    while (keep_going(w)) {
        struct blk *b = &s[rng_below(&w->rng, LARGE_SLOTS)];
        if (!b->p) {
            blk_new(b, large_size(&w->rng), rng_below(&w->rng, 8) == 0);
            count_ops(w, 1);
            continue;
        }
        unsigned r = (unsigned)rng_below(&w->rng, 8);
        if (r < 4 && b->size < LARGE_MAX) {                  /* grow */
            size_t ns = b->size + b->size / 2 + (size_t)rng_below(&w->rng, 65536);
            if (ns > LARGE_MAX)
                ns = LARGE_MAX;
            moved += blk_realloc(b, ns);
            reallocs++;
        } else if (r == 4 && b->size >= 2 * LARGE_MIN) {     /* shrink */
            moved += blk_realloc(b, b->size / 2);
            reallocs++;
        } else {
            blk_free(b);
        }
        count_ops(w, 1);
    }
    for (int i = 0; i < LARGE_SLOTS; i++)
        if (s[i].p) {
            blk_free(&s[i]);
            count_ops(w, 1);
        }
    atomic_store(&g_count[w->tid].aux, moved);
    atomic_store(&g_count[w->tid].aux2, reallocs);
    return NULL;
}

static void large_done(int n, double secs, struct wl_result_extra *ex)
{
    (void)secs;
    uint64_t moved = sum_aux(n, 1), re = sum_aux(n, 2);
    ex->name = "realloc_moved_pct";
    ex->value = re ? 100.0 * (double)moved / (double)re : 0;
}

/* ---- regions: tasks on several regions with constraints (heaplib only) */

#define RG_SLOTS 256
#define RG_N 3

static struct {
    int (*region_create)(const hl_region_attr_t *, hl_region_t **);
    int (*region_delete)(hl_region_t *);
    int (*region_stats)(const hl_region_t *, hl_region_stats_t *);
    hl_region_t *(*region_of)(const void *);
    hl_region_t *(*region_default)(void);
    int (*alloc)(size_t, const hl_place_t *, unsigned, void **);
    void (*free)(void *);
    int (*task_create)(const hl_task_attr_t *, hl_task_t **);
    int (*task_join)(hl_task_t *);
    int (*task_destroy)(hl_task_t *);
    const char *(*strerror)(hl_error_t);
    hl_region_t *reg[RG_N];
    hl_task_t *task[2];
} rg;

static void *rg_sym(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f)
        die("the regions workload needs heaplib (%s not found): run it with "
            "LD_PRELOAD=libheaplib.so", name);
    return f;
}

static void regions_setup(int n)
{
    (void)n;
    rg.region_create = rg_sym("hl_region_create");
    rg.region_delete = rg_sym("hl_region_delete");
    rg.region_stats = rg_sym("hl_region_stats");
    rg.region_of = rg_sym("hl_region_of");
    rg.region_default = rg_sym("hl_region_default");
    rg.alloc = rg_sym("hl_alloc");
    rg.free = rg_sym("hl_free");
    rg.task_create = rg_sym("hl_task_create");
    rg.task_join = rg_sym("hl_task_join");
    rg.task_destroy = rg_sym("hl_task_destroy");
    rg.strerror = rg_sym("hl_strerror");
    static const struct { const char *name; unsigned reach; int secure, node; size_t cap; } def[RG_N] = {
        { "local", HL_REACH_SYS, 0, 2, 64u << 20 },
        { "cluster", HL_REACH_SYS | HL_REACH_CLUSTER, 0, 1, 64u << 20 },
        { "secure", HL_REACH_SYS, 1, 0, 16u << 20 },
    };
    for (int i = 0; i < RG_N; i++) {
        hl_region_attr_t a;
        memset(&a, 0, sizeof a);
        a.struct_size = sizeof a;
        a.name = def[i].name;
        a.reach = def[i].reach;
        a.secure = def[i].secure;
        a.node = def[i].node;
        a.capacity = def[i].cap;
        int e = rg.region_create(&a, &rg.reg[i]);
        if (e)
            die("hl_region_create(%s): %s", def[i].name, rg.strerror(e));
    }
    for (int i = 0; i < 2; i++) {
        hl_task_attr_t t;
        memset(&t, 0, sizeof t);
        t.struct_size = sizeof t;
        t.name = i ? "tenant-b" : "tenant-a";
        int e = rg.task_create(&t, &rg.task[i]);
        if (e)
            die("hl_task_create: %s", rg.strerror(e));
    }
}

static void __attribute__((noreturn, cold))
rg_misplaced(const void *p, const char *want, hl_region_t *got)
{
    fprintf(stderr, PROG ": FAIL workload=regions thread=%d block=%p: placed in region %p, "
            "which does not satisfy %s\n", t_tid, p, (void *)got, want);
    exit(2);
}

static void *regions_thread(void *arg)
{
    struct worker *w = arg;
    struct blk slot[RG_SLOTS];
    memset(slot, 0, sizeof slot);
    rg.task_join(rg.task[w->tid % 2]);
    start_barrier();
    while (keep_going(w)) {
        struct blk *b = &slot[rng_below(&w->rng, RG_SLOTS)];
        if (b->p) {
            check_before_free(b->p, b->size);
            rg.free(b->p);
            b->p = NULL;
            count_ops(w, 1);
        }
        size_t size = rng_size(&w->rng);
        unsigned kind = (unsigned)rng_below(&w->rng, 10);
        hl_place_t pl = { .reach = HL_REACH_SYS, .node = (int)rng_below(&w->rng, 3), .region = NULL };
        unsigned flags = 0;
        if (kind >= 5 && kind < 8)
            pl.reach = HL_REACH_CLUSTER;
        else if (kind >= 8)
            flags = HL_SECURE;
        void *p = NULL;
        int e = rg.alloc(size, &pl, flags, &p);
        if (e == HL_ENOMEM)
            continue;
        if (e)
            die("hl_alloc(%zu): %s", size, rg.strerror(e));
        hl_region_t *got = rg.region_of(p);
        if (pl.reach == HL_REACH_CLUSTER && got != rg.reg[1])
            rg_misplaced(p, "reach CLUSTER", got);
        if (flags & HL_SECURE && got != rg.reg[2])
            rg_misplaced(p, "secure", got);
        if (!got)
            rg_misplaced(p, "reach SYS", got);
        fill_block(p, size);
        b->p = p;
        b->size = (uint32_t)size;
        b->owner = t_tid;
        count_ops(w, 1);
        count_aux(w, 1);
    }
    for (int i = 0; i < RG_SLOTS; i++)
        if (slot[i].p) {
            check_before_free(slot[i].p, slot[i].size);
            rg.free(slot[i].p);
        }
    rg.task_join(NULL);
    return NULL;
}

static void regions_done(int n, double secs, struct wl_result_extra *ex)
{
    (void)secs;
    ex->name = "placements_checked";
    ex->value = (double)sum_aux(n, 1);
    for (int i = 0; i < RG_N; i++) {
        hl_region_stats_t st = { .struct_size = sizeof st };
        rg.region_stats(rg.reg[i], &st);
        fprintf(stderr, PROG ": regions: region %d: %llu allocs, %llu frees, %llu live after the run, "
                "%llu bytes backed of %llu\n", i, (unsigned long long)st.allocs,
                (unsigned long long)st.frees, (unsigned long long)st.blocks_live,
                (unsigned long long)st.bytes_backed, (unsigned long long)st.capacity);
        if (st.blocks_live || st.bytes_live)
            die("regions: region %d still has %llu blocks live after every thread freed its own",
                i, (unsigned long long)st.blocks_live);
        int e = rg.region_delete(rg.reg[i]);
        if (e)
            die("hl_region_delete: %s", rg.strerror(e));
    }
    for (int i = 0; i < 2; i++)
        rg.task_destroy(rg.task[i]);
}

static const struct workload workloads[] = {
    { "fastpath", fastpath_thread, NULL, fastpath_done,
      "malloc/free pairs of 16-512 B, each thread on its own" },
    { "server", server_thread, server_setup, server_done,
      "larson shape: random slot replacement, slot arrays handed between threads" },
    { "prodcons", prodcons_thread, pc_setup, prodcons_done,
      "xmalloc shape: half the threads allocate, the other half free" },
    { "batches", batches_thread, NULL, batches_done,
      "threadtest shape: allocate 2000, free them all, repeat" },
    { "falseshare", falseshare_thread, falseshare_setup, falseshare_done,
      "cache-scratch shape: objects freed/reallocated by another thread, written hard" },
    { "churn", churn_thread, NULL, churn_done,
      "threads created and joined continually, 300 blocks each" },
    { "blowup", blowup_thread, blowup_setup, blowup_done,
      "8 MiB/thread of class A, free 90%, refill with class B: peak RSS vs live" },
    { "large", large_thread, NULL, large_done,
      "64 KiB - 8 MiB blocks with realloc growth" },
    /* heaplib only, and not part of "all": keep it last */
    { "regions", regions_thread, regions_setup, regions_done,
      "heaplib only: 2 tasks, 3 regions (local on node 2, cluster on node 1, secure) and the\n"
      "              default (node 0); every block's region checked against its constraint" },
};
#define NWORKLOADS (int)(sizeof workloads / sizeof workloads[0])
#define NWORKLOADS_ALL (NWORKLOADS - 1)   /* "all": the ones any allocator runs */

static const char *const mix_parts[] = { "server", "prodcons", "batches", "large" };

static const struct workload *find_workload(const char *name)
{
    for (int i = 0; i < NWORKLOADS; i++)
        if (!strcmp(workloads[i].name, name))
            return &workloads[i];
    return NULL;
}

/* expand "mix", "all" and comma lists into an array of names; returns count */
static int expand_workloads(const char *spec, const char **out, int max, bool *had_mix)
{
    int n = 0;
    char *dup = strdup(spec), *save = NULL;
    *had_mix = false;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "mix")) {
            *had_mix = true;
            for (int i = 0; i < 4 && n < max; i++)
                out[n++] = mix_parts[i];
        } else if (!strcmp(t, "all")) {
            for (int i = 0; i < NWORKLOADS_ALL && n < max; i++)
                out[n++] = workloads[i].name;
        } else {
            const struct workload *w = find_workload(t);
            if (!w)
                die("unknown workload '%s' (try --help)", t);
            if (n < max)
                out[n++] = w->name;
        }
    }
    free(dup);
    return n;
}

/* ---------------------------------------------------------------- monitor */

struct result {
    char workload[16];
    char allocator[32];
    int threads;
    uint64_t ops;
    double seconds, ops_per_sec;
    long peak_rss_kib, rss_start_kib, rss_end_kib;
    long rss_q1_kib;                /* at 25% of the duration (-1: not sampled) */
    char extra_name[32];
    double extra_value;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    const char *wl;
    int nthreads;
    double t0, duration;            /* duration 0 = ops mode */
    bool tty;
    long rss_q1;                    /* RSS sampled at 25% of the duration */
} mon = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *monitor_fn(void *arg)
{
    (void)arg;
    double interval = mon.tty ? 0.25 : 1.0;
    double next = mon.t0 + interval, last_t = mon.t0;
    uint64_t last_ops = 0;
    bool printed = false;
    pthread_mutex_lock(&mon.mu);
    while (!mon.done) {
        double wake = next;
        bool stop_set = atomic_load(&g_stop);
        if (mon.duration > 0 && !stop_set && mon.t0 + mon.duration < wake)
            wake = mon.t0 + mon.duration;
        if (mon.duration > 0 && mon.rss_q1 < 0 && mon.t0 + mon.duration / 4 < wake)
            wake = mon.t0 + mon.duration / 4;
        struct timespec ts;
        ts.tv_sec = (time_t)wake;
        ts.tv_nsec = (long)((wake - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&mon.cv, &mon.mu, &ts);
        if (mon.done)
            break;
        double t = now_sec();
        if (mon.duration > 0 && t >= mon.t0 + mon.duration)
            atomic_store(&g_stop, 1);
        if (mon.duration > 0 && mon.rss_q1 < 0 && t >= mon.t0 + mon.duration / 4)
            mon.rss_q1 = rss_kib();
        if (t < next)
            continue;
        next += interval;
        if (next < t)
            next = t + interval;
        if (opt.quiet)
            continue;
        uint64_t ops = sum_ops(mon.nthreads);
        double rate = t > last_t ? (double)(ops - last_ops) / (t - last_t) : 0;
        last_ops = ops;
        last_t = t;
        char when[64];
        double el = t - mon.t0;
        if (mon.duration > 0) {
            double rem = mon.duration - el;
            snprintf(when, sizeof when, "%5.1fs elapsed, %4.1fs left", el,
                     rem > 0 ? rem : 0);
        } else {
            double tot = (double)opt.ops * mon.nthreads;
            snprintf(when, sizeof when, "%5.1fs elapsed, %3.0f%% of ops", el,
                     tot > 0 ? 100.0 * (double)ops / tot : 0);
        }
        char mb[32];
        fprintf(stderr, "%s%-10s T=%-3d %s  %8s Mops/s  RSS %7.1f MiB  peak %7.1f MiB%s",
                mon.tty ? "\r" : "", mon.wl, mon.nthreads, when, fmt_mops(mb, sizeof mb, rate),
                rss_kib() / 1024.0, peak_rss_kib() / 1024.0, mon.tty ? "\033[K" : "\n");
        printed = true;
    }
    pthread_mutex_unlock(&mon.mu);
    if (printed && mon.tty)
        fputs("\r\033[K", stderr);
    return NULL;
}

struct tramp_arg { struct worker *w; void *(*fn)(void *); const char *wl; };

static void *worker_tramp(void *arg)
{
    struct tramp_arg *t = arg;
    t_tid = t->w->tid;
    t_wl = t->wl;
    return t->fn(t->w);
}

static void run_one(const struct workload *wl, int nthreads, double duration,
                    struct result *res)
{
    static struct worker wk[MAX_THREADS];
    static struct tramp_arg ta[MAX_THREADS];
    static pthread_t th[MAX_THREADS];
    pthread_t mth;

    memset(res, 0, sizeof *res);
    memset(g_count, 0, sizeof g_count);
    atomic_store(&g_stop, 0);
    t_wl = wl->name;
    if (wl->setup)
        wl->setup(nthreads);
    pthread_barrier_init(&g_start, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        wk[i].tid = i;
        wk[i].nthreads = nthreads;
        wk[i].ops = 0;
        wk[i].rng.s = mix64(opt.seed * 0x100000001b3ULL + (uint64_t)i + 1);
        ta[i].w = &wk[i];
        ta[i].fn = wl->thread_fn;
        ta[i].wl = wl->name;
    }
    hwm_reset();
    for (int i = 0; i < nthreads; i++) {
        int e = pthread_create(&th[i], NULL, worker_tramp, &ta[i]);
        if (e)
            die("pthread_create: %s", strerror(e));
    }
    pthread_barrier_wait(&g_start);
    double t0 = now_sec();
    res->rss_start_kib = rss_kib();
    pthread_mutex_lock(&mon.mu);
    mon.done = false;
    mon.wl = wl->name;
    mon.nthreads = nthreads;
    mon.t0 = t0;
    mon.duration = opt.ops ? 0 : duration;
    mon.tty = isatty(STDERR_FILENO);
    mon.rss_q1 = -1;
    pthread_mutex_unlock(&mon.mu);
    int e = pthread_create(&mth, NULL, monitor_fn, NULL);
    if (e)
        die("pthread_create (monitor): %s", strerror(e));
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double secs = now_sec() - t0;
    pthread_mutex_lock(&mon.mu);
    mon.done = true;
    pthread_cond_signal(&mon.cv);
    pthread_mutex_unlock(&mon.mu);
    pthread_join(mth, NULL);
    pthread_barrier_destroy(&g_start);
    res->rss_q1_kib = mon.rss_q1;

    res->peak_rss_kib = peak_rss_kib();
    res->rss_end_kib = rss_kib();
    struct wl_result_extra ex = { "", 0 };
    wl->teardown(nthreads, secs, &ex);
    snprintf(res->workload, sizeof res->workload, "%s", wl->name);
    snprintf(res->allocator, sizeof res->allocator, "%s", allocator_label());
    res->threads = nthreads;
    res->ops = sum_ops(nthreads);
    res->seconds = secs;
    res->ops_per_sec = secs > 0 ? (double)res->ops / secs : 0;
    snprintf(res->extra_name, sizeof res->extra_name, "%s", ex.name);
    res->extra_value = ex.value;
    t_wl = "none";
}

/* ------------------------------------------------------------ reporting */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* one JSON object; status/run < 0 are left out */
static void json_result(FILE *f, const struct result *r, int run, const char *status)
{
    fprintf(f, "  {\"workload\": ");
    json_str(f, r->workload);
    fprintf(f, ", \"threads\": %d, \"ops\": %llu, \"seconds\": %.6f, \"ops_per_sec\": %.1f, "
            "\"peak_rss_kib\": %ld, \"extra_name\": ", r->threads,
            (unsigned long long)r->ops, r->seconds, r->ops_per_sec, r->peak_rss_kib);
    json_str(f, r->extra_name);
    fprintf(f, ", \"extra_value\": %.6g, \"allocator\": ", r->extra_value);
    json_str(f, r->allocator);
    fprintf(f, ", \"rss_start_kib\": %ld, \"rss_q1_kib\": %ld, \"rss_end_kib\": %ld",
            r->rss_start_kib, r->rss_q1_kib, r->rss_end_kib);
    if (run >= 0)
        fprintf(f, ", \"run\": %d", run);
    if (status) {
        fprintf(f, ", \"status\": ");
        json_str(f, status);
    }
    fputc('}', f);
}

static void print_table(const struct result *r, int n)
{
    printf("\nheaplib-stress results (allocator: %s; ops = malloc/calloc/realloc/free calls)\n",
           n ? r[0].allocator : allocator_label());
    printf("%-10s %7s %13s %8s %9s %13s  %s\n", "workload", "threads", "ops", "seconds",
           "Mops/s", "peak RSS MiB", "extra");
    for (int i = 0; i < n; i++) {
        char mb[32];
        printf("%-10s %7d %13llu %8.3f %9s %13.1f  %s=%.4g\n", r[i].workload, r[i].threads,
               (unsigned long long)r[i].ops, r[i].seconds,
               fmt_mops(mb, sizeof mb, r[i].ops_per_sec),
               r[i].peak_rss_kib / 1024.0, r[i].extra_name, r[i].extra_value);
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(r[i].workload, "churn")) {
            printf("churn: RSS at start %.1f MiB, at end %.1f MiB (%+.1f MiB)",
                   r[i].rss_start_kib / 1024.0, r[i].rss_end_kib / 1024.0,
                   (r[i].rss_end_kib - r[i].rss_start_kib) / 1024.0);
            if (r[i].rss_q1_kib >= 0)
                printf("; after warm-up (25%% of the run) %.1f MiB, growth since %+.1f MiB",
                       r[i].rss_q1_kib / 1024.0, (r[i].rss_end_kib - r[i].rss_q1_kib) / 1024.0);
            printf("\n");
        }
        if (!strcmp(r[i].workload, "blowup") && r[i].extra_value > 0)
            printf("blowup: peak RSS %.1f MiB / peak live %.1f MiB = %.2f "
                   "(RSS includes ~%.1f MiB of harness arrays)\n",
                   r[i].peak_rss_kib / 1024.0, r[i].extra_value,
                   r[i].peak_rss_kib / 1024.0 / r[i].extra_value,
                   r[i].threads * (double)(BLOW_BUDGET / BLOW_SA * sizeof(void *)) / (1 << 20));
    }
    fflush(stdout);
}

static void write_json(const char *path, const struct result *r, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    fputs("[\n", f);
    for (int i = 0; i < n; i++) {
        json_result(f, &r[i], -1, NULL);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fputs("]\n", f);
    if (fclose(f))
        die("cannot write %s: %s", path, strerror(errno));
}

/* ---------------------------------------------------------------- compare */

#if defined(__x86_64__) && defined(__ILP32__)
#define MULTIARCH "x86_64-linux-gnux32"
#elif defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#elif defined(__arm__)
#define MULTIARCH "arm-linux-gnueabihf"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH "s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#else
#define MULTIARCH NULL
#endif

struct alloc_ent {
    const char *name;
    char path[PATH_MAX];            /* "" = no LD_PRELOAD (glibc) */
};

static bool find_peer(const char *const *files, char *out)
{
    const char *dirs[8];
    int nd = 0;
    dirs[nd++] = "/usr/lib/x86_64-linux-gnu";
    char d1[128], d2[128];
    if (MULTIARCH) {
        snprintf(d1, sizeof d1, "/usr/lib/%s", MULTIARCH ? MULTIARCH : "");
        snprintf(d2, sizeof d2, "/lib/%s", MULTIARCH ? MULTIARCH : "");
        dirs[nd++] = d1;
        dirs[nd++] = d2;
    }
    dirs[nd++] = "/usr/lib64";
    dirs[nd++] = "/usr/lib";
    dirs[nd++] = "/usr/local/lib";
    for (int d = 0; d < nd; d++)
        for (int i = 0; files[i]; i++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", dirs[d], files[i]);
            if (access(p, R_OK) == 0) {
                snprintf(out, PATH_MAX, "%s", p);
                return true;
            }
        }
    return false;
}

static bool find_heaplib(char *out)
{
    const char *rel[] = { "libheaplib.so", ".libs/libheaplib.so", "build/libheaplib.so",
                          "src/.libs/libheaplib.so", "../libheaplib.so",
                          "../build/libheaplib.so", "../src/.libs/libheaplib.so",
                          "lib/libheaplib.so", "../lib/libheaplib.so", NULL };
    const char *env = getenv("HEAPLIB_LIB");
    if (env && access(env, R_OK) == 0) {
        if (!realpath(env, out))
            snprintf(out, PATH_MAX, "%s", env);
        return true;
    }
    char exedir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exedir, sizeof exedir - 1);
    if (n < 0)
        n = 0;
    exedir[n] = 0;
    char *slash = strrchr(exedir, '/');
    if (slash)
        *slash = 0;
    const char *bases[] = { ".", exedir };
    for (int b = 0; b < 2; b++)
        for (int i = 0; rel[i]; i++) {
            char p[PATH_MAX * 2];
            snprintf(p, sizeof p, "%s/%s", bases[b], rel[i]);
            if (access(p, R_OK) == 0 && realpath(p, out))
                return true;
        }
    return false;
}

enum { ST_OK = 0, ST_EXIT, ST_SIGNAL, ST_TIMEOUT, ST_NORESULT, ST_NOTRUN };

struct run_rec {
    int st, code;                   /* status kind and exit code / signal */
    struct result r;
};

static void status_str(const struct run_rec *rr, char *buf, size_t n)
{
    switch (rr->st) {
    case ST_OK: snprintf(buf, n, "ok"); break;
    case ST_EXIT: snprintf(buf, n, "exit %d", rr->code); break;
    case ST_SIGNAL: snprintf(buf, n, "signal %d (%s)", rr->code, strsignal(rr->code)); break;
    case ST_TIMEOUT: snprintf(buf, n, "timeout, killed"); break;
    case ST_NORESULT: snprintf(buf, n, "no result file"); break;
    default: snprintf(buf, n, "not run"); break;
    }
}

static bool json_get_num(const char *buf, const char *key, double *v)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(buf, k);
    if (!p)
        return false;
    char *end;
    *v = strtod(p + strlen(k), &end);
    return end != p + strlen(k);
}

static void json_get_str(const char *buf, const char *key, char *out, size_t n)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": \"", key);
    const char *p = strstr(buf, k);
    out[0] = 0;
    if (!p)
        return;
    p += strlen(k);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n)
        out[i++] = *p++;
    out[i] = 0;
}

static bool parse_child_json(const char *path, struct result *r)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    double v;
    memset(r, 0, sizeof *r);
    if (!json_get_num(buf, "ops_per_sec", &v))
        return false;
    r->ops_per_sec = v;
    if (json_get_num(buf, "ops", &v)) r->ops = (uint64_t)v;
    if (json_get_num(buf, "seconds", &v)) r->seconds = v;
    if (json_get_num(buf, "threads", &v)) r->threads = (int)v;
    if (json_get_num(buf, "peak_rss_kib", &v)) r->peak_rss_kib = (long)v;
    if (json_get_num(buf, "rss_start_kib", &v)) r->rss_start_kib = (long)v;
    if (json_get_num(buf, "rss_end_kib", &v)) r->rss_end_kib = (long)v;
    r->rss_q1_kib = json_get_num(buf, "rss_q1_kib", &v) ? (long)v : -1;
    if (json_get_num(buf, "extra_value", &v)) r->extra_value = v;
    json_get_str(buf, "extra_name", r->extra_name, sizeof r->extra_name);
    json_get_str(buf, "workload", r->workload, sizeof r->workload);
    json_get_str(buf, "allocator", r->allocator, sizeof r->allocator);
    return true;
}

static void run_child(const struct alloc_ent *a, const char *wl, int threads, int run,
                      struct run_rec *rr)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/heaplib-stress-XXXXXX", tmpdir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        die("mkstemp %s: %s", tmp, strerror(errno));
    close(fd);

    char s_thr[16], s_dur[32], s_ops[32], s_min[32], s_max[32], s_seed[32];
    snprintf(s_thr, sizeof s_thr, "%d", threads);
    snprintf(s_dur, sizeof s_dur, "%.6g", opt.duration);
    snprintf(s_ops, sizeof s_ops, "%llu", (unsigned long long)opt.ops);
    snprintf(s_min, sizeof s_min, "%zu", opt.min_size);
    snprintf(s_max, sizeof s_max, "%zu", opt.max_size);
    snprintf(s_seed, sizeof s_seed, "%llu", (unsigned long long)(opt.seed + (uint64_t)run));
    const char *argv[32];
    int ac = 0;
    argv[ac++] = PROG;
    argv[ac++] = "--workload"; argv[ac++] = wl;
    argv[ac++] = "--threads"; argv[ac++] = s_thr;
    if (opt.ops) { argv[ac++] = "--ops"; argv[ac++] = s_ops; }
    else { argv[ac++] = "--duration"; argv[ac++] = s_dur; }
    argv[ac++] = "--min-size"; argv[ac++] = s_min;
    argv[ac++] = "--max-size"; argv[ac++] = s_max;
    argv[ac++] = "--seed"; argv[ac++] = s_seed;
    argv[ac++] = "--json"; argv[ac++] = tmp;
    argv[ac++] = "--quiet";
    argv[ac++] = "--allocator-name"; argv[ac++] = a->name;
    if (!opt.verify)
        argv[ac++] = "--no-verify";
    argv[ac] = NULL;

    int ne = 0;
    for (char **e = environ; *e; e++)
        ne++;
    char **envp = calloc((size_t)ne + 2, sizeof *envp);
    char preload[PATH_MAX + 16];
    int k = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            envp[k++] = *e;
    if (a->path[0]) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", a->path);
        envp[k++] = preload;
    }
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int e = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    memset(rr, 0, sizeof *rr);
    if (e) {
        unlink(tmp);
        die("posix_spawn /proc/self/exe: %s", strerror(e));
    }
    double limit = opt.ops ? 900.0 : opt.duration * 10 + 60;
    double t0 = now_sec();
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            die("waitpid: %s", strerror(errno));
        if (now_sec() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            rr->st = ST_TIMEOUT;
            break;
        }
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    if (rr->st != ST_TIMEOUT) {
        if (WIFSIGNALED(st)) {
            rr->st = ST_SIGNAL;
            rr->code = WTERMSIG(st);
        } else if (WEXITSTATUS(st) != 0) {
            rr->st = ST_EXIT;
            rr->code = WEXITSTATUS(st);
        } else if (!parse_child_json(tmp, &rr->r)) {
            rr->st = ST_NORESULT;
        } else {
            rr->st = ST_OK;
        }
    }
    unlink(tmp);
    snprintf(rr->r.workload, sizeof rr->r.workload, "%s", wl);
    snprintf(rr->r.allocator, sizeof rr->r.allocator, "%s", a->name);
    rr->r.threads = threads;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct stat3 { int n, failed; double med, min, max, rss_med, extra_med; const struct run_rec *fail; };

static struct stat3 stats_of(const struct run_rec *recs, int nruns)
{
    struct stat3 s = { 0 };
    double v[nruns > 0 ? nruns : 1], m[nruns > 0 ? nruns : 1], x[nruns > 0 ? nruns : 1];
    for (int i = 0; i < nruns; i++) {
        if (recs[i].st != ST_OK) {
            if (!s.failed++)
                s.fail = &recs[i];
            continue;
        }
        v[s.n] = recs[i].r.ops_per_sec;
        m[s.n] = recs[i].r.peak_rss_kib / 1024.0;
        x[s.n] = recs[i].r.extra_value;
        s.n++;
    }
    if (!s.n)
        return s;
    qsort(v, (size_t)s.n, sizeof v[0], cmp_double);
    qsort(m, (size_t)s.n, sizeof m[0], cmp_double);
    qsort(x, (size_t)s.n, sizeof x[0], cmp_double);
    int h = s.n / 2;
    s.med = s.n & 1 ? v[h] : (v[h - 1] + v[h]) / 2;
    s.rss_med = s.n & 1 ? m[h] : (m[h - 1] + m[h]) / 2;
    s.extra_med = s.n & 1 ? x[h] : (x[h - 1] + x[h]) / 2;
    s.min = v[0];
    s.max = v[s.n - 1];
    return s;
}

static int parse_int_list(const char *s, int *out, int max)
{
    int n = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > MAX_THREADS)
            die("bad thread count '%s' in --threads-list (1..%d)", t, MAX_THREADS);
        if (n < max)
            out[n++] = (int)v;
    }
    free(dup);
    if (!n)
        die("empty --threads-list");
    return n;
}

static int do_compare(void)
{
    struct alloc_ent al[5];
    int na = 0;
    const char *skipped[5];
    char skipbuf[5][256];
    int ns = 0;
    int heap_idx = -1;

    al[na].name = "glibc";
    al[na].path[0] = 0;
    na++;
    if (opt.lib) {
        char rp[PATH_MAX];
        if (access(opt.lib, R_OK) != 0 || !realpath(opt.lib, rp))
            die("--lib %s: %s", opt.lib, strerror(errno));
        al[na].name = "heaplib";
        snprintf(al[na].path, PATH_MAX, "%s", rp);
        heap_idx = na++;
    } else if (find_heaplib(al[na].path)) {
        al[na].name = "heaplib";
        heap_idx = na++;
    } else {
        snprintf(skipbuf[ns], sizeof skipbuf[ns],
                 "skipped: heaplib (no --lib PATH given and no libheaplib.so found "
                 "next to this program, in the current directory or in $HEAPLIB_LIB)");
        skipped[ns] = skipbuf[ns];
        ns++;
    }
    if (opt.peers) {
        static const char *const je[] = { "libjemalloc.so.2", "libjemalloc.so", NULL };
        static const char *const tc[] = { "libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so",
                                          "libtcmalloc.so.4", NULL };
        static const char *const mi[] = { "libmimalloc.so.2", "libmimalloc.so", NULL };
        static const struct { const char *name, *pkg; const char *const *files; } peers[] = {
            { "jemalloc", "libjemalloc2", je },
            { "tcmalloc", "libtcmalloc-minimal4", tc },
            { "mimalloc", "libmimalloc2.0", mi },
        };
        for (int i = 0; i < 3; i++) {
            if (find_peer(peers[i].files, al[na].path)) {
                al[na].name = peers[i].name;
                na++;
            } else {
                snprintf(skipbuf[ns], sizeof skipbuf[ns],
                         "skipped: %s (not installed: install %s)", peers[i].name,
                         peers[i].pkg);
                skipped[ns] = skipbuf[ns];
                ns++;
            }
        }
    }

    const char *wls[NWORKLOADS * 4];
    bool had_mix;
    int nw = expand_workloads(opt.workload ? opt.workload : "mix", wls,
                              NWORKLOADS * 4, &had_mix);
    int tl[32];
    int nt;
    if (opt.threads_list)
        nt = parse_int_list(opt.threads_list, tl, 32);
    else if (opt.threads_given)
        tl[0] = opt.threads, nt = 1;
    else
        nt = parse_int_list("1,2,8", tl, 32);
    int R = opt.runs;

    for (int i = 0; i < ns; i++)
        printf("%s\n", skipped[i]);
    printf("heaplib-stress --compare: allocators:");
    for (int i = 0; i < na; i++)
        printf(" %s%s%s%s", al[i].name, al[i].path[0] ? " (" : "", al[i].path,
               al[i].path[0] ? ")" : "");
    printf("\n  workloads:");
    for (int i = 0; i < nw; i++)
        printf(" %s", wls[i]);
    printf("; threads:");
    for (int i = 0; i < nt; i++)
        printf(" %d", tl[i]);
    if (opt.ops)
        printf("; %d runs each, %llu ops per thread per run\n", R, (unsigned long long)opt.ops);
    else
        printf("; %d runs each, %.3g s per run\n", R, opt.duration);
    fflush(stdout);

    size_t total = (size_t)nw * (size_t)nt * (size_t)na * (size_t)R;
    struct run_rec *recs = calloc(total, sizeof *recs);
    if (!recs)
        die("out of memory");
#define REC(w, t, a, r) recs[(((size_t)(w) * nt + (t)) * na + (a)) * R + (r)]
    bool tty = isatty(STDERR_FILENO);
    double t_start = now_sec();
    size_t done = 0;
    int nfail = 0;
    for (int w = 0; w < nw; w++)
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < R; r++)
                for (int a = 0; a < na; a++) {  /* allocators interleaved */
                    struct run_rec *rr = &REC(w, t, a, r);
                    run_child(&al[a], wls[w], tl[t], r, rr);
                    done++;
                    char sb[64];
                    status_str(rr, sb, sizeof sb);
                    if (rr->st != ST_OK) {
                        nfail++;
                        fprintf(stderr, "%s" PROG ": FAILED: %s threads=%d run=%d allocator=%s: %s\n",
                                tty ? "\r\033[K" : "", wls[w], tl[t], r + 1, al[a].name, sb);
                    } else if (!opt.quiet) {
                        char mb[32];
                        fprintf(stderr, "%s[%3zu/%zu %5.0fs] %-10s T=%-3d run %d/%d %-9s %9s Mops/s  peak RSS %7.1f MiB%s",
                                tty ? "\r" : "", done, total, now_sec() - t_start, wls[w], tl[t],
                                r + 1, R, al[a].name, fmt_mops(mb, sizeof mb, rr->r.ops_per_sec),
                                rr->r.peak_rss_kib / 1024.0, tty ? "\033[K" : "\n");
                    }
                }
    if (tty && !opt.quiet)
        fputs("\r\033[K", stderr);
    double elapsed = now_sec() - t_start;

    /* ---- report */
    printf("\n=== heaplib-stress comparison: %zu runs in %.0f s ===\n", total, elapsed);
    printf("Mops/s   = millions of allocator calls (malloc/calloc/realloc/free) per second;\n"
           "           median of %d runs, [min - max]; higher is better.\n"
           "peak RSS = resident high-water mark of the run's process, MiB, median; lower is better.\n",
           R);
    if (heap_idx >= 0)
        printf("heaplib/X = heaplib's median divided by allocator X's: throughput > 1 means heaplib\n"
               "           is faster; RSS < 1 means heaplib uses less memory.\n");
    for (int w = 0; w < nw; w++)
        for (int t = 0; t < nt; t++) {
            printf("\n-- %s, %d thread%s --\n", wls[w], tl[t], tl[t] == 1 ? "" : "s");
            printf("  %-9s %10s  %-21s %9s", "allocator", "Mops/s", "[min - max]", "RSS MiB");
            if (heap_idx >= 0)
                printf(" %14s %12s", "heaplib/X ops", "heaplib/X RSS");
            printf("  extra (median)\n");
            struct stat3 st[5];
            for (int a = 0; a < na; a++)
                st[a] = stats_of(&REC(w, t, a, 0), R);
            const struct stat3 *h = heap_idx >= 0 ? &st[heap_idx] : NULL;
            int best = -1;
            for (int a = 0; a < na; a++) {
                const struct stat3 *s = &st[a];
                printf("  %-9s ", al[a].name);
                if (s->failed) {
                    char sb[64];
                    status_str(s->fail, sb, sizeof sb);
                    printf("FAILED %d/%d runs (%s)\n", s->failed, R, sb);
                    continue;
                }
                if (a != heap_idx && (best < 0 || s->med > st[best].med))
                    best = a;
                char mm[80], b1[32], b2[32], b3[32];
                snprintf(mm, sizeof mm, "[%s - %s]", fmt_mops(b1, sizeof b1, s->min),
                         fmt_mops(b2, sizeof b2, s->max));
                printf("%10s  %-21s %9.1f", fmt_mops(b3, sizeof b3, s->med), mm, s->rss_med);
                if (h) {
                    if (a == heap_idx)
                        printf(" %14s %12s", "-", "-");
                    else if (h->failed || !h->n)
                        printf(" %14s %12s", "n/a", "n/a");
                    else
                        printf(" %13.2fx %11.2fx", s->med > 0 ? h->med / s->med : 0,
                               s->rss_med > 0 ? h->rss_med / s->rss_med : 0);
                }
                const struct run_rec *any = &REC(w, t, a, 0);
                printf("  %s=%.4g\n", any->r.extra_name, s->extra_med);
            }
            if (h && !h->failed && h->n && best >= 0)
                printf("  best peer: %s; heaplib/best throughput = %.2fx\n", al[best].name,
                       h->med / st[best].med);
        }

    if (heap_idx >= 0 && na > 1) {
        printf("\n=== summary: heaplib throughput ratio (heaplib/X, median Mops/s; >1 = heaplib faster) ===\n");
        printf("%-10s %4s", "workload", "T");
        for (int a = 0; a < na; a++)
            if (a != heap_idx)
                printf(" %9s", al[a].name);
        printf(" %9s\n", "best peer");
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < nt; t++) {
                struct stat3 hs = stats_of(&REC(w, t, heap_idx, 0), R);
                printf("%-10s %4d", wls[w], tl[t]);
                double bestv = -1;
                for (int a = 0; a < na; a++) {
                    if (a == heap_idx)
                        continue;
                    struct stat3 s = stats_of(&REC(w, t, a, 0), R);
                    if (!s.failed && s.n && s.med > bestv)
                        bestv = s.med;
                    if (hs.failed || !hs.n)
                        printf(" %9s", "FAILED");
                    else if (s.failed || !s.n)
                        printf(" %9s", "n/a");
                    else
                        printf(" %8.2fx", hs.med / s.med);
                }
                if (hs.failed || !hs.n)
                    printf(" %9s\n", "FAILED");
                else if (bestv <= 0)
                    printf(" %9s\n", "n/a");
                else
                    printf(" %8.2fx\n", hs.med / bestv);
            }
        printf("\n=== summary: heaplib peak RSS ratio (heaplib/X, median MiB; <1 = heaplib smaller) ===\n");
        printf("%-10s %4s", "workload", "T");
        for (int a = 0; a < na; a++)
            if (a != heap_idx)
                printf(" %9s", al[a].name);
        printf("\n");
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < nt; t++) {
                struct stat3 hs = stats_of(&REC(w, t, heap_idx, 0), R);
                printf("%-10s %4d", wls[w], tl[t]);
                for (int a = 0; a < na; a++) {
                    if (a == heap_idx)
                        continue;
                    struct stat3 s = stats_of(&REC(w, t, a, 0), R);
                    if (hs.failed || !hs.n)
                        printf(" %9s", "FAILED");
                    else if (s.failed || !s.n || s.rss_med <= 0)
                        printf(" %9s", "n/a");
                    else
                        printf(" %8.2fx", hs.rss_med / s.rss_med);
                }
                printf("\n");
            }
    }
    for (int i = 0; i < ns; i++)
        printf("%s\n", skipped[i]);
    if (nfail)
        printf("\n%d run%s FAILED (see above); exiting with status 1\n", nfail,
               nfail == 1 ? "" : "s");
    fflush(stdout);

    if (opt.json) {
        FILE *f = fopen(opt.json, "w");
        if (!f)
            die("cannot write %s: %s", opt.json, strerror(errno));
        fputs("[\n", f);
        for (size_t i = 0; i < total; i++) {
            char sb[64];
            status_str(&recs[i], sb, sizeof sb);
            json_result(f, &recs[i].r, (int)(i % (size_t)R), sb);
            fputs(i + 1 < total ? ",\n" : "\n", f);
        }
        fputs("]\n", f);
        if (fclose(f))
            die("cannot write %s: %s", opt.json, strerror(errno));
    }
    free(recs);
#undef REC
    return nfail ? 1 : 0;
}

/* ------------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
"usage: heaplib-stress [options]            run workloads with the preloaded allocator\n"
"       heaplib-stress --compare [options]  run each allocator in child processes\n"
"\n"
"Uses the plain malloc/calloc/realloc/free; choose the allocator with LD_PRELOAD.\n"
"Every block is patterned and verified before free/realloc; on corruption it prints\n"
"'heaplib-stress: FAIL workload=... thread=... block=... size=... offset=... expected=...\n"
"found=...' and exits 2.  An op is one allocator call.\n"
"\n"
"  --workload NAME[,NAME..]  workload(s) to run (default mix); 'all' = every one\n"
"  --threads N               worker threads (default 2)\n"
"  --duration SEC            seconds per workload (default 2; 1 with --compare)\n"
"  --ops N                   instead of a duration: allocator calls per thread\n"
"  --min-size B, --max-size B  small block sizes (default 16..512)\n"
"  --seed S                  random seed (default 1)\n"
"  --json FILE               write results as JSON\n"
"  --quiet                   no progress line\n"
"  --no-verify               write patterns but skip the checks (calloc zeros still checked)\n"
"  --allocator-name NAME     label for the results (default: from LD_PRELOAD)\n"
"  --help\n"
"\n"
"Compare mode:\n"
"  --compare                 re-run this program once per (workload, threads, run,\n"
"                            allocator) with LD_PRELOAD set, and tabulate medians\n"
"  --lib PATH                libheaplib.so (default: $HEAPLIB_LIB, or found near the\n"
"                            program or in the current directory; else skipped)\n"
"  --peers                   also jemalloc, tcmalloc, mimalloc (Debian packages)\n"
"  --threads-list 1,2,8      thread counts (default 1,2,8, or --threads)\n"
"  --runs R                  runs per figure, allocators interleaved (default 3)\n"
"\n"
"Workloads:\n");
    for (int i = 0; i < NWORKLOADS; i++)
        fprintf(f, "  %-11s %s\n", workloads[i].name, workloads[i].desc);
    fprintf(f,
"  %-11s server, prodcons, batches, large, duration/4 each (--compare: full duration,\n"
"              one row each)\n"
"\n"
"Peak RSS is reset at the start of every workload (/proc/self/clear_refs) and read from\n"
"VmHWM; if that is not permitted it is getrusage's ru_maxrss for the whole process.\n"
"Debug build: -DSTRESS_SELFTEST_CORRUPT corrupts one byte of one block on purpose.\n",
            "mix");
}

static uint64_t parse_u64(const char *opt_name, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || !*s || s[0] == '-')
        die("bad value '%s' for %s", s, opt_name);
    return v;
}

int main(int argc, char **argv)
{
    static const char *const valopts[] = {
        "--workload", "--threads", "--duration", "--ops", "--min-size", "--max-size",
        "--seed", "--json", "--allocator-name", "--lib", "--threads-list", "--runs", NULL };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        bool takes = false;
        for (int k = 0; valopts[k]; k++)
            if (!strcmp(name, valopts[k]))
                takes = true;
        if (takes && !val) {
            if (i + 1 >= argc)
                die("%s needs a value", name);
            val = argv[++i];
        } else if (!takes && val) {
            die("%s takes no value", name);
        }
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(name, "--workload")) opt.workload = val;
        else if (!strcmp(name, "--threads")) {
            uint64_t v = parse_u64(name, val);
            if (v < 1 || v > MAX_THREADS)
                die("--threads must be 1..%d", MAX_THREADS);
            opt.threads = (int)v;
            opt.threads_given = true;
        } else if (!strcmp(name, "--duration")) {
            char *end;
            opt.duration = strtod(val, &end);
            if (*end || !(opt.duration > 0) || opt.duration > 1e6)
                die("bad --duration '%s'", val);
            opt.duration_given = true;
        } else if (!strcmp(name, "--ops")) {
            opt.ops = parse_u64(name, val);
            if (!opt.ops)
                die("--ops must be > 0");
        } else if (!strcmp(name, "--min-size")) opt.min_size = parse_u64(name, val);
        else if (!strcmp(name, "--max-size")) opt.max_size = parse_u64(name, val);
        else if (!strcmp(name, "--seed")) opt.seed = parse_u64(name, val);
        else if (!strcmp(name, "--json")) opt.json = val;
        else if (!strcmp(name, "--quiet")) opt.quiet = true;
        else if (!strcmp(name, "--no-verify")) opt.verify = false;
        else if (!strcmp(name, "--allocator-name")) opt.alloc_name = val;
        else if (!strcmp(name, "--compare")) opt.compare = true;
        else if (!strcmp(name, "--lib")) opt.lib = val;
        else if (!strcmp(name, "--peers")) opt.peers = true;
        else if (!strcmp(name, "--threads-list")) opt.threads_list = val;
        else if (!strcmp(name, "--runs")) {
            uint64_t v = parse_u64(name, val);
            if (v < 1 || v > 1000)
                die("--runs must be 1..1000");
            opt.runs = (int)v;
        } else {
            fprintf(stderr, PROG ": unknown option '%s'\n\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (opt.min_size < 1 || opt.max_size < opt.min_size || opt.max_size > (64u << 20))
        die("need 1 <= --min-size <= --max-size <= 64 MiB");

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mon.cv, &ca);
    pthread_condattr_destroy(&ca);

    if (opt.compare) {
        if (!opt.duration_given)
            opt.duration = 1.0;
        return do_compare();
    }
    if (opt.lib || opt.peers || opt.threads_list)
        die("--lib, --peers and --threads-list only make sense with --compare");

    const char *wls[NWORKLOADS * 4];
    bool had_mix;
    const char *spec = opt.workload ? opt.workload : "mix";
    int nw = expand_workloads(spec, wls, NWORKLOADS * 4, &had_mix);
    /* entries that came from "mix" get a quarter of the duration */
    bool from_mix[NWORKLOADS * 4];
    {
        int k = 0;
        char *dup = strdup(spec), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int cnt = !strcmp(t, "mix") ? 4 : !strcmp(t, "all") ? NWORKLOADS_ALL : 1;
            for (int j = 0; j < cnt && k < nw; j++)
                from_mix[k++] = !strcmp(t, "mix");
        }
        free(dup);
    }
    struct result *res = calloc((size_t)nw, sizeof *res);
    if (!res)
        die("out of memory");
    for (int i = 0; i < nw; i++)
        run_one(find_workload(wls[i]), opt.threads,
                from_mix[i] ? opt.duration / 4 : opt.duration, &res[i]);
    print_table(res, nw);
    if (opt.json)
        write_json(opt.json, res, nw);
    free(res);
    return 0;
}
