/*
 * policy/mig/: nomadic memory, the coordinator (DESIGN.md section 5).  The
 * rule of this folder: its files call policy/ (placement, tasks,
 * regions), core/, mem/, base/ and lf/, and each other only along
 * coord -> serve -> move, serve -> move_large -> move, serve -> plan;
 * never api/.
 *
 *   plan.c   which superblock goes where: pure (snapshots of regions and
 *            superblocks in, a list of moves out), tested without threads
 *   move.c   moves one superblock: claim it from the core, change what
 *            backs it or only its books, retag its slot records, release
 *   move_large.c  moves one large block of a region (a superblock of one
 *            block): hold its range-table word, change its pages' attributes
 *            or node, retag it by CAS, move its books
 *   serve.c  one job: snapshots, the plan, the moves, the statistics
 *   coord.c  when: the coordinator thread, its request queue (liburcu's
 *            wfcqueue through lf/wfq.h), waiting with a bound, background
 *            passes (watermark relief, share limits), fork and exit, and
 *            the hl_migrate* entry points
 */
#ifndef HL_MIG_H
#define HL_MIG_H

#include "policy/policy.h"

/* How a superblock moves: the cheapest way that is safe. */
enum mig_tier {
	MIG_T_ACCOUNT = 1,   /* same kind of memory: only the books change */
	MIG_T_ATTR = 2,      /* page attributes in place (lock, dump, wipe) */
	MIG_T_NODE = 3,      /* another NUMA node: the kernel moves the pages */
	MIG_T_BACKING = 4,   /* another backing: copy under write protection */
	MIG_NTIERS = 5
};

/* Why a move was refused (statistics count each). */
enum mig_why {
	MIG_OK = 0,
	MIG_R_PINNED,    /* a block of it was allocated HL_NOMIGRATE */
	MIG_R_SECURE,    /* secure memory, no secure region would take it */
	MIG_R_REACH,     /* no region reachable as its blocks need */
	MIG_R_CPU,       /* CPU-private memory never moves */
	MIG_R_BUFFER,    /* a user buffer's addresses are the user's */
	MIG_R_HUGETLB,   /* huge-page backings move only in 2 MiB groups */
	MIG_R_NOROOM,    /* no qualifying region has room above its min */
	MIG_R_NOUFFD,    /* backing moves need userfaultfd (see the reason) */
	MIG_R_MAPS,      /* the mapping budget (vm.max_map_count / 2) */
	MIG_R_BUSY,      /* its superblock could not be claimed (in use) */
	MIG_R_NUMA,      /* move_pages refused */
	MIG_R_DEFAULT,   /* malloc's own large blocks change no backing,
			  * and malloc's heap takes no region's */
	MIG_NWHY
};

/* ---- plan.c ------------------------------------------------------------- */

/* A region as the planner sees it. */
typedef struct mig_rsnap {
	uint32_t id;
	bool open;              /* alive and taking new memory */
	unsigned reach;
	bool secure;
	int node;
	hl_backing_t kind;
	uint64_t capacity;      /* 0: unbounded */
	uint64_t backed;
	uint64_t wmin;
	uint64_t wlow;          /* its low watermark (0: none) */
} mig_rsnap_t;

/* A superblock, or a region's large block, as the planner sees it. */
typedef struct mig_sbsnap {
	uint32_t desc;          /* descriptor index; a large block: its arena */
	char *base;             /* its span (a descriptor reused meanwhile has another);
				 * a large block: its address */
	bool large;             /* a large block (its own mapping, one block) */
	bool fixed;             /* large, not cut into pieces (one of malloc's
				 * page-heap runs or mappings): no tier 4 */
	uint32_t region;        /* where it is */
	uint32_t task;          /* the task's id (0: the default task) */
	uint32_t need;          /* hl_desc_t.need: reach | HL_NEED_* */
	uint64_t allowed;       /* the regions its task may use */
	bool task_secure;
	uint64_t bytes;         /* span bytes */
	uint64_t live;          /* live bytes in it (ordering only) */
} mig_sbsnap_t;

enum mig_goal_kind {
	MIG_G_EVACUATE = 1,     /* all of `from`, or nothing (HL_EBUSY) */
	MIG_G_RELIEVE = 2,      /* `want` bytes out of `from`, as far as it goes */
	MIG_G_PLACE = 3,        /* the given superblocks onto `to` */
};

typedef struct mig_goal {
	enum mig_goal_kind kind;
	uint32_t from;          /* EVACUATE, RELIEVE: the source region */
	uint64_t want;          /* RELIEVE: bytes to move out */
	uint64_t to;            /* target regions (bit per id); 0: any */
	int node;               /* preferred node, -1: none */
	bool top_task_first;    /* superblocks of the task holding most first */
	bool numa;              /* the machine has several nodes */
	bool keep_low;          /* targets stay above their low watermark */
	bool no_backing;        /* backing moves cannot be made (no userfaultfd) */
} mig_goal_t;

typedef struct mig_move {
	uint32_t sb;            /* index into the snapshot */
	uint32_t to;            /* region id */
	uint8_t tier;           /* enum mig_tier */
} mig_move_t;

typedef struct mig_plan {
	size_t nmoves;
	uint64_t bytes;                 /* planned */
	uint64_t refused_bytes;
	uint32_t refused[MIG_NWHY];     /* superblocks, by reason */
	int status;                     /* HL_OK, HL_EBUSY (EVACUATE: nothing planned) */
} mig_plan_t;

/* Plan goal g over regions r[0..nr) and superblocks sb[0..nsb) (in any
 * order; sb may be reordered); at most cap moves into mv.  Pure: reads
 * only its arguments. */
void mig_plan(const mig_goal_t *g, const mig_rsnap_t *r, unsigned nr,
	      mig_sbsnap_t *sb, size_t nsb, mig_move_t *mv, size_t cap, mig_plan_t *out);
/* The tier of a move from region a to region b (0 with *why when it can
 * never be done). */
unsigned mig_tier_of(const mig_rsnap_t *a, const mig_rsnap_t *b, bool numa, int *why);
const char *mig_why_name(int why);

/* ---- move.c ------------------------------------------------------------- */
/* Move superblock s (of a snapshot) to region to with the planned tier:
 * MIG_OK (the time it took in *ns) or the reason it did not move (then
 * nothing changed); a backing move's time of the span under write
 * protection, at most, in *protect_ns. */
int mig_move(const mig_sbsnap_t *s, struct hl_region *to, unsigned tier, uint64_t *ns,
	     uint64_t *protect_ns);
/* Whether region to may take memory allocated under need (reach |
 * HL_NEED_*), secure if its task or region is: MIG_OK or the reason. */
int mig_target_why(const struct hl_region *to, uint32_t need, bool secure);
/* The target's side of a move of bytes of task t's memory: region to's
 * teardown handshake entered, t's arena there, the bytes reserved in its
 * account (a full target refuses before anything changed).  NULL with
 * *why when any of those fails (nothing held); else the arena, given
 * back with mig_target_done, which gives back unreserve bytes of the
 * reservation too (0 once the move made them the memory's charge). */
sb_arena_t *mig_target_take(struct hl_region *to, struct hl_task *t, uint64_t bytes, int *why);
void mig_target_done(struct hl_region *to_r, sb_arena_t *to, uint64_t unreserve);
/* The reason for what a backing move (bk_span_move, lb_move) returned. */
int mig_backing_why(int e, const char *why);
/* Tier 3: the kernel moves the pages of [base, base + len) to node. */
int mig_pages_to_node(char *base, size_t len, int node);

/* ---- move_large.c ------------------------------------------------------- */
/* As mig_move, for a snapshot of a region's large block (s->large). */
int mig_move_large(const mig_sbsnap_t *s, struct hl_region *to, unsigned tier, uint64_t *ns,
		   uint64_t *protect_ns);
/* Backing moves of superblocks s[0..n) at once (a batch, mem/bkmove.c):
 * adjacent spans of one size, in this order, anonymous now, into memfd
 * region to.  Claims them in turn up to the first that cannot be had,
 * moves the largest power of two of them (at most MIG_BATCH_MAX and
 * 512 KiB in all) and lets the rest go; returns how many moved (the
 * first ones of s; 0: none, try them one by one), their time in *ns and
 * the time they were protected in *protect_ns. */
#define MIG_BATCH_MAX 8u
unsigned mig_move_batch(const mig_sbsnap_t *const *s, unsigned n, struct hl_region *to,
			uint64_t *ns, uint64_t *protect_ns);

/* ---- serve.c ------------------------------------------------------------ */
/* One job of the coordinator: what it is about, and what came of it. */
enum mig_job_kind {
	MIG_J_PTR = 1,     /* the superblock of ptr, onto place */
	MIG_J_TASK,        /* every superblock of task, onto place */
	MIG_J_EVAC,        /* all of region, or nothing (dry: plan only) */
	MIG_J_OOM,         /* want bytes out of region, biggest task first */
	MIG_J_RELIEF,      /* want bytes out of region, targets kept above low */
	MIG_J_SHARE,       /* want bytes of task out of region */
};

typedef struct mig_job {
	uint32_t kind;          /* enum mig_job_kind */
	const void *ptr;
	struct hl_task *task;
	uint32_t region;
	uint64_t want;
	bool dry;
	hl_place_t place;
	bool has_place;
	uint64_t budget_ns;     /* background jobs: stop after this long (0: none) */
	int result;             /* out: HL_OK or the first refusal's code */
	uint64_t moved_bytes;   /* out */
} mig_job_t;

typedef struct mig_stats {
	uint64_t moves[MIG_NTIERS], bytes[MIG_NTIERS], move_ns[MIG_NTIERS];
	uint64_t refused[MIG_NWHY];
	uint64_t requests, timeouts, passes;
	uint64_t move_us[HL_MIGRATE_HIST], protect_us[HL_MIGRATE_HIST];
} mig_stats_t;
extern HL_HIDDEN mig_stats_t mig_st;

extern HL_HIDDEN uint32_t mig_stop;   /* set at exit: jobs stop between moves */
bool mig_serve_init(void);      /* the snapshot buffers; false if unmapped */
void mig_serve(mig_job_t *job);

/* ---- coord.c ------------------------------------------------------------ */
bool mig_running(void);
/* Registered at start (api/init.c): the hooks of placement and regions,
 * the thread-exit and fork steps.  Starts no thread. */
void mig_init(void);
void mig_thread_exit(void);

#endif
