/*
 * Under a small address-space limit (RLIMIT_AS) heaplib works as far as
 * the limit lets it, as glibc does: small mallocs work, and what does not
 * fit fails with NULL and ENOMEM, never an abort, leaving the program's
 * blocks as they were.  Filling the space with small blocks ends in
 * ENOMEM too, and freeing them lets small mallocs work again.
 *
 * Each limit runs in a child process that heaplib starts in under the
 * limit (set before exec); it reports one line per check on a pipe.  Plain
 * build only: a sanitizer's shadow memory needs terabytes of address space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

#define MiB ((size_t)1 << 20)
#define NCHECKS 9

static int report_fd;

/* In the child: one line "1 what" or "0 what", written without malloc. */
static void check(int cond, const char *what)
{
	char line[256];
	int n = snprintf(line, sizeof line, "%d %s\n", cond ? 1 : 0, what);
	if (write(report_fd, line, (size_t)n) != n)
		_exit(3);
}

static int intact(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i += 4096)
		if (p[i] != v)
			return 0;
	return 1;
}

static void child(size_t limit)
{
	char *s = hl_malloc(16);
	check(s != NULL, "malloc(16) works");
	if (s)
		memset(s, 1, 16);

	int ok_small = 1;
	void *many[2000];
	for (int i = 0; i < 2000; i++) {
		many[i] = hl_malloc((size_t)16 << (i % 11));   /* 16 B .. 16 KiB */
		if (!many[i])
			ok_small = 0;
		else
			memset(many[i], 2, 16);
	}
	check(ok_small, "2000 small mallocs of 16 B to 16 KiB work");

	unsigned char *m = hl_malloc(MiB);
	check(m != NULL, "malloc(1 MiB) works");
	if (m)
		memset(m, 3, MiB);

	errno = 0;
	void *big = hl_malloc(limit);
	check(big == NULL && errno == ENOMEM, "malloc of the whole limit fails with ENOMEM");
	errno = 0;
	void *cz = hl_calloc(1, limit);
	check(cz == NULL && errno == ENOMEM, "calloc of the whole limit fails with ENOMEM");

	errno = 0;
	unsigned char *r = m ? hl_realloc(m, limit) : NULL;
	check(m && r == NULL && errno == ENOMEM && intact(m, MiB, 3),
	      "realloc(1 MiB block, the whole limit) fails with ENOMEM, the block intact");

	/* Fill the space with small blocks until malloc says no. */
	void **list = NULL;
	size_t n = 0;
	int err = 0;
	for (;;) {
		void **b = hl_malloc(4096);
		if (!b) {
			err = errno;
			break;
		}
		*b = list;
		list = b;
		n++;
	}
	char what[160];
	snprintf(what, sizeof what, "small mallocs until the space is full end with ENOMEM (%zu MiB of 4 KiB blocks)",
		 n * 4096 / MiB);
	check(err == ENOMEM && n > 0, what);
	while (list) {
		void **next = *list;
		hl_free(list);
		list = next;
	}
	void *again = hl_malloc(4096);
	check(again != NULL, "after they are freed, small mallocs work again");
	hl_free(again);

	for (int i = 0; i < 2000; i++)
		hl_free(many[i]);
	hl_free(m);
	hl_free(s);
	check(1, "every block freed, no abort");
	_exit(0);
}

static void run_limit(char *self, size_t limit)
{
	int fd[2];
	if (pipe(fd) != 0)
		bail_out("pipe: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		char lim[32], out[16];
		snprintf(lim, sizeof lim, "%zu", limit);
		snprintf(out, sizeof out, "%d", fd[1]);
		struct rlimit rl = { limit, limit };
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(4);
		/* heaplib starts afresh under the limit */
		execl("/proc/self/exe", self, "child", lim, out, (char *)NULL);
		_exit(5);
	}
	close(fd[1]);
	FILE *f = fdopen(fd[0], "r");
	char line[256];
	int seen = 0;
	while (f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		ok(line[0] == '1', "RLIMIT_AS %zu MiB: %s", limit / MiB, line + 2);
		seen++;
	}
	if (f)
		fclose(f);
	int st = 0;
	waitpid(pid, &st, 0);
	for (; seen < NCHECKS; seen++)
		ok(0, "RLIMIT_AS %zu MiB: check %d not reached", limit / MiB, seen + 1);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		diag("the child %s %d", WIFSIGNALED(st) ? "died of signal" : "exited with status",
		     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "child") == 0) {
		report_fd = atoi(argv[3]);
		child(strtoull(argv[2], NULL, 10));
	}
#ifdef HL_SANITIZER
	plan_skip_all("a sanitizer's shadow memory does not fit under RLIMIT_AS");
	return 0;
#endif
	plan(2 * NCHECKS);
	run_limit(argv[0], 3 * 512 * MiB);   /* 1.5 GiB: room for one whole chunk */
	run_limit(argv[0], 512 * MiB);       /* less than a chunk */
	return done_testing();
}
