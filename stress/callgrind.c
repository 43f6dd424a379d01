/*
 * heaplib-callgrind -- N malloc/free pairs of small sizes, single thread, for
 * counting the allocator's fast path under `valgrind --tool=callgrind`.
 *
 *     cc -O2 -fno-builtin -o heaplib-callgrind stress/callgrind.c
 *     LD_PRELOAD=libX.so valgrind --tool=callgrind ./heaplib-callgrind N SIZES
 *     ./heaplib-callgrind N SIZES loop     (the same loop without the calls)
 *
 * SIZES is "mixed" (16..512 B in steps of 16, 32 size classes in turn: each
 * class is touched once every 32 pairs, which keeps an allocator's per-class
 * pages on the edge of empty) or one size in bytes (the purest fast path).
 *
 * scripts/bench.sh runs it with N and 2N and takes the difference divided by
 * N, so start-up (loader, allocator initialization) cancels; the "loop" run
 * measures what the loop itself costs per iteration, subtracted likewise.
 * Not linked to heaplib: the allocator comes from LD_PRELOAD.  Callgrind does
 * not replace malloc (only memcheck-like tools do), so the preloaded
 * allocator is the one counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "mixed": 16..512 B in steps of 16, in a scrambled order (i*13 mod 32). */
#define NSIZES 32

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "loop") != 0)) {
        fprintf(stderr, "usage: heaplib-callgrind N mixed|BYTES [loop]\n");
        return 2;
    }
    unsigned long n = strtoul(argv[1], NULL, 10);
    int mixed = strcmp(argv[2], "mixed") == 0;
    size_t fixed = mixed ? 0 : strtoul(argv[2], NULL, 10);
    int loop_only = argc == 4;
    size_t sizes[NSIZES];
    for (unsigned i = 0; i < NSIZES; i++)
        sizes[i] = mixed ? 16 * (1 + (i * 13) % NSIZES) : fixed;

    /* volatile: the compiler may not drop a malloc/free pair or the loop */
    void *volatile sink;
    for (unsigned long i = 0; i < n; i++) {
        size_t sz = sizes[i % NSIZES];
        if (loop_only) {
            sink = (void *)sz;
            continue;
        }
        char *p = malloc(sz);
        if (!p) {
            fprintf(stderr, "heaplib-callgrind: malloc(%zu) returned NULL\n", sz);
            return 1;
        }
        p[0] = (char)i;
        sink = p;
        free(sink);
    }
    (void)sink;
    return 0;
}
