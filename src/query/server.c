/*
 * server.c — see server.h.
 */
#include "server.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "map.h"
#include "page.h"
#include "qjson.h"
#include "qlog.h"
#include "qrequest.h"
#include "rag_buf.h"
#include "rag_util.h"

static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					 0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define NBUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

struct server {
	rag_config cfg;           /* a copy; its strings are the caller's */
	qmode mode;
	rag_log *log;
	s3_client *s3;
	http_server *http;
	qlog *qlog;
	qcaches caches;
	qmap *map;               /* GET /v1/map: the manifest figures */
	server_mode_hook hook;   /* POST /v1/mode; on_mode NULL: none */

	pthread_mutex_t lock;     /* guards current, the metrics and stopping */
	qindex *current;
	pthread_cond_t wake;
	pthread_t reloader;
	bool reloader_running, stopping;

	/* metrics */
	uint64_t buckets[NBUCKETS + 1];
	double latency_sum;
	uint64_t queries_ok, queries_bad, queries_failed, unauthorized, reloads, reload_failures;
	/* answers that read storage on the query path (cold) and that did not */
	uint64_t cold_n, warm_n;
	double cold_sum, warm_sum;

	/* warm-up: one at a time, on its own thread (POST /v1/warm, query.warm) */
	struct {
		pthread_t thread;
		bool started;            /* a thread to join */
		bool running;            /* under lock */
		_Atomic bool stop;
		qwarm_progress p;
		const char *state;       /* under lock: see warm_json() */
		char why[300];           /* under lock: what it preloads, or the error */
		uint64_t budget;
		int64_t version;
		int64_t started_at;      /* unix time */
		double ms;
		uint64_t t0;
	} warm;
};

/* ------------------------------------------------------------ handlers */

static json_t *warm_json(server *s);
static enum MHD_Result handle_warm(server *s, const http_request *rq);

static qindex *acquire(server *s)
{
	qindex *q;

	pthread_mutex_lock(&s->lock);
	if ((q = s->current))
		qindex_retain(q);
	pthread_mutex_unlock(&s->lock);
	return q;
}

/* "replica": the name this server answers as (server.h), in a document of
 * the API. RAG_ENOMEM (err may be NULL). */
static rag_rc name_replica(json_t *j, const char *name, rag_error *err)
{
	if (json_object_set_new(j, "replica", json_string(name ? name : "")) != 0)
		return rag_error_set(err, RAG_ENOMEM, "out of memory naming the replica");
	return RAG_OK;
}

/* cold: 1 when an answered query read storage on the query path, 0 when not */
static void count_query(server *s, bool ok, bool bad, double secs, int cold)
{
	pthread_mutex_lock(&s->lock);
	if (ok) {
		size_t b = 0;
		while (b < NBUCKETS && secs > latency_buckets[b])
			b++;
		s->buckets[b]++;
		s->latency_sum += secs;
		s->queries_ok++;
		if (cold) {
			s->cold_n++;
			s->cold_sum += secs;
		} else {
			s->warm_n++;
			s->warm_sum += secs;
		}
	} else if (bad) {
		s->queries_bad++;
	} else {
		s->queries_failed++;
	}
	pthread_mutex_unlock(&s->lock);
}

static void log_query(server *s, const qresult *r, const char *q, int k)
{
	s3_counter tot;
	json_t *keys = json_array(), *chunks = json_array(), *rec;
	char stamp[32], *line;
	time_t now = time(NULL);
	struct tm tm;

	if (!s->qlog)
		return;
	for (int i = 0; i < r->n; i++) {
		json_array_append_new(keys, json_string(r->hits[i].key));
		json_array_append_new(chunks, json_integer((json_int_t)r->hits[i].chunk_id));
	}
	s3_trace_total(&r->trace, &tot);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* "chunks": what warm-up preloads in cached mode (qlog_hot_chunks()) */
	rec = json_pack("{s:s, s:s, s:i, s:s, s:s, s:I, s:o, s:o, s:I, s:I, s:f}", "ts", stamp, "q",
			q, "k", k, "mode", qmode_name(r->mode), "retriever",
			qretriever_name(r->retriever), "index_version", (json_int_t)r->version,
			"hits", keys, "chunks", chunks,
			"storage_requests", (json_int_t)tot.requests,
			"storage_bytes", (json_int_t)(tot.bytes_in + tot.bytes_out),
			"total_ms", r->total_ms);
	if (rec && (line = json_dumps(rec, JSON_COMPACT))) {
		qlog_append(s->qlog, line);
		free(line);
	}
	json_decref(rec);
}

static enum MHD_Result handle_query(server *s, const http_request *rq)
{
	struct MHD_Connection *c = rq->conn;
	qrequest qr;
	const char *text;
	int k;
	qretriever ret;
	qindex *q;
	qresult res;
	rag_error err = {0};
	uint64_t t0 = rag_now_ns();
	char msg[600];
	json_t *answer;
	enum MHD_Result out;

	if (rq->too_large) {
		count_query(s, false, true, 0, 0);
		snprintf(msg, sizeof(msg), "request body over the %llu byte limit",
			 (unsigned long long)s->cfg.query.max_body);
		return http_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
	}
	if (qrequest_parse(rq->body, rq->len, s->cfg.query.max_query_bytes,
			   s->cfg.query.max_k, &qr, &err)) {
		count_query(s, false, true, 0, 0);
		return http_send_error(c, err.rc == RAG_ENOMEM ? 500 : 400, err.msg);
	}
	text = qr.text;
	k = qr.k;
	ret = qr.retriever;
	if (!(q = acquire(s))) {
		qrequest_release(&qr);
		count_query(s, false, false, 0, 0);
		return http_send_error(c, 503, "no index loaded yet");
	}
	if (qindex_query_filtered(q, text, strlen(text), k, ret, &qr.filter,
				  t0 + (uint64_t)s->cfg.query.timeout_ms * 1000000u, &res, &err)) {
		qindex_release(q);
		qrequest_release(&qr);
		count_query(s, false, err.rc == RAG_EUNSUPPORTED, 0, 0);
		/* storage that did not answer in time: a gateway timeout */
		if (err.rc == RAG_ETIMEOUT)
			rag_error_prefix(&err, "query.timeout_ms is %lld",
					 (long long)s->cfg.query.timeout_ms);
		return http_send_error(c, err.rc == RAG_EUNSUPPORTED ? 400 :
				       err.rc == RAG_ETIMEOUT ? 504 : 502, err.msg);
	}
	qindex_release(q);
	if (rag_ms_since(t0) > (double)s->cfg.query.timeout_ms) {
		qresult_release(&res);
		qrequest_release(&qr);
		count_query(s, false, false, 0, 0);
		return http_send_error(c, 504, "the query took longer than query.timeout_ms");
	}
	res.full_trace = qr.trace_full;
	res.explain = qr.explain;
	if (!(answer = qjson_result(&res, s->cfg.s3.bucket, text, k, &err)) ||
	    name_replica(answer, rq->name, &err)) {
		json_decref(answer);
		RAG_ERROR(s->log, "query \"%.200s\": %s", text, err.msg);
		qresult_release(&res);
		qrequest_release(&qr);
		count_query(s, false, false, 0, 0);
		return http_send_error(c, 500, err.msg);
	}
	log_query(s, &res, text, k);
	out = http_send_json(c, 200, answer);
	{
		s3_counter path;
		s3_trace_total(&res.trace, &path);
		count_query(s, true, false, rag_ms_since(t0) / 1e3, path.requests > 0);
	}
	qresult_release(&res);
	qrequest_release(&qr);
	return out;
}

static qmap_counts *map_counts(server *s, const qindex *q);

static enum MHD_Result handle_status(server *s, const http_request *rq)
{
	struct MHD_Connection *c = rq->conn;
	qindex *q = acquire(s);
	qindex_status st;
	json_t *j, *caches = json_object();
	lru_stats ls;

	if (!q)
		return http_send_error(c, 503, "no index loaded yet");
	qindex_status_get(q, &st);
	j = qjson_status(&st);
	/* what ingestion could not index, as the loaded version's manifest says */
	if (j) {
		const s3_trace *lt = qindex_load_trace(q);
		qmap_counts *mc = map_counts(s, q);

		json_object_set_new(j, "failed", manifest_failed_json(qindex_manifest(q)));
		/* the load, object by object */
		json_object_set_new(json_object_get(json_object_get(j, "load"), "storage"),
				    "request_log", qjson_requests(lt, st.load_start_ns));
		if (mc)
			json_object_set_new(j, "cost", qmap_cost(s->map, mc));
		free(mc);
	}
	qindex_release(q);
	if (s->caches.text) {
		lru_get_stats(s->caches.text, &ls);
		json_object_set_new(caches, "text", qjson_cache(&ls));
	}
	if (s->caches.lists) {
		lru_get_stats(s->caches.lists, &ls);
		json_object_set_new(caches, "lists", qjson_cache(&ls));
	}
	json_object_set_new(j, "caches", caches);
	if (j) {
		pthread_mutex_lock(&s->lock);
		json_object_set_new(j, "warm", warm_json(s));
		pthread_mutex_unlock(&s->lock);
	}
	if (!j || name_replica(j, rq->name, NULL)) {
		json_decref(j);
		return http_send_error(c, 500, "out of memory");
	}
	return http_send_json(c, 200, j);
}

/*
 * POST /v1/mode {"mode": MODE}: a reload in another mode, made by the
 * owner through the hook (server.h, "Mode switches"). This handler's server
 * is the old one: it answers once the new one serves.
 */
static enum MHD_Result handle_mode(server *s, const http_request *rq)
{
	struct MHD_Connection *c = rq->conn;
	json_error_t jerr;
	json_t *body = NULL, *v, *answer;
	const char *field, *name;
	qmode want, was = s->mode;
	int64_t was_version = server_index_version(s), version = 0;
	rag_error err = {0};
	char msg[400], modes[64];
	uint64_t t0;
	double ms;
	enum MHD_Result out;

	qmode_list(modes, sizeof(modes));
	if (rq->too_large) {
		snprintf(msg, sizeof(msg), "request body over the %llu byte limit",
			 (unsigned long long)s->cfg.query.max_body);
		return http_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
	}
	if (!(body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr)) ||
	    !json_is_object(body)) {
		snprintf(msg, sizeof(msg), "the body must be a JSON object {\"mode\": MODE} (%s): %s",
			 modes, body ? "not an object" : jerr.text);
		json_decref(body);
		return http_send_error(c, 400, msg);
	}
	json_object_foreach(body, field, v) {
		if (strcmp(field, "mode") != 0) {
			snprintf(msg, sizeof(msg), "unknown field \"%.100s\" (the one field is \"mode\")",
				 field);
			json_decref(body);
			return http_send_error(c, 400, msg);
		}
	}
	name = json_string_value(json_object_get(body, "mode"));
	if (!name || !qmode_parse(name, &want)) {
		if (name)
			snprintf(msg, sizeof(msg), "unknown mode \"%.100s\" (the modes: %s)", name, modes);
		else
			snprintf(msg, sizeof(msg), "\"mode\" must be a string, one of %s", modes);
		json_decref(body);
		return http_send_error(c, 400, msg);
	}
	json_decref(body);
	t0 = rag_now_ns();
	if (want == was) {
		version = was_version;
	} else if (!s->hook.on_mode) {
		return http_send_error(c, 501, "this server cannot switch modes");
	} else if (s->hook.on_mode(s->hook.ctx, want, &version, &err)) {
		RAG_WARN(s->log, "mode switch %s -> %s: %s", qmode_name(was), qmode_name(want), err.msg);
		return http_send_error(c, err.rc == RAG_ECONFLICT ? 409 :
				       err.rc == RAG_ECANCELED ? 503 : 500, err.msg);
	} else {
		/*
		 * The new server serves. Answer once this one no longer accepts
		 * (the owner's next step is server_stop() of this one), so that
		 * no request sent after this answer reaches the old mode: not on
		 * a new connection, and not on this one either (the answer then
		 * says "Connection: close"). Bounded: never hang here.
		 */
		for (int i = 0; i < 2000 && !http_draining(s->http); i++)
			rag_sleep_ms(1);
	}
	ms = rag_ms_since(t0);
	answer = json_pack("{s:s, s:s, s:I, s:I, s:f, s:b}", "mode", qmode_name(want),
			   "previous_mode", qmode_name(was), "index_version", (json_int_t)version,
			   "previous_index_version", (json_int_t)was_version, "switch_ms", ms,
			   "changed", want != was);
	if (!answer || name_replica(answer, rq->name, NULL)) {
		json_decref(answer);
		return http_send_error(c, 500, "out of memory");
	}
	if (want != was)
		RAG_INFO(s->log, "mode switch %s -> %s: version %lld, %.1f ms", qmode_name(was),
			 qmode_name(want), (long long)version, ms);
	out = http_send_json(c, 200, answer);
	return out;
}

static void metric_storage(server *s, rag_buf *b)
{
	s3_stage_stats st[64];
	size_t n = s3_client_stats(s->s3, st, 64);
	static const struct {
		const char *name, *help;
	} m[] = {
		{"ragmap_storage_requests_total", "storage requests by pipeline stage and kind"},
		{"ragmap_storage_bytes_total", "storage bytes moved (in + out) by stage and kind"},
		{"ragmap_storage_seconds_total", "time spent in storage requests by stage and kind"},
		{"ragmap_storage_retries_total", "storage retries by stage and kind"},
	};

	if (n > 64)
		n = 64;
	for (size_t i = 0; i < 4; i++) {
		rag_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", m[i].name, m[i].help, m[i].name);
		for (size_t j = 0; j < n; j++)
			for (int k = 0; k < S3_KIND_COUNT; k++) {
				const s3_counter *c = &st[j].kind[k];
				if (!c->requests)
					continue;
				rag_buf_printf(b, "%s{stage=\"%s\",kind=\"%s\"} ", m[i].name, st[j].stage,
					       s3_kind_name((s3_kind)k));
				if (i == 0)
					rag_buf_printf(b, "%llu\n", (unsigned long long)c->requests);
				else if (i == 1)
					rag_buf_printf(b, "%llu\n", (unsigned long long)(c->bytes_in + c->bytes_out));
				else if (i == 2)
					rag_buf_printf(b, "%.6f\n", (double)c->ns / 1e9);
				else
					rag_buf_printf(b, "%llu\n", (unsigned long long)c->retries);
			}
	}
}

static enum MHD_Result handle_metrics(server *s, struct MHD_Connection *c)
{
	rag_buf b;
	qindex *q = acquire(s);
	qindex_status st = {0};
	uint64_t cum = 0;
	lru_stats ls;

	rag_buf_init(&b, 4u << 20);
	if (q) {
		qindex_status_get(q, &st);
		qindex_release(q);
	}
	metric_storage(s, &b);
	pthread_mutex_lock(&s->lock);
	rag_buf_printf(&b, "# HELP ragmap_query_duration_seconds query latency at the server\n"
			   "# TYPE ragmap_query_duration_seconds histogram\n");
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += s->buckets[i];
		if (i < NBUCKETS)
			rag_buf_printf(&b, "ragmap_query_duration_seconds_bucket{le=\"%g\"} %llu\n",
				       latency_buckets[i], (unsigned long long)cum);
		else
			rag_buf_printf(&b, "ragmap_query_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
				       (unsigned long long)cum);
	}
	rag_buf_printf(&b, "ragmap_query_duration_seconds_sum %.6f\n"
			   "ragmap_query_duration_seconds_count %llu\n", s->latency_sum,
		       (unsigned long long)cum);
	rag_buf_printf(&b, "# HELP ragmap_queries_total queries by outcome\n"
			   "# TYPE ragmap_queries_total counter\n"
			   "ragmap_queries_total{outcome=\"ok\"} %llu\n"
			   "ragmap_queries_total{outcome=\"bad_request\"} %llu\n"
			   "ragmap_queries_total{outcome=\"error\"} %llu\n"
			   "ragmap_queries_total{outcome=\"unauthorized\"} %llu\n"
			   "# HELP ragmap_reloads_total index versions swapped in after start\n"
			   "# TYPE ragmap_reloads_total counter\nragmap_reloads_total %llu\n"
			   "ragmap_reload_failures_total %llu\n",
		       (unsigned long long)s->queries_ok, (unsigned long long)s->queries_bad,
		       (unsigned long long)s->queries_failed, (unsigned long long)s->unauthorized,
		       (unsigned long long)s->reloads, (unsigned long long)s->reload_failures);
	pthread_mutex_unlock(&s->lock);
	/* the text format wants each family's samples in one group */
	for (int f = 0; f < 3; f++) {
		static const char *const fam[3][3] = {
			{"ragmap_cache_hits_total", "counter", "cache hits by cache"},
			{"ragmap_cache_misses_total", "counter", "cache misses by cache"},
			{"ragmap_cache_bytes", "gauge", "bytes held by each cache"},
		};
		rag_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam[f][0], fam[f][2], fam[f][0],
			       fam[f][1]);
		for (int i = 0; i < 2; i++) {
			lru *cache = i ? s->caches.lists : s->caches.text;
			memset(&ls, 0, sizeof(ls));
			if (cache)
				lru_get_stats(cache, &ls);
			rag_buf_printf(&b, "%s{cache=\"%s\"} %llu\n", fam[f][0], i ? "lists" : "text",
				       (unsigned long long)(f == 0 ? ls.hits : f == 1 ? ls.misses : ls.bytes));
		}
	}
	rag_buf_printf(&b, "# HELP ragmap_index_version the index version being served\n"
			   "# TYPE ragmap_index_version gauge\nragmap_index_version %lld\n"
			   "# HELP ragmap_resident_bytes bytes held in RAM by kind\n"
			   "# TYPE ragmap_resident_bytes gauge\n"
			   "ragmap_resident_bytes{kind=\"vectors\"} %llu\n"
			   "ragmap_resident_bytes{kind=\"text\"} %llu\n"
			   "ragmap_resident_bytes{kind=\"pointers\"} %llu\n"
			   "ragmap_info{mode=\"%s\",model_version=\"%s\"} 1\n",
		       (long long)st.version, (unsigned long long)st.vector_bytes,
		       (unsigned long long)st.text_bytes, (unsigned long long)st.pointer_bytes,
		       qmode_name(s->mode), st.model_version);
	{
		size_t len;
		char *text = rag_buf_detach(&b, &len);
		return http_send_text(c, 200, "text/plain; version=0.0.4", text, len);
	}
}

/* The counters the map and the cost are drawn from, of index q. Caller frees. */
static qmap_counts *map_counts(server *s, const qindex *q)
{
	qmap_counts *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	qindex_status_get(q, &m->status);
	qmap_prepare(s->map, m->status.version, NULL); /* a failure shows in the map */
	m->nstages = s3_client_stats(s->s3, m->stages, QMAP_MAX_STAGES);
	pthread_mutex_lock(&s->lock);
	m->queries_ok = s->queries_ok;
	m->queries_bad = s->queries_bad;
	m->queries_failed = s->queries_failed;
	m->unauthorized = s->unauthorized;
	m->latency_sum_s = s->latency_sum;
	m->cold_n = s->cold_n;
	m->cold_sum_s = s->cold_sum;
	m->warm_n = s->warm_n;
	m->warm_sum_s = s->warm_sum;
	pthread_mutex_unlock(&s->lock);
	if ((m->has_text_cache = s->caches.text != NULL))
		lru_get_stats(s->caches.text, &m->text_cache);
	if ((m->has_list_cache = s->caches.lists != NULL))
		lru_get_stats(s->caches.lists, &m->list_cache);
	return m;
}

/* GET /v1/map: the figures of the page at GET /, from the same counters as
 * /metrics (see map.h). */
static enum MHD_Result handle_map(server *s, const http_request *rq)
{
	struct MHD_Connection *c = rq->conn;
	qindex *q = acquire(s);
	qmap_counts *m;
	json_t *j;

	if (!q)
		return http_send_error(c, 503, "no index loaded yet");
	m = map_counts(s, q);
	qindex_release(q);
	if (!m)
		return MHD_NO;
	j = qmap_json(s->map, m);
	if (j) {
		pthread_mutex_lock(&s->lock);
		json_object_set_new(j, "warm", warm_json(s));
		pthread_mutex_unlock(&s->lock);
	}
	free(m);
	if (!j || name_replica(j, rq->name, NULL)) {
		json_decref(j);
		return http_send_error(c, 500, "out of memory");
	}
	return http_send_json(c, 200, j);
}

/* Every request, its body complete (http.h): the routing. */
static enum MHD_Result route(void *ctx, const http_request *rq)
{
	server *s = ctx;
	struct MHD_Connection *c = rq->conn;
	const char *url = rq->url, *method = rq->method;

	if (strcmp(url, "/healthz") == 0) {
		qindex *q = acquire(s);
		qindex_release(q);
		if (!q)
			return http_send_error(c, 503, "no index loaded yet");
		return http_send_text(c, 200, "text/plain", rag_strdup("ok\n"), 3);
	}
	/* The page is static (no data, no secret): a browser must be able to load
	 * it to send the token from #token=... with the calls that need it. */
	if (strcmp(url, "/") == 0 && strcmp(method, "GET") == 0)
		return http_send_text(c, 200, "text/html; charset=utf-8",
				      rag_strndup(page_html(), page_html_len()), page_html_len());
	if (!http_token_ok(c, s->cfg.query.token, NULL)) {
		pthread_mutex_lock(&s->lock);
		s->unauthorized++;
		pthread_mutex_unlock(&s->lock);
		return http_send_error(c, 401, "missing or wrong bearer token");
	}
	if (strcmp(url, "/v1/query") == 0) {
		if (strcmp(method, "POST") != 0)
			return http_send_error(c, 405, "use POST for /v1/query");
		return handle_query(s, rq);
	}
	if (strcmp(url, "/v1/mode") == 0) {
		if (strcmp(method, "POST") != 0)
			return http_send_error(c, 405, "use POST for /v1/mode");
		return handle_mode(s, rq);
	}
	if (strcmp(url, "/v1/warm") == 0) {
		if (strcmp(method, "POST") != 0)
			return http_send_error(c, 405, "use POST for /v1/warm");
		return handle_warm(s, rq);
	}
	if (strcmp(method, "GET") != 0)
		return http_send_error(c, 405, "method not allowed");
	if (strcmp(url, "/v1/status") == 0)
		return handle_status(s, rq);
	if (strcmp(url, "/metrics") == 0)
		return handle_metrics(s, c);
	if (strcmp(url, "/v1/map") == 0)
		return handle_map(s, rq);
	return http_send_error(c, 404, "no such endpoint");
}

/* ------------------------------------------------------------- warm-up */

#define WARM_LOG_OBJECTS 256         /* newest query log objects read */
#define WARM_LOG_BYTES (64u << 20)   /* and at most this much of them */

/* The warm-up's state for /v1/status, /v1/map and POST /v1/warm. The lock
 * is held. */
static json_t *warm_json(server *s)
{
	uint64_t planned = atomic_load(&s->warm.p.planned_bytes);
	uint64_t bytes = atomic_load(&s->warm.p.bytes);
	double ms = s->warm.running ? rag_ms_since(s->warm.t0) : s->warm.ms;

	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:I}", "state",
			 s->warm.state ? s->warm.state : "idle", "what", s->warm.why, "budget_bytes",
			 (json_int_t)s->warm.budget, "planned_bytes", (json_int_t)planned,
			 "planned_items", (json_int_t)atomic_load(&s->warm.p.planned_items),
			 "bytes", (json_int_t)bytes, "items",
			 (json_int_t)atomic_load(&s->warm.p.items), "progress",
			 planned ? (double)bytes / (double)planned : (s->warm.running ? 0.0 : 1.0),
			 "index_version", (json_int_t)s->warm.version, "ms", ms, "started_at",
			 (json_int_t)s->warm.started_at);
}

static void warm_finish(server *s, const char *state, const char *why)
{
	pthread_mutex_lock(&s->lock);
	s->warm.state = state;
	if (why)
		rag_strlcpy(s->warm.why, why, sizeof(s->warm.why));
	s->warm.ms = rag_ms_since(s->warm.t0);
	s->warm.running = false;
	pthread_mutex_unlock(&s->lock);
	RAG_INFO(s->log, "warm-up %s: %llu of %llu bytes in %.0f ms (%s)", state,
		 (unsigned long long)atomic_load(&s->warm.p.bytes),
		 (unsigned long long)atomic_load(&s->warm.p.planned_bytes), s->warm.ms, s->warm.why);
}

static void *warm_thread(void *arg)
{
	server *s = arg;
	qindex *q = acquire(s);
	const qmode_row *row = qmode_info(s->mode);
	qlog_hot hot = {0};
	rag_error err = {0};
	char why[300];
	rag_rc rc = RAG_OK;

	if (!q) {
		warm_finish(s, "failed", "no index loaded");
		return NULL;
	}
	/* what answers read most, per the query log (both caches use it) */
	rc = qlog_hot_chunks(s->s3, &s->cfg, WARM_LOG_OBJECTS, WARM_LOG_BYTES, &hot, &err);
	if (!rc && row->text_cache)
		snprintf(why, sizeof(why),
			 "the records of the %zu chunks most returned in %llu logged answers "
			 "(%llu log objects), most returned first", hot.n,
			 (unsigned long long)hot.records, (unsigned long long)hot.objects);
	else if (!rc)
		snprintf(why, sizeof(why),
			 "IVF lists: those %zu logged questions probe most first, then every "
			 "other list in manifest order", hot.nquestions);
	if (!rc) {
		qwarm_hints h = {hot.ids, hot.n, (const char *const *)hot.questions,
				 hot.nquestions};
		pthread_mutex_lock(&s->lock);
		rag_strlcpy(s->warm.why, why, sizeof(s->warm.why));
		pthread_mutex_unlock(&s->lock);
		rc = qindex_warm(q, &h, s->warm.budget, &s->warm.p, &s->warm.stop, &err);
	}
	qlog_hot_release(&hot);
	qindex_release(q);
	if (rc == RAG_ECANCELED)
		warm_finish(s, "stopped", NULL);
	else if (rc)
		warm_finish(s, "failed", err.msg);
	else
		warm_finish(s, "done", NULL);
	return NULL;
}

/*
 * Start a warm-up of the mode's cache within budget bytes (0: query.warm_mb,
 * or the cache's size). RAG_ECONFLICT while one runs; RAG_EUNSUPPORTED in a
 * mode without a cache, err saying why. The lock is NOT held.
 */
static rag_rc warm_start(server *s, uint64_t budget, rag_error *err)
{
	const qmode_row *row = qmode_info(s->mode);
	lru *cache = row->text_cache ? s->caches.text : s->caches.lists;
	int64_t cache_mb = row->text_cache ? s->cfg.query.cache_mb : s->cfg.query.list_cache_mb;
	rag_rc rc = RAG_OK;

	if (!cache)
		return rag_error_set(err, RAG_EUNSUPPORTED, "%s mode keeps no cache to preload%s",
				     row->name, row->list_cache ? " (query.list_cache_mb is 0)" :
				     row->records_in_ram ? ": it holds everything in RAM" :
				     ": it reads every hit from storage");
	if (!budget)
		budget = (uint64_t)(s->cfg.query.warm_mb ? s->cfg.query.warm_mb : cache_mb) << 20;
	pthread_mutex_lock(&s->lock);
	if (s->warm.running) {
		rc = rag_error_set(err, RAG_ECONFLICT, "a warm-up is running");
	} else if (s->stopping) {
		rc = rag_error_set(err, RAG_ECANCELED, "the server is stopping");
	} else {
		if (s->warm.started)   /* the last one finished: reap it */
			pthread_join(s->warm.thread, NULL);
		s->warm.started = false;
		memset(&s->warm.p, 0, sizeof(s->warm.p));
		atomic_store(&s->warm.stop, false);
		s->warm.budget = budget;
		s->warm.version = s->current ? qindex_status_version(s->current) : 0;
		s->warm.started_at = (int64_t)time(NULL);
		s->warm.t0 = rag_now_ns();
		s->warm.state = "running";
		s->warm.why[0] = '\0';
		s->warm.running = true;
		if (pthread_create(&s->warm.thread, NULL, warm_thread, s) != 0) {
			s->warm.running = false;
			s->warm.state = "failed";
			rc = rag_error_set(err, RAG_EINTERNAL, "cannot start the warm-up thread");
		} else {
			s->warm.started = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/*
 * POST /v1/warm [{"budget_mb": N} or {"budget_bytes": N}]: start a warm-up
 * in the background; 202 with its state (then follow "warm" in
 * /v1/status), 409 while one runs, 400 for a bad body or a mode without a
 * cache.
 */
static enum MHD_Result handle_warm(server *s, const http_request *rq)
{
	struct MHD_Connection *c = rq->conn;
	json_t *body = NULL, *w;
	uint64_t budget = 0;
	rag_error err = {0};
	rag_rc rc;

	if (rq->too_large)
		return http_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	if (rq->len) {
		json_error_t jerr;
		const char *field;
		json_t *v;
		if (!(body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr)) ||
		    !json_is_object(body)) {
			json_decref(body);
			return http_send_error(c, 400, "the body must be empty, {\"budget_mb\": N} or "
					       "{\"budget_bytes\": N}");
		}
		json_object_foreach(body, field, v) {
			bool mb = strcmp(field, "budget_mb") == 0;
			json_int_t x = json_integer_value(v);
			char msg[200];
			if (!mb && strcmp(field, "budget_bytes") != 0)
				snprintf(msg, sizeof(msg), "unknown field \"%.100s\" (the fields: "
					 "\"budget_mb\" or \"budget_bytes\")", field);
			else if (budget)
				snprintf(msg, sizeof(msg), "give \"budget_mb\" or \"budget_bytes\", not both");
			else if (!json_is_integer(v) || x < 1 || x > (mb ? 1 << 20 : (json_int_t)1 << 40))
				snprintf(msg, sizeof(msg), "\"%s\" must be an integer from 1 to %s", field,
					 mb ? "1048576" : "2^40");
			else {
				budget = mb ? (uint64_t)x << 20 : (uint64_t)x;
				continue;
			}
			json_decref(body);
			return http_send_error(c, 400, msg);
		}
		json_decref(body);
	}
	if ((rc = warm_start(s, budget, &err)))
		return http_send_error(c, rc == RAG_ECONFLICT ? 409 : rc == RAG_EUNSUPPORTED ? 400 :
				       rc == RAG_ECANCELED ? 503 : 500, err.msg);
	pthread_mutex_lock(&s->lock);
	w = warm_json(s);
	pthread_mutex_unlock(&s->lock);
	return http_send_json(c, 202, json_pack("{s:o}", "warm", w));
}

/* ------------------------------------------------------------- reloads */

static void *reloader(void *arg)
{
	server *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec until;
		int64_t have = s->current ? qindex_status_version(s->current) : 0, latest = 0;
		rag_error err = {0};
		qindex *fresh = NULL;

		pthread_mutex_unlock(&s->lock);
		if (qindex_latest_version(s->s3, &s->cfg, "query.reload", &latest, &err) == RAG_OK &&
		    latest > have) {
			/* build the new version off to the side; queries go on */
			if (qindex_open(s->s3, &s->cfg, s->mode, &s->caches, s->log, &fresh, &err)) {
				RAG_WARN(s->log, "reload of version %lld failed: %s", (long long)latest, err.msg);
				pthread_mutex_lock(&s->lock);
				s->reload_failures++;
				pthread_mutex_unlock(&s->lock);
			}
		}
		pthread_mutex_lock(&s->lock);
		if (fresh) {
			qindex *old = s->current;
			s->current = fresh;
			s->reloads++;
			RAG_INFO(s->log, "serving version %lld", (long long)qindex_status_version(fresh));
			pthread_mutex_unlock(&s->lock);
			qindex_release(old); /* freed once its in-flight queries finish */
			pthread_mutex_lock(&s->lock);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += s->cfg.query.reload_s;
		while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* server_start(), or server_start_after() when old is not NULL. */
static rag_rc start(const rag_config *cfg, qmode mode, const char *listen, const server *old,
		    const server_mode_hook *hook, rag_log *log, server **out, rag_error *err)
{
	server *s = calloc(1, sizeof(*s));
	http_options ho = {
		.listen = listen ? listen : cfg->query.listen,
		.share = old ? old->http : NULL,
		.what = listen ? "the listen address" : "query.listen",
		.threads = (unsigned)cfg->query.threads,
		.timeout_s = (unsigned)((cfg->query.timeout_ms + 999) / 1000),
		.max_body = cfg->query.max_body,
		.name = cfg->query.replica ? cfg->query.replica : "", /* "": hostname:port */
		.name_what = "query.replica",
	};
	rag_rc rc;

	*out = NULL;
	if (!s)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	s->cfg = *cfg; /* strings stay owned by the caller's config, which outlives us */
	s->mode = mode;
	s->log = log;
	if (hook)
		s->hook = *hook;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if (!(s->s3 = s3_client_new(cfg, log, err))) {
		rc = err ? err->rc : RAG_EINTERNAL;
		goto fail;
	}
	if ((rc = qcaches_open(cfg, mode, &s->caches, err)) ||
	    (rc = qindex_open(s->s3, &s->cfg, mode, &s->caches, log, &s->current, err)))
		goto fail;
	if (!(s->map = qmap_new(s->s3, &s->cfg))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	if (!(s->qlog = qlog_start(s->s3, &s->cfg, log, err))) {
		rc = err ? err->rc : RAG_EINTERNAL;
		goto fail;
	}
	/* the handlers may run before http_start() returns: all they use is ready */
	if ((rc = http_start(&ho, route, s, &s->http, err)))
		goto fail;
	if (cfg->query.reload_s > 0 && pthread_create(&s->reloader, NULL, reloader, s) == 0)
		s->reloader_running = true;
	if (cfg->query.warm) {
		rag_error werr = {0};
		if (warm_start(s, 0, &werr))   /* a mode without a cache still serves */
			RAG_WARN(log, "warm-up: %s", werr.msg);
	}
	*out = s;
	return RAG_OK;
fail:
	server_stop(s);
	return rc;
}

rag_rc server_start(const rag_config *cfg, qmode mode, const char *listen,
		    const server_mode_hook *hook, rag_log *log, server **out, rag_error *err)
{
	return start(cfg, mode, listen, NULL, hook, log, out, err);
}

rag_rc server_start_after(const server *old, const rag_config *cfg, qmode mode, rag_log *log,
			  server **out, rag_error *err)
{
	return start(cfg, mode, NULL, old, &old->hook, log, out, err);
}

qmode server_mode(const server *s)
{
	return s->mode;
}

int64_t server_index_version(server *s)
{
	qindex *q = acquire(s);
	int64_t v = q ? qindex_status_version(q) : 0;

	qindex_release(q);
	return v;
}

int server_port(const server *s)
{
	return http_port(s->http);
}

const char *server_replica(const server *s)
{
	return http_name(s->http);
}

void server_stop(server *s)
{
	if (!s)
		return;
	http_stop(s->http); /* lets open connections finish */
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (s->reloader_running)
		pthread_join(s->reloader, NULL);
	atomic_store(&s->warm.stop, true);
	if (s->warm.started)
		pthread_join(s->warm.thread, NULL);
	qlog_stop(s->qlog);
	qindex_release(s->current);
	qmap_free(s->map);
	qcaches_close(&s->caches);
	s3_client_free(s->s3);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}
