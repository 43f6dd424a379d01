/*
 * Settings, read once at start-up: the HEAPLIB_OPTIONS string
 * ("decay_ms:500,check:1", the MALLOC_CONF habit) and the HEAPLIB_*
 * variables, a variable overriding the same key in the string; the
 * per-process key that marks freed blocks; warnings.  Both are read with
 * secure_getenv, so a setuid program ignores them, as glibc does its
 * tunables.  Nothing here allocates: start-up runs inside the first
 * malloc.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "base/base.h"

hl_config_t hl_config;
uint64_t hl_key;
/* 0 before start-up, 1 during it, 2 after (api/init.c moves it). */
int hl_inited;

enum config_kind { CONFIG_U32, CONFIG_U64, CONFIG_BOOL };

static const struct config_opt {
	const char *key;      /* in HEAPLIB_OPTIONS */
	const char *env;      /* its own variable */
	enum config_kind kind;
	uint64_t dflt;
	size_t off;
} config_opts[] = {
	{ "decay_ms", "HEAPLIB_DECAY_MS", CONFIG_U32, 1000, offsetof(hl_config_t, decay_ms) },
	{ "cache_budget", "HEAPLIB_CACHE_BUDGET", CONFIG_U64, (uint64_t)64 << 20,
	  offsetof(hl_config_t, cache_budget) },
	{ "idle_ms", "HEAPLIB_IDLE_MS", CONFIG_U32, 1000, offsetof(hl_config_t, idle_ms) },
	{ "heaps", "HEAPLIB_HEAPS", CONFIG_U32, 0, offsetof(hl_config_t, heaps) },
	{ "check", "HEAPLIB_CHECK", CONFIG_BOOL, 0, offsetof(hl_config_t, check) },
	{ "stats", "HEAPLIB_STATS", CONFIG_BOOL, 0, offsetof(hl_config_t, stats) },
	{ "verbose", "HEAPLIB_VERBOSE", CONFIG_BOOL, 0, offsetof(hl_config_t, verbose) },
	{ "migrate_wait_ms", "HEAPLIB_MIGRATE_WAIT_MS", CONFIG_U32, 100,
	  offsetof(hl_config_t, migrate_wait_ms) },
	{ "no_uffd", "HEAPLIB_NO_UFFD", CONFIG_BOOL, 0, offsetof(hl_config_t, no_uffd) },
	{ "uffd_features", "HEAPLIB_UFFD_FEATURES", CONFIG_U64, UINT64_MAX,
	  offsetof(hl_config_t, uffd_features) },
};
#define CONFIG_NOPTS (sizeof config_opts / sizeof config_opts[0])

/* A number with an optional K, M or G suffix, up to end (or a NUL); in
 * hexadecimal after "0x" (masks). */
static uint64_t config_number(const char *s, const char *end)
{
	uint64_t v = 0;
	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (s += 2; s < end; s++) {
			unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0')
				   : (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f' ? (unsigned)((*s | 0x20) - 'a' + 10)
				   : 16u;
			if (d > 15)
				break;
			v = v << 4 | d;
		}
		return v;
	}
	for (; s < end && *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	if (s < end) {
		switch (*s) {
		case 'k': case 'K': v <<= 10; break;
		case 'm': case 'M': v <<= 20; break;
		case 'g': case 'G': v <<= 30; break;
		default: break;
		}
	}
	return v;
}

static void config_set(const struct config_opt *o, uint64_t v)
{
	char *f = (char *)&hl_config + o->off;
	switch (o->kind) {
	case CONFIG_U32: *(uint32_t *)f = (uint32_t)v; break;
	case CONFIG_U64: *(uint64_t *)f = v; break;
	case CONFIG_BOOL: *(bool *)f = v != 0; break;
	}
}

static uint64_t config_get(const struct config_opt *o)
{
	const char *f = (const char *)&hl_config + o->off;
	switch (o->kind) {
	case CONFIG_U32: return *(const uint32_t *)f;
	case CONFIG_U64: return *(const uint64_t *)f;
	case CONFIG_BOOL: return *(const bool *)f;
	}
	return 0;
}

/* "heaplib: " + parts, one write(2); no allocation. */
static void config_say(const char *a, const char *b, size_t blen, const char *c)
{
	char buf[256], *o = buf, *end = buf + sizeof buf - 2;
	o = hl_fmt_str(o, end, "heaplib: ");
	o = hl_fmt_str(o, end, a);
	for (size_t i = 0; i < blen && o < end; i++)
		*o++ = b[i];
	o = hl_fmt_str(o, end, c);
	*o++ = '\n';
	*o = 0;
	hl_write_err(buf);
}

/* key:value,key:value; an unknown key is said once, and ignored. */
static void config_parse(const char *s)
{
	while (s && *s) {
		const char *e = strchr(s, ',');
		if (!e)
			e = s + strlen(s);
		const char *colon = memchr(s, ':', (size_t)(e - s));
		const char *kend = colon ? colon : e;
		const struct config_opt *hit = NULL;
		for (size_t i = 0; i < CONFIG_NOPTS && !hit; i++)
			if (strlen(config_opts[i].key) == (size_t)(kend - s) &&
			    !memcmp(config_opts[i].key, s, (size_t)(kend - s)))
				hit = &config_opts[i];
		if (hit && colon)
			config_set(hit, config_number(colon + 1, e));
		else if (hit && hit->kind == CONFIG_BOOL)
			config_set(hit, 1);   /* "check" alone: on */
		else if (kend > s)
			config_say("HEAPLIB_OPTIONS: ", s, (size_t)(e - s),
				   hit ? ": no value (ignored)" : ": unknown option (ignored)");
		s = *e ? e + 1 : e;
	}
}

void config_init(void)
{
	for (size_t i = 0; i < CONFIG_NOPTS; i++)
		config_set(&config_opts[i], config_opts[i].dflt);
	config_parse(secure_getenv("HEAPLIB_OPTIONS"));
	for (size_t i = 0; i < CONFIG_NOPTS; i++) {
		const char *v = secure_getenv(config_opts[i].env);
		if (v && *v)
			config_set(&config_opts[i], config_number(v, v + strlen(v)));
	}
	hl_config.small_max = HL_SMALL_MAX;
	/* The exit report goes where stderr was at start: programs such as
	 * coreutils close their standard streams before exiting. */
	hl_config.stats_fd = hl_config.stats ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
	hl_key = os_random64();
	if (hl_config.verbose)
		config_print(NULL);
}

size_t config_print(char *out)
{
	char buf[512], *o = buf, *end = buf + sizeof buf - 2;
	o = hl_fmt_str(o, end, out ? "" : "heaplib: options:");
	for (size_t i = 0; i < CONFIG_NOPTS; i++) {
		o = hl_fmt_str(o, end, " ");
		o = hl_fmt_str(o, end, config_opts[i].key);
		o = hl_fmt_str(o, end, ":");
		o = hl_fmt_u64(o, end, config_get(&config_opts[i]));
	}
	*o++ = '\n';
	*o = 0;
	if (out)
		memcpy(out, buf, (size_t)(o - buf) + 1);
	else
		hl_write_err(buf);
	return (size_t)(o - buf);
}

void hl_warn(const char *call, const void *ptr, const char *reason)
{
	if (hl_config.verbose)
		hl_say("heaplib: warning: ", call, ptr, reason);
}
