/*
 * lf_copy_unseen (copy.h).  On x86-64 one `rep movsb`: an instruction,
 * not a call, so no sanitizer intercepts it and fast-strings CPUs move
 * whole cache lines.  Elsewhere a word loop in a function the thread
 * sanitizer does not instrument, kept by the optimize attribute from
 * being turned back into a memcpy call.
 */
#include "copy.h"

#include <stdint.h>

#if defined(__x86_64__)
__attribute__((no_sanitize_thread, no_sanitize_address))
void lf_copy_unseen(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb"
			 : "+D"(dst), "+S"(src), "+c"(n)
			 :
			 : "memory");
}
#else
__attribute__((no_sanitize_thread, no_sanitize_address,
	       optimize("no-tree-loop-distribute-patterns")))
void lf_copy_unseen(void *dst, const void *src, size_t n)
{
	volatile uint64_t *d = dst;
	const volatile uint64_t *s = src;
	for (size_t i = 0; i < n / sizeof *d; i++)
		d[i] = s[i];
	volatile unsigned char *db = (volatile unsigned char *)dst;
	const volatile unsigned char *sb = (const volatile unsigned char *)src;
	for (size_t i = n & ~(sizeof *d - 1); i < n; i++)
		db[i] = sb[i];
}
#endif
