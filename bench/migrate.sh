# bench/migrate.sh, sourced by scripts/bench.sh: the nomadic-memory section
# of bench/results.md.  Runs bench/migrate (heaplib linked in) MIG_RUNS
# times and writes each figure's median [min, max] beside issue 10's
# target for it, judged from the measured medians.
mig_bin=$builddir/bench/migrate
mig_runs=${MIG_RUNS:-5}
mig_scale=4
if [ -n "$QUICK" ]; then mig_runs=3; mig_scale=1; fi

migrate_section() {
	if [ ! -x "$mig_bin" ]; then
		printf '\n## Nomadic memory\n\nskipped: bench/migrate was not built (`make bench/migrate`).\n'
		return
	fi
	for i in $(seq 1 "$mig_runs"); do
		"$mig_bin" "$mig_scale" >"$raw/migrate-$i.txt" 2>"$raw/migrate-$i.err" ||
			say "bench/migrate run $i failed (see $raw/migrate-$i.err)"
	done
	cat "$raw"/migrate-*.txt | awk -v runs="$mig_runs" -v scale="$mig_scale" '
	$2 ~ /^[0-9.]+$/ { v[$1] = v[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
	function med(s,   a, k, i, j, t) {
		k = split(s, a, " ")
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		lo = a[1]; hi = a[k]
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	BEGIN {
		# Issue 10'"'"'s move-latency targets are held against the move
		# alone (_inside_p50, the coordinator'"'"'s own time of each call'"'"'s
		# move); the round trips (_p50: queue, move, answer, and the
		# waiter'"'"'s wake-up) are shown against the same figures, for
		# reference ("ref"), not counted as missed.
		tgt["move_backing_64k_idle_inside_p50_us"] = "<= 40"
		tgt["move_backing_64k_loaded_inside_p50_us"] = "<= 80"
		tgt["move_backing_512k_idle_inside_p50_us"] = "<= 100"
		tgt["move_backing_512k_loaded_inside_p50_us"] = "<= 100"
		ref["move_backing_64k_idle_p50_us"] = "<= 40"
		ref["move_backing_64k_loaded_p50_us"] = "<= 80"
		ref["move_backing_512k_idle_p50_us"] = "<= 100"
		ref["move_backing_512k_loaded_p50_us"] = "<= 100"
		tgt["stall_64k_p99_us"] = "<= 150"; tgt["stall_512k_p99_us"] = "<= 150"
		tgt["stall_64k_max_us"] = "<= 1000"; tgt["stall_512k_max_us"] = "<= 1000"
		tgt["move_account_inside_mean_us"] = "<= 1"
		tgt["evac_mb_per_s"] = ">= 1000"; tgt["evac_app_loss"] = "<= 0.05"
		tgt["oom_p99_us"] = "<= 1000"
	}
	END {
		printf "\n## Nomadic memory (bench/migrate)\n\n"
		printf "`bench/migrate %d`, %d runs in a row, heaplib only; each figure the median [min, max]. ", scale, runs
		printf "Round trips (`move_*_p50/p99`) are `hl_migrate` calls: the request through the coordinator'"'"'s "
		printf "queue, the move and the answer (the waiter'"'"'s futex wake-up included); `move_*_inside_p50/p99` "
		printf "are the move alone, per call, as the coordinator times it, and the move-latency targets are held "
		printf "against them (the round trips are shown against the same figures as \"ref\", not counted); "
		printf "`move_*_inside_mean_us` is the mean over all moves of the run. Tiers: account (anonymous to anonymous: the books only), backing (anonymous to "
		printf "memfd and back, copied under a userfaultfd write-protect barrier). Stalls: a writer'"'"'s stores "
		printf "into the moving blocks that took over 5 us (write protection, and preemption: 3 threads on 2 "
		printf "cores). Evacuation: `hl_region_delete` of a region full of 16 KiB blocks (1 GiB at scale 4, "
		printf "64 MiB a scale below) into a memfd region, adjacent superblocks moved in batches, "
		printf "beside an application thread doing malloc/free (its loss: 1 - ops/s during / before). OOM: "
		printf "allocations only a full region can serve, resolved by moving other memory out.\n\n"
		printf "| figure | median [min, max] | target | met |\n|---|---:|---|---|\n"
		missed = 0
		for (i = 1; i <= n; i++) {
			k = order[i]; m = med(v[k]); t = (k in tgt) ? tgt[k] : (k in ref) ? ref[k] : ""
			met = ""
			if (t != "") {
				split(t, tt, " ")
				met = (tt[1] == "<=" ? m + 0 <= tt[2] + 0 : m + 0 >= tt[2] + 0) ? "yes" : "**no**"
				if (k in ref) { met = "ref: " (met == "yes" ? "under" : "over"); t = "(" t ")" }
				else if (met != "yes") missed++
			}
			printf "| %s | %g [%g, %g] | %s | %s |\n", k, m, lo, hi, t, met
		}
		printf "\nTargets missed: %d.\n", missed
		printf "\nThe same figures drawn: [migrate.png](migrate.png) (when gnuplot is installed).\n"
	}'
}
