/*
 * Fault injection of the test builds (base/base.h): os_test_fail_maps(n)
 * makes exactly the next n maps fail, n < 0 every one until reset; an
 * injected failure looks like the kernel's (NULL, errno untouched) and is
 * counted; os_test_fail_unmaps does the same for os_unmap, which then
 * leaves the pages mapped.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <errno.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

#define SZ ((size_t)1 << 16)

int main(void)
{
	plan(9);
	unsigned long f0 = os_test_failed();

	os_test_fail_maps(2);
	errno = 1234;
	void *a = os_map(SZ);
	void *b = os_map_aligned(SZ, (size_t)1 << 20);
	void *c = os_map(SZ);
	ok(!a && !b && c, "fail_maps(2): the next two maps fail, os_map_aligned counting one, the third works");
	is_int(errno, 1234, "an injected failure leaves errno as it was");
	is_int((long long)(os_test_failed() - f0), 2, "os_test_failed counts the two");

	os_test_fail_maps(-1);
	int failed = 0;
	for (int i = 0; i < 100; i++)
		failed += os_map(SZ) == NULL;
	os_test_fail_maps(0);
	void *d = os_map_aligned(SZ, (size_t)1 << 20);
	ok(failed == 100, "fail_maps(-1): every map fails (%d of 100)", failed);
	ok(d && ((uintptr_t)d & (((size_t)1 << 20) - 1)) == 0,
	   "fail_maps(0) ends it: an aligned map works again");

	os_test_fail_unmaps(1);
	bool u1 = os_unmap(c, SZ);
	ok(!u1, "fail_unmaps(1): os_unmap reports the failure");
	memset(c, 0x5a, SZ);   /* still ours: this must not fault */
	ok(((unsigned char *)c)[SZ - 1] == 0x5a, "a failed unmap leaves the pages mapped");
	ok(os_unmap(c, SZ), "the next unmap works");
	ok(os_unmap(d, SZ), "an aligned mapping unmaps");
	return done_testing();
}
