#!/usr/bin/env bash
# Build heaplib and run its TAP tests in three builds:
#   plain  in the source tree    every test (UNIT, CORE, API, CONC, PLAIN)
#   tsan   in build-tsan/        UNIT, CORE and CONC tests, ThreadSanitizer
#   asan   in build-asan/        UNIT, CORE, API and CONC tests, ASan + UBSan
# The sanitizer builds are VPATH builds of a clean copy of the sources
# (build-src/): configure refuses a VPATH build of a source tree that is
# itself configured, and make would pick up its objects.
#
# Every TAP assertion counts: "ok" passes ("# SKIP" skips), "not ok" fails,
# and a test program that fails without any "not ok" (a crash, a wrong
# plan, a bad exit status) or that does not build counts one failure.  A
# build that fails counts one failure and the other builds still run.
# The last line is "N passed, N failed" (skips on the line before); the exit status is 0
# iff nothing failed.
set -u

cd "$(dirname "$0")/.." || exit 1
root=$PWD

export HEAPLIB_TEST_SCALE="${HEAPLIB_TEST_SCALE:-1}"
export TSAN_OPTIONS="halt_on_error=1:report_signal_unsafe=0:exitcode=66"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

passed=0
failed=0
skipped=0
failures=()	# "variant<TAB>what<TAB>log file"

note_failure() {
	failed=$((failed + 1))
	failures+=("$1"$'\t'"$2"$'\t'"$3")
}

# make_groups DIR: set UNIT_TESTS ... TEST_HELPERS from DIR's Makefile.
make_groups() {
	UNIT_TESTS= CORE_TESTS= API_TESTS= CONC_TESTS= PLAIN_TESTS= TEST_HELPERS=
	local line
	while IFS= read -r line; do
		case $line in
		UNIT_TESTS=* | CORE_TESTS=* | API_TESTS=* | CONC_TESTS=* | PLAIN_TESTS=* | TEST_HELPERS=*)
			printf -v "${line%%=*}" '%s' "${line#*=}" ;;
		esac
	done < <(make -s -C "$1" show-test-groups 2>/dev/null)
	[ -n "$UNIT_TESTS$API_TESTS$CONC_TESTS" ]
}

# count_test VARIANT DIR TEST: add up TEST's results from its .log/.trs.
count_test() {
	local variant=$1 dir=$2 t=$3
	local base=${t%.sh}
	local log="$dir/$base.log" trs="$dir/$base.trs"
	if [ ! -f "$trs" ] || [ ! -f "$log" ]; then
		note_failure "$variant" "$t (no result)" "$log"
		return
	fi
	local counts p f s
	# ok / ok # SKIP / not ok (not ok # TODO is an expected failure).
	counts=$(awk '
		/^ok([ \t]|$)/ {
			if (tolower($0) ~ /#[ \t]*skip/) s++; else p++; next }
		/^not ok([ \t]|$)/ {
			if (tolower($0) ~ /#[ \t]*todo/) s++; else f++; next }
		/^1\.\.0([ \t]|$)/ { s++ }
		END { printf "%d %d %d\n", p, f, s }' "$log")
	read -r p f s <<<"$counts"
	passed=$((passed + p))
	skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		note_failure "$variant" "$t ($f not ok)" "$log"
		failed=$((failed + f - 1))
	elif grep -Eq '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
		note_failure "$variant" "$t (crashed or bad exit)" "$log"
	fi
}

# run_tests VARIANT DIR TEST...: build what the tests need (each program on
# its own, so one that does not compile fails alone), run them, count.
run_tests() {
	local variant=$1 dir=$2
	shift 2
	local t progs=() runnable=() built=()
	for t in "$@"; do
		case $t in *.sh) ;; *) progs+=("$t") ;; esac
	done
	if [ "$variant" = plain ]; then
		# shellcheck disable=SC2206
		progs+=($TEST_HELPERS)
	fi
	local buildlog="$dir/test-build-$variant.log"
	make -C "$dir" -k -j2 "${progs[@]}" >"$buildlog" 2>&1
	for t in "${progs[@]}"; do
		[ -x "$dir/$t" ] && built+=("$t")
	done
	for t in "$@"; do
		case $t in
		*.sh) runnable+=("$t") ;;
		*)
			if [ -x "$dir/$t" ]; then
				runnable+=("$t")
			else
				note_failure "$variant" "$t (does not build)" "$buildlog"
			fi ;;
		esac
	done
	if [ "${#runnable[@]}" -gt 0 ]; then
		for t in "${runnable[@]}"; do
			rm -f "$dir/${t%.sh}.log" "$dir/${t%.sh}.trs"
		done
		echo "== $variant: running ${#runnable[@]} tests (HEAPLIB_TEST_SCALE=$HEAPLIB_TEST_SCALE)"
		# check_PROGRAMS narrowed to what built: make check would
		# otherwise stop at the first program that does not.
		make -C "$dir" -j2 check TESTS="${runnable[*]}" \
			check_PROGRAMS="${built[*]}"
		for t in "${runnable[@]}"; do
			count_test "$variant" "$dir" "$t"
		done
	fi
}

# ---- plain build, in the source tree --------------------------------------

echo "== plain: setup and build"
if bash scripts/setup.sh && make_groups "$root"; then
	# shellcheck disable=SC2086
	run_tests plain "$root" $UNIT_TESTS $CORE_TESTS $API_TESTS $CONC_TESTS $PLAIN_TESTS
else
	note_failure plain "setup / build" ""
fi

# ---- sanitizer builds ------------------------------------------------------

# A copy of the sources without build outputs; mtimes are kept, so the
# sanitizer builds stay incremental.
refresh_snapshot() {
	local snap="$root/build-src"
	mkdir -p "$snap" || return 1
	if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		{
			git -C "$root" ls-files -z -c -o --exclude-standard
			for f in configure Makefile.in aclocal.m4 build-aux/* m4/*; do
				[ -f "$f" ] && printf '%s\0' "$f"
			done
		} | tar -C "$root" --null -T - -cf - | tar -C "$snap" -xpf -
	else
		rm -rf "$snap"
		make -C "$root" distdir distdir="$snap" >/dev/null
	fi
}

sanitizer_build() {
	local variant=$1 flag=$2 dir="$root/build-$1"
	echo "== $variant: configure and build in ${dir#"$root"/}"
	mkdir -p "$dir" || return 1
	if [ ! -f "$dir/Makefile" ]; then
		(cd "$dir" && ../build-src/configure "$flag") >"$dir/configure-output.log" 2>&1 || {
			tail -n 30 "$dir/configure-output.log"
			return 1
		}
	fi
	make -C "$dir" -j2 && make_groups "$dir"
}

if [ -x "$root/configure" ] && refresh_snapshot; then
	snapshot_ok=1
else
	snapshot_ok=0
fi

if [ "$snapshot_ok" = 1 ] && sanitizer_build tsan --enable-tsan; then
	# shellcheck disable=SC2086
	run_tests tsan "$root/build-tsan" $UNIT_TESTS $CORE_TESTS $CONC_TESTS
else
	note_failure tsan "configure / build" "$root/build-tsan/configure-output.log"
fi

if [ "$snapshot_ok" = 1 ] && sanitizer_build asan --enable-asan; then
	# shellcheck disable=SC2086
	run_tests asan "$root/build-asan" $UNIT_TESTS $CORE_TESTS $API_TESTS $CONC_TESTS
else
	note_failure asan "configure / build" "$root/build-asan/configure-output.log"
fi

# ---- report ----------------------------------------------------------------

if [ "${#failures[@]}" -gt 0 ]; then
	echo
	echo "== failures"
	declare -A shown=()
	for entry in "${failures[@]}"; do
		IFS=$'\t' read -r variant what log <<<"$entry"
		echo "FAIL [$variant] $what${log:+  ($log)}"
	done
	for entry in "${failures[@]}"; do
		IFS=$'\t' read -r variant what log <<<"$entry"
		[ -n "$log" ] && [ -f "$log" ] || continue
		[ -z "${shown[$log]:-}" ] || continue
		shown[$log]=1
		echo
		echo "---- [$variant] tail of $log"
		tail -n 30 "$log"
	done
	echo
fi

[ "$skipped" -gt 0 ] && echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
