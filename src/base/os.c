/*
 * The operating system: mappings, purging, page locking, the clock and
 * randomness.  Nothing here allocates with malloc, and every call keeps
 * the caller's errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

#ifdef HL_TEST_HOOKS
/* Injected failures still to come (base/base.h): n > 0 counts down, < 0
 * means every call until the next os_test_fail_*. */
static long os_fail_maps_left, os_fail_unmaps_left;
static unsigned long os_failed_count;

void os_test_fail_maps(long n) { lf_store_release(&os_fail_maps_left, n); }
void os_test_fail_unmaps(long n) { lf_store_release(&os_fail_unmaps_left, n); }
unsigned long os_test_failed(void) { return lf_load_acquire(&os_failed_count); }

/* Whether this call is to fail: takes one from the count by CAS, so that
 * n failures are exactly n however many threads map at once. */
static bool os_test_fails(long *left)
{
	long n = lf_load_acquire(left);
	while (n != 0) {
		if (n < 0 || lf_cas_weak_acq_rel(left, &n, n - 1)) {
			lf_fetch_add_relaxed(&os_failed_count, 1);
			return true;
		}
	}
	return false;
}
#define OS_MAP_FAILS() os_test_fails(&os_fail_maps_left)
#define OS_UNMAP_FAILS() os_test_fails(&os_fail_unmaps_left)
#else
#define OS_MAP_FAILS() false
#define OS_UNMAP_FAILS() false
#endif

static void *os_mmap(void *hint, size_t size, int flags)
{
	int saved = errno;
	void *p = mmap(hint, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0);
	errno = saved;
	return p == MAP_FAILED ? NULL : p;
}

void os_nohuge(void *p, size_t size)
{
	int saved = errno;
	madvise(p, size, MADV_NOHUGEPAGE);
	errno = saved;
}

void *os_map(size_t size)
{
	if (OS_MAP_FAILS())
		return NULL;
	void *p = os_mmap(NULL, size, 0);
	if (p)
		os_nohuge(p, size);   /* heaplib's own maps: see os_nohuge */
	return p;
}

/* Aligned without over-mapping where possible: an over-map needs size +
 * align of address space at once (2 GiB for a 1 GiB chunk), which a
 * process under RLIMIT_AS may not have when size alone would fit. */
void *os_map_aligned(size_t size, size_t align)
{
	if (align <= HL_PAGE)
		return os_map(size);
	if (OS_MAP_FAILS())
		return NULL;
	char *p = os_mmap(NULL, size, 0);
	if (!p)
		return NULL;
	uintptr_t a = (uintptr_t)p;
	if (!(a & (align - 1)))
		return p;
	/* The kernel hands out addresses top down: the aligned address
	 * just below p is likely free, else the one above, or below that. */
	int saved = errno;
	munmap(p, size);
	uintptr_t down = a & ~(uintptr_t)(align - 1);
	uintptr_t cand[3] = { down, down + align, down - align };
	for (int i = 0; i < 3; i++) {
		if (cand[i] == 0 || cand[i] + size < cand[i])
			continue;
		char *q = os_mmap((void *)cand[i], size, MAP_FIXED_NOREPLACE);
		if (q == (char *)cand[i]) {
			errno = saved;
			return q;
		}
		if (q)
			munmap(q, size);   /* a kernel that took the flag for a hint */
	}
	errno = saved;
	size_t over = size + align;
	if (over < size)
		return NULL;
	p = os_mmap(NULL, over, 0);
	if (!p)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = a - (uintptr_t)p, tail = over - head - size;
	/* A trim the kernel refuses (the mapping limit) leaves that piece
	 * mapped: address space only, never touched. */
	if (head)
		os_unmap(p, head);
	if (tail)
		os_unmap((char *)a + size, tail);
	return (void *)a;
}

bool os_unmap(void *p, size_t size)
{
	if (OS_UNMAP_FAILS())
		return false;
	int saved = errno;
	bool ok = munmap(p, size) == 0;
	errno = saved;
	return ok;
}

bool os_remap(void *p, size_t old, size_t size)
{
	if (size > old && OS_MAP_FAILS())
		return false;
	int saved = errno;
	bool ok = mremap(p, old, size, 0) != MAP_FAILED;
	errno = saved;
	return ok;
}

/* Reads a word that may not be mapped, or not readable, without a fault:
 * false then. */
static bool os_peek(const void *addr, uint64_t *out)
{
	struct iovec mine = { out, sizeof *out };
	struct iovec there = { (void *)addr, sizeof *out };
	return process_vm_readv(getpid(), &mine, 1, &there, 1, 0) == (ssize_t)sizeof *out;
}

bool os_move(void *p, size_t old, void *dst, size_t size)
{
	int saved = errno;
	/* A mark in dst, so that after a failure we can tell whether dst
	 * is still our mapping. */
	uint64_t mark = os_random64();
	*(volatile uint64_t *)dst = mark;
	if (mremap(p, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED) {
		errno = saved;
		return true;
	}
	/* The kernel unmaps dst before the checks that may still fail
	 * (mremap_to in mm/mremap.c), and someone else may have mapped
	 * there since: give dst back only if it is provably ours. */
	void *again = os_mmap(dst, size, MAP_FIXED_NOREPLACE);
	uint64_t seen;
	if (again == dst || (!again && os_peek(dst, &seen) && seen == mark))
		munmap(dst, size);
	else if (again)
		munmap(again, size);   /* a kernel that took the flag for a hint */
	errno = saved;
	return false;
}

bool os_map_file_fixed(void *p, size_t size, int fd, uint64_t off)
{
	int saved = errno;
	bool ok = mmap(p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
		       (off_t)off) == p;
	errno = saved;
	return ok;
}

bool os_map_anon_fixed(void *p, size_t size)
{
	return os_mmap(p, size, MAP_FIXED) == p;
}

void os_punch(int fd, uint64_t off, size_t size)
{
	int saved = errno;
	fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size);
	errno = saved;
}

void os_purge(void *p, size_t size)
{
	int saved = errno;
	madvise(p, size, MADV_DONTNEED);
	errno = saved;
}

bool os_lock(void *p, size_t size)
{
	int saved = errno;
	bool ok = mlock(p, size) == 0;
	if (ok)
		madvise(p, size, MADV_DONTDUMP);
	errno = saved;
	return ok;
}

void os_unlock(void *p, size_t size)
{
	int saved = errno;
	munlock(p, size);
	madvise(p, size, MADV_DODUMP);
	errno = saved;
}

uint32_t os_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

uint64_t os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void os_wait_word(uint32_t *word, uint32_t val, uint32_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
	int saved = errno;
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, ms ? &ts : NULL, NULL, 0);
	errno = saved;
}

void os_wake_word(uint32_t *word)
{
	int saved = errno;
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
	errno = saved;
}

unsigned os_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

uint64_t os_random64(void)
{
	uint64_t v = 0;
	int saved = errno;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&v;
	}
	errno = saved;
	return v | 1u;
}
