/*
 * Every test hook point of the library (the names given to HL_HOOK in
 * src/ and lf/), in one list.  tests/lint/test_tree.sh holds it to the
 * sources: a point added or renamed there must be named here.
 */
#ifndef HL_TEST_HOOKS_H
#define HL_TEST_HOOKS_H

#define HOOK_SB_POP_READ "sb_pop_read"            /* holds the active slot, mid-pop */
#define HOOK_SB_PUSH_READ "sb_push_read"          /* mid-push of a batch into a superblock */
#define HOOK_TSTACK_POP_READ "tstack_pop_read"    /* mid-pop of a tagged stack */
#define HOOK_TSTACK_GUARD_BEFORE "tstack_guard_before" /* before the hazard is published */
#define HOOK_TSTACK_GUARD_READ "tstack_guard_read" /* hazard published, partial-list pop */
#define HOOK_LARGE_CACHE_TAKEN "large_cache_taken" /* a cached mapping claimed, its tail not yet back */
#define HOOK_LARGE_REALLOC_MOVED "large_realloc_moved" /* block's pages moved, old entry not yet done with */
#define HOOK_LARGE_HEAP_CLAIMING "large_heap_claiming" /* first word of a page-heap run claimed, the rest not yet */
#define HOOK_BK_MEMFD_PUBLISH "bk_memfd_publish"  /* a memfd span mapped, not yet published */
#define HOOK_BK_FORK_SCANNED "bk_fork_scanned"    /* fork's prepare: the memfd spans scanned and held */
#define HOOK_BK_FORK_HOLD_NEW "bk_fork_hold_new"  /* a span made during fork, about to hold itself */
#define HOOK_LARGE_FREE_READ "large_free_read" /* a large block's word read, not yet tombstoned */
#define HOOK_LARGE_HELD "large_held"            /* a moved large block, not yet let go of */

#endif
