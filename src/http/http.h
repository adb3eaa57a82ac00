/*
 * http — the one HTTP front of ragmap's servers (libmicrohttpd underneath):
 * the query server (server.h) and the ingestion daemon's event endpoint
 * (`ragmap daemon --listen`) are both built on it.
 *
 * It owns what every endpoint shares: parsing HOST:PORT, collecting a
 * request body up to a limit, the bearer-token check, and JSON and text
 * replies. Routing stays with the caller: one handler sees every request
 * once its body is complete.
 *
 * Invariants:
 *  1. The handler is called once per request, with the whole body (or with
 *     too_large set, the body truncated, when it exceeded max_body: the
 *     handler answers 413).
 *  2. Every reply made through http_send_error() is JSON
 *     {"error": "...", "status": N}, even when the message is not UTF-8.
 *  3. http_token_ok() compares in constant time over the expected token's
 *     length, and an empty expected token admits everyone.
 *  4. http_stop() returns after in-flight handlers have returned.
 *
 * Threading: handlers run on a pool of `threads` threads (MHD's).
 */
#ifndef RAG_HTTP_H
#define RAG_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "rag_err.h"

typedef struct http_server http_server;

typedef struct http_request {
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	const char *body;   /* NUL-terminated; "" when none */
	size_t len;
	bool too_large;     /* the body went over max_body (invariant 1) */
} http_request;

typedef enum MHD_Result (*http_handler)(void *ctx, const http_request *rq);

typedef struct http_options {
	const char *listen;        /* HOST:PORT (IPv4 or "localhost"); port 0: any free */
	const char *what;          /* names the setting in errors, e.g. "query.listen" */
	unsigned threads;          /* handler threads */
	unsigned timeout_s;        /* idle connection timeout */
	uint64_t max_body;         /* bytes */
} http_options;

/* Start listening. RAG_ECONFIG for a bad address (naming opts->what),
 * RAG_EIO when the address cannot be bound. */
rag_rc http_start(const http_options *opts, http_handler h, void *ctx, http_server **out,
		  rag_error *err);

/* The port actually bound (useful with port 0). */
int http_port(const http_server *s);

/* Stop listening and wait for in-flight handlers (invariant 4). NULL is a no-op. */
void http_stop(http_server *s);

/* Replies. http_send_text() takes ownership of body (malloc'd). */
enum MHD_Result http_send_text(struct MHD_Connection *c, unsigned status, const char *type,
			       char *body, size_t len);
/* Takes the reference to j. */
enum MHD_Result http_send_json(struct MHD_Connection *c, unsigned status, json_t *j);
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned status, const char *msg);

/* "Authorization: Bearer <want>" (invariant 3). */
bool http_token_ok(struct MHD_Connection *c, const char *want);

#endif
