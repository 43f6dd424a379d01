#!/usr/bin/env bash
# Build heaplib, then run the stress program against the system malloc and
# against heaplib (LD_PRELOAD) and print its comparison.  Arguments go to
# heaplib-stress.
set -eu

cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./stress/heaplib-stress --compare --lib "$PWD/.libs/libheaplib.so" "$@"
