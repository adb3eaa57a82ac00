/*
 * bench_query.c — the query path's benchmarks and the load tool the tests use.
 *
 *   ragmap bench load        closed-loop HTTP load on a running `ragmap serve`:
 *                            N keep-alive clients, QPS and latency percentiles,
 *                            optionally every answer recorded for checking
 *   ragmap bench make-index  a synthetic index version of N chunks, committed
 *                            as ingestion would (segments, manifest, LATEST)
 *   ragmap bench search      in-process search time on the latest version:
 *                            raw FAISS, vindex_search, a memory-mode qindex;
 *                            and recall@k of the IVF configuration vs exact
 *
 * The load client speaks just enough HTTP/1.1 for our own server: one request
 * at a time per connection, a Content-Length on every response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "rag_buf.h"
#include "rag_util.h"

/* Queries on the sample corpus, used when no --queries file is given. */
static const char *const default_queries[] = {
	"why does a RAG pipeline keep source documents in object storage",
	"how are checkpoints written to object storage during training",
	"memory pointer cached and object backing modes of a vector database",
	"IVF index inverted lists centroids and nprobe",
	"hybrid search with BM25 and dense vectors",
	"chunking documents by headings paragraphs and token budget",
	"re-embedding the corpus when the embedding model changes",
	"incremental ingestion of new and deleted documents",
	"latency of the query path and ranged GET requests",
	"LoRA adapters versioning and storage",
	"serving many adapters on one base model",
	"KV cache and GPU memory during inference",
	"sharded datasets and WebDataset tar files",
	"streaming data loaders reading from S3",
	"tokenization and preprocessing of training data",
	"artifact registry for trained models",
	"evaluation datasets for fine-tuning",
	"object-native vector search reading segments from the store",
	"throughput of training storage in GB per second",
	"query logs as the inference bookend",
};

/* One query per non-empty line; '#' starts a comment line. */
static bool read_queries(const char *path, char ***out, size_t *n)
{
	FILE *f;
	char line[8192];
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!path) {
		*out = calloc(RAG_ARRAY_LEN(default_queries), sizeof(char *));
		for (size_t i = 0; *out && i < RAG_ARRAY_LEN(default_queries); i++)
			(*out)[(*n)++] = rag_strdup(default_queries[i]);
		return *out != NULL;
	}
	if (!(f = fopen(path, "r"))) {
		cli_error("bench: cannot open \"%s\": %s", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (*n == cap) {
			char **p = realloc(*out, (cap ? cap * 2 : 64) * sizeof(*p));
			if (!p)
				break;
			*out = p;
			cap = cap ? cap * 2 : 64;
		}
		(*out)[(*n)++] = rag_strdup(line);
	}
	fclose(f);
	if (*n == 0) {
		cli_error("bench: no query in \"%s\"", path);
		return false;
	}
	return true;
}

static void free_queries(char **q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
}

/* ================================================================ load */

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

#define LOAD_RESPONSE_MAX (64u << 20)

static volatile sig_atomic_t load_stop; /* SIGINT/SIGTERM: finish and report */

static void load_on_signal(int sig)
{
	(void)sig;
	load_stop = 1;
}

typedef struct load_run {
	struct sockaddr_in sa;
	char **reqs;              /* prebuilt HTTP requests, one per query */
	size_t *req_lens, nreq;
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
	char *buf;
	size_t buf_cap;
} load_worker;

static int load_connect(const load_run *g)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct timeval tv = {120, 0};

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&g->sa, sizeof(g->sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Find "\r\n\r\n" in b[0..n); the offset after it, or 0. */
static size_t header_end(const char *b, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' && b[i - 3] == '\r')
			return i + 1;
	return 0;
}

enum { XCH_OK, XCH_CLOSED_EARLY, XCH_ERROR };

/*
 * One request, one response on fd. OUT: *status, the body at w->buf[*body ..
 * *body + *body_len), *close_after. XCH_CLOSED_EARLY: the peer closed before
 * sending a byte (a stale keep-alive connection; the caller may retry).
 */
static int load_exchange(load_worker *w, int fd, const char *req, size_t len, int *status,
			 size_t *body, size_t *body_len, bool *close_after)
{
	size_t have = 0, hend = 0, total = 0, sent = 0;
	bool has_len = false;

	while (sent < len) {
		ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(w->first_error, sizeof(w->first_error), "send: %s", strerror(errno));
			return XCH_ERROR;
		}
		sent += (size_t)n;
	}
	*close_after = false;
	for (;;) {
		ssize_t n;
		if (have == w->buf_cap) {
			size_t cap = w->buf_cap ? w->buf_cap * 2 : 64 * 1024;
			char *p = cap <= LOAD_RESPONSE_MAX ? realloc(w->buf, cap + 1) : NULL;
			if (!p) {
				snprintf(w->first_error, sizeof(w->first_error), "response over %u bytes",
					 LOAD_RESPONSE_MAX);
				return XCH_ERROR;
			}
			w->buf = p;
			w->buf_cap = cap;
		}
		n = recv(fd, w->buf + have, w->buf_cap - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && have == 0)
			return XCH_CLOSED_EARLY;
		if (n <= 0) {
			snprintf(w->first_error, sizeof(w->first_error), "recv: %s",
				 n == 0 ? "connection closed mid-response" : strerror(errno));
			return XCH_ERROR;
		}
		have += (size_t)n;
		if (!hend && (hend = header_end(w->buf, have))) {
			char *line = w->buf, *end = w->buf + hend;
			w->buf[hend - 1] = '\0'; /* the last \n; headers are now a string */
			if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) {
				snprintf(w->first_error, sizeof(w->first_error), "not an HTTP response");
				return XCH_ERROR;
			}
			*status = (int)strtol(line + 9, NULL, 10);
			while ((line = strchr(line, '\n')) && line + 1 < end) {
				line++;
				if (strncasecmp(line, "content-length:", 15) == 0) {
					total = hend + strtoull(line + 15, NULL, 10);
					has_len = true;
				} else if (strncasecmp(line, "connection:", 11) == 0) {
					char v[32] = "";
					sscanf(line + 11, " %31[A-Za-z-]", v);
					*close_after = strcasecmp(v, "close") == 0;
				}
			}
			if (!has_len) {
				snprintf(w->first_error, sizeof(w->first_error),
					 "HTTP %d response without Content-Length", *status);
				return XCH_ERROR;
			}
			if (total > LOAD_RESPONSE_MAX) {
				snprintf(w->first_error, sizeof(w->first_error), "response over %u bytes",
					 LOAD_RESPONSE_MAX);
				return XCH_ERROR;
			}
		}
		if (hend && have >= total)
			break;
	}
	*body = hend;
	*body_len = total - hend;
	return XCH_OK;
}

static void *load_worker_main(void *arg)
{
	load_worker *w = arg;
	load_run *g = w->g;
	size_t qi = (size_t)w->idx % g->nreq;
	int fd = -1;

	for (;;) {
		uint64_t t0 = rag_now_ns(), lat;
		int status = 0, x;
		size_t body = 0, blen = 0;
		bool close_after = false, reused;

		if (t0 >= g->t_end || load_stop)
			break;
		if (g->max_requests && atomic_fetch_add(&g->issued, 1) >= g->max_requests)
			break;
		reused = fd >= 0;
		if (fd < 0 && (fd = load_connect(g)) < 0) {
			x = XCH_ERROR;
			snprintf(w->first_error, sizeof(w->first_error), "connect: %s", strerror(errno));
		} else {
			x = load_exchange(w, fd, g->reqs[qi], g->req_lens[qi], &status, &body, &blen,
					  &close_after);
			if (x == XCH_CLOSED_EARLY && reused) {
				/* the server closed an idle connection: reconnect once */
				close(fd);
				if ((fd = load_connect(g)) < 0) {
					x = XCH_ERROR;
					snprintf(w->first_error, sizeof(w->first_error), "connect: %s",
						 strerror(errno));
				} else {
					x = load_exchange(w, fd, g->reqs[qi], g->req_lens[qi], &status,
							  &body, &blen, &close_after);
				}
			}
		}
		lat = rag_now_ns() - t0;
		w->last_done = t0 + lat;
		w->requests++;
		if (x != XCH_OK) {
			if (x == XCH_CLOSED_EARLY)
				snprintf(w->first_error, sizeof(w->first_error),
					 "connection closed before a response");
			w->failed++;
			w->transport++;
			if (fd >= 0)
				close(fd);
			fd = -1;
			rag_sleep_ms(5);
			qi = (qi + 1) % g->nreq;
			continue;
		}
		if (status >= 100 && status < 600)
			w->status[status]++;
		if (status == 200) {
			w->ok++;
		} else {
			w->failed++;
			if (!w->first_error[0])
				snprintf(w->first_error, sizeof(w->first_error), "HTTP %d: %.*s", status,
					 (int)(blen < 160 ? blen : 160), w->buf + body);
		}
		if (t0 >= g->t_measure) {
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
		if (g->record) {
			pthread_mutex_lock(&g->rec_lock);
			fprintf(g->record, "%d\t%.3f\t%d\t", status, (double)lat / 1e6, w->idx);
			fwrite(w->buf + body, 1, blen, g->record);
			fputc('\n', g->record);
			pthread_mutex_unlock(&g->rec_lock);
		}
		if (close_after) {
			close(fd);
			fd = -1;
		}
		qi = (qi + 1) % g->nreq;
		if (g->pause_ms)
			rag_sleep_ms(g->pause_ms);
	}
	if (fd >= 0)
		close(fd);
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

static bool parse_url(const char *url, struct sockaddr_in *sa, char *host, size_t hostlen)
{
	const char *p = url, *colon, *slash;
	int64_t port;
	char num[16];

	if (strncmp(p, "http://", 7) != 0)
		return false;
	p += 7;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon || (size_t)(colon - p) >= hostlen || (size_t)(slash - colon - 1) >= sizeof(num))
		return false;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	memcpy(num, colon + 1, (size_t)(slash - colon - 1));
	num[slash - colon - 1] = '\0';
	if (!rag_parse_i64(num, &port) || port < 1 || port > 65535)
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
			 &sa->sin_addr) == 1;
}

static int bench_load(cli_env *env, int argc, char **argv)
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
	char host[256], **queries = NULL, *end;
	size_t nq = 0;
	load_run g;
	load_worker *w = NULL;
	rag_config cfg;
	uint64_t t0, last = 0, ok = 0, failed = 0, transport = 0, total = 0, status[600] = {0};
	uint64_t *all = NULL;
	size_t nall = 0;
	double secs;
	int opt, rc = CLI_OK, started = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': url = optarg; break;
		case 'c':
			if (!rag_parse_i64(optarg, &clients) || clients < 1 || clients > 4096)
				goto usage;
			break;
		case 'd':
			duration = strtod(optarg, &end);
			if (*end || !(duration > 0))
				goto usage;
			have_duration = true;
			break;
		case 'w':
			warmup = strtod(optarg, &end);
			if (*end || !(warmup >= 0))
				goto usage;
			break;
		case 'n':
			if (!rag_parse_i64(optarg, &requests) || requests < 1)
				goto usage;
			break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 10000)
				goto usage;
			break;
		case 'p':
			if (!rag_parse_i64(optarg, &pause_ms) || pause_ms < 0 || pause_ms > 60000)
				goto usage;
			break;
		case 'q': qfile = optarg; break;
		case 'r': record = optarg; break;
		case 'j': as_json = true; break;
		case 'h': fputs(load_usage, stdout); return CLI_OK;
		default: goto usage;
		}
	}
	if (optind != argc || !url)
		goto usage;
	memset(&g, 0, sizeof(g));
	if (!parse_url(url, &g.sa, host, sizeof(host))) {
		cli_error("bench load: --url must be http://IPV4:PORT, not \"%s\"", url);
		return CLI_USAGE;
	}
	if (!cli_load_config(env, &cfg))
		return CLI_USAGE;
	if (!read_queries(qfile, &queries, &nq)) {
		rag_config_release(&cfg);
		return CLI_USAGE;
	}
	g.nreq = nq;
	g.reqs = calloc(nq, sizeof(*g.reqs));
	g.req_lens = calloc(nq, sizeof(*g.req_lens));
	for (size_t i = 0; g.reqs && g.req_lens && i < nq; i++) {
		json_t *j = json_pack("{s:s, s:I}", "q", queries[i], "k", (json_int_t)k);
		char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
		rag_buf b;

		rag_buf_init(&b, 1u << 20);
		if (body)
			rag_buf_printf(&b, "POST /v1/query HTTP/1.1\r\nHost: %s\r\n"
					   "Content-Type: application/json\r\nContent-Length: %zu\r\n",
				       host, strlen(body));
		if (body && cfg.query.token && *cfg.query.token)
			rag_buf_printf(&b, "Authorization: Bearer %s\r\n", cfg.query.token);
		if (body)
			rag_buf_printf(&b, "\r\n%s", body);
		g.reqs[i] = rag_buf_detach(&b, &g.req_lens[i]);
		free(body);
		json_decref(j);
	}
	rag_config_release(&cfg);
	if (record && !(g.record = fopen(record, "w"))) {
		cli_error("bench load: cannot create \"%s\": %s", record, strerror(errno));
		rc = CLI_FAIL;
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
		rc = CLI_FAIL;
		goto out;
	}
	for (int i = 0; i < clients; i++) {
		w[i].g = &g;
		w[i].idx = i;
		if (pthread_create(&w[i].th, NULL, load_worker_main, &w[i]) != 0) {
			cli_error("bench load: cannot start client thread %d", i);
			g.t_end = 0;
			rc = CLI_FAIL;
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
		memcpy(all + nall, w[i].lat, w[i].n * sizeof(*all));
		nall += w[i].n;
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	secs = last > g.t_measure ? (double)(last - g.t_measure) / 1e9 : 0;
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
		puts(s);
		free(s);
		json_decref(j);
	} else {
		printf("load: %lld clients, %.2f s measured, %llu requests (%llu ok, %llu failed), "
		       "%.0f q/s; latency ms p50 %.3f p95 %.3f p99 %.3f max %.3f\n",
		       (long long)clients, secs, (unsigned long long)total, (unsigned long long)ok,
		       (unsigned long long)failed, secs > 0 ? (double)nall / secs : 0.0,
		       pct_ms(all, nall, 0.50), pct_ms(all, nall, 0.95), pct_ms(all, nall, 0.99),
		       nall ? (double)all[nall - 1] / 1e6 : 0.0);
	}
	if (failed || !ok) {
		const char *first = "";
		for (int i = 0; i < started && !*first; i++)
			first = w[i].first_error;
		cli_error("bench load: %llu of %llu requests failed (%llu transport errors)%s%s",
			  (unsigned long long)failed, (unsigned long long)total,
			  (unsigned long long)transport, *first ? "; first: " : "", first);
		rc = CLI_FAIL;
	}
out:
	for (int i = 0; w && i < started; i++) {
		free(w[i].lat);
		free(w[i].buf);
	}
	free(w);
	free(all);
	for (size_t i = 0; g.reqs && i < g.nreq; i++)
		free(g.reqs[i]);
	free(g.reqs);
	free(g.req_lens);
	free_queries(queries, nq);
	return rc;
usage:
	fputs(load_usage, stderr);
	return CLI_USAGE;
}

/* ============================================================ dispatch */

bool bench_query_handles(const char *name)
{
	return strcmp(name, "load") == 0;
}

int bench_query(cli_env *env, int argc, char **argv)
{
	if (strcmp(argv[0], "load") == 0)
		return bench_load(env, argc, argv);
	cli_error("bench: unknown benchmark \"%s\"", argv[0]);
	return CLI_USAGE;
}
