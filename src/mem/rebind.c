/*
 * Backing moves: what stands behind one live span changes in place
 * (anonymous memory <-> an offset of a memfd) while other threads, and
 * the kernel on their behalf (read(2), recv(2)), go on writing into it.
 *
 * The barrier is a userfaultfd in write-protect mode (DESIGN.md section
 * 5): the span is registered and write-protected, its bytes are copied
 * into the new backing (already mapped elsewhere: a memfd's shared view,
 * or fresh anonymous memory), the copy is mapped over the span (mmap
 * MAP_FIXED of the memfd, or mremap of the anonymous copy), and
 * UFFDIO_WAKE lets the writers that the kernel held retry their stores,
 * which land in the new pages.  Every condition measured there holds:
 *  (a) UFFD_FEATURE_WP_UNPOPULATED is asked for when the kernel has it
 *      (Linux 6.4); without it a never-touched anonymous page is not
 *      protected, so the span is populated (MADV_POPULATE_WRITE) first;
 *  (b) UFFDIO_WAKE after every remap (held writers sleep forever else);
 *  (c) never UFFD_USER_MODE_ONLY (the kernel's own stores into the span
 *      would fail with EFAULT);
 *  (d) no fork, remap, remove or unmap events are asked for;
 *  (e) the span is only read while protected (the copy);
 *  (f) a fork child closes the descriptor (bk_init registers
 *      rb_fork_child), so it can never lift the parent's protection.
 * The span stays protected for one copy and one remap: the pages the
 * copy writes are allocated before, not while, the writers wait, and
 * mostly before the move is asked for (the reserves below).
 *
 * Every system call of a move is made with syscall(2): ThreadSanitizer
 * intercepts mmap and ioctl and would take them for stores of the
 * mover's, racing with the writers that the kernel orders; the copy is
 * lf_copy_unseen for the same reason.
 *
 * Concurrency: rb_probe and the budget may run in any threads at once
 * (the probe result is published by one CAS; racing probers close their
 * own descriptor).  rb_move runs in the one thread that holds the span
 * (the coordinator); moves of different spans may run at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/mem.h"
#include "copy.h"

#if defined(__has_include)
#if __has_include(<linux/userfaultfd.h>)
#include <linux/userfaultfd.h>
#define RB_HAVE_UFFD 1
#endif
#endif

#ifdef RB_HAVE_UFFD
/* Older headers than the kernels they run on. */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* What the probe found, published once (a page of its own). */
typedef struct rb_probe {
	int fd;                 /* -1: moves are refused */
	uint64_t features;      /* asked for and granted */
	const char *why;        /* the reason when fd < 0 */
} rb_probe_t;

static rb_probe_t *rb_done;
static uint64_t rb_max_maps;    /* vm.max_map_count, read once */
static const char *rb_last_why; /* the last refusal, for statistics */


/* ---- system calls, unseen by the sanitizers ---------------------------- */

static long rb_ioctl(int fd, unsigned long req, void *arg)
{
	return syscall(SYS_ioctl, fd, req, arg);
}

/* ---- the mapping budget ------------------------------------------------- */

uint64_t rb_map_limit(void)
{
	uint64_t m = lf_load_relaxed(&rb_max_maps);
	if (m)
		return m / 2;
	int saved = errno;
	char buf[32];
	int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	errno = saved;
	m = 0;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		m = m * 10 + (uint64_t)(buf[i] - '0');
	if (!m)
		m = 65530;   /* the kernel's default when /proc cannot say */
	lf_store_relaxed(&rb_max_maps, m);
	return m / 2;
}

bool rb_maps_take(uint64_t n)
{
	return ctr_add_bounded(&hl_ctr.own_maps, n, rb_map_limit());
}

void rb_maps_put(uint64_t n)
{
	HL_CTR_SUB(own_maps, n);
}

/* ---- the probe ---------------------------------------------------------- */

#ifdef RB_HAVE_UFFD
/* A userfaultfd, never in user-mode-only mode: the system call, else the
 * device (which needs only its file permissions); -1 with errno. */
static int rb_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || errno == ENOSYS)
		return fd;
	int first = errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		errno = first;
		return -1;
	}
	fd = (int)rb_ioctl(dev, USERFAULTFD_IOC_NEW, (void *)(long)(O_CLOEXEC | O_NONBLOCK));
	close(dev);
	if (fd < 0)
		errno = first;
	return fd;
}

static const char *rb_try(rb_probe_t *pr)
{
	if (hl_config.no_uffd)
		return "backing moves are off (HEAPLIB_NO_UFFD=1)";
	int fd = rb_open();
	if (fd < 0)
		return errno == ENOSYS
			       ? "no userfaultfd (ENOSYS: an old kernel, or valgrind)"
			       : "userfaultfd not permitted (needs CAP_SYS_PTRACE, access to "
				 "/dev/userfaultfd, or vm.unprivileged_userfaultfd=1)";
	/* What the kernel has: a handshake asking for nothing. */
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (rb_ioctl(fd, UFFDIO_API, &api) != 0) {
		close(fd);
		return "userfaultfd refused the API handshake";
	}
	close(fd);
	uint64_t want = (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
			 UFFD_FEATURE_WP_UNPOPULATED) & api.features & hl_config.uffd_features;
	if (!(want & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return "the kernel has no userfaultfd write-protect (Linux >= 5.7)";
	/* A handshake is once per descriptor: a new one for the real one. */
	fd = rb_open();
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (fd < 0 || rb_ioctl(fd, UFFDIO_API, &api) != 0) {
		if (fd >= 0)
			close(fd);
		return "userfaultfd refused the features it offered";
	}
	pr->fd = fd;
	pr->features = want;
	return NULL;
}
#else
static const char *rb_try(rb_probe_t *pr)
{
	(void)pr;
	return hl_config.no_uffd ? "backing moves are off (HEAPLIB_NO_UFFD=1)"
				 : "built without <linux/userfaultfd.h>";
}
#endif

/* The probe's result, probing on the first call. */
static const rb_probe_t *rb_get(void)
{
	rb_probe_t *pr = lf_load_acquire(&rb_done);
	if (pr)
		return pr;
	static const rb_probe_t nomem = { -1, 0, "no memory for the userfaultfd probe" };
	rb_probe_t *mine = os_map(sizeof *mine);
	if (!mine)
		return &nomem;
	mine->fd = -1;
	mine->why = rb_try(mine);
	rb_map_limit();
	if (lf_cas_strong_acq_rel(&rb_done, &pr, mine))
		return mine;
	if (mine->fd >= 0)
		close(mine->fd);
	os_unmap(mine, sizeof *mine);
	return pr;
}

int rb_probe(const char **why)
{
	const rb_probe_t *pr = rb_get();
	*why = pr->why;
	return pr->fd >= 0 ? HL_OK : HL_EPERM;
}

const char *rb_reason(void)
{
	return lf_load_relaxed(&rb_last_why);
}

static int rb_refuse(const char **why, const char *reason, int err)
{
	*why = reason;
	lf_store_relaxed(&rb_last_why, reason);
	HL_CTR_ADD(span_moves_refused, 1);
	return err;
}

void rb_fork_child(void)
{
	/* The child is alone: no move is in flight in it.  Its copy of the
	 * descriptor would let it lift the parent's protection: close it,
	 * and let a later move in the child probe again. */
	rb_probe_t *pr = lf_load_relaxed(&rb_done);
	if (pr) {
		if (pr->fd >= 0)
			close(pr->fd);
		lf_store_relaxed(&rb_done, (rb_probe_t *)NULL);
		os_unmap(pr, sizeof *pr);
	}
	rb_keep_fork_child();
}

#ifdef HL_TEST_HOOKS
int rb_test_fd(void)
{
	rb_probe_t *pr = lf_load_acquire(&rb_done);
	return pr ? pr->fd : -2;
}

uint64_t rb_test_features(void)
{
	return rb_get()->features;
}

void rb_test_set_maps(uint64_t n)
{
	lf_store_relaxed(&hl_ctr.own_maps, n);
}
#endif

/* ---- the move ----------------------------------------------------------- */

#ifdef RB_HAVE_UFFD
/* Lift the protection (which wakes the held writers) and the
 * registration of a span whose move did not happen. */
static void rb_undo(int fd, char *base, size_t len)
{
	struct uffdio_writeprotect wp = { { (uintptr_t)base, len }, 0 };
	rb_ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
	struct uffdio_range r = { (uintptr_t)base, len };
	rb_ioctl(fd, UFFDIO_WAKE, &r);
	rb_ioctl(fd, UFFDIO_UNREGISTER, &r);
}

/* Whether every page of an anonymous span is mapped (mincore: a cheap
 * look, so that a span its program wrote all over is not walked again). */
static bool rb_resident(char *base, size_t len)
{
	unsigned char vec[HL_SLOT_SIZE << (HL_SPAN_ORDERS - 1) >> 12];
	size_t n = len / HL_PAGE;
	if (n > sizeof vec || syscall(SYS_mincore, base, len, vec) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

int rb_move(char *base, size_t len, int fd, uint64_t off, char *view, bool ready,
	    const char *from_view, const char **why)
{
	bool from_fd = from_view != NULL;
	const rb_probe_t *pr = rb_get();
	if (pr->fd < 0)
		return rb_refuse(why, pr->why, HL_EPERM);
	if (from_fd && !(pr->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		return rb_refuse(why, "the kernel cannot write-protect memfd pages (Linux >= 5.19)",
				 HL_EPERM);
	/* The copy's target, its pages allocated and mapped before the
	 * writers wait: a spare made ready between requests, warm memfd
	 * offsets, or pages made now (fresh memfd offsets are allocated in
	 * the file first, fallocate, which makes faulting them in through
	 * the view ~15% cheaper). */
	char *dst = view;
	if (fd >= 0 && !ready)
		syscall(SYS_fallocate, fd, FALLOC_FL_KEEP_SIZE, (long)off, (long)len);
	if (fd < 0 && (dst = rb_spare_take((unsigned)__builtin_ctzl(len >> HL_SLOT_SHIFT)))) {
		rb_madvise(dst, len, MADV_DOFORK);   /* it becomes a heap span */
	} else {
		if (fd < 0)
			dst = rb_mmap(NULL, len, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (dst == MAP_FAILED)
			return rb_refuse(why, "no memory for the copy", HL_ENOMEM);
		rb_madvise(dst, len, MADV_POPULATE_WRITE);
	}
	/* The source's page tables filled now, not by faults while the
	 * writers wait: a memfd span is read through the memfd's view; an
	 * anonymous one's never-touched pages get the zero page. */
	if (from_fd || !rb_resident(base, len))
		rb_madvise((char *)(from_fd ? from_view : base), len, MADV_POPULATE_READ);
	/* (a): without WP_UNPOPULATED a never-touched anonymous page takes
	 * a write the protection does not see. */
	if (!from_fd && !(pr->features & UFFD_FEATURE_WP_UNPOPULATED) &&
	    !rb_madvise(base, len, MADV_POPULATE_WRITE)) {
		if (fd < 0)
			rb_munmap(dst, len);
		return rb_refuse(why, "cannot populate the span before protecting it "
				      "(MADV_POPULATE_WRITE, Linux >= 5.14)", HL_EPERM);
	}
	struct uffdio_register reg = { { (uintptr_t)base, len }, UFFDIO_REGISTER_MODE_WP, 0 };
	if (rb_ioctl(pr->fd, UFFDIO_REGISTER, &reg) != 0 ||
	    !(reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT))) {
		bool registered = reg.ioctls != 0;
		if (registered) {
			struct uffdio_range r = { (uintptr_t)base, len };
			rb_ioctl(pr->fd, UFFDIO_UNREGISTER, &r);
		}
		if (fd < 0)
			rb_munmap(dst, len);
		return rb_refuse(why, "the kernel refused to write-protect the span", HL_EPERM);
	}
	struct uffdio_writeprotect wp = { { (uintptr_t)base, len }, UFFDIO_WRITEPROTECT_MODE_WP };
	if (rb_ioctl(pr->fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
		rb_undo(pr->fd, base, len);
		if (fd < 0)
			rb_munmap(dst, len);
		return rb_refuse(why, "the kernel refused to write-protect the span", HL_EPERM);
	}
	/* Protected: writers wait in the kernel from here to the wake. */
	lf_copy_unseen(dst, from_fd ? from_view : base, len);
	void *got = fd >= 0
		? rb_mmap(base, len, MAP_SHARED | MAP_FIXED, fd, off)
		: (void *)syscall(SYS_mremap, dst, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, base);
	if (got != base) {
		rb_undo(pr->fd, base, len);
		if (fd < 0)
			rb_munmap(dst, len);
		return rb_refuse(why, "the kernel refused to map the copy in place", HL_ENOMEM);
	}
	/* (b): the span's old mapping, and its registration, are gone; the
	 * writers it held retry on the new one. */
	struct uffdio_range r = { (uintptr_t)base, len };
	rb_ioctl(pr->fd, UFFDIO_WAKE, &r);
	HL_CTR_ADD(span_moves, 1);
	return HL_OK;
}

/* A fork of a memfd region's heap: its live spans are held against
 * writes while the child copies them (mem/bkfork.c), then let go. */
bool rb_protect(char *base, size_t len)
{
	const rb_probe_t *pr = rb_get();
	if (pr->fd < 0 || !(pr->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		return false;
	struct uffdio_register reg = { { (uintptr_t)base, len }, UFFDIO_REGISTER_MODE_WP, 0 };
	if (rb_ioctl(pr->fd, UFFDIO_REGISTER, &reg) != 0)
		return false;
	struct uffdio_writeprotect wp = { { (uintptr_t)base, len }, UFFDIO_WRITEPROTECT_MODE_WP };
	if (rb_ioctl(pr->fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
		rb_undo(pr->fd, base, len);
		return false;
	}
	return true;
}

void rb_unprotect(char *base, size_t len)
{
	const rb_probe_t *pr = rb_get();
	if (pr->fd >= 0)
		rb_undo(pr->fd, base, len);
}
#else
int rb_move(char *base, size_t len, int fd, uint64_t off, char *view, bool ready,
	    const char *from_view, const char **why)
{
	(void)base; (void)len; (void)fd; (void)off; (void)view; (void)ready; (void)from_view;
	return rb_refuse(why, rb_get()->why, HL_EPERM);
}

bool rb_protect(char *base, size_t len)
{
	(void)base; (void)len;
	return false;
}

void rb_unprotect(char *base, size_t len)
{
	(void)base; (void)len;
}
#endif

/* The backings a fork in progress holds (bkfork.c sets and clears it). */
static uint64_t rb_fork_held;

void rb_fork_holding(uint64_t ids)
{
	lf_store_seq_cst(&rb_fork_held, ids);
}

/* A span of backing id was published (seq_cst) while a fork may be
 * scanning its spans: if the fork holds it, this span holds its writers
 * too, as the scan would have (the child's copy must not see the parent's
 * later stores).  Either the scan saw the span (its loads are seq_cst,
 * and so is the fork's store of its set before it) or the load here sees
 * the set.  A fork that let go meanwhile did not see this protection: it
 * is lifted here. */
void rb_fork_hold_new(uint32_t id, char *base, size_t len)
{
	uint64_t bit = (uint64_t)1 << id;
	if (HL_LIKELY(!(lf_load_seq_cst(&rb_fork_held) & bit)))
		return;
	HL_HOOK("bk_fork_hold_new");
	if (!rb_protect(base, len)) {
		hl_warn("fork", base, "cannot hold a span made during fork: the child's copy of it may be torn");
		return;
	}
	if (!(lf_load_seq_cst(&rb_fork_held) & bit))
		rb_unprotect(base, len);
}
