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
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* raw FAISS, for the "limit" line of bench search (its headers say f()) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>
#pragma GCC diagnostic pop

#include "catalog.h"
#include "cli.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "qindex.h"
#include "rag_buf.h"
#include "rag_pool.h"
#include "rag_util.h"
#include "s3.h"
#include "segment.h"
#include "vindex.h"

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

/* ========================================================== make-index */

static const char make_usage[] =
	"usage: ragmap bench make-index [--chunks N] [--topics T] [--seed S]\n"
	"                               [--segment-chunks N] [--nlist L] [--nprobe P]\n"
	"                               [--fit-sample N] [--queries-out FILE] [--queries N]\n"
	"                               [--target-recall R]\n"
	"  Commits a synthetic index version of N chunks (default 1000000) under the\n"
	"  configured index.name, the way ingestion would: model, segments, catalog\n"
	"  snapshot (empty: no BM25 here), manifest, then LATEST. Each chunk is a\n"
	"  short text of made-up words, half from one of T topics (default 2000), half\n"
	"  from a shared Zipf-like vocabulary; the model (model.dims) is fitted on a\n"
	"  sample of them and embeds them all, so the vectors are clustered unit\n"
	"  vectors and text queries mean something. Segments hold up to\n"
	"  --segment-chunks (default N: one segment); IVF from index.ivf_threshold,\n"
	"  nlist/nprobe automatic unless given. --queries-out writes N (default 1000)\n"
	"  queries drawn from the same topics, one a line, for bench load and search.\n"
	"  --target-recall R: instead of the automatic nprobe, the smallest one whose\n"
	"  recall@10 against exact search is at least R on 200 other queries drawn\n"
	"  the same way (held out from --queries-out's).\n";

typedef struct synth {
	uint64_t seed;
	int topics, vocab;
	char **words;        /* vocab made-up words */
	int *topic_words;    /* topics x SYNTH_TOPIC_WORDS */
} synth;

#define SYNTH_TOPIC_WORDS 12
#define SYNTH_CHUNK_WORDS 24
#define SYNTH_DOC_CHUNKS 10

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
	return (double)(splitmix(x) >> 11) / 9007199254740992.0;
}

static bool synth_init(synth *sy, uint64_t seed, int topics, int vocab)
{
	static const char cons[] = "bcdfgklmnprstvz", vow[] = "aeiou";
	uint64_t r = seed * 7919 + 17;

	memset(sy, 0, sizeof(*sy));
	sy->seed = seed;
	sy->topics = topics;
	sy->vocab = vocab;
	if (!(sy->words = calloc((size_t)vocab, sizeof(char *))) ||
	    !(sy->topic_words = calloc((size_t)topics * SYNTH_TOPIC_WORDS, sizeof(int))))
		return false;
	for (int i = 0; i < vocab; i++) {
		char w[16];
		int n = 0, syl = 2 + (int)(splitmix(&r) % 3);
		for (int j = 0; j < syl; j++) {
			w[n++] = cons[splitmix(&r) % (sizeof(cons) - 1)];
			w[n++] = vow[splitmix(&r) % (sizeof(vow) - 1)];
		}
		w[n] = '\0';
		if (!(sy->words[i] = rag_strdup(w)))
			return false;
	}
	for (int t = 0; t < topics * SYNTH_TOPIC_WORDS; t++)
		sy->topic_words[t] = (int)(splitmix(&r) % (uint64_t)vocab);
	return true;
}

static void synth_release(synth *sy)
{
	for (int i = 0; sy->words && i < sy->vocab; i++)
		free(sy->words[i]);
	free(sy->words);
	free(sy->topic_words);
}

/* n words: a share `topical` from topic t, the rest shared (Zipf-like). */
static void synth_text(const synth *sy, uint64_t *r, int t, int n, double topical, rag_buf *out)
{
	for (int i = 0; i < n; i++) {
		const char *w;
		if (unit(r) < topical) {
			w = sy->words[sy->topic_words[t * SYNTH_TOPIC_WORDS +
						      (int)(splitmix(r) % SYNTH_TOPIC_WORDS)]];
		} else {
			double u = unit(r);
			w = sy->words[(int)(u * u * u * sy->vocab)];
		}
		rag_buf_printf(out, "%s%s", i ? " " : "", w);
	}
	rag_buf_putc(out, '.');
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

typedef struct search_seg {
	FaissIndex *faiss;    /* raw FAISS, IDMap over Flat or IVFFlat (bench search) */
	vindex *vi;
	int nlist, nprobe;
	int64_t count;
} search_seg;

typedef struct hit_ {
	float score;
	int64_t id;
} hit_;

static int cmp_hit(const void *a, const void *b)
{
	const hit_ *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Merge nseg lists of k (scores, ids) into the global top k ids (sorted). */
static void merge_top(const float *scores, const int64_t *ids, size_t nseg, int k, int64_t *out)
{
	hit_ *h = malloc(nseg * (size_t)k * sizeof(*h) + sizeof(*h));
	size_t n = 0;

	for (size_t i = 0; h && i < nseg * (size_t)k; i++)
		if (ids[i] >= 0)
			h[n++] = (hit_){scores[i], ids[i]};
	if (h)
		qsort(h, n, sizeof(*h), cmp_hit);
	for (int i = 0; i < k; i++)
		out[i] = h && (size_t)i < n ? h[i].id : -1;
	free(h);
}

/*
 * The global top k ids of one query over every segment through vindex:
 * nprobe > 0 for every segment (clamped to its nlist), 0 each segment's own,
 * -1 every list (exact). sc and ids are scratch of nseg * k.
 */
static rag_rc search_all(const search_seg *segs, size_t nseg, const float *q, int k, int nprobe,
			 float *sc, int64_t *ids, int64_t *top, rag_error *err)
{
	for (size_t s = 0; s < nseg; s++) {
		int np = nprobe > 0 ? nprobe : nprobe < 0 ? segs[s].nlist : segs[s].nprobe;
		rag_rc r = vindex_search(segs[s].vi, q, 1, k, np, sc + s * (size_t)k,
					 ids + s * (size_t)k, err);
		if (r)
			return r;
	}
	merge_top(sc, ids, nseg, k, top);
	return RAG_OK;
}

/* |top & exact| / |exact| (k ids each, -1 = none); -1 when exact is empty. */
static double recall_of(const int64_t *top, const int64_t *exact, int k)
{
	int hit = 0, have = 0;

	for (int c = 0; c < k; c++) {
		if (exact[c] < 0)
			continue;
		have++;
		for (int a = 0; a < k; a++)
			hit += top[a] == exact[c];
	}
	return have ? (double)hit / have : -1;
}

/*
 * Mean recall@k at nprobe of nq queries (qv, dims each) against exact[nq*k];
 * queries with an empty exact answer do not count. *p50_ms: the median time
 * of one query through vindex (all segments), if not NULL.
 */
static rag_rc recall_at(const search_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
			int k, int nprobe, const int64_t *exact, double *recall, double *p50_ms,
			rag_error *err)
{
	float *sc = malloc((nseg + 1) * (size_t)k * sizeof(*sc));
	int64_t *ids = malloc((nseg + 1) * (size_t)k * sizeof(*ids)), *top = malloc((size_t)k * 8);
	double *t = malloc((nq + 1) * sizeof(*t)), sum = 0;
	size_t n = 0;
	rag_rc r = RAG_OK;

	if (!sc || !ids || !top || !t) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nq && !r; i++) {
		uint64_t t0 = rag_now_ns();
		double rc_;
		if (exact[i * (size_t)k] < 0)
			continue;
		r = search_all(segs, nseg, qv + i * (size_t)dims, k, nprobe, sc, ids, top, err);
		t[n] = (double)(rag_now_ns() - t0) / 1e6;
		if (!r && (rc_ = recall_of(top, exact + i * (size_t)k, k)) >= 0) {
			sum += rc_;
			n++;
		}
	}
	*recall = n ? sum / (double)n : 0;
	if (p50_ms) {
		qsort(t, n, sizeof(*t), cmp_dbl);
		*p50_ms = n ? t[(n - 1) / 2] : 0;
	}
out:
	free(sc);
	free(ids);
	free(top);
	free(t);
	return r;
}

/* Exact top k of nq queries (exact[nq*k]); zero query vectors get -1s. */
static rag_rc exact_all(const search_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
			int k, int64_t *exact, rag_error *err)
{
	float *sc = malloc((nseg + 1) * (size_t)k * sizeof(*sc));
	int64_t *ids = malloc((nseg + 1) * (size_t)k * sizeof(*ids));
	rag_rc r = RAG_OK;

	if (!sc || !ids)
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < nq && !r; i++) {
		const float *q = qv + i * (size_t)dims;
		float norm = 0;
		for (int d = 0; d < dims; d++)
			norm += q[d] * q[d];
		if (norm == 0) {
			for (int j = 0; j < k; j++)
				exact[i * (size_t)k + (size_t)j] = -1;
			continue;
		}
		r = search_all(segs, nseg, q, k, -1, sc, ids, exact + i * (size_t)k, err);
	}
	free(sc);
	free(ids);
	return r;
}

typedef struct make_ctx {
	const embedder *model;
	const char *const *texts;
	const size_t *lens;
	float *vecs;
	size_t n;
	int dims;
} make_ctx;

#define EMBED_BATCH 8192

static rag_rc embed_batch(void *arg, size_t i)
{
	make_ctx *m = arg;
	size_t from = i * EMBED_BATCH, n = m->n - from < EMBED_BATCH ? m->n - from : EMBED_BATCH;

	return embedder_embed(m->model, m->texts + from, m->lens + from, n,
			      m->vecs + from * (size_t)m->dims, NULL, NULL);
}

static int bench_make_index(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"chunks", required_argument, NULL, 'n'}, {"topics", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'}, {"segment-chunks", required_argument, NULL, 'g'},
		{"nlist", required_argument, NULL, 'l'}, {"nprobe", required_argument, NULL, 'p'},
		{"fit-sample", required_argument, NULL, 'f'},
		{"queries-out", required_argument, NULL, 'o'}, {"queries", required_argument, NULL, 'q'},
		{"target-recall", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	double target = 0;
	search_seg *tune = NULL;
	size_t ntune = 0;
	int64_t nchunks = 1000000, topics = 2000, seed = 1, seg_chunks = 0, nlist = 0, nprobe = 0;
	int64_t fit_sample = 50000, nqueries = 1000;
	const char *qout = NULL;
	rag_config cfg;
	rag_error err = {0};
	s3_client *s3 = NULL;
	synth sy = {0};
	rag_buf text, body;
	uint64_t *offs = NULL, t0 = rag_now_ns(), t;
	char **keys = NULL, **heads = NULL;
	const char **texts = NULL;
	size_t *lens = NULL;
	seg_chunk *chunks = NULL;
	float *vecs = NULL;
	embedder *model = NULL;
	manifest m = {0};
	char root[1024], key[1200], base[1100], tmpdb[4200], token[COMMIT_TOKEN_LEN];
	commit_head head;
	int64_t version = 0;
	int dims, opt, rc = CLI_OK;
	rag_rc r = RAG_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int64_t *dst = NULL, lo = 1, hi = INT32_MAX;
		switch (opt) {
		case 'n': dst = &nchunks; lo = 100; break;
		case 't': dst = &topics; break;
		case 's': dst = &seed; lo = 0; break;
		case 'g': dst = &seg_chunks; lo = 100; break;
		case 'l': dst = &nlist; break;
		case 'p': dst = &nprobe; break;
		case 'f': dst = &fit_sample; lo = 100; break;
		case 'q': dst = &nqueries; break;
		case 'o': qout = optarg; break;
		case 'R': {
			char *end;
			target = strtod(optarg, &end);
			if (*end || !(target > 0 && target <= 1)) {
				cli_error("bench make-index: --target-recall wants a number in (0, 1]");
				return CLI_USAGE;
			}
			break;
		}
		case 'h': fputs(make_usage, stdout); return CLI_OK;
		default: fputs(make_usage, stderr); return CLI_USAGE;
		}
		if (dst && (!rag_parse_i64(optarg, dst) || *dst < lo || *dst > hi)) {
			const char *name = "?";
			for (size_t i = 0; opts[i].name; i++)
				if (opts[i].val == opt)
					name = opts[i].name;
			cli_error("bench make-index: --%s wants an integer in %lld..%lld, not \"%s\"",
				  name, (long long)lo, (long long)hi, optarg);
			return CLI_USAGE;
		}
	}
	if (optind != argc) {
		fputs(make_usage, stderr);
		return CLI_USAGE;
	}
	if (!seg_chunks)
		seg_chunks = nchunks;
	if (fit_sample > nchunks)
		fit_sample = nchunks;
	if (!cli_load_config(env, &cfg))
		return CLI_USAGE;
	rag_buf_init(&text, (size_t)1 << 34);
	rag_buf_init(&body, (size_t)2 << 30);
	if (!(s3 = s3_client_new(&cfg, &env->log, &err)))
		goto fail;
	if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root))) {
		rag_error_set(&err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto fail;
	}
	/* the store answers before minutes of embedding; the version is settled
	 * when committing (the newest committed then, + 1) */
	if ((r = commit_read_newest(s3, S3_OP("bench", NULL), root, &head, NULL, &err)))
		goto fail;
	commit_token(token);

	/* ---- texts */
	if (!synth_init(&sy, (uint64_t)seed, (int)topics, 30000) ||
	    !(offs = calloc((size_t)nchunks + 1, sizeof(*offs))) ||
	    !(keys = calloc((size_t)(nchunks / SYNTH_DOC_CHUNKS + 1), sizeof(*keys))) ||
	    !(heads = calloc((size_t)(nchunks / SYNTH_DOC_CHUNKS + 1), sizeof(*heads))) ||
	    !(texts = calloc((size_t)nchunks, sizeof(*texts))) ||
	    !(lens = calloc((size_t)nchunks, sizeof(*lens))) ||
	    !(chunks = calloc((size_t)nchunks, sizeof(*chunks)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	t = rag_now_ns();
	for (int64_t i = 0; i < nchunks; i++) {
		int64_t d = i / SYNTH_DOC_CHUNKS;
		uint64_t rr = (uint64_t)seed * 1000003u + (uint64_t)d, rc_ = rr ^ ((uint64_t)i << 20);
		int topic = (int)(splitmix(&rr) % (uint64_t)topics);
		if (i % SYNTH_DOC_CHUNKS == 0) {
			char k[128], h[128];
			snprintf(k, sizeof(k), "synthetic/t%04d/doc-%07lld.txt", topic, (long long)d);
			snprintf(h, sizeof(h), "Topic %d > Document %lld", topic, (long long)d);
			keys[d] = rag_strdup(k);
			heads[d] = rag_strdup(h);
		}
		offs[i] = text.len;
		synth_text(&sy, &rc_, topic, SYNTH_CHUNK_WORDS, 0.5, &text);
		if (rag_buf_putc(&text, '\0')) {
			rag_error_set(&err, RAG_ETOOBIG, "synthetic texts too large");
			goto fail;
		}
	}
	for (int64_t i = 0; i < nchunks; i++) {
		size_t len = strlen(text.data + offs[i]);
		int64_t d = i / SYNTH_DOC_CHUNKS;
		texts[i] = text.data + offs[i];
		lens[i] = len;
		chunks[i] = (seg_chunk){.id = i + 1, .key = keys[d], .ordinal = (int)(i % SYNTH_DOC_CHUNKS),
					.off = (uint64_t)(i % SYNTH_DOC_CHUNKS) * 200, .len = len,
					.heading = heads[d], .text = texts[i], .text_len = len};
	}
	printf("texts: %lld chunks in %lld documents, %.1f MB, %.1f s\n", (long long)nchunks,
	       (long long)((nchunks + SYNTH_DOC_CHUNKS - 1) / SYNTH_DOC_CHUNKS), (double)text.len / 1e6,
	       rag_ms_since(t) / 1e3);
	fflush(stdout);

	/* ---- the model: fitted on an evenly spread sample */
	t = rag_now_ns();
	{
		embed_fit_opts fo = EMBED_FIT_OPTS_DEFAULT;
		const char **st = calloc((size_t)fit_sample, sizeof(*st));
		size_t *sl = calloc((size_t)fit_sample, sizeof(*sl));
		char on[256];
		if (!st || !sl) {
			free(st);
			free(sl);
			rag_error_set(&err, RAG_ENOMEM, "out of memory");
			goto fail;
		}
		for (int64_t i = 0; i < fit_sample; i++) {
			int64_t j = i * (nchunks / fit_sample);
			st[i] = texts[j];
			sl[i] = lens[j];
		}
		snprintf(on, sizeof(on), "%lld of %lld synthetic chunks (ragmap bench make-index, seed %lld)",
			 (long long)fit_sample, (long long)nchunks, (long long)seed);
		fo.dims = (int)cfg.model.dims;
		fo.name = cfg.model.name;
		fo.fitted_on = on;
		r = embedder_fit(st, sl, (size_t)fit_sample, &fo, &model, &err);
		free(st);
		free(sl);
		if (r)
			goto fail;
	}
	dims = embedder_dims(model);
	if ((r = modelobj_publish(s3, S3_OP("bench", NULL), cfg.model.prefix, model, base,
				  sizeof(base), &err)))
		goto fail;
	printf("model: %s %s, %d dims, fitted on %lld chunks in %.1f s\n",
	       embedder_name(model), embedder_version(model), dims, (long long)fit_sample,
	       rag_ms_since(t) / 1e3);
	fflush(stdout);

	/* ---- vectors */
	t = rag_now_ns();
	if (!(vecs = malloc((size_t)nchunks * (size_t)dims * sizeof(float)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	{
		make_ctx mc = {model, texts, lens, vecs, (size_t)nchunks, dims};
		if ((r = rag_parallel_for(((size_t)nchunks + EMBED_BATCH - 1) / EMBED_BATCH,
					  rag_cpu_count(), embed_batch, &mc))) {
			rag_error_set(&err, r, "embedding the synthetic chunks failed");
			goto fail;
		}
	}
	printf("vectors: %lld x %d embedded in %.1f s\n", (long long)nchunks, dims,
	       rag_ms_since(t) / 1e3);
	fflush(stdout);

	/* ---- segments */
	rag_strlcpy(m.index, cfg.index.name, sizeof(m.index));
	rag_strlcpy(m.writer, token, sizeof(m.writer));
	rag_strlcpy(m.model.name, embedder_name(model), sizeof(m.model.name));
	rag_strlcpy(m.model.version, embedder_version(model), sizeof(m.model.version));
	m.model.dims = dims;
	m.model.key = rag_strdup(base); /* the card's key */
	m.nsegments = 0;
	if (!(m.segments = calloc((size_t)((nchunks + seg_chunks - 1) / seg_chunks) + 1,
				  sizeof(*m.segments))) ||
	    !(tune = calloc((size_t)((nchunks + seg_chunks - 1) / seg_chunks) + 1, sizeof(*tune)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	for (int64_t from = 0; from < nchunks; from += seg_chunks) {
		int64_t n = nchunks - from < seg_chunks ? nchunks - from : seg_chunks;
		vindex_build_opts vo = {.ivf_threshold = cfg.index.ivf_threshold, .nlist = (int)nlist,
					.nprobe = (int)nprobe};
		seg_build b;
		char id[64];
		t = rag_now_ns();
		/* unique to this writer (commit.h, invariant 2) */
		snprintf(id, sizeof(id), "m%s-%06zu", token, m.nsegments);
		if ((r = segment_build(dims, chunks + from, vecs + (size_t)from * (size_t)dims, (size_t)n,
				       &vo, &b, &err)))
			goto fail;
		printf("segment %s: %lld chunks, %s, nlist %d, nprobe %d, built in %.1f s; ", id,
		       (long long)n, b.kind, b.nlist, b.nprobe, rag_ms_since(t) / 1e3);
		if (target > 0) {
			tune[ntune] = (search_seg){NULL, NULL, b.nlist, b.nprobe, n};
			if ((r = vindex_load(b.obj[MF_INDEX].data, b.obj[MF_INDEX].len, &tune[ntune].vi,
					     &err))) {
				seg_build_release(&b);
				goto fail;
			}
			ntune++;
		}
		fflush(stdout);
		t = rag_now_ns();
		r = segment_upload(s3, S3_OP("bench", NULL), root, id, &b, &m.segments[m.nsegments], &err);
		seg_build_release(&b);
		if (r)
			goto fail;
		m.nsegments++;
		printf("uploaded in %.1f s\n", rag_ms_since(t) / 1e3);
		fflush(stdout);
	}
	free(vecs);
	vecs = NULL;

	/* ---- nprobe for a target recall, on held-out queries */
	if (target > 0) {
		enum { NTUNE = 200 };
		uint64_t rr = (uint64_t)seed * 4242 + 99; /* not the --queries-out stream */
		float *qv = malloc((size_t)NTUNE * (size_t)dims * sizeof(float));
		int64_t *ex = malloc((size_t)NTUNE * 10 * sizeof(int64_t));
		int maxl = 1, np = 1;
		double rec = 0;
		for (size_t i = 0; i < ntune; i++)
			maxl = tune[i].nlist > maxl ? tune[i].nlist : maxl;
		t = rag_now_ns();
		for (int i = 0; qv && ex && i < NTUNE && !r; i++) {
			const char *qt;
			size_t ql;
			rag_buf_reset(&body);
			synth_text(&sy, &rr, (int)(splitmix(&rr) % (uint64_t)topics), 6, 0.67, &body);
			body.data[body.len - 1] = '\0';
			qt = body.data;
			ql = strlen(qt);
			r = embedder_embed(model, &qt, &ql, 1, qv + (size_t)i * (size_t)dims, NULL, &err);
		}
		if (!qv || !ex)
			r = rag_error_set(&err, RAG_ENOMEM, "out of memory");
		if (!r)
			r = exact_all(tune, ntune, qv, NTUNE, dims, 10, ex, &err);
		/* 1, 2, 3, ... then about 1.25x steps: the smallest that reaches it */
		for (np = 1; !r; np = np < 8 ? np + 1 : np + np / 4) {
			if (np > maxl)
				np = maxl;
			if ((r = recall_at(tune, ntune, qv, NTUNE, dims, 10, np, ex, &rec, NULL, &err)))
				break;
			if (rec >= target || np == maxl)
				break;
		}
		free(qv);
		free(ex);
		if (r)
			goto fail;
		for (size_t i = 0; i < m.nsegments; i++)
			m.segments[i].nprobe = np < m.segments[i].nlist ? np : m.segments[i].nlist;
		printf("nprobe %d: recall@10 %.4f >= %.2f on %d held-out queries (automatic: %d), "
		       "tuned in %.1f s\n", np, rec, target, NTUNE, ntune ? tune[0].nprobe : 0,
		       rag_ms_since(t) / 1e3);
		fflush(stdout);
	}

	/* ---- catalog snapshot (empty), then the commit (commit.h) as version V =
	 * the newest committed + 1. The index made here replaces every earlier
	 * version (nothing of theirs is named), so when another writer commits
	 * V first there is nothing to rebase: this one tries V + 1. */
	{
		catalog *cat = NULL;
		struct stat sb;
		snprintf(tmpdb, sizeof(tmpdb), "%s/bench-make-index-%d.sqlite",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
		unlink(tmpdb);
		r = catalog_open(tmpdb, &cat, &err);
		catalog_close(cat);
		m.catalog.size = stat(tmpdb, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		if (r) {
			unlink(tmpdb);
			goto fail;
		}
	}
	m.documents = (nchunks + SYNTH_DOC_CHUNKS - 1) / SYNTH_DOC_CHUNKS;
	m.chunks = nchunks;
	for (unsigned attempt = 1;; attempt++) {
		if ((r = commit_read_newest(s3, S3_OP("bench", NULL), root, &head, NULL, &err)))
			break;
		version = m.version = head.version + 1;
		m.created_at = rag_wall_time();
		free(m.catalog.key);
		m.catalog.key = NULL;
		if (mf_catalog_key(root, version, token, key, sizeof(key))) {
			r = rag_error_set(&err, RAG_ECONFIG, "index.prefix/index.name too long");
			break;
		}
		if (!(m.catalog.key = rag_strdup(key))) {
			r = rag_error_set(&err, RAG_ENOMEM, "out of memory");
			break;
		}
		if ((r = s3_put_file(s3, S3_OP("bench", NULL), tmpdb, key, NULL, &err)))
			break;
		r = commit_publish(s3, S3_OP("bench", NULL), root, true, &m, &err);
		if (r != RAG_ECONFLICT || attempt >= COMMIT_MAX_ATTEMPTS)
			break;
		printf("version %lld: committed by another writer first; trying the next\n",
		       (long long)version);
		fflush(stdout);
		rag_error_clear(&err);
		rag_sleep_ms(commit_backoff_ms(attempt));
	}
	unlink(tmpdb);
	if (r)
		goto fail;
	printf("committed version %lld of index \"%s\": %lld chunks, %zu segments, in %.1f s\n",
	       (long long)version, cfg.index.name, (long long)nchunks, m.nsegments,
	       rag_ms_since(t0) / 1e3);

	/* ---- queries from the same topics */
	if (qout) {
		FILE *f = fopen(qout, "w");
		uint64_t rr = (uint64_t)seed * 31337 + 5;
		if (!f) {
			rag_error_set(&err, RAG_EIO, "cannot create \"%s\"", qout);
			goto fail;
		}
		for (int64_t i = 0; i < nqueries; i++) {
			rag_buf_reset(&body);
			synth_text(&sy, &rr, (int)(splitmix(&rr) % (uint64_t)topics), 6, 0.67, &body);
			body.data[body.len - 1] = '\0'; /* no final period */
			fprintf(f, "%s\n", body.data);
		}
		fclose(f);
		printf("queries: %lld in %s\n", (long long)nqueries, qout);
	}
	goto out;
fail:
	rc = cli_fail(&err);
out:
	for (int64_t d = 0; keys && d <= nchunks / SYNTH_DOC_CHUNKS; d++) {
		free(keys[d]);
		free(heads[d]);
	}
	free(keys);
	free(heads);
	free(texts);
	free(lens);
	free(chunks);
	free(offs);
	free(vecs);
	for (size_t i = 0; tune && i < ntune; i++)
		vindex_free(tune[i].vi);
	free(tune);
	manifest_release(&m);
	embedder_free(model);
	synth_release(&sy);
	rag_buf_release(&text);
	rag_buf_release(&body);
	s3_client_free(s3);
	rag_config_release(&cfg);
	return rc;
}

/* ============================================================== search */

static const char search_usage[] =
	"usage: ragmap bench search [--queries FILE] [-k N] [--repeat R] [--json]\n"
	"                           [--export FILE]\n"
	"  In-process search time on the latest version of index.name, one query at\n"
	"  a time, the same query vectors through: vindex_search (FAISS as the server\n"
	"  calls it, plus canonical scoring: the limit), raw FAISS (faiss_Index_search\n"
	"  on the segments' own index.faiss with each segment's nprobe, with its\n"
	"  OpenMP threads and with one), and a memory-mode qindex (its search_ms:\n"
	"  every segment, merge, tombstones). Then recall@k of the\n"
	"  IVF configuration against exact search (all lists probed). Queries are\n"
	"  embedded once, outside the timings; each path runs over all queries once\n"
	"  to warm up, then R times (default 3) timed. --export writes, per query,\n"
	"  its vector (dims x f32) and its exact top k ids (k x i64), little-endian,\n"
	"  after a header \"RMQX\" u32 dims u32 k u32 nq (for bench/lancedb).\n";

static double stats_line(const char *name, double *v, size_t n, double ref_p50, json_t *js)
{
	double sum = 0, p50, p99;

	qsort(v, n, sizeof(*v), cmp_dbl);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	p50 = n ? v[(n - 1) / 2] : 0;
	p99 = n ? v[(size_t)ceil(0.99 * (double)n) - 1] : 0;
	printf("| %-34s | %9.1f | %9.1f | %9.1f | %7.2f |\n", name, p50 * 1e3,
	       sum / (double)n * 1e3, p99 * 1e3, ref_p50 > 0 ? p50 / ref_p50 : 1.0);
	json_object_set_new(js, name, json_pack("{s:f, s:f, s:f}", "p50_us", p50 * 1e3, "mean_us",
						sum / (double)n * 1e3, "p99_us", p99 * 1e3));
	return p50;
}

static int bench_search(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"queries", required_argument, NULL, 'q'}, {"repeat", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'}, {"export", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *qfile = NULL, *xfile = NULL;
	int64_t k = 10, repeat = 3;
	bool as_json = false;
	char **queries = NULL, root[1024];
	commit_head head;
	size_t nq = 0, nseg = 0;
	rag_config cfg;
	rag_error err = {0};
	s3_client *s3 = NULL;
	rag_buf b;
	manifest m = {0};
	embedder *model = NULL;
	search_seg *segs = NULL;
	qindex *qi = NULL;
	float *qv = NULL, *sc = NULL;
	int64_t *ids = NULL, *top = NULL;
	double *t_faiss = NULL, *t_faiss1 = NULL, *t_vindex = NULL, *t_qindex = NULL;
	double recall = 0, recall_faiss = 0;
	int64_t *exact_ids = NULL;
	int dims, opt, rc = CLI_OK, kk;
	size_t nrun = 0, nvalid = 0;
	int64_t version;
	rag_rc r;
	json_t *js = json_object();

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'q': qfile = optarg; break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 1000)
				goto usage;
			break;
		case 'r':
			if (!rag_parse_i64(optarg, &repeat) || repeat < 1 || repeat > 1000)
				goto usage;
			break;
		case 'j': as_json = true; break;
		case 'x': xfile = optarg; break;
		case 'h': fputs(search_usage, stdout); json_decref(js); return CLI_OK;
		default: goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	kk = (int)k;
	openblas_set_num_threads(1); /* one query on one thread, as in the server */
	if (!cli_load_config(env, &cfg)) {
		json_decref(js);
		return CLI_USAGE;
	}
	if (!read_queries(qfile, &queries, &nq)) {
		rag_config_release(&cfg);
		json_decref(js);
		return CLI_USAGE;
	}
	rag_buf_init(&b, (size_t)4 << 30);
	if (!(s3 = s3_client_new(&cfg, &env->log, &err)))
		goto fail;
	if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root))) {
		rag_error_set(&err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto fail;
	}
	if ((r = commit_read_newest(s3, S3_OP("bench", NULL), root, &head, &m, &err)))
		goto fail;
	if ((version = head.version) == 0) {
		rag_error_set(&err, RAG_ENOTFOUND, "bench search: index \"%s\" has no version yet",
			      cfg.index.name);
		goto fail;
	}
	if ((r = modelobj_open(s3, S3_OP("bench", NULL), m.model.key, &model, &err)))
		goto fail;
	dims = embedder_dims(model);
	nseg = m.nsegments;
	if (!(segs = calloc(nseg + 1, sizeof(*segs)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < nseg; i++) {
		const mf_segment *ms = &m.segments[i];
		FILE *f;
		rag_buf_reset(&b);
		if ((r = s3_get(s3, S3_OP("bench", NULL), ms->obj[MF_INDEX].key, &b, NULL, &err)) ||
		    (r = vindex_load(b.data, b.len, &segs[i].vi, &err)))
			goto fail;
		if (!(f = fmemopen(b.data, b.len, "rb")) || faiss_read_index(f, 0, &segs[i].faiss)) {
			if (f)
				fclose(f);
			rag_error_set(&err, RAG_EINTERNAL, "FAISS cannot read \"%s\": %s",
				      ms->obj[MF_INDEX].key, faiss_get_last_error());
			goto fail;
		}
		fclose(f);
		segs[i].nlist = ms->nlist;
		segs[i].nprobe = ms->nprobe;
		segs[i].count = ms->count;
		if (ms->nlist > 1) {
			FaissIndexIDMap *map = faiss_IndexIDMap_cast(segs[i].faiss);
			FaissIndexIVF *ivf = map ? faiss_IndexIVF_cast(faiss_IndexIDMap_sub_index(map)) : NULL;
			if (!ivf) {
				rag_error_set(&err, RAG_ECORRUPT, "segment \"%s\" says IVF, FAISS disagrees",
					      ms->id);
				goto fail;
			}
			faiss_IndexIVF_set_nprobe(ivf, (size_t)ms->nprobe);
		}
	}
	rag_buf_release(&b);
	if ((r = qindex_open(s3, &cfg, QMODE_MEMORY, NULL, &env->log, &qi, &err)))
		goto fail;
	if (qindex_status_version(qi) != version) {
		rag_error_set(&err, RAG_EINVAL, "the index moved to a new version during the bench");
		goto fail;
	}
	if (!(qv = malloc(nq * (size_t)dims * sizeof(float))) ||
	    !(sc = malloc((nseg + 1) * (size_t)kk * sizeof(float))) ||
	    !(ids = malloc((nseg + 1) * (size_t)kk * sizeof(int64_t))) ||
	    !(top = malloc((size_t)kk * sizeof(int64_t))) ||
	    !(t_faiss = malloc(nq * (size_t)repeat * sizeof(double))) ||
	    !(t_faiss1 = malloc(nq * (size_t)repeat * sizeof(double))) ||
	    !(t_vindex = malloc(nq * (size_t)repeat * sizeof(double))) ||
	    !(t_qindex = malloc(nq * (size_t)repeat * sizeof(double)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < nq; i++) {
		const char *qt = queries[i];
		size_t ql = strlen(qt);
		if ((r = embedder_embed(model, &qt, &ql, 1, qv + i * (size_t)dims, NULL, &err)))
			goto fail;
	}
	/*
	 * The timings: one pass per path over every query, R times. (Passes, not
	 * the paths interleaved per query: OpenMP and OpenBLAS worker threads
	 * spin for a while after a call, and on a small machine they would slow
	 * whichever path runs next.)
	 */
	for (int path = 0; path < 4; path++) {
		size_t at = 0;
		int omp_threads = omp_get_max_threads();
		if (path == 1)
			omp_set_num_threads(1); /* FAISS without its OpenMP fan-out */
		for (int64_t rep = -1; rep < repeat; rep++) /* -1: a warm-up pass */
			for (size_t i = 0, first = 1; i < nq; i++, first = 0) {
				const float *q = qv + i * (size_t)dims;
				float norm = 0;
				uint64_t t;
				qresult res;
				for (int d = 0; d < dims; d++)
					norm += q[d] * q[d];
				if (norm == 0)
					continue; /* no known term: nothing to search */
				if (first && rep == 0)
					at = 0; /* the warm-up pass is overwritten */
				t = rag_now_ns();
				if (path <= 1) {
					for (size_t s = 0; s < nseg; s++) {
						idx_t lab[1024];
						if (faiss_Index_search(segs[s].faiss, 1, q, kk,
								       sc + s * (size_t)kk, lab)) {
							rag_error_set(&err, RAG_EINTERNAL, "FAISS search: %s",
								      faiss_get_last_error());
							goto fail;
						}
						for (int j = 0; j < kk; j++)
							ids[s * (size_t)kk + (size_t)j] = lab[j];
					}
					merge_top(sc, ids, nseg, kk, top);
					(path ? t_faiss1 : t_faiss)[at++] = (double)(rag_now_ns() - t) / 1e6;
				} else if (path == 2) {
					for (size_t s = 0; s < nseg; s++)
						if ((r = vindex_search(segs[s].vi, q, 1, kk, segs[s].nprobe,
								       sc + s * (size_t)kk,
								       ids + s * (size_t)kk, &err)))
							goto fail;
					merge_top(sc, ids, nseg, kk, top);
					t_vindex[at++] = (double)(rag_now_ns() - t) / 1e6;
				} else {
					if ((r = qindex_query(qi, queries[i], strlen(queries[i]), kk,
							      QRET_DENSE, &res, &err)))
						goto fail;
					t_qindex[at++] = res.search_ms;
					qresult_release(&res);
				}
			}
		nrun = at;
		omp_set_num_threads(omp_threads);
	}
	/* recall@k: IVF (each segment's nprobe) against exact (every list) */
	if (!(exact_ids = malloc(nq * (size_t)kk * sizeof(*exact_ids)))) {
		rag_error_set(&err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = exact_all(segs, nseg, qv, nq, dims, kk, exact_ids, &err)) ||
	    (r = recall_at(segs, nseg, qv, nq, dims, kk, 0, exact_ids, &recall, NULL, &err)))
		goto fail;
	for (size_t i = 0; i < nq; i++) {
		double rc_;
		if (exact_ids[i * (size_t)kk] < 0)
			continue;
		for (size_t s = 0; s < nseg; s++) {
			idx_t lab[1024];
			faiss_Index_search(segs[s].faiss, 1, qv + i * (size_t)dims, kk, sc + s * (size_t)kk,
					   lab);
			for (int j = 0; j < kk; j++)
				ids[s * (size_t)kk + (size_t)j] = lab[j];
		}
		merge_top(sc, ids, nseg, kk, top);
		if ((rc_ = recall_of(top, exact_ids + i * (size_t)kk, kk)) >= 0) {
			recall_faiss += rc_;
			nvalid++;
		}
	}
	recall_faiss = nvalid ? recall_faiss / (double)nvalid : 0;
	if (xfile) {
		FILE *f = fopen(xfile, "wb");
		uint32_t hdr[3] = {(uint32_t)dims, (uint32_t)kk, (uint32_t)nq};
		bool okw = f && fwrite("RMQX", 1, 4, f) == 4 && fwrite(hdr, 4, 3, f) == 3;
		for (size_t i = 0; okw && i < nq; i++)
			okw = fwrite(qv + i * (size_t)dims, sizeof(float), (size_t)dims, f) == (size_t)dims &&
			      fwrite(exact_ids + i * (size_t)kk, 8, (size_t)kk, f) == (size_t)kk;
		if (!f || fclose(f) != 0 || !okw) {
			rag_error_set(&err, RAG_EIO, "cannot write \"%s\"", xfile);
			goto fail;
		}
	}
	{
		double ref, p_qindex, f_omp, f_one, best;
		int64_t nvec = 0, nl = 0, np = 0;
		for (size_t s = 0; s < nseg; s++) {
			nvec += segs[s].count;
			nl += segs[s].nlist;
			np += segs[s].nprobe;
		}
		printf("index \"%s\" version %lld: %lld vectors x %d dims in %zu segments "
		       "(nlist %lld, nprobe %lld in all); %zu queries x %lld, k %d, one thread\n\n",
		       cfg.index.name, (long long)version, (long long)nvec, dims, nseg, (long long)nl,
		       (long long)np, nq, (long long)repeat, kk);
		printf("| %-34s | %9s | %9s | %9s | %7s |\n", "search path (one query)", "p50 us",
		       "mean us", "p99 us", "x limit");
		printf("|%s|%s|%s|%s|%s|\n", "------------------------------------", "-----------",
		       "-----------", "-----------", "---------");
		ref = stats_line("vindex_search (the limit)", t_vindex, nrun, 0, js);
		f_omp = stats_line("raw faiss_Index_search, OpenMP", t_faiss, nrun, ref, js);
		f_one = stats_line("raw faiss_Index_search, 1 thread", t_faiss1, nrun, ref, js);
		p_qindex = stats_line("memory-mode qindex search", t_qindex, nrun, ref, js);
		best = f_omp < f_one ? f_omp : f_one;
		printf("\nrecall@%d of the IVF configuration vs exact search: %.4f (raw FAISS: %.4f)"
		       " over %zu queries\n", kk, recall, recall_faiss, nvalid);
		printf("memory-mode search (p50): %.2fx vindex_search, %.2fx the faster raw FAISS "
		       "(target <= 1.2x)\n", ref > 0 ? p_qindex / ref : 0, best > 0 ? p_qindex / best : 0);
		json_object_set_new(js, "recall", json_real(recall));
		json_object_set_new(js, "recall_faiss", json_real(recall_faiss));
		/* the trade-off: recall and time at other nprobe values */
		if (nl > (int64_t)nseg) {
			json_t *sw = json_array();
			printf("\n| nprobe (each segment) | recall@%d | vindex p50 us |\n|---|---|---|\n", kk);
			for (int np_ = 1; np_ <= 1024; np_ *= 2) {
				double rec, p50;
				bool last = true;
				for (size_t s = 0; s < nseg; s++)
					last = last && np_ >= segs[s].nlist;
				if ((r = recall_at(segs, nseg, qv, nq, dims, kk, np_, exact_ids, &rec, &p50, &err))) {
					json_decref(sw);
					goto fail;
				}
				printf("| %d%s | %.4f | %.1f |\n", np_, last ? " (all: exact)" : "", rec, p50 * 1e3);
				json_array_append_new(sw, json_pack("{s:i, s:f, s:f}", "nprobe", np_, "recall", rec,
								    "p50_us", p50 * 1e3));
				if (last || rec >= 0.999 || np_ >= 128)
					break; /* past this it is exact search, slowly */
			}
			json_object_set_new(js, "sweep", sw);
		}
		json_object_set_new(js, "vectors", json_integer((json_int_t)nvec));
		json_object_set_new(js, "segments", json_integer((json_int_t)nseg));
		json_object_set_new(js, "nlist", json_integer((json_int_t)nl));
		json_object_set_new(js, "nprobe", json_integer((json_int_t)np));
		json_object_set_new(js, "ratio_memory_vs_vindex", json_real(ref > 0 ? p_qindex / ref : 0));
		json_object_set_new(js, "ratio_memory_vs_raw_faiss", json_real(best > 0 ? p_qindex / best : 0));
		if (as_json) {
			char *s = json_dumps(js, JSON_COMPACT);
			printf("%s\n", s);
			free(s);
		}
	}
	goto out;
fail:
	rc = cli_fail(&err);
out:
	for (size_t i = 0; segs && i < nseg; i++) {
		faiss_Index_free(segs[i].faiss);
		vindex_free(segs[i].vi);
	}
	free(segs);
	qindex_release(qi);
	free(qv);
	free(sc);
	free(ids);
	free(top);
	free(exact_ids);
	free(t_faiss);
	free(t_faiss1);
	free(t_vindex);
	free(t_qindex);
	manifest_release(&m);
	embedder_free(model);
	rag_buf_release(&b);
	s3_client_free(s3);
	free_queries(queries, nq);
	rag_config_release(&cfg);
	json_decref(js);
	return rc;
usage:
	fputs(search_usage, stderr);
	json_decref(js);
	return CLI_USAGE;
}

/* ============================================================ dispatch */

bool bench_query_handles(const char *name)
{
	return strcmp(name, "load") == 0 || strcmp(name, "make-index") == 0 ||
	       strcmp(name, "search") == 0;
}

int bench_query(cli_env *env, int argc, char **argv)
{
	if (strcmp(argv[0], "load") == 0)
		return bench_load(env, argc, argv);
	if (strcmp(argv[0], "make-index") == 0)
		return bench_make_index(env, argc, argv);
	if (strcmp(argv[0], "search") == 0)
		return bench_search(env, argc, argv);
	cli_error("bench: unknown benchmark \"%s\"", argv[0]);
	return CLI_USAGE;
}
