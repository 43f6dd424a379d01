/*
 * Test hooks: named points inside lock-free operations (between reading a
 * head and its CAS, say) where a test can park the calling thread while
 * others run.  Compiled in only when HL_TEST_HOOKS is defined (the test
 * builds of the library); in the installed library HL_HOOK is nothing.
 */
#ifndef HL_LF_HOOK_H
#define HL_LF_HOOK_H

#ifdef HL_TEST_HOOKS
typedef void (*lf_hook_fn)(const char *name);
/* The callback tests install; NULL means no hook.  Called with the point's
 * name on every pass through HL_HOOK. */
extern lf_hook_fn lf_hook_callback;
void lf_hook_point(const char *name);
#define HL_HOOK(name) lf_hook_point(name)
#else
#define HL_HOOK(name) ((void)0)
#endif

#endif
