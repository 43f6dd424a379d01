/*
 * Start-up: configuration from the environment, every layer's *_init
 * bottom-up, and the callbacks the lower layers run at thread exit and on
 * crossing a region's level.
 *
 * The first allocation of the process initializes (in practice the main
 * thread, long before any other thread exists: the C library allocates
 * during its own start-up).  A thread that arrives while another is in
 * the middle of it waits for it: this is the one wait in heaplib, once per
 * process, before anything is allocated.
 */
#define _GNU_SOURCE
#include "api/api.h"

static __thread uint8_t hl_in_init HL_TLS;

void hl_init_slow(void)
{
	int expect = 0;
	if (!lf_cas_strong_acq_rel(&hl_inited, &expect, 1)) {
		if (hl_in_init)
			hl_fatal("malloc", NULL, "allocation during heaplib's own start-up");
		while (lf_load_acquire(&hl_inited) != 2)
			lf_cpu_relax();
		return;
	}
	hl_in_init = 1;
	/* base */
	config_init();
	sc_init();
	thread_init();
	/* mem */
	pm_init();
	bk_init();
	desc_init();
	/* core */
	arena_init();
	sb_init();
	tc_init();
	/* policy */
	region_init();
	task_init();
	/* Registered callbacks, the only ways a lower layer reaches up. */
	thread_exit_register(THREAD_EXIT_TASK, task_thread_exit);
	thread_exit_register(THREAD_EXIT_CACHE, tc_thread_exit);
	thread_exit_register(THREAD_EXIT_HAZARD, desc_hp_thread_exit);
	bk_set_level_hook(region_level_changed);
	hl_in_init = 0;
	lf_store_release(&hl_inited, 2);
}

__attribute__((constructor)) static void hl_init_ctor(void)
{
	hl_ensure_init();
}
