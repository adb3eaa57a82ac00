/*
 * bench_int.h — what the bench tools share and nothing outside src/bench/
 * uses: notes and usage errors (bench.h invariants 1 and 2), the query
 * list, and the search helpers of make-index (nprobe tuning) and search
 * (the timings and recall), so both measure recall the same way.
 */
#ifndef BENCH_INT_H
#define BENCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "rag_err.h"
#include "s3.h"
#include "vindex.h"

/* "ragmap: <message>" on env->errs: a note, the run goes on. */
void bench_note(const bench_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print usage on env->errs; RAG_EINVAL with an empty message (explained). */
rag_rc bench_usage_error(const bench_env *env, const char *usage, rag_error *err);

/* The configuration (env->load_config, from env->config_path) and an S3
 * client for it. On success the caller owns both. */
rag_rc bench_open_s3(bench_env *env, rag_config *cfg, s3_client **out, rag_error *err);

/*
 * Queries: one per non-empty line of path, '#' starting a comment line; a
 * built-in set on the sample corpus when path is NULL. *q is the caller's
 * (bench_free_queries()). RAG_EINVAL for a missing or empty file.
 */
rag_rc bench_read_queries(const char *path, char ***q, size_t *n, rag_error *err);
void bench_free_queries(char **q, size_t n);

int bench_cmp_dbl(const void *a, const void *b);

/* One segment as the search helpers see it: ragmap's vindex, and for bench
 * search also raw FAISS over the same index.faiss bytes (void *: a
 * FaissIndex, so this header does not pull FAISS's in). */
typedef struct bench_seg {
	void *faiss;
	vindex *vi;
	int nlist, nprobe;
	int64_t count;
} bench_seg;

/* Merge nseg lists of k (scores, ids) into the global top k ids (sorted by
 * score descending, then id). */
void bench_merge_top(const float *scores, const int64_t *ids, size_t nseg, int k, int64_t *out);

/* A query vector of all zeros (no known term): nothing to search, not
 * timed, no exact answer. */
bool bench_zero_query(const float *q, int dims);

/* |top & exact| / |exact| (k ids each, -1 = none); -1 when exact is empty. */
double bench_recall_of(const int64_t *top, const int64_t *exact, int k);

/*
 * Mean recall@k through vindex at nprobe (> 0: every segment, clamped to
 * its nlist; 0: each segment's own) of nq queries (qv, dims each) against
 * exact[nq*k]; queries with an empty exact answer do not count. *p50_ms:
 * the median time of one query over all segments, if not NULL.
 */
rag_rc bench_recall_at(const bench_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
		       int k, int nprobe, const int64_t *exact, double *recall, double *p50_ms,
		       rag_error *err);

/* Exact top k of nq queries through vindex (every list probed) into
 * exact[nq*k]; zero query vectors get -1s. */
rag_rc bench_exact_all(const bench_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
		       int k, int64_t *exact, rag_error *err);

#endif
