/*
 * rag_pool — the process's one pool of worker threads, and a bounded
 * parallel for-loop on it: fn(ctx, i) for i in [0, n) on up to `threads`
 * threads, the caller's among them. S3 fan-out (s3_parallel, hence every
 * batch of GETs a load or a query makes), parsing and embedding all run
 * their loops here, so a query no longer creates threads.
 *
 * Invariants:
 *  1. Workers are created on demand, never per call: a loop that wants
 *     more helpers than are idle adds workers, up to RAG_POOL_MAX in all,
 *     and they stay until rag_pool_stop(). The pool starts by itself at the
 *     first loop that wants a helper.
 *  2. The caller always works on its own loop, so a loop finishes even when
 *     every worker is busy elsewhere, and loops may nest (a task may run a
 *     loop of its own) without deadlock.
 *  3. rag_parallel_for() returns after every task has run and no worker
 *     touches its loop any more; tasks run even after one failed.
 *  4. Nothing here changes the thread counts of OpenBLAS or OpenMP: the
 *     binary sets those once, at start (src/cli/main.c).
 */
#ifndef RAG_POOL_H
#define RAG_POOL_H

#include <stddef.h>

#include "rag_err.h"

#define RAG_POOL_MAX 256

typedef rag_rc (*rag_task_fn)(void *ctx, size_t i);

/* Runs every task even after a failure; returns the first non-OK code (by
 * time of failure). threads < 2 or n < 2: on the caller's thread alone. */
rag_rc rag_parallel_for(size_t n, int threads, rag_task_fn fn, void *ctx);

/* Workers created so far (for tests and /metrics-style reports). */
int rag_pool_threads(void);

/*
 * Stop and join every worker (at exit, so leak checkers see no live
 * thread). No loop may be running; a later loop starts the pool again.
 */
void rag_pool_stop(void);

/* Online CPUs (at least 1). */
int rag_cpu_count(void);

#endif
