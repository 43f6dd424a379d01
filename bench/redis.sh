# bench/redis.sh -- the Redis part of `make bench`, sourced by scripts/bench.sh
# (which defines say, ensure_pkg, can_apt, raw, allocs, lib_of, RUNS, CC).
#
# Debian's redis-server under each allocator, driven by redis-benchmark on
# loopback with -P 16: requests/s per command, and the server's peak RSS
# (VmHWM from /proc/PID/status, read just before shutdown).  Runs are
# interleaved across allocators like the stress runs.  Writes
#   $raw/redis.tsv        run, allocator, status, command, rps | rss rows
#   $raw/redis-check.tsv  one check run per allocator (bench/redis-preload.c)
#   $raw/redis-info.tsv   versions, how redis-server calls its allocator
#
# Debian links redis-server against libjemalloc.so.2 (unprefixed malloc,
# free, ..., plus mallctl, nallocx, malloc_stats_print).  A preloaded
# library's malloc interposes jemalloc's, but "no preload" would measure
# jemalloc, so glibc runs through bench-glibc.so; allocators without
# jemalloc's extras get bench-stubs.so after them (see redis-preload.c).
#
# Settings (environment or VAR=VALUE to scripts/bench.sh):
#   REDIS=0            skip Redis
#   REDIS_N=N          requests per command (default 2000000; QUICK 100000)
#   REDIS_KEYS=K       redis-benchmark -r: random keys/fields (default 200000)
#   REDIS_CLIENTS=C    connections (default 50)
#   REDIS_CHECK_N=N    requests per command in the check runs (default 20000)
#   REDIS_PIN=0        let the scheduler place server and client (default: pinned)

redis_cmds="SET GET LPUSH LPOP SADD HSET LRANGE_100"
# With 2 CPUs or more, the server runs on CPU 0 and redis-benchmark on CPU 1,
# so that the scheduler does not put both on one CPU in some runs only.
redis_pin_server=() redis_pin_client=()
if [ "${REDIS_PIN:-1}" != 0 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	redis_pin_server=(taskset -c 0) redis_pin_client=(taskset -c 1)
fi
redis_tests="set,get,lpush,lpop,sadd,hset,lrange_100"

# redis_setup: 0 when redis can be measured; builds the preloads
redis_setup() {
	redis_ok=
	if [ "${REDIS:-1}" = 0 ]; then
		skipped+=("redis: REDIS=0")
		return 1
	fi
	local p
	for p in redis-server redis-tools; do
		if ! command -v "${p/-tools/-benchmark}" >/dev/null 2>&1 && ! ensure_pkg "$p"; then
			skipped+=("redis: $p not installed (install $p, or bash scripts/setup.sh bench)")
			say "skipped: redis ($p not installed)"
			return 1
		fi
	done
	redis_dir=$raw/redis
	mkdir -p "$redis_dir"
	local m
	for m in glibc stubs check; do
		if ! $CC -O2 -shared -fPIC -fvisibility=hidden "-DPRELOAD_${m^^}" \
			-o "$redis_dir/bench-$m.so" "$srcdir/bench/redis-preload.c" -ldl 2>>"$redis_dir/build.log"; then
			skipped+=("redis: cannot compile bench/redis-preload.c with $CC (see $redis_dir/build.log)")
			say "skipped: redis (cannot compile bench/redis-preload.c)"
			return 1
		fi
	done
	$CC -O2 -o "$redis_dir/cross-control" "$srcdir/bench/cross-control.c" 2>>"$redis_dir/build.log" || true
	# what the server is and how it reaches its allocator
	local bin syms
	bin=$(readlink -f "$(command -v redis-server)")
	syms=$(nm -D --undefined-only "$bin" 2>/dev/null | awk '{ print $2 }' |
		grep -E '^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|malloc_usable_size|mallctl|nallocx|mallocx|rallocx|sdallocx|dallocx|xallocx|malloc_stats_print|je_.*)(@.*)?$' |
		tr '\n' ' ' | sed 's/ $//')
	{
		printf 'version\t%s\n' "$(redis-server --version | head -1)"
		printf 'package\tredis-server %s, redis-tools %s\n' "$(pkg_version redis-server)" "$(pkg_version redis-tools)"
		printf 'needed\t%s\n' "$(readelf -d "$bin" 2>/dev/null | awk -F'[][]' '/NEEDED/ && /alloc/ { printf "%s%s", n++ ? " " : "", $2 }')"
		printf 'undefined\t%s\n' "$syms"
		printf 'settings\t-P 16 -c %s -n %s -r %s -t %s%s\n' "$REDIS_CLIENTS" "$REDIS_N" "$REDIS_KEYS" "$redis_tests" \
			"$([ ${#redis_pin_server[@]} -gt 0 ] && echo " (server on CPU 0, redis-benchmark on CPU 1)")"
	} >"$redis_dir/../redis-info.tsv"
	redis_ok=1
}

# redis_preload ALLOC: the LD_PRELOAD that makes redis-server use ALLOC
redis_preload() {
	case $1 in
	glibc) echo "$redis_dir/bench-glibc.so" ;;
	jemalloc) echo "${lib_of[$1]}" ;;        # the library it is linked with, first
	*) echo "${lib_of[$1]} $redis_dir/bench-stubs.so" ;;
	esac
}

# redis_free_port: a loopback port nobody listens on
redis_free_port() {
	local port
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$((7400 + RANDOM % 2000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
	done
	return 1
}

# redis_serve ALLOC PRELOAD TAG N [ENV...]: one server, one redis-benchmark
# run of N requests per command; sets rs_status, rs_csv, rs_hwm, rs_threads
redis_serve() {
	local a=$1 pre=$2 tag=$3 n=$4
	shift 4
	local port pid i log=$redis_dir/server-$tag.log
	rs_status=ok rs_csv=$redis_dir/bench-$tag.csv rs_hwm= rs_threads=
	if ! port=$(redis_free_port); then rs_status="ERROR(no free port)"; return; fi
	"${redis_pin_server[@]}" env "LD_PRELOAD=$pre" "$@" redis-server --port "$port" --bind 127.0.0.1 --save '' \
		--appendonly no --dir "$redis_dir" --logfile "$log" --daemonize no >/dev/null 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$(redis-cli -p "$port" ping 2>/dev/null)" != PONG ]; then
		kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
		rs_status="ERROR(server did not start: $log)"
		return
	fi
	if ! timeout -k 5 600 "${redis_pin_client[@]}" redis-benchmark -p "$port" -P 16 -c "$REDIS_CLIENTS" -n "$n" \
		-r "$REDIS_KEYS" -t "$redis_tests" --csv >"$rs_csv" 2>"$redis_dir/bench-$tag.err"; then
		rs_status="ERROR(redis-benchmark failed)"
	fi
	rs_hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	rs_threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	local rc=0
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rs_status" = ok ]; then
		rs_status=$([ "$rc" -gt 128 ] && echo "CRASH(signal $((rc - 128)))" || echo "ERROR(exit $rc)")
	fi
	[ -n "$rs_hwm" ] || [ "$rs_status" != ok ] || rs_status="ERROR(no VmHWM)"
}

# redis_rows RUN ALLOC: redis.tsv rows from the last redis_serve
redis_rows() {
	if [ "$rs_status" != ok ]; then
		printf '%s\t%s\t%s\t\t\n' "$1" "$2" "$rs_status"
		return
	fi
	awk -F, -v r="$1" -v a="$2" -v hwm="$rs_hwm" -v thr="$rs_threads" '
		{ gsub(/"/, "", $1); gsub(/"/, "", $2) }
		$1 ~ /needed to benchmark/ || $1 == "test" { next }
		{ c = $1; sub(/ .*/, "", c); printf "%s\t%s\tok\t%s\t%s\n", r, a, c, $2 }
		END { printf "%s\t%s\tok\tpeak_rss_kib\t%s\n%s\t%s\tok\tthreads\t%s\n", r, a, hwm, r, a, thr }' "$rs_csv"
}

redis_estimate() {   # seconds: ~1.2 M requests/s on the six short commands, ~0.3 M on LRANGE_100
	awk -v n="$REDIS_N" -v c="$REDIS_CHECK_N" -v a="$na" -v r="$RUNS" \
		'BEGIN { printf "%d", a * r * (1.5 + n * (7 / 1.2e6 + 1 / 0.3e6)) + a * (2 + c * 30e-6) }'
}

redis_bench() {
	[ -n "$redis_ok" ] || return 0
	local a r pre
	say "redis: check runs (bench-check.so in front of each allocator, $REDIS_CHECK_N requests per command)"
	: >"$raw/redis-check.tsv"
	for a in "${allocs[@]}"; do
		pre=$(redis_preload "$a")
		rm -f "$redis_dir/check-$a.out"
		redis_serve "$a" "$redis_dir/bench-check.so $pre" "check-$a" "$REDIS_CHECK_N" \
			"BENCH_CHECK_OUT=$redis_dir/check-$a.out"
		printf '%s\t%s\t%s\t%s\t%s\n' "$a" "$pre" "$rs_status" "$rs_threads" \
			"$(cat "$redis_dir/check-$a.out" 2>/dev/null || echo "no report")" >>"$raw/redis-check.tsv"
	done
	# the control: a program that frees glibc's memory through the checked
	# free must be caught (foreign_free=1), or the check proves nothing
	if [ -x "$redis_dir/cross-control" ]; then
		rm -f "$redis_dir/check-control.out"
		env "LD_PRELOAD=$redis_dir/bench-check.so" "BENCH_CHECK_OUT=$redis_dir/check-control.out" \
			"$redis_dir/cross-control" >/dev/null 2>&1 || true
		printf 'control\t(none: __libc_malloc, then free)\tok\t1\t%s\n' \
			"$(cat "$redis_dir/check-control.out" 2>/dev/null || echo "no report")" >>"$raw/redis-check.tsv"
	fi
	awk -F'\t' '{ s = $5; f = 0
		if (match(s, /foreign_free=[0-9]+/)) f += substr(s, RSTART + 13, RLENGTH - 13)
		if (match(s, /foreign_realloc=[0-9]+/)) f += substr(s, RSTART + 16, RLENGTH - 16)
		if (match(s, /foreign_usable_size=[0-9]+/)) f += substr(s, RSTART + 20, RLENGTH - 20)
		out = out sprintf(" %s=%s", $1, $3 == "ok" ? f : $3) }
		END { print "bench: redis: pointers crossing allocators:" out " (control must be 1)" }' "$raw/redis-check.tsv"

	say "redis: $RUNS runs x ${#allocs[@]} allocators, $REDIS_N requests per command, -P 16 -c $REDIS_CLIENTS -r $REDIS_KEYS"
	printf 'run\tallocator\tstatus\tmetric\tvalue\n' >"$raw/redis.tsv"
	for ((r = 1; r <= RUNS; r++)); do
		for a in "${allocs[@]}"; do
			redis_serve "$a" "$(redis_preload "$a")" "$a-run$r" "$REDIS_N"
			[ "$rs_status" = ok ] || say "FAILED: redis run $r $a: $rs_status"
			redis_rows "$r" "$a" >>"$raw/redis.tsv"
		done
		awk -F'\t' -v r="$r" '$1 == r && $3 == "ok" && $4 == "SET" { s = s sprintf(" %s %.2f", $2, $5 / 1e6) }
			$1 == r && $4 == "peak_rss_kib" { m = m sprintf(" %s %.1f", $2, $5 / 1024) }
			END { printf "bench: redis run %d: SET Mreq/s%s | peak RSS MiB%s\n", r, s, m }' "$raw/redis.tsv"
	done
}
