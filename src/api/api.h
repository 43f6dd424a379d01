/*
 * api/: the exported names and start-up.  The rule of this folder: its
 * files call any layer below (policy/, core/, mem/, base/, lf/), and no
 * file below calls them (but hl_init_slow through hl_ensure_init: see
 * src/README.md).
 *
 *   alloc.c     malloc and friends, their fast paths, hl_alloc (alloc.h:
 *               its internal entries, in C that C++ can read)
 *   override.c  glibc's extras: malloc_trim, mallinfo2, mallopt, ...
 *   cxx.cc      C++'s operators new and delete, every form, on alloc.c
 *   stats.c     hl_stats_get, hl_stats_print
 *   trim.c      hl_trim, hl_thread_flush: flush, sweep every arena, purge
 *   errors.c    hl_strerror
 *   init.c      start-up: every layer's *_init bottom-up, the registries
 */
#ifndef HL_API_H
#define HL_API_H

#include "policy/mig/mig.h"
#include "api/alloc.h"   /* alloc.c's internal entries */

#endif
