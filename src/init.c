/*
 * Start-up: configuration from the environment and the first mappings.
 *
 * The first allocation of the process initializes (in practice the main
 * thread, long before any other thread exists: the C library allocates
 * during its own start-up).  A thread that arrives while another is in
 * the middle of it waits for it: this is the one wait in heaplib, once per
 * process, before anything is allocated.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "internal.h"

hl_config_t hl_config;
uint64_t hl_key;
int hl_inited;
static __thread uint8_t hl_in_init __attribute__((tls_model("initial-exec")));

static uint64_t hl_env_u64(const char *name, uint64_t dflt)
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

void hl_init_slow(void)
{
	int expect = 0;
	if (!lf_cas_strong_acq_rel(&hl_inited, &expect, 1)) {
		if (hl_in_init)
			hl_fatal("malloc", NULL, "allocation during heaplib's own start-up");
		while (lf_load_acquire(&hl_inited) != 2)
			lf_cpu_relax();
		return;
	}
	hl_in_init = 1;
	hl_config.decay_ms = (uint32_t)hl_env_u64("HEAPLIB_DECAY_MS", 1000);
	hl_config.cache_budget = hl_env_u64("HEAPLIB_CACHE_BUDGET", (uint64_t)64 << 20);
	hl_config.idle_ms = (uint32_t)hl_env_u64("HEAPLIB_IDLE_MS", 1000);
	hl_config.heaps = (uint32_t)hl_env_u64("HEAPLIB_HEAPS", 0);
	hl_config.check = hl_env_u64("HEAPLIB_CHECK", 0) != 0;
	hl_key = os_random64();
	sc_init();
	pm_init();
	desc_init();
	sb_init();
	rg_init();
	large_init();
	tc_init();
	hl_in_init = 0;
	lf_store_release(&hl_inited, 2);
}

__attribute__((constructor)) static void hl_init_ctor(void)
{
	hl_ensure_init();
}
