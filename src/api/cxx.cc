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
 *
 * Every reference to the C++ runtime is weak, so that a C program that
 * links or preloads libheaplib does not load libstdc++ for operators it
 * never calls (the linker, with --as-needed, leaves it out of libheaplib's
 * needs).  A program that calls them is C++ and has its runtime loaded;
 * without one nothing could have set a new_handler or could catch a
 * bad_alloc, and a throw would end in terminate: the throwing forms abort
 * with heaplib's line instead.
 */
#include <new>

#include "heaplib.h"
#include "api/alloc.h"

#ifndef HL_NO_OVERRIDE

#define HL_CXX_EXPORT __attribute__((visibility("default")))

/* The runtime's names this file uses (Itanium C++ ABI, as GCC and Clang
 * emit it on Linux), made weak: the compiler's own references to them
 * (throw, catch, the personality routine) by the assembler. */
namespace std {
new_handler get_new_handler() noexcept __attribute__((weak));
}
asm(".weak __cxa_allocate_exception\n\t.weak __cxa_throw\n\t.weak __cxa_begin_catch\n"
    "\t.weak __cxa_end_catch\n\t.weak __gxx_personality_v0\n\t.weak _ZTISt9bad_alloc\n"
    "\t.weak _ZTVSt9bad_alloc\n\t.weak _ZNSt9bad_allocD1Ev\n\t.weak _ZSt9terminatev");

/* base/base.h, which C++ cannot read. */
extern "C" __attribute__((noreturn)) void hl_fatal(const char *call, const void *ptr,
						   const char *reason);

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
	bool runtime = &std::get_new_handler != nullptr;
	for (;;) {
		std::new_handler handler = runtime ? std::get_new_handler() : nullptr;
		if (!handler) {
			if constexpr (Throw) {
				if (!runtime)
					hl_fatal("operator new", nullptr,
						 "out of memory, and no C++ runtime is loaded to throw std::bad_alloc");
				throw std::bad_alloc();
			}
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
