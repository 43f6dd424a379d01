#!/usr/bin/env bash
# Bring a Debian 12 checkout of heaplib to a built tree, doing only what is
# missing: packages (apt-get, skipped with SETUP_NO_APT=1), autoreconf,
# configure, make.  Safe to run again.
set -eu

cd "$(dirname "$0")/.."

packages=(
	build-essential autoconf automake libtool pkg-config
	valgrind
	liburcu-dev
	libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 gnuplot-nox mandoc
)

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
	fi
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	autoreconf -fi
fi
if [ ! -f Makefile ]; then
	./configure
fi
make -j2
