/*
 * server — the query server over HTTP (libmicrohttpd, a thread pool).
 *
 *   POST /v1/query   {"q": "...", "k": 5, "retriever": "dense"} -> answer + storage trace
 *   GET  /v1/status  mode, version, counts, resident bytes, load cost
 *   GET  /healthz    "ok" once an index is loaded
 *   GET  /metrics    Prometheus text: storage per stage and kind, query latency
 *                    histogram, cache hits and misses, index version
 *   GET  /v1/map     the live storage map's figures (map.h), same counters
 *   GET  /           the live storage map page (page.h); static, so public
 *
 * Invariants:
 *  1. Each query runs against one qindex it holds a reference to; a hot
 *     reload swaps the current pointer under the lock, so an answer never
 *     mixes versions and in-flight queries finish on the old one.
 *  2. A request is answered with a complete result or an error status with
 *     a JSON {"error": "..."} — never a partial result.
 *  3. Secrets (the bearer token, S3 credentials) are never echoed.
 *
 * Threading: MHD's pool threads run the handlers (each query's work runs in
 * the pool thread that took the request); one more thread polls for the
 * newest committed version and builds it in the background; the query log has its own thread.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdint.h>

#include "qindex.h"

typedef struct server server;

/* Load the index (the load is measured) and start listening on cfg's
 * query.listen (or listen if not NULL). */
rag_rc server_start(const rag_config *cfg, qmode mode, const char *listen, rag_log *log,
		    server **out, rag_error *err);

/* The port actually bound (useful with port 0). */
int server_port(const server *s);

/* Stop listening, finish in-flight requests, flush the query log, free. */
void server_stop(server *s);

#endif
