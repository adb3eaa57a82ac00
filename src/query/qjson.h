/*
 * qjson — the JSON of the query API, shared by the HTTP server and
 * `ragmap query --json` so both print exactly the same document, but for
 * one field: the server adds "replica", the name of the replica that
 * answered (server.h); a local query is answered by none.
 */
#ifndef QJSON_H
#define QJSON_H

#include <jansson.h>

#include "qindex.h"

/* {"requests","bytes","ms","retries"} of one counter. New reference. */
json_t *qjson_counter(const s3_counter *c);

/* {"requests","bytes","ms","retries","by_kind":{kind:{...}}}, and with a
 * request log "wall_ms": the time spent waiting (overlaps counted once) */
json_t *qjson_trace(const s3_trace *t);

/*
 * Every logged request of t: {"op","key","range":[first,last]|null,"bytes",
 * "status","attempts","start_ms","ms"}, start_ms from t0 (rag_now_ns()).
 */
json_t *qjson_requests(const s3_trace *t, uint64_t t0);

/* {"bytes","max_bytes","entries","hits","misses"} of a cache. */
json_t *qjson_cache(const lru_stats *ls);

/*
 * The whole answer to one query. New reference; NULL with err set when a
 * hit cannot be encoded (never an answer with a hit left out).
 */
json_t *qjson_result(const qresult *r, const char *bucket, const char *query, int k,
		     rag_error *err);

/* The status of a loaded index. New reference. */
json_t *qjson_status(const qindex_status *st);

#endif
