#!/bin/sh
# The test tree keeps its own rules (TAP):
#  1. tests/lib/hooks.h names exactly the test hook points of the sources
#     (every HL_HOOK("...") in src/ and lf/), so a parking test can never
#     wait at a point that no longer exists;
#  2. tests/api/ uses only the public header: its programs include
#     heaplib.h, the TAP library and system headers, nothing of src/ or lf/;
#  3. the library links no dependency that nothing uses: libc, pthreads,
#     the loader, and liburcu-common only because the coordinator's queue
#     calls its wfcqueue (never liburcu's RCU library, whose call_rcu
#     allocates and starts a thread).
set -u
src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }

echo "1..3"

in_src=$(grep -rhoE 'HL_HOOK\("[a-z_]+"\)' "$src/src" "$src/lf" |
	sed 's/HL_HOOK("\(.*\)")/\1/' | sort -u)
in_list=$(grep -oE '^#define HOOK_[A-Z_]+ "[a-z_]+"' "$src/tests/lib/hooks.h" |
	sed 's/.*"\(.*\)"/\1/' | sort -u)
if [ -n "$in_src" ] && [ "$in_src" = "$in_list" ]; then
	ok "tests/lib/hooks.h names the $(echo "$in_src" | wc -l) hook points of src/ and lf/"
else
	echo "# in the sources: $(echo $in_src)"
	echo "# in tests/lib/hooks.h: $(echo $in_list)"
	not_ok "tests/lib/hooks.h names the hook points of src/ and lf/"
fi

bad=$(grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$src"/tests/api/*.c "$src"/tests/api/*.cc |
	grep -vE '"(heaplib|tap)\.h"')
if [ -z "$bad" ]; then
	ok "tests/api/ includes only heaplib.h and tap.h of the project's headers"
else
	echo "$bad" | sed 's/^/# /'
	not_ok "tests/api/ includes only heaplib.h and tap.h of the project's headers"
fi
lib="${top_builddir:-$src}/.libs/libheaplib.so"
needed=$(objdump -p "$lib" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }')
extra=$(echo "$needed" | grep -vE '^(libc|libpthread|ld-linux[-a-z0-9_]*|liburcu-common)\.so' || true)
if echo "$needed" | grep -q '^liburcu-common' &&
   ! objdump -T "$lib" 2>/dev/null | grep -q ' cds_wfcq_'; then
	extra="liburcu-common (no cds_wfcq_ symbol used)"
fi
if [ -n "$needed" ] && [ -z "$extra" ]; then
	ok "libheaplib.so needs only $(echo $needed)"
else
	echo "# NEEDED: $(echo $needed)"
	not_ok "libheaplib.so needs no library that nothing uses (extra: $(echo $extra))"
fi
exit 0
