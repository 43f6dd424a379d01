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

char *hl_fmt_str(char *o, char *end, const char *s)
{
	while (*s && o < end)
		*o++ = *s++;
	return o;
}

char *hl_fmt_hex(char *o, char *end, uintptr_t v)
{
	char tmp[2 + 2 * sizeof v];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	o = hl_fmt_str(o, end, "0x");
	while (n && o < end)
		*o++ = tmp[--n];
	return o;
}

char *hl_fmt_dec(char *o, char *end, long v)
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

void hl_say(const char *prefix, const char *call, const void *ptr, const char *reason)
{
	char buf[512], *o = buf, *end = buf + sizeof buf - 2;
	o = hl_fmt_str(o, end, prefix);
	o = hl_fmt_str(o, end, call);
	o = hl_fmt_str(o, end, "(");
	o = hl_fmt_hex(o, end, (uintptr_t)ptr);
	o = hl_fmt_str(o, end, "): ");
	o = hl_fmt_str(o, end, reason);
	*o++ = '\n';
	*o = 0;
	hl_write_err(buf);
}

void hl_fatal(const char *call, const void *ptr, const char *reason)
{
	hl_say("heaplib: ", call, ptr, reason);
	abort();
}

void hl_fatal_assert(const char *expr, const char *file, int line)
{
	char buf[512], *o = buf, *end = buf + sizeof buf - 2;
	o = hl_fmt_str(o, end, "heaplib: internal assertion failed: ");
	o = hl_fmt_str(o, end, expr);
	o = hl_fmt_str(o, end, " at ");
	o = hl_fmt_str(o, end, file);
	o = hl_fmt_str(o, end, ":");
	o = hl_fmt_dec(o, end, line);
	*o++ = '\n';
	*o = 0;
	hl_write_err(buf);
	abort();
}

char *hl_fmt_u64(char *o, char *end, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && o < end)
		*o++ = tmp[--n];
	return o;
}

void hl_fatal_size(const char *call, const void *ptr, size_t given,
		   const char *block, size_t bytes)
{
	char why[160], *o = why, *end = why + sizeof why - 1;
	o = hl_fmt_str(o, end, HL_WHY_SIZE " (");
	o = hl_fmt_u64(o, end, given);
	o = hl_fmt_str(o, end, " bytes given, ");
	o = hl_fmt_str(o, end, block);
	o = hl_fmt_str(o, end, " ");
	o = hl_fmt_u64(o, end, bytes);
	o = hl_fmt_str(o, end, ")");
	*o = 0;
	hl_fatal(call, ptr, why);
}
