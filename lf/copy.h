/*
 * A copy that ThreadSanitizer does not see: the bytes of a span that
 * other threads (and the kernel, on their behalf) write while a backing
 * move holds it write-protected.  Those writers are stopped by the
 * kernel, not by a hand-off TSan could see, so an instrumented copy would
 * be reported as a race that cannot happen.  Nothing of allocation.
 */
#ifndef HL_LF_COPY_H
#define HL_LF_COPY_H

#include <stddef.h>

/* Copy n bytes from src to dst (not overlapping), uninstrumented and
 * never through memcpy (which TSan intercepts). */
void lf_copy_unseen(void *dst, const void *src, size_t n);

#endif
