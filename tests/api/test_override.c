/*
 * Linking libheaplib replaces the C library's allocator: every standard
 * and glibc allocation name resolves to heaplib, including the calls the
 * C library makes internally, and the two sets of names mix freely.
 *
 * Plain build only (sanitizer builds leave malloc to the sanitizer).
 * "Resolves to heaplib" is observed through heaplib's own counters: a
 * 1 MiB block from the standard name shows up in large_live.
 *
 * This C program also calls C++'s operators new and delete, which
 * libheaplib exports, by their ABI names: they work without the C++
 * runtime loaded, and a throwing new that fails, having no runtime to
 * throw with, aborts with heaplib's line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaplib.h"
#include "tap.h"

/* C23 names that this C library may not declare yet. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

#define MiB ((size_t)1 << 20)
#define PAGE 4096u

/* Keeps the compiler from pairing up and dropping malloc/free calls. */
static void *volatile sink;

static long long large_live(void)
{
	hl_stats_t st = { .struct_size = sizeof st };
	hl_stats_get(&st);
	return (long long)st.large_live;
}

/* p came from a standard name asked for 1 MiB (aligned to align): it is a
 * heaplib large block; hl_free releases it. */
static void from_heaplib(const char *call, void *p, size_t align, long long before)
{
	sink = p;
	int good = p && (uintptr_t)p % align == 0 && large_live() == before + 1 &&
		   hl_usable_size(p) >= MiB;
	hl_free(p);
	good = good && large_live() == before;
	ok(good, "%s(1 MiB) returns a heaplib block (large_live +1, hl_free releases it)", call);
}

static void test_allocation_names(void)
{
	long long b = large_live();
	from_heaplib("malloc", malloc(MiB), 1, b);
	void *z = calloc(1, MiB);
	int zero = z && ((char *)z)[0] == 0 && ((char *)z)[MiB - 1] == 0;
	from_heaplib("calloc", z, 1, b);
	ok(zero, "calloc(1, 1 MiB) is zeroed");
	from_heaplib("realloc", realloc(NULL, MiB), 1, b);
	from_heaplib("reallocarray", reallocarray(NULL, 1024, 1024), 1, b);
	from_heaplib("aligned_alloc", aligned_alloc(PAGE, MiB), PAGE, b);
	void *pm = NULL;
	int r = posix_memalign(&pm, PAGE, MiB);
	from_heaplib("posix_memalign", r == 0 ? pm : NULL, PAGE, b);
	from_heaplib("memalign", memalign(PAGE, MiB), PAGE, b);
	from_heaplib("valloc", valloc(MiB), PAGE, b);
	from_heaplib("pvalloc", pvalloc(MiB), PAGE, b);
}

static void test_mixing(void)
{
	long long b = large_live();
	void *p = hl_malloc(MiB);
	free(p);
	is_int(large_live(), b, "free releases a block from hl_malloc");
	p = malloc(MiB);
	sink = p;
	hl_free(p);
	is_int(large_live(), b, "hl_free releases a block from malloc");

	p = hl_malloc(MiB);
	free_sized(p, MiB);
	is_int(large_live(), b, "free_sized releases a heaplib block");
	p = hl_aligned_alloc(PAGE, MiB);
	free_aligned_sized(p, PAGE, MiB);
	is_int(large_live(), b, "free_aligned_sized releases a heaplib block");

	char *s = malloc(100);
	sink = s;
	ok(s && malloc_usable_size(s) == hl_usable_size(s) && malloc_usable_size(s) >= 100,
	   "malloc_usable_size equals hl_usable_size (and >= 100 for malloc(100))");
	free(s);
}

static void test_page_allocs(void)
{
	void *v = valloc(100);
	ok(v && (uintptr_t)v % PAGE == 0, "valloc(100) is page-aligned");
	free(v);
	void *pv = pvalloc(1);
	ok(pv && (uintptr_t)pv % PAGE == 0 && malloc_usable_size(pv) >= PAGE,
	   "pvalloc(1) is page-aligned with at least a page usable");
	free(pv);
}

static void test_glibc_extras(void)
{
	void *p = malloc(MiB);
	sink = p;
	free(p);
	int t = malloc_trim(0);
	ok(t == 0 || t == 1, "malloc_trim(0) returns 0 or 1 (%d)", t);

	p = malloc(MiB);
	sink = p;
	struct mallinfo2 mi = mallinfo2();
	is_int((long long)mi.hblks, large_live(), "mallinfo2().hblks is heaplib's large_live");
	free(p);

	is_int(mallopt(M_MMAP_THRESHOLD, 1 << 20), 0, "mallopt returns 0 (unsupported)");

	FILE *f = tmpfile();
	int found = 0;
	if (f) {
		fflush(stderr);
		int saved = dup(2);
		dup2(fileno(f), 2);
		malloc_stats();
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		rewind(f);
		char buf[256];
		while (fgets(buf, sizeof buf, f))
			found |= strncmp(buf, "superblocks_live ", 17) == 0;
		fclose(f);
	}
	ok(found, "malloc_stats writes heaplib's statistics (a superblocks_live line) to stderr");
}

/* The C library's own allocations (strdup calls malloc inside libc) go to
 * heaplib too. */
static void test_libc_internal(void)
{
	static char big[100001];
	memset(big, 'x', sizeof big - 1);
	long long b = large_live();
	char *d = strdup(big);
	int large = d && large_live() == b + 1;
	ok(large, "strdup of a 100000-byte string allocates a heaplib large block");
	free(d);
	if (!large) {
		skip(1, "strdup does not reach heaplib: hl_usable_size would abort");
		return;
	}
	char *s = strdup("hello");
	ok(s && hl_usable_size(s) >= 6, "hl_usable_size knows the block strdup(\"hello\") returned");
	free(s);
}

/* fork while other threads allocate: the child allocates and exits 0. */
#define FORK_THREADS 4
#define FORKS 20
static int stop;

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	void *v[64] = { 0 };
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 64; i++) {
			seed = seed * 1103515245u + 12345u;
			free(v[i]);
			v[i] = malloc((seed >> 8) % 37 == 0 ? 50000 + (seed >> 8) % 70000 : (seed >> 8) % 2000);
		}
	}
	for (int i = 0; i < 64; i++)
		free(v[i]);
	return NULL;
}

static int child(void)
{
	alarm(10);   /* a deadlock kills the child: counted as a failure */
	for (int i = 0; i < 10000; i++) {
		char *p = malloc(1 + (size_t)(i * 37 % 3000) + (i % 500 == 0 ? 100000 : 0));
		if (!p)
			return 2;
		p[0] = 1;
		sink = p;
		free(p);
	}
	return 0;
}

static void test_fork(void)
{
	pthread_t th[FORK_THREADS];
	int created[FORK_THREADS], started = 0;
	for (int i = 0; i < FORK_THREADS; i++) {
		created[i] = pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)i) == 0;
		started += created[i];
	}
	int good = 0;
	for (int k = 0; k < FORKS; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child());
		int st = 0;
		if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			good++;
		else if (pid > 0)
			diag("fork %d: child status 0x%x%s", k, st,
			     WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (timed out: deadlock?)" : "");
		usleep(1000);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < FORK_THREADS; i++)
		if (created[i])
			pthread_join(th[i], NULL);
	ok(started == FORK_THREADS && good == FORKS,
	   "%d forks while %d threads malloc and free: every child mallocs and frees 10000 times and exits 0 (%d did)",
	   FORKS, FORK_THREADS, good);
}

/* The operators by their Itanium C++ ABI names (size_t is unsigned long,
 * "m", on the LP64 systems heaplib runs on); the nothrow_t argument is
 * not read. */
void *_Znwm(size_t size);
void *_ZnwmRKSt9nothrow_t(size_t size, const void *nothrow);
void _ZdlPvm(void *ptr, size_t size);

static int is_libstdcxx(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	return info->dlpi_name && strstr(info->dlpi_name, "libstdc++") != NULL;
}

static void do_new_huge(void *arg)
{
	(void)arg;
	sink = _Znwm((size_t)1 << 62);
}

static void test_cxx_without_runtime(void)
{
	if (dl_iterate_phdr(is_libstdcxx, NULL)) {
		skip(3, "libstdc++ is loaded here (the linker kept it as needed)");
		return;
	}
	long long b = large_live();
	void *p = _Znwm(MiB);
	sink = p;
	int in = p && large_live() == b + 1;
	_ZdlPvm(p, MiB);
	ok(in && large_live() == b,
	   "operator new(1 MiB) and sized delete, called from C, allocate and free a heaplib block");
	ok(_ZnwmRKSt9nothrow_t((size_t)1 << 62, &b) == NULL,
	   "nothrow operator new(2^62), with no C++ runtime loaded, returns NULL");
	tap_expect_abort(do_new_huge, NULL,
			 "heaplib: operator new(0x0): out of memory, and no C++ runtime is loaded to throw std::bad_alloc",
			 "operator new(2^62), with no C++ runtime loaded to throw, aborts with heaplib's line");
}

int main(void)
{
	plan(10 + 5 + 2 + 4 + 2 + 1 + 3);
	test_allocation_names();
	test_mixing();
	test_page_allocs();
	test_glibc_extras();
	test_libc_internal();
	test_fork();
	test_cxx_without_runtime();
	return done_testing();
}
