#!/bin/sh
# heaplib as a drop-in malloc: standard programs run under
# LD_PRELOAD=libheaplib.so exit 0 and print exactly what they print
# without it, and a C program does not load the C++ runtime for the
# operators new and delete that libheaplib also exports.  TAP output.
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
unset HEAPLIB_STATS

lib="$top_builddir/.libs/libheaplib.so"
case $lib in /*) ;; *) lib="$(pwd)/$lib" ;; esac

echo "1..9"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }

if [ ! -f "$lib" ]; then
	echo "# $lib not found: build the library first"
	while [ "$n" -lt 9 ]; do not_ok "libheaplib.so exists"; done
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/heaplib-preload.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

# same NAME CMD...: CMD with and without the preload; both exit 0, same
# output (stdout and stderr).
same() {
	name=$1
	shift
	"$@" >"$tmp/plain" 2>&1
	prc=$?
	LD_PRELOAD="$lib" "$@" >"$tmp/pre" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ] && cmp -s "$tmp/plain" "$tmp/pre"; then
		ok "$name"
	else
		echo "# exit status $rc with the preload, $prc without"
		diff "$tmp/plain" "$tmp/pre" | head -10 | sed 's/^/# /'
		not_ok "$name"
	fi
}

# The loader binds malloc of a preloaded program to heaplib.
LD_DEBUG=bindings LD_PRELOAD="$lib" /bin/true 2>"$tmp/bind"
if grep "normal symbol \`malloc'" "$tmp/bind" | grep -q libheaplib; then
	ok "under LD_PRELOAD the loader binds malloc to libheaplib.so"
else
	grep "symbol \`malloc'" "$tmp/bind" | head -3 | sed 's/^/# /'
	not_ok "under LD_PRELOAD the loader binds malloc to libheaplib.so"
fi

# ls -l /: entries whose link count or time moves while other tests run
# (/proc, /sys, /tmp, /dev, /run) are left out of the comparison.
same "ls -l / exits 0 with the same listing" \
	sh -c 'ls -l / >"$1" && awk '\''$NF !~ /^(proc|sys|tmp|dev|run)$/ { $1 = $1; print }'\'' "$1"' sh "$tmp/ls"

awk 'BEGIN { s = 12345; for (i = 0; i < 20000; i++) {
	s = (s * 1103515245 + 12345) % 2147483648
	printf "%d line %x %s\n", s % 1000, s, substr("abcdefghijklmnopqrstuvwxyz", s % 26 + 1, s % 7 + 1) } }' \
	>"$tmp/lines"
same "sort of a 20000-line file exits 0 with the same output" sort "$tmp/lines"

if command -v python3 >/dev/null 2>&1; then
	same "python3 -c 'print(sum(range(10**6)))' exits 0 with the same output" \
		python3 -c 'print(sum(range(10**6)))'
else
	n=$((n + 1)); echo "ok $n # SKIP python3 not installed"
fi

same "sh -c 'echo hi | cat' exits 0 with the same output" sh -c 'echo hi | cat'

# env prints its environment: the same one, plus the LD_PRELOAD line.
same "env exits 0 and prints the same environment (LD_PRELOAD aside)" \
	sh -c 'env >"$1" && grep -v "^LD_PRELOAD=" "$1" | sort' sh "$tmp/envout"
LD_PRELOAD="$lib" env >"$tmp/env" 2>&1
if [ $? -eq 0 ] && grep -qx "LD_PRELOAD=$lib" "$tmp/env"; then
	ok "LD_PRELOAD=libheaplib.so env exits 0 and shows the preload"
else
	not_ok "LD_PRELOAD=libheaplib.so env exits 0 and shows the preload"
fi

# new and delete refer to the C++ runtime weakly (src/api/cxx.cc): no
# strong undefined symbol of libheaplib.so is the C++ runtime's.
if command -v nm >/dev/null 2>&1; then
	strong=$(nm -D --undefined-only "$lib" | awk '$1 == "U" { print $2 }' |
		grep -E '^(_Z|__cxa_|__gxx_)|@(GLIBCXX|CXXABI)_')
	if [ -z "$strong" ]; then
		ok "libheaplib.so refers to the C++ runtime only weakly"
	else
		echo "$strong" | sed 's/^/# strong: /'
		not_ok "libheaplib.so refers to the C++ runtime only weakly"
	fi
else
	n=$((n + 1)); echo "ok $n # SKIP nm not installed"
fi

# So a C program under the preload maps no libstdc++, unless the linker
# kept every library it was given (no --as-needed): then libheaplib.so
# names it as needed, and the loader must load it.
maps=$(LD_PRELOAD="$lib" cat /proc/self/maps | grep -c 'libstdc++')
if [ "$maps" -eq 0 ]; then
	ok "a C program under LD_PRELOAD=libheaplib.so loads no libstdc++ (cat /proc/self/maps)"
elif command -v objdump >/dev/null 2>&1 && objdump -p "$lib" | grep -q 'NEEDED.*libstdc++'; then
	n=$((n + 1)); echo "ok $n # SKIP the linker kept libstdc++ as needed (no --as-needed)"
else
	not_ok "a C program under LD_PRELOAD=libheaplib.so loads no libstdc++ (cat /proc/self/maps)"
fi
