/*
 * The thread-exit and fork registries.  Layers above register what a
 * thread's exit or a fork must do (api/init.c, at start-up); this file
 * owns the one pthread key and the one pthread_atfork registration, so
 * that no layer calls another at those moments.
 *
 * Concurrency: registration happens during start-up, before any thread
 * but the initializing one can reach heaplib; the callbacks run on the
 * exiting (or forking) thread.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "base/base.h"

static void (*thread_exit_fn[THREAD_EXIT_NORDERS])(void);
static pthread_key_t thread_key;
static bool thread_key_ok;

#define THREAD_MARK ((void *)1)

static void thread_exit_run(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < THREAD_EXIT_NORDERS; i++)
		if (thread_exit_fn[i])
			thread_exit_fn[i]();
}

void thread_init(void)
{
	/* Keys below PTHREAD_KEY_2NDLEVEL_SIZE need no allocation in glibc's
	 * pthread_setspecific; we create ours first thing. */
	thread_key_ok = pthread_key_create(&thread_key, thread_exit_run) == 0;
}

void thread_exit_register(enum thread_exit_order order, void (*fn)(void))
{
	thread_exit_fn[order] = fn;
}

void thread_exit_ensure(void)
{
	if (thread_key_ok && !pthread_getspecific(thread_key))
		pthread_setspecific(thread_key, THREAD_MARK);
}

/* ---- fork --------------------------------------------------------------- */

static struct {
	void (*prepare)(void), (*parent)(void), (*child)(void);
} thread_fork[THREAD_FORK_MAX];
static unsigned thread_nfork;
static bool thread_fork_hooked;

static void thread_fork_prepare(void)
{
	for (unsigned i = 0; i < thread_nfork; i++)
		if (thread_fork[i].prepare)
			thread_fork[i].prepare();
}

static void thread_fork_parent(void)
{
	for (unsigned i = thread_nfork; i-- > 0;)
		if (thread_fork[i].parent)
			thread_fork[i].parent();
}

static void thread_fork_child(void)
{
	for (unsigned i = thread_nfork; i-- > 0;)
		if (thread_fork[i].child)
			thread_fork[i].child();
}

bool thread_atfork_register(void (*prepare)(void), void (*parent)(void),
			    void (*child)(void))
{
	if (thread_nfork >= THREAD_FORK_MAX)
		return false;
	/* One pthread_atfork for all of heaplib, made on the first
	 * registration (glibc keeps the first handlers in static storage:
	 * this does not allocate). */
	if (!thread_fork_hooked) {
		if (pthread_atfork(thread_fork_prepare, thread_fork_parent,
				   thread_fork_child) != 0)
			return false;
		thread_fork_hooked = true;
	}
	thread_fork[thread_nfork].prepare = prepare;
	thread_fork[thread_nfork].parent = parent;
	thread_fork[thread_nfork].child = child;
	thread_nfork++;
	return true;
}
