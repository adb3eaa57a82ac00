/*
 * endpoint — the ingestion daemon's HTTP endpoint (`ragmap daemon --listen`):
 *
 *   POST /v1/events   an S3 event notification body (events.h): its keys
 *                     are queued for a pass within ingest.event_window_ms
 *   GET  /v1/status   what the daemon is doing: its scope, the version it
 *                     last committed or followed, the last pass, the
 *                     failed objects, and the event counters
 *   GET  /healthz     "ok"
 *
 * Invariants:
 *  1. With ingest.token set, every /v1/ path needs "Authorization: Bearer <token>"
 *     or, for stores that cannot send headers with a notification (an RGW
 *     topic's push-endpoint is a bare URL), "?token=<token>" on
 *     /v1/events. A request without it is refused (401) and queues nothing.
 *  2. /v1/events answers 200 with what the body did ({"records", "queued",
 *     "duplicates", "ignored"}) only once its keys are queued; a malformed
 *     body gets 400 naming the record and field (events.h, invariant 1).
 *  3. The status is a snapshot the daemon's loop publishes after each pass;
 *     a handler never touches the pipeline's state.
 */
#ifndef INGEST_ENDPOINT_H
#define INGEST_ENDPOINT_H

#include <jansson.h>

#include "events.h"
#include "rag_config.h"
#include "rag_log.h"

typedef struct ingest_endpoint ingest_endpoint;

/* Listen on `listen` (HOST:PORT) with cfg's ingest.token; events go to q,
 * which must outlive the endpoint. */
rag_rc endpoint_start(const rag_config *cfg, const char *listen, evq *q, rag_log *log,
		      ingest_endpoint **out, rag_error *err);

/* The port actually bound. */
int endpoint_port(const ingest_endpoint *e);

/* A new token (the configuration was reloaded); "" or NULL: none. */
rag_rc endpoint_set_token(ingest_endpoint *e, const char *token, rag_error *err);

/* Replace the status snapshot (takes the reference; invariant 3). */
void endpoint_set_status(ingest_endpoint *e, json_t *status);

/* Stop listening; in-flight requests finish first. NULL is a no-op. */
void endpoint_stop(ingest_endpoint *e);

#endif
