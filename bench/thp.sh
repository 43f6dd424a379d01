#!/usr/bin/env bash
# bench/thp.sh -- `make bench-thp`: peak RSS and throughput of a few stress
# workloads under each allocator with transparent huge pages set to
# "madvise" and to "always" (/sys/kernel/mm/transparent_hugepage/enabled),
# for heaplib's THP policy (doc/thp.md).  Changes a system-wide setting:
# needs root, and puts the original setting back on exit, whatever happens.
# Not part of `make bench` or of the tests.
#
#   make bench-thp [QUICK=1]
#   bash bench/thp.sh [VAR=VALUE ...]
#
# Settings, from the environment or as VAR=VALUE arguments:
#   RUNS=R            runs per figure (default 5; QUICK 2); modes interleaved
#                     per round (madvise: every workload and allocator, then
#                     always: the same; the other way round in even rounds),
#                     allocators interleaved within
#   DURATION=S        seconds per run (default 1.0; QUICK 0.3)
#   THREADS="1 2"     thread counts
#   WORKLOADS="server blowup large malloclarge"
#   ALLOCATORS="glibc jemalloc tcmalloc mimalloc heaplib" (missing ones skipped)
#   MODES="madvise always"
#   BUILDDIR=DIR      where stress/heaplib-stress and .libs/libheaplib.so are
#
# Writes bench/thp.md (generated) and the runs under bench/raw/thp-<date>/.
# Per run: ops/s, peak RSS (VmHWM), and the largest AnonHugePages seen in
# /proc/PID/smaps_rollup, sampled every 20 ms.
set -eu
export LC_ALL=C

for arg in "$@"; do
	case $arg in
	QUICK=* | RUNS=* | DURATION=* | THREADS=* | WORKLOADS=* | ALLOCATORS=* | MODES=* | BUILDDIR=*)
		export "${arg?}" ;;
	*) echo "bench-thp: unknown argument '$arg' (see the top of $0)" >&2; exit 1 ;;
	esac
done
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${BUILDDIR:-$srcdir}" && pwd)
QUICK=${QUICK:-}
[ "$QUICK" = 0 ] && QUICK=
if [ -n "$QUICK" ]; then RUNS=${RUNS:-2}; DURATION=${DURATION:-0.3}
else RUNS=${RUNS:-5}; DURATION=${DURATION:-1.0}; fi
THREADS=${THREADS:-"1 2"}
WORKLOADS=${WORKLOADS:-"server blowup large malloclarge"}
ALLOCATORS=${ALLOCATORS:-"glibc jemalloc tcmalloc mimalloc heaplib"}
MODES=${MODES:-"madvise always"}
say() { printf 'bench-thp: %s\n' "$*"; }

knob=/sys/kernel/mm/transparent_hugepage/enabled
if [ ! -r "$knob" ]; then
	echo "bench-thp: $knob does not exist: this kernel has no transparent huge pages" >&2
	exit 1
fi
orig=$(sed 's/.*\[\(.*\)\].*/\1/' "$knob")
if ! { echo "$orig" >"$knob"; } 2>/dev/null; then
	echo "bench-thp: cannot write $knob (needs root, and a writable /sys): THP is '$orig' here," \
		"so only that mode can be measured: run make bench and read its peak RSS" >&2
	exit 1
fi
restore() { echo "$orig" >"$knob" 2>/dev/null || echo "bench-thp: could not restore $knob to '$orig'!" >&2; }
trap restore EXIT
trap 'exit 130' INT TERM
defrag=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null || echo unknown)

stress=$builddir/stress/heaplib-stress
heaplib=$builddir/.libs/libheaplib.so
for f in "$stress" "$heaplib"; do
	[ -e "$f" ] || { echo "bench-thp: $f is missing: build first" >&2; exit 1; }
done
stamp=$(date +%Y%m%d-%H%M%S)
raw=$builddir/bench/raw/thp-$stamp
mkdir -p "$raw"
cp "$stress" "$raw/heaplib-stress"; stress=$raw/heaplib-stress
cp "$(readlink -f "$heaplib")" "$raw/libheaplib.so"; heaplib=$raw/libheaplib.so

declare -A lib_of
allocs=()
for a in $ALLOCATORS; do
	case $a in
	glibc) lib_of[$a]= ;;
	heaplib) lib_of[$a]=$heaplib ;;
	jemalloc) lib_of[$a]=/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2 ;;
	tcmalloc) lib_of[$a]=/usr/lib/$(uname -m)-linux-gnu/libtcmalloc_minimal.so.4 ;;
	mimalloc) lib_of[$a]=/usr/lib/$(uname -m)-linux-gnu/libmimalloc.so.2 ;;
	*) echo "bench-thp: unknown allocator '$a'" >&2; exit 1 ;;
	esac
	if [ -n "${lib_of[$a]}" ] && [ ! -e "${lib_of[$a]}" ]; then
		say "skipped: $a (${lib_of[$a]} not installed; bash scripts/setup.sh installs the peers)"
		continue
	fi
	allocs+=("$a")
done

tsv=$raw/runs.tsv
printf 'mode\tworkload\tthreads\tallocator\trun\tstatus\tops_per_sec\tpeak_rss_kib\tanon_huge_kib\twall_s\n' >"$tsv"
n=$(( $(echo $MODES | wc -w) * $(echo $WORKLOADS | wc -w) * $(echo $THREADS | wc -w) * ${#allocs[@]} * RUNS ))
say "THP was '$orig' (defrag '$defrag', left as it is); $n runs of $DURATION s, raw data in $raw"
t0=$(date +%s)

# run_one MODE ALLOC WORKLOAD THREADS RUN
run_one() {
	local mode=$1 a=$2 w=$3 t=$4 r=$5 js=$raw/run.json pid huge=0 h rc=0 s0 s1
	local env_pre=(env -u LD_PRELOAD)
	[ -n "${lib_of[$a]}" ] && env_pre=(env "LD_PRELOAD=${lib_of[$a]}")
	rm -f "$js"
	s0=$(date +%s.%N)
	"${env_pre[@]}" "$stress" --workload "$w" --threads "$t" --duration "$DURATION" \
		--seed "$r" --json "$js" --quiet --allocator-name "$a" >/dev/null 2>"$raw/run.err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		h=$(awk '/^AnonHugePages:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
		[ -n "$h" ] && [ "$h" -gt "$huge" ] && huge=$h
		sleep 0.02
	done
	wait "$pid" || rc=$?
	s1=$(date +%s.%N)
	if [ "$rc" -ne 0 ] || ! grep -q '"ops_per_sec"' "$js" 2>/dev/null; then
		printf '%s\t%s\t%s\t%s\t%s\tFAIL(exit %s)\t\t\t\t\n' "$mode" "$w" "$t" "$a" "$r" "$rc" >>"$tsv"
		say "FAILED: $mode $w T=$t $a run $r (exit $rc): $(head -c 200 "$raw/run.err")"
		return
	fi
	awk -v m="$mode" -v w="$w" -v t="$t" -v a="$a" -v r="$r" -v h="$huge" -v s0="$s0" -v s1="$s1" '
		function num(k) { return match($0, "\"" k "\": *[-0-9.eE+]+") ? \
			substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 : "" }
		/"ops_per_sec"/ { printf "%s\t%s\t%s\t%s\t%s\tok\t%s\t%s\t%s\t%.3f\n", m, w, t, a, r,
			num("ops_per_sec"), num("peak_rss_kib"), h, s1 - s0 }' "$js" >>"$tsv"
}

rev_modes=$(echo $MODES | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }')
for ((r = 1; r <= RUNS; r++)); do
	# odd rounds in the given order, even rounds reversed: a load that
	# drifts during a round weighs on both modes alike
	order=$MODES
	[ $((r % 2)) -eq 0 ] && order=$rev_modes
	for mode in $order; do
		echo "$mode" >"$knob"
		for w in $WORKLOADS; do for t in $THREADS; do for a in "${allocs[@]}"; do
			run_one "$mode" "$a" "$w" "$t" "$r"
		done; done; done
	done
	say "round $r of $RUNS done, $(( $(date +%s) - t0 )) s"
done
restore
rm -f "$raw/run.json" "$raw/run.err"

out=$builddir/bench/thp.md
awk -F'\t' -v modes="$MODES" -v workloads="$WORKLOADS" -v threads="$THREADS" -v order="${allocs[*]}" \
	-v hdr="THP was \`$orig\` (restored after), defrag \`$defrag\`; $RUNS runs of $DURATION s per figure, modes and allocators interleaved; $(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), heaplib $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)" \
	-v raw="bench/raw/thp-$stamp" '
	function median(key, m,   x, y, tmp) {
		for (x = 2; x <= m; x++)
			for (y = x; y > 1 && v[key, y - 1] > v[key, y]; y--) {
				tmp = v[key, y]; v[key, y] = v[key, y - 1]; v[key, y - 1] = tmp }
		return m % 2 ? v[key, (m + 1) / 2] : (v[key, m / 2] + v[key, m / 2 + 1]) / 2
	}
	FNR == 1 { next }
	$6 != "ok" { bad[$1, $2, $3, $4]++; next }
	{ k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4; m = ++n[k]
	  v["o" SUBSEP k, m] = $7; v["r" SUBSEP k, m] = $8 / 1024; v["h" SUBSEP k, m] = $9 / 1024 }
	END {
		nm = split(modes, M, " "); nw = split(workloads, W, " "); nt = split(threads, T, " "); na = split(order, A, " ")
		print "# Transparent huge pages: stress workloads under madvise and always"
		print ""
		print "Generated by `make bench-thp` (bench/thp.sh); do not edit by hand. " hdr ". Raw data: `" raw "/`."
		print ""
		print "Medians. ops/s: allocator calls per second; RSS: peak resident set (VmHWM), MiB; huge: the"
		print "largest AnonHugePages seen during the run, MiB. always/madvise: the ratio between the modes."
		print ""
		line = "| workload | threads | allocator"; sep = "|---|---:|---"
		for (i = 1; i <= nm; i++) { line = line " | ops/s " M[i] " | RSS " M[i] " | huge " M[i]; sep = sep "|---:|---:|---:" }
		if (nm == 2) { line = line " | ops/s " M[2] "/" M[1] " | RSS " M[2] "/" M[1]; sep = sep "|---:|---:" }
		print line " |"; print sep "|"
		for (i = 1; i <= nw; i++) for (j = 1; j <= nt; j++) for (k = 1; k <= na; k++) {
			line = "| " W[i] " | " T[j] " | " (A[k] == "heaplib" ? "**heaplib**" : A[k])
			for (x = 1; x <= nm; x++) {
				key = M[x] SUBSEP W[i] SUBSEP T[j] SUBSEP A[k]
				if (bad[key] || !n[key]) { line = line " | FAIL | | "; o[x] = ""; continue }
				o[x] = median("o" SUBSEP key, n[key]); rs[x] = median("r" SUBSEP key, n[key])
				line = line sprintf(" | %.4g | %.1f | %.1f", o[x], rs[x], median("h" SUBSEP key, n[key]))
			}
			if (nm == 2) line = line (o[1] != "" && o[2] != "" ? sprintf(" | %.2f | %.2f", o[2] / o[1], rs[2] / rs[1]) : " | n/a | n/a")
			print line " |"
		}
	}' "$tsv" >"$out"
say "wrote $out in $(( $(date +%s) - t0 )) s; THP is '$(sed 's/.*\[\(.*\)\].*/\1/' "$knob")' again"
