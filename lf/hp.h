/*
 * Hazard-pointer domain (Michael 2004): safe reclamation for lock-free
 * structures whose nodes are freed while other threads may still hold a
 * pointer to them.
 *
 * A thread takes a record (lf_hp_acquire), publishes up to LF_HP_PER_THREAD
 * hazards in it before it dereferences a shared node, and hands the nodes
 * it unlinks to lf_hp_retire.  A scan frees a retired node only when no
 * record publishes a hazard on it.
 *
 * What a hazard covers: a hazard on address h protects every retired node
 * whose lf_hp_node_t lies in [h, h + LF_HP_NODE_REACH).  Publish the
 * address of the object and embed its lf_hp_node_t in the object's first
 * LF_HP_NODE_REACH bytes (a descriptor publishes itself and retires its
 * `hp` member).  A hazard that happens to fall just before an unrelated
 * node only delays that node's free; it never frees a protected one.
 *
 * When a record scans: once it holds max(LF_HP_MIN_THRESHOLD,
 * LF_HP_SCAN_FACTOR x live records x LF_HP_PER_THREAD) retired nodes,
 * live meaning acquired now (a released record's slots are all NULL, so
 * only live records can hide a node).  That is Michael's R = 2H with H
 * the hazards that can be published now, not the peak: a scan then frees
 * all but at most H of the nodes it looks at, and a record never holds
 * more than R - 1 between scans however many records a past peak made.
 * The count only decides when to scan; what a scan frees depends on the
 * hazards it reads alone, so a stale count delays or hastens a scan and
 * never frees a protected node.
 *
 * Concurrency contract:
 *  - lf_hp_domain_init: once, before any other call on the domain.
 *  - lf_hp_acquire, lf_hp_pending, lf_hp_records, lf_hp_active: any
 *    thread, any time.
 *  - lf_hp_set/clear/protect/retire/scan/release on a record: only the
 *    thread that acquired it (a record is single-owner), concurrently with
 *    any operation of other threads on other records.
 *  - free_fn runs on the scanning thread, inside lf_hp_scan; it may retire
 *    nodes again (they wait for the next scan) but must not release the
 *    record.
 *
 * The handshake: a reader publishes a hazard with a seq_cst store and then
 * re-reads the source (lf_hp_protect does both); a writer unlinks the node
 * with a seq_cst RMW (lf_exchange_seq_cst, lf_cas_strong_seq_cst), retires
 * it, and the scan reads every hazard with a seq_cst load.  In the single
 * total order either the reader's re-read sees the unlink (it retries) or
 * the scan sees the hazard (the node is kept).
 *
 * Linearization: set/protect on the seq_cst store of the slot; clear on
 * its release store; acquire on the CAS of a record's active flag (or the
 * CAS pushing a new record), and it then counts itself live (a relaxed
 * fetch-add); release uncounts itself (a relaxed fetch-sub, ordered after
 * that record's fetch-add, so the count never goes below zero) and
 * linearizes on the release store that clears the active flag; retire on
 * the push to the private list (no other thread sees it); a scan frees a
 * node on the seq_cst load of the last hazard slot it reads.
 *
 * Why not ck_hp: Concurrency Kit 0.7.1 collects hazards into a fixed
 * member cache and writes past it once 512 hazards are live, after which
 * it can free protected memory.  Servers run thousands of threads, so the
 * snapshot here lives in a per-record buffer that grows with the number
 * of records.
 *
 * No call allocates through malloc: records, and the scratch buffer each
 * scan sorts, come from mmap (and mremap).  Records are never unmapped
 * (type-stable): a scan may read the slots of a record whose thread has
 * gone, and a released record is reused by the next thread.
 */
#ifndef HL_LF_HP_H
#define HL_LF_HP_H

#include <stddef.h>
#include <stdint.h>

#include "atomic.h"

#define LF_HP_PER_THREAD 4

/* A hazard on h protects nodes at h .. h + LF_HP_NODE_REACH - 1. */
#define LF_HP_NODE_REACH 64

/* Retire at least this many nodes before a scan, however few records. */
#define LF_HP_MIN_THRESHOLD 64

/* A record scans at LF_HP_SCAN_FACTOR x the hazards live records can
 * publish (Michael's R = 2H: each scan frees at least half it looks at). */
#define LF_HP_SCAN_FACTOR 2

/* Embedded in each retired object; the link is private to whoever holds
 * the retired node (its retiring record, then the orphan list, then the
 * adopting record). */
typedef struct lf_hp_node {
	struct lf_hp_node *hp_next;
} lf_hp_node_t;

/* Called once per retired node, when no hazard covers it. */
typedef void (*lf_hp_free_fn)(void *ctx, lf_hp_node_t *node);

typedef struct lf_hp_domain lf_hp_domain_t;
typedef struct lf_hp_rec lf_hp_rec_t;

/* One per thread, two cache lines.  The first is written only by the
 * owner (its hazards, its retired list) and read by scanners; the second
 * holds what other threads write or follow (the active flag, the link). */
struct lf_hp_rec {
	void *hp_slot[LF_HP_PER_THREAD] lf_cacheline_aligned; /* seq_cst */
	lf_hp_node_t *hp_retired;   /* owner only (handed over on release) */
	uint64_t hp_nretired;       /* owner writes, others read (relaxed) */
	uintptr_t *hp_scratch;      /* owner only: mmap'd hazard snapshot */
	size_t hp_scratch_bytes;

	uint32_t hp_active lf_cacheline_aligned; /* 1 while owned; CAS 0 -> 1 */
	uint32_t hp_in_scan;        /* owner only: free_fn's retires wait */
	lf_hp_rec_t *hp_next_rec;   /* domain list; set once before publish */
	lf_hp_domain_t *hp_domain;
	uint64_t hp_scans;          /* owner writes, tests read (relaxed) */
	uint64_t hp_freed;
};

struct lf_hp_domain {
	lf_hp_rec_t *hp_records;    /* push-only list of every record */
	struct hp_chunk *hp_chunk;  /* mapping records are carved from */
	lf_hp_node_t *hp_orphans;   /* retired lists of released records */
	uint64_t hp_norphans;       /* nodes on hp_orphans (relaxed) */
	uint64_t hp_nrecords;       /* records mapped, never decreases (relaxed) */
	uint64_t hp_nactive;        /* records acquired now (relaxed RMW) */
	lf_hp_free_fn hp_free;
	void *hp_ctx;
};

/* Before any other use; the domain may be zero-initialised storage. */
void lf_hp_domain_init(lf_hp_domain_t *d, lf_hp_free_fn free_fn, void *ctx);

/* A record for the calling thread: an inactive one claimed by CAS, else a
 * new one.  NULL only when mmap fails.  Any thread. */
lf_hp_rec_t *lf_hp_acquire(lf_hp_domain_t *d);

#ifdef HL_TEST_HOOKS
/* Test builds: while on, every lf_hp_acquire fails as if every record
 * were taken and mmap refused a new one. */
void lf_hp_test_fail_acquire(int on);
#endif

/* Thread exit: clears the hazards, hands the retired list to the orphan
 * list (the next scan of any record adopts it), frees the record for
 * reuse.  Owner only; r must not be used afterwards. */
void lf_hp_release(lf_hp_rec_t *r);

/* Publish p in slot i (seq_cst).  The caller must re-check that p is still
 * reachable before it dereferences p (or use lf_hp_protect).  Owner only. */
void lf_hp_set(lf_hp_rec_t *r, int i, const void *p);

/* Withdraw slot i (release: the owner's reads of the node happen before
 * any free that the scan then allows).  Owner only. */
void lf_hp_clear(lf_hp_rec_t *r, int i);

/* Load *src, publish it in slot i, reload until the value is stable;
 * returns the protected pointer (NULL is returned and published as is).
 * Owner only; *src may change concurrently. */
void *lf_hp_protect(lf_hp_rec_t *r, int i, void *const *src);

/* Hand over a node that is no longer reachable from shared memory; it is
 * freed by a later scan.  Scans when r holds max(LF_HP_MIN_THRESHOLD,
 * LF_HP_SCAN_FACTOR x LF_HP_PER_THREAD x lf_hp_active) nodes.  Owner
 * only. */
void lf_hp_retire(lf_hp_rec_t *r, lf_hp_node_t *node);

/* Adopt the orphans, snapshot every published hazard, free each retired
 * node of r that no hazard covers; returns the number freed.  Owner only;
 * concurrent with everything on other records. */
size_t lf_hp_scan(lf_hp_rec_t *r);

/* Retired but not yet freed, over all records and orphans.  Relaxed
 * counters: exact only when no retire, scan or release is running. */
uint64_t lf_hp_pending(lf_hp_domain_t *d);

/* Records mapped so far (never decreases). */
uint64_t lf_hp_records(lf_hp_domain_t *d);

/* Records acquired and not yet released (relaxed: a snapshot). */
uint64_t lf_hp_active(lf_hp_domain_t *d);

#endif
