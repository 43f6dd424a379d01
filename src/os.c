/*
 * The operating system: mappings, purging, the clock, fatal errors.
 * Nothing here allocates with malloc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void *os_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *os_map_aligned(size_t size, size_t align)
{
	if (align <= HL_PAGE)
		return os_map(size);
	size_t over = size + align;
	if (over < size)
		return NULL;
	char *p = os_map(over);
	if (!p)
		return NULL;
	uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = a - (uintptr_t)p, tail = over - head - size;
	if (head)
		munmap(p, head);
	if (tail)
		munmap((char *)a + size, tail);
	return (void *)a;
}

void os_unmap(void *p, size_t size)
{
	int saved = errno;
	munmap(p, size);
	errno = saved;
}

void os_purge(void *p, size_t size)
{
	int saved = errno;
	madvise(p, size, MADV_DONTNEED);
	errno = saved;
}

void os_release(void *p, size_t size)
{
	int saved = errno;
	/* Replacing the pages frees them and makes stray reads fault,
	 * without giving the address range back to anyone else. */
	mmap(p, size, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	errno = saved;
}

bool os_recommit(void *p, size_t size)
{
	int saved = errno;
	bool ok = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
	errno = saved;
	return ok;
}

uint32_t os_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

unsigned os_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

uint64_t os_random64(void)
{
	uint64_t v = 0;
	int saved = errno;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&v;
	}
	errno = saved;
	return v | 1u;
}

void hl_write_err(const char *msg)
{
	size_t len = strlen(msg);
	while (len) {
		ssize_t w = write(STDERR_FILENO, msg, len);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return;
		}
		msg += w;
		len -= (size_t)w;
	}
}

static char *fmt_str(char *o, char *end, const char *s)
{
	while (*s && o < end)
		*o++ = *s++;
	return o;
}

static char *fmt_hex(char *o, char *end, uintptr_t v)
{
	char tmp[2 + 2 * sizeof v];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	o = fmt_str(o, end, "0x");
	while (n && o < end)
		*o++ = tmp[--n];
	return o;
}

static char *fmt_dec(char *o, char *end, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0 && o < end)
		*o++ = '-';
	while (n && o < end)
		*o++ = tmp[--n];
	return o;
}

/* One line, "heaplib: CALL(PTR): REASON", then abort.  The heap is already
 * wrong when we get here: no allocation, no stdio. */
void hl_fatal(const char *call, const void *ptr, const char *reason)
{
	char buf[512], *o = buf, *end = buf + sizeof buf - 2;
	o = fmt_str(o, end, "heaplib: ");
	o = fmt_str(o, end, call);
	o = fmt_str(o, end, "(");
	o = fmt_hex(o, end, (uintptr_t)ptr);
	o = fmt_str(o, end, "): ");
	o = fmt_str(o, end, reason);
	*o++ = '\n';
	*o = 0;
	hl_write_err(buf);
	abort();
}

void hl_fatal_assert(const char *expr, const char *file, int line)
{
	char buf[512], *o = buf, *end = buf + sizeof buf - 2;
	o = fmt_str(o, end, "heaplib: internal assertion failed: ");
	o = fmt_str(o, end, expr);
	o = fmt_str(o, end, " at ");
	o = fmt_str(o, end, file);
	o = fmt_str(o, end, ":");
	o = fmt_dec(o, end, line);
	*o++ = '\n';
	*o = 0;
	hl_write_err(buf);
	abort();
}
