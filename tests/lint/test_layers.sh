#!/usr/bin/env bash
# scripts/check-layers.sh holds the sources to the layers of src/layers.conf
# (TAP).  First on the real build, then, to show that it has teeth, on a
# scratch copy of the real sources and table with deliberate violations
# added, compiled by the check itself (--compile):
#  1. the build of the library has no call or include up the layers or
#     sideways outside the table's allow lines (exit 0);
#  2. a function appended to a file of the lowest layer that calls one
#     appended to a file of the highest is an UP-CALL between the two;
#  3. a header of the lowest layer that includes one of the highest is an
#     UP-INCLUDE (even inside an #ifdef that no build defines);
#  4. two new files in one folder, one calling the other with no allow
#     line between them, are a SIDEWAYS call;
#  5. a new folder of src/ that no layer line covers is UNCOVERED;
#  6. a build directory without the library's objects is a usage error
#     (exit 2) that says how to build them.
# Needs bash, cc and nm; no network.
set -u
src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${top_builddir:-$src}
check=$src/scripts/check-layers.sh
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
show() { printf '%s\n' "$1" | sed 's/^/# /'; }

echo "1..6"

# ---- 1. the real build ------------------------------------------------------

out=$(bash "$check" --src "$src" --build "$bld" 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	ok "the build in $bld keeps to src/layers.conf"
else
	show "$out"
	not_ok "the build in $bld keeps to src/layers.conf (exit $rc)"
fi

# ---- the scratch copy --------------------------------------------------------

scratch=$(mktemp -d "${TMPDIR:-/tmp}/test_layers.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
# The sources and the table only: no objects of an in-tree build.
(cd "$src" && find src lf include -type f \
	\( -name '*.c' -o -name '*.cc' -o -name '*.h' -o -name layers.conf \) -print) |
	tar -C "$src" -T - -cf - | tar -C "$scratch" -xf -

# Compile the copy as the library is built, with the build's dependency
# flags when a configured build names them.
cflags="-O1 -DHL_TEST_HOOKS"
if [ -f "$bld/Makefile" ]; then
	cflags="$cflags $(sed -n 's/^\(CK\|URCU\)_CFLAGS = //p' "$bld/Makefile" | tr '\n' ' ')"
fi
export CHECK_LAYERS_CFLAGS="$cflags"

if [ ! -f "$scratch/src/layers.conf" ]; then
	show "no src/layers.conf in $src: nothing to check against"
	for t in "an up-call" "an up-include" "a sideways call" "a new folder"; do
		not_ok "$t in a scratch copy is caught (no src/layers.conf)"
	done
else
	# "RANK<TAB>FILE<TAB>(where)" for every source file, lowest layer
	# first: the files to inject into are picked from the table.
	listing=$(bash "$check" --src "$scratch" --list-files | grep -v $'^-\t' | sort -g -k1,1)
	lowest_c=$(printf '%s\n' "$listing" | awk -F '\t' '$2 ~ /\.c$/ { print $1 "\t" $2; exit }')
	highest_c=$(printf '%s\n' "$listing" | awk -F '\t' '$2 ~ /\.c$/ { l = $1 "\t" $2 } END { print l }')
	lowest_h=$(printf '%s\n' "$listing" | awk -F '\t' '$2 ~ /\.h$/ { print $1 "\t" $2; exit }')
	highest_h=$(printf '%s\n' "$listing" | awk -F '\t' '$2 ~ /\.h$/ { l = $1 "\t" $2 } END { print l }')

	# 2. Up-call: low file calls a function added to the high file.
	up_from='' up_to=''
	if [ -n "$lowest_c" ] && [ "${lowest_c%%$'\t'*}" != "${highest_c%%$'\t'*}" ]; then
		up_from=${lowest_c#*$'\t'} up_to=${highest_c#*$'\t'}
		cat >>"$scratch/$up_to" <<-'EOF'

		/* Added by tests/lint/test_layers.sh. */
		void check_layers_injected_callee(void);
		void check_layers_injected_callee(void) {}
		EOF
		cat >>"$scratch/$up_from" <<-'EOF'

		/* Added by tests/lint/test_layers.sh: a call up the layers. */
		void check_layers_injected_caller(void);
		void check_layers_injected_caller(void)
		{
			extern void check_layers_injected_callee(void);
			check_layers_injected_callee();
		}
		EOF
	fi

	# 3. Up-include: the lowest header includes the highest, by a path
	# relative to its own folder (as a careless edit would).
	inc_from='' inc_to=''
	if [ -n "$lowest_h" ] && [ "${lowest_h%%$'\t'*}" != "${highest_h%%$'\t'*}" ]; then
		inc_from=${lowest_h#*$'\t'} inc_to=${highest_h#*$'\t'}
		rel=$(realpath -m --relative-to="$scratch/$(dirname "$inc_from")" "$scratch/$inc_to")
		cat >>"$scratch/$inc_from" <<-EOF

		/* Added by tests/lint/test_layers.sh: an include up the layers. */
		#ifdef CHECK_LAYERS_NEVER_DEFINED
		#include "$rel"
		#endif
		EOF
	fi

	# 4. Sideways: two new files in the first folder (lowest layer
	# first) where the table allows no edge between them.
	side_a='' side_b=''
	for d in $(printf '%s\n' "$listing" | awk -F '\t' '$2 ~ /\.c$/ { sub(/\/[^\/]*$/, "", $2); print $2 }' | awk '!seen[$0]++'); do
		if bash "$check" --src "$scratch" --explain "$d/check_layers_side_a.c" \
			"$d/check_layers_side_b.c" 2>/dev/null | grep -q SIDEWAYS; then
			side_a=$d/check_layers_side_a.c side_b=$d/check_layers_side_b.c
			break
		fi
	done
	if [ -n "$side_a" ]; then
		cat >"$scratch/$side_b" <<-'EOF'
		/* Added by tests/lint/test_layers.sh. */
		void check_layers_side_callee(void);
		void check_layers_side_callee(void) {}
		EOF
		cat >"$scratch/$side_a" <<-'EOF'
		/* Added by tests/lint/test_layers.sh: a call no allow line permits. */
		void check_layers_side_callee(void);
		void check_layers_side_caller(void);
		void check_layers_side_caller(void) { check_layers_side_callee(); }
		EOF
	fi

	# 5. A new folder, unless the table covers all of src/.
	newdir=src/check_layers_newdir
	new_uncovered=$(bash "$check" --src "$scratch" --explain "$newdir/x.c" "$newdir/x.c" 2>&1 |
		grep -c 'is in no layer')
	mkdir -p "$scratch/$newdir"
	echo 'int check_layers_newdir_x;' >"$scratch/$newdir/x.c"

	out=$(bash "$check" --src "$scratch" --compile 2>&1)
	rc=$?
	# has PREFIX SYMBOL: a violation line of the check starts with
	# PREFIX and names SYMBOL (when given).
	has() {
		printf '%s\n' "$out" | grep -F "check-layers: $1" | grep -qF -- "${2:-}"
	}
	shown=0
	report() {
		if [ "$shown" = 0 ]; then
			show "exit $rc; the check said:"
			show "$out"
			shown=1
		fi
	}

	if [ -z "$up_from" ]; then
		skip "an up-call in a scratch copy is caught" "the table has one layer of .c files"
	elif [ "$rc" -eq 1 ] && has "UP-CALL $up_from -> $up_to (" check_layers_injected_callee; then
		ok "an up-call $up_from -> $up_to in a scratch copy is caught"
	else
		report
		not_ok "an up-call $up_from -> $up_to in a scratch copy is caught"
	fi

	if [ -z "$inc_from" ]; then
		skip "an up-include in a scratch copy is caught" "the table has one layer of headers"
	elif [ "$rc" -eq 1 ] && has "UP-INCLUDE $inc_from -> $inc_to ("; then
		ok "an up-include $inc_from -> $inc_to in a scratch copy is caught"
	else
		report
		not_ok "an up-include $inc_from -> $inc_to in a scratch copy is caught"
	fi

	if [ -z "$side_a" ]; then
		skip "a sideways call in a scratch copy is caught" "the table allows every edge within each folder"
	elif [ "$rc" -eq 1 ] && has "SIDEWAYS $side_a -> $side_b (" check_layers_side_callee; then
		ok "a sideways call $side_a -> $side_b in a scratch copy is caught"
	else
		report
		not_ok "a sideways call $side_a -> $side_b in a scratch copy is caught"
	fi

	if [ "$new_uncovered" = 0 ]; then
		skip "a new folder in a scratch copy is caught" "the table covers every folder of src/"
	elif [ "$rc" -eq 1 ] && has "UNCOVERED $newdir/x.c"; then
		ok "a new folder $newdir/ that no layer line covers is caught"
	else
		report
		not_ok "a new folder $newdir/ that no layer line covers is caught"
	fi
fi

# ---- 6. no build -------------------------------------------------------------

mkdir "$scratch/nobuild"
conf_opt=()
[ -f "$src/src/layers.conf" ] || {
	echo 'layer 0 src/' >"$scratch/nobuild.conf"
	conf_opt=(--conf "$scratch/nobuild.conf")
}
out=$(bash "$check" --src "$src" --build "$scratch/nobuild" "${conf_opt[@]}" 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && printf '%s\n' "$out" | grep -q 'make -C'; then
	ok "a build without objects is a usage error that says how to build them"
else
	show "exit $rc; the check said:"
	show "$out"
	not_ok "a build without objects is a usage error that says how to build them"
fi
exit 0
