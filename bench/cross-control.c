/*
 * bench/cross-control.c -- the control for bench-check.so (redis-preload.c):
 * takes a block from glibc behind the preload's back and frees it through
 * the checked free.  The check must count exactly one foreign free, or its
 * zeros for redis-server prove nothing.
 */
#include <stdlib.h>

extern void *__libc_malloc(size_t);

void *volatile keep;            /* so that the compiler keeps the calls */

int main(void)
{
	keep = malloc(32);          /* through the check: known */
	free(keep);
	keep = __libc_malloc(32);
	free(keep);                 /* foreign: counted, not forwarded */
	return 0;
}
