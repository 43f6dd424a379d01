#!/bin/sh
# heaplib runs under valgrind: its address-space reservation starts small
# enough (valgrind refuses reservations above 32 GiB), and memcheck finds
# no error in a two-thread malloc/realloc/free workload.  TAP output.
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}

if ! command -v valgrind >/dev/null 2>&1; then
	echo "1..0 # SKIP valgrind not installed"
	exit 0
fi

echo "1..2"
prog="$top_builddir/tests/conc/workload"
# The program is libtool-linked: let libtool point valgrind at the real
# binary rather than at its wrapper script.
if [ -x "$top_builddir/libtool" ]; then
	run="$top_builddir/libtool --mode=execute"
else
	run=
fi

log=$(mktemp "${TMPDIR:-/tmp}/heaplib-valgrind.XXXXXX") || exit 99
trap 'rm -f "$log"' EXIT INT TERM

# nouserintercepts: valgrind would otherwise put its own malloc in place
# of the one libheaplib exports, and heaplib would not run at all.
out=$($run valgrind --error-exitcode=9 --leak-check=no --log-file="$log" \
	--soname-synonyms=somalloc=nouserintercepts \
	"$prog" --ops 20000 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'

grep -E 'ERROR SUMMARY|heap usage|Invalid|uninitialised|Warning|valgrind:|Fatal|out of memory' "$log" |
	head -20 | sed 's/^/# /'
if [ "$rc" -eq 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
	echo "ok 1 - workload --ops 20000 under valgrind exits 0 with ERROR SUMMARY: 0 errors"
else
	echo "# exit status $rc"
	echo "not ok 1 - workload --ops 20000 under valgrind exits 0 with ERROR SUMMARY: 0 errors"
fi
# valgrind counts only the blocks its own malloc served: none, when every
# malloc of the program (and of libc on its behalf) went to heaplib.
if grep -q 'total heap usage: 0 allocs' "$log"; then
	echo "ok 2 - heaplib, not valgrind's malloc, served every allocation (total heap usage: 0 allocs)"
else
	echo "not ok 2 - heaplib, not valgrind's malloc, served every allocation (total heap usage: 0 allocs)"
fi
