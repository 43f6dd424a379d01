/*
 * Linking libheaplib replaces C++'s operators new and delete, every form
 * (C++17): the program's calls bind to libheaplib's definitions, not to
 * the C++ library's (which would reach heaplib only through malloc), and
 * they keep the standard's contract:
 *
 *   - new returns heaplib memory, aligned as asked; on failure it calls
 *     the new_handler until the allocation succeeds, and throws
 *     std::bad_alloc when there is none; the nothrow forms return nullptr
 *     instead (a handler's bad_alloc included);
 *   - every delete frees into heaplib (the next new of the size gets the
 *     block back), and takes nullptr;
 *   - a sized delete holds its size to the block's class and aborts with
 *     "heaplib: operator delete(0xPTR): size does not match the block
 *     (N bytes given, class of M)" when the block cannot be of that size.
 *
 * Plain build only: sanitizer builds leave new and delete to the sanitizer.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <new>

#include "heaplib.h"
#include "tap.h"

#define MiB ((std::size_t)1 << 20)

/* "heaplib: CALL(0xPTR): REASON" up to and including the reason given. */
static const char *line(const char *call, const void *p, const char *reason)
{
	static char buf[8][200];
	static int next;
	char *b = buf[next++ & 7];
	std::snprintf(b, sizeof buf[0], "heaplib: %s(0x%lx): %s", call,
		      (unsigned long)(std::uintptr_t)p, reason);
	return b;
}

/* Keeps the compiler from pairing up and dropping new and delete. */
static void *volatile sink;

static void *keep(void *p)
{
	sink = p;
	return p;
}

/* ---- every form binds to libheaplib ------------------------------------- */

/* The shared object that defines the function at f (its address as the
 * program's calls resolve it). */
template <typename F>
static bool in_heaplib(F *f)
{
	Dl_info info;
	return dladdr(reinterpret_cast<void *>(f), &info) && info.dli_fname &&
	       std::strstr(info.dli_fname, "libheaplib");
}

static void test_binding(void)
{
	using std::align_val_t;
	using std::nothrow_t;
	using std::size_t;
	int news = in_heaplib(static_cast<void *(*)(size_t)>(&::operator new)) +
		   in_heaplib(static_cast<void *(*)(size_t)>(&::operator new[])) +
		   in_heaplib(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new)) +
		   in_heaplib(static_cast<void *(*)(size_t, const nothrow_t &) noexcept>(&::operator new[])) +
		   in_heaplib(static_cast<void *(*)(size_t, align_val_t)>(&::operator new)) +
		   in_heaplib(static_cast<void *(*)(size_t, align_val_t)>(&::operator new[])) +
		   in_heaplib(static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new)) +
		   in_heaplib(static_cast<void *(*)(size_t, align_val_t, const nothrow_t &) noexcept>(&::operator new[]));
	is_int(news, 8, "the 8 forms of new and new[] bind to libheaplib");
	int deletes = in_heaplib(static_cast<void (*)(void *) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *) noexcept>(&::operator delete[])) +
		      in_heaplib(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *, const nothrow_t &) noexcept>(&::operator delete[])) +
		      in_heaplib(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *, size_t) noexcept>(&::operator delete[])) +
		      in_heaplib(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *, align_val_t) noexcept>(&::operator delete[])) +
		      in_heaplib(static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *, align_val_t, const nothrow_t &) noexcept>(&::operator delete[])) +
		      in_heaplib(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete)) +
		      in_heaplib(static_cast<void (*)(void *, size_t, align_val_t) noexcept>(&::operator delete[]));
	is_int(deletes, 12, "the 12 forms of delete and delete[] bind to libheaplib");
}

/* ---- new ------------------------------------------------------------------ */

static bool from_heaplib(const void *p, std::size_t n, std::size_t align)
{
	return p && hl_region_of(p) == hl_region_default() && hl_usable_size(p) >= n &&
	       (std::uintptr_t)p % align == 0;
}

static void test_new_forms(void)
{
	const std::align_val_t a64 = std::align_val_t(64);
	void *p[8] = {
		keep(::operator new(100)),
		keep(::operator new[](100)),
		keep(::operator new(100, std::nothrow)),
		keep(::operator new[](100, std::nothrow)),
		keep(::operator new(100, a64)),
		keep(::operator new[](100, a64)),
		keep(::operator new(100, a64, std::nothrow)),
		keep(::operator new[](100, a64, std::nothrow)),
	};
	int good = 0;
	for (int i = 0; i < 8; i++)
		good += from_heaplib(p[i], 100, i < 4 ? 16 : 64);
	is_int(good, 8, "every form of new(100) returns a heaplib block of the default region "
			"(hl_region_of, hl_usable_size >= 100; 64-aligned where asked)");
	for (int i = 0; i < 8; i++)
		hl_free(p[i]);

	struct alignas(128) wide {
		char c[200];
	};
	wide *w = new wide;
	wide *wa = new wide[3];
	ok(from_heaplib(w, sizeof *w, 128) && from_heaplib(wa, 3 * sizeof *w, 128),
	   "new and new[] of an alignas(128) type give 128-aligned heaplib blocks");
	delete w;
	delete[] wa;

	static const std::size_t aligns[] = { 32, 256, 4096, 65536, MiB };
	int aligned = 0;
	for (std::size_t a : aligns) {
		void *q = keep(::operator new(1000, std::align_val_t(a)));
		aligned += from_heaplib(q, 1000, a);
		::operator delete(q, 1000, std::align_val_t(a));
	}
	is_int(aligned, 5, "new(1000, align) is aligned for 32, 256, 4096, 64 KiB and 1 MiB");

	void *z = keep(::operator new(0));
	void *z2 = keep(::operator new(0));
	ok(z && z2 && z != z2 && from_heaplib(z, 0, 16), "new(0) returns distinct heaplib blocks");
	::operator delete(z, (std::size_t)0);
	::operator delete(z2, (std::size_t)0);
}

/* ---- failure: the handler, bad_alloc, nullptr ---------------------------- */

static const std::size_t huge = (std::size_t)1 << 62;
static int handler_calls;

static void count_then_give_up(void)
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

static void count_then_throw(void)
{
	if (++handler_calls == 2)
		throw std::bad_alloc();
}

static void test_failure(void)
{
	int threw = 0;
	try {
		keep(::operator new(huge));
	} catch (const std::bad_alloc &) {
		threw++;
	}
	try {
		keep(::operator new[](huge, std::align_val_t(4096)));
	} catch (const std::bad_alloc &) {
		threw++;
	}
	is_int(threw, 2, "new(2^62) and new[](2^62, 4096) throw std::bad_alloc when no new_handler is set");

	ok(!keep(::operator new(huge, std::nothrow)) && !keep(::operator new[](huge, std::nothrow)) &&
		   !keep(::operator new(huge, std::align_val_t(64), std::nothrow)) &&
		   !keep(::operator new[](huge, std::align_val_t(64), std::nothrow)),
	   "every nothrow form of new(2^62) returns nullptr");

	handler_calls = 0;
	std::set_new_handler(count_then_give_up);
	threw = 0;
	try {
		keep(::operator new(huge));
	} catch (const std::bad_alloc &) {
		threw = 1;
	}
	ok(threw && handler_calls == 3,
	   "new(2^62) calls the new_handler until it removes itself, then throws bad_alloc (%d calls)",
	   handler_calls);

	handler_calls = 0;
	std::set_new_handler(count_then_throw);
	void *q = keep(::operator new(huge, std::nothrow));
	std::set_new_handler(nullptr);
	ok(!q && handler_calls == 2,
	   "nothrow new(2^62) returns nullptr when the new_handler throws bad_alloc (%d calls)",
	   handler_calls);
}

/* A handler that makes room: the thread is in a task whose quota is
 * full, and the handler moves it back to the default task. */
static void leave_task(void)
{
	handler_calls++;
	hl_task_join(nullptr);
}

static void test_handler_makes_room(void)
{
	hl_task_attr_t ta = {};
	ta.struct_size = sizeof ta;
	ta.name = "quota";
	ta.quota = MiB;
	hl_task_t *t;
	if (hl_task_create(&ta, &t) != HL_OK || hl_task_join(t) != HL_OK) {
		skip(1, "cannot make a task with a quota");
		return;
	}
	handler_calls = 0;
	std::set_new_handler(leave_task);
	void *p = nullptr;
	try {
		p = keep(::operator new(4 * MiB));
	} catch (const std::bad_alloc &) {
	}
	std::set_new_handler(nullptr);
	ok(p && handler_calls == 1 && hl_task_self() != t && from_heaplib(p, 4 * MiB, 16),
	   "new(4 MiB) past a task's 1 MiB quota calls the new_handler, which leaves the task, "
	   "and returns the block of the retry");
	::operator delete(p, 4 * MiB);
	hl_task_join(nullptr);
	hl_task_destroy(t);
}

/* ---- delete ---------------------------------------------------------------- */

/* release frees into heaplib: the next alloc (of the same size and
 * alignment) gets the block back from the thread cache. */
static int back_to_new(void *(*alloc)(), void (*release)(void *))
{
	void *p = keep(alloc());
	release(p);
	void *q = keep(alloc());
	hl_free(q);
	return p == q;
}

static void test_delete_forms(void)
{
	using std::align_val_t;
	int back = back_to_new([] { return ::operator new(100); },
			       [](void *p) { ::operator delete(p); }) +
		   back_to_new([] { return ::operator new[](100); },
			       [](void *p) { ::operator delete[](p); }) +
		   back_to_new([] { return ::operator new(100); },
			       [](void *p) { ::operator delete(p, std::nothrow); }) +
		   back_to_new([] { return ::operator new[](100); },
			       [](void *p) { ::operator delete[](p, std::nothrow); }) +
		   back_to_new([] { return ::operator new(100); },
			       [](void *p) { ::operator delete(p, 100); }) +
		   back_to_new([] { return ::operator new[](100); },
			       [](void *p) { ::operator delete[](p, 100); }) +
		   back_to_new([] { return ::operator new(100, align_val_t(64)); },
			       [](void *p) { ::operator delete(p, align_val_t(64)); }) +
		   back_to_new([] { return ::operator new[](100, align_val_t(64)); },
			       [](void *p) { ::operator delete[](p, align_val_t(64)); }) +
		   back_to_new([] { return ::operator new(100, align_val_t(64)); },
			       [](void *p) { ::operator delete(p, align_val_t(64), std::nothrow); }) +
		   back_to_new([] { return ::operator new[](100, align_val_t(64)); },
			       [](void *p) { ::operator delete[](p, align_val_t(64), std::nothrow); }) +
		   back_to_new([] { return ::operator new(100, align_val_t(64)); },
			       [](void *p) { ::operator delete(p, 100, align_val_t(64)); }) +
		   back_to_new([] { return ::operator new[](100, align_val_t(64)); },
			       [](void *p) { ::operator delete[](p, 100, align_val_t(64)); });
	is_int(back, 12, "each of the 12 forms of delete frees into heaplib (the next new gets the block back)");

	long long before = 0;
	hl_stats_t st = {};
	st.struct_size = sizeof st;
	hl_stats_get(&st);
	before = (long long)st.large_live;
	char *big = new char[MiB];
	keep(big);
	delete[] big;
	hl_stats_get(&st);
	is_int((long long)st.large_live, before, "delete[] of new char[1 MiB] gives the large block back");

	::operator delete(nullptr);
	::operator delete[](nullptr);
	::operator delete(nullptr, std::nothrow);
	::operator delete[](nullptr, std::nothrow);
	::operator delete(nullptr, 100);
	::operator delete[](nullptr, 100);
	::operator delete(nullptr, align_val_t(64));
	::operator delete[](nullptr, align_val_t(64));
	::operator delete(nullptr, align_val_t(64), std::nothrow);
	::operator delete[](nullptr, align_val_t(64), std::nothrow);
	::operator delete(nullptr, 100, align_val_t(64));
	::operator delete[](nullptr, 100, align_val_t(64));
	ok(1, "every form of delete takes nullptr");
}

/* ---- a sized delete that does not match ----------------------------------- */

struct base {
	char b[16];
	~base() {}   /* not virtual: delete through a base * passes sizeof(base) */
};
struct derived : base {
	char d[100];
};

static void do_delete_base(void *arg)
{
	delete static_cast<base *>(arg);
}

struct sized_call {
	void *p;
	std::size_t size, align;
};

static void do_sized_delete(void *arg)
{
	sized_call *c = static_cast<sized_call *>(arg);
	::operator delete(c->p, c->size);
}

static void do_sized_delete_array(void *arg)
{
	sized_call *c = static_cast<sized_call *>(arg);
	::operator delete[](c->p, c->size);
}

static void do_sized_aligned_delete(void *arg)
{
	sized_call *c = static_cast<sized_call *>(arg);
	::operator delete(c->p, c->size, std::align_val_t(c->align));
}

static void do_delete(void *arg)
{
	::operator delete(arg);
}

static void test_mismatch(void)
{
	sized_call c = { keep(::operator new(100)), 200, 0 };
	tap_expect_abort(do_sized_delete, &c,
			 line("operator delete", c.p, "size does not match the block (200 bytes given, class of 112)"),
			 "delete(new(100), 200) aborts: operator delete(PTR): size does not match the block (200 bytes given, class of 112)");
	sized_call d = { ::operator new[](1000), 640, 0 };
	tap_expect_abort(do_sized_delete_array, &d,
			 line("operator delete[]", d.p, "size does not match the block (640 bytes given, class of 1024)"),
			 "delete[](new[](1000), 640) aborts: the 640-byte class is below the block's 1024");
	sized_call a = { ::operator new(100, std::align_val_t(64)), 129, 64 };
	tap_expect_abort(do_sized_aligned_delete, &a,
			 line("operator delete", a.p, "size does not match the block (129 bytes given, class of 128)"),
			 "delete(new(100, 64), 129, 64) aborts: 129 bytes at 64 would be the 192-byte class, not 128");
	sized_call l = { ::operator new(MiB), 100, 0 };
	tap_expect_abort(do_sized_delete, &l,
			 line("operator delete", l.p, "size does not match the block (100 bytes given, large block of 1048576)"),
			 "delete(new(1 MiB), 100) aborts: 100 bytes make no large block");

	base *b = new derived;
	tap_expect_abort(do_delete_base, b,
			 line("operator delete", b, "size does not match the block (16 bytes given, class of 128)"),
			 "delete of a derived object through a base * without a virtual destructor aborts (16 bytes given, class of 128)");

	char *s = static_cast<char *>(keep(::operator new(100)));
	tap_expect_abort(do_delete, s + 16, line("operator delete", s + 16, "interior pointer"),
			 "delete(p + 16) aborts: operator delete(PTR): interior pointer");

	::operator delete(c.p, 100);
	::operator delete[](d.p, 1000);
	::operator delete(a.p, 100, std::align_val_t(64));
	::operator delete(l.p, MiB);
	delete static_cast<derived *>(b);
	::operator delete(s, 100);
}

int main(void)
{
	plan(20);
	test_binding();
	test_new_forms();
	test_failure();
	test_handler_makes_room();
	test_delete_forms();
	test_mismatch();
	return done_testing();
}
