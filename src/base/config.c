/*
 * Settings: the HEAPLIB_* environment variables, read once at start-up,
 * and the per-process key that marks freed blocks.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "base/base.h"

hl_config_t hl_config;
uint64_t hl_key;
/* 0 before start-up, 1 during it, 2 after (api/init.c moves it). */
int hl_inited;

static uint64_t config_env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return dflt;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	switch (*s) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	default: break;
	}
	return v;
}

void config_init(void)
{
	hl_config.decay_ms = (uint32_t)config_env_u64("HEAPLIB_DECAY_MS", 1000);
	hl_config.cache_budget = config_env_u64("HEAPLIB_CACHE_BUDGET", (uint64_t)64 << 20);
	hl_config.idle_ms = (uint32_t)config_env_u64("HEAPLIB_IDLE_MS", 1000);
	hl_config.heaps = (uint32_t)config_env_u64("HEAPLIB_HEAPS", 0);
	hl_config.check = config_env_u64("HEAPLIB_CHECK", 0) != 0;
	hl_key = os_random64();
}
