/* Parking a chosen thread at a named test hook (tests only). */
#ifndef HL_TEST_PARK_H
#define HL_TEST_PARK_H

#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "hook.h"

static __thread int park_target;
static const char *park_name;
static int park_armed;
static sem_t park_parked, park_resume;

static inline void park_hook(const char *name)
{
	if (!park_target || strcmp(name, park_name) != 0)
		return;
	if (!__atomic_exchange_n(&park_armed, 0, __ATOMIC_ACQ_REL))
		return;
	sem_post(&park_parked);
	while (sem_wait(&park_resume) != 0)
		;
}

static inline void park_setup(const char *name)
{
	sem_init(&park_parked, 0, 0);
	sem_init(&park_resume, 0, 0);
	park_name = name;
	__atomic_store_n(&lf_hook_callback, park_hook, __ATOMIC_RELEASE);
}

/* Called by the thread to be parked, right before the operation. */
static inline void park_arm_self(void)
{
	park_target = 1;
	__atomic_store_n(&park_armed, 1, __ATOMIC_RELEASE);
}

static inline void park_wait_parked(void)
{
	while (sem_wait(&park_parked) != 0)
		;
}

static inline void park_release(void)
{
	sem_post(&park_resume);
}

#endif
