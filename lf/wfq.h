/*
 * A wait-free queue of many producers and one consumer: liburcu's
 * wfcqueue, called out of line (liburcu-common), behind names of ours.
 *
 * Why a wrapper: liburcu 0.13 has no ThreadSanitizer annotations and its
 * library is not instrumented, so TSan would see a node written by its
 * producer and read by its consumer with nothing ordering them.  Each
 * hand-off is told to TSan here: a release on the node before it is
 * enqueued, an acquire on it after it is dequeued.  Outside TSan builds
 * the annotations are nothing.
 *
 * No function here allocates memory or waits: enqueue is wait-free, and
 * the consumer's dequeue never blocks (an enqueue caught half-way, its
 * producer stopped between its two steps, makes the queue look empty
 * past that node until the producer goes on; nothing else waits for it).
 */
#ifndef HL_LF_WFQ_H
#define HL_LF_WFQ_H

#include <stdbool.h>
#include <urcu/wfcqueue.h>

typedef struct lf_wfq {
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
} lf_wfq_t;

typedef struct cds_wfcq_node lf_wfq_node_t;

void lf_wfq_init(lf_wfq_t *q);
void lf_wfq_node_init(lf_wfq_node_t *n);
/* Any thread: wait-free. */
void lf_wfq_enqueue(lf_wfq_t *q, lf_wfq_node_t *n);
/* The one consumer: the oldest node, or NULL when the queue is empty (or
 * its next node is still being enqueued). */
lf_wfq_node_t *lf_wfq_dequeue(lf_wfq_t *q);
bool lf_wfq_empty(lf_wfq_t *q);

#endif
