/*
 * fork() while other threads allocate and free: the child (which has only
 * the forking thread) never deadlocks and can allocate and free; the
 * parent goes on unharmed.  A child that hangs is killed by its alarm and
 * counted as a failure.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define NT 3
static int stop;

static void *busy(void *arg)
{
	unsigned seed = 3 + (unsigned)(intptr_t)arg;
	void *v[128] = { 0 };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 128; i++) {
			seed = seed * 1103515245u + 12345u;
			size_t sz = (seed >> 8) % 97 == 0 ? 70000 : 16 + (seed >> 8) % 3000;
			hl_free(v[i]);
			v[i] = hl_malloc(sz);
		}
	}
	for (int i = 0; i < 128; i++)
		hl_free(v[i]);
	return NULL;
}

static int child_work(void)
{
	alarm(10);
	void *v[256];
	for (int r = 0; r < 40; r++) {
		for (int i = 0; i < 256; i++) {
			v[i] = hl_malloc(16 + (size_t)(i * 13 % 5000) + (i == 7 ? 100000 : 0));
			if (!v[i])
				return 2;
			memset(v[i], 1, 16);
		}
		for (int i = 0; i < 256; i++)
			hl_free(v[i]);
	}
	return 0;
}

int main(void)
{
	int forks = (int)(50 * tap_scale());
	if (forks < 10)
		forks = 10;
	plan(2);
	pthread_t t[NT];
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, busy, (void *)(intptr_t)i);
	int good = 0, hung = 0;
	for (int f = 0; f < forks; f++) {
		usleep(1000 + (f % 7) * 300);
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_work());
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
		else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
			hung++;
		else
			diag("fork %d: child status %#x", f, st);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	ok(good == forks, "%d children forked amid allocating threads allocated and exited cleanly (%d hung)",
	   forks, hung);
	void *p = hl_malloc(100);
	ok(p != NULL, "the parent allocates after the forks");
	hl_free(p);
	return done_testing();
}
