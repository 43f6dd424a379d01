#!/usr/bin/env bash
# Bring a Debian 12 checkout of heaplib to a built tree, doing only what is
# missing: packages (apt-get, skipped with SETUP_NO_APT=1), autoreconf,
# configure, make.  Safe to run again.
#
#   bash scripts/setup.sh          what the build, the tests and make bench's
#                                  stress part need (the peers, valgrind, gnuplot)
#   bash scripts/setup.sh bench    also what only make bench needs: redis-server
#                                  and redis-tools (its Redis part); the tests
#                                  never ask for them
set -eu

cd "$(dirname "$0")/.."

packages=(
	build-essential autoconf automake libtool pkg-config
	valgrind
	liburcu-dev
	libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox mandoc
)
case ${1:-} in
'') ;;
bench) packages+=(redis-server redis-tools) ;;
*) echo "setup: unknown argument '$1' (none, or bench)" >&2; exit 1 ;;
esac

if [ "${SETUP_NO_APT:-0}" != 1 ]; then
	missing=()
	for p in "${packages[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "setup: installing ${missing[*]}" >&2
		sudo=
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -q
		$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
		# Debian starts a redis service on install where it can (port 6379);
		# make bench runs its own servers on free ports and needs none.
	fi
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	autoreconf -fi
fi
if [ ! -f Makefile ]; then
	./configure
fi
make -j2
