/* Blocks filled with one byte, checked by whoever frees them (tests only). */
#ifndef HL_TEST_BLOCKS_H
#define HL_TEST_BLOCKS_H

#include <stddef.h>

#include "heaplib.h"

/* Free p (len bytes, all `byte`), first counting in *bad (atomically:
 * any thread may free) a block that lost one. */
static inline void test_check_free(void *p, size_t len, unsigned char byte, long *bad)
{
	for (size_t k = 0; k < len; k++)
		if (((unsigned char *)p)[k] != byte) {
			__atomic_fetch_add(bad, 1, __ATOMIC_RELAXED);
			break;
		}
	hl_free(p);
}

#endif
