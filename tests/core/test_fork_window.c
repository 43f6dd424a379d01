/*
 * fork of a memfd region while another thread makes a new span in it, in
 * the window the fork's prepare handler leaves: its scan of the region's
 * spans has passed, the fork has not happened yet.  That span was never
 * write-protected by the scan, so the parent's stores into it after the
 * fork could reach the child's copy (the memfd is shared until the child
 * has copied).  The span must hold its own writers: the child's copy is
 * then consistent.
 *
 * Forced with two test hooks: the allocating thread parks just before it
 * publishes its new span; the forking thread, in its prepare handler
 * once the scan is done, lets it go and gives it a moment to get its
 * block and store into it.  The thread stores a counter into a private
 * global first and then into the block, so at the fork the block's copy
 * of it can be no greater than the child's global: a greater one is a
 * store that reached the child after the fork.
 * (ThreadSanitizer kills the children of threaded parents by design: the
 * test is skipped there.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tap.h"
#include "hooks.h"
#include "hook.h"

#define HOOK_PUBLISH HOOK_BK_MEMFD_PUBLISH
#define HOOK_SCANNED HOOK_BK_FORK_SCANNED

static hl_region_t *reg;
static sem_t at_publish, go_publish, got_block;
static int armed_publish, armed_scanned;
static __thread int is_writer;
static pthread_t writer_thread;
static uint64_t *volatile block;
static volatile uint64_t counter;   /* private memory: the child sees it as at the fork */
static volatile int stop;

static void hook(const char *name)
{
	if (is_writer && !strcmp(name, HOOK_PUBLISH) &&
	    __atomic_exchange_n(&armed_publish, 0, __ATOMIC_ACQ_REL)) {
		sem_post(&at_publish);
		while (sem_wait(&go_publish) != 0)
			;
	} else if (!is_writer && !strcmp(name, HOOK_SCANNED) &&
		   __atomic_exchange_n(&armed_scanned, 0, __ATOMIC_ACQ_REL)) {
		/* In the fork's prepare, its scan done: let the writer make
		 * its span, get its block and store, or (held) not. */
		sem_post(&go_publish);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (sem_timedwait(&got_block, &ts) != 0 && errno == EINTR)
			;
	}
}

static void *writer(void *arg)
{
	(void)arg;
	is_writer = 1;
	hl_place_t pl = { .region = reg, .node = -1 };
	void *p = NULL;
	__atomic_store_n(&armed_publish, 1, __ATOMIC_RELEASE);
	if (hl_alloc(4000, &pl, 0, &p) != HL_OK)
		return NULL;
	block = p;
	sem_post(&got_block);
	for (uint64_t i = 1; !stop; i++) {
		counter = i;
		__atomic_store_n(&block[64], i, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* The child: its copy of the block, if it had one at the fork, holds no
 * store made after it.  Exit 0 consistent, 1 not, 2 no block yet. */
static int child(void)
{
	if (!block)
		return 2;
	uint64_t seen = __atomic_load_n(&block[64], __ATOMIC_ACQUIRE);
	usleep(20000);   /* any store still coming through would come now */
	uint64_t later = __atomic_load_n(&block[64], __ATOMIC_ACQUIRE);
	diag("child: block %llu, %llu 20 ms later; counter %llu", (unsigned long long)seen,
	     (unsigned long long)later, (unsigned long long)counter);
	return seen <= counter && later == seen ? 0 : 1;
}

int main(void)
{
	plan_no_plan();
#ifdef __SANITIZE_THREAD__
	skip(3, "ThreadSanitizer kills the children of threaded parents");
	return done_testing();
#endif
	hl_region_attr_t ra = { .struct_size = sizeof ra, .name = "window",
				.backing = HL_BACKING_MEMFD, .capacity = 4 << 20 };
	if (hl_region_create(&ra, &reg) != HL_OK) {
		skip(3, "no memfd region here");
		return done_testing();
	}
	hl_migrate_stats_t ms = { .struct_size = sizeof ms };
	hl_migrate_stats(&ms);
	if (!ms.uffd) {
		skip(3, "userfaultfd unavailable (%s): a fork cannot hold a memfd region's writers",
		     ms.uffd_reason);
		return done_testing();
	}
	sem_init(&at_publish, 0, 0);
	sem_init(&go_publish, 0, 0);
	sem_init(&got_block, 0, 0);
	__atomic_store_n(&lf_hook_callback, hook, __ATOMIC_RELEASE);
	pthread_create(&writer_thread, NULL, writer, NULL);
	while (sem_wait(&at_publish) != 0)
		;
	ok(block == NULL, "the writer is parked before it publishes its new span");
	__atomic_store_n(&armed_scanned, 1, __ATOMIC_RELEASE);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10);
		_exit(child());
	}
	int st = -1;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	ok(code == 0 || code == 2,
	   "the child's copy of a span made during the fork's prepare holds no store of the "
	   "parent's made after the fork (child: %d; 1 means torn)", code);
	while (!block)
		usleep(1000);
	usleep(10000);
	stop = 1;
	pthread_join(writer_thread, NULL);
	uint64_t last = __atomic_load_n(&block[64], __ATOMIC_ACQUIRE);
	ok(last == counter && last > 0,
	   "the parent's writer, held during the fork, went on afterwards (%llu stores)",
	   (unsigned long long)last);
	__atomic_store_n(&lf_hook_callback, (lf_hook_fn)NULL, __ATOMIC_RELEASE);
	hl_free(block);
	is_int(hl_region_delete(reg), HL_OK, "region deleted");
	return done_testing();
}
