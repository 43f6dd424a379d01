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

void *hl_alloc_impl(size_t size, const char *call);
void hl_free_impl(void *p, const char *call);
size_t hl_usable_impl(const void *p, const char *call);

/* free(p), p being what an allocation of size bytes aligned to align
 * (0 or up to 16: none asked) returned; aborts with "heaplib:
 * CALL(p): size does not match the block (...)" when p's block cannot be.
 * Any thread, as free. */
void hl_free_exact(void *p, size_t size, size_t align, const char *call);

#ifdef __cplusplus
}
#endif

#endif
