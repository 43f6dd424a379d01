#!/usr/bin/env bash
# Benchmark heaplib against glibc, jemalloc, tcmalloc and mimalloc, following
# BENCH.md: every workload of stress/heaplib-stress at 1, 2 and 8 threads,
# allocators interleaved (A B C D E A B C D E ...), the median of many runs
# with its min and max; callgrind instruction counts for the fast path; and
# Debian's redis-server under each allocator (bench/redis.sh).  The report
# (bench/report.awk) checks every row against issue 11's targets.
#
#   make bench [QUICK=1]              (bench/bench.mk)
#   bash scripts/bench.sh [VAR=VALUE ...]
#
# Writes bench/results.md, bench/throughput.png, bench/redis.png and bench/migrate.png in the build directory,
# and every run's figures under bench/raw/<date>/ (git-ignored).
#
# Settings, from the environment or as VAR=VALUE arguments:
#   QUICK=1          3 runs of 0.15 s per figure, callgrind N=1e5, redis
#                    1e5 requests per command (about 2 minutes)
#   RUNS=R           runs per figure (default 5, about 30 minutes; QUICK 3)
#   DURATION=S       seconds per run (default 1.4; QUICK 0.15)
#   THREADS="1 2 8"  thread counts
#   WORKLOADS="..."  workloads (default: all eleven, the "all" of heaplib-stress)
#   ALLOCATORS="..." subset of: glibc jemalloc tcmalloc mimalloc heaplib
#   CG_N=N           callgrind pairs: runs with N and 2N (default 1e6; QUICK 1e5)
#   REDIS=0, REDIS_N, REDIS_KEYS, REDIS_CLIENTS, REDIS_CHECK_N, REDIS_PIN: see bench/redis.sh
#   NO_APT=1         never apt-get a missing peer, valgrind, gnuplot or redis
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
	CG_N=* | NO_APT=* | BUILDDIR=* | BENCH_COMMAND=* | CC=* | REDIS=* | REDIS_N=* | \
	REDIS_KEYS=* | REDIS_CLIENTS=* | REDIS_CHECK_N=* | REDIS_PIN=*)
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
	RUNS=${RUNS:-3}; DURATION=${DURATION:-0.15}; CG_N=${CG_N:-100000}; REDIS_N=${REDIS_N:-100000}
else
	RUNS=${RUNS:-5}; DURATION=${DURATION:-1.4}; CG_N=${CG_N:-1000000}; REDIS_N=${REDIS_N:-2000000}
fi
REDIS_KEYS=${REDIS_KEYS:-200000}; REDIS_CLIENTS=${REDIS_CLIENTS:-50}; REDIS_CHECK_N=${REDIS_CHECK_N:-20000}
THREADS=${THREADS:-"1 2 8"}
WORKLOADS=${WORKLOADS:-"fastpath server prodcons batches falseshare churn blowup large malloclarge mstress larson-sized"}
ALLOCATORS=${ALLOCATORS:-"glibc jemalloc tcmalloc mimalloc heaplib"}
NO_APT=${NO_APT:-}
[ "$NO_APT" = 0 ] && NO_APT=
CC=${CC:-cc}
CG_N=$(awk -v n="$CG_N" 'BEGIN { printf "%d", n }')   # accepts 1e6

settings="RUNS=$RUNS DURATION=$DURATION THREADS=\"$THREADS\" CG_N=$CG_N REDIS_N=$REDIS_N REDIS_KEYS=$REDIS_KEYS"
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

# ---- redis-server under each allocator (bench/redis.sh) -------------------

. "$srcdir/bench/redis.sh"
redis_est=0
: >"$raw/redis-info.tsv"; : >"$raw/redis-check.tsv"; : >"$raw/redis.tsv"
redis_setup && redis_est=$(redis_estimate)

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
est=$(awk -v r="$total_runs" -v d="$DURATION" -v c="$cg_est" -v x="$redis_est" 'BEGIN { printf "%d", r * (d + 0.05) + c + x + 3 }')
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
redis_bench
t_end=$(now)
elapsed=$(awk -v a="$t_begin" -v b="$t_end" 'BEGIN { printf "%d", b - a }')
echo "elapsed	$(hms "$elapsed") for $done_runs runs, the callgrind counts and redis (expected $(hms "$est"))" >>"$raw/header.tsv"

# ---- bench/results.md and the plot data ----------------------------------

summarize() {
	awk -F'\t' -v workloads="$WORKLOADS" -v threads="$THREADS" -v order="${allocs[*]}" \
		-v runs="$RUNS" -v duration="$DURATION" -v cg_n="$CG_N" -v raw="bench/raw/$stamp" \
		-v plotdat="$raw/plot.dat" -v have_heaplib="$have_heaplib" \
		-v redis_cmds="$redis_cmds" -f "$srcdir/bench/report.awk" "$raw/header.tsv" "$cg_tsv" "$tsv" \
		"$raw/redis-info.tsv" "$raw/redis-check.tsv" "$raw/redis.tsv"
}
summarize >"$outdir/results.md"
if [ "$have_heaplib" = 1 ]; then
	. "$srcdir/bench/migrate.sh"
	say "nomadic memory: bench/migrate"
	migrate_section >>"$outdir/results.md"
fi
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
	if [ -s "$raw/plot.dat.redis" ]; then
		title="redis-server under each allocator: median of $RUNS runs, bars min-max, $(date -u +%Y-%m-%d), nproc $(nproc)"
		if gnuplot -e "datafile='$raw/plot.dat.redis'; outfile='$outdir/redis.png'" \
			-e "allocators='${allocs[*]}'; plottitle='$title'" \
			"$srcdir/bench/plot-redis.gp" 2>"$raw/gnuplot-redis.log"; then
			say "wrote $outdir/redis.png"
		else
			say "gnuplot failed (see $raw/gnuplot-redis.log); no redis.png"
			cat "$raw/gnuplot-redis.log" >&2
		fi
	fi
	if [ "$have_heaplib" = 1 ]; then
		. "$srcdir/bench/migrate-plot.sh"
		migrate_plot_data "$outdir/results.md" "$raw/plot.dat.migrate"
		title="nomadic memory (bench/migrate): medians, bars min-max, red: the targets of issue 10, $(date -u +%Y-%m-%d), nproc $(nproc)"
		if migrate_plot "$raw/plot.dat.migrate" "$outdir/migrate.png" "$title" 2>"$raw/gnuplot-migrate.log"; then
			say "wrote $outdir/migrate.png"
		else
			say "gnuplot failed (see $raw/gnuplot-migrate.log); no migrate.png"
			cat "$raw/gnuplot-migrate.log" >&2
		fi
	fi
fi
total_s=$(awk -v a="$t_begin" -v b="$(now)" 'BEGIN { print b - a }')
say "done in $(hms "$total_s"); expected $(hms "$est")"
