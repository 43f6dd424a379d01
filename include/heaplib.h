/*
 * heaplib: a lock-free, per-thread memory allocator.
 *
 * The hl_* functions below behave like their C / POSIX namesakes.  Linking
 * libheaplib (or preloading it) also replaces malloc, free and friends,
 * except in sanitizer builds, where the sanitizer owns those names.
 */
#ifndef HEAPLIB_H
#define HEAPLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HL_VERSION_MAJOR 0
#define HL_VERSION_MINOR 1

#if defined(__GNUC__)
#define HL_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define HL_MALLOC_ATTR
#endif

HL_MALLOC_ATTR void *hl_malloc(size_t size);
void hl_free(void *ptr);
HL_MALLOC_ATTR void *hl_calloc(size_t nmemb, size_t size);
void *hl_realloc(void *ptr, size_t size);
void *hl_reallocarray(void *ptr, size_t nmemb, size_t size);
HL_MALLOC_ATTR void *hl_aligned_alloc(size_t alignment, size_t size);
int hl_posix_memalign(void **out, size_t alignment, size_t size);
HL_MALLOC_ATTR void *hl_memalign(size_t alignment, size_t size);
/* Bytes usable at ptr (>= the size asked for); 0 for NULL. */
size_t hl_usable_size(const void *ptr);
/* free() with the size (and alignment) the block was allocated with. */
void hl_free_sized(void *ptr, size_t size);
void hl_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Flush the calling thread's cache, the transfer caches, and give every
 * empty superblock's pages back to the OS now.  Returns 1 if memory was
 * released. */
int hl_trim(void);
/* Flush the calling thread's cache only. */
void hl_thread_flush(void);

typedef struct hl_stats {
	size_t struct_size;          /* set by the caller: sizeof(hl_stats_t) */
	uint64_t bytes_reserved;     /* virtual address space reserved */
	uint64_t bytes_mapped;       /* superblock bytes in use or cached warm */
	uint64_t bytes_purged;       /* total bytes given back with madvise */
	uint64_t superblocks_live;   /* superblocks holding a descriptor */
	uint64_t superblocks_created;
	uint64_t superblocks_retired;
	uint64_t superblocks_cached; /* empty, kept warm or purged, for reuse */
	uint64_t descriptors_live;   /* allocated, not yet retired */
	uint64_t descriptors_retired_pending; /* retired, waiting on hazards */
	uint64_t descriptor_pages_mapped;
	uint64_t descriptor_pages_released;
	uint64_t large_live;         /* large allocations alive */
	uint64_t large_bytes;        /* their bytes, page-rounded */
	uint64_t tcache_bytes;       /* bytes in thread caches (approximate) */
	uint64_t transfer_bytes;     /* bytes in transfer caches (approximate) */
	uint64_t threads_live;       /* threads with a cache */
	uint64_t heaps;              /* heap shards */
} hl_stats_t;

/* Fill *st (whose struct_size the caller sets); returns 0, or -1 with
 * errno EINVAL when st is NULL or struct_size is too small. */
int hl_stats_get(hl_stats_t *st);
/* Print the statistics, one "name value" per line, to out (stderr if NULL). */
void hl_stats_print(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
