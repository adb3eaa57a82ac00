/*
 * qindex — one index version loaded for querying in one backing mode.
 *
 * What each backing mode holds, loads and reads per query is the table in
 * qmode.h; qindex asks it and never compares modes itself.
 *
 * Invariants:
 *  1. A qindex is immutable after qindex_open(); queries may run on it from
 *     any number of threads. It is reference counted: a hot reload swaps in
 *     a new one while in-flight queries finish on the old one.
 *  2. The dense results of memory, pointer and cached are identical (same
 *     vectors, same FAISS search); object mode scans the same lists an
 *     in-RAM IVF search with the segment's nprobe would, so its results
 *     are identical too. Ties are broken by chunk id.
 *  3. Every storage request a query makes is counted in its own trace
 *     (qresult.trace): traces are exact under concurrency.
 *  4. Tombstoned chunks are never returned.
 */
#ifndef QINDEX_H
#define QINDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lru.h"
#include "manifest.h"
#include "qmode.h"
#include "rag_config.h"
#include "rag_log.h"
#include "s3.h"

typedef enum { QRET_DENSE, QRET_BM25, QRET_HYBRID } qretriever;

const char *qretriever_name(qretriever r);
bool qretriever_parse(const char *s, qretriever *out);

typedef struct qindex qindex;

/*
 * Load the newest committed version (commit_read_newest(); storage under
 * stage "query.load"). caches is borrowed and must outlive the qindex. *out
 * has one reference. RAG_ENOTFOUND when nothing is committed yet.
 */
rag_rc qindex_open(s3_client *s3, const rag_config *cfg, qmode mode, const qcaches *caches,
		   rag_log *log, qindex **out, rag_error *err);
void qindex_retain(qindex *q);
void qindex_release(qindex *q);   /* frees at the last reference; NULL ok */

/* The newest committed version now (GET LATEST, the hint, and a HEAD per
 * newer manifest plus the absent one, under stage), 0 if none. */
rag_rc qindex_latest_version(s3_client *s3, const rag_config *cfg, const char *stage,
			     int64_t *version, rag_error *err);

typedef struct qindex_status {
	qmode mode;
	int64_t version;
	char model_version[40];
	char model_name[64];
	int64_t documents, chunks, segments, tombstone_ranges;
	uint64_t vector_bytes;   /* FAISS indexes, or centroids in object mode */
	uint64_t text_bytes;     /* chunk records held in RAM */
	uint64_t pointer_bytes;  /* pointer tables, list offsets */
	double load_ms;
	s3_trace load_trace;     /* what loading cost (counters; the requests:
	                          * qindex_load_trace()) */
	uint64_t load_start_ns;  /* rag_now_ns() when the load began */
	int64_t loaded_at;       /* wall clock */
} qindex_status;

void qindex_status_get(const qindex *q, qindex_status *st);
/* The load's trace with its request log; borrowed, valid while q is held. */
const s3_trace *qindex_load_trace(const qindex *q);
int64_t qindex_status_version(const qindex *q);

/* The manifest of the version loaded (valid while q is held). */
const manifest *qindex_manifest(const qindex *q);

typedef struct qhit {
	int rank;
	float score;
	int64_t chunk_id;
	char *key;
	int ordinal;
	uint64_t off, len;
	char *heading;
	char *text;
	size_t text_len;
	/* citation (chunk.h invariant 5): PDF pages (0: none) and the source
	 * object's bytes [src_off, src_end) (src_end 0: none) */
	int page, page_end;
	uint64_t src_off, src_end;
	/* "explain": where it stood in each retriever's candidates (1-based
	 * rank; 0: not among them) and that retriever's score */
	int dense_rank, bm25_rank;
	float dense_score, bm25_score;
} qhit;

typedef struct qresult {
	qhit *hits;
	int n;
	s3_trace trace;          /* storage this query used, request by request */
	uint64_t start_ns;       /* rag_now_ns() when the query began */
	double storage_wall_ms;  /* waiting on storage (overlapping requests once) */
	double cost_usd;         /* the trace at the [cost] prices */
	bool full_trace;         /* set by the caller: answer with every request */
	bool explain;            /* set by the caller: answer with each hit's parts */
	char fusion[16];         /* hybrid: "zscore" or "rrf" */
	double embed_ms, search_ms, fetch_ms, total_ms;
	uint64_t cache_hits, cache_misses;
	int64_t version;
	char model_version[40];
	qmode mode;
	qretriever retriever;
	uint64_t deadline_ns;    /* the query's storage reads end by then (0: no limit) */
} qresult;

/*
 * Answer one query: the k best chunks (1 <= k <= 1000). Text must be valid
 * UTF-8 (the caller checks). RAG_ENOTFOUND never; storage failures give
 * their code with a message naming the object — never a partial result.
 */
rag_rc qindex_query(qindex *q, const char *text, size_t len, int k, qretriever r,
		    qresult *out, rag_error *err);

/*
 * The same with a deadline (rag_now_ns() clock, 0: none): the query's list
 * and text reads, retries included, stop there and the query fails with
 * RAG_ETIMEOUT. (A first bm25 query in a storage-backed mode also fetches
 * the catalog once for all; that load is not held to one query's deadline.)
 */
rag_rc qindex_query_by(qindex *q, const char *text, size_t len, int k, qretriever r,
		       uint64_t deadline_ns, qresult *out, rag_error *err);

/*
 * Which chunks a query may return: those of live documents whose source key
 * starts with prefix and whose type (as the catalog records it: "text",
 * "markdown", "html", "pdf") is one of types. Both optional.
 */
#define QFILTER_MAX_TYPES 4
typedef struct qfilter {
	char *prefix;                          /* NULL or "": any key */
	const char *types[QFILTER_MAX_TYPES];  /* static names, no duplicates */
	int ntypes;                            /* 0: any type */
} qfilter;

/*
 * qindex_query_by() restricted by f (NULL or empty: no filter). The chunk
 * set comes from the version's catalog snapshot (fetched on first use, as
 * for bm25). Whenever k matching chunks are reachable, k come back, in the
 * unfiltered order restricted to the matching chunks: dense and bm25 widen
 * their search until k match or the candidates run out (object mode then
 * scans every member of its probed lists, so IVF segments still answer
 * only from the lists an unfiltered query probes); hybrid fuses the full
 * dense and bm25 rankings (depth: every chunk, not query.hybrid_depth) and
 * then restricts, so a filtered hybrid query costs a scan of the index.
 */
rag_rc qindex_query_filtered(qindex *q, const char *text, size_t len, int k, qretriever r,
			     const qfilter *f, uint64_t deadline_ns, qresult *out,
			     rag_error *err);
void qresult_release(qresult *r);

/* ---- warm-up ---- */

/* How far a warm-up got; read from any thread while it runs. */
typedef struct qwarm_progress {
	_Atomic uint64_t planned_items, planned_bytes;  /* what fits the budget */
	_Atomic uint64_t items, bytes;                  /* preloaded so far */
} qwarm_progress;

/* What the query log says queries read (qlog_hot_chunks()); all optional. */
typedef struct qwarm_hints {
	const int64_t *chunks;          /* chunk ids, most returned first */
	size_t nchunks;
	const char *const *questions;   /* logged dense and hybrid questions */
	size_t nquestions;
} qwarm_hints;

/*
 * Preload into q's caches what its mode reads per query, at most budget
 * bytes, under stage "query.warm" (h may be NULL):
 *  - a list_cache mode: IVF lists, those the logged questions probe most
 *    first (each question embedded and probed as a query would be), then
 *    the others in manifest order; every list that fits the budget, fetched
 *    as runs of adjacent lists in ranged GETs of up to 8 MiB and cut into
 *    the lists queries look up;
 *  - a text_cache mode: the records of h->chunks in that order (ids not in
 *    this version or tombstoned are skipped) while they fit.
 * Other modes have nothing to preload (planned 0, RAG_OK). The plan is set
 * before the first request; *stop (may be NULL) is polled between requests
 * and ends the warm-up early with RAG_ECANCELED. The caches stay bounded
 * by their own size: a budget above it evicts what was preloaded first.
 */
rag_rc qindex_warm(qindex *q, const qwarm_hints *h, uint64_t budget, qwarm_progress *p,
		   const _Atomic bool *stop, rag_error *err);

#endif
