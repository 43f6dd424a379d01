/*
 * base/: what every layer stands on.  The rule of this folder: its files
 * call only lf/ and the C library, never a file of src/ outside base/.
 *
 *   os.c         mappings, purging, page locking, the clock, randomness
 *   fatal.c      the one-line "heaplib: CALL(PTR): REASON" abort, stderr
 *   config.c     HEAPLIB_* settings, the per-process key
 *   counters.c   the statistics counters, bounded counters
 *   thread.c     the thread-exit and fork registries
 *   sizeclass.c  the size-class table and its lookups
 *
 * One exception, listed in src/README.md: hl_ensure_init() below calls
 * hl_init_slow() in api/init.c, which initializes every layer bottom-up.
 */
#ifndef HL_BASE_H
#define HL_BASE_H

#include "types.h"
#include "hook.h"

/* ---- fatal.c ------------------------------------------------------------ */
__attribute__((noreturn)) void hl_fatal(const char *call, const void *ptr,
					const char *reason);
/* A sized free whose size the block cannot have come from: the reason is
 * HL_WHY_SIZE " (GIVEN bytes given, BLOCK BYTES)", BLOCK "class of" or
 * "large block of". */
__attribute__((noreturn)) void hl_fatal_size(const char *call, const void *ptr,
					     size_t given, const char *block,
					     size_t bytes);
__attribute__((noreturn)) void hl_fatal_assert(const char *expr,
					       const char *file, int line);
/* PREFIX CALL(0xPTR): REASON, one line on stderr; no allocation. */
void hl_say(const char *prefix, const char *call, const void *ptr, const char *reason);
/* Writes msg to stderr with write(2); no allocation. */
void hl_write_err(const char *msg);
/* Formatting into [o, end) without allocation; each returns the new o. */
char *hl_fmt_str(char *o, char *end, const char *s);
char *hl_fmt_hex(char *o, char *end, uintptr_t v);
char *hl_fmt_dec(char *o, char *end, long v);
char *hl_fmt_u64(char *o, char *end, uint64_t v);

#if defined(HL_DEBUG) || defined(HL_TEST_HOOKS)
#define HL_ASSERT(c) \
	((c) ? (void)0 : hl_fatal_assert(#c, __FILE__, __LINE__))
#else
#define HL_ASSERT(c) ((void)0)
#endif

/* The reasons of the fatal line, each written once (tests/api/test_aborts
 * holds them to their exact text). */
#define HL_WHY_INVALID "invalid pointer (not allocated by heaplib, or already freed)"
#define HL_WHY_NOT_OURS "pointer not allocated by heaplib"
#define HL_WHY_INTERIOR "interior pointer (not the start of a block)"
#define HL_WHY_FREE_CACHED "double free (block is already in the thread cache)"
#define HL_WHY_FREE_FREE "double free (block is already free)"
#define HL_WHY_FREE_TWICE "double free (block freed twice)"
#define HL_WHY_FREE_OVERCOUNT "double free (superblock has more free blocks than it holds)"
#define HL_WHY_FREE_LARGE "double free (large block freed twice at once)"
#define HL_WHY_INHERITED "block of a region shared with the parent process (a fork child may not free it)"
#define HL_WHY_REALLOC_FREE "block is already free (it is in the thread cache)"
#define HL_WHY_WRITTEN "block written after free"
#define HL_WHY_JUNK "block written after free (junk overwritten)"
#define HL_WHY_SIZE "size does not match the block"

/* ---- os.c --------------------------------------------------------------- */
/* Transparent huge pages (doc/thp.md has the figures): heaplib's metadata
 * maps, its superblock chunks and its page heap are MADV_NOHUGEPAGE
 * (sparsely touched, purged in 4 KiB-multiples: a huge page there costs
 * RSS and splits, and measured no gain); blocks with mappings of their
 * own follow the system's setting, and hugetlb regions are the program's
 * explicit choice. */
void os_nohuge(void *p, size_t size);
void *os_map(size_t size);                 /* RW, NORESERVE, NOHUGEPAGE; NULL on failure */
void *os_map_aligned(size_t size, size_t align);
/* false if the kernel refused (a split past vm.max_map_count): the pages
 * are then still mapped, and still the caller's. */
bool os_unmap(void *p, size_t size);
/* Resize the mapping [p, p + old) to size bytes where it is (mremap
 * without moving); false if the kernel refuses (the pages after it are
 * taken, or a split past the mapping limit), the mapping then as it was. */
bool os_remap(void *p, size_t old, size_t size);
/* Move the pages of [p, p + old) into dst, a mapping of size >= old bytes
 * the caller holds (os_map), with mremap: p's range is then unmapped.
 * false if the kernel refuses: p is as it was, and dst is no longer the
 * caller's (given back, or already taken back by the kernel). */
bool os_move(void *p, size_t old, void *dst, size_t size);
void os_purge(void *p, size_t size);       /* MADV_DONTNEED */
/* Map size bytes of file fd from off, shared, over [p, p + size) (which
 * the caller holds); false if the kernel refused (the range as it was). */
bool os_map_file_fixed(void *p, size_t size, int fd, uint64_t off);
/* Fresh private anonymous memory (NORESERVE, as the reservation) over
 * [p, p + size), which the caller holds; false if the kernel refused. */
bool os_map_anon_fixed(void *p, size_t size);
/* Give the pages of [off, off + size) of file fd back (a hole). */
void os_punch(int fd, uint64_t off, size_t size);
/* Secure pages: locked in RAM and out of core dumps; false (nothing
 * changed) if they cannot be locked.  os_unlock undoes both. */
bool os_lock(void *p, size_t size);
void os_unlock(void *p, size_t size);
uint32_t os_now_ms(void);
uint64_t os_now_ns(void);
/* Sleep while *word == val, at most ms milliseconds (0: no bound); a
 * wake, a signal or a spurious return end it early: callers check. */
void os_wait_word(uint32_t *word, uint32_t val, uint32_t ms);
void os_wake_word(uint32_t *word);
unsigned os_ncpu(void);
uint64_t os_random64(void);

#ifdef HL_TEST_HOOKS
/* Fault injection, test builds only.  os_test_fail_maps(n): the next n
 * maps fail as if the kernel had refused them (NULL, errno untouched);
 * n < 0: every map fails until the next call; 0: none fails.  A map is a
 * call of os_map or os_map_aligned (one, however many tries it makes
 * inside), or of os_remap that grows.  os_test_fail_unmaps(n) does the same for os_unmap (false,
 * nothing unmapped).  os_test_failed(): how many failures were injected
 * since the process started, so that a test can tell that it reached the
 * path it meant to. */
void os_test_fail_maps(long n);
void os_test_fail_unmaps(long n);
unsigned long os_test_failed(void);
#endif

/* Bits set in v, without __builtin_popcountll: on CPUs without POPCNT
 * the builtin calls libgcc's __popcountdi2, which would make the library
 * need libgcc_s. */
static inline unsigned os_popcount64(uint64_t v)
{
	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((v * 0x0101010101010101ull) >> 56);
}

/* size rounded up to whole pages in *out; false on overflow or 0. */
static inline bool os_page_round(size_t size, size_t *out)
{
	size_t r = (size + HL_PAGE - 1) & ~(size_t)(HL_PAGE - 1);
	*out = r;
	return r >= size && r != 0;
}

/* ---- config.c ----------------------------------------------------------- */
extern HL_HIDDEN hl_config_t hl_config;
extern HL_HIDDEN uint64_t hl_key;           /* per-process random: marks freed blocks */
/* Read HEAPLIB_OPTIONS and the HEAPLIB_* variables and draw the key
 * (init, once). */
void config_init(void);
/* The options in force, "key:value" each; into out (512 bytes) or, with
 * out NULL, to stderr as "heaplib: options: ...".  Returns the length. */
size_t config_print(char *out);
/* HEAPLIB_VERBOSE: "heaplib: warning: CALL(PTR): REASON" on stderr. */
void hl_warn(const char *call, const void *ptr, const char *reason);

/* ---- counters.c --------------------------------------------------------- */
extern HL_HIDDEN hl_counters_t hl_ctr;
#define HL_CTR_ADD(f, v) ((void)lf_fetch_add_relaxed(&hl_ctr.f, (uint64_t)(v)))
#define HL_CTR_SUB(f, v) ((void)lf_fetch_sub_relaxed(&hl_ctr.f, (uint64_t)(v)))
/* Any thread: add n to *ctr unless the sum would pass limit (by CAS). */
bool ctr_add_bounded(uint64_t *ctr, uint64_t n, uint64_t limit);
/* Any thread: take the next number of a count that must stay at or below
 * limit; returns it (the count is then one more), or -1 with the count
 * untouched when it is at limit already (by CAS). */
int64_t ctr_take_bounded(uint32_t *ctr, uint32_t limit);

/* ---- thread.c ----------------------------------------------------------- */
/* Ordered callbacks at thread exit, registered at start (api/init.c), run
 * lowest order first from a pthread key destructor: THREAD_EXIT_MIG
 * (hand back the migration request record), THREAD_EXIT_TASK (leave the
 * task), THREAD_EXIT_CACHE (hand back the thread cache),
 * THREAD_EXIT_HAZARD (release the hazard-pointer record). */
enum thread_exit_order {
	THREAD_EXIT_MIG,     /* the migration request record (policy/mig/) */
	THREAD_EXIT_TASK,
	THREAD_EXIT_CACHE,
	THREAD_EXIT_HAZARD,
	THREAD_EXIT_NORDERS
};
void thread_init(void);
void thread_exit_register(enum thread_exit_order order, void (*fn)(void));
/* The calling thread holds something its exit must give back: make sure
 * the exit callbacks run for it.  Does not allocate. */
void thread_exit_ensure(void);
/* Fork steps, in registration order for prepare and in reverse for the
 * parent and child (as pthread_atfork orders its handlers); any may be
 * NULL.  At most THREAD_FORK_MAX registrations. */
#define THREAD_FORK_MAX 8
bool thread_atfork_register(void (*prepare)(void), void (*parent)(void),
			    void (*child)(void));

/* ---- sizeclass.c -------------------------------------------------------- */
extern HL_HIDDEN sc_info_t sc_table[HL_NCLASSES];
/* Class of every size 0..HL_SMALL_MAX by 8-byte steps: one table (4 KiB,
 * of which a program touches the lines of the sizes it asks for), so that
 * malloc's lookup is one load with no branch on the size. */
extern HL_HIDDEN uint8_t sc_lut[(HL_SMALL_MAX >> 3) + 1];

/* size <= HL_SMALL_MAX. */
static inline unsigned sc_of(size_t size)
{
	return sc_lut[(size + 7) >> 3];
}

/* What the interior-pointer check reads (the thread cache's bins carry a
 * copy for free's fast path, tc_fbin_t). */
typedef struct sc_check {
	uint64_t divm;       /* ceil(2^64 / size) (= 2^64 / size for a power of two) */
	uint64_t bound;      /* maxcount * (size * divm - 2^64), or 1 for a power of two */
} sc_check_t;
extern HL_HIDDEN sc_check_t sc_checks[HL_NCLASSES];

/* Whether byte offset off in a superblock of class cls starts one of its
 * blocks, in one multiply and one compare.  off is below the superblock's
 * bytes (nslots * 64 KiB: the slot record's offset and the address within
 * the slot give it no more).  Write e = size * divm - 2^64 (0 <= e < size,
 * 0 exactly for a power of two).  For off = k * size, off * divm wraps to
 * k * e; for any other off the product stays >= divm (Lemire, Kaser and
 * Kurz, "Faster remainder by direct computation": off * divm mod 2^64 is
 * off mod size scaled by divm, plus k * e, which is far below divm here).
 * So with e > 0, off * divm < maxcount * e says both that size divides off
 * and that block k = off / size exists (k < maxcount); with e = 0 every
 * multiple gives 0, and every multiple below the superblock's bytes is a
 * block, since a power of two divides them (limit = bytes). */
static inline bool sc_check_off(uint64_t divm, uint64_t bound, size_t off)
{
	return (uint64_t)off * divm < bound;
}
static inline bool sc_is_block(unsigned cls, size_t off)
{
	return sc_check_off(sc_checks[cls].divm, sc_checks[cls].bound, off);
}

/* Block index of byte offset off in a superblock of class cls, or -1 if off
 * is not on a block boundary. */
static inline long sc_block_index(unsigned cls, size_t off)
{
	const sc_info_t *c = &sc_table[cls];
	uint32_t idx = (uint32_t)(((uint64_t)off * c->recip) >> 32);
	if ((size_t)idx * c->size != off || idx >= c->maxcount)
		return -1;
	return idx;
}

/* The smallest class that holds size bytes with every block aligned to
 * align (a power of two; superblocks start on 64 KiB boundaries, so a
 * class whose size is a multiple of align will do), or HL_NCLASSES. */
unsigned sc_class_aligned(size_t size, size_t align);
void sc_init(void);

/* ---- the struct_size rule (README, "Compatibility") -------------------- */
/* A caller's struct may be shorter than ours (built against an older
 * header, but no older than the first, min bytes: the fields it lacks
 * read as zero) or longer (a newer header: accepted when every byte we do
 * not know is zero).  Copies the caller's struct into ours (dst, full
 * bytes); false when it cannot be read. */
static inline bool hl_struct_in(void *dst, size_t full, const void *src, size_t min)
{
	size_t given;
	if (!src)
		return false;
	__builtin_memcpy(&given, src, sizeof given);
	if (given < min)
		return false;
	for (size_t i = full; i < given; i++)
		if (((const unsigned char *)src)[i])
			return false;
	size_t n = given < full ? given : full;
	__builtin_memset(dst, 0, full);
	__builtin_memcpy(dst, src, n);
	return true;
}

/* Copy our filled struct (src, full bytes) out to the caller's dst, up to
 * its struct_size (kept as the caller set it): an output struct may be cut
 * anywhere after its struct_size field. */
static inline void hl_struct_out(void *dst, const void *src, size_t full)
{
	size_t given;
	__builtin_memcpy(&given, dst, sizeof given);
	size_t n = given < full ? given : full;
	__builtin_memcpy((char *)dst + sizeof given, (const char *)src + sizeof given,
			 n - sizeof given);
}

/* Whether the caller's struct at p (with a struct_size) can take output. */
static inline bool hl_struct_out_ok(const void *p)
{
	size_t given;
	if (!p)
		return false;
	__builtin_memcpy(&given, p, sizeof given);
	return given >= sizeof(size_t);
}

/* ---- api/init.c (the listed exception) ---------------------------------- */
extern HL_HIDDEN int hl_inited;
void hl_init_slow(void);
static inline void hl_ensure_init(void)
{
	if (HL_UNLIKELY(lf_load_acquire(&hl_inited) != 2))
		hl_init_slow();
}

#endif
