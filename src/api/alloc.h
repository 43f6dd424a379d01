/*
 * alloc.c's internal entries, for api/ (through api/api.h) and for the C++
 * operators (api/cxx.cc): plain C that C++ can read, so it includes
 * nothing of the layers below.  CALL names the caller in the fatal line.
 */
#ifndef HL_API_ALLOC_H
#define HL_API_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* None throws: a C++ caller that must not (a noexcept operator delete)
 * can then tail-call them. */
#define HL_NOTHROW __attribute__((nothrow))

HL_NOTHROW void *hl_alloc_impl(size_t size, const char *call);
HL_NOTHROW void hl_free_impl(void *p, const char *call);
HL_NOTHROW size_t hl_usable_impl(const void *p, const char *call);

/* free(p), p being what an allocation of size bytes (aligned to align)
 * returned; aborts with "heaplib: CALL(p): size does not match the block
 * (...)" when p's block cannot be.  Any thread, as free. */
HL_NOTHROW void hl_free_exact(void *p, size_t size, const char *call);
HL_NOTHROW void hl_free_exact_aligned(void *p, size_t size, size_t align, const char *call);

#ifdef __cplusplus
}
#endif

#endif
