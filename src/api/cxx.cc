/*
 * The C++ allocation operators: every replaceable global form of <new>
 * (C++17), exported so that linking (or preloading) libheaplib puts
 * heaplib under new and delete as under malloc and free.
 *
 *   new, new[]         plain, nothrow, aligned (std::align_val_t),
 *                      aligned and nothrow
 *   delete, delete[]   plain, nothrow, sized (C++14), aligned, aligned
 *                      and nothrow, sized and aligned
 *
 * The throwing forms call the new_handler until the allocation succeeds
 * and throw std::bad_alloc when none is installed; the nothrow forms do
 * the same and return nullptr instead, a handler's bad_alloc included
 * ([new.delete.single]).  A sized delete frees on free's path and holds
 * the size to the block's class (alloc.c, hl_free_exact): the size is
 * checked, not trusted in place of the slot record.  Sanitizer builds
 * export none of them: the sanitizer owns these names, as it owns malloc.
 */
#include <new>

#include "heaplib.h"
#include "api/alloc.h"

#ifndef HL_NO_OVERRIDE

#define HL_CXX_EXPORT __attribute__((visibility("default")))

namespace {

/* align 0: malloc's alignment. */
inline void *hl_cxx_alloc(std::size_t size, std::size_t align)
{
	return align ? hl_aligned_alloc(align, size) : hl_alloc_impl(size, "operator new");
}

/* The first attempt failed: the new_handler, until one succeeds.  The
 * nothrow forms are noexcept, and so is this for them. */
template <bool Throw>
__attribute__((noinline, cold)) void *hl_cxx_new_failed(std::size_t size, std::size_t align) noexcept(!Throw)
{
	for (;;) {
		std::new_handler handler = std::get_new_handler();
		if (!handler) {
			if constexpr (Throw)
				throw std::bad_alloc();
			return nullptr;
		}
		if constexpr (Throw) {
			handler();
		} else {
			try {
				handler();
			} catch (const std::bad_alloc &) {
				return nullptr;
			}
		}
		if (void *p = hl_cxx_alloc(size, align))
			return p;
	}
}

template <bool Throw>
inline void *hl_cxx_new(std::size_t size, std::size_t align)
{
	void *p = hl_cxx_alloc(size, align);
	return __builtin_expect(p != nullptr, 1) ? p : hl_cxx_new_failed<Throw>(size, align);
}

inline std::size_t hl_align(std::align_val_t a) { return static_cast<std::size_t>(a); }

}  // namespace

HL_CXX_EXPORT void *operator new(std::size_t n) { return hl_cxx_new<true>(n, 0); }
HL_CXX_EXPORT void *operator new[](std::size_t n) { return hl_cxx_new<true>(n, 0); }

HL_CXX_EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{
	return hl_cxx_new<false>(n, 0);
}

HL_CXX_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{
	return hl_cxx_new<false>(n, 0);
}

HL_CXX_EXPORT void *operator new(std::size_t n, std::align_val_t a)
{
	return hl_cxx_new<true>(n, hl_align(a));
}

HL_CXX_EXPORT void *operator new[](std::size_t n, std::align_val_t a)
{
	return hl_cxx_new<true>(n, hl_align(a));
}

HL_CXX_EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return hl_cxx_new<false>(n, hl_align(a));
}

HL_CXX_EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
	return hl_cxx_new<false>(n, hl_align(a));
}

HL_CXX_EXPORT void operator delete(void *p) noexcept { hl_free_impl(p, "operator delete"); }
HL_CXX_EXPORT void operator delete[](void *p) noexcept { hl_free_impl(p, "operator delete[]"); }

HL_CXX_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept
{
	hl_free_impl(p, "operator delete");
}

HL_CXX_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept
{
	hl_free_impl(p, "operator delete[]");
}

HL_CXX_EXPORT void operator delete(void *p, std::size_t n) noexcept
{
	hl_free_exact(p, n, "operator delete");
}

HL_CXX_EXPORT void operator delete[](void *p, std::size_t n) noexcept
{
	hl_free_exact(p, n, "operator delete[]");
}

HL_CXX_EXPORT void operator delete(void *p, std::align_val_t) noexcept
{
	hl_free_impl(p, "operator delete");
}

HL_CXX_EXPORT void operator delete[](void *p, std::align_val_t) noexcept
{
	hl_free_impl(p, "operator delete[]");
}

HL_CXX_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
	hl_free_impl(p, "operator delete");
}

HL_CXX_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
	hl_free_impl(p, "operator delete[]");
}

HL_CXX_EXPORT void operator delete(void *p, std::size_t n, std::align_val_t a) noexcept
{
	hl_free_exact_aligned(p, n, hl_align(a), "operator delete");
}

HL_CXX_EXPORT void operator delete[](void *p, std::size_t n, std::align_val_t a) noexcept
{
	hl_free_exact_aligned(p, n, hl_align(a), "operator delete[]");
}

#endif
