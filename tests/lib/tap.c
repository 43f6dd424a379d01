/*
 * TAP producer: see tap.h.  stdout's stream lock serializes the counters
 * and the lines, so assertions from several threads neither tear nor get
 * the same number.  No heap allocation of its own: messages are formatted
 * into bounded buffers on the stack.
 */
#define _GNU_SOURCE
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { TAP_LINE_MAX = 1024, TAP_DIAG_MAX = 4096, TAP_CHILD_ERR_MAX = 16384 };

static int tap_planned = -1;	/* -1: no plan printed yet */
static int tap_no_plan;
static int tap_skip_all;
static int tap_run;
static int tap_failed;

/* Print fmt as "# " comment lines; the caller holds stdout's lock. */
static void tap_vdiag_locked(const char *fmt, va_list ap)
{
	char buf[TAP_DIAG_MAX];
	vsnprintf(buf, sizeof buf, fmt, ap);

	const char *line = buf;
	for (;;) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);
		if (len > 0 || nl)
			printf("# %.*s\n", len, line);
		if (!nl || !nl[1])
			break;
		line = nl + 1;
	}
	fflush(stdout);
}

static void tap_diag_locked(const char *fmt, ...) TAP_PRINTF(1, 2);
static void tap_diag_locked(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vdiag_locked(fmt, ap);
	va_end(ap);
}

void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(stdout);
	tap_vdiag_locked(fmt, ap);
	funlockfile(stdout);
	va_end(ap);
}

void plan(int n)
{
	flockfile(stdout);
	if (tap_planned >= 0 || tap_no_plan || tap_skip_all) {
		funlockfile(stdout);
		bail_out("plan(%d) after a plan was already made", n);
	}
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
	funlockfile(stdout);
}

void plan_no_plan(void)
{
	tap_no_plan = 1;
}

void plan_skip_all(const char *why)
{
	flockfile(stdout);
	tap_skip_all = 1;
	tap_planned = 0;
	printf("1..0 # SKIP %s\n", why ? why : "");
	fflush(stdout);
	funlockfile(stdout);
}

/* One "ok"/"not ok" line; newlines in the name would end the line early. */
static int tap_vresult(int cond, const char *fmt, va_list ap)
{
	char name[TAP_LINE_MAX];
	name[0] = '\0';
	if (fmt)
		vsnprintf(name, sizeof name, fmt, ap);
	for (char *c = name; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';

	flockfile(stdout);
	int n = ++tap_run;
	if (!cond)
		tap_failed++;
	printf("%sok %d%s%s\n", cond ? "" : "not ", n, name[0] ? " - " : "", name);
	if (!cond)
		tap_diag_locked("  Failed test %d%s%s%s", n,
				name[0] ? " '" : "", name, name[0] ? "'" : "");
	fflush(stdout);
	funlockfile(stdout);
	return cond != 0;
}

static int tap_result(int cond, const char *fmt, ...) TAP_PRINTF(2, 3);
static int tap_result(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vresult(cond, fmt, ap);
	va_end(ap);
	return r;
}

int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vresult(cond, fmt, ap);
	va_end(ap);
	return r;
}

int is_int(long long got, long long want, const char *name)
{
	int r = tap_result(got == want, "%s", name ? name : "");
	if (!r)
		diag("         got: %lld\n    expected: %lld", got, want);
	return r;
}

int is_ptr(const void *got, const void *want, const char *name)
{
	int r = tap_result(got == want, "%s", name ? name : "");
	if (!r)
		diag("         got: %p\n    expected: %p", got, want);
	return r;
}

int is_str(const char *got, const char *want, const char *name)
{
	int same = (got && want) ? strcmp(got, want) == 0 : got == want;
	int r = tap_result(same, "%s", name ? name : "");
	if (!r)
		diag("         got: %s%s%s\n    expected: %s%s%s",
		     got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
		     want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
	return r;
}

void skip(int n, const char *fmt, ...)
{
	char why[TAP_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	for (char *c = why; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';

	flockfile(stdout);
	for (int i = 0; i < n; i++)
		printf("ok %d # SKIP %s\n", ++tap_run, why);
	fflush(stdout);
	funlockfile(stdout);
}

void bail_out(const char *fmt, ...)
{
	char why[TAP_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);

	flockfile(stdout);
	printf("Bail out! %s\n", why);
	fflush(stdout);
	funlockfile(stdout);
	exit(255);
}

int done_testing(void)
{
	flockfile(stdout);
	int status = 0;
	if (tap_skip_all) {
		funlockfile(stdout);
		return 0;
	}
	if (tap_planned < 0) {
		tap_planned = tap_run;
		printf("1..%d\n", tap_run);
	} else if (tap_run != tap_planned) {
		tap_diag_locked("Looks like you planned %d test%s but ran %d.",
				tap_planned, tap_planned == 1 ? "" : "s", tap_run);
		status = 1;
	}
	if (tap_failed) {
		tap_diag_locked("Looks like you failed %d test%s of %d run.",
				tap_failed, tap_failed == 1 ? "" : "s", tap_run);
		status = 1;
	}
	fflush(stdout);
	funlockfile(stdout);
	return status;
}

double tap_scale(void)
{
	const char *s = getenv("HEAPLIB_TEST_SCALE");
	if (!s || !*s)
		return 1.0;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v > 0.0))
		return 1.0;
	return v;
}

/* ---- tap_expect_abort ---------------------------------------------------- */

static void tap_child_run(void (*fn)(void *), void *arg, int errfd)
{
	/* stderr into the pipe; stdout away from the TAP stream. */
	dup2(errfd, STDERR_FILENO);
	close(errfd);
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull >= 0) {
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}

	/* The abort must be the default one, and leave no core file. */
	struct rlimit nocore = { 0, 0 };
	setrlimit(RLIMIT_CORE, &nocore);
	signal(SIGABRT, SIG_DFL);
	sigset_t abrt;
	sigemptyset(&abrt);
	sigaddset(&abrt, SIGABRT);
	sigaddset(&abrt, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &abrt, NULL);
	signal(SIGALRM, SIG_DFL);
	alarm(60);

	fn(arg);

	static const char msg[] = "tap_expect_abort: the function returned\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(0);
}

int tap_expect_abort(void (*fn)(void *), void *arg,
		     const char *expected_substring, const char *name)
{
	int fds[2];
	const char *want = expected_substring ? expected_substring : "";

	fflush(stdout);
	fflush(stderr);
	if (pipe(fds) != 0) {
		int e = errno;
		tap_result(0, "%s", name);
		diag("pipe: %s", strerror(e));
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		tap_result(0, "%s", name);
		diag("fork: %s", strerror(e));
		return 0;
	}
	if (pid == 0) {
		close(fds[0]);
		tap_child_run(fn, arg, fds[1]);
	}
	close(fds[1]);

	/* Read to EOF, keeping what fits, so the child never blocks on us. */
	char err[TAP_CHILD_ERR_MAX];
	size_t len = 0;
	int truncated = 0;
	for (;;) {
		char spill[512];
		char *dst = len < sizeof err - 1 ? err + len : spill;
		size_t room = len < sizeof err - 1 ? sizeof err - 1 - len : sizeof spill;
		ssize_t r = read(fds[0], dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst == spill)
			truncated = 1;
		else
			len += (size_t)r;
	}
	close(fds[0]);
	err[len] = '\0';

	int status = 0;
	pid_t w;
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);

	int aborted = w == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
	int found = strstr(err, want) != NULL;
	int r = tap_result(aborted && found, "%s", name);
	if (r)
		return 1;

	flockfile(stdout);
	if (w != pid)
		tap_diag_locked("waitpid: %s", strerror(errno));
	else if (WIFEXITED(status))
		tap_diag_locked("child exited with status %d instead of aborting",
				WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		tap_diag_locked("child killed by signal %d (%s)%s", WTERMSIG(status),
				strsignal(WTERMSIG(status)),
				WTERMSIG(status) == SIGABRT ? "" : ", not SIGABRT");
	if (!found)
		tap_diag_locked("stderr does not contain: %s", want);
	if (len == 0) {
		tap_diag_locked("child's stderr was empty");
	} else {
		tap_diag_locked("child's stderr%s:", truncated ? " (truncated)" : "");
		const char *line = err;
		while (*line) {
			const char *nl = strchr(line, '\n');
			int n = nl ? (int)(nl - line) : (int)strlen(line);
			printf("#   %.*s\n", n, line);
			if (!nl)
				break;
			line = nl + 1;
		}
		fflush(stdout);
	}
	funlockfile(stdout);
	return 0;
}

void tap_reexec_with_env(char **argv, ...)
{
	va_list ap;
	va_start(ap, argv);
	const char *name = va_arg(ap, const char *);
	if (!name || getenv(name)) {
		va_end(ap);
		return;
	}
	do {
		const char *value = va_arg(ap, const char *);
		setenv(name, value, 1);
	} while ((name = va_arg(ap, const char *)) != NULL);
	va_end(ap);
	execv("/proc/self/exe", argv);
	perror("execv /proc/self/exe");
	exit(1);
}
