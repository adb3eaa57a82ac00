/*
 * server — the query server over HTTP (on http.h: libmicrohttpd, a thread
 * pool).
 *
 *   POST /v1/query   {"q": "...", "k": 5, "retriever": "dense"} -> answer + storage trace
 *   GET  /v1/status  mode, version, counts, resident bytes, load cost
 *   POST /v1/mode    {"mode": "pointer"} -> the index served in another backing
 *                    mode (see "Mode switches" below)
 *   GET  /healthz    "ok" once an index is loaded
 *   GET  /metrics    Prometheus text: storage per stage and kind, query latency
 *                    histogram, cache hits and misses, index version
 *   GET  /v1/map     the live storage map's figures (map.h), same counters
 *   GET  /           the live storage map page (page.h); static, so public
 *
 * Each server has a name, its replica: query.replica, or "<hostname>:<port>"
 * (the port bound) when that is empty; it is fixed at start. Every reply
 * says "X-Ragmap-Replica: NAME", and the answers of /v1/query and the
 * documents of /v1/status and /v1/map carry "replica": NAME besides their
 * "index_version", so a client behind a load balancer knows which replica
 * answered and with which index version.
 *
 * Mode switches: POST /v1/mode is a reload (server_start_after() with the
 * mode asked for, then server_stop() of this server), made by the owner of
 * the server — the thread that started it — through the server_mode_hook
 * given at start; the handler waits for the new server to serve and for
 * this one to stop accepting (http_draining(): a request sent after the
 * answer on a new connection, or on the switch's own, reaches the new mode;
 * one on another connection kept alive to this server may still be
 * answered here, in the old mode, while it stops), then answers {"mode", "previous_mode", "index_version",
 * "previous_index_version", "switch_ms", "changed", "replica"}. The new
 * server loads the newest committed version: the one served, unless a newer
 * one was committed since the last poll (then the switch picks it up as a
 * reload would). Asking for the mode already served changes nothing (200,
 * "changed": false). 400 for a body that is not {"mode": MODE} (naming the
 * valid modes, or the unknown field), 409 while another switch or reload is
 * under way, 501 without a hook, and the owner's error otherwise (the old
 * server goes on serving). It needs the bearer token as /v1/query does.
 *
 * Invariants:
 *  1. Each query runs against one qindex it holds a reference to; a hot
 *     reload swaps the current pointer under the lock, so an answer never
 *     mixes versions and in-flight queries finish on the old one.
 *  2. A request is answered with a complete result or an error status with
 *     a JSON {"error": "..."} — never a partial result.
 *  3. Secrets (the bearer token, S3 credentials) are never echoed.
 *  4. A server replaced by server_start_after() + server_stop() of the old
 *     one refuses no connection and answers every request (http.h
 *     invariants 4 and 5): the two share the listening socket.
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

/*
 * The owner's side of POST /v1/mode (see the top). on_mode is called on a
 * handler thread of the server with the mode asked for (never the mode
 * served); it must have the thread that started the server run
 * server_start_after(this server, ..., mode, ...) and return once the new
 * server serves, or failed, but NOT wait for this server's server_stop():
 * that waits for this very handler. OUT: *version, the version the new
 * server loaded. RAG_ECONFLICT when a switch or reload is under way (409),
 * RAG_ECANCELED when the server is stopping (503), else the start's error
 * (500; err says why). ctx is the hook's, borrowed for the server's life.
 */
typedef struct server_mode_hook {
	rag_rc (*on_mode)(void *ctx, qmode mode, int64_t *version, rag_error *err);
	void *ctx;
} server_mode_hook;

/*
 * Load the index (the load is measured) and start listening on cfg's
 * query.listen (or listen if not NULL). cfg's strings are borrowed: the
 * caller keeps cfg (not necessarily the struct, the strings it points to)
 * until server_stop(). RAG_ECONFIG for a bad address or query.replica,
 * RAG_EIO when the address cannot be bound, or the load's error.
 * hook (copied; NULL: POST /v1/mode answers 501) switches modes.
 */
rag_rc server_start(const rag_config *cfg, qmode mode, const char *listen,
		    const server_mode_hook *hook, rag_log *log, server **out, rag_error *err);

/*
 * A reload: start a server with cfg (the index loaded anew, its own
 * caches, counters and query log) on old's listening socket, next to old;
 * then server_stop(old), which lets old finish its requests while this one
 * takes the new ones. As server_start() otherwise (with old's mode hook);
 * old is not changed. From the thread that started old.
 */
rag_rc server_start_after(const server *old, const rag_config *cfg, qmode mode, rag_log *log,
			  server **out, rag_error *err);

/* The mode served, fixed at start. */
qmode server_mode(const server *s);

/* The index version served now (it changes with the reloads of new
 * versions); 0 before one is loaded. Any thread. */
int64_t server_index_version(server *s);

/* The port actually bound (useful with port 0). */
int server_port(const server *s);

/* The name it answers as (see the top). Borrowed; valid until server_stop(). */
const char *server_replica(const server *s);

/* Stop accepting connections, let those open finish (http.h invariant 4),
 * flush the query log, free. NULL is a no-op. */
void server_stop(server *s);

#endif
