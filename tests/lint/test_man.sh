#!/bin/sh
# The manual keeps to the code (TAP):
#  - man/heaplib.3 and man/heaplib-stress.1 lint clean: mandoc -Tlint
#    -W warning reports no warning and no error (each one it reports is
#    printed here);
#  - they render under groff -mandoc -ww -z without a warning, as man(1)
#    renders them on Debian (skipped where groff is not installed);
#  - every hl_* function declared in include/heaplib.h is declared in the
#    SYNOPSIS of heaplib.3 (.Fn or .Fo) and named again (Fn) outside it,
#    and the SYNOPSIS declares no function the header lacks;
#  - every HEAPLIB_* variable named in the library's sources (src/) has an
#    ".It Ev" entry in the ENVIRONMENT of heaplib.3, and that section
#    lists no other;
#  - every long option that the built heaplib-stress --help prints has an
#    ".It" entry (Fl -NAME) in heaplib-stress.1, and the page has no entry
#    for an option --help does not print; likewise every workload --help
#    lists has an ".It Cm" entry, and no other has;
#  - the checks have teeth: run again on a scratch copy with a sentence that
#    does not start a line appended to heaplib.3, an hl_* function added to
#    the header, a HEAPLIB_* variable added to the sources and a long option
#    added to --help, they report each of the four.
# mandoc is required (scripts/setup.sh installs it): without it the lint
# assertions fail and say so.  Needs the built stress/heaplib-stress.
set -u
src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${top_builddir:-$src}
self=$0
case $self in /*) ;; *) self=$(pwd)/$self ;; esac

man3=$src/man/heaplib.3
man1=$src/man/heaplib-stress.1
header=$src/include/heaplib.h
stress=$bld/stress/heaplib-stress

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
show() { printf '%s\n' "$1" | sed 's/^/# /'; }
# has LIST WORD: WORD is a line of LIST.
has() { printf '%s\n' "$1" | grep -qxF -- "$2"; }
# missing A B: the lines of A that are not lines of B, on one line.
missing() {
	for w in $1; do has "$2" "$w" || printf '%s ' "$w"; done
}
uniq_lines() { awk 'NF && !seen[$0]++'; }

# section FILE NAME: the lines of section NAME (from its .Sh to the next).
section() {
	awk -v want="$2" '/^\.Sh[ \t]/ { s = $0; sub(/^\.Sh[ \t]+/, "", s); in_s = (s == want); next }
		in_s' "$1" 2>/dev/null
}

# ---- what the code says -----------------------------------------------------

# The header without its comments, on one line: the hl_* names followed
# by "(" are the functions it declares.
funcs=$(awk '{
		s = $0; o = ""
		while (s != "") {
			if (c) {
				i = index(s, "*/")
				if (i == 0) s = ""; else { s = substr(s, i + 2); c = 0 }
			} else {
				i = index(s, "/*")
				if (i == 0) { o = o s; s = "" }
				else { o = o substr(s, 1, i - 1) " "; s = substr(s, i + 2); c = 1 }
			}
		}
		print o
	}' "$header" 2>/dev/null | tr '\n' ' ' |
	grep -oE '(^|[^A-Za-z0-9_])hl_[a-z0-9_]+[[:space:]]*\(' |
	sed -e 's/^[^h]//' -e 's/[[:space:]]*($//' | uniq_lines)

env_src=$(grep -rhoE --include='*.c' --include='*.h' '"HEAPLIB_[A-Z0-9_]+"' "$src/src" 2>/dev/null |
	tr -d '"' | uniq_lines)

help=
help_rc=1
if [ -x "$stress" ]; then
	help=$("$stress" --help 2>&1)
	help_rc=$?
fi
opts=$(printf '%s\n' "$help" | grep -oE '(^|[^A-Za-z0-9_-])--[a-z][a-z0-9-]*' |
	sed 's/^[^-]//' | uniq_lines)
wls=$(printf '%s\n' "$help" | awk '/^Workloads:/ { w = 1; next } w && /^$/ { w = 0 }
	w && /^  [a-z]/ { print $1 }' | uniq_lines)

# ---- what the manual says ---------------------------------------------------

syn=$(section "$man3" SYNOPSIS)
syn_funcs=$(printf '%s\n' "$syn" | sed -nE 's/^\.F[no][[:space:]]+(hl_[a-z0-9_]+).*/\1/p' | uniq_lines)
# heaplib.3 but its NAME and SYNOPSIS.
rest=$(awk '/^\.Sh[ \t]/ { s = $0; sub(/^\.Sh[ \t]+/, "", s) } s != "NAME" && s != "SYNOPSIS"' \
	"$man3" 2>/dev/null)
env_doc=$(section "$man3" ENVIRONMENT |
	sed -nE 's/^\.It[[:space:]]+Ev[[:space:]]+(HEAPLIB_[A-Z0-9_]+).*/\1/p' | uniq_lines)
doc_opts=$(grep -E '^\.It[[:space:]]' "$man1" 2>/dev/null | grep -oE 'Fl -[a-z][a-z0-9-]*' |
	sed 's/^Fl /-/' | uniq_lines)
doc_wls=$(sed -nE 's/^\.It[[:space:]]+Cm[[:space:]]+([a-z][a-z-]*).*/\1/p' "$man1" 2>/dev/null | uniq_lines)

nfuncs=$(printf '%s\n' "$funcs" | grep -c .)
nopts=$(printf '%s\n' "$opts" | grep -c .)
teeth=4
[ -n "${TEST_MAN_INNER:-}" ] && teeth=0
echo "1..$((4 + (nfuncs > 0 ? nfuncs : 1) + 1 + 2 + 1 + nopts + 1 + 2 + teeth))"

# ---- lint -------------------------------------------------------------------

have_mandoc=0
command -v mandoc >/dev/null 2>&1 && have_mandoc=1
for page in "$man3" "$man1"; do
	name=man/${page##*/}
	if [ "$have_mandoc" = 0 ]; then
		show "mandoc not found: install it (apt-get install mandoc; scripts/setup.sh does)"
		not_ok "$name lints clean under mandoc -Tlint -W warning (mandoc not installed)"
	elif [ ! -f "$page" ]; then
		not_ok "$name lints clean under mandoc -Tlint -W warning ($page does not exist)"
	else
		out=$(mandoc -Tlint -W warning "$page" 2>&1)
		rc=$?
		if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
			ok "$name lints clean under mandoc -Tlint -W warning"
		else
			show "$out"
			not_ok "$name lints clean under mandoc -Tlint -W warning (exit $rc)"
		fi
	fi
done

for page in "$man3" "$man1"; do
	name=man/${page##*/}
	if ! command -v groff >/dev/null 2>&1; then
		skip "$name renders without warnings under groff -mandoc -ww" "groff not installed"
	elif [ ! -f "$page" ]; then
		not_ok "$name renders without warnings under groff -mandoc -ww ($page does not exist)"
	else
		out=$(groff -mandoc -ww -z "$page" 2>&1)
		if [ -z "$out" ]; then
			ok "$name renders without warnings under groff -mandoc -ww"
		else
			show "$out"
			not_ok "$name renders without warnings under groff -mandoc -ww"
		fi
	fi
done

# ---- heaplib.3 against the header and the sources ----------------------------

if [ "$nfuncs" -eq 0 ]; then
	not_ok "include/heaplib.h declares hl_* functions (none found in $header)"
fi
for f in $funcs; do
	declared=0 named=0
	has "$syn_funcs" "$f" && declared=1
	printf '%s\n' "$rest" | grep -qE "(^\\.|[[:space:]])Fn[[:space:]]+$f([^A-Za-z0-9_]|\$)" && named=1
	if [ "$declared" = 1 ] && [ "$named" = 1 ]; then
		ok "heaplib.3 declares $f in its SYNOPSIS and describes it"
	else
		[ "$declared" = 1 ] || show "no .Fn $f or .Fo $f in the SYNOPSIS of $man3"
		[ "$named" = 1 ] || show "no Fn $f outside the NAME and SYNOPSIS of $man3"
		not_ok "heaplib.3 declares $f in its SYNOPSIS and describes it"
	fi
done

extra=$(missing "$syn_funcs" "$funcs")
if [ -n "$syn_funcs" ] && [ -z "$extra" ]; then
	ok "heaplib.3's SYNOPSIS declares only functions of include/heaplib.h"
else
	show "in the SYNOPSIS, not in the header: ${extra:-(no function found in the SYNOPSIS)}"
	not_ok "heaplib.3's SYNOPSIS declares only functions of include/heaplib.h"
fi

lack=$(missing "$env_src" "$env_doc")
if [ -n "$env_src" ] && [ -z "$lack" ]; then
	ok "heaplib.3's ENVIRONMENT has the $(echo $env_src | wc -w) HEAPLIB_* variables of src/"
else
	show "named in src/, no .It Ev entry in ENVIRONMENT: ${lack:-(no HEAPLIB_* name found in $src/src)}"
	not_ok "heaplib.3's ENVIRONMENT has the HEAPLIB_* variables of src/"
fi
extra=$(missing "$env_doc" "$env_src")
if [ -z "$extra" ]; then
	ok "heaplib.3's ENVIRONMENT lists no variable the library does not read"
else
	show "in ENVIRONMENT, named nowhere in src/: $extra"
	not_ok "heaplib.3's ENVIRONMENT lists no variable the library does not read"
fi

# ---- heaplib-stress.1 against heaplib-stress --help -------------------------

if [ "$help_rc" -eq 0 ] && [ -n "$opts" ] && [ -n "$wls" ]; then
	ok "$stress --help prints $nopts long options and $(echo $wls | wc -w) workloads"
else
	[ -x "$stress" ] || show "$stress not found: build it first (make)"
	show "$help"
	not_ok "$stress --help runs and prints long options and workloads (exit $help_rc)"
fi

for o in $opts; do
	if has "$doc_opts" "$o"; then
		ok "heaplib-stress.1 has an entry for $o"
	else
		show "no .It line with Fl -${o#--} in $man1"
		not_ok "heaplib-stress.1 has an entry for $o"
	fi
done

extra=$(missing "$doc_opts" "$opts")
if [ -n "$opts" ] && [ -z "$extra" ]; then
	ok "heaplib-stress.1 has no entry for an option --help does not print"
else
	show "entries for options --help does not print: ${extra:-(--help printed no option)}"
	not_ok "heaplib-stress.1 has no entry for an option --help does not print"
fi

lack=$(missing "$wls" "$doc_wls")
if [ -n "$wls" ] && [ -z "$lack" ]; then
	ok "heaplib-stress.1 has an .It Cm entry for every workload --help lists"
else
	show "workloads without an .It Cm entry: ${lack:-(--help listed no workload)}"
	not_ok "heaplib-stress.1 has an .It Cm entry for every workload --help lists"
fi
extra=$(missing "$doc_wls" "$wls")
if [ -n "$wls" ] && [ -z "$extra" ]; then
	ok "heaplib-stress.1 has no .It Cm entry for a workload --help does not list"
else
	show "entries for workloads --help does not list: ${extra:-(--help listed no workload)}"
	not_ok "heaplib-stress.1 has no .It Cm entry for a workload --help does not list"
fi

[ "$teeth" -eq 0 ] && exit 0

# ---- teeth: the same checks on a scratch copy with four faults --------------

scratch=$(mktemp -d "${TMPDIR:-/tmp}/test_man.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/man" "$scratch/include" "$scratch/src/base" "$scratch/bld/stress"
cp "$man1" "$scratch/man/" 2>/dev/null
cp "$man3" "$scratch/man/" 2>/dev/null
cp "$header" "$scratch/include/" 2>/dev/null
# The sources only, not the objects of an in-tree build.
(cd "$src" && find src -type f \( -name '*.c' -o -name '*.h' \) -print) |
	tar -C "$src" -T - -cf - | tar -C "$scratch" -xf -
# A sentence that does not start a line: a mandoc WARNING, not an ERROR.
printf 'One sentence.  Another, on the same line.\n' >>"$scratch/man/heaplib.3"
printf '\n/* Added by tests/lint/test_man.sh. */\nint hl_man_teeth_fn(void);\n' \
	>>"$scratch/include/heaplib.h"
printf '\n/* Added by tests/lint/test_man.sh. */\nstatic const char *const man_teeth_env = "HEAPLIB_MAN_TEETH";\n' \
	>>"$scratch/src/base/config.c"
cat >"$scratch/bld/stress/heaplib-stress" <<EOF
#!/bin/sh
# Added by tests/lint/test_man.sh: the real --help and one option more.
"$stress" "\$@"
rc=\$?
echo "  --man-teeth-opt           added by tests/lint/test_man.sh"
exit \$rc
EOF
chmod +x "$scratch/bld/stress/heaplib-stress"

inner=$(TEST_MAN_INNER=1 top_srcdir=$scratch top_builddir=$scratch/bld sh "$self" 2>&1)
shown=0
report() {
	if [ "$shown" = 0 ]; then
		show "the run on the scratch copy said:"
		show "$inner"
		shown=1
	fi
}
# fired PATTERN: the scratch run has a "not ok" line matching PATTERN.
fired() { printf '%s\n' "$inner" | grep -E '^not ok ' | grep -qE -- "$1"; }

if [ "$have_mandoc" = 0 ]; then
	not_ok "a sentence that does not start a line in heaplib.3 is a lint failure (mandoc not installed)"
elif fired 'man/heaplib\.3 lints clean' &&
	printf '%s\n' "$inner" | grep -q '^# .*WARNING: new sentence, new line' &&
	printf '%s\n' "$inner" | grep -qE '^ok .*man/heaplib-stress\.1 lints clean'; then
	ok "a sentence that does not start a line in heaplib.3 is a lint failure, shown as a diagnostic"
else
	report
	not_ok "a sentence that does not start a line in heaplib.3 is a lint failure, shown as a diagnostic"
fi
if fired 'declares hl_man_teeth_fn in its SYNOPSIS'; then
	ok "an hl_* function added to the header and not to heaplib.3 is reported"
else
	report
	not_ok "an hl_* function added to the header and not to heaplib.3 is reported"
fi
if fired 'ENVIRONMENT has the HEAPLIB_' && printf '%s\n' "$inner" | grep -q '^# .*HEAPLIB_MAN_TEETH'; then
	ok "a HEAPLIB_* variable added to src/ and not to heaplib.3 is reported"
else
	report
	not_ok "a HEAPLIB_* variable added to src/ and not to heaplib.3 is reported"
fi
if fired 'has an entry for --man-teeth-opt$'; then
	ok "a long option added to --help and not to heaplib-stress.1 is reported"
else
	report
	not_ok "a long option added to --help and not to heaplib-stress.1 is reported"
fi
exit 0
