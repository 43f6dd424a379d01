## bench/bench.mk -- `make bench`: heaplib against glibc, jemalloc, tcmalloc
## and mimalloc as BENCH.md says, stress workloads and Debian's redis-server,
## written to bench/results.md, bench/throughput.png, bench/redis.png and bench/migrate.png,
## every run's figures under bench/raw/ (git-ignored).
## Included from Makefile.am, after EXTRA_DIST is first set.
##
##   make bench              5 runs per figure, about 30 minutes on 2 cores
##   make bench QUICK=1      3 short runs per figure, about 2 minutes
##   make bench-thp          THP madvise against always (bench/thp.sh; root)
##
## Other settings (RUNS, DURATION, THREADS, WORKLOADS, ALLOCATORS, CG_N,
## REDIS, REDIS_N, REDIS_KEYS, NO_APT) pass through the environment: see
## scripts/bench.sh and bench/redis.sh.  The preloads redis runs with
## (bench/redis-preload.c) are compiled by the run into bench/raw/.

bench: stress/heaplib-stress$(EXEEXT) libheaplib.la bench/migrate$(EXEEXT)
	bash $(srcdir)/scripts/bench.sh QUICK='$(QUICK)' CC='$(CC)' \
	  BUILDDIR='$(abs_top_builddir)' BENCH_COMMAND='make bench'

bench-thp: stress/heaplib-stress$(EXEEXT) libheaplib.la
	bash $(srcdir)/bench/thp.sh QUICK='$(QUICK)' BUILDDIR='$(abs_top_builddir)'
.PHONY: bench bench-thp

EXTRA_DIST += bench/bench.mk bench/plot.gp bench/plot-redis.gp bench/report.awk \
	bench/redis.sh bench/redis-preload.c bench/cross-control.c bench/thp.sh bench/migrate.sh \
	bench/migrate-plot.sh bench/plot-migrate.gp \
	stress/callgrind.c
