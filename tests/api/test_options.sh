#!/bin/sh
# The settings conventions, through a preloaded program (plain build):
# HEAPLIB_OPTIONS (a separate variable overrides the same key), an unknown
# key said once, HEAPLIB_VERBOSE printing the options in force at start,
# HEAPLIB_STATS printing the statistics at exit (regions and tasks too),
# and nothing at all for a program that asks for none of it.
set -u
lib="${top_builddir:-.}/.libs/libheaplib.so"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else echo "# stderr was:"; sed 's/^/#   /' "$tmp"; not_ok "$1"; fi; }
tmp=$(mktemp) || exit 99
trap 'rm -f "$tmp"' EXIT
echo "1..6"

env LD_PRELOAD="$lib" /bin/true 2>"$tmp"
check "a program that asks for nothing prints nothing" '[ ! -s "$tmp" ]'

env HEAPLIB_VERBOSE=1 HEAPLIB_OPTIONS=decay_ms:500,cache_budget:8M LD_PRELOAD="$lib" /bin/true 2>"$tmp"
check "HEAPLIB_OPTIONS sets the options, HEAPLIB_VERBOSE prints them at start" \
	'grep -q "^heaplib: options: decay_ms:500 cache_budget:8388608 " "$tmp"'

env HEAPLIB_VERBOSE=1 HEAPLIB_OPTIONS=decay_ms:500 HEAPLIB_DECAY_MS=700 LD_PRELOAD="$lib" /bin/true 2>"$tmp"
check "HEAPLIB_DECAY_MS overrides decay_ms in HEAPLIB_OPTIONS" 'grep -q "decay_ms:700 " "$tmp"'

env HEAPLIB_OPTIONS=decay_ms:5,bogus:1 LD_PRELOAD="$lib" sh -c 'true' 2>"$tmp"
check "an unknown key is said once on stderr, naming it" \
	'[ "$(grep -c "HEAPLIB_OPTIONS: bogus:1: unknown option" "$tmp")" = 1 ]'

env HEAPLIB_STATS=1 LD_PRELOAD="$lib" sort /dev/null 2>"$tmp"
check "HEAPLIB_STATS=1 prints the statistics at exit, the options, the default region and task" \
	'grep -q "^superblocks_created " "$tmp" && grep -q "^option_decay_ms 1000$" "$tmp" && grep -q "^region_0_capacity 0$" "$tmp" && grep -q "^task_0_threads " "$tmp"'

env HEAPLIB_OPTIONS=stats LD_PRELOAD="$lib" /bin/true 2>"$tmp"
check "a boolean key alone turns it on (HEAPLIB_OPTIONS=stats)" 'grep -q "^heaps " "$tmp"'
exit 0
