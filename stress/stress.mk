## stress/stress.mk -- the stress harness, heaplib-stress.  Included from
## Makefile.am.  It is not linked with heaplib: it runs against whatever
## allocator is preloaded.  util.h says which file holds what.

bin_PROGRAMS = stress/heaplib-stress
stress_heaplib_stress_SOURCES = \
	stress/util.h \
	stress/verify.h \
	stress/main.c \
	stress/harness.c \
	stress/verify.c \
	stress/report.c \
	stress/compare.c \
	stress/wl/fastpath.c \
	stress/wl/server.c \
	stress/wl/prodcons.c \
	stress/wl/batches.c \
	stress/wl/falseshare.c \
	stress/wl/churn.c \
	stress/wl/blowup.c \
	stress/wl/large.c \
	stress/wl/malloclarge.c \
	stress/wl/mstress.c \
	stress/wl/larson-sized.c \
	stress/wl/regions.c \
	stress/wl/taskpath.c \
	stress/wl/nomadic.c
stress_heaplib_stress_CPPFLAGS = -I$(srcdir)/include
stress_heaplib_stress_LDADD = -lpthread -lm -ldl

EXTRA_DIST += stress/stress.mk
