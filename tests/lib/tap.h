/*
 * A small TAP producer for heaplib's tests (Debian has no libtap).
 *
 * Output goes to stdout, one line per assertion, flushed at once so that
 * a test which crashes still leaves every line it reached in its log.
 * Assertions may be made from several threads: each line is written whole.
 * Diagnostics are TAP comments ("# ...") on stdout, so they stay in order
 * with the assertions they explain.
 */
#ifndef HL_TESTS_TAP_H
#define HL_TESTS_TAP_H

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

#ifdef __cplusplus
extern "C" {
#endif

/* Announce n assertions (prints "1..n" now). */
void plan(int n);
/* The count is printed by done_testing() instead. */
void plan_no_plan(void);
/* Nothing to test here ("1..0 # SKIP why"); main then returns 0. */
void plan_skip_all(const char *why);

/* Each returns whether the assertion passed. */
int ok(int cond, const char *fmt, ...) TAP_PRINTF(2, 3);
int is_int(long long got, long long want, const char *name);
int is_ptr(const void *got, const void *want, const char *name);
int is_str(const char *got, const char *want, const char *name);

/* Record n assertions as skipped, with the reason. */
void skip(int n, const char *fmt, ...) TAP_PRINTF(2, 3);
/* A comment line ("# ...") per line of the message. */
void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
/* Stop the whole run: prints "Bail out! ..." and exits 255. */
void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2) __attribute__((noreturn));

/* The exit status for main: 0 iff every assertion passed and their count
 * matches the plan.  Prints the plan first if there was none. */
int done_testing(void);

/*
 * Run fn(arg) in a child process that must die by SIGABRT with
 * expected_substring (may be "") somewhere in what it wrote to stderr.
 * One assertion named name; on failure the diagnostics give the child's
 * exit status or signal and its stderr.  The child is killed by SIGALRM
 * if it runs for more than a minute.
 */
int tap_expect_abort(void (*fn)(void *), void *arg,
		     const char *expected_substring, const char *name);

/*
 * For settings heaplib reads once, at start-up: unless the first variable
 * is already set, set every (name, value) pair given (the list ends with
 * NULL) and execute this program again with argv.  Returns only in the
 * process that has them; exits 1 if the re-execution fails.
 */
void tap_reexec_with_env(char **argv, ...);

/* HEAPLIB_TEST_SCALE as a number (1.0 when unset or not a positive
 * number): tests multiply their iteration counts by it. */
double tap_scale(void);

#ifdef __cplusplus
}
#endif

#endif
