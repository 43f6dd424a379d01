#!/usr/bin/env bash
# Benchmark heaplib against glibc, jemalloc, tcmalloc and mimalloc, following
# BENCH.md: every workload of stress/heaplib-stress at 1, 2 and 8 threads,
# allocators interleaved (A B C D E A B C D E ...), the median of many runs
# with its min and max; plus callgrind instruction counts for the fast path.
#
#   make bench [QUICK=1]              (bench/bench.mk)
#   bash scripts/bench.sh [VAR=VALUE ...]
#
# Writes bench/results.md and bench/throughput.png in the build directory,
# and every run's figures under bench/raw/<date>/ (git-ignored).
#
# Settings, from the environment or as VAR=VALUE arguments:
#   QUICK=1          3 runs of 0.15 s per figure, callgrind N=1e5 (< 2 min)
#   RUNS=R           runs per figure (default 10; QUICK 3)
#   DURATION=S       seconds per run (default 1.4; QUICK 0.15)
#   THREADS="1 2 8"  thread counts
#   WORKLOADS="..."  workloads (default: all eleven, the "all" of heaplib-stress)
#   ALLOCATORS="..." subset of: glibc jemalloc tcmalloc mimalloc heaplib
#   CG_N=N           callgrind pairs: runs with N and 2N (default 1e6; QUICK 1e5)
#   NO_APT=1         never apt-get a missing peer, valgrind or gnuplot
#   BUILDDIR=DIR     where stress/heaplib-stress and .libs/libheaplib.so are
#   BENCH_COMMAND=.. the command line to quote in results.md
#
# A run that exits 2 (the harness found a corrupted block), crashes or times
# out is recorded as FAIL in the tables, never dropped.  The script itself
# fails only when it cannot run at all: times are reported, not judged.
set -eu
export LC_ALL=C

for arg in "$@"; do
	case $arg in
	QUICK=* | RUNS=* | DURATION=* | THREADS=* | WORKLOADS=* | ALLOCATORS=* | \
	CG_N=* | NO_APT=* | BUILDDIR=* | BENCH_COMMAND=* | CC=*)
		export "${arg?}" ;;
	*)
		echo "bench: unknown argument '$arg' (settings are VAR=VALUE; see the top of $0)" >&2
		exit 1 ;;
	esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BUILDDIR:-}" ]; then
	builddir=$(cd "$BUILDDIR" && pwd)
elif [ -x stress/heaplib-stress ]; then
	builddir=$PWD
else
	builddir=$srcdir
fi

QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
if [ -n "$QUICK" ]; then
	RUNS=${RUNS:-3}; DURATION=${DURATION:-0.15}; CG_N=${CG_N:-100000}
else
	RUNS=${RUNS:-10}; DURATION=${DURATION:-1.4}; CG_N=${CG_N:-1000000}
fi
THREADS=${THREADS:-"1 2 8"}
WORKLOADS=${WORKLOADS:-"fastpath server prodcons batches falseshare churn blowup large malloclarge mstress larson-sized"}
ALLOCATORS=${ALLOCATORS:-"glibc jemalloc tcmalloc mimalloc heaplib"}
NO_APT=${NO_APT:-}
[ "$NO_APT" = 0 ] && NO_APT=
CC=${CC:-cc}
CG_N=$(awk -v n="$CG_N" 'BEGIN { printf "%d", n }')   # accepts 1e6

settings="RUNS=$RUNS DURATION=$DURATION THREADS=\"$THREADS\" CG_N=$CG_N"
[ -n "$QUICK" ] && settings="QUICK=$QUICK $settings"
if [ -n "${BENCH_COMMAND:-}" ]; then
	command_line="$BENCH_COMMAND"
	[ -n "$QUICK" ] && command_line="$command_line QUICK=$QUICK"
else
	command_line="bash scripts/bench.sh"
	for arg in "$@"; do command_line="$command_line $(printf '%q' "$arg")"; done
fi

say() { printf 'bench: %s\n' "$*"; }
now() { date +%s.%N; }
# seconds as "12m34s"
hms() { awk -v s="$1" 'BEGIN { s = int(s + 0.5); printf "%dm%02ds", s / 60, s % 60 }'; }

# ---- what we measure ------------------------------------------------------

stress=$builddir/stress/heaplib-stress
heaplib=$builddir/.libs/libheaplib.so
for f in "$stress" "$heaplib"; do
	if [ ! -e "$f" ]; then
		echo "bench: $f is missing: build first (bash scripts/setup.sh, or make)" >&2
		exit 1
	fi
done

stamp=$(date +%Y%m%d-%H%M%S)
outdir=$builddir/bench
raw=$outdir/raw/$stamp
mkdir -p "$raw/fail"
ln -sfn "$stamp" "$outdir/raw/latest"

# Copies, so that a rebuild during a long run cannot mix two versions.
# Shown relative to the build tree: no machine's path goes into results.md.
heaplib_built=${heaplib#"$builddir"/}
cp "$stress" "$raw/heaplib-stress"
cp "$(readlink -f "$heaplib")" "$raw/libheaplib.so"
stress=$raw/heaplib-stress
heaplib=$raw/libheaplib.so

# apt-get as root, or through sudo when it needs no password
apt=
if [ -z "$NO_APT" ] && command -v apt-get >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		apt=apt-get
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		apt="sudo -n apt-get"
	fi
fi
can_apt() { [ -n "$apt" ]; }
# pkg_version PKG: its installed version, or nothing
pkg_version() {
	dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "install" && $3 == "installed" { print $4 }'
}
apt_updated=
# ensure_pkg PKG: installs PKG with apt-get when it is missing and we may
ensure_pkg() {
	[ -n "$(pkg_version "$1")" ] && return 0
	can_apt || return 1
	say "installing $1 with apt-get (log: $raw/apt.log)"
	export DEBIAN_FRONTEND=noninteractive
	if ! $apt install -y -q --no-install-recommends "$1" >>"$raw/apt.log" 2>&1; then
		[ -n "$apt_updated" ] && return 1
		apt_updated=1
		$apt update -q >>"$raw/apt.log" 2>&1 || return 1
		$apt install -y -q --no-install-recommends "$1" >>"$raw/apt.log" 2>&1 || return 1
	fi
}
# find_lib SONAME: the path of an installed shared library
find_lib() {
	local d
	for d in "/usr/lib/$(uname -m)-linux-gnu" /usr/lib64 /usr/lib /usr/local/lib; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

skipped=()
declare -A lib_of pkg_of soname_of version_of
pkg_of=([glibc]=libc6 [jemalloc]=libjemalloc2 [tcmalloc]=libtcmalloc-minimal4 [mimalloc]=libmimalloc2.0)
soname_of=([jemalloc]=libjemalloc.so.2 [tcmalloc]=libtcmalloc_minimal.so.4 [mimalloc]=libmimalloc.so.2)

heaplib_version=$(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)
allocs=()
for a in $ALLOCATORS; do
	case $a in
	glibc)
		lib_of[$a]=
		version_of[$a]="libc6 $(pkg_version libc6)" ;;
	heaplib)
		lib_of[$a]=$heaplib
		version_of[$a]="git $heaplib_version" ;;
	jemalloc | tcmalloc | mimalloc)
		p=${pkg_of[$a]}
		if ! find_lib "${soname_of[$a]}" >/dev/null && ! ensure_pkg "$p"; then
			why="not installed; install $p"
			can_apt || why="$why (apt-get not possible here: not root, no sudo, or NO_APT)"
			skipped+=("$a: $why")
			say "skipped: $a ($why)"
			continue
		fi
		if ! lib_of[$a]=$(find_lib "${soname_of[$a]}"); then
			skipped+=("$a: ${soname_of[$a]} not found after installing $p")
			say "skipped: $a (${soname_of[$a]} not found after installing $p)"
			continue
		fi
		v=$(pkg_version "$p")
		version_of[$a]="$p ${v:-(version unknown: not installed by dpkg)}" ;;
	*)
		echo "bench: unknown allocator '$a' (glibc jemalloc tcmalloc mimalloc heaplib)" >&2
		exit 1 ;;
	esac
	allocs+=("$a")
done
na=${#allocs[@]}
have_heaplib=
for a in "${allocs[@]}"; do [ "$a" = heaplib ] && have_heaplib=1; done

nw=$(echo $WORKLOADS | wc -w)
nt=$(echo $THREADS | wc -w)
total_runs=$((nw * nt * na * RUNS))

# ---- the fast path in instructions (callgrind) ----------------------------
#
# Callgrind replaces no malloc (only memcheck-like tools do), so the
# preloaded allocator is the one counted; the counts differing per allocator
# show it.  Ir(2N) - Ir(N) over N cancels start-up; "loop" is what the
# program's own loop costs per pair and is subtracted.

cg_n2=$((2 * CG_N))
cg_patterns="64 mixed"
cg_est=0
cg_ok=
if ! command -v valgrind >/dev/null 2>&1 && ! ensure_pkg valgrind; then
	skipped+=("callgrind: valgrind not installed (install valgrind)")
	say "skipped: callgrind instruction counts (valgrind not installed)"
elif ! $CC -O2 -fno-builtin -o "$raw/heaplib-callgrind" "$srcdir/stress/callgrind.c"; then
	skipped+=("callgrind: cannot compile stress/callgrind.c with $CC")
	say "skipped: callgrind instruction counts (cannot compile stress/callgrind.c with $CC)"
else
	cg_ok=1
	# 4 valgrind runs per allocator and for the bare loop, ~0.4 s each to
	# start; 3N pairs of ~200 Ir (on average: mimalloc's mixed sizes take
	# ~1000) per allocator and size pattern, at ~90 M Ir/s under callgrind.
	cg_est=$(awk -v n="$CG_N" -v a="$na" 'BEGIN { printf "%d", (a + 1) * 4 * 0.4 + a * 2 * 3 * n * 200 / 90e6 }')
fi

# ---- the machine ----------------------------------------------------------

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu" ] || cpu=$(uname -m)
distro=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo unknown)
{
	echo "machine	nproc $(nproc), $cpu, kernel $(uname -r), $distro"
	echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "command	$command_line"
	echo "settings	$settings"
	for a in "${allocs[@]}"; do
		shown=${lib_of[$a]:-(none: the system malloc)}
		[ "$a" = heaplib ] && shown="$heaplib_built, copied to bench/raw/$stamp/ for the run"
		echo "alloc	$a	${version_of[$a]}	$shown"
	done
	for s in "${skipped[@]+"${skipped[@]}"}"; do echo "skipped	$s"; done
} >"$raw/header.tsv"

# Expected time: the run's duration plus ~0.05 s to start a process, set up
# and tear down a workload (measured on 2 cores; oversubscribed rows overrun
# their duration a little, and a busy machine more).
est=$(awk -v r="$total_runs" -v d="$DURATION" -v c="$cg_est" 'BEGIN { printf "%d", r * (d + 0.05) + c + 3 }')
say "results in $outdir, raw data in $raw"
say "$na allocators (${allocs[*]}) x $nw workloads x $nt thread counts x $RUNS runs = $total_runs runs of ${DURATION} s"
say "expected time: about $(hms "$est") (started $(date '+%H:%M:%S'))"
t_begin=$(now)

cg_tsv=$raw/callgrind.tsv
: >"$cg_tsv"
if [ -n "$cg_ok" ]; then
	say "callgrind: $CG_N and $cg_n2 malloc/free pairs per allocator, sizes 64 B and 16-512 B mixed"
	# cg_ir LIB N PATTERN [loop]: the run's total Ir, or FAIL
	cg_ir() {
		local lib=$1 n=$2 pat=$3 loop=${4:-} out=$raw/callgrind/$5
		local env_pre=(env -u LD_PRELOAD)
		[ -n "$lib" ] && env_pre=(env "LD_PRELOAD=$lib")
		if timeout -k 5 600 "${env_pre[@]}" valgrind --tool=callgrind \
			--callgrind-out-file="$out.out" "$raw/heaplib-callgrind" "$n" "$pat" $loop \
			>"$out.log" 2>&1; then
			awk '/^(summary|totals):/ { print $2; exit }' "$out.out"
		else
			echo FAIL
		fi
	}
	mkdir -p "$raw/callgrind"
	for pat in $cg_patterns; do
		i1=$(cg_ir "" "$CG_N" "$pat" loop "loop-$pat-$CG_N")
		i2=$(cg_ir "" "$cg_n2" "$pat" loop "loop-$pat-$cg_n2")
		printf 'loop\t%s\t%s\t%s\n' "$pat" "$i1" "$i2" >>"$cg_tsv"
		for a in "${allocs[@]}"; do
			i1=$(cg_ir "${lib_of[$a]}" "$CG_N" "$pat" "" "$a-$pat-$CG_N")
			i2=$(cg_ir "${lib_of[$a]}" "$cg_n2" "$pat" "" "$a-$pat-$cg_n2")
			printf '%s\t%s\t%s\t%s\n' "$a" "$pat" "$i1" "$i2" >>"$cg_tsv"
		done
	done
	awk -F'\t' -v n="$CG_N" '
		$3 == "FAIL" || $4 == "FAIL" { out = out sprintf(" %s/%s=FAIL", $1, $2); next }
		{ out = out sprintf(" %s/%s=%.1f", $1, $2, ($4 - $3) / n) }
		END { print "bench: callgrind Ir per pair (gross, loop included):" out }' "$cg_tsv"
	valgrind --version >"$raw/valgrind-version" 2>&1 || true
fi

# ---- throughput: every (workload, threads), allocators interleaved --------

tsv=$raw/runs.tsv
printf 'workload\tthreads\tallocator\trun\tseed\tstatus\texit\tops_per_sec\tpeak_rss_kib\tseconds\tops\textra_name\textra_value\trss_q1_kib\trss_end_kib\twall_s\tmessage\n' >"$tsv"
: >"$raw/runs.jsonl"
limit=$(awk -v d="$DURATION" 'BEGIN { printf "%d", d * 10 + 60 }')

# run_one ALLOC WORKLOAD THREADS RUN: one process, one line of runs.tsv
run_one() {
	local a=$1 w=$2 t=$3 r=$4 seed=$(($4 + 1)) js=$raw/run.json err=$raw/run.err
	local env_pre=(env -u LD_PRELOAD)
	[ -n "${lib_of[$a]}" ] && env_pre=(env "LD_PRELOAD=${lib_of[$a]}")
	local t0 t1 rc=0 status
	rm -f "$js"
	t0=$(now)
	timeout -k 5 "$limit" "${env_pre[@]}" "$stress" --workload "$w" --threads "$t" \
		--duration "$DURATION" --seed "$seed" --json "$js" --quiet \
		--allocator-name "$a" >/dev/null 2>"$err" || rc=$?
	t1=$(now)
	# timeout(1) exits 124 when it stopped the run, 137 if that took SIGKILL;
	# a run the kernel killed (out of memory) also reads 137, but sooner.
	case $rc in
	0) status=ok ;;
	2) status=FAIL ;;
	124) status=TIMEOUT ;;
	*)
		if [ "$rc" -eq 137 ] && awk -v a="$t0" -v b="$t1" -v l="$limit" 'BEGIN { exit !(b - a >= l) }'; then
			status=TIMEOUT
		elif [ "$rc" -gt 128 ]; then
			status="CRASH(signal $((rc - 128)))"
		else
			status="ERROR(exit $rc)"
		fi ;;
	esac
	if [ "$status" = ok ] && ! grep -q '"ops_per_sec"' "$js" 2>/dev/null; then
		status="ERROR(no result)"
	fi
	if [ "$status" != ok ]; then
		local keep=$raw/fail/$w-$t-$a-run$((r + 1)).err
		cp "$err" "$keep"
		printf '%s %s\n' "${env_pre[*]}" "$stress --workload $w --threads $t --duration $DURATION --seed $seed" >>"$keep"
		local msg
		msg=$(grep -m1 "FAIL" "$err" || grep -m1 . "$err" || echo "no message")
		msg=$(printf '%s' "$msg" | tr '\t' ' ' | cut -c1-300)
		say "FAILED: $w threads=$t run $((r + 1)) $a: $status (exit $rc): $msg"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t%s\t%s\n' "$w" "$t" "$a" "$((r + 1))" "$seed" \
			"$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$msg" >>"$tsv"
		printf '{"workload": "%s", "threads": %s, "allocator": "%s", "run": %s, "seed": %s, "status": "%s", "exit": %s}\n' \
			"$w" "$t" "$a" "$((r + 1))" "$seed" "$status" "$rc" >>"$raw/runs.jsonl"
		return
	fi
	# The harness writes one JSON object per workload, on one line.
	awk -v w="$w" -v t="$t" -v a="$a" -v r="$((r + 1))" -v seed="$seed" -v t0="$t0" -v t1="$t1" \
		-v jsonl="$raw/runs.jsonl" '
		function num(k) { return match($0, "\"" k "\": *[-0-9.eE+]+") ? \
			substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 : "" }
		function str(k) { if (!match($0, "\"" k "\": *\"[^\"]*\"")) return ""
			s = substr($0, RSTART, RLENGTH); sub(/^[^:]*: *"/, "", s); sub(/"$/, "", s); return s }
		/"ops_per_sec"/ {
			printf "%s\t%s\t%s\t%s\t%s\tok\t0\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\n", w, t, a, r,
				seed, num("ops_per_sec"), num("peak_rss_kib"), num("seconds"), num("ops"),
				str("extra_name"), num("extra_value"), num("rss_q1_kib"), num("rss_end_kib"), t1 - t0
			line = $0; sub(/^ *\{/, "", line); sub(/\} *,? *$/, "", line)
			printf "{\"run\": %s, \"seed\": %s, \"status\": \"ok\", %s}\n", r, seed, line >> jsonl
		}' "$js" >>"$tsv"
}

done_runs=0
nfig=$((nw * nt))
fig=0
for w in $WORKLOADS; do
	for t in $THREADS; do
		fig=$((fig + 1))
		for ((r = 0; r < RUNS; r++)); do
			for a in "${allocs[@]}"; do
				run_one "$a" "$w" "$t" "$r"
				done_runs=$((done_runs + 1))
			done
		done
		# progress: this figure's medians, the time so far and to go
		awk -F'\t' -v w="$w" -v t="$t" -v order="${allocs[*]}" -v fig="$fig" -v nfig="$nfig" \
			-v done_runs="$done_runs" -v total="$total_runs" -v t0="$t_begin" -v now="$(now)" '
			$1 == w && $2 == t { n[$3]++
				if ($6 == "ok") v[$3, ++k[$3]] = $8; else bad[$3]++ }
			END {
				line = sprintf("[%2d/%d] %-12s T=%-2s", fig, nfig, w, t)
				na = split(order, al, " ")
				for (i = 1; i <= na; i++) {
					a = al[i]; m = k[a] + 0
					for (x = 2; x <= m; x++)                   # insertion sort
						for (y = x; y > 1 && v[a, y - 1] > v[a, y]; y--) {
							tmp = v[a, y]; v[a, y] = v[a, y - 1]; v[a, y - 1] = tmp }
					if (bad[a]) s = "FAIL"
					else if (!m) s = "-"
					else s = sprintf("%.3g", (m % 2 ? v[a, (m + 1) / 2] : (v[a, m / 2] + v[a, m / 2 + 1]) / 2) / 1e6)
					line = line sprintf(" %s %s", a, s)
				}
				el = now - t0; eta = el / done_runs * (total - done_runs)
				printf "bench: %s Mops/s | %dm%02ds elapsed, ~%dm%02ds to go\n", line,
					el / 60, el % 60, eta / 60, eta % 60
			}' "$tsv"
	done
done
rm -f "$raw/run.json" "$raw/run.err"
t_end=$(now)
elapsed=$(awk -v a="$t_begin" -v b="$t_end" 'BEGIN { printf "%d", b - a }')
echo "elapsed	$(hms "$elapsed") for $done_runs runs and the callgrind counts (expected $(hms "$est"))" >>"$raw/header.tsv"

# ---- bench/results.md and the plot data ----------------------------------

summarize() {
	awk -F'\t' -v workloads="$WORKLOADS" -v threads="$THREADS" -v order="${allocs[*]}" \
		-v runs="$RUNS" -v duration="$DURATION" -v cg_n="$CG_N" -v raw="bench/raw/$stamp" \
		-v plotdat="$raw/plot.dat" -v have_heaplib="$have_heaplib" '
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
			"through shared transfer slots; foreign_free_pct: frees of another thread'"'"'s block"
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
			}
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
		print "  Peak RSS = the run'"'"'s resident high-water mark (VmHWM), MiB, median. heaplib/X > 1: heaplib"
		print "  is faster; for RSS, < 1: heaplib uses less memory. A figure with a failed run reads FAIL."
		print "- Raw data: `" raw "/` (runs.tsv, runs.jsonl, callgrind/)."
		print ""

		if (cgseen) {
			print "## Fast path: instructions per malloc/free pair (callgrind)"
			print ""
			printf "`valgrind --tool=callgrind` (total Ir) on `stress/callgrind.c`, single thread, %d and %d\n", cg_n, 2 * cg_n
			print "malloc/free pairs: (Ir(2N) - Ir(N)) / N, so start-up cancels, minus the loop'"'"'s own"
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
			print "heaplib'"'"'s median ops/s divided by the peer'"'"'s (> 1: heaplib faster)."
			print ""
			line = "| workload | threads | heaplib ops/s"; sep = "|---|---:|---:"
			for (k = 1; k <= na; k++) if (A[k] != "heaplib") { line = line " | /" A[k]; sep = sep "|---:" }
			print line " | /best peer |"; print sep "|---|"
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
				print line " |"
			}
			print ""
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
			if (w == "blowup") print "peak RSS / peak live: includes the harness'"'"'s own arrays (about 1 MiB per thread).\n"
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
		if (!nfails) print "None: every run exited 0 with a result."
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
	}' "$raw/header.tsv" "$cg_tsv" "$tsv"
}
summarize >"$outdir/results.md"
say "wrote $outdir/results.md"

# ---- bench/throughput.png ------------------------------------------------

if ! command -v gnuplot >/dev/null 2>&1 && ! ensure_pkg gnuplot-nox; then
	say "skipped: bench/throughput.png (gnuplot not installed: install gnuplot-nox)"
else
	title="heaplib and peers: ops/s against threads (median of $RUNS, bars min-max), $(date -u +%Y-%m-%d), nproc $(nproc)"
	if gnuplot -e "datafile='$raw/plot.dat'; outfile='$outdir/throughput.png'" \
		-e "workloads='$WORKLOADS'; allocators='${allocs[*]}'; threads='$THREADS'" \
		-e "panels='$(cat "$raw/plot.dat.panels")'; plottitle='$title'" \
		"$srcdir/bench/plot.gp" 2>"$raw/gnuplot.log"; then
		say "wrote $outdir/throughput.png"
	else
		say "gnuplot failed (see $raw/gnuplot.log); no throughput.png"
		cat "$raw/gnuplot.log" >&2
	fi
fi
total_s=$(awk -v a="$t_begin" -v b="$(now)" 'BEGIN { print b - a }')
say "done in $(hms "$total_s"); expected $(hms "$est")"
