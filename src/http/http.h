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
 *     handler answers 413). A body that cannot be held for want of memory
 *     is answered 500 here, without calling the handler.
 *  2. Every reply made through http_send_error() is JSON
 *     {"error": "...", "status": N}, even when the message is not UTF-8.
 *  3. http_token_ok() compares in constant time over the expected token's
 *     length, and an empty expected token admits everyone.
 *  4. http_stop() stops accepting at once, lets the requests already on
 *     their way finish (those of connections accepted, not yet read too;
 *     their replies now say "Connection: close"), at most timeout_s + 1
 *     seconds, then closes every connection (idle kept-alive ones too);
 *     it returns after in-flight handlers have returned.
 *  5. A server can be replaced without refusing or resetting a
 *     connection: start the new one sharing the old one's listening socket
 *     (http_options.share), then http_stop() the old one; the socket stays
 *     open and listening as long as one server holds it. (The socket also
 *     has SO_REUSEPORT, as MHD_OPTION_LISTENING_ADDRESS_REUSE would set.)
 *  6. Every reply made through http_send_*() says "Cache-Control: no-store"
 *     and, when the server has a name, "X-Ragmap-Replica: NAME". The name
 *     is fixed before the first request is accepted.
 *
 * Threading: handlers run on a pool of `threads` threads (MHD's); the
 * replies are made on the handler's thread. http_start() and http_stop()
 * of servers that share a socket are called from one thread, never a
 * handler.
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
	const char *name;   /* the server's name (http_name()), or NULL */
} http_request;

typedef enum MHD_Result (*http_handler)(void *ctx, const http_request *rq);

typedef struct http_options {
	const char *listen;        /* HOST:PORT (IPv4 or "localhost"); port 0: any free */
	/* Not NULL: serve on this running server's listening socket instead
	 * of binding listen (invariant 5); it must outlive http_start(). */
	const http_server *share;
	const char *what;          /* names the setting in errors, e.g. "query.listen" */
	unsigned threads;          /* handler threads */
	unsigned timeout_s;        /* idle connection timeout */
	uint64_t max_body;         /* bytes */
	/* NULL: the server has no name. "": "<hostname>:<port bound>". Else
	 * the name itself: UTF-8 with no control character (RAG_ECONFIG). */
	const char *name;
	const char *name_what;     /* names its setting in errors, e.g. "query.replica" */
} http_options;

/* Start listening. RAG_ECONFIG for a bad address (naming opts->what) or
 * name (naming opts->name_what), RAG_EIO when the address cannot be bound
 * (naming it and why) or the server cannot start. */
rag_rc http_start(const http_options *opts, http_handler h, void *ctx, http_server **out,
		  rag_error *err);

/* The port actually bound (useful with port 0). */
int http_port(const http_server *s);

/* The server's name (opts->name, resolved), or NULL when it has none.
 * Borrowed; valid until http_stop(). */
const char *http_name(const http_server *s);

/* Stop accepting, let open connections finish, stop (invariant 4). NULL is
 * a no-op. */
void http_stop(http_server *s);

/* Whether http_stop() has begun and no longer accepts: from then on this
 * server's replies say "Connection: close". Any thread (a handler too). */
bool http_draining(const http_server *s);

/* Replies. http_send_text() takes ownership of body (malloc'd). */
enum MHD_Result http_send_text(struct MHD_Connection *c, unsigned status, const char *type,
			       char *body, size_t len);
/* Takes the reference to j. */
enum MHD_Result http_send_json(struct MHD_Connection *c, unsigned status, json_t *j);
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned status, const char *msg);

/* "Authorization: Bearer <want>" or, with query_param, "?<query_param>=<want>"
 * for senders that cannot set a header (invariant 3). */
bool http_token_ok(struct MHD_Connection *c, const char *want, const char *query_param);

#endif
