## bench/bench.mk -- `make bench`: heaplib against glibc, jemalloc, tcmalloc
## and mimalloc as BENCH.md says, written to bench/results.md and
## bench/throughput.png, every run's figures under bench/raw/ (git-ignored).
## Included from Makefile.am, after EXTRA_DIST is first set.
##
##   make bench              10 runs per figure, about 30 minutes on 2 cores
##   make bench QUICK=1      3 short runs per figure, under 2 minutes
##
## Other settings (RUNS, DURATION, THREADS, WORKLOADS, ALLOCATORS, CG_N,
## NO_APT) pass through the environment: see scripts/bench.sh.

bench: stress/heaplib-stress$(EXEEXT) libheaplib.la
	bash $(srcdir)/scripts/bench.sh QUICK='$(QUICK)' CC='$(CC)' \
	  BUILDDIR='$(abs_top_builddir)' BENCH_COMMAND='make bench'
.PHONY: bench

EXTRA_DIST += bench/bench.mk bench/plot.gp stress/callgrind.c
