/*
 * Requests that cannot be met return an error, never a crash: NULL with
 * errno ENOMEM for sizes no mapping can hold or that overflow, -1 with
 * EINVAL for a statistics call without a usable struct.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>

#include "heaplib.h"
#include "tap.h"

static void expect_enomem(void *p, int err, const char *what)
{
	ok(p == NULL && err == ENOMEM, "%s returns NULL with errno ENOMEM", what);
	if (p || err != ENOMEM)
		diag("returned %p, errno %d", p, err);
	hl_free(p);
}

#define ENOMEM_CASE(call, what) \
	do { \
		errno = 0; \
		void *p_ = (call); \
		expect_enomem(p_, errno, what); \
	} while (0)

int main(void)
{
	plan(11);

	ENOMEM_CASE(hl_malloc(SIZE_MAX), "hl_malloc(SIZE_MAX)");
	ENOMEM_CASE(hl_malloc(SIZE_MAX - 4096), "hl_malloc(SIZE_MAX - 4096)");
	ENOMEM_CASE(hl_malloc(PTRDIFF_MAX), "hl_malloc(PTRDIFF_MAX)");
	ENOMEM_CASE(hl_calloc(SIZE_MAX / 2, 3), "hl_calloc(SIZE_MAX/2, 3) (overflow)");
	ENOMEM_CASE(hl_calloc((size_t)1 << 40, (size_t)1 << 40), "hl_calloc(1 << 40, 1 << 40) (overflow)");
	ENOMEM_CASE(hl_calloc(1, PTRDIFF_MAX), "hl_calloc(1, PTRDIFF_MAX)");

	is_int((long long)hl_usable_size(NULL), 0, "hl_usable_size(NULL) is 0");

	errno = 0;
	int r = hl_stats_get(NULL);
	ok(r == -1 && errno == EINVAL, "hl_stats_get(NULL) returns -1 with errno EINVAL");

	/* A program built against an older, shorter hl_stats_t: filled up
	 * to its struct_size, not a byte past it. */
	hl_stats_t st;
	memset(&st, 0xa5, sizeof st);
	st.struct_size = offsetof(hl_stats_t, heaps);
	r = hl_stats_get(&st);
	ok(r == 0 && st.struct_size == offsetof(hl_stats_t, heaps) && st.threads_live != 0xa5a5a5a5a5a5a5a5ull &&
	   st.heaps == 0xa5a5a5a5a5a5a5a5ull,
	   "hl_stats_get with struct_size one field short fills the fields it has and not the last");

	st.struct_size = 0;
	errno = 0;
	r = hl_stats_get(&st);
	ok(r == -1 && errno == EINVAL, "hl_stats_get with struct_size 0 returns -1 with errno EINVAL");

	st.struct_size = sizeof st;
	errno = 0;
	r = hl_stats_get(&st);
	ok(r == 0 && st.struct_size == sizeof st,
	   "hl_stats_get with struct_size sizeof(hl_stats_t) returns 0 and keeps struct_size");

	return done_testing();
}
