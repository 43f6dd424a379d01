/*
 * Start-up: configuration from the environment, every layer's *_init
 * bottom-up, and the callbacks the lower layers run at thread exit and on
 * crossing a region's level.
 *
 * The first allocation of the process initializes (in practice the main
 * thread, long before any other thread exists: the C library allocates
 * during its own start-up).  A thread that arrives while another is in
 * the middle of it waits for it: this is the one wait in heaplib, once per
 * process, before anything is allocated.  A child forked while a thread
 * of its parent was initializing starts again on its own.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "api/api.h"

static __thread uint8_t hl_in_init HL_TLS;
/* The process whose thread is initializing (0: nobody has begun). */
static pid_t hl_init_pid;

static void hl_init_layers(void)
{
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
	tc_init();
	/* policy */
	region_init();
	task_init();
	/* Registered callbacks, the only ways a lower layer reaches up. */
	thread_exit_register(THREAD_EXIT_TASK, task_thread_exit);
	thread_exit_register(THREAD_EXIT_CACHE, tc_thread_exit);
	thread_exit_register(THREAD_EXIT_HAZARD, desc_hp_thread_exit);
	bk_set_level_hook(region_level_changed);
	decay_set_sweep_hook(region_decay);
	thread_atfork_register(NULL, NULL, region_fork_child);
	mig_init();
	/* After the coordinator's: its prepare parks it before the spans
	 * are held, and its child step runs after the copy. */
	thread_atfork_register(bk_fork_prepare, bk_fork_parent, bk_fork_child);
}

#ifdef HL_TEST_HOOKS
/* Tests: pretend another process's thread began start-up. */
pid_t hl_test_init_pid_set(pid_t pid);
pid_t hl_test_init_pid_set(pid_t pid)
{
	return lf_exchange_acq_rel(&hl_init_pid, pid);
}
#endif

void hl_init_slow(void)
{
	pid_t me = getpid();
	for (;;) {
		if (lf_load_acquire(&hl_inited) == 2)
			return;
		pid_t owner = lf_load_acquire(&hl_init_pid);
		if (owner == 0 || owner != me) {
			/* Nobody has begun, or the one who began is a thread of
			 * the parent of this forked child: it will never finish
			 * here, so this process begins again (nothing was handed
			 * out before start-up ends). */
			if (lf_cas_strong_acq_rel(&hl_init_pid, &owner, me))
				break;
			continue;
		}
		if (hl_in_init)
			hl_fatal("malloc", NULL, "allocation during heaplib's own start-up");
		lf_cpu_relax();
	}
	lf_store_release(&hl_inited, 1);
	hl_in_init = 1;
	hl_init_layers();
	hl_in_init = 0;
	lf_store_release(&hl_inited, 2);
}

__attribute__((constructor)) static void hl_init_ctor(void)
{
	hl_ensure_init();
}

HL_EXPORT unsigned hl_version(void)
{
	return HL_VERSION;
}
