#!/bin/sh
# Proof that the ABA tests have teeth: the same deterministic tests, built
# with the ABA tag shrunk to 2 bits (HL_TAG_BITS=2), must fail.  Each line
# of TAP here passes only when its tag-2 program reports "not ok" for the
# ABA it provokes (and was not killed by a timeout).
bld=${top_builddir:-.}
echo "1..2"
n=0
for prog in tests/conc/test_teeth_tag2 tests/unit/test_tstack_aba_tag2; do
	n=$((n + 1))
	out=$(timeout 120 "$bld/$prog" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	if [ "$rc" -eq 124 ]; then
		echo "not ok $n - $prog (tag 2 bits) timed out"
	elif [ "$rc" -ne 0 ] && echo "$out" | grep -q '^not ok'; then
		echo "ok $n - $prog with a 2-bit tag reports the ABA it provokes (exit $rc)"
	else
		echo "not ok $n - $prog with a 2-bit tag did not catch ABA (exit $rc)"
	fi
done
