/*
 * The wait-free queue (lf/wfq.h): liburcu's out-of-line functions, with
 * the hand-off told to ThreadSanitizer.
 */
#include "wfq.h"

#if defined(__SANITIZE_THREAD__)
#define LF_WFQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LF_WFQ_TSAN 1
#endif
#endif

#ifdef LF_WFQ_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define wfq_release(p) __tsan_release(p)
#define wfq_acquire(p) __tsan_acquire(p)
#else
#define wfq_release(p) ((void)(p))
#define wfq_acquire(p) ((void)(p))
#endif

void lf_wfq_init(lf_wfq_t *q)
{
	__cds_wfcq_init(&q->head, &q->tail);
}

void lf_wfq_node_init(lf_wfq_node_t *n)
{
	cds_wfcq_node_init(n);
}

void lf_wfq_enqueue(lf_wfq_t *q, lf_wfq_node_t *n)
{
	wfq_release(n);
	cds_wfcq_enqueue(&q->head, &q->tail, n);
}

lf_wfq_node_t *lf_wfq_dequeue(lf_wfq_t *q)
{
	lf_wfq_node_t *n = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
	if (n == CDS_WFCQ_WOULDBLOCK || !n)
		return NULL;
	wfq_acquire(n);
	return n;
}

bool lf_wfq_empty(lf_wfq_t *q)
{
	return cds_wfcq_empty(&q->head, &q->tail);
}
