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

/* The version of this header, as heaplib.pc's: major.minor.patch.  The
 * ABI promise: within one major version every function keeps its
 * signature and meaning, and structs with a struct_size only grow at the
 * end (README, "Compatibility"). */
#define HL_VERSION_MAJOR 0
#define HL_VERSION_MINOR 1
#define HL_VERSION_PATCH 0
#define HL_VERSION (HL_VERSION_MAJOR * 10000 + HL_VERSION_MINOR * 100 + HL_VERSION_PATCH)

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
	uint64_t large_cached;       /* freed large-block bytes kept warm for reuse */
} hl_stats_t;

/* Fill *st (whose struct_size the caller sets); returns 0, or -1 with
 * errno EINVAL when st is NULL or struct_size is too small. */
int hl_stats_get(hl_stats_t *st);
/* Print the statistics, one "name value" per line, to out (stderr if NULL). */
void hl_stats_print(FILE *out);

/* ---- regions and tasks --------------------------------------------------
 *
 * A region is a pool of memory with attributes; an allocation says what it
 * needs (reachability, security) and what it prefers (proximity), and
 * heaplib picks a region.  Plain malloc uses the default region: private
 * anonymous memory, reachable by the system (HL_REACH_SYS), not secure.
 * A task groups threads under one policy (quota, secure, allowed regions);
 * threads that join none belong to the default task.
 */
typedef enum hl_error {
	HL_OK = 0,
	HL_ENOMEM = 1,     /* every qualifying region (or the task's quota) is full */
	HL_EINVAL = 2,     /* a bad argument: says nothing was changed */
	HL_ENOREGION = 3,  /* no region satisfies the constraint */
	HL_EAGAIN = 4,     /* would have to wait, and HL_NOWAIT was given */
	HL_EPERM = 5,      /* a rule or a system limit forbids it (RLIMIT_MEMLOCK) */
	HL_EBUSY = 6,      /* still holds memory or threads */
} hl_error_t;

/* The version of the library in use (HL_VERSION of the header it was
 * built with): compare with HL_VERSION to see what a program runs on. */
unsigned hl_version(void);

/* A fixed English description of err ("unknown error" for others). */
const char *hl_strerror(hl_error_t err);

/* Reachability: who may access the memory. */
#define HL_REACH_SYS     0x1u   /* the CPU, through the system's page tables */
#define HL_REACH_DMA     0x2u   /* devices by DMA: user-supplied buffers only */
#define HL_REACH_CLUSTER 0x4u   /* other nodes of a cluster (shared memory) */
#define HL_REACH_CPU     0x8u   /* a particular CPU complex (see node) */

typedef enum hl_backing {
	HL_BACKING_ANON = 0,    /* private anonymous pages (the default) */
	HL_BACKING_MEMFD = 1,   /* a memfd of `capacity` bytes, shared mapping */
	HL_BACKING_HUGETLB = 2, /* `capacity` bytes of huge pages (MAP_HUGETLB) */
	HL_BACKING_BUFFER = 3,  /* the caller's buffer [buffer, buffer + capacity) */
} hl_backing_t;

typedef struct hl_region hl_region_t;
typedef struct hl_task hl_task_t;

typedef enum hl_region_event {
	HL_EVENT_LOW = 1,   /* free bytes fell below the low watermark */
	HL_EVENT_HIGH = 2,  /* free bytes rose back above the high watermark */
} hl_region_event_t;

/* Runs on the thread whose allocation or free crossed the watermark,
 * after that call's work is done and outside every internal structure:
 * it may allocate and free (even in the same region). */
typedef void (*hl_notify_fn)(hl_region_t *region, hl_region_event_t event, void *arg);

typedef struct hl_region_attr {
	size_t struct_size;      /* sizeof(hl_region_attr_t) */
	const char *name;        /* copied (up to 31 bytes); NULL for none */
	unsigned reach;          /* HL_REACH_* set; 0 means HL_REACH_SYS */
	int secure;              /* locked, kept out of core dumps, wiped on free */
	int node;                /* proximity node (0 if unknown) */
	size_t capacity;         /* bytes it may back; 0: unbounded (ANON only) */
	size_t wmark_min, wmark_low, wmark_high;  /* free bytes; need a capacity */
	hl_backing_t backing;
	void *buffer;            /* HL_BACKING_BUFFER: 64 KiB aligned */
	hl_notify_fn notify;     /* watermark events, or NULL */
	void *notify_arg;
	int relieve;             /* below low, the coordinator moves movable
				  * memory out until free bytes are above high */
	int shared;              /* MEMFD: shared with other processes; a fork
				  * child may then neither allocate nor free in
				  * it (by default it gets a private copy) */
} hl_region_attr_t;

int hl_region_create(const hl_region_attr_t *attr, hl_region_t **out);
int hl_region_delete(hl_region_t *region);
/* Free every block of the region at once (no thread may be using it).
 * HL_ENOMEM, nothing freed, when the memory it needs cannot be had. */
int hl_region_reset(hl_region_t *region);
/* The region a block belongs to (the default region for plain malloc
 * blocks), or NULL for a pointer heaplib did not return. */
hl_region_t *hl_region_of(const void *ptr);
hl_region_t *hl_region_default(void);

typedef struct hl_region_stats {
	size_t struct_size;
	uint64_t capacity;        /* 0: unbounded */
	uint64_t bytes_backed;    /* superblock and large-block bytes it backs */
	uint64_t bytes_live;      /* bytes of blocks allocated (usable sizes) */
	uint64_t blocks_live;
	uint64_t superblocks;
	uint64_t allocs, frees;   /* totals */
	uint64_t events_low, events_high;
} hl_region_stats_t;

int hl_region_stats(const hl_region_t *region, hl_region_stats_t *st);
const char *hl_region_name(const hl_region_t *region);

/* Placement of one allocation: reach is a constraint, node a preference. */
typedef struct hl_place {
	unsigned reach;          /* set the memory must be reachable from; 0 = SYS */
	int node;                /* preferred proximity node; -1: no preference */
	hl_region_t *region;     /* if not NULL: this region only */
} hl_place_t;

#define HL_ZERO      0x1u   /* zero the block */
#define HL_NOWAIT    0x2u   /* never wait (for migration) */
#define HL_NOMIGRATE 0x4u   /* the block must never move (DMA, pinned I/O) */
#define HL_SECURE    0x8u   /* only a secure region will do */

/* Allocate size bytes under place (NULL: the calling task's default) into
 * *out; align is 0 or a power of two. */
int hl_alloc(size_t size, const hl_place_t *place, unsigned flags, void **out);
int hl_alloc_aligned(size_t size, size_t align, const hl_place_t *place,
		     unsigned flags, void **out);

/* A move of the task's memory, told on one of its threads (see on_move). */
typedef struct hl_move_event {
	hl_region_t *from, *to;
	size_t bytes;            /* of the superblock moved */
	unsigned lost;           /* events dropped before this one (the ring was full) */
} hl_move_event_t;
typedef void (*hl_move_fn)(hl_task_t *task, const hl_move_event_t *ev, void *arg);

typedef struct hl_task_attr {
	size_t struct_size;      /* sizeof(hl_task_attr_t) */
	const char *name;
	size_t quota;            /* bytes backed for it, all regions; 0: none */
	int secure;              /* all its memory from secure regions */
	hl_region_t *const *regions;  /* regions it may use; NULL: all */
	size_t nregions;
	hl_region_t *share_region;    /* with share_limit: above share_limit bytes */
	size_t share_limit;           /* backed there, its movable memory moves out */
	hl_move_fn on_move;           /* each move of its memory, or NULL: run on */
	void *on_move_arg;            /* one of its threads at its next hl_alloc or
				       * hl_task_poll, never inside the allocator */
} hl_task_attr_t;

typedef struct hl_task_stats {
	size_t struct_size;
	uint64_t bytes_backed;    /* all regions */
	uint64_t bytes_live;
	uint64_t blocks_live;
	uint64_t threads;         /* joined now */
	uint64_t quota;
} hl_task_stats_t;

int hl_task_create(const hl_task_attr_t *attr, hl_task_t **out);
/* The calling thread joins task (NULL: the default task); its cache is
 * flushed first. */
int hl_task_join(hl_task_t *task);
int hl_task_destroy(hl_task_t *task);
/* Accounting of the task, in all regions (region NULL) or in one. */
int hl_task_stats(const hl_task_t *task, const hl_region_t *region, hl_task_stats_t *st);
hl_task_t *hl_task_self(void);
/* Run the calling thread's task's pending move events (and the watermark
 * events of the coordinator's background moves); returns how many move
 * events ran. */
int hl_task_poll(void);

/* ---- nomadic memory: the coordinator moves whole superblocks ----------- */

/* Move the superblock holding ptr onto a region that place names (reach
 * and the task's rules obeyed); ptr and every block beside it keep their
 * addresses and bytes.  HL_OK; HL_EPERM (pinned, secure to non-secure,
 * CPU-private, a user buffer, or backing moves without userfaultfd);
 * HL_ENOREGION (no region qualifies); HL_ENOMEM (none has room);
 * HL_EBUSY (its superblock stayed in use: try again); HL_EINVAL. */
int hl_migrate(void *ptr, const hl_place_t *place, unsigned flags);
/* Move every movable superblock of task onto the regions place names;
 * HL_OK when all moved, else the first refusal (what moved stays moved). */
int hl_task_migrate(hl_task_t *task, const hl_place_t *place, unsigned flags);

#define HL_MIGRATE_TIERS 5     /* index 1..4: account, attributes, node, backing */
#define HL_MIGRATE_WHY 16
#define HL_MIGRATE_HIST 8      /* < 10, 50, 100, 200, 500 us, 1, 10 ms, more */

typedef struct hl_migrate_stats {
	size_t struct_size;
	uint64_t moves[HL_MIGRATE_TIERS];   /* superblocks moved, by tier */
	uint64_t bytes[HL_MIGRATE_TIERS];
	uint64_t move_ns[HL_MIGRATE_TIERS]; /* time in the moves themselves, total */
	uint64_t refused[HL_MIGRATE_WHY];   /* by reason (hl_migrate_why_name) */
	uint64_t requests;                  /* posted to the coordinator */
	uint64_t waits_timed_out;           /* allocations that gave up waiting */
	uint64_t move_us[HL_MIGRATE_HIST];  /* time per move, histogram */
	uint64_t protect_us[HL_MIGRATE_HIST]; /* time a span was write-protected
					     * (the longest a writer can stall) */
	int running;                        /* the coordinator thread exists */
	int uffd;                           /* backing moves available */
	char uffd_reason[80];               /* why not, if not */
} hl_migrate_stats_t;

int hl_migrate_stats(hl_migrate_stats_t *st);
/* The name of reason i of hl_migrate_stats_t.refused ("pinned", ...), or
 * NULL past the last. */
const char *hl_migrate_why_name(unsigned i);

#ifdef __cplusplus
}
#endif
#endif
