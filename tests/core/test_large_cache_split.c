/*
 * A cached mapping split for a smaller request keeps track of every page:
 * when its tail can be neither cached nor unmapped (the kernel refuses a
 * split past the mapping limit), the whole mapping is handed out and the
 * block's usable size is the mapping's; a cached mapping the kernel will
 * not unmap stays cached.  Nothing is ever left mapped that heaplib has
 * forgotten.
 *
 * Thread A takes a 1 MiB block out of a full cache, which holds one
 * 32 MiB mapping and 63 of 512 KiB, and is parked (HOOK_LARGE_CACHE_TAKEN)
 * before its 32 MiB mapping's tail goes back; the main thread fills the
 * slot A freed, and from then on every unmap fails (fault injection).
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "mem/mem.h"
#include "tap.h"
#include "park.h"
#include "hooks.h"

#define BIG ((size_t)32 << 20)
#define SMALL ((size_t)512 << 10)
#define NSMALL 64
#define ASK ((size_t)1 << 20)

static char *a_block;

static void *thread_a(void *arg)
{
	(void)arg;
	park_arm_self();
	a_block = hl_malloc(ASK);
	return NULL;
}

static int mapped(const void *p)
{
	unsigned char v;
	return mincore((void *)p, HL_PAGE, &v) == 0 || errno != ENOMEM;
}

int main(void)
{
	plan(4);
	lheap_test_set_max(0);   /* every block a mapping of its own: the paths here */
	hl_trim();
	char *big = hl_malloc(BIG), *s[NSMALL];
	for (int i = 0; i < NSMALL; i++)
		s[i] = hl_malloc(SMALL);
	hl_free(big);
	for (int i = 0; i < NSMALL - 1; i++)
		hl_free(s[i]);                /* the cache is full: 64 mappings */

	park_setup(HOOK_LARGE_CACHE_TAKEN);
	pthread_t t;
	pthread_create(&t, NULL, thread_a, NULL);
	park_wait_parked();                   /* A holds the 32 MiB mapping */
	hl_free(s[NSMALL - 1]);               /* and the cache is full again */
	unsigned long f0 = os_test_failed();
	os_test_fail_unmaps(-1);
	park_release();
	pthread_join(t, NULL);
	os_test_fail_unmaps(0);

	ok(a_block == big, "A's block comes from the cached 32 MiB mapping (%p, mapping %p)",
	   (void *)a_block, (void *)big);
	ok(os_test_failed() > f0, "unmaps were refused meanwhile (%lu)", os_test_failed() - f0);
	is_int((long long)hl_usable_size(a_block), (long long)BIG,
	       "with its tail neither cached nor unmapped, A's block is the whole mapping");
	memset(a_block, 0x5a, hl_usable_size(a_block));

	hl_free(a_block);
	hl_trim();
	int left = mapped(big);
	for (int i = 0; i < NSMALL; i++)
		left += mapped(s[i]);
	ok(left == 0, "after hl_trim nothing heaplib held is still mapped (%d of 65 mappings are)", left);
	return done_testing();
}
