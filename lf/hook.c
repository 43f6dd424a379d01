#include "hook.h"

#ifdef HL_TEST_HOOKS
#include "atomic.h"

lf_hook_fn lf_hook_callback;

void lf_hook_point(const char *name)
{
	lf_hook_fn fn = lf_load_acquire(&lf_hook_callback);
	if (fn)
		fn(name);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int lf_hook_unused_t;
#endif
