/*
 * The fatal line: "heaplib: CALL(PTR): REASON", then abort.  The heap is
 * already wrong when we get here: no allocation, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

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

static char *fmt_udec(char *o, char *end, unsigned long u)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n && o < end)
		*o++ = tmp[--n];
	return o;
}

static char *fmt_dec(char *o, char *end, long v)
{
	if (v < 0 && o < end)
		*o++ = '-';
	return fmt_udec(o, end, v < 0 ? -(unsigned long)v : (unsigned long)v);
}

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

void hl_fatal_size(const char *call, const void *ptr, size_t given,
		   const char *block, size_t bytes)
{
	char why[160], *o = why, *end = why + sizeof why - 1;
	o = fmt_str(o, end, HL_WHY_SIZE " (");
	o = fmt_udec(o, end, given);
	o = fmt_str(o, end, " bytes given, ");
	o = fmt_str(o, end, block);
	o = fmt_str(o, end, " ");
	o = fmt_udec(o, end, bytes);
	o = fmt_str(o, end, ")");
	*o = 0;
	hl_fatal(call, ptr, why);
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
