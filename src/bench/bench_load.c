/*
 * bench load — closed-loop HTTP load on a running `ragmap serve`: N
 * clients, each a libcurl handle on its own keep-alive connection, POST
 * /v1/query back to back; QPS and latency percentiles, optionally every
 * answer recorded for checking (tests/tools/check_answers.py).
 *
 * HTTP is libcurl's (framing, keep-alive, a stale connection retried once);
 * this file only times requests and counts answers. A transport error is a
 * failed request counted apart from answers with a status other than 200.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_int.h"
#include "rag_buf.h"
#include "rag_util.h"

static const char load_usage[] =
	"usage: ragmap bench load --url http://HOST:PORT [--clients N] [--duration S]\n"
	"                         [--requests N] [--warmup S] [--queries FILE] [-k N]\n"
	"                         [--pause-ms N] [--record FILE] [--json]\n"
	"  Closed-loop load on a running `ragmap serve`: N clients (default 8), each on\n"
	"  its own keep-alive connection, POST /v1/query back to back for S seconds\n"
	"  (default 5) or until N requests in all. Queries come from FILE (one a line)\n"
	"  or a built-in set on the sample corpus, round robin; --pause-ms makes each\n"
	"  client wait between two requests. The bearer token, if\n"
	"  any, is query.token (RAGMAP_QUERY_TOKEN). --record writes one line per\n"
	"  answer: HTTP status, milliseconds, client number and the response body,\n"
	"  separated by TABs. SIGINT or SIGTERM ends the run early (requests in\n"
	"  flight complete) and the summary is printed as usual.\n"
	"  Exit status 1 if any request failed (a status other than 200 included).\n";

#define LOAD_RESPONSE_MAX ((size_t)64 << 20)
#define LOAD_TIMEOUT_S 120L       /* connecting, or no byte moving */

/* SIGINT/SIGTERM: finish the requests in flight and report. A signal
 * handler can reach nothing else, hence the one file-scope variable. */
static volatile sig_atomic_t load_stop;

static void load_on_signal(int sig)
{
	(void)sig;
	load_stop = 1;
}

typedef struct load_run {
	char url[1200];           /* <base>/v1/query */
	struct curl_slist *headers;
	char **bodies;            /* JSON request bodies, one per query */
	size_t nreq;
	uint64_t t_measure, t_end;
	int64_t max_requests;     /* 0: no limit */
	unsigned pause_ms;        /* between two requests of a client */
	atomic_llong issued;
	FILE *record;
	pthread_mutex_t rec_lock;
} load_run;

typedef struct load_worker {
	load_run *g;
	int idx;
	pthread_t th;
	uint64_t *lat;            /* ns, measured requests only */
	size_t n, cap;
	uint64_t requests, ok, failed, transport;
	uint64_t status[600];
	uint64_t last_done;
	char first_error[256];
	rag_buf body;             /* the answer, at most LOAD_RESPONSE_MAX */
	bool too_big;
} load_worker;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	load_worker *w = ctx;

	if (rag_buf_append(&w->body, data, size * n)) {
		w->too_big = true;
		return 0; /* libcurl fails the transfer: CURLE_WRITE_ERROR */
	}
	return size * n;
}

/* One handle per client: keep-alive, no proxy from the environment (the
 * server is addressed directly), no signals (the threads share them). */
static CURL *load_handle(load_worker *w, char *errbuf)
{
	CURL *h = curl_easy_init();

	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, w->g->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, w->g->headers);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, LOAD_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOAD_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	return h;
}

/* A measured latency; dropped (not counted) only when memory runs out. */
static void load_keep_latency(load_worker *w, uint64_t lat)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		uint64_t *p = realloc(w->lat, cap * sizeof(*p));
		if (p) {
			w->lat = p;
			w->cap = cap;
		}
	}
	if (w->n < w->cap)
		w->lat[w->n++] = lat;
}

static void *load_worker_main(void *arg)
{
	load_worker *w = arg;
	load_run *g = w->g;
	size_t qi = (size_t)w->idx % g->nreq;
	char errbuf[CURL_ERROR_SIZE];
	CURL *h = load_handle(w, errbuf);

	if (!h) {
		snprintf(w->first_error, sizeof(w->first_error), "cannot make a libcurl handle");
		w->requests = w->failed = w->transport = 1;
		return NULL;
	}
	for (;;) {
		uint64_t t0 = rag_now_ns(), lat;
		long status = 0;
		CURLcode cc;

		if (t0 >= g->t_end || load_stop)
			break;
		if (g->max_requests && atomic_fetch_add(&g->issued, 1) >= g->max_requests)
			break;
		rag_buf_reset(&w->body);
		w->too_big = false;
		errbuf[0] = '\0';
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, g->bodies[qi]);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(g->bodies[qi]));
		cc = curl_easy_perform(h);
		lat = rag_now_ns() - t0;
		w->last_done = t0 + lat;
		w->requests++;
		if (cc != CURLE_OK) {
			snprintf(w->first_error, sizeof(w->first_error), "%s",
				 w->too_big ? "response over 64 MiB"
				 : errbuf[0] ? errbuf : curl_easy_strerror(cc));
			w->failed++;
			w->transport++;
			rag_sleep_ms(5);
			qi = (qi + 1) % g->nreq;
			continue;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 100 && status < 600)
			w->status[status]++;
		if (status == 200) {
			w->ok++;
		} else {
			w->failed++;
			if (!w->first_error[0])
				snprintf(w->first_error, sizeof(w->first_error), "HTTP %ld: %.*s", status,
					 (int)(w->body.len < 160 ? w->body.len : 160),
					 w->body.data ? w->body.data : "");
		}
		if (t0 >= g->t_measure)
			load_keep_latency(w, lat);
		if (g->record) {
			pthread_mutex_lock(&g->rec_lock);
			fprintf(g->record, "%ld\t%.3f\t%d\t", status, (double)lat / 1e6, w->idx);
			fwrite(w->body.data ? w->body.data : "", 1, w->body.len, g->record);
			fputc('\n', g->record);
			pthread_mutex_unlock(&g->rec_lock);
		}
		qi = (qi + 1) % g->nreq;
		if (g->pause_ms)
			rag_sleep_ms(g->pause_ms);
	}
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values, in ms. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)ceil(p * (double)n);
	i = i < 1 ? 0 : i - 1;
	return (double)v[i < n ? i : n - 1] / 1e6;
}

/* url is http://HOST:PORT[/...]: where POST /v1/query goes (the path is
 * always /v1/query, as the server has it). */
static bool load_url(const char *url, char *out, size_t len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		  strcmp(scheme, "http") == 0 &&
		  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
		  (size_t)snprintf(out, len, "http://%s:%s/v1/query", host, port) < len;

	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

/* The JSON body of each query, and the headers every request carries. */
static rag_rc load_requests(load_run *g, char **queries, size_t nq, int64_t k, const char *token,
			    rag_error *err)
{
	char auth[1100];

	if (!(g->bodies = calloc(nq, sizeof(*g->bodies))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	g->nreq = nq;
	for (size_t i = 0; i < nq; i++) {
		json_t *j = json_pack("{s:s, s:I}", "q", queries[i], "k", (json_int_t)k);
		g->bodies[i] = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!g->bodies[i])
			return rag_error_set(err, RAG_EINVAL, "bench load: query %zu is not UTF-8", i + 1);
	}
	/* "Expect:": no 100-continue round trip before a large body */
	g->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (g->headers && !curl_slist_append(g->headers, "Expect:"))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if (g->headers && token && *token) {
		if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >=
		    sizeof(auth))
			return rag_error_set(err, RAG_ECONFIG, "query.token is too long");
		if (!curl_slist_append(g->headers, auth))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	return g->headers ? RAG_OK : rag_error_set(err, RAG_ENOMEM, "out of memory");
}

/* The summary of a finished run: one line, or one JSON object. */
static void load_report(FILE *out, bool as_json, int64_t clients, double secs, uint64_t total,
			uint64_t ok, uint64_t failed, uint64_t transport, const uint64_t *all,
			size_t nall, const uint64_t *status)
{
	if (as_json) {
		double sum = 0;
		for (size_t i = 0; i < nall; i++)
			sum += (double)all[i] / 1e6;
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
				      "clients", (json_int_t)clients, "requests", (json_int_t)total,
				      "ok", (json_int_t)ok, "failed", (json_int_t)failed,
				      "transport_errors", (json_int_t)transport,
				      "measured", (json_int_t)nall, "seconds", secs,
				      "qps", secs > 0 ? (double)nall / secs : 0.0,
				      "p50_ms", pct_ms(all, nall, 0.50), "p95_ms", pct_ms(all, nall, 0.95),
				      "p99_ms", pct_ms(all, nall, 0.99),
				      "max_ms", nall ? (double)all[nall - 1] / 1e6 : 0.0,
				      "mean_ms", nall ? sum / (double)nall : 0.0);
		json_t *st = json_object();
		char *s;
		for (int i = 0; i < 600; i++)
			if (status[i]) {
				char code[8];
				snprintf(code, sizeof(code), "%d", i);
				json_object_set_new(st, code, json_integer((json_int_t)status[i]));
			}
		json_object_set_new(j, "status", st);
		s = json_dumps(j, JSON_COMPACT);
		fprintf(out, "%s\n", s);
		free(s);
		json_decref(j);
	} else {
		fprintf(out, "load: %lld clients, %.2f s measured, %llu requests (%llu ok, %llu failed), "
			     "%.0f q/s; latency ms p50 %.3f p95 %.3f p99 %.3f max %.3f\n",
			(long long)clients, secs, (unsigned long long)total, (unsigned long long)ok,
			(unsigned long long)failed, secs > 0 ? (double)nall / secs : 0.0,
			pct_ms(all, nall, 0.50), pct_ms(all, nall, 0.95), pct_ms(all, nall, 0.99),
			nall ? (double)all[nall - 1] / 1e6 : 0.0);
	}
}

rag_rc bench_load(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'}, {"clients", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'd'}, {"requests", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'}, {"queries", required_argument, NULL, 'q'},
		{"record", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
		{"pause-ms", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *url = NULL, *qfile = NULL, *record = NULL;
	double duration = 5, warmup = 0;
	int64_t clients = 8, requests = 0, k = 5, pause_ms = 0;
	bool as_json = false, have_duration = false;
	char **queries = NULL, *end;
	size_t nq = 0;
	load_run g;
	load_worker *w = NULL;
	rag_config cfg;
	uint64_t t0, last = 0, ok = 0, failed = 0, transport = 0, total = 0, status[600] = {0};
	uint64_t *all = NULL;
	size_t nall = 0;
	int opt, started = 0;
	rag_rc rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'c':
			if (!rag_parse_i64(optarg, &clients) || clients < 1 || clients > 4096)
				return bench_usage_error(env, load_usage, err);
			break;
		case 'd':
			duration = strtod(optarg, &end);
			if (*end || !(duration > 0))
				return bench_usage_error(env, load_usage, err);
			have_duration = true;
			break;
		case 'w':
			warmup = strtod(optarg, &end);
			if (*end || !(warmup >= 0))
				return bench_usage_error(env, load_usage, err);
			break;
		case 'n':
			if (!rag_parse_i64(optarg, &requests) || requests < 1)
				return bench_usage_error(env, load_usage, err);
			break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 10000)
				return bench_usage_error(env, load_usage, err);
			break;
		case 'p':
			if (!rag_parse_i64(optarg, &pause_ms) || pause_ms < 0 || pause_ms > 60000)
				return bench_usage_error(env, load_usage, err);
			break;
		case 'q': qfile = optarg; break;
		case 'r': record = optarg; break;
		case 'j': as_json = true; break;
		case 'h': fputs(load_usage, env->out); return RAG_OK;
		default: return bench_usage_error(env, load_usage, err);
		}
	}
	if (optind != argc || !url)
		return bench_usage_error(env, load_usage, err);
	memset(&g, 0, sizeof(g));
	if (!load_url(url, g.url, sizeof(g.url)))
		return rag_error_set(err, RAG_EINVAL, "bench load: --url must be http://HOST:PORT, "
				     "not \"%s\"", url);
	if ((rc = env->load_config(env->ctx, env->config_path, false, &cfg, err)))
		return rc;
	if ((rc = bench_read_queries(qfile, &queries, &nq, err)) ||
	    (rc = load_requests(&g, queries, nq, k, cfg.query.token, err))) {
		rag_config_release(&cfg);
		goto out;
	}
	rag_config_release(&cfg);
	if (record && !(g.record = fopen(record, "w"))) {
		rc = rag_error_set(err, RAG_EIO, "bench load: cannot create \"%s\": %s", record,
				   strerror(errno));
		goto out;
	}
	pthread_mutex_init(&g.rec_lock, NULL);
	atomic_init(&g.issued, 0);
	g.max_requests = requests;
	g.pause_ms = (unsigned)pause_ms;
	t0 = rag_now_ns();
	g.t_measure = t0 + (uint64_t)(warmup * 1e9);
	/* --requests alone: until they are done; with --duration too: whichever first */
	g.t_end = requests && !have_duration ? UINT64_MAX
					     : g.t_measure + (uint64_t)(duration * 1e9);
	{
		struct sigaction sa = {.sa_handler = load_on_signal}; /* no SA_RESTART */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (!(w = calloc((size_t)clients, sizeof(*w)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < clients; i++) {
		w[i].g = &g;
		w[i].idx = i;
		rag_buf_init(&w[i].body, LOAD_RESPONSE_MAX);
		if (pthread_create(&w[i].th, NULL, load_worker_main, &w[i]) != 0) {
			rc = rag_error_set(err, RAG_EIO, "bench load: cannot start client thread %d", i);
			g.t_end = 0;
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].requests;
		ok += w[i].ok;
		failed += w[i].failed;
		transport += w[i].transport;
		nall += w[i].n;
		if (w[i].last_done > last)
			last = w[i].last_done;
		for (int s = 0; s < 600; s++)
			status[s] += w[i].status[s];
	}
	if (g.record)
		fclose(g.record);
	pthread_mutex_destroy(&g.rec_lock);
	all = malloc((nall + 1) * sizeof(*all));
	nall = 0;
	for (int i = 0; all && i < started; i++) {
		if (!w[i].n)
			continue; /* a client that got no answer has no latencies (lat NULL) */
		memcpy(all + nall, w[i].lat, w[i].n * sizeof(*all));
		nall += w[i].n;
	}
	if (all)
		qsort(all, nall, sizeof(*all), cmp_u64);
	load_report(env->out, as_json, clients, last > g.t_measure ? (double)(last - g.t_measure) / 1e9 : 0,
		    total, ok, failed, transport, all, nall, status);
	if (!rc && (failed || !ok)) {
		const char *first = "";
		for (int i = 0; i < started && !*first; i++)
			first = w[i].first_error;
		rc = rag_error_set(err, RAG_EIO, "bench load: %llu of %llu requests failed "
				   "(%llu transport errors)%s%s", (unsigned long long)failed,
				   (unsigned long long)total, (unsigned long long)transport,
				   *first ? "; first: " : "", first);
	}
out:
	for (int i = 0; w && i < clients; i++) {
		free(w[i].lat);
		rag_buf_release(&w[i].body);
	}
	free(w);
	free(all);
	for (size_t i = 0; g.bodies && i < g.nreq; i++)
		free(g.bodies[i]);
	free(g.bodies);
	curl_slist_free_all(g.headers);
	bench_free_queries(queries, nq);
	return rc;
}
