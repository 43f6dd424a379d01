#!/usr/bin/env bash
# Build heaplib, then run the stress program against the system malloc,
# the peers that are installed (jemalloc, tcmalloc, mimalloc) and heaplib,
# each preloaded, and print the comparison.  Arguments go to heaplib-stress.
set -eu

cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./stress/heaplib-stress --compare --peers --lib "$PWD/.libs/libheaplib.so" "$@"
