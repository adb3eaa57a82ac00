/*
 * rag_pool — a bounded parallel for-loop: fn(ctx, i) for i in [0, n) on up
 * to `threads` threads (the caller's thread is one of them). Used for
 * parallel transfers (s3_parallel) and for CPU work (parsing, embedding).
 */
#ifndef RAG_POOL_H
#define RAG_POOL_H

#include <stddef.h>

#include "rag_err.h"

typedef rag_rc (*rag_task_fn)(void *ctx, size_t i);

/* Runs every task even after a failure; returns the first non-OK code. */
rag_rc rag_parallel_for(size_t n, int threads, rag_task_fn fn, void *ctx);

/* Online CPUs (at least 1). */
int rag_cpu_count(void);

#endif
