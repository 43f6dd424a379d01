/*
 * Running one workload: its worker threads, the start barrier, the clock,
 * the monitor thread that stops a timed run and prints the progress line,
 * resident-set measurements, and the table of workloads with the expansion
 * of --workload.
 *
 * Peak RSS: at the start of each workload the process's resident high-water
 * mark is reset (writing 5 to /proc/self/clear_refs) and read back at the end
 * (VmHWM, the counter behind getrusage's ru_maxrss), so each workload of one
 * process gets its own peak.  If the reset is not permitted, ru_maxrss is
 * used (then cumulative over the process).  --compare runs every workload in
 * its own process anyway.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

struct pcount g_count[MAX_THREADS];
atomic_int g_stop;
static pthread_barrier_t g_start;

__thread int t_tid = -1;
__thread const char *t_wl = "none";

/* ---- utilities ---------------------------------------------------------- */

double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void die(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *allocator_label(void)
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

/* ---- resident set ------------------------------------------------------- */

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

/* ---- workers ------------------------------------------------------------ */

/* every worker, once set up; run_one's thread waits on it too */
void run_child_thread(const struct worker *w, const char *name, pthread_attr_t *attr,
		      void *(*fn)(void *), void *arg)
{
	pthread_t th;
	int e = pthread_create(&th, attr, fn, arg);
	if (e) {
		fprintf(stderr, PROG ": FAIL workload=%s thread=%d pthread_create: %s\n",
			name, w->tid, strerror(e));
		_exit(2);
	}
	pthread_join(th, NULL);
}

void start_barrier(void)
{
	pthread_barrier_wait(&g_start);
}

uint64_t sum_aux(int n, int which)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += which == 1 ? atomic_load(&g_count[i].aux) : atomic_load(&g_count[i].aux2);
	return s;
}

uint64_t sum_ops(int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += atomic_load_explicit(&g_count[i].ops, memory_order_relaxed);
	return s;
}

void *heaplib_sym(const char *wl, const char *name)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	if (!f)
		die("the %s workload needs heaplib (%s not found): run it with "
		    "LD_PRELOAD=libheaplib.so", wl, name);
	return f;
}

/* ---- the workloads ------------------------------------------------------ */

/* --help lists them in this order; "all" is this order without the
 * heaplib_only ones. */
const struct workload *const workloads[] = {
	&wl_fastpath, &wl_server, &wl_prodcons, &wl_batches, &wl_falseshare,
	&wl_churn, &wl_blowup, &wl_large, &wl_malloclarge, &wl_mstress,
	&wl_larson_sized, &wl_regions, &wl_taskpath, &wl_nomadic,
};

static const char *const mix_parts[] = { "server", "prodcons", "batches", "large" };

const struct workload *find_workload(const char *name)
{
	for (int i = 0; i < NWORKLOADS; i++)
		if (!strcmp(workloads[i]->name, name))
			return workloads[i];
	return NULL;
}

int expand_workloads(const char *spec, const char **out, int max, bool *from_mix)
{
	int n = 0;
	char *dup = strdup(spec), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int first = n;
		if (!strcmp(t, "mix")) {
			for (int i = 0; i < 4 && n < max; i++)
				out[n++] = mix_parts[i];
		} else if (!strcmp(t, "all")) {
			for (int i = 0; i < NWORKLOADS && n < max; i++)
				if (!workloads[i]->heaplib_only)
					out[n++] = workloads[i]->name;
		} else {
			const struct workload *w = find_workload(t);
			if (!w)
				die("unknown workload '%s' (try --help)", t);
			if (n < max)
				out[n++] = w->name;
		}
		if (from_mix)
			for (int i = first; i < n; i++)
				from_mix[i] = !strcmp(t, "mix");
	}
	free(dup);
	return n;
}

/* ---- the monitor -------------------------------------------------------- */

/* The monitor thread wakes at every progress line, at 25% of the duration
 * (the RSS sample) and at its end (sets g_stop).  mon is guarded by mu:
 * run_one fills it before it starts the thread, and sets done to end it. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	const char *wl;
	int nthreads;
	double t0, duration;		/* duration 0 = ops mode */
	bool tty;
	long rss_q1;			/* RSS sampled at 25% of the duration */
} mon = { .mu = PTHREAD_MUTEX_INITIALIZER };

void monitor_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mon.cv, &ca);
	pthread_condattr_destroy(&ca);
}

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
		fprintf(stderr, "%s%-12s T=%-3d %s  %8s Mops/s  RSS %7.1f MiB  peak %7.1f MiB%s",
			mon.tty ? "\r" : "", mon.wl, mon.nthreads, when,
			fmt_mops(mb, sizeof mb, rate), rss_kib() / 1024.0, peak_rss_kib() / 1024.0,
			mon.tty ? "\033[K" : "\n");
		printed = true;
	}
	pthread_mutex_unlock(&mon.mu);
	if (printed && mon.tty)
		fputs("\r\033[K", stderr);
	return NULL;
}

/* ---- running a workload ------------------------------------------------- */

struct tramp_arg { struct worker *w; void *(*fn)(void *); const char *wl; };

static void *worker_tramp(void *arg)
{
	struct tramp_arg *t = arg;
	t_tid = t->w->tid;
	t_wl = t->wl;
	return t->fn(t->w);
}

void run_one(const struct workload *wl, int nthreads, double duration, struct result *res)
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

