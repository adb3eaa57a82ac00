/*
 * qmap — the figures of the live storage map: GET /v1/map, drawn by the
 * page at GET / (page.h).
 *
 * The map is the RAG pipeline with every object-storage touchpoint
 * annotated. Its figures come from three places only, so that they are the
 * very counters /metrics prints:
 *  1. the server's S3 client counters by stage (s3_client_stats(), as in
 *     ragmap_storage_*_total) of the query server's stages (rag_stage.h);
 *  2. the server's query and cache counters (ragmap_queries_total,
 *     ragmap_query_duration_seconds, ragmap_cache_*);
 *  3. for the ingestion side, the manifest of the version being served:
 *     documents (= source objects read at ingestion), chunks, segments and
 *     the sizes of their objects (= bytes written). The manifest is read
 *     once per version under stage "query.map", a read the map shows too.
 *
 * Invariants:
 *  1. The query path's stages are the RAG_STAGE_QUERY stages of rag_stage.h's
 *     list (an unlisted label never is); per-query figures are their
 *     totals divided by the queries answered ok (the totals are in the JSON
 *     as well, so the page can show the same numbers as /metrics).
 *  2. Whether a mode touches storage per query is a property of the mode
 *     (its row in qmode.h's table), not of the traffic so far: the page
 *     draws the edge before the first query. The map lists every mode's
 *     row ("modes"), so the page names modes from the same table.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef QMAP_H
#define QMAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lru.h"
#include "qindex.h"

typedef struct qmap qmap;

/* A map reading the manifests of cfg's index through s3 (both borrowed,
 * must outlive the qmap). NULL when out of memory. Free with qmap_free(). */
qmap *qmap_new(s3_client *s3, const rag_config *cfg);
void qmap_free(qmap *m);  /* NULL ok */

#define QMAP_MAX_STAGES 64

/* One snapshot of the server's counters, filled in by the server. */
typedef struct qmap_counts {
	qindex_status status;
	s3_stage_stats stages[QMAP_MAX_STAGES];
	size_t nstages;
	uint64_t queries_ok, queries_bad, queries_failed, unauthorized;
	double latency_sum_s;   /* ragmap_query_duration_seconds_sum */
	/* of queries_ok: those that read storage on the query path (cold) and
	 * those answered from RAM and caches alone (warm) */
	uint64_t cold_n, warm_n;
	double cold_sum_s, warm_sum_s;
	bool has_text_cache, has_list_cache;
	lru_stats text_cache, list_cache;
} qmap_counts;

/*
 * Make sure the ingestion figures of version are known: the first call for
 * a version GETs its manifest (stage "query.map"); later calls return at
 * once. Call before taking the counters so the snapshot includes the read.
 * On failure the map still answers, with the error in its "ingestion".
 */
rag_rc qmap_prepare(qmap *m, int64_t version, rag_error *err);

/* The map document for a snapshot. New reference; NULL when out of memory. */
json_t *qmap_json(qmap *m, const qmap_counts *c);


/*
 * {"per_million_queries", "last_ingest_pass", "storage_per_month",
 * "stored_bytes", and the prices}: dollars at the [cost] prices, as in
 * qmap_json()'s "cost" (GET /v1/status shows it too). New reference.
 */
json_t *qmap_cost(qmap *m, const qmap_counts *c);

#endif
