#!/usr/bin/env bash
# Build heaplib, then run the stress program against the system malloc,
# the peers that are installed (jemalloc, tcmalloc, mimalloc) and heaplib,
# each preloaded, and print the comparison.  Arguments go to heaplib-stress.
set -eu

cd "$(dirname "$0")/.."
bash scripts/setup.sh
./stress/heaplib-stress --compare --peers --lib "$PWD/.libs/libheaplib.so" "$@"
# Nomadic memory: live superblocks moved under verified load (heaplib only).
LD_PRELOAD="$PWD/.libs/libheaplib.so" ./stress/heaplib-stress --workload nomadic --threads 2
