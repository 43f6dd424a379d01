# bench/report.awk -- bench/results.md from one run of scripts/bench.sh:
# awk -F'\t' -v workloads=.. -v threads=.. -v order=.. -v runs=.. -v duration=..
#     -v cg_n=.. -v raw=.. -v plotdat=.. -v have_heaplib=.. -v redis_cmds=..
#     -f bench/report.awk header.tsv callgrind.tsv runs.tsv redis-info.tsv
#     redis-check.tsv redis.tsv
# Also writes the plot data (plotdat, plotdat.panels, plotdat.redis).
#
# Issue 11's targets, judged here from the medians (never typed in): a
# row's time is missed when heaplib's median time / the best peer's is over
# 1.05 (for a fixed-duration run: best peer ops/s / heaplib ops/s); its peak
# RSS when heaplib's median is over max(1.1 x, 2 MiB +) the lowest peer
# median; a redis command when the best peer's requests/s / heaplib's is
# over 1.05; redis peak RSS like a row's.
function median(key, m,   x, y, tmp) {     # sorts vals[key, 1..m] in place
	for (x = 2; x <= m; x++)
		for (y = x; y > 1 && vals[key, y - 1] > vals[key, y]; y--) {
			tmp = vals[key, y]; vals[key, y] = vals[key, y - 1]; vals[key, y - 1] = tmp }
	return m % 2 ? vals[key, (m + 1) / 2] : (vals[key, m / 2] + vals[key, m / 2 + 1]) / 2
}
function si(x,   u, s) {                  # 3 significant digits, SI suffix
	if (x >= 1e9) { u = 1e9; s = "G" } else if (x >= 1e6) { u = 1e6; s = "M" }
	else if (x >= 1e3) { u = 1e3; s = "k" } else { u = 1; s = "" }
	x /= u
	return sprintf(x >= 100 ? "%.0f%s" : x >= 10 ? "%.1f%s" : "%.2f%s", x, s)
}
function ratio(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "n/a" }
# "met" or "MISSED ..." for a time ratio (heaplib time / best peer time)
function time_target(r, who) { return r > 1.05 ? sprintf("time MISSED by %.0f%% (%.2fx %s)", (r - 1) * 100, r, who) : "time met" }
# the same for a peak RSS (MiB) against the lowest peer's
function rss_target(h, b, who,   lim) {
	lim = 1.1 * b > b + 2 ? 1.1 * b : b + 2
	return h > lim ? sprintf("RSS MISSED: %.1f > %.1f MiB (%s %.1f)", h, lim, who, b) : "RSS met"
}
function missed(t) { return t ~ /MISSED/ }
FILENAME ~ /redis-info.tsv$/ { rinfo[$1] = $2; next }
FILENAME ~ /redis-check.tsv$/ { nchk++; chk_a[nchk] = $1; chk_pre[nchk] = $2; chk_st[nchk] = $3
	chk_thr[nchk] = $4; chk_txt[nchk] = $5; next }
FILENAME ~ /redis.tsv$/ {
	if (FNR == 1) next
	rkey = $2 SUBSEP $4; rseen = 1
	if ($3 != "ok") { rbad[$2]++; rfails[++nrfails] = "run " $1 ", " $2 ": " $3; next }
	rv[rkey, ++rn[rkey]] = $5
	next }
FILENAME ~ /header.tsv$/ { hdr[$1] = hdr[$1] == "" ? $2 : hdr[$1] "\n" $2
	if ($1 == "alloc") { ver[$2] = $3; path[$2] = $4 }
	next }
FILENAME ~ /callgrind.tsv$/ { cg[$1, $2, 1] = $3; cg[$1, $2, 2] = $4; cgseen = 1; next }
FNR == 1 { next }                          # runs.tsv header
{
	key = $1 SUBSEP $2 SUBSEP $3
	nrun[key]++
	if ($6 != "ok") {
		nbad[key]++
		if (!(key in firstbad)) firstbad[key] = $6 ($6 == "FAIL" ? " (exit 2)" : "")
		fails[++nfails] = $0
		next
	}
	m = ++nok[key]
	vals["ops" SUBSEP key, m] = $8
	vals["rss" SUBSEP key, m] = $9 / 1024
	vals["ext" SUBSEP key, m] = $13
	vals["grow" SUBSEP key, m] = $14 >= 0 ? ($15 - $14) / 1024 : "n/a"
	ename[$1] = $12
}
END {
	nw = split(workloads, W, " "); nt = split(threads, T, " "); na = split(order, A, " ")
	desc["fastpath"] = "malloc/free pairs of 16-512 B, each thread on its own"
	desc["server"] = "larson shape: random slot replacement, slot arrays handed between threads (remote frees)"
	desc["prodcons"] = "xmalloc shape: half the threads allocate, the other half free"
	desc["batches"] = "threadtest shape: allocate 2000 blocks, free them all, repeat"
	desc["falseshare"] = "cache-scratch shape: objects freed/reallocated by another thread, then written hard"
	desc["churn"] = "threads created and joined continually, 300 blocks each"
	desc["blowup"] = "8 MiB/thread of one class, free 90%, refill with another: peak RSS against peak live (extra)"
	desc["large"] = "64 KiB - 8 MiB blocks with realloc growth"
	desc["malloclarge"] = "malloc-large shape: 5-25 MiB blocks, at most 20 live, each replaced at random and memset whole; " \
		"faults_per_alloc: minor page faults per block allocated"
	desc["mstress"] = "mimalloc test-stress shape: short-lived threads keep random sets of mixed-size objects and hand some on " \
		"through shared transfer slots; foreign_free_pct: frees of another thread's block"
	desc["larson-sized"] = "server with free_sized(p, size) for every free where the allocator has one; " \
		"sized_free_pct: 100 if it had, 0 if the frees fell back to free"

	# medians, min, max; the best peer of each figure
	for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) {
		fk = W[i] SUBSEP T[j]; best[fk] = ""
		for (k = 1; k <= na; k++) {
			key = fk SUBSEP A[k]; m = nok[key] + 0
			ok[key] = m > 0 && !nbad[key]
			if (m > 0) {
				med[key] = median("ops" SUBSEP key, m)
				lo[key] = vals["ops" SUBSEP key, 1]; hi[key] = vals["ops" SUBSEP key, m]
				rss[key] = median("rss" SUBSEP key, m); ext[key] = median("ext" SUBSEP key, m)
				grow[key] = vals["grow" SUBSEP key, 1] == "n/a" ? "n/a" : sprintf("%+.1f", median("grow" SUBSEP key, m))
			}
			if (A[k] != "heaplib" && ok[key] && (best[fk] == "" || med[key] > med[fk SUBSEP best[fk]]))
				best[fk] = A[k]
			if (A[k] != "heaplib" && ok[key] && (lean[fk] == "" || rss[key] < rss[fk SUBSEP lean[fk]]))
				lean[fk] = A[k]
		}
		h = fk SUBSEP "heaplib"
		if (!ok[h] || best[fk] == "") tgt[fk] = ok[h] ? "no peer" : "FAIL"
		else {
			tgt[fk] = time_target(med[fk SUBSEP best[fk]] / med[h], best[fk]) ", " \
				rss_target(rss[h], rss[fk SUBSEP lean[fk]], lean[fk])
			nrows++; if (missed(tgt[fk])) nmissed++
		}
	}

	# redis: per command (and peak_rss_kib) and allocator, median [min, max]
	nrc = split(redis_cmds, RC, " "); RC[++nrc] = "peak_rss_kib"
	for (c = 1; c <= nrc; c++) {
		rb[c] = ""
		for (k = 1; k <= na; k++) {
			rkey = A[k] SUBSEP RC[c]; m = rn[rkey] + 0
			for (x = 1; x <= m; x++) vals["r" SUBSEP rkey, x] = rv[rkey, x]
			rok[rkey] = m > 0 && !rbad[A[k]]
			if (m > 0) { rmed[rkey] = median("r" SUBSEP rkey, m); rlo[rkey] = vals["r" SUBSEP rkey, 1]
				rhi[rkey] = vals["r" SUBSEP rkey, m] }
			if (A[k] == "heaplib" || !rok[rkey]) continue
			# the best peer: most requests/s; for RSS, the least
			if (rb[c] == "" || (RC[c] == "peak_rss_kib" ? rmed[rkey] < rmed[rb[c] SUBSEP RC[c]] : \
			    rmed[rkey] > rmed[rb[c] SUBSEP RC[c]]))
				rb[c] = A[k]
		}
		h = "heaplib" SUBSEP RC[c]
		if (!rseen || !have_heaplib) continue
		if (!rok[h] || rb[c] == "") { rtgt[c] = rok[h] ? "no peer" : "FAIL"; continue }
		b = rb[c] SUBSEP RC[c]
		rtgt[c] = RC[c] == "peak_rss_kib" ? rss_target(rmed[h] / 1024, rmed[b] / 1024, rb[c]) : \
			rmed[b] / rmed[h] > 1.05 ? sprintf("req/s MISSED by %.0f%% (%.2fx %s)", (rmed[b] / rmed[h] - 1) * 100, rmed[b] / rmed[h], rb[c]) : "req/s met"
		nrows++; if (missed(rtgt[c])) nmissed++
	}

	print "# heaplib benchmark results"
	print ""
	print "Generated by `scripts/bench.sh` from real runs; do not edit by hand."
	print ""
	print "- Machine: " hdr["machine"]
	print "- Date: " hdr["date"]
	print "- Command: `" hdr["command"] "` (" hdr["settings"] ")"
	print "- Elapsed: " hdr["elapsed"]
	print "- Allocators (preloaded with `LD_PRELOAD` into the same `stress/heaplib-stress` binary):"
	for (k = 1; k <= na; k++)
		printf "  - %s: %s, %s\n", A[k], ver[A[k]], path[A[k]]
	ns = split(hdr["skipped"], S, "\n")
	for (k = 1; k <= ns; k++) printf "- Skipped: %s\n", S[k]
	printf "- Protocol: %d runs per figure of %s s each, allocators interleaved (%s, %s, ...), " \
		"run r of every allocator with seed r; each run a fresh process.\n", runs, duration, order, order
	print "- ops/s = allocator calls (malloc, calloc, realloc, free) per second: the median, [min, max]."
	print "  Peak RSS = the run's resident high-water mark (VmHWM), MiB, median. heaplib/X > 1: heaplib"
	print "  is faster; for RSS, < 1: heaplib uses less memory. A figure with a failed run reads FAIL."
	if (rseen) {
		print "- Redis: `" rinfo["version"] "` (" rinfo["package"] "), driven by `redis-benchmark " rinfo["settings"] "`"
		print "  on loopback; each run a fresh server (`--save '' --appendonly no`), allocators interleaved like"
		print "  the stress runs. Peak RSS = the server's VmHWM from /proc/PID/status just before `SHUTDOWN NOSAVE`."
		print "- How redis-server reaches its allocator: it is linked against `" rinfo["needed"] "` and calls"
		print "  its allocator by the plain names (its undefined symbols: `" rinfo["undefined"] "`), so a"
		print "  preloaded `malloc` interposes jemalloc's, but without a preload it runs on jemalloc, not glibc."
		print "  So: glibc runs with `bench-glibc.so` (bench/redis-preload.c: malloc and friends passed to"
		print "  glibc's `__libc_malloc`..., `malloc_usable_size` from libc itself, jemalloc's `mallctl`,"
		print "  `nallocx`, `malloc_stats_print` answered \"not supported\"); jemalloc preloads the library redis"
		print "  is linked with; tcmalloc, mimalloc and heaplib preload their library followed by `bench-stubs.so`"
		print "  (only those three jemalloc extras, where the allocator lacks them), so that redis does not start an"
		print "  idle jemalloc (and its background thread) beside the allocator measured. `INFO memory` still"
		print "  names jemalloc: redis prints the allocator it was compiled for."
		print "- Crossing check (table under Redis): one run per allocator with `bench-check.so` preloaded in front,"
		print "  which forwards to the allocator and counts every free/realloc/malloc_usable_size of a pointer the"
		print "  allocator did not return; a control program that frees a `__libc_malloc` block must count 1."
	}
	print "- Targets (issue 11): heaplib's time <= 1.0 x the best peer's (missed when the median ratio is"
	print "  over 1.05), peak RSS <= max(1.1 x, 2 MiB +) the lowest peer's, redis requests/s >= the best"
	print "  peer's (missed over 1.05); computed from the medians by bench/report.awk."
	print "- Raw data: `" raw "/` (runs.tsv, runs.jsonl, callgrind/, redis.tsv, redis-check.tsv, redis/)."
	print ""

	if (cgseen) {
		print "## Fast path: instructions per malloc/free pair (callgrind)"
		print ""
		printf "`valgrind --tool=callgrind` (total Ir) on `stress/callgrind.c`, single thread, %d and %d\n", cg_n, 2 * cg_n
		print "malloc/free pairs: (Ir(2N) - Ir(N)) / N, so start-up cancels, minus the loop's own"
		print "instructions (the same program without the calls). 64 B: one size, the purest fast path;"
		print "mixed: 16-512 B in 32 classes, each class revisited every 32 pairs."
		print ""
		print "| allocator | Ir/pair, 64 B | heaplib/X | Ir/pair, mixed 16-512 B | heaplib/X |"
		print "|---|---:|---:|---:|---:|"
		for (p = 1; p <= 2; p++) {
			pat = p == 1 ? "64" : "mixed"
			loop[pat] = (cg["loop", pat, 1] != "FAIL" && cg["loop", pat, 2] != "FAIL") ? \
				(cg["loop", pat, 2] - cg["loop", pat, 1]) / cg_n : 0
			for (k = 1; k <= na; k++) {
				a = A[k]
				if (cg[a, pat, 1] == "FAIL" || cg[a, pat, 2] == "FAIL" || cg[a, pat, 1] == "") ir[a, pat] = "FAIL"
				else ir[a, pat] = (cg[a, pat, 2] - cg[a, pat, 1]) / cg_n - loop[pat]
			}
		}
		for (k = 1; k <= na; k++) {
			a = A[k]; line = "| " a
			for (p = 1; p <= 2; p++) {
				pat = p == 1 ? "64" : "mixed"
				line = line " | " (ir[a, pat] == "FAIL" ? "FAIL" : sprintf("%.1f", ir[a, pat]))
				if (a == "heaplib" || !have_heaplib) line = line " | -"
				else if (ir["heaplib", pat] == "FAIL" || ir[a, pat] == "FAIL") line = line " | n/a"
				else line = line " | " ratio(ir["heaplib", pat], ir[a, pat])
			}
			print line " |"
		}
		printf "\nThe loop itself: %.1f Ir per iteration (64 B), %.1f (mixed), subtracted above. " \
			"heaplib/X < 1: heaplib runs fewer instructions.\n\n", loop["64"], loop["mixed"]
	}

	if (have_heaplib) {
		print "## Summary: heaplib throughput against each peer"
		print ""
		print "heaplib's median ops/s divided by the peer's (> 1: heaplib faster); peak RSS (MiB, median) against"
		print "the lowest peer's; the target column judges both against issue 11's targets."
		print ""
		printf "Targets: %d of %d rows (workload rows and redis commands) missed; see the target column.\n\n", nmissed, nrows
		line = "| workload | threads | heaplib ops/s"; sep = "|---|---:|---:"
		for (k = 1; k <= na; k++) if (A[k] != "heaplib") { line = line " | /" A[k]; sep = sep "|---:" }
		print line " | /best peer | RSS heaplib (lowest peer) | target |"; print sep "|---|---|---|"
		for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) {
			fk = W[i] SUBSEP T[j]; h = fk SUBSEP "heaplib"
			line = "| " W[i] " | " T[j] " | " (ok[h] ? si(med[h]) : "FAIL")
			for (k = 1; k <= na; k++) {
				if (A[k] == "heaplib") continue
				key = fk SUBSEP A[k]
				line = line " | " (!ok[h] ? "FAIL" : !ok[key] ? "n/a (" A[k] " FAIL)" : ratio(med[h], med[key]))
			}
			b = best[fk]
			line = line " | " (!ok[h] ? "FAIL" : b == "" ? "n/a" : ratio(med[h], med[fk SUBSEP b]) " (" b ")")
			b = lean[fk]
			line = line " | " (!ok[h] ? "FAIL" : b == "" ? sprintf("%.1f", rss[h]) : \
				sprintf("%.1f (%s %.1f)", rss[h], b, rss[fk SUBSEP b]))
			print line " | " tgt[fk] " |"
		}
		print ""
	}

	if (rseen) {
		print "## Redis: requests/s per command and the server's peak RSS"
		print ""
		print "Median [min, max] over the runs; heaplib/best peer > 1: heaplib serves more requests per second"
		print "(for RSS, < 1: heaplib uses less)."
		print ""
		line = "| command"; sep = "|---"
		for (k = 1; k <= na; k++) { line = line " | " A[k]; sep = sep "|---:" }
		print line " | heaplib/best peer | target |"; print sep "|---|---|"
		for (c = 1; c <= nrc; c++) {
			isrss = RC[c] == "peak_rss_kib"
			line = "| " (isrss ? "peak RSS, MiB" : RC[c] " req/s")
			for (k = 1; k <= na; k++) {
				rkey = A[k] SUBSEP RC[c]
				if (rbad[A[k]]) line = line " | FAIL"
				else if (!rok[rkey]) line = line " | -"
				else if (isrss) line = line sprintf(" | %.1f [%.1f, %.1f]", rmed[rkey] / 1024, rlo[rkey] / 1024, rhi[rkey] / 1024)
				else line = line " | " si(rmed[rkey]) " [" si(rlo[rkey]) ", " si(rhi[rkey]) "]"
			}
			h = "heaplib" SUBSEP RC[c]
			line = line " | " (rb[c] == "" || !rok[h] ? "n/a" : ratio(rmed[h], rmed[rb[c] SUBSEP RC[c]]) " (" rb[c] ")")
			print line " | " (c in rtgt ? rtgt[c] : "-") " |"
		}
		print ""
		print "Crossing check: `bench-check.so` in front of each allocator (one run, " \
			"its own small request count), counts of calls it saw."
		print ""
		print "| allocator | LD_PRELOAD after the check | status | server threads | mallocs | frees | mallctl | foreign free / realloc / usable_size |"
		print "|---|---|---|---:|---:|---:|---:|---|"
		for (x = 1; x <= nchk; x++) {
			t = chk_txt[x]; delete cv
			nkv = split(t, KV, " ")
			for (y = 1; y <= nkv; y++) { split(KV[y], P, "="); cv[P[1]] = P[2] }
			pre = chk_pre[x]; gsub(/[^ ]*\//, "", pre)
			printf "| %s | `%s` | %s | %s | %s | %s | %s | %s / %s / %s |\n", chk_a[x], pre, chk_st[x], chk_thr[x],
				cv["malloc"] + cv["calloc"] + cv["realloc"] + cv["aligned"], cv["free"], cv["mallctl"],
				cv["foreign_free"], cv["foreign_realloc"], cv["foreign_usable_size"]
		}
		print ""
		print "The control frees one block taken from glibc behind the check's back: 1 foreign free there shows"
		print "that a crossing would be counted. jemalloc's row has one thread more: its background thread."
		print ""
		# plot data: one row per command (RSS last), allocators' median, min, max
		for (c = 1; c <= nrc; c++) {
			line = (RC[c] == "peak_rss_kib" ? "peak_RSS_MiB" : RC[c])
			for (k = 1; k <= na; k++) {
				rkey = A[k] SUBSEP RC[c]; d = RC[c] == "peak_rss_kib" ? 1024 : 1e6
				line = line (rok[rkey] ? sprintf(" %.6g %.6g %.6g", rmed[rkey] / d, rlo[rkey] / d, rhi[rkey] / d) : " NaN NaN NaN")
			}
			print line > (plotdat ".redis")
		}
	}

	print "## Per workload"
	for (i = 1; i <= nw; i++) {
		w = W[i]
		print ""
		print "### " w
		print ""
		print desc[w] "."
		print ""
		# churn: RSS must stay flat; blowup: RSS against live bytes
		more = w == "churn" ? " RSS growth after warm-up, MiB |" : w == "blowup" ? " peak RSS / peak live |" : ""
		if (w == "churn") print "RSS growth after warm-up: resident set at the end minus at 25% of the run, median.\n"
		if (w == "blowup") print "peak RSS / peak live: includes the harness's own arrays (about 1 MiB per thread).\n"
		print "| threads | allocator | ops/s median | [min, max] | peak RSS MiB | heaplib/X ops/s | heaplib/X RSS | " \
			(ename[w] != "" ? ename[w] : "extra") " (median) |" more
		print "|---:|---|---:|---|---:|---:|---:|---:|" (more != "" ? "---:|" : "")
		for (j = 1; j <= nt; j++) {
			fk = w SUBSEP T[j]; h = fk SUBSEP "heaplib"
			for (k = 1; k <= na; k++) {
				a = A[k]; key = fk SUBSEP a
				line = "| " T[j] " | " (a == "heaplib" ? "**heaplib**" : a)
				if (!ok[key]) {
					if (nbad[key]) line = line sprintf(" | FAIL %d/%d runs: %s | | | | | |", nbad[key], nrun[key], firstbad[key])
					else line = line " | no run | | | | | |"
					print line (more != "" ? " |" : ""); continue
				}
				line = line " | " si(med[key]) " | [" si(lo[key]) ", " si(hi[key]) "] | " sprintf("%.1f", rss[key])
				if (a == "heaplib")
					line = line " | " (best[fk] == "" ? "-" : "best peer: " ratio(med[h], med[fk SUBSEP best[fk]]) " (" best[fk] ")") " | -"
				else if (!have_heaplib) line = line " | - | -"
				else if (!ok[h]) line = line " | FAIL | FAIL"
				else line = line " | " ratio(med[h], med[key]) " | " ratio(rss[h], rss[key])
				line = line " | " sprintf("%.4g", ext[key]) " |"
				if (w == "churn") line = line " " grow[key] " |"
				if (w == "blowup") line = line " " (ext[key] > 0 ? sprintf("%.2f", rss[key] / ext[key]) : "n/a") " |"
				print line
			}
		}
	}

	print ""
	print "## Failures"
	print ""
	for (f = 1; f <= nrfails; f++) print "- redis " rfails[f]
	if (nrfails) print ""
	if (!nfails) print "None: every run exited 0 with a result" (nrfails ? " (stress runs)." : ".")
	else {
		print "Runs that did not exit 0 with a result (exit 2 = the harness found a corrupted block or a"
		print "NULL; the message and the command to repeat the run are in `" raw "/fail/`):"
		print ""
		for (f = 1; f <= nfails; f++) {
			split(fails[f], F, "\t")
			printf "- %s, %s threads, %s, run %s (seed %s): %s (exit %s): `%s`\n", F[1], F[2], F[3], F[4], F[5], F[6], F[7], F[17]
		}
	}

	# plot data: one block per (workload, allocator), in order;
	# columns threads, median, min, max (ops/s).  plot.panels: per
	# workload, 1 if any allocator has a point (gnuplot stops on a panel
	# without any).
	for (i = 1; i <= nw; i++) {
		p = 0
		for (j = 1; j <= nt; j++) for (k = 1; k <= na; k++) if (ok[W[i] SUBSEP T[j] SUBSEP A[k]]) p = 1
		panels = panels (i > 1 ? " " : "") p
	}
	print panels > (plotdat ".panels")
	for (i = 1; i <= nw; i++) for (k = 1; k <= na; k++) {
		printf "# %s %s\n", W[i], A[k] > plotdat
		any = 0
		for (j = 1; j <= nt; j++) {
			key = W[i] SUBSEP T[j] SUBSEP A[k]
			if (ok[key]) { printf "%s %.6g %.6g %.6g\n", T[j], med[key], lo[key], hi[key] > plotdat; any = 1 }
		}
		if (!any) printf "%s NaN NaN NaN\n", T[1] > plotdat
		printf "\n\n" > plotdat
	}
}
