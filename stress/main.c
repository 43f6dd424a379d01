/*
 * heaplib-stress -- multithreaded allocator stress test and benchmark harness.
 *
 * Build: make stress/heaplib-stress (stress/stress.mk).  By hand, compile
 * main.c, harness.c, verify.c, report.c, compare.c and every file of wl/
 * together (util.h lists them), with -I include -pthread -lm -ldl.  It is
 * NOT linked to heaplib.
 * Run with an allocator preloaded, or with none (glibc):
 *     LD_PRELOAD=/path/to/libheaplib.so ./heaplib-stress --workload server --threads 8
 *     ./heaplib-stress --compare --lib /path/to/libheaplib.so --peers
 *
 * Every block is verified as it goes (verify.h, verify.c): a 64-bit hash of
 * (address, size) is written into it and checked just before the block is
 * freed or reallocated; realloc must preserve the old pattern up to
 * min(old, new) size; calloc memory is checked for zeros.  A mismatch prints
 *   heaplib-stress: FAIL workload=W thread=T block=ADDR size=S offset=O expected=X found=Y
 * and exits with status 2.  A NULL from malloc/calloc/realloc also exits 2.
 * Other errors (bad options, a file that cannot be written, the regions
 * workload without heaplib) exit 1; so does --compare when a child run failed.
 *
 * Debug build flag:
 *   -DSTRESS_SELFTEST_CORRUPT   deliberately corrupts one byte of one block
 *                               (the first block a worker thread frees), to
 *                               show that the checker fires: the run must
 *                               print a FAIL line and exit with status 2.
 *
 * An "op" is one allocator call: malloc, calloc, realloc or free.
 *
 * Peak RSS is reset at the start of each workload and read at its end
 * (harness.c); --compare runs every workload in its own process anyway.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct options opt = {
	.workload = NULL, .threads = 2, .duration = 2.0, .ops = 0,
	.min_size = 16, .max_size = 512, .seed = 1, .json = NULL,
	.quiet = false, .verify = true, .alloc_name = NULL,
	.compare = false, .lib = NULL, .peers = false, .threads_list = NULL,
	.runs = 3,
};

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
		fprintf(f, "  %-12s %s\n", workloads[i]->name, workloads[i]->desc);
	fprintf(f,
"  %-12s server, prodcons, batches, large, duration/4 each (--compare: full duration,\n"
"               one row each)\n"
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

	monitor_init();

	if (opt.compare) {
		if (!opt.duration_given)
			opt.duration = 1.0;
		return do_compare();
	}
	if (opt.lib || opt.peers || opt.threads_list)
		die("--lib, --peers and --threads-list only make sense with --compare");

	const char *wls[NWORKLOADS * 4];
	bool from_mix[NWORKLOADS * 4];	/* those get a quarter of the duration */
	int nw = expand_workloads(opt.workload ? opt.workload : "mix", wls, NWORKLOADS * 4,
				  from_mix);
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
