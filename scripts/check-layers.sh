#!/usr/bin/env bash
# check-layers.sh: fail on a call or an #include that goes up the layers of
# heaplib's sources, or sideways within a layer where the table declares no
# arrow.  Two graphs are read:
#   calls     from the object files of one library build (nm): object A
#             uses a symbol that object B defines;
#   includes  from the #include "..." lines of every .c, .cc and .h under
#             src/, lf/ and include/ (an up-call can hide in a static inline of a
#             header, where no object shows it).
# Both are checked against the layer table, src/layers.conf.
#
# Usage: scripts/check-layers.sh [options]
#   --build DIR       the build to read objects from (default: the source
#                     tree; a VPATH build names its sources in its Makefile)
#   --src DIR         the source tree (default: the build's abs_top_srcdir,
#                     else the directory above this script)
#   --conf FILE       the layer table (default: SRC/src/layers.conf)
#   --lib NAME        which library's objects: libheaplib_hooks (default,
#                     else libheaplib when the hooks build has none)
#   --compile         no build: compile every .c under src/ and lf/ into a
#                     temporary directory with ${CC:-cc} -c (a .cc with
#                     ${CXX:-c++} -c), the include path below and
#                     $CHECK_LAYERS_CFLAGS (default "-O1 -DHL_TEST_HOOKS")
#   --includes-only   check the #include graph alone (no objects needed)
#   --verbose, -v     also print every file-to-file edge with its symbols,
#                     unresolved includes, and table lines nothing used
#   --list-files      print each source file with its layer, then stop
#   --explain A B     say how an edge from file A to file B is judged
#                     (exit 0 when allowed, 1 when not), then stop
# Exit status: 0 no violation, 1 violations, 2 usage error (bad option or
# table line, objects missing or out of step with the sources).
#
# ---- the table: src/layers.conf -------------------------------------------
# Plain text, one directive a line; "#" starts a comment, blank lines are
# ignored.  Paths are relative to the top of the source tree.  A PATH that
# ends in "/", or that does not end in .c, .cc or .h, is a folder and covers
# every file below it; a PATH ending in .c, .cc or .h is a module: X.c (or
# X.cc) and X.h in the same folder are one module, and an entry for either
# covers both.
#
#   layer RANK PATH          PATH is in layer RANK, a number (decimals and
#                            negatives are fine: "layer 0.5 src/types.h"
#                            puts one header between lf/ and src/base/).
#                            The longest PATH that covers a file wins, so
#                            "layer 4 src/policy/" and "layer 3.5
#                            src/policy/mig/" can both be there.  Every .c,
#                            .cc and .h under src/, lf/ and include/, and the
#                            source of every object, must be covered.
#   allow FROM TO [TO...]    within one layer, FROM may call or include
#                            each TO (files, modules or folders).
#   allow A -> B -> C ...    the same as a chain: A may use B, B may use C
#                            (not A C: arrows are not transitive).
#                            FROM and TO must be in the same layer: no
#                            table line makes an up-edge right.
#   symbol NAME [NAME...]    named exceptions: a reference to NAME is not
#                            an edge, whoever defines it (hl_ensure_init,
#                            lf_hook_point, callbacks registered at start).
#                            "*" and "?" match as in the shell.
#
# How an edge from file A to file B is judged (layer = rank of the longest
# covering entry):
#   A's layer above B's    fine
#   A's layer below B's    UP-CALL / UP-INCLUDE
#   the same layer         fine when A and B are one module (sb.c and
#                          sb.h); for an include, when B is the umbrella
#                          header of A's own folder (DIR/NAME.h with NAME
#                          the folder's own name: src/core/sb.c including
#                          src/core/core.h) or A is the umbrella of a
#                          folder B is in (core.h including core/sb.h);
#                          or when an allow line has FROM covering A and TO
#                          covering B.  Else SIDEWAYS (a call) or
#                          SIDEWAYS-INCLUDE.  (So within a folder the
#                          umbrella is shared: sideways calls there are
#                          seen in the objects, not in the includes.)
# Edges that are allowed within a layer must not close a loop: a loop of
# modules joined by allowed calls and includes is reported as CYCLE.
# A file no layer line covers is reported as UNCOVERED, so a new folder
# cannot dodge the check.
#
# Example:
#   layer -1  include/heaplib.h     # public: anyone may include it
#   layer 0   lf/
#   layer 0.5 src/types.h           # structs only: anyone in src/
#   layer 1   src/base/
#   layer 2   src/mem/
#   layer 3   src/core/
#   layer 4   src/policy/
#   layer 5   src/api/
#   allow lf/tstack.h lf/atomic.h lf/hook.h
#   allow src/core/tcache.c -> src/core/sb.c -> src/core/arena.c
#   symbol hl_ensure_init lf_hook_point
#
# Output: one line per folder-to-folder edge with its counts, then one line
# per violation, e.g.
#   check-layers: UP-CALL src/mem/large.c -> src/policy/region.c (rg_large_freed) [layer 2 -> 4]
#   check-layers: UP-INCLUDE src/mem/desc.h -> src/policy/policy.h (line 12) [layer 2 -> 4]
#   check-layers: SIDEWAYS src/core/arena.c -> src/core/tcache.c (tc_flush) [layer 3]
# Needs bash, awk (mawk is enough), nm (binutils), find, grep, sort.
set -u

prog=check-layers
# Folders whose .c, .cc and .h files are checked, and the include search path of
# the build (HL_INCLUDES in Makefile.am: -Iinclude -Ilf -Isrc): a quoted
# include is looked up in the including file's folder first, then these.
scan_dirs=(src lf include)
include_path=(include lf src)

usage() {
	# The comment at the top of this file, the table's format included.
	awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

die_usage() {
	echo "$prog: $*" >&2
	exit 2
}

# ---- options ---------------------------------------------------------------

src_dir=
build_dir=
conf=
lib=
verbose=0
compile=0
includes_only=0
mode=check
explain_from=
explain_to=

while [ $# -gt 0 ]; do
	case $1 in
	--build) [ $# -ge 2 ] || die_usage "--build needs a directory"; build_dir=$2; shift ;;
	--build=*) build_dir=${1#*=} ;;
	--src) [ $# -ge 2 ] || die_usage "--src needs a directory"; src_dir=$2; shift ;;
	--src=*) src_dir=${1#*=} ;;
	--conf) [ $# -ge 2 ] || die_usage "--conf needs a file"; conf=$2; shift ;;
	--conf=*) conf=${1#*=} ;;
	--lib) [ $# -ge 2 ] || die_usage "--lib needs a library name"; lib=$2; shift ;;
	--lib=*) lib=${1#*=} ;;
	--compile) compile=1 ;;
	--includes-only) includes_only=1 ;;
	--verbose | -v) verbose=1 ;;
	--list-files) mode=list ;;
	--explain)
		[ $# -ge 3 ] || die_usage "--explain needs two files"
		mode=explain explain_from=$2 explain_to=$3
		shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die_usage "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

# The source tree: --src, else the one a configured build names, else ours.
if [ -z "$src_dir" ] && [ -n "$build_dir" ] && [ -f "$build_dir/Makefile" ]; then
	src_dir=$(sed -n 's/^abs_top_srcdir *= *//p' "$build_dir/Makefile" | head -n 1)
fi
[ -n "$src_dir" ] || src_dir=$(dirname "$0")/..
[ -d "$src_dir" ] || die_usage "no source tree at $src_dir"
src_dir=$(cd "$src_dir" && pwd) || exit 2
[ -n "$build_dir" ] || build_dir=$src_dir
[ -d "$build_dir" ] || die_usage "no build directory at $build_dir"
build_dir=$(cd "$build_dir" && pwd) || exit 2
[ -n "$conf" ] || conf=$src_dir/src/layers.conf
[ -f "$conf" ] || die_usage "no layer table at $conf (its format: $0 --help)"
command -v nm >/dev/null 2>&1 || [ "$includes_only" = 1 ] || [ "$mode" != check ] ||
	die_usage "nm not found (apt-get install binutils)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# ---- the sources -----------------------------------------------------------

# list_sources: every .c, .cc and .h of the scanned folders, relative to
# the top.
list_sources() {
	local d
	for d in "${scan_dirs[@]}"; do
		[ -d "$src_dir/$d" ] || continue
		(cd "$src_dir" && find "$d" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.h' \) -print)
	done | LC_ALL=C sort
}

list_sources >"$tmp/files"

# ---- the objects -----------------------------------------------------------
# Each way of finding objects writes "OBJECT<TAB>SOURCE" lines (SOURCE
# relative to the top of the source tree) to $tmp/objects.

# canon NAME: automake's name for a library (libheaplib_hooks.la ->
# libheaplib_hooks), the prefix of its objects' names.
canon() {
	local n=${1%.la}
	n=${n##*/}
	printf '%s\n' "${n//[^A-Za-z0-9_]/_}"
}

# makefile_objects LIB: the objects BUILD/Makefile lists for LIB (the
# expansion of LIB_la_OBJECTS), one a line; fails when it lists none.
# Read from the Makefile rather than found on disk, so that objects left
# behind by a source file that moved or went are not read.
makefile_objects() {
	[ -f "$build_dir/Makefile" ] || return 1
	awk -v want="$1_la_OBJECTS" '
	function expand(s, depth,   out, name, rest) {
		out = ""
		while (match(s, /\$[({][A-Za-z0-9_]+[)}]/)) {
			# Before recursing: the inner match() resets RSTART.
			name = substr(s, RSTART + 2, RLENGTH - 3)
			out = out substr(s, 1, RSTART - 1)
			rest = substr(s, RSTART + RLENGTH)
			if (depth < 20 && (name in vars))
				out = out expand(vars[name], depth + 1)
			s = rest
		}
		return out s
	}
	{
		line = $0
		while (line ~ /\\$/ && (getline more) > 0)
			line = substr(line, 1, length(line) - 1) " " more
		if (line ~ /^[ \t]*#/ || line !~ /^[A-Za-z0-9_]+[ \t]*\+?=/)
			next
		name = line
		sub(/[ \t]*\+?=.*/, "", name)
		val = line
		sub(/^[^=]*=[ \t]*/, "", val)
		if (line ~ /^[A-Za-z0-9_]+[ \t]*\+=/ && (name in vars))
			vars[name] = vars[name] " " val
		else
			vars[name] = val
	}
	END {
		if (!(want in vars))
			exit 1
		n = split(expand(vars[want], 0), w, /[ \t]+/)
		for (i = 1; i <= n; i++)
			if (w[i] != "") { print w[i]; found = 1 }
		exit found ? 0 : 1
	}' "$build_dir/Makefile"
}

# found_objects LIB: the LIB_la-*.lo files under BUILD, for a build without
# a Makefile.  Nested builds (build-tsan/, build-src/, any folder with its
# own config.status) are not ours.
found_objects() {
	(cd "$build_dir" && find . -mindepth 1 \
		\( -type d \( -name 'build-*' -o -name .git -o -name autom4te.cache \
			-o -exec test -e '{}/config.status' \; \) -prune \) \
		-o -type f -name "$1_la-*.lo" -print) | sed 's|^\./||' | LC_ALL=C sort |
		grep .
}

# lo_object LO: the object a libtool .lo names (the PIC one, else the
# non-PIC one), relative to BUILD; fails when the .lo is missing.
lo_object() {
	local lo=$1 pic non_pic dir
	[ -f "$build_dir/$lo" ] || return 1
	pic=$(sed -n "s/^pic_object='\(.*\)'\$/\1/p" "$build_dir/$lo")
	non_pic=$(sed -n "s/^non_pic_object='\(.*\)'\$/\1/p" "$build_dir/$lo")
	dir=$(dirname "$lo")
	if [ -n "$pic" ] && [ "$pic" != none ]; then
		printf '%s/%s\n' "$dir" "$pic"
	elif [ -n "$non_pic" ] && [ "$non_pic" != none ]; then
		printf '%s/%s\n' "$dir" "$non_pic"
	else
		return 1
	fi
}

# object_source OBJ LIB: the source an object of LIB was compiled from
# (subdir-objects: src/base/libheaplib_la-os.lo <- src/base/os.c).
object_source() {
	local dir base ext
	dir=$(dirname "$1")
	base=$(basename "$1")
	base=${base%.*}
	base=${base#"$2"_la-}
	for ext in c cc S s; do
		if [ "$dir" = . ]; then
			set -- "$base.$ext" "$2"
		else
			set -- "$dir/$base.$ext" "$2"
		fi
		if [ -f "$src_dir/$1" ]; then
			printf '%s\n' "$1"
			return 0
		fi
	done
	return 1
}

# build_objects: the objects of one library build in BUILD.
build_objects() {
	local candidates=() c listed="" name
	if [ -n "$lib" ]; then
		candidates=("$(canon "$lib")")
	else
		candidates=(libheaplib_hooks libheaplib)
	fi
	for c in "${candidates[@]}"; do
		if listed=$(makefile_objects "$c") || listed=$(found_objects "$c"); then
			name=$c
			break
		fi
	done
	if [ -z "$listed" ]; then
		{
			echo "$prog: no objects of ${candidates[*]/%/.la} in $build_dir"
			echo "$prog: (no Makefile there lists them, and no *_la-*.lo was found)"
			echo "$prog: configure and build first: scripts/setup.sh in the source tree,"
			echo "$prog: or make -C $build_dir ${candidates[0]}.la; or run with --compile"
		} >&2
		exit 2
	fi
	lib_used="of $name.la in $build_dir"
	local item obj src missing=0 first_missing="" stale=0 first_stale=""
	while IFS= read -r item; do
		case $item in
		*.lo) obj=$(lo_object "$item") || obj= ;;
		*) obj=$item ;;
		esac
		if [ -z "$obj" ] || [ ! -f "$build_dir/$obj" ]; then
			missing=$((missing + 1))
			[ -n "$first_missing" ] || first_missing=$item
			continue
		fi
		if ! src=$(object_source "$item" "$name"); then
			echo "$prog: no source in $src_dir for $build_dir/$item:" \
				"the build is out of step with the sources; run make -C $build_dir" >&2
			exit 2
		fi
		if [ "$src_dir/$src" -nt "$build_dir/$obj" ]; then
			stale=$((stale + 1))
			[ -n "$first_stale" ] || first_stale=$src
		fi
		printf '%s\t%s\n' "$build_dir/$obj" "$src"
	done <<<"$listed" >"$tmp/objects"
	if [ "$missing" -gt 0 ]; then
		echo "$prog: $name.la is not built in $build_dir: $missing objects missing" \
			"(first: $first_missing); run: make -C $build_dir $name.la" >&2
		exit 2
	fi
	# A .c or .cc file the library does not build: its calls cannot be seen.
	local unbuilt
	unbuilt=$(grep -E '\.cc?$' "$tmp/files" | LC_ALL=C sort |
		LC_ALL=C comm -23 - <(cut -f 2 "$tmp/objects" | LC_ALL=C sort) | tr '\n' ' ')
	if [ -n "$unbuilt" ]; then
		echo "$prog: warning: no object of $name.la for ${unbuilt% }:" \
			"their calls are not checked (not in the library's sources, or the Makefile is out of date?)" >&2
	fi
	if [ "$stale" -gt 0 ]; then
		echo "$prog: warning: $stale objects are older than their sources" \
			"(first: $first_stale): run make -C $build_dir $name.la for a current answer" >&2
	fi
}

# compile_objects: compile every .c and .cc of the scanned folders to
# $tmp/obj, two at a time per core; a file that does not compile is a
# usage error.
compile_objects() {
	local cc=${CC:-cc} cxx=${CXX:-c++} comp flags=() incs=() d src out jobs running=0 failed=0
	# shellcheck disable=SC2206 # CHECK_LAYERS_CFLAGS is a list of flags
	flags=(${CHECK_LAYERS_CFLAGS--O1 -DHL_TEST_HOOKS})
	for d in "${include_path[@]}"; do
		incs+=("-I$d")
	done
	jobs=$(nproc 2>/dev/null || echo 2)
	jobs=$((jobs * 2))
	lib_used="(compiled with $cc ${flags[*]})"
	: >"$tmp/objects"
	while IFS= read -r src; do
		case $src in *.c) comp=$cc ;; *.cc) comp=$cxx ;; *) continue ;; esac
		out=$tmp/obj/$src.o
		mkdir -p "$(dirname "$out")"
		(cd "$src_dir" && "$comp" -c "${flags[@]}" "${incs[@]}" "$src" -o "$out") \
			>"$out.err" 2>&1 || echo "$src" >>"$tmp/compile-failed" &
		printf '%s\t%s\n' "$out" "$src" >>"$tmp/objects"
		running=$((running + 1))
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
	done <"$tmp/files"
	wait
	if [ -s "$tmp/compile-failed" ]; then
		while IFS= read -r src; do
			failed=$((failed + 1))
			echo "$prog: $src does not compile:" >&2
			head -n 20 "$tmp/obj/$src.o.err" >&2
		done <"$tmp/compile-failed"
		echo "$prog: $failed files do not compile with --compile" \
			"(set CHECK_LAYERS_CFLAGS or CC)" >&2
		exit 2
	fi
}

lib_used=
: >"$tmp/objects"
: >"$tmp/nm"
if [ "$mode" = check ] && [ "$includes_only" = 0 ]; then
	if [ "$compile" = 1 ]; then
		compile_objects
	else
		build_objects
	fi
	# One nm for all objects; -A names the object on every line, -P keeps
	# the format fixed: "OBJECT: NAME TYPE [VALUE SIZE]".
	[ -s "$tmp/objects" ] || die_usage "no .c or .cc file to compile under ${scan_dirs[*]} of $src_dir"
	cut -f 1 "$tmp/objects" | xargs nm -A -P >"$tmp/nm" 2>"$tmp/nm.err" || {
		cat "$tmp/nm.err" >&2
		die_usage "nm failed on the objects"
	}
fi

# ---- the includes ----------------------------------------------------------

# "FILE:LINE:TEXT" for every #include "..." line; <...> are system headers.
: >"$tmp/includes"
if [ "$mode" = check ] && [ -s "$tmp/files" ]; then
	(cd "$src_dir" && xargs grep -H -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' \
		<"$tmp/files") >"$tmp/includes"
fi

# ---- the check -------------------------------------------------------------
# One awk reads everything, as tagged lines: C (table), F (source file),
# O (object and source), N (nm), I (include), P (include path).

{
	awk '{ printf "C\t%d\t%s\n", NR, $0 }' "$conf"
	sed 's/^/F\t/' "$tmp/files"
	printf 'P\t%s\n' "${include_path[@]}"
	sed 's/^/O\t/' "$tmp/objects"
	sed 's/^/N\t/' "$tmp/nm"
	sed 's/^/I\t/' "$tmp/includes"
} | awk -v prog="$prog" -v mode="$mode" -v verbose="$verbose" \
	-v conf="$conf" -v what="$lib_used" -v includes_only="$includes_only" \
	-v ex_from="$explain_from" -v ex_to="$explain_to" '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function dirof(p) { return (p ~ /\//) ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
function modof(p) { sub(/\.(c|cc|h)$/, "", p); return p }

# pattern(PATH): a table path as matched: "DIR/" for a folder, the module
# (the path without .c/.cc/.h) for a file.
function pattern(p) {
	sub(/^\.\//, "", p)
	if (p ~ /\.(c|cc|h)$/)
		return modof(p)
	if (p !~ /\/$/)
		p = p "/"
	return p
}
function covers(pat, path) {
	if (pat ~ /\/$/)
		return index(path, pat) == 1
	return modof(path) == pat
}

# entry(PATH): the layer line that places PATH (the longest covering
# pattern), 0 when none.
function entry(path,   i, best) {
	if (path in entry_cache)
		return entry_cache[path]
	best = 0
	for (i = 1; i <= nlayers; i++)
		if (covers(L_pat[i], path) && (best == 0 || length(L_pat[i]) > length(L_pat[best])))
			best = i
	entry_cache[path] = best
	return best
}

# normpath(P): "a/./b/../c" -> "a/c".
function normpath(p,   n, parts, out, i, k, stack) {
	n = split(p, parts, "/")
	k = 0
	for (i = 1; i <= n; i++) {
		if (parts[i] == "" || parts[i] == ".")
			continue
		if (parts[i] == ".." && k > 0 && stack[k] != "..") {
			k--
			continue
		}
		stack[++k] = parts[i]
	}
	out = ""
	for (i = 1; i <= k; i++)
		out = out (i > 1 ? "/" : "") stack[i]
	return out
}

# is_umbrella_of(H, D): H is the umbrella header of folder D, D/NAME.h with
# NAME the last part of D (src/core/core.h).
function is_umbrella_of(h, d,   name) {
	if (d == "." || h !~ /\.h$/ || dirof(h) != d)
		return 0
	name = d
	sub(/^.*\//, "", name)
	return h == d "/" name ".h"
}

# is_umbrella_over(A, B): A is the umbrella header of a folder B is in.
function is_umbrella_over(a, b) {
	return is_umbrella_of(a, dirof(a)) && index(b, dirof(a) "/") == 1
}

# allowed(A, B): the first allow line that permits A -> B, 0 when none.
function allowed(a, b,   i) {
	for (i = 1; i <= nallow; i++)
		if (covers(A_from[i], a) && covers(A_to[i], b))
			return i
	return 0
}

# judge(A, B, KIND): how the edge A -> B is judged: "down", "module",
# "umbrella", "allow", "up", "sideways" or "uncovered"; sets judged_line
# to the allow line.
function judge(a, b, kind,   ea, eb, ra, rb) {
	judged_line = 0
	ea = entry(a)
	eb = entry(b)
	if (!ea || !eb)
		return "uncovered"
	ra = L_rank[ea] + 0
	rb = L_rank[eb] + 0
	if (ra > rb)
		return "down"
	if (ra < rb)
		return "up"
	if (modof(a) == modof(b))
		return "module"
	if (kind == "include" && (is_umbrella_over(a, b) || is_umbrella_of(b, dirof(a))))
		return "umbrella"
	judged_line = allowed(a, b)
	return judged_line ? "allow" : "sideways"
}

function table_error(n, msg) {
	printf "%s: %s:%d: %s\n", prog, conf, n, msg > "/dev/stderr"
	bad = 1
}

# glob_re(G): a shell glob as an anchored regular expression.
function glob_re(g,   out, i, c) {
	out = "^"
	for (i = 1; i <= length(g); i++) {
		c = substr(g, i, 1)
		if (c == "*") out = out ".*"
		else if (c == "?") out = out "."
		else if (c ~ /[A-Za-z0-9_]/) out = out c
		else out = out "[" c "]"
	}
	return out "$"
}

function add_allow(n, from, to) {
	nallow++
	A_from[nallow] = pattern(from)
	A_to[nallow] = pattern(to)
	A_line[nallow] = n
	A_text[nallow] = from " -> " to
}

function conf_line(n, text,   w, nw, i, rank, p) {
	sub(/#.*/, "", text)
	text = trim(text)
	if (text == "")
		return
	nw = split(text, w, /[ \t]+/)
	if (w[1] == "layer") {
		if (nw != 3 || w[2] !~ /^-?[0-9]+(\.[0-9]+)?$/)
			return table_error(n, "expected: layer RANK PATH (RANK a number)")
		p = pattern(w[3])
		for (i = 1; i <= nlayers; i++)
			if (L_pat[i] == p)
				return table_error(n, "a second layer line for " w[3] " (the first is line " L_line[i] ")")
		nlayers++
		L_rank[nlayers] = w[2]
		L_pat[nlayers] = p
		L_line[nlayers] = n
		L_text[nlayers] = w[3]
	} else if (w[1] == "allow") {
		if (nw < 3)
			return table_error(n, "expected: allow FROM TO [TO...] or allow A -> B [-> C...]")
		if (w[3] == "->") {
			if (nw % 2 != 0)
				return table_error(n, "a chain is: allow A -> B [-> C...]")
			for (i = 2; i <= nw; i += 2) {
				if (w[i] == "->" || (i < nw && w[i + 1] != "->"))
					return table_error(n, "a chain is: allow A -> B [-> C...]")
			}
			for (i = 2; i + 2 <= nw; i += 2)
				add_allow(n, w[i], w[i + 2])
		} else {
			for (i = 3; i <= nw; i++) {
				if (w[i] == "->")
					return table_error(n, "a chain is: allow A -> B [-> C...]")
				add_allow(n, w[2], w[i])
			}
		}
	} else if (w[1] == "symbol") {
		if (nw < 2)
			return table_error(n, "expected: symbol NAME [NAME...]")
		for (i = 2; i <= nw; i++) {
			nsym++
			S_glob[nsym] = w[i]
			S_re[nsym] = glob_re(w[i])
			S_line[nsym] = n
		}
	} else {
		table_error(n, "unknown directive \"" w[1] "\" (layer, allow, symbol)")
	}
}

# exempt(SYM): the symbol line that names SYM, 0 when none.
function exempt(sym,   i) {
	if (sym in exempt_cache)
		return exempt_cache[sym]
	for (i = 1; i <= nsym; i++)
		if (sym ~ S_re[i])
			return exempt_cache[sym] = i
	return exempt_cache[sym] = 0
}

# The pattern a table line names, as a file path entry() can place.
function pattern_path(p) { return (p ~ /\/$/) ? p : p ".c" }

function rank_text(a, b,   ra, rb) {
	ra = L_rank[entry(a)]
	rb = L_rank[entry(b)]
	return (ra + 0 == rb + 0) ? "[layer " ra "]" : "[layer " ra " -> " rb "]"
}

function out_sorted(line) { print line | "LC_ALL=C sort" }
# Flush the output of awk first: sort writes straight to the same file.
function flush_sorted() { fflush(); close("LC_ALL=C sort") }

# DFS over the allowed same-layer module graph; a back edge closes a loop.
function dfs(u,   i, v, k, loop) {
	color[u] = 1
	path[++depth] = u
	for (i = 1; i <= g_n[u]; i++) {
		v = g_to[u, i]
		if (color[v] == 1) {
			loop = ""
			for (k = 1; k <= depth; k++)
				if (path[k] == v) break
			for (; k <= depth; k++)
				loop = loop path[k] " -> "
			add_violation("CYCLE " loop v " (allowed edges within a layer)")
		} else if (!color[v])
			dfs(v)
	}
	depth--
	color[u] = 2
}

function add_violation(text) {
	if (text in seen_violation)
		return
	seen_violation[text] = 1
	violations[++nviol] = text
}

BEGIN { FS = "\t"; nlayers = nallow = nsym = nfiles = nobjs = nrefs = 0; bad = 0 }

$1 == "C" { conf_line($2 + 0, substr($0, length($1 $2) + 3)); next }
$1 == "F" { files[$2] = 1; flist[++nfiles] = $2; next }
$1 == "P" { ipath[++nipath] = $2; next }
$1 == "O" { obj_src[$2] = $3; nobjs++; next }
$1 == "N" {
	# "OBJECT: NAME TYPE [VALUE SIZE]"
	n = split(substr($0, 3), w, / +/)
	obj = w[1]
	sub(/:$/, "", obj)
	src = obj_src[obj]
	sym = w[2]
	t = w[3]
	if (t == "U" || t == "w" || t == "v") {
		refs_src[++nrefs] = src
		refs_sym[nrefs] = sym
	} else if (t ~ /^[A-Z]$/ || t == "i" || t == "u") {
		# global definitions, weak (W, V) and indirect ones included;
		# lowercase letters are local to their object.
		if (!((sym SUBSEP src) in defined_in)) {
			defined_in[sym, src] = 1
			def_n[sym]++
			def_src[sym, def_n[sym]] = src
		}
	}
	next
}
$1 == "I" {
	# "FILE:LINE:TEXT"
	rest = substr($0, 3)
	file = substr(rest, 1, index(rest, ":") - 1)
	rest = substr(rest, length(file) + 2)
	line = substr(rest, 1, index(rest, ":") - 1) + 0
	rest = substr(rest, index(rest, ":") + 1)
	sub(/^[^"]*"/, "", rest)
	sub(/".*/, "", rest)
	incs_file[++nincs] = file
	incs_line[nincs] = line
	incs_name[nincs] = rest
	next
}

END {
	if (nlayers == 0) {
		printf "%s: %s: no layer line\n", prog, conf > "/dev/stderr"
		exit 2
	}
	# An allow line joins two paths of one layer.
	for (i = 1; i <= nallow; i++) {
		ef = entry(pattern_path(A_from[i]))
		et = entry(pattern_path(A_to[i]))
		if (!ef || !et)
			table_error(A_line[i], "allow " A_text[i] ": " (!ef ? A_from[i] : A_to[i]) " is in no layer")
		else if (L_rank[ef] + 0 != L_rank[et] + 0)
			table_error(A_line[i], "allow " A_text[i] ": layer " L_rank[ef] " and layer " L_rank[et] \
				" (allow is for edges within one layer; an edge down needs none, and an edge up is wrong)")
	}
	if (bad)
		exit 2

	if (mode == "list") {
		for (i = 1; i <= nfiles; i++) {
			e = entry(flist[i])
			if (e)
				printf "%s\t%s\t(line %d: %s)\n", L_rank[e], flist[i], L_line[e], L_text[e]
			else
				printf "-\t%s\t(no layer line)\n", flist[i]
		}
		exit 0
	}
	if (mode == "explain") {
		ex_from = normpath(ex_from); ex_to = normpath(ex_to)
		kind = (ex_to ~ /\.h$/) ? "include" : "call"
		v = judge(ex_from, ex_to, kind)
		ea = entry(ex_from); eb = entry(ex_to)
		printf "%s -> %s: ", ex_from, ex_to
		if (v == "uncovered") {
			printf "%s is in no layer\n", (!ea ? ex_from : ex_to)
			exit 1
		}
		printf "layer %s (line %d) -> layer %s (line %d): ", L_rank[ea], L_line[ea], L_rank[eb], L_line[eb]
		if (v == "down") print "down, fine"
		else if (v == "module") print "one module, fine"
		else if (v == "umbrella") print "the umbrella header of its folder, fine"
		else if (v == "allow") print "allowed by line " A_line[judged_line]
		else if (v == "up") print "UP"
		else print "SIDEWAYS: no allow line"
		exit (v == "up" || v == "sideways") ? 1 : 0
	}

	# Every file must be placed.
	for (i = 1; i <= nfiles; i++)
		if (!entry(flist[i]))
			add_violation("UNCOVERED " flist[i] " (no layer line covers it)")
	for (o in obj_src)
		if (!entry(obj_src[o]) && !(obj_src[o] in files))
			add_violation("UNCOVERED " obj_src[o] " (an object of the library; no layer line covers it)")

	# Call edges: a reference to a symbol another object defines.
	for (r = 1; r <= nrefs; r++) {
		sym = refs_sym[r]
		a = refs_src[r]
		if (!(sym in def_n))
			continue	# libc and friends
		for (k = 1; k <= def_n[sym]; k++) {
			b = def_src[sym, k]
			if (b == a || ((a SUBSEP b SUBSEP sym) in call_seen))
				continue
			call_seen[a, b, sym] = 1
			if (!((a SUBSEP b) in call_syms)) {
				call_a[++ncalls] = a
				call_b[ncalls] = b
				call_syms[a, b] = sym
			} else
				call_syms[a, b] = call_syms[a, b] ", " sym
			call_count[a, b]++
		}
	}

	# Include edges: resolved as the compiler does, the including file
	# folder first, then the include path.
	for (i = 1; i <= nincs; i++) {
		a = incs_file[i]
		name = incs_name[i]
		b = ""
		cand = normpath(dirof(a) "/" name)
		if (cand in files)
			b = cand
		for (k = 1; b == "" && k <= nipath; k++) {
			cand = normpath(ipath[k] "/" name)
			if (cand in files)
				b = cand
		}
		if (b == "") {
			nunres++
			unres[nunres] = a ":" incs_line[i] ": \"" name "\""
			continue
		}
		if (!((a SUBSEP b) in inc_lines)) {
			inc_a[++ninc] = a
			inc_b[ninc] = b
			inc_lines[a, b] = incs_line[i]
		} else
			inc_lines[a, b] = inc_lines[a, b] ", " incs_line[i]
		inc_count[a, b]++
	}

	# Judge them.  A symbol line excuses the symbols it names on an edge
	# that would be a violation; the rest of that edge still counts.
	nexempt = 0
	for (i = 1; i <= ncalls; i++) {
		a = call_a[i]; b = call_b[i]
		v = judge(a, b, "call")
		if (v == "up" || v == "sideways") {
			left = ""
			ns = split(call_syms[a, b], ss, ", ")
			for (k = 1; k <= ns; k++) {
				if (e = exempt(ss[k])) {
					used_sym[e] = 1
					exempt_list[++nexempt] = a " -> " b " (" ss[k] ")"
				} else
					left = left (left == "" ? "" : ", ") ss[k]
			}
			if (left != "")
				add_violation((v == "up" ? "UP-CALL " : "SIDEWAYS ") a " -> " b " (" left ") " rank_text(a, b))
		} else if (v == "allow")
			add_edge_g(a, b, judged_line)
	}
	for (i = 1; i <= ninc; i++) {
		a = inc_a[i]; b = inc_b[i]
		v = judge(a, b, "include")
		ln = (index(inc_lines[a, b], ",") ? "lines " : "line ") inc_lines[a, b]
		if (v == "up")
			add_violation("UP-INCLUDE " a " -> " b " (" ln ") " rank_text(a, b))
		else if (v == "sideways")
			add_violation("SIDEWAYS-INCLUDE " a " -> " b " (" ln ") " rank_text(a, b))
		else if (v == "allow")
			add_edge_g(a, b, judged_line)
	}
	for (u in g_n)
		if (!color[u])
			dfs(u)

	# ---- report ----
	printf "%s: table %s: %d layer, %d allow, %d symbol entries\n", prog, conf, nlayers, nallow, nsym
	if (includes_only)
		printf "%s: %d source files, %d include edges (calls not read: --includes-only)\n", prog, nfiles, ninc
	else
		printf "%s: %d source files, %d objects %s; %d call edges, %d include edges, %d references excused by symbol lines\n", \
			prog, nfiles, nobjs, what, ncalls, ninc, nexempt
	for (i = 1; i <= ncalls; i++) {
		fa = dirof(call_a[i]) "/"; fb = dirof(call_b[i]) "/"
		if (!((fa SUBSEP fb) in fedge)) { fedge[fa, fb] = 1; fe_a[++nfe] = fa; fe_b[nfe] = fb }
		fcalls[fa, fb] += call_count[call_a[i], call_b[i]]
	}
	for (i = 1; i <= ninc; i++) {
		fa = dirof(inc_a[i]) "/"; fb = dirof(inc_b[i]) "/"
		if (!((fa SUBSEP fb) in fedge)) { fedge[fa, fb] = 1; fe_a[++nfe] = fa; fe_b[nfe] = fb }
		fincs[fa, fb] += inc_count[inc_a[i], inc_b[i]]
	}
	print "folder edges (calls: symbols used, includes: #include lines):"
	fflush()
	for (i = 1; i <= nfe; i++)
		out_sorted(sprintf("  %-18s -> %-18s calls %4d  includes %3d", fe_a[i], fe_b[i], \
			fcalls[fe_a[i], fe_b[i]], fincs[fe_a[i], fe_b[i]]))
	flush_sorted()
	if (verbose) {
		print "file edges:"
		fflush()
		for (i = 1; i <= ncalls; i++)
			out_sorted("  call    " call_a[i] " -> " call_b[i] ": " call_syms[call_a[i], call_b[i]])
		for (i = 1; i <= ninc; i++)
			out_sorted("  include " inc_a[i] " -> " inc_b[i] " (line " inc_lines[inc_a[i], inc_b[i]] ")")
		flush_sorted()
		if (nexempt) {
			print "references excused by symbol lines:"
			fflush()
			for (i = 1; i <= nexempt; i++)
				out_sorted("  " exempt_list[i])
			flush_sorted()
		}
		if (nunres) {
			print "includes not found under src/, lf/, include/ (generated or outside; not checked):"
			fflush()
			for (i = 1; i <= nunres; i++)
				out_sorted("  " unres[i])
			flush_sorted()
		}
		nunused = 0
		for (i = 1; i <= nallow; i++)
			if (!(i in used_allow))
				unused[++nunused] = sprintf("  line %d: allow %s", A_line[i], A_text[i])
		if (!includes_only)
			for (i = 1; i <= nsym; i++)
				if (!(i in used_sym))
					unused[++nunused] = sprintf("  line %d: symbol %s", S_line[i], S_glob[i])
		if (nunused) {
			print "table entries no edge used (stale, or a typo?):"
			for (i = 1; i <= nunused; i++)
				out_sorted(unused[i])
			flush_sorted()
		}
	}
	for (i = 1; i <= nviol; i++)
		out_sorted(prog ": " violations[i])
	flush_sorted()
	if (nviol) {
		printf "%s: %d violation%s\n", prog, nviol, (nviol == 1 ? "" : "s")
		exit 1
	}
	printf "%s: ok: no call or include up the layers or sideways outside the allow lines\n", prog
	exit 0
}

function add_edge_g(a, b, line,   ma, mb) {
	used_allow[line] = 1
	ma = modof(a); mb = modof(b)
	if ((ma SUBSEP mb) in g_seen)
		return
	g_seen[ma, mb] = 1
	g_to[ma, ++g_n[ma]] = mb
	if (!(mb in g_n))
		g_n[mb] = 0
}
'
