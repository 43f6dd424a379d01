/*
 * Results, all output but the progress lines (harness.c's monitor and
 * compare.c's): one process's results as a text table on stdout and as JSON
 * (--json FILE), and --compare's tables of medians and ratios and its JSON
 * of every run.
 *
 * The JSON is an array of one object per line, which scripts/bench.sh and
 * compare.c's reader of the children's files rely on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *fmt_mops(char *buf, size_t n, double per_sec)
{
	double v = per_sec / 1e6;
	int prec = v >= 100 ? 1 : v >= 1 ? 3 : v >= 0.01 ? 4 : 6;
	snprintf(buf, n, "%.*f", prec, v);
	return buf;
}

/* ---- JSON --------------------------------------------------------------- */

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

void write_json(const char *path, const struct result *r, int n)
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

/* ---- the table of one process ------------------------------------------- */

void print_table(const struct result *r, int n)
{
	printf("\nheaplib-stress results (allocator: %s; ops = malloc/calloc/realloc/free calls)\n",
	       n ? r[0].allocator : allocator_label());
	printf("%-12s %7s %13s %8s %9s %13s  %s\n", "workload", "threads", "ops", "seconds",
	       "Mops/s", "peak RSS MiB", "extra");
	for (int i = 0; i < n; i++) {
		char mb[32];
		printf("%-12s %7d %13llu %8.3f %9s %13.1f  %s=%.4g\n", r[i].workload, r[i].threads,
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
				printf("; after warm-up (25%% of the run) %.1f MiB, "
				       "growth since %+.1f MiB", r[i].rss_q1_kib / 1024.0,
				       (r[i].rss_end_kib - r[i].rss_q1_kib) / 1024.0);
			printf("\n");
		}
		if (!strcmp(r[i].workload, "blowup") && r[i].extra_value > 0)
			printf("blowup: peak RSS %.1f MiB / peak live %.1f MiB = %.2f "
			       "(RSS includes ~%.1f MiB of harness arrays)\n",
			       r[i].peak_rss_kib / 1024.0, r[i].extra_value,
			       r[i].peak_rss_kib / 1024.0 / r[i].extra_value,
			       r[i].threads * (double)blowup_array_bytes / (1 << 20));
		if (!strcmp(r[i].workload, "larson-sized") && r[i].extra_value == 0)
			printf("larson-sized: the allocator has no free_sized (glibc 2.36 has none): "
			       "every free was a plain free, as in server\n");
	}
	fflush(stdout);
}

/* ---- --compare ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* the successful runs' medians (and throughput's range) of one figure */
struct stat3 {
	int n, failed;
	double med, min, max, rss_med, extra_med;
	const struct run_rec *fail;	/* the first failed run */
};

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

static struct stat3 stats_at(const struct cmp_runs *m, int w, int t, int a)
{
	return stats_of(cmp_rec(m, w, t, a, 0), m->runs);
}

/* one table: every allocator's figures for workload w at thread count t */
static void compare_table(const struct cmp_runs *m, int w, int t)
{
	int heap_idx = m->heap_idx;
	int nthr = m->tl[t];
	printf("\n-- %s, %d thread%s --\n", m->wls[w], nthr, nthr == 1 ? "" : "s");
	printf("  %-9s %10s  %-21s %9s", "allocator", "Mops/s", "[min - max]", "RSS MiB");
	if (heap_idx >= 0)
		printf(" %14s %12s", "heaplib/X ops", "heaplib/X RSS");
	printf("  extra (median)\n");
	struct stat3 st[CMP_MAX_ALLOCS];
	for (int a = 0; a < m->na; a++)
		st[a] = stats_at(m, w, t, a);
	const struct stat3 *h = heap_idx >= 0 ? &st[heap_idx] : NULL;
	int best = -1;
	for (int a = 0; a < m->na; a++) {
		const struct stat3 *s = &st[a];
		printf("  %-9s ", m->al[a].name);
		if (s->failed) {
			char sb[64];
			status_str(s->fail, sb, sizeof sb);
			printf("FAILED %d/%d runs (%s)\n", s->failed, m->runs, sb);
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
		const struct run_rec *any = cmp_rec(m, w, t, a, 0);
		printf("  %s=%.4g\n", any->r.extra_name, s->extra_med);
	}
	if (h && !h->failed && h->n && best >= 0)
		printf("  best peer: %s; heaplib/best throughput = %.2fx\n", m->al[best].name,
		       h->med / st[best].med);
}

/* the header of a summary: a column per allocator other than heaplib */
static void summary_head(const struct cmp_runs *m, const char *title)
{
	printf("\n=== summary: %s ===\n", title);
	printf("%-12s %4s", "workload", "T");
	for (int a = 0; a < m->na; a++)
		if (a != m->heap_idx)
			printf(" %9s", m->al[a].name);
}

/* heaplib's median throughput over each other allocator's, and over the best */
static void summary_ops(const struct cmp_runs *m)
{
	summary_head(m, "heaplib throughput ratio (heaplib/X, median Mops/s; >1 = heaplib faster)");
	printf(" %9s\n", "best peer");
	for (int w = 0; w < m->nw; w++)
		for (int t = 0; t < m->nt; t++) {
			struct stat3 hs = stats_at(m, w, t, m->heap_idx);
			bool hfail = hs.failed || !hs.n;
			printf("%-12s %4d", m->wls[w], m->tl[t]);
			double bestv = -1;
			for (int a = 0; a < m->na; a++) {
				if (a == m->heap_idx)
					continue;
				struct stat3 s = stats_at(m, w, t, a);
				if (!s.failed && s.n && s.med > bestv)
					bestv = s.med;
				if (hfail)
					printf(" %9s", "FAILED");
				else if (s.failed || !s.n)
					printf(" %9s", "n/a");
				else
					printf(" %8.2fx", hs.med / s.med);
			}
			if (hfail)
				printf(" %9s\n", "FAILED");
			else if (bestv <= 0)
				printf(" %9s\n", "n/a");
			else
				printf(" %8.2fx\n", hs.med / bestv);
		}
}

/* heaplib's median peak RSS over each other allocator's */
static void summary_rss(const struct cmp_runs *m)
{
	summary_head(m, "heaplib peak RSS ratio (heaplib/X, median MiB; <1 = heaplib smaller)");
	printf("\n");
	for (int w = 0; w < m->nw; w++)
		for (int t = 0; t < m->nt; t++) {
			struct stat3 hs = stats_at(m, w, t, m->heap_idx);
			printf("%-12s %4d", m->wls[w], m->tl[t]);
			for (int a = 0; a < m->na; a++) {
				if (a == m->heap_idx)
					continue;
				struct stat3 s = stats_at(m, w, t, a);
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

void compare_report(const struct cmp_runs *m, double elapsed)
{
	size_t total = (size_t)m->nw * (size_t)m->nt * (size_t)m->na * (size_t)m->runs;
	printf("\n=== heaplib-stress comparison: %zu runs in %.0f s ===\n", total, elapsed);
	printf("Mops/s   = millions of allocator calls (malloc/calloc/realloc/free) per second;\n"
	       "           median of %d runs, [min - max]; higher is better.\n"
	       "peak RSS = resident high-water mark of the run's process, MiB, median; "
	       "lower is better.\n", m->runs);
	if (m->heap_idx >= 0)
		printf("heaplib/X = heaplib's median divided by allocator X's: throughput > 1 "
		       "means heaplib\n"
		       "           is faster; RSS < 1 means heaplib uses less memory.\n");
	for (int w = 0; w < m->nw; w++)
		for (int t = 0; t < m->nt; t++)
			compare_table(m, w, t);
	if (m->heap_idx >= 0 && m->na > 1) {
		summary_ops(m);
		summary_rss(m);
	}
}

void compare_write_json(const char *path, const struct cmp_runs *m)
{
	size_t total = (size_t)m->nw * (size_t)m->nt * (size_t)m->na * (size_t)m->runs;
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	fputs("[\n", f);
	for (size_t i = 0; i < total; i++) {
		char sb[64];
		status_str(&m->recs[i], sb, sizeof sb);
		json_result(f, &m->recs[i].r, (int)(i % (size_t)m->runs), sb);
		fputs(i + 1 < total ? ",\n" : "\n", f);
	}
	fputs("]\n", f);
	if (fclose(f))
		die("cannot write %s: %s", path, strerror(errno));
}
