/*
 * --compare: this program re-run once per (workload, thread count, run,
 * allocator), each child with its own LD_PRELOAD (none for glibc), its
 * stdout thrown away and its results read back from the JSON file it writes.
 * Allocators are interleaved within each (workload, threads, run), so a
 * change of the machine's load falls on all of them alike.  A child that
 * fails, is killed by a signal, runs past its time limit or leaves no result
 * is reported and makes the exit status 1; the other runs go on.
 *
 * The tables are report.c's; this file finds the allocators, runs the
 * children and prints the progress lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* ---- finding the allocators --------------------------------------------- */

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

/* ---- one child ---------------------------------------------------------- */

void status_str(const struct run_rec *rr, char *buf, size_t n)
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

/* ---- the driver --------------------------------------------------------- */

/* Runs (w, t, a, r) and prints its progress line, or its FAILED line;
 * false if it failed.  done counts this run. */
static bool run_shown(const struct cmp_runs *m, int w, int t, int a, int r, size_t done,
		      double t_start, bool tty)
{
	size_t total = (size_t)m->nw * (size_t)m->nt * (size_t)m->na * (size_t)m->runs;
	const char *wl = m->wls[w], *name = m->al[a].name;
	struct run_rec *rr = cmp_rec(m, w, t, a, r);
	run_child(&m->al[a], wl, m->tl[t], r, rr);
	char sb[64];
	status_str(rr, sb, sizeof sb);
	if (rr->st != ST_OK) {
		fprintf(stderr, "%s" PROG ": FAILED: %s threads=%d run=%d allocator=%s: %s\n",
			tty ? "\r\033[K" : "", wl, m->tl[t], r + 1, name, sb);
		return false;
	}
	if (!opt.quiet) {
		char mb[32];
		fprintf(stderr, "%s[%3zu/%zu %5.0fs] %-12s T=%-3d run %d/%d %-9s %9s Mops/s  "
			"peak RSS %7.1f MiB%s", tty ? "\r" : "", done, total, now_sec() - t_start,
			wl, m->tl[t], r + 1, m->runs, name,
			fmt_mops(mb, sizeof mb, rr->r.ops_per_sec), rr->r.peak_rss_kib / 1024.0,
			tty ? "\033[K" : "\n");
	}
	return true;
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

int do_compare(void)
{
	struct alloc_ent al[CMP_MAX_ALLOCS];
	int na = 0;
	const char *skipped[CMP_MAX_ALLOCS];
	char skipbuf[CMP_MAX_ALLOCS][256];
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
		static const char *const tc[] = { "libtcmalloc_minimal.so.4",
						  "libtcmalloc_minimal.so", "libtcmalloc.so.4",
						  NULL };
		static const char *const mi[] = { "libmimalloc.so.2", "libmimalloc.so", NULL };
		static const struct {
			const char *name, *pkg;
			const char *const *files;
		} peers[] = {
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
	int nw = expand_workloads(opt.workload ? opt.workload : "mix", wls,
				  NWORKLOADS * 4, NULL);
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
		printf("; %d runs each, %llu ops per thread per run\n", R,
		       (unsigned long long)opt.ops);
	else
		printf("; %d runs each, %.3g s per run\n", R, opt.duration);
	fflush(stdout);

	size_t total = (size_t)nw * (size_t)nt * (size_t)na * (size_t)R;
	struct run_rec *recs = calloc(total, sizeof *recs);
	if (!recs)
		die("out of memory");
	struct cmp_runs m = {
		.nw = nw, .nt = nt, .na = na, .runs = R, .wls = wls, .tl = tl, .al = al,
		.heap_idx = heap_idx, .recs = recs,
	};
	bool tty = isatty(STDERR_FILENO);
	double t_start = now_sec();
	size_t done = 0;
	int nfail = 0;
	for (int w = 0; w < nw; w++)
		for (int t = 0; t < nt; t++)
			for (int r = 0; r < R; r++)
				for (int a = 0; a < na; a++)	/* allocators interleaved */
					if (!run_shown(&m, w, t, a, r, ++done, t_start, tty))
						nfail++;
	if (tty && !opt.quiet)
		fputs("\r\033[K", stderr);
	double elapsed = now_sec() - t_start;
	compare_report(&m, elapsed);
	for (int i = 0; i < ns; i++)
		printf("%s\n", skipped[i]);
	if (nfail)
		printf("\n%d run%s FAILED (see above); exiting with status 1\n", nfail,
		       nfail == 1 ? "" : "s");
	fflush(stdout);

	if (opt.json)
		compare_write_json(opt.json, &m);
	free(recs);
	return nfail ? 1 : 0;
}
