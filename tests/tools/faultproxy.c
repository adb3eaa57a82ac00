/*
 * faultproxy — an HTTP/1.1 proxy between ragmap and an S3 server that
 * injects faults, for the fault tests (tests/integration/fault_*.sh).
 *
 *   faultproxy --upstream URL [--listen PORT] [--port-file FILE] [--seed N]
 *              [--rate R] [--rate-500 R] [--rate-503 R] [--rate-reset R]
 *              [--rate-reset-body R] [--rate-truncate R]
 *              [--latency-ms MS] [--latency-rate R]
 *              [--fail-key GLOB] [--fail-query STR] [--fail-kind KIND]
 *              [--unconditional 0|1] [--ignore STR] [--log FILE]
 *
 * The client talks to the proxy as if it were the store (path-style URLs):
 * the method, the path, the query string and every end-to-end header (Host
 * and the SigV4 Authorization included) are forwarded unchanged, so a
 * server that verifies signatures would accept them. The upstream request
 * is made with libcurl; the answer is buffered whole and sent back with a
 * Content-Length, or replaced by a fault:
 *
 *   500           an S3 InternalError (XML body); upstream is not asked
 *   503           an S3 SlowDown (XML body); upstream is not asked
 *   reset         upstream IS asked (its side effect happens), then the
 *                 client connection is reset before any byte of the answer
 *   reset-body    the status line, headers and half the body, then a reset
 *   truncate      Content-Length says N, fewer bytes are sent, then a clean
 *                 close (FIN)
 *
 * reset-body and truncate need a body: on an answer without one they act
 * as reset. --rate R spreads R evenly over the five kinds; the per-kind
 * flags set one each (they add up: one draw picks at most one fault).
 * --latency-ms delays a --latency-rate share of requests (default all).
 *
 * Determinism: the decision for a request is a hash of the seed, the
 * request's identity (method, path and query, Range header) and how many
 * times that identity was seen before. The same seed and the same requests
 * give the same faults, however concurrent requests interleave. --ignore
 * STR leaves every occurrence of STR out of the identity: a test that puts
 * a random namespace in its keys passes it to get the same faults each run.
 *
 * Persistent faults: requests whose decoded path (without the query, the
 * leading "/<bucket>/" removed) matches --fail-key (fnmatch), and whose
 * query string contains --fail-query if one is set (say "partNumber=3",
 * to fail one part of a multipart upload), always get --fail-kind
 * (default 500), whatever the rates.
 *
 * A store without conditional writes (--unconditional 1): the store then
 * looks like one that ignores If-None-Match and If-Match on PUT (as S3
 * did before 2024, and some S3-compatible servers still do), so a client's
 * probe (ragmap's commit_probe(): two `If-None-Match: *` PUTs of one key,
 * the second expected to be refused) finds that it cannot arbitrate.
 *   How: a PUT carrying either header is forwarded unchanged, and when the
 *   store refuses it for that header (412 PreconditionFailed, or 409
 *   ConditionalRequestConflict) the proxy answers as a store that ignored
 *   the header would: 200 OK, no body, ETag "<MD5 of the body sent>" (the
 *   ETag of a single-part PUT, which the client checks), the store's
 *   x-amz-request-id and Date kept.
 *   Why not strip the headers: the client signs them (SigV4 lists
 *   if-none-match in SignedHeaders), so a stripped request fails the
 *   store's signature check (tried on Ceph RGW: 403 SignatureDoesNotMatch),
 *   and the proxy holds no credentials to sign again.
 *   What differs from a real such store: the refused body is NOT stored;
 *   the key keeps its earlier bytes where the real store would hold the
 *   new ones. A client tells the two apart only by reading the key back,
 *   and not at all when it wrote the same bytes again (the probe does).
 *   Tests that depend on which of two writers' bytes survive an overwrite
 *   cannot use this mode. Counted as "unconditional" in the stats; the log
 *   line says "(412 answered as unconditional)".
 *
 * Control, on the proxy's own port (not forwarded; bucket names cannot
 * start with "_"):
 *   GET  /_faultproxy/stats              counters as one JSON object
 *   POST /_faultproxy/config?rate=0&...  change any rate, latency-ms,
 *                                        latency-rate, fail-key (empty:
 *                                        none), fail-query, fail-kind or
 *                                        unconditional (0 or 1)
 * The counters are also printed to stderr at exit (SIGTERM, SIGINT).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rag_buf.h"
#include "rag_util.h"

#define HEAD_MAX (64u << 10)          /* request line + headers */
#define BODY_MAX ((size_t)1 << 30)     /* request or response body */
#define MAX_HEADERS 100

/* ------------------------------------------------------------------ faults */

#define FAULT_KINDS(X) \
	X(NONE, "none") X(E500, "500") X(E503, "503") X(RESET, "reset") \
	X(RESET_BODY, "reset-body") X(TRUNCATE, "truncate")

typedef enum {
#define FK_X(name, str) FK_##name,
	FAULT_KINDS(FK_X)
#undef FK_X
	FK_COUNT
} fault_kind;

static const char *const fault_names[] = {
#define FK_X(name, str) str,
	FAULT_KINDS(FK_X)
#undef FK_X
};

static bool fault_parse(const char *s, fault_kind *out)
{
	for (int k = FK_E500; k < FK_COUNT; k++)
		if (strcmp(s, fault_names[k]) == 0) {
			*out = (fault_kind)k;
			return true;
		}
	return false;
}

/* Settings; read and changed under proxy.lock. */
typedef struct settings {
	double rate[FK_COUNT];    /* rate[FK_NONE] unused */
	double latency_rate;
	int64_t latency_ms;
	char fail_key[1024];      /* "" : no persistent fault */
	char fail_query[256];     /* and its query must contain this ("": any) */
	fault_kind fail_kind;
	bool unconditional;       /* answer as a store without conditional PUT */
} settings;

/* Identity -> times seen, open addressing on 64-bit hashes (0 = empty). */
typedef struct seen_table {
	uint64_t *keys;
	uint32_t *counts;
	size_t cap, n;
} seen_table;

static struct proxy {
	pthread_mutex_t lock;
	settings set;
	uint64_t seed;
	seen_table seen;
	char upstream[512];       /* without a trailing slash */
	char ignore[256];         /* left out of request identities */
	FILE *log;
	/* counters */
	uint64_t requests, forwarded, upstream_errors, injected[FK_COUNT], persistent, delayed;
	uint64_t unconditional;   /* refusals answered as an unconditional store */
	atomic_ullong next_id;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static volatile sig_atomic_t stopping;

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* How many times id was seen before (and count this time). Under P.lock. */
static uint32_t seen_bump(seen_table *t, uint64_t id)
{
	size_t i;

	if (id == 0)
		id = 1;
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 4096;
		uint64_t *nk = calloc(ncap, sizeof(*nk));
		uint32_t *nc = calloc(ncap, sizeof(*nc));
		if (!nk || !nc) {
			free(nk);
			free(nc);
			return 0; /* out of memory: treat as first sight */
		}
		for (size_t j = 0; j < t->cap; j++) {
			if (!t->keys[j])
				continue;
			for (i = t->keys[j] & (ncap - 1); nk[i]; i = (i + 1) & (ncap - 1))
				;
			nk[i] = t->keys[j];
			nc[i] = t->counts[j];
		}
		free(t->keys);
		free(t->counts);
		t->keys = nk;
		t->counts = nc;
		t->cap = ncap;
	}
	for (i = id & (t->cap - 1); t->keys[i] && t->keys[i] != id; i = (i + 1) & (t->cap - 1))
		;
	if (!t->keys[i]) {
		t->keys[i] = id;
		t->n++;
	}
	return t->counts[i]++;
}

/* ------------------------------------------------------------- requests */

typedef struct header {
	char *name, *value; /* point into the head buffer */
} header;

typedef struct http_req {
	rag_buf head;       /* request line and headers, NUL-separated after parsing */
	char *method, *target, *version;
	header h[MAX_HEADERS];
	int nh;
	rag_buf body;
	bool keep_alive;
} http_req;

static const char *req_header(const http_req *r, const char *name)
{
	for (int i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

/* A connection's read side: bytes read ahead of what was consumed. */
typedef struct conn {
	int fd;
	char buf[16384];
	size_t off, len;
} conn;

static ssize_t conn_fill(conn *c)
{
	ssize_t n;

	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	do
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

/* Read exactly n bytes into out. */
static bool conn_read(conn *c, size_t n, rag_buf *out)
{
	while (n > 0) {
		size_t take;
		if (c->off == c->len && conn_fill(c) <= 0)
			return false;
		take = c->len - c->off < n ? c->len - c->off : n;
		if (rag_buf_append(out, c->buf + c->off, take))
			return false;
		c->off += take;
		n -= take;
	}
	return true;
}

/* Read one CRLF-terminated line (without it) into out. */
static bool conn_line(conn *c, rag_buf *out)
{
	rag_buf_reset(out);
	for (;;) {
		if (c->off == c->len && conn_fill(c) <= 0)
			return false;
		char ch = c->buf[c->off++];
		if (ch == '\n') {
			if (out->len && out->data[out->len - 1] == '\r')
				out->data[--out->len] = '\0';
			return true;
		}
		if (rag_buf_putc(out, ch))
			return false;
	}
}

static bool send_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/*
 * Read one request: head, then the body (Content-Length or chunked). An
 * "Expect: 100-continue" is answered here. false: the connection is done
 * (closed, or a request we cannot parse).
 */
static bool read_request(conn *c, http_req *r)
{
	rag_buf line;
	const char *te, *cl, *conn_h, *expect;
	char *p, *sp1, *sp2;
	bool ok = false;

	rag_buf_init(&line, HEAD_MAX);
	rag_buf_reset(&r->head);
	rag_buf_reset(&r->body);
	r->nh = 0;
	/* the head: lines joined with NULs, parsed after (the buffer may move) */
	do {
		if (!conn_line(c, &line))
			goto out;
	} while (line.len == 0); /* tolerate blank lines between requests */
	for (;;) {
		if (rag_buf_append(&r->head, line.data, line.len) || rag_buf_putc(&r->head, '\0'))
			goto out;
		if (!conn_line(c, &line))
			goto out;
		if (line.len == 0)
			break;
	}
	p = r->head.data;
	r->method = p;
	if (!(sp1 = strchr(p, ' ')) || !(sp2 = strchr(sp1 + 1, ' ')))
		goto out;
	*sp1 = *sp2 = '\0';
	r->target = sp1 + 1;
	r->version = sp2 + 1;
	p += strlen(p) + 1;
	p += strlen(p) + 1;
	p += strlen(p) + 1;
	while (p < r->head.data + r->head.len) {
		char *colon = strchr(p, ':');
		size_t n = strlen(p);
		if (!colon || r->nh == MAX_HEADERS)
			goto out;
		*colon = '\0';
		r->h[r->nh].name = trim(p);
		r->h[r->nh].value = trim(colon + 1);
		r->nh++;
		p += n + 1;
	}
	conn_h = req_header(r, "Connection");
	r->keep_alive = strcmp(r->version, "HTTP/1.1") == 0
				? !(conn_h && strcasecmp(conn_h, "close") == 0)
				: (conn_h && strcasecmp(conn_h, "keep-alive") == 0);
	expect = req_header(r, "Expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 &&
	    !send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
		goto out;
	te = req_header(r, "Transfer-Encoding");
	cl = req_header(r, "Content-Length");
	if (te && strcasecmp(te, "chunked") == 0) {
		for (;;) {
			char *end;
			unsigned long long n;
			if (!conn_line(c, &line))
				goto out;
			errno = 0;
			n = strtoull(line.data, &end, 16);
			if (end == line.data || errno || n > BODY_MAX)
				goto out;
			if (n == 0) {
				do /* trailers */
					if (!conn_line(c, &line))
						goto out;
				while (line.len);
				break;
			}
			if (!conn_read(c, (size_t)n, &r->body) || !conn_line(c, &line))
				goto out;
		}
	} else if (cl) {
		int64_t n;
		if (!rag_parse_i64(cl, &n) || n < 0 || (uint64_t)n > BODY_MAX ||
		    !conn_read(c, (size_t)n, &r->body))
			goto out;
	}
	ok = true;
out:
	rag_buf_release(&line);
	return ok;
}

/* ------------------------------------------------------------- answers */

typedef struct answer {
	long status;
	rag_buf headers;    /* "Name: value\r\n" lines, hop-by-hop ones dropped */
	rag_buf body;
	int64_t content_length; /* upstream's, for HEAD */
	char reason[64];
} answer;

static bool hop_by_hop(const char *line, size_t n)
{
	static const char *const names[] = {"connection:", "keep-alive:", "transfer-encoding:",
					    "content-length:", "proxy-connection:", "te:",
					    "trailer:", "upgrade:"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t l = strlen(names[i]);
		if (n >= l && strncasecmp(line, names[i], l) == 0)
			return true;
	}
	return false;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	answer *a = ud;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new status line (after a 100 Continue, say): start over */
		rag_buf_reset(&a->headers);
		a->content_length = -1;
		const char *sp = memchr(p, ' ', n), *sp2;
		a->reason[0] = '\0';
		if (sp && (sp2 = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p)))) {
			size_t rl = n - (size_t)(sp2 + 1 - p);
			while (rl && (sp2[rl] == '\r' || sp2[rl] == '\n' || sp2[rl] == '\0'))
				rl--;
			if (rl >= sizeof(a->reason))
				rl = sizeof(a->reason) - 1;
			memcpy(a->reason, sp2 + 1, rl);
			a->reason[rl] = '\0';
			while (rl && (a->reason[rl - 1] == '\r' || a->reason[rl - 1] == '\n'))
				a->reason[--rl] = '\0';
		}
		return n;
	}
	if (n <= 2)
		return n; /* the blank line */
	if (n > 15 && strncasecmp(p, "content-length:", 15) == 0) {
		char v[32];
		size_t l = n - 15 < sizeof(v) - 1 ? n - 15 : sizeof(v) - 1;
		int64_t cl;
		memcpy(v, p + 15, l);
		v[l] = '\0';
		v[strcspn(v, "\r\n")] = '\0';
		if (rag_parse_i64(trim(v), &cl))
			a->content_length = cl;
	}
	if (hop_by_hop(p, n))
		return n;
	if (rag_buf_append(&a->headers, p, n))
		return 0;
	return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	answer *a = ud;

	return rag_buf_append(&a->body, p, size * nmemb) ? 0 : size * nmemb;
}

/* Ask upstream. false with a message in *a when it cannot be reached. */
static bool forward(CURL *h, const http_req *r, answer *a)
{
	struct curl_slist *hs = NULL;
	rag_buf url, line;
	char errbuf[CURL_ERROR_SIZE] = "";
	bool has_accept = false;
	CURLcode cc;

	rag_buf_init(&url, 16384);
	rag_buf_init(&line, HEAD_MAX);
	rag_buf_printf(&url, "%s%s", P.upstream, r->target);
	for (int i = 0; i < r->nh; i++) {
		const char *n = r->h[i].name;
		if (strcasecmp(n, "Connection") == 0 || strcasecmp(n, "Keep-Alive") == 0 ||
		    strcasecmp(n, "Transfer-Encoding") == 0 || strcasecmp(n, "Content-Length") == 0 ||
		    strcasecmp(n, "Expect") == 0 || strcasecmp(n, "TE") == 0 ||
		    strncasecmp(n, "Proxy-", 6) == 0)
			continue;
		if (strcasecmp(n, "Accept") == 0)
			has_accept = true;
		rag_buf_reset(&line);
		/* "Name;" sends a header with an empty value (curl's convention) */
		if (*r->h[i].value)
			rag_buf_printf(&line, "%s: %s", n, r->h[i].value);
		else
			rag_buf_printf(&line, "%s;", n);
		hs = curl_slist_append(hs, line.data);
	}
	if (!has_accept)
		hs = curl_slist_append(hs, "Accept:");
	hs = curl_slist_append(hs, "Expect:");

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
		if (r->body.len || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body.data ? r->body.data : "");
		}
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(hs);
	rag_buf_release(&url);
	rag_buf_release(&line);
	if (cc != CURLE_OK) {
		rag_buf_reset(&a->headers);
		rag_buf_reset(&a->body);
		rag_buf_printf(&a->body, "upstream: %s", *errbuf ? errbuf : curl_easy_strerror(cc));
		a->status = 0;
		return false;
	}
	return true;
}

/* An S3 error answer, as S3 would send it. */
static void s3_error(answer *a, long status, const char *code, const char *message,
		     const char *resource)
{
	a->status = status;
	rag_strlcpy(a->reason, status == 503 ? "Slow Down" : status == 500 ? "Internal Server Error"
							   : "Bad Gateway",
		    sizeof(a->reason));
	rag_buf_reset(&a->headers);
	rag_buf_reset(&a->body);
	rag_buf_puts(&a->headers, "Content-Type: application/xml\r\n");
	if (status == 503)
		rag_buf_puts(&a->headers, "Retry-After: 0\r\n");
	rag_buf_printf(&a->body,
		       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
		       "<Message>%s</Message><Resource>%s</Resource>"
		       "<RequestId>faultproxy</RequestId></Error>\n",
		       code, message, resource);
	a->content_length = -1;
}

/* ------------------------------------------- a store without conditional PUT */

/* MD5 (RFC 1321) in hex: the ETag of a single-part PUT of data. The proxy
 * links no crypto library, and this is all it needs of one. */
static void md5_block(uint32_t h[4], const unsigned char *p)
{
	static const uint32_t k[64] = {
		0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
		0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
		0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
		0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
		0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
		0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
		0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
		0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
		0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
		0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
		0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
	static const unsigned char rot[4][4] = {
		{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
	uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f, t;
		int g;
		unsigned r = rot[i / 16][i % 4];
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		t = d;
		d = c;
		c = b;
		f += a + k[i] + w[g];
		b += (f << r) | (f >> (32 - r));
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
}

static void md5_hex(const void *data, size_t len, char out[33])
{
	uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
	const unsigned char *p = data;
	unsigned char tail[128] = {0};
	size_t full = len / 64 * 64, rest = len - full, tl = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;

	for (size_t i = 0; i < full; i += 64)
		md5_block(h, p + i);
	if (rest)
		memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		tail[tl - 8 + (size_t)i] = (unsigned char)(bits >> (8 * i));
	md5_block(h, tail);
	if (tl == 128)
		md5_block(h, tail + 64);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", (unsigned)(h[i / 4] >> (8 * (i % 4))) & 0xffu);
}

/* A PUT the store may refuse for a condition it carries. */
static bool conditional_put(const http_req *r)
{
	return strcmp(r->method, "PUT") == 0 &&
	       (req_header(r, "If-None-Match") || req_header(r, "If-Match"));
}

/*
 * When upstream refused r for its condition, answer instead as a store
 * that ignores the condition (see the top of the file). Returns the
 * refusal's status, or 0 when the answer is left as it was.
 */
static long as_unconditional(const http_req *r, answer *a)
{
	long was = a->status;
	char etag[33];
	rag_buf keep;

	if (!conditional_put(r) ||
	    !(was == 412 || (was == 409 && a->body.data &&
			     strstr(a->body.data, "ConditionalRequestConflict"))))
		return 0;
	rag_buf_init(&keep, HEAD_MAX);
	/* the store's request id and date; not its Content-Type (no body now) */
	for (const char *l = a->headers.data ? a->headers.data : "", *e; *l; l = e) {
		e = strstr(l, "\r\n");
		e = e ? e + 2 : l + strlen(l);
		if (strncasecmp(l, "x-amz-request-id:", 17) == 0 ||
		    strncasecmp(l, "x-amz-id-2:", 11) == 0 || strncasecmp(l, "date:", 5) == 0)
			rag_buf_append(&keep, l, (size_t)(e - l));
	}
	md5_hex(r->body.data, r->body.len, etag);
	rag_buf_reset(&a->headers);
	rag_buf_append(&a->headers, keep.data ? keep.data : "", keep.len);
	rag_buf_printf(&a->headers, "ETag: \"%s\"\r\n", etag);
	rag_buf_release(&keep);
	rag_buf_reset(&a->body);
	a->status = 200;
	a->content_length = -1;
	rag_strlcpy(a->reason, "OK", sizeof(a->reason));
	return was;
}

/* Abortive close: the peer sees ECONNRESET. */
static void reset_close(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * Send the answer, or the part of it the fault allows. Returns whether the
 * connection may be kept; *closed when it was closed here.
 */
static bool send_answer(int fd, const http_req *r, answer *a, fault_kind f, bool *closed)
{
	bool head = strcmp(r->method, "HEAD") == 0;
	size_t len = a->body.len, send_len = len;
	rag_buf out;
	bool ok;

	*closed = false;
	if (f == FK_RESET) {
		reset_close(fd);
		*closed = true;
		return false;
	}
	rag_buf_init(&out, HEAD_MAX);
	rag_buf_printf(&out, "HTTP/1.1 %ld %s\r\n", a->status, a->reason[0] ? a->reason : "-");
	rag_buf_append(&out, a->headers.data ? a->headers.data : "", a->headers.len);
	if (head && a->content_length >= 0)
		rag_buf_printf(&out, "Content-Length: %" PRId64 "\r\n", a->content_length);
	else if (!head)
		rag_buf_printf(&out, "Content-Length: %zu\r\n", len);
	if (f >= FK_RESET || !r->keep_alive)
		rag_buf_puts(&out, "Connection: close\r\n");
	rag_buf_puts(&out, "\r\n");
	if (f == FK_RESET_BODY || f == FK_TRUNCATE)
		send_len = len / 2;
	ok = send_all(fd, out.data, out.len) &&
	     (head || send_all(fd, a->body.data ? a->body.data : "", send_len));
	rag_buf_release(&out);
	if (f == FK_RESET_BODY) {
		reset_close(fd);
		*closed = true;
		return false;
	}
	if (f == FK_TRUNCATE) {
		shutdown(fd, SHUT_RDWR);
		close(fd);
		*closed = true;
		return false;
	}
	return ok && r->keep_alive;
}

/* Percent-decode s up to the first stop character (or the end). */
static void percent_decode(const char *p, char stop, char *key, size_t len)
{
	size_t o = 0;

	while (*p && *p != stop && o + 1 < len) {
		if (p[0] == '%' && p[1] && p[2]) {
			char hex[3] = {p[1], p[2], '\0'};
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end == '\0') {
				key[o++] = (char)v;
				p += 3;
				continue;
			}
		}
		key[o++] = *p++;
	}
	key[o] = '\0';
}

/* The path without query, "/<bucket>/" removed and percent-decoded. */
static void object_key(const char *target, char *key, size_t len)
{
	const char *p = target, *q;

	if (*p == '/')
		p++;
	q = p;
	while (*q && *q != '/' && *q != '?')
		q++;
	percent_decode(*q == '/' ? q + 1 : q, '?', key, len); /* the bucket skipped */
}

/* ------------------------------------------------------------- control */

static void stats_json(rag_buf *b)
{
	pthread_mutex_lock(&P.lock);
	rag_buf_printf(b, "{\"requests\": %" PRIu64 ", \"forwarded\": %" PRIu64
			  ", \"upstream_errors\": %" PRIu64 ", \"delayed\": %" PRIu64
			  ", \"persistent\": %" PRIu64 ", \"unconditional\": %" PRIu64,
		       P.requests, P.forwarded, P.upstream_errors, P.delayed, P.persistent,
		       P.unconditional);
	uint64_t total = 0;
	for (int k = FK_E500; k < FK_COUNT; k++) {
		rag_buf_printf(b, ", \"%s\": %" PRIu64, fault_names[k], P.injected[k]);
		total += P.injected[k];
	}
	rag_buf_printf(b, ", \"injected\": %" PRIu64 "}\n", total);
	pthread_mutex_unlock(&P.lock);
}

/* Apply one name=value setting. Under P.lock. */
static bool apply_setting(settings *s, const char *name, const char *value)
{
	char *end;
	double d;
	fault_kind k;

	if (strcmp(name, "fail-key") == 0) {
		rag_strlcpy(s->fail_key, value, sizeof(s->fail_key));
		return true;
	}
	if (strcmp(name, "fail-query") == 0) {
		rag_strlcpy(s->fail_query, value, sizeof(s->fail_query));
		return true;
	}
	if (strcmp(name, "fail-kind") == 0)
		return fault_parse(value, &s->fail_kind);
	if (strcmp(name, "unconditional") == 0) {
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
			return false;
		s->unconditional = value[0] == '1';
		return true;
	}
	if (strcmp(name, "latency-ms") == 0) {
		int64_t ms;
		if (!rag_parse_i64(value, &ms) || ms < 0 || ms > 600000)
			return false;
		s->latency_ms = ms;
		return true;
	}
	errno = 0;
	d = strtod(value, &end);
	if (*value == '\0' || *end || errno || !(d >= 0 && d <= 1))
		return false;
	if (strcmp(name, "rate") == 0) {
		for (int j = FK_E500; j < FK_COUNT; j++)
			s->rate[j] = d / (FK_COUNT - 1);
		return true;
	}
	if (strcmp(name, "latency-rate") == 0) {
		s->latency_rate = d;
		return true;
	}
	if (strncmp(name, "rate-", 5) == 0 && fault_parse(name + 5, &k)) {
		s->rate[k] = d;
		return true;
	}
	return false;
}

/* POST /_faultproxy/config?a=b&c=d: all or nothing. */
static bool control_config(const char *query, char *msg, size_t len)
{
	char buf[2048], *save = NULL;
	settings s;
	bool ok = true;

	rag_strlcpy(buf, query, sizeof(buf));
	pthread_mutex_lock(&P.lock);
	s = P.set;
	for (char *kv = strtok_r(buf, "&", &save); kv && ok; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		char key[1024];
		if (!eq) {
			snprintf(msg, len, "\"%s\": want name=value", kv);
			ok = false;
			break;
		}
		*eq = '\0';
		percent_decode(eq + 1, '\0', key, sizeof(key));
		if (!apply_setting(&s, kv, key)) {
			snprintf(msg, len, "bad setting %s=%s\n", kv, key);
			ok = false;
		}
	}
	if (ok)
		P.set = s;
	pthread_mutex_unlock(&P.lock);
	if (ok)
		snprintf(msg, len, "ok\n");
	return ok;
}

static bool control(int fd, const http_req *r)
{
	rag_buf b, out;
	const char *q = strchr(r->target, '?');
	char msg[1200];
	long status = 200;
	bool ok;

	rag_buf_init(&b, 1 << 16);
	rag_buf_init(&out, 1 << 17);
	if (strncmp(r->target, "/_faultproxy/stats", 18) == 0) {
		stats_json(&b);
	} else if (strncmp(r->target, "/_faultproxy/config", 19) == 0 &&
		   strcmp(r->method, "POST") == 0) {
		if (!control_config(q ? q + 1 : "", msg, sizeof(msg)))
			status = 400;
		rag_buf_puts(&b, msg);
	} else {
		status = 404;
		rag_buf_puts(&b, "no such control endpoint\n");
	}
	rag_buf_printf(&out, "HTTP/1.1 %ld %s\r\nContent-Length: %zu\r\n%s\r\n", status,
		       status == 200 ? "OK" : "Error", b.len, r->keep_alive ? "" : "Connection: close\r\n");
	rag_buf_append(&out, b.data, b.len);
	ok = send_all(fd, out.data, out.len);
	rag_buf_release(&b);
	rag_buf_release(&out);
	return ok && r->keep_alive;
}

/* ---------------------------------------------------------- connections */

/* What to do with a request: the fault, and whether to delay it. */
static fault_kind decide(const http_req *r, bool *persistent, int64_t *delay_ms,
			 bool *unconditional)
{
	const char *range = req_header(r, "Range");
	char key[2048];
	uint64_t id = RAG_FNV_INIT, x;
	fault_kind f = FK_NONE;
	double u, acc = 0;

	id = rag_fnv1a(id, r->method, strlen(r->method));
	id = rag_fnv1a(id, " ", 1);
	for (const char *t = r->target, *hit; *t; t = hit + strlen(P.ignore)) {
		hit = P.ignore[0] ? strstr(t, P.ignore) : NULL;
		if (!hit) {
			id = rag_fnv1a(id, t, strlen(t));
			break;
		}
		id = rag_fnv1a(id, t, (size_t)(hit - t));
	}
	if (range) {
		id = rag_fnv1a(id, " ", 1);
		id = rag_fnv1a(id, range, strlen(range));
	}
	object_key(r->target, key, sizeof(key));
	pthread_mutex_lock(&P.lock);
	P.requests++;
	*unconditional = P.set.unconditional;
	x = splitmix64(P.seed ^ splitmix64(id ^ ((uint64_t)seen_bump(&P.seen, id) << 48)));
	*persistent = P.set.fail_key[0] && fnmatch(P.set.fail_key, key, 0) == 0 &&
		      (!P.set.fail_query[0] ||
		       (strchr(r->target, '?') && strstr(strchr(r->target, '?'), P.set.fail_query)));
	if (*persistent) {
		f = P.set.fail_kind;
		P.persistent++;
	} else {
		u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) from 53 bits */
		for (int k = FK_E500; k < FK_COUNT && f == FK_NONE; k++) {
			acc += P.set.rate[k];
			if (u < acc)
				f = (fault_kind)k;
		}
	}
	x = splitmix64(x);
	*delay_ms = 0;
	if (P.set.latency_ms > 0 && (double)(x >> 11) / 9007199254740992.0 < P.set.latency_rate) {
		*delay_ms = P.set.latency_ms;
		P.delayed++;
	}
	pthread_mutex_unlock(&P.lock);
	return f;
}

static void *serve_conn(void *arg)
{
	conn *c = arg;
	http_req r = {0};
	answer a = {0};
	CURL *h = curl_easy_init();
	bool closed = false;

	rag_buf_init(&r.head, HEAD_MAX);
	rag_buf_init(&r.body, BODY_MAX);
	rag_buf_init(&a.headers, HEAD_MAX);
	rag_buf_init(&a.body, BODY_MAX);
	while (h && !closed && read_request(c, &r)) {
		bool persistent, keep, unconditional;
		long refused = 0;
		int64_t delay;
		fault_kind f;
		unsigned long long n;

		if (strncmp(r.target, "/_faultproxy/", 13) == 0) {
			if (!control(c->fd, &r))
				break;
			continue;
		}
		n = atomic_fetch_add(&P.next_id, 1);
		f = decide(&r, &persistent, &delay, &unconditional);
		if (delay)
			rag_sleep_ms((unsigned)delay);
		rag_buf_reset(&a.headers);
		rag_buf_reset(&a.body);
		a.content_length = -1;
		a.reason[0] = '\0';
		if (f == FK_E500) {
			s3_error(&a, 500, "InternalError",
				 "We encountered an internal error. Please try again.", r.target);
		} else if (f == FK_E503) {
			s3_error(&a, 503, "SlowDown", "Please reduce your request rate.", r.target);
		} else if (!forward(h, &r, &a)) {
			char msg[600];
			rag_strlcpy(msg, a.body.data ? a.body.data : "upstream", sizeof(msg));
			s3_error(&a, 502, "BadGateway", msg, r.target);
			pthread_mutex_lock(&P.lock);
			P.upstream_errors++;
			pthread_mutex_unlock(&P.lock);
		} else {
			if (unconditional)
				refused = as_unconditional(&r, &a);
			pthread_mutex_lock(&P.lock);
			P.forwarded++;
			P.unconditional += refused != 0;
			pthread_mutex_unlock(&P.lock);
		}
		if ((f == FK_RESET_BODY || f == FK_TRUNCATE) &&
		    (strcmp(r.method, "HEAD") == 0 || a.body.len < 2))
			f = FK_RESET; /* no body to cut */
		pthread_mutex_lock(&P.lock);
		P.injected[f]++;
		pthread_mutex_unlock(&P.lock);
		if (P.log) {
			flockfile(P.log);
			char was[64] = "";
			if (refused)
				snprintf(was, sizeof(was), " (%ld answered as unconditional)", refused);
			fprintf(P.log, "%llu %s %s%s%s -> %ld %s%s%s\n", n, r.method, r.target,
				req_header(&r, "Range") ? " " : "",
				req_header(&r, "Range") ? req_header(&r, "Range") : "", a.status,
				fault_names[f], persistent ? " (persistent)" : "", was);
			fflush(P.log);
			funlockfile(P.log);
		}
		keep = send_answer(c->fd, &r, &a, f, &closed);
		if (!keep)
			break;
	}
	if (!closed)
		close(c->fd);
	curl_easy_cleanup(h);
	rag_buf_release(&r.head);
	rag_buf_release(&r.body);
	rag_buf_release(&a.headers);
	rag_buf_release(&a.body);
	free(c);
	return NULL;
}

/* ------------------------------------------------------------------ main */

static const char usage[] =
	"usage: faultproxy --upstream URL [--listen PORT] [--port-file FILE] [--seed N]\n"
	"                  [--rate R] [--rate-500 R] [--rate-503 R] [--rate-reset R]\n"
	"                  [--rate-reset-body R] [--rate-truncate R]\n"
	"                  [--latency-ms MS] [--latency-rate R]\n"
	"                  [--fail-key GLOB] [--fail-query STR]\n"
	"                  [--fail-kind 500|503|reset|reset-body|truncate]\n"
	"                  [--unconditional 0|1] [--ignore STR] [--log FILE]\n";

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	const char *upstream = NULL, *port_file = NULL, *log_path = NULL;
	int64_t port = 0;
	int lfd;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct sigaction act = {.sa_handler = on_signal};
	rag_buf stats;

	P.set.latency_rate = 1.0;
	P.set.fail_kind = FK_E500;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0 || !v) {
			fprintf(stderr, "faultproxy: %s: missing value\n%s", a, usage);
			return 2;
		}
		i++;
		if (strcmp(a, "--upstream") == 0) {
			upstream = v;
		} else if (strcmp(a, "--listen") == 0) {
			if (!rag_parse_i64(v, &port) || port < 0 || port > 65535) {
				fprintf(stderr, "faultproxy: bad port \"%s\"\n", v);
				return 2;
			}
		} else if (strcmp(a, "--port-file") == 0) {
			port_file = v;
		} else if (strcmp(a, "--ignore") == 0) {
			rag_strlcpy(P.ignore, v, sizeof(P.ignore));
		} else if (strcmp(a, "--log") == 0) {
			log_path = v;
		} else if (strcmp(a, "--seed") == 0) {
			int64_t s;
			if (!rag_parse_i64(v, &s)) {
				fprintf(stderr, "faultproxy: bad seed \"%s\"\n", v);
				return 2;
			}
			P.seed = (uint64_t)s;
		} else if (!apply_setting(&P.set, a + 2, v)) {
			fprintf(stderr, "faultproxy: bad option %s %s\n%s", a, v, usage);
			return 2;
		}
	}
	if (!upstream) {
		fputs(usage, stderr);
		return 2;
	}
	rag_strlcpy(P.upstream, upstream, sizeof(P.upstream));
	for (size_t n = strlen(P.upstream); n && P.upstream[n - 1] == '/'; n--)
		P.upstream[n - 1] = '\0';
	if (log_path && !(P.log = fopen(log_path, "a"))) {
		fprintf(stderr, "faultproxy: cannot open \"%s\": %s\n", log_path, strerror(errno));
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 256) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		fprintf(stderr, "faultproxy: cannot listen on 127.0.0.1:%" PRId64 ": %s\n", port,
			strerror(errno));
		return 1;
	}
	printf("%d\n", ntohs(sa.sin_port));
	fflush(stdout);
	if (port_file) {
		char tmp[4096];
		FILE *f;
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if (!(f = fopen(tmp, "w")) || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 ||
		    fclose(f) || rename(tmp, port_file)) {
			fprintf(stderr, "faultproxy: cannot write \"%s\"\n", port_file);
			return 1;
		}
	}

	while (!stopping) {
		struct pollfd pfd = {lfd, POLLIN, 0};
		pthread_t t;
		pthread_attr_t attr;
		conn *c;
		int fd;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		if ((fd = accept(lfd, NULL, NULL)) < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (!(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, serve_conn, c)) {
			close(fd);
			free(c);
		}
		pthread_attr_destroy(&attr);
	}
	close(lfd);
	rag_buf_init(&stats, 1 << 16);
	stats_json(&stats);
	fprintf(stderr, "faultproxy: %s", stats.data ? stats.data : "\n");
	rag_buf_release(&stats);
	if (P.log)
		fclose(P.log);
	/* connection threads may still run: exit without tearing down */
	_exit(0);
}
