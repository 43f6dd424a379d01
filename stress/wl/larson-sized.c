/*
 * larson-sized (larson shape, sized frees): the server workload's engine
 * (wl/server.c: slot arrays of random sizes, every slot replaced in a random
 * order, arrays handed between threads so most frees are remote) with every
 * block freed by free_sized(p, size), the size it was allocated with.
 *
 * free_sized (C23) is looked up once, at setup, with dlsym(RTLD_DEFAULT),
 * and used only when it lives in the same object as the malloc that is
 * found the same way: a libc free_sized must not be handed the blocks of a
 * preloaded allocator.  An allocator without one (glibc 2.36, Debian's
 * jemalloc, tcmalloc and mimalloc) gets plain free: then the run is the
 * server workload again, and the extra figure and a line of the table say
 * so.
 *
 * Verifies: as server, the pattern of every block freed (most of them
 * allocated by another thread) and the zeros of calloc memory (one
 * allocation in 16).
 * Extra figure: sized_free_pct, the share of frees made with free_sized:
 * 100 where the allocator has one, 0 where it fell back to free.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "../verify.h"

/* set by setup, read-only while the threads run */
static sized_free_fn *ls_free_sized;

/* free_sized of the object that also gives malloc, else NULL */
static sized_free_fn *ls_find_free_sized(void)
{
	void *fs = dlsym(RTLD_DEFAULT, "free_sized");
	void *ma = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info a, b;
	if (!fs || !ma || !dladdr(fs, &a) || !dladdr(ma, &b) || a.dli_fbase != b.dli_fbase)
		return NULL;
	return (sized_free_fn *)fs;
}

static void ls_setup(int n)
{
	ls_free_sized = ls_find_free_sized();
	server_setup_with(n, ls_free_sized);
}

static void *ls_thread(void *arg)
{
	return server_run(arg, ls_free_sized);
}

static void ls_done(int n, double secs, struct wl_result_extra *ex)
{
	server_done(n, secs, ex);	/* frees the pool; its figure is replaced */
	ex->name = "sized_free_pct";
	ex->value = ls_free_sized ? 100 : 0;
}

const struct workload wl_larson_sized = {
	.name = "larson-sized",
	.thread_fn = ls_thread,
	.setup = ls_setup,
	.teardown = ls_done,
	.desc = "server with free_sized(p, size) for every free (plain free if none)",
};
