/*
 * endpoint.c — see endpoint.h.
 */
#include "endpoint.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "rag_util.h"

struct ingest_endpoint {
	http_server *http;
	evq *q;
	rag_log *log;
	pthread_mutex_t lock;    /* guards token, status, unauthorized */
	char *token;             /* "" = none */
	json_t *status;
	uint64_t unauthorized;
};

static enum MHD_Result handle_events(ingest_endpoint *e, const http_request *rq)
{
	evq_posted p;
	rag_error err = {0};

	if (strcmp(rq->method, "POST") != 0)
		return http_send_error(rq->conn, 405, "use POST for /v1/events");
	if (rq->too_large)
		return http_send_error(rq->conn, 413, "event body over the size limit");
	if (evq_post(e->q, rq->body, rq->len, &p, &err)) {
		RAG_WARN(e->log, "POST /v1/events refused: %s", err.msg);
		return http_send_error(rq->conn, err.rc == RAG_ENOMEM ? 500 : 400, err.msg);
	}
	if (p.queued)
		RAG_DEBUG(e->log, "events: %zu records, %zu keys queued", p.records, p.queued);
	return http_send_json(rq->conn, 200,
			      json_pack("{s:I, s:I, s:I, s:I}", "records", (json_int_t)p.records,
					"queued", (json_int_t)p.queued, "duplicates",
					(json_int_t)p.duplicates, "ignored", (json_int_t)p.ignored));
}

static json_t *events_json(ingest_endpoint *e, uint64_t unauthorized)
{
	evq_stats st;

	evq_get_stats(e->q, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "posts",
			 (json_int_t)st.posts, "records", (json_int_t)st.records, "queued",
			 (json_int_t)st.queued, "duplicates", (json_int_t)st.duplicates, "ignored",
			 (json_int_t)st.ignored, "rejected", (json_int_t)st.rejected, "unauthorized",
			 (json_int_t)unauthorized, "taken", (json_int_t)st.taken, "waiting",
			 (json_int_t)st.waiting, "last_event_at", (json_int_t)st.last_event_at);
}

static enum MHD_Result handle_status(ingest_endpoint *e, const http_request *rq)
{
	json_t *j;
	uint64_t unauthorized;

	pthread_mutex_lock(&e->lock);
	j = e->status ? json_deep_copy(e->status) : json_object();
	unauthorized = e->unauthorized;
	pthread_mutex_unlock(&e->lock);
	if (!j)
		return MHD_NO;
	json_object_set_new(j, "events", events_json(e, unauthorized));
	return http_send_json(rq->conn, 200, j);
}

static enum MHD_Result on_request(void *ctx, const http_request *rq)
{
	ingest_endpoint *e = ctx;
	bool events = strcmp(rq->url, "/v1/events") == 0;

	if (strcmp(rq->url, "/healthz") == 0)
		return http_send_text(rq->conn, 200, "text/plain", rag_strdup("ok\n"), 3);
	bool ok;

	/* invariant 1: ?token= for push endpoints that are bare URLs */
	pthread_mutex_lock(&e->lock);
	if (!(ok = http_token_ok(rq->conn, e->token, events ? "token" : NULL)))
		e->unauthorized++;
	pthread_mutex_unlock(&e->lock);
	if (!ok)
		return http_send_error(rq->conn, 401, "missing or wrong bearer token");
	if (events)
		return handle_events(e, rq);
	if (strcmp(rq->url, "/v1/status") == 0)
		return strcmp(rq->method, "GET") == 0 ? handle_status(e, rq)
						      : http_send_error(rq->conn, 405, "use GET for /v1/status");
	return http_send_error(rq->conn, 404, "no such endpoint");
}

rag_rc endpoint_start(const rag_config *cfg, const char *listen, evq *q, rag_log *log,
		      ingest_endpoint **out, rag_error *err)
{
	ingest_endpoint *e = calloc(1, sizeof(*e));
	/* a notification carries up to a few hundred records of ~1 KiB */
	http_options o = {.listen = listen, .what = "ingest.listen", .threads = 2,
			  .timeout_s = 5, .max_body = 8u << 20};
	rag_rc rc;

	*out = NULL;
	if (!e || !(e->token = rag_strdup(cfg->ingest.token ? cfg->ingest.token : ""))) {
		free(e);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	e->q = q;
	e->log = log;
	pthread_mutex_init(&e->lock, NULL);
	if ((rc = http_start(&o, on_request, e, &e->http, err))) {
		endpoint_stop(e);
		return rc;
	}
	*out = e;
	return RAG_OK;
}

rag_rc endpoint_set_token(ingest_endpoint *e, const char *token, rag_error *err)
{
	char *t = rag_strdup(token ? token : "");

	if (!t)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	pthread_mutex_lock(&e->lock);
	free(e->token);
	e->token = t;
	pthread_mutex_unlock(&e->lock);
	return RAG_OK;
}

int endpoint_port(const ingest_endpoint *e)
{
	return http_port(e->http);
}

void endpoint_set_status(ingest_endpoint *e, json_t *status)
{
	json_t *old;

	pthread_mutex_lock(&e->lock);
	old = e->status;
	e->status = status;
	pthread_mutex_unlock(&e->lock);
	json_decref(old);
}

void endpoint_stop(ingest_endpoint *e)
{
	if (!e)
		return;
	http_stop(e->http);
	json_decref(e->status);
	free(e->token);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
