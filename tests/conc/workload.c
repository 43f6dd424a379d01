/*
 * A plain malloc program for running heaplib under other tools (valgrind,
 * LD_PRELOAD): two threads, each a loop of malloc / realloc / free over
 * small and large sizes, checking that every block still holds what was
 * written into it.  Uses only the standard names: link it with libheaplib
 * or preload the library.
 *
 *     workload [--ops N]     N operations per thread (default 200000
 *                            times HEAPLIB_TEST_SCALE)
 *
 * Prints one summary line; exits 0 when every check held, 1 otherwise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 2
#define SLOTS 256

typedef struct slot {
	unsigned char *p;
	size_t size;
	unsigned char tag;
} slot_t;

typedef struct worker {
	unsigned seed;
	long ops;
	long failures;
	long mallocs, reallocs, frees;
	slot_t slot[SLOTS];
} worker_t;

static unsigned next(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* Mostly small, some up to 32 KiB, a few large (own mappings). */
static size_t pick_size(unsigned *seed)
{
	unsigned r = next(seed);
	switch (r % 100) {
	case 0:
		return 32769 + next(seed) % 200000;
	case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
		return 1025 + next(seed) % 31744;
	default:
		return next(seed) % 1025;
	}
}

static unsigned char byte_at(unsigned char tag, size_t i)
{
	return (unsigned char)(tag + i * 7u + (i >> 8));
}

/* Large blocks are checked with a stride, to keep valgrind runs short. */
static size_t stride(size_t n)
{
	return n <= 4096 ? 1 : 61;
}

static void write_pattern(slot_t *s, size_t from)
{
	for (size_t i = from; i < s->size; i++)
		s->p[i] = byte_at(s->tag, i);
}

static int holds_pattern(const slot_t *s, size_t n)
{
	size_t step = stride(n);
	for (size_t i = 0; i < n; i += step)
		if (s->p[i] != byte_at(s->tag, i))
			return 0;
	return n == 0 || s->p[n - 1] == byte_at(s->tag, n - 1);
}

static void *run(void *arg)
{
	worker_t *w = arg;
	for (long op = 0; op < w->ops; op++) {
		slot_t *s = &w->slot[next(&w->seed) % SLOTS];
		if (!s->p) {
			s->size = pick_size(&w->seed);
			s->tag = (unsigned char)next(&w->seed);
			s->p = malloc(s->size);
			w->mallocs++;
			if (!s->p) {
				w->failures++;
				continue;
			}
			write_pattern(s, 0);
			continue;
		}
		if (!holds_pattern(s, s->size))
			w->failures++;
		if (next(&w->seed) % 3 == 0) {
			size_t n = pick_size(&w->seed), keep = n < s->size ? n : s->size;
			unsigned char *q = realloc(s->p, n ? n : 1);
			w->reallocs++;
			if (!q) {
				w->failures++;
				continue;
			}
			s->p = q;
			if (!holds_pattern(s, keep))
				w->failures++;
			s->size = n;
			write_pattern(s, keep);
		} else {
			free(s->p);
			w->frees++;
			s->p = NULL;
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		if (w->slot[i].p && !holds_pattern(&w->slot[i], w->slot[i].size))
			w->failures++;
		free(w->slot[i].p);
		w->slot[i].p = NULL;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *scale_s = getenv("HEAPLIB_TEST_SCALE");
	double scale = scale_s ? atof(scale_s) : 1.0;
	long ops = (long)(200000 * (scale > 0 ? scale : 1.0));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
			ops = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--ops N]\n", argv[0]);
			return 2;
		}
	}

	static worker_t w[THREADS];
	pthread_t th[THREADS];
	int started[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i].seed = 0x9e37u * (unsigned)(i + 1);
		w[i].ops = ops;
		started[i] = pthread_create(&th[i], NULL, run, &w[i]) == 0;
	}
	long failures = 0, mallocs = 0, reallocs = 0, frees = 0;
	for (int i = 0; i < THREADS; i++) {
		if (!started[i]) {
			failures++;
			continue;
		}
		pthread_join(th[i], NULL);
		failures += w[i].failures;
		mallocs += w[i].mallocs;
		reallocs += w[i].reallocs;
		frees += w[i].frees;
	}
	printf("workload: %d threads x %ld ops: %ld malloc, %ld realloc, %ld free, %ld check failures\n",
	       THREADS, ops, mallocs, reallocs, frees, failures);
	return failures ? 1 : 0;
}
