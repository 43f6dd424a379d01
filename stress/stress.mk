## stress/stress.mk -- the stress harness, heaplib-stress.  Included from
## Makefile.am.  It is not linked with heaplib: it runs against whatever
## allocator is preloaded.

bin_PROGRAMS = stress/heaplib-stress
stress_heaplib_stress_SOURCES = stress/stress.c
stress_heaplib_stress_CPPFLAGS = -I$(srcdir)/include
stress_heaplib_stress_LDADD = -lpthread -lm -ldl

EXTRA_DIST += stress/stress.mk
