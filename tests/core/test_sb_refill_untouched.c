/*
 * A refill reads no user memory: the free state of a superblock is its
 * free bits and its anchor's count, so the owner takes blocks freed into
 * it, and never handed out blocks past its bump, without touching them.
 * Shown with the pages of those blocks made PROT_NONE: a refill that read
 * a link or a mark there would fault.  Each scenario runs in a child
 * process, so that a fault fails one test.
 */
#ifndef HL_TEST_HOOKS
#define HL_TEST_HOOKS 1
#endif
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "tap.h"

#define PAGES_PER_SB (HL_SLOT_SIZE / HL_PAGE)

static unsigned cls;

/* Pop every block of d (ours) in batches; returns how many. */
static unsigned pop_all(hl_desc_t *d, void **out, unsigned max)
{
	unsigned n = 0;
	bool full = false;
	while (!full && n < max)
		n += sb_test_pop(d, out + n, HL_MAX_BATCH, &full);
	return n;
}

/* Blocks never handed out: the whole span PROT_NONE, every block popped. */
static int scenario_bump(void)
{
	const sc_info_t *ci = &sc_table[cls];
	hl_desc_t *d = sb_test_new(0, cls);
	static void *out[HL_SLOT_SIZE / 16];
	if (mprotect(d->base, HL_SLOT_SIZE, PROT_NONE))
		return 3;
	unsigned n = pop_all(d, out, ci->maxcount);
	mprotect(d->base, HL_SLOT_SIZE, PROT_READ | PROT_WRITE);
	int bad = n != ci->maxcount;
	for (unsigned i = 0; i < n; i++)
		if (out[i] != d->base + (size_t)i * ci->size)
			bad = 1;
	if (bad)
		fprintf(stderr, "popped %u of %u, not in bump order\n", n, ci->maxcount);
	return bad;
}

/* Blocks freed into the superblock (not a cache), their pages then
 * PROT_NONE, popped again. */
static int scenario_freed(void)
{
	const sc_info_t *ci = &sc_table[cls];
	unsigned per_page = HL_PAGE / ci->size;
	hl_desc_t *d = sb_test_new(0, cls);
	static void *out[HL_SLOT_SIZE / 16];
	unsigned n = pop_all(d, out, ci->maxcount);
	if (n != ci->maxcount)
		return 3;
	memset(d->base, 0x5a, (size_t)n * ci->size);
	/* pages 2..5 freed whole, and a lone block of page 9 */
	void *v[5 * HL_MAX_BATCH];
	unsigned nf = 0;
	for (unsigned i = 2 * per_page; i < 6 * per_page; i++)
		v[nf++] = out[i];
	v[nf++] = out[9 * per_page + 3];
	sb_free_batch(cls, v, nf, "free");
	if (!sb_test_take(d))
		return 4;
	if (mprotect(d->base + 2 * HL_PAGE, 4 * HL_PAGE, PROT_NONE) ||
	    mprotect(d->base + 9 * HL_PAGE, HL_PAGE, PROT_NONE))
		return 3;
	static void *back[HL_SLOT_SIZE / 16];
	bool full = false;
	unsigned m = sb_test_pop(d, back, HL_MAX_BATCH, &full);
	m += sb_test_pop(d, back + m, HL_MAX_BATCH, &full);
	mprotect(d->base, HL_SLOT_SIZE, PROT_READ | PROT_WRITE);
	int bad = 0;
	if (m != nf || !full) {
		fprintf(stderr, "popped %u of %u freed blocks (full %d)\n", m, nf, full);
		bad = 1;
	}
	/* exactly the freed blocks, each once */
	for (unsigned i = 0; i < m; i++) {
		unsigned hits = 0;
		for (unsigned j = 0; j < nf; j++)
			hits += back[i] == v[j];
		for (unsigned j = 0; j < i; j++)
			hits += back[i] == back[j] ? 2 : 0;
		if (hits != 1) {
			fprintf(stderr, "block %p popped but not freed, or twice\n", back[i]);
			bad = 1;
		}
	}
	return bad;
}

static void run(int (*fn)(void), const char *name)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		diag("%s: child killed by signal %d", name, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		diag("%s: child exit status %d", name, WEXITSTATUS(st));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", name);
}

int main(void)
{
	plan(2);
	hl_free(hl_malloc(1));
	cls = sc_of(256);
	run(scenario_bump, "a refill hands out never-used blocks with the superblock PROT_NONE: none is read or written");
	run(scenario_freed, "a refill takes back blocks freed into the superblock with their pages PROT_NONE: exactly those, none read");
	return done_testing();
}
