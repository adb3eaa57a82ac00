/*
 * s3.c — requests, retries, counting. See s3.h for the invariants.
 *
 * Layout of this file: client lifecycle and the curl handle pool; the
 * counters; one request (s3_perform and its callbacks); the operations
 * built on it (list, get, head, put, multipart, delete); topics and bucket
 * notifications; parallel batches.
 */
#include "s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rag_pool.h"
#include "rag_util.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ERR_BODY_MAX (64 * 1024)    /* error and control answers */
#define LIST_BODY_MAX (16u << 20)   /* one ListObjectsV2 page */
#define HASHED_BODY_MAX (1u << 20)  /* larger bodies are sent UNSIGNED-PAYLOAD */
#define MD5_OVERLAP_MIN (8u << 20)  /* larger PUTs check their MD5 after, not before */
#define POOL_MAX 64

struct s3_client {
	char *scheme;       /* "http" or "https" */
	char *hostport;     /* "127.0.0.1:4570" */
	char *base_path;    /* endpoint path without trailing '/', often "" */
	char *bucket;
	char *access_key;   /* NULL: anonymous, unsigned requests */
	char *secret_key;
	char *ca_file;      /* NULL: the system's CA store */
	char sigv4[128];
	char sigv4_sns[128]; /* topic actions (RGW accepts either service name) */
	bool path_style;
	bool drop_expect;   /* send "Expect:" to skip 100-continue (see below) */
	atomic_bool bucket_seen; /* a request to the bucket succeeded once */
	unsigned max_retries, base_ms, max_ms;
	long connect_timeout_ms, low_speed_time_s;
	int concurrency;
	uint64_t multipart_threshold, part_size;
	int page_size;
	rag_log *log;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	size_t npool;

	pthread_mutex_t stats_lock; /* guards stages, traces and the seed */
	s3_stage_stats *stages;
	size_t nstages, capstages;
	uint64_t seed;
};

static const char *const kind_names[] = {
#define S3_X(name, str) str,
	S3_KIND_LIST(S3_X)
#undef S3_X
};

const char *s3_kind_name(s3_kind kind)
{
	return kind < S3_KIND_COUNT ? kind_names[kind] : "unknown";
}

/* ---------------------------------------------------------------- client */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	s3_client *c = user;

	(void)h;
	(void)access;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	s3_client *c = user;

	(void)h;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static rag_rc split_endpoint(s3_client *c, const char *endpoint, rag_error *err)
{
	const char *p = strstr(endpoint, "://"), *slash;

	if (!p || (strncmp(endpoint, "http", 4) != 0) ||
	    !((p - endpoint == 4) || (p - endpoint == 5 && endpoint[4] == 's')))
		return rag_error_set(err, RAG_ECONFIG,
				     "s3.endpoint: \"%s\" is not an http:// or https:// URL",
				     endpoint);
	c->scheme = rag_strndup(endpoint, (size_t)(p - endpoint));
	p += 3;
	slash = strchr(p, '/');
	c->hostport = slash ? rag_strndup(p, (size_t)(slash - p)) : rag_strdup(p);
	c->base_path = rag_strdup(slash ? slash : "");
	if (!c->scheme || !c->hostport || !c->base_path)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if (!*c->hostport)
		return rag_error_set(err, RAG_ECONFIG, "s3.endpoint: \"%s\" has no host", endpoint);
	/* "http://host/" and "http://host" mean the same */
	size_t n = strlen(c->base_path);
	while (n && c->base_path[n - 1] == '/')
		c->base_path[--n] = '\0';
	return RAG_OK;
}

/*
 * Whether an empty "Expect:" (which tells libcurl not to send its own
 * "Expect: 100-continue") is safe to add. Before curl 8.3.0 the SigV4
 * signer lists a header removed that way in SignedHeaders although it is
 * never sent, so every server that checks signatures refuses the request
 * (curl issue #11664). Older curl then keeps its default: 100-continue
 * only for bodies over 1 MiB, where one round trip is small next to the
 * transfer and lets the server refuse before the body is sent.
 */
bool s3_can_drop_expect(void)
{
	return curl_version_info(CURLVERSION_NOW)->version_num >= 0x080300;
}

s3_client *s3_client_new(const rag_config *cfg, rag_log *log, rag_error *err)
{
	s3_client *c = calloc(1, sizeof(*c));

	if (!c) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_mutex_init(&c->stats_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	if (split_endpoint(c, cfg->s3.endpoint, err))
		goto fail;
	if (!cfg->s3.bucket || !*cfg->s3.bucket) {
		rag_error_set(err, RAG_ECONFIG, "s3.bucket: empty bucket name");
		goto fail;
	}
	c->bucket = rag_strdup(cfg->s3.bucket);
	if (cfg->s3.access_key_id && *cfg->s3.access_key_id) {
		c->access_key = rag_strdup(cfg->s3.access_key_id);
		c->secret_key = rag_strdup(cfg->s3.secret_access_key ? cfg->s3.secret_access_key : "");
	}
	if (cfg->s3.ca_file && *cfg->s3.ca_file && !(c->ca_file = rag_strdup(cfg->s3.ca_file))) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", cfg->s3.region);
	snprintf(c->sigv4_sns, sizeof(c->sigv4_sns), "aws:amz:%s:sns", cfg->s3.region);
	c->drop_expect = s3_can_drop_expect();
	c->path_style = cfg->s3.path_style;
	c->max_retries = (unsigned)cfg->s3.max_retries;
	c->base_ms = (unsigned)cfg->s3.retry_base_ms;
	c->max_ms = (unsigned)cfg->s3.retry_max_ms;
	c->connect_timeout_ms = (long)cfg->s3.connect_timeout_ms;
	c->low_speed_time_s = (long)cfg->s3.low_speed_time_s;
	c->concurrency = (int)cfg->s3.concurrency;
	c->multipart_threshold = cfg->s3.multipart_threshold;
	c->part_size = cfg->s3.part_size;
	c->page_size = 1000;
	c->log = log;
	c->share = curl_share_init();
	if (!c->bucket || !c->share) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto fail;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	/*
	 * DNS only. Connections are reused through the handle pool (an easy
	 * handle keeps its own); libcurl does not support a connection cache
	 * shared by concurrent threads ("not supported ... between multiple
	 * concurrent threads", CURLSHOPT_SHARE(3)), and with it a rare answer
	 * here came back with one hit's record mangled.
	 */
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	return c;
fail:
	s3_client_free(c);
	return NULL;
}

void s3_client_free(s3_client *c)
{
	if (!c)
		return;
	/* easy handles first: they hold references into the share */
	for (size_t i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->stats_lock);
	free(c->stages);
	free(c->scheme);
	free(c->hostport);
	free(c->base_path);
	free(c->bucket);
	free(c->ca_file);
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	free(c->access_key);
	free(c->secret_key);
	free(c);
}

const char *s3_client_bucket(const s3_client *c)
{
	return c->bucket;
}

void s3_client_set_page_size(s3_client *c, int max_keys)
{
	if (max_keys >= 1 && max_keys <= 1000)
		c->page_size = max_keys;
}

void s3_client_set_seed(s3_client *c, uint64_t seed)
{
	pthread_mutex_lock(&c->stats_lock);
	c->seed = seed;
	pthread_mutex_unlock(&c->stats_lock);
}

static CURL *handle_borrow(s3_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_return(s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

/* -------------------------------------------------------------- counters */

void s3_counter_add(s3_counter *into, const s3_counter *c)
{
	into->requests += c->requests;
	into->retries += c->retries;
	into->errors += c->errors;
	into->bytes_in += c->bytes_in;
	into->bytes_out += c->bytes_out;
	into->ns += c->ns;
}

void s3_trace_total(const s3_trace *t, s3_counter *out)
{
	memset(out, 0, sizeof(*out));
	for (int k = 0; k < S3_KIND_COUNT; k++)
		s3_counter_add(out, &t->kind[k]);
}

void s3_trace_log_init(s3_trace *t, size_t max)
{
	free(t->reqs);
	t->reqs = NULL;
	t->nreqs = t->cap = 0;
	t->dropped = 0;
	t->max = max;
}

void s3_trace_release(s3_trace *t)
{
	free(t->reqs);
	t->reqs = NULL;
	t->nreqs = t->cap = t->max = 0;
}

void s3_prices_from_config(const rag_config *cfg, s3_prices *p)
{
	p->get_per_1000 = cfg->cost.get_per_1000;
	p->put_per_1000 = cfg->cost.put_per_1000;
	p->storage_gb_month = cfg->cost.storage_gb_month;
}

double s3_cost_usd(const s3_counter kind[S3_KIND_COUNT], const s3_prices *p)
{
	double gets = (double)(kind[S3_GET].requests + kind[S3_HEAD].requests);
	double puts = (double)(kind[S3_PUT].requests + kind[S3_PART].requests +
			       kind[S3_MPU].requests + kind[S3_LIST].requests +
			       kind[S3_CONFIG].requests);

	return gets * p->get_per_1000 / 1000.0 + puts * p->put_per_1000 / 1000.0;
}

static int by_start(const void *a, const void *b)
{
	const s3_req *x = a, *y = b;

	return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

uint64_t s3_trace_wall_ns(const s3_trace *t)
{
	s3_req *r;
	uint64_t wall = 0, from = 0, to = 0;

	if (!t->nreqs || !(r = malloc(t->nreqs * sizeof(*r))))
		return 0;
	memcpy(r, t->reqs, t->nreqs * sizeof(*r));
	qsort(r, t->nreqs, sizeof(*r), by_start);
	for (size_t i = 0; i < t->nreqs; i++) {
		uint64_t s = r[i].start_ns, e = s + r[i].dur_ns;
		if (i == 0 || s > to) { /* a gap: close the run */
			wall += to - from;
			from = s;
			to = e;
		} else if (e > to) {
			to = e;
		}
	}
	free(r);
	return wall + (to - from);
}

size_t s3_client_stats(s3_client *c, s3_stage_stats *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&c->stats_lock);
	n = c->nstages;
	if (out)
		memcpy(out, c->stages, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&c->stats_lock);
	return n;
}

void s3_client_kind_totals(s3_client *c, rag_stage_kind k, s3_counter out[S3_KIND_COUNT])
{
	memset(out, 0, sizeof(s3_counter) * S3_KIND_COUNT);
	pthread_mutex_lock(&c->stats_lock);
	for (size_t i = 0; i < c->nstages; i++)
		if (rag_stage_kind_of(c->stages[i].stage) == k)
			for (int j = 0; j < S3_KIND_COUNT; j++)
				s3_counter_add(&out[j], &c->stages[i].kind[j]);
	pthread_mutex_unlock(&c->stats_lock);
}

/* --------------------------------------------------------- pure helpers */

/* Percent-encode all but unreserved characters (and '/', '.' as asked). */
static rag_rc uri_encode(const char *s, bool keep_slash, bool keep_dot, rag_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	rag_rc rc = RAG_OK;

	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
		unsigned char ch = *p;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || (keep_dot && ch == '.') ||
		    ch == '~' || (keep_slash && ch == '/')) {
			rc = rag_buf_putc(out, (char)ch);
		} else {
			char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			rc = rag_buf_append(out, esc, 3);
		}
	}
	return rc;
}

rag_rc s3_uri_encode(const char *s, bool keep_slash, rag_buf *out)
{
	return uri_encode(s, keep_slash, true, out);
}

unsigned s3_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms,
		       uint64_t random)
{
	uint64_t cap = base_ms;

	for (unsigned i = 1; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	/* full jitter: uniform in [0, cap], so retrying clients spread out */
	return (unsigned)(random % (cap + 1));
}

bool s3_status_retryable(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

static bool curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

rag_rc s3_error_code_rc(const char *code, long status)
{
	static const struct {
		const char *code;
		rag_rc rc;
	} map[] = {
		{"NoSuchKey", RAG_ENOTFOUND},
		/* not ENOTFOUND: callers take that for "the key is absent" */
		{"NoSuchBucket", RAG_ESTORAGE},
		{"NoSuchUpload", RAG_ENOTFOUND},
		{"AccessDenied", RAG_EACCESS},
		{"InvalidAccessKeyId", RAG_EAUTH},
		{"SignatureDoesNotMatch", RAG_EAUTH},
		{"PreconditionFailed", RAG_ECONFLICT},
		{"EntityTooLarge", RAG_ETOOBIG},
		{"InvalidRange", RAG_EINVAL},
	};

	for (size_t i = 0; code && i < RAG_ARRAY_LEN(map); i++)
		if (strcmp(code, map[i].code) == 0)
			return map[i].rc;
	if (status == 404)
		return RAG_ENOTFOUND;
	if (status == 403)
		return RAG_EACCESS;
	if (status == 412)
		return RAG_ECONFLICT;
	return RAG_ESTORAGE;
}

static uint64_t jitter_random(s3_client *c)
{
	uint64_t r;

	pthread_mutex_lock(&c->stats_lock);
	if (c->seed) {
		/* splitmix64: repeatable for tests */
		uint64_t z = (c->seed += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		r = z ^ (z >> 31);
	} else {
		r = rag_rand64();
	}
	pthread_mutex_unlock(&c->stats_lock);
	return r;
}

/* ------------------------------------------------------------ one request */

typedef struct s3_request {
	const char *method; /* GET HEAD PUT POST DELETE */
	s3_kind kind;
	const char *key;    /* NULL: the bucket */
	bool sns;           /* a topic action: the service root, signed for "sns" */
	const char *query;  /* encoded and sorted by name, no '?'; may be NULL */
	const void *body;
	size_t body_len;
	bool md5;           /* send Content-MD5 */
	const char *content_type;
	bool range;
	uint64_t off, len;  /* len 0 with range: from off to the end */
	const char *if_match; /* unquoted ETag the object must still have; may be NULL */
	bool if_none_match;   /* PUT: create only, "If-None-Match: *" */
	rag_buf *out;       /* 2xx body; NULL: into the response's small buffer */
	int fd;             /* >= 0: 2xx body into this file instead */
} s3_request;

typedef struct s3_response {
	long status;
	char etag[80];
	int64_t content_length;  /* -1 when absent */
	int64_t last_modified;
	int64_t range_start;     /* from Content-Range, -1 when absent */
	int64_t total_size;      /* object size (Content-Range total or length) */
	unsigned attempts;       /* requests sent: 1 + retries */
	rag_buf small;           /* error bodies and small 2xx answers */
} s3_response;

typedef struct xfer {
	s3_client *c;
	const s3_request *rq;
	s3_response *rs;
	CURL *h;
	const char *rd;     /* upload cursor */
	size_t rd_left;
	uint64_t got;       /* body bytes received this attempt */
	uint64_t streamed;  /* body bytes written to a stream fd, all attempts */
	uint64_t resume_at; /* > 0: this attempt resumes a stream from there */
	rag_rc sink_rc;     /* why the write callback refused */
} xfer;

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
	xfer *x = user;
	size_t len = size * n;
	long status = 0;
	rag_buf *dst;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	x->got += len;
	if (status >= 200 && status < 300 && x->rq->fd >= 0) {
		size_t done = 0;
		/* a resumed stream takes only the exact continuation: never a
		 * whole object (a server that ignored the range) after a part */
		if (x->resume_at && (status != 206 || x->rs->range_start != (int64_t)x->resume_at)) {
			x->sink_rc = RAG_ECORRUPT;
			return 0;
		}
		while (done < len) {
			ssize_t w = write(x->rq->fd, p + done, len - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				x->sink_rc = RAG_EIO;
				return 0;
			}
			done += (size_t)w;
			x->streamed += (uint64_t)w;
		}
		return len;
	}
	dst = (status >= 200 && status < 300 && x->rq->out) ? x->rq->out : &x->rs->small;
	if ((x->sink_rc = rag_buf_append(dst, p, len)))
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	return len;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*value = line + n + 1;
	while (**value == ' ')
		(*value)++;
	return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
	xfer *x = user;
	size_t len = size * n;
	char line[512];
	const char *v;
	s3_response *rs = x->rs;

	if (len >= sizeof(line))
		return len; /* nothing we parse is that long */
	memcpy(line, p, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue, say): forget the last one */
		rs->etag[0] = '\0';
		rs->content_length = -1;
		rs->range_start = -1;
		rs->total_size = -1;
	} else if (header_is(line, len, "ETag", &v)) {
		rag_strlcpy(rs->etag, v, sizeof(rs->etag));
		size_t el = strlen(rs->etag);
		if (el >= 2 && rs->etag[0] == '"' && rs->etag[el - 1] == '"') {
			memmove(rs->etag, rs->etag + 1, el - 2);
			rs->etag[el - 2] = '\0';
		}
	} else if (header_is(line, len, "Content-Length", &v)) {
		int64_t cl;
		if (rag_parse_i64(v, &cl) && cl >= 0) {
			rs->content_length = cl;
			/* size the body buffer once instead of doubling it as bytes come */
			if (x->rq->out && x->rq->fd < 0 && (uint64_t)cl <= x->rq->out->max)
				rag_buf_reserve(x->rq->out, (size_t)cl);
			if (rs->range_start < 0)
				rs->total_size = cl;
		}
	} else if (header_is(line, len, "Last-Modified", &v)) {
		rs->last_modified = s3_parse_time(v);
	} else if (header_is(line, len, "Content-Range", &v)) {
		long long a, b, t;
		if (sscanf(v, "bytes %lld-%lld/%lld", &a, &b, &t) == 3) {
			rs->range_start = a;
			rs->total_size = t;
		}
	}
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *user)
{
	xfer *x = user;
	size_t len = size * n;

	if (len > x->rd_left)
		len = x->rd_left;
	memcpy(p, x->rd, len);
	x->rd += len;
	x->rd_left -= len;
	return len;
}

/*
 * curl rewinds the upload when it resends a request by itself (a reused
 * connection that turns out dead): without this it fails the transfer with
 * CURLE_SEND_FAIL_REWIND, which is not worth a retry of ours.
 */
static int on_seek(void *user, curl_off_t off, int origin)
{
	xfer *x = user;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->rq->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->rd = (const char *)x->rq->body + off;
	x->rd_left = x->rq->body_len - (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static void digest(const EVP_MD *md, const void *data, size_t len, unsigned char *out,
		   unsigned *outlen)
{
	EVP_Digest(data, len, out, outlen, md, NULL);
}

static void content_md5(const void *data, size_t len, char *b64, size_t b64len)
{
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	unsigned char enc[64];

	digest(EVP_md5(), data, len, sum, &n);
	EVP_EncodeBlock(enc, sum, (int)n);
	rag_strlcpy(b64, (const char *)enc, b64len);
}

static void sha256_hex(const void *data, size_t len, char *hex, size_t hexlen)
{
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	digest(EVP_sha256(), data, len, sum, &n);
	for (unsigned i = 0; i < n && 2 * i + 2 < hexlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

static rag_rc build_url(s3_client *c, const s3_request *rq, rag_buf *url)
{
	rag_rc rc;

	if (rq->sns)
		return rag_buf_printf(url, "%s://%s%s/", c->scheme, c->hostport, c->base_path);
	if (c->path_style)
		rc = rag_buf_printf(url, "%s://%s%s/%s", c->scheme, c->hostport,
				    c->base_path, c->bucket);
	else
		rc = rag_buf_printf(url, "%s://%s.%s%s", c->scheme, c->bucket,
				    c->hostport, c->base_path);
	if (rc)
		return rc;
	if (rq->key) {
		if ((rc = rag_buf_putc(url, '/')) || (rc = s3_uri_encode(rq->key, true, url)))
			return rc;
	} else if (!c->path_style && (rc = rag_buf_putc(url, '/'))) {
		return rc;
	}
	if (rq->query && *rq->query)
		rc = rag_buf_printf(url, "?%s", rq->query);
	return rc;
}

/* Headers for one request; caller frees with curl_slist_free_all(). */
static struct curl_slist *build_headers(const s3_client *c, const s3_request *rq)
{
	struct curl_slist *hs = NULL, *t;
	char line[256], hash[80];

	if (rq->body_len == 0)
		rag_strlcpy(hash, EMPTY_SHA256, sizeof(hash));
	else if (rq->body_len <= HASHED_BODY_MAX)
		sha256_hex(rq->body, rq->body_len, hash, sizeof(hash));
	else
		rag_strlcpy(hash, "UNSIGNED-PAYLOAD", sizeof(hash));
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hash);
	hs = curl_slist_append(hs, line);
	if (rq->md5) {
		char b64[64];
		content_md5(rq->body, rq->body_len, b64, sizeof(b64));
		snprintf(line, sizeof(line), "Content-MD5: %s", b64);
		if ((t = curl_slist_append(hs, line)))
			hs = t;
	}
	if (rq->body || strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
		snprintf(line, sizeof(line), "Content-Type: %s",
			 rq->content_type ? rq->content_type : "application/octet-stream");
		if ((t = curl_slist_append(hs, line)))
			hs = t;
	}
	if (rq->range && rq->len) {
		snprintf(line, sizeof(line), "Range: bytes=%llu-%llu",
			 (unsigned long long)rq->off,
			 (unsigned long long)(rq->off + rq->len - 1));
		if ((t = curl_slist_append(hs, line)))
			hs = t;
	} else if (rq->range) {
		snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)rq->off);
		if ((t = curl_slist_append(hs, line)))
			hs = t;
	}
	if (rq->if_match) {
		snprintf(line, sizeof(line), "If-Match: \"%s\"", rq->if_match);
		if ((t = curl_slist_append(hs, line)))
			hs = t;
	}
	if (rq->if_none_match && (t = curl_slist_append(hs, "If-None-Match: *")))
		hs = t;
	if (c->drop_expect && (t = curl_slist_append(hs, "Expect:")))
		hs = t;
	return hs;
}

static void setup_handle(s3_client *c, xfer *x, const char *url, struct curl_slist *hs)
{
	CURL *h = x->h;
	const s3_request *rq = x->rq;

	curl_easy_setopt(h, CURLOPT_URL, url);
	/* keys may hold "." and ".." segments: never let curl squash them */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->access_key) {
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, rq->sns ? c->sigv4_sns : c->sigv4);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
	}
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
		/* the body is in memory: fewer, larger reads than the 64 KiB default */
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
}

/*
 * Reset the body sinks before an attempt: a retry starts over. A regular
 * file goes back to where the first attempt started writing (so output
 * appended to an existing file keeps what was there). A stream cannot be
 * rewound: s3_perform resumes it instead (see there).
 */
static rag_rc reset_sinks(const s3_request *rq, s3_response *rs, size_t out_start,
			  off_t fd_start, uint64_t written)
{
	rag_buf_reset(&rs->small);
	if (rq->out) {
		rq->out->len = out_start;
		if (rq->out->data)
			rq->out->data[out_start] = '\0';
	}
	if (rq->fd >= 0 && written && fd_start >= 0) {
		if (ftruncate(rq->fd, fd_start) != 0 || lseek(rq->fd, fd_start, SEEK_SET) != fd_start)
			return RAG_EIO;
	}
	return RAG_OK;
}

/*
 * The headers of the next attempt of a whole GET into a stream that
 * already received `from` bytes: the rest of the object, only if it still
 * has the ETag of the part sent (so the stream never gets two versions
 * spliced together; a changed object ends in 412, RAG_ECONFLICT).
 */
static struct curl_slist *resume_headers(const s3_client *c, const s3_request *rq,
					 uint64_t from, const char *etag)
{
	s3_request rest = *rq;

	rest.range = true;
	rest.off = from;
	rest.len = 0;
	rest.if_match = etag;
	return build_headers(c, &rest);
}

/* The name an error message uses for the target: "bucket/key" or "bucket". */
static void target_name(s3_client *c, const s3_request *rq, char *buf, size_t len)
{
	if (rq->sns)
		snprintf(buf, len, "%s://%s%s/ (topics)", c->scheme, c->hostport, c->base_path);
	else if (rq->key)
		snprintf(buf, len, "s3://%s/%s", c->bucket, rq->key);
	else
		snprintf(buf, len, "s3://%s", c->bucket);
}

static rag_rc http_error(s3_client *c, const s3_request *rq, s3_response *rs, rag_error *err)
{
	s3_xml_error x;
	char target[600];
	const char *code;
	rag_rc rc;

	target_name(c, rq, target, sizeof(target));
	if (!s3_xml_parse_error(rs->small.data, rs->small.len, &x)) {
		memset(&x, 0, sizeof(x));
		if (rs->status == 404 && !rq->sns)
			rag_strlcpy(x.code, rq->key ? "NoSuchKey" : "NoSuchBucket", sizeof(x.code));
		else if (rs->status == 403)
			rag_strlcpy(x.code, "AccessDenied", sizeof(x.code));
	}
	code = x.code;
	rc = s3_error_code_rc(code, rs->status);
	if (strcmp(code, "NoSuchKey") == 0)
		return rag_error_set(err, rc, "no such key \"%s\" in bucket \"%s\"",
				     rq->key ? rq->key : "", c->bucket);
	if (strcmp(code, "NoSuchBucket") == 0)
		return rag_error_set(err, rc, "no such bucket \"%s\" (%s %s)", c->bucket,
				     rq->method, target);
	if (strcmp(code, "AccessDenied") == 0)
		return rag_error_set(err, rc,
				     "access denied: %s %s (the credentials lack permission)",
				     rq->method, target);
	if (strcmp(code, "InvalidAccessKeyId") == 0)
		return rag_error_set(err, rc,
				     "invalid access key id: the server does not know the "
				     "configured key (%s %s)", rq->method, target);
	if (strcmp(code, "SignatureDoesNotMatch") == 0)
		return rag_error_set(err, rc,
				     "signature does not match: the server refused the request's "
				     "signature; check the secret key (%s %s)", rq->method, target);
	return rag_error_set(err, rc, "%s %s: HTTP %ld%s%s%s%s", rq->method, target,
			     rs->status, *code ? " " : "", code, *x.message ? ": " : "",
			     x.message);
}

/* Append one request to a trace's log (under the stats lock). */
static void log_request(s3_trace *t, const s3_request *rq, const s3_response *rs,
			const s3_counter *delta, uint64_t start)
{
	s3_req *e;

	if (!t->max)
		return;
	if (t->nreqs == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		s3_req *r = cap <= t->max ? realloc(t->reqs, cap * sizeof(*r)) : NULL;
		if (!r) {
			t->dropped++;
			return;
		}
		t->reqs = r;
		t->cap = cap;
	}
	e = &t->reqs[t->nreqs++];
	memset(e, 0, sizeof(*e));
	e->kind = rq->kind;
	rag_strlcpy(e->key, rq->key ? rq->key : "", sizeof(e->key));
	e->range = rq->range;
	e->off = rq->off;
	e->len = rq->len;
	e->bytes_in = delta->bytes_in;
	e->bytes_out = delta->bytes_out;
	e->status = rs->status;
	e->attempts = rs->attempts ? rs->attempts : 1;
	e->start_ns = start;
	e->dur_ns = delta->ns;
}

static void record(s3_client *c, const s3_op *op, s3_kind kind, const s3_counter *delta,
		   const s3_request *rq, const s3_response *rs, uint64_t start)
{
	const char *stage = op && op->stage ? op->stage : "other";
	s3_stage_stats *st = NULL;

	pthread_mutex_lock(&c->stats_lock);
	for (size_t i = 0; i < c->nstages && !st; i++)
		if (strcmp(c->stages[i].stage, stage) == 0)
			st = &c->stages[i];
	if (!st && c->nstages == c->capstages) {
		size_t cap = c->capstages ? c->capstages * 2 : 8;
		s3_stage_stats *p = realloc(c->stages, cap * sizeof(*p));
		if (p) {
			c->stages = p;
			c->capstages = cap;
		}
	}
	if (!st && c->nstages < c->capstages) {
		st = &c->stages[c->nstages++];
		memset(st, 0, sizeof(*st));
		rag_strlcpy(st->stage, stage, sizeof(st->stage));
		/* once per label: a stage missing from the list is a bug to see */
		if (rag_stage_kind_of(stage) == RAG_STAGE_UNLISTED)
			RAG_WARN(c->log, "storage stage \"%s\" is not in the stage list "
				 "(src/core/rag_stage.c): counted as unlisted", stage);
	}
	if (st)
		s3_counter_add(&st->kind[kind], delta);
	if (op && op->trace) {
		s3_counter_add(&op->trace->kind[kind], delta);
		log_request(op->trace, rq, rs, delta, start);
	}
	pthread_mutex_unlock(&c->stats_lock);
}

/*
 * Run one request with retries and count it (invariant 1). On success the
 * body is in rq->out / rq->fd / rs->small and the headers in rs.
 */
static rag_rc s3_perform(s3_client *c, const s3_op *op, const s3_request *rq,
			 s3_response *rs, rag_error *err)
{
	s3_counter delta = {.requests = 1};
	uint64_t start = rag_now_ns();
	size_t out_start = rq->out ? rq->out->len : 0;
	off_t fd_start = -1;
	rag_buf url;
	struct curl_slist *hs = NULL;
	char target[600], pinned[80] = "";
	xfer x = {.c = c, .rq = rq, .rs = rs};
	rag_rc rc = RAG_OK;

	rag_buf_init(&url, 8192);
	rag_buf_init(&rs->small, ERR_BODY_MAX);
	if (rq->fd >= 0) {
		struct stat st;
		if (fstat(rq->fd, &st) == 0 && S_ISREG(st.st_mode))
			fd_start = lseek(rq->fd, 0, SEEK_CUR);
	}
	rs->status = 0;
	rs->attempts = 0;
	target_name(c, rq, target, sizeof(target));
	if (build_url(c, rq, &url)) {
		rc = rag_error_set(err, RAG_EINVAL, "%s %s: key too long", rq->method, target);
		goto out;
	}
	if (!(hs = build_headers(c, rq)) || !(x.h = handle_borrow(c))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned attempt = 0;; attempt++) {
		CURLcode cc;
		curl_off_t up = 0;
		char curl_msg[CURL_ERROR_SIZE] = "";
		bool transient;

		if (attempt > 0) {
			unsigned ms = s3_backoff_ms(attempt, c->base_ms, c->max_ms, jitter_random(c));
			if (op->deadline_ns && rag_now_ns() + (uint64_t)ms * 1000000u >= op->deadline_ns) {
				rag_error_prefix(err, "out of time after %u %s", attempt,
						 attempt == 1 ? "try" : "tries");
				rc = RAG_ETIMEOUT;
				break;
			}
			RAG_TRACE(c->log, RAG_TRACE_S3, "s3", "retry %u of %s %s in %u ms",
				  attempt, rq->method, target, ms);
			rag_sleep_ms(ms);
			delta.retries++;
			curl_easy_reset(x.h);
		}
		rs->attempts = attempt + 1;
		if (reset_sinks(rq, rs, out_start, fd_start, x.got)) {
			rc = rag_error_set(err, RAG_EIO, "%s %s: cannot rewind the output to retry",
					   rq->method, target);
			break;
		}
		if (rq->fd >= 0 && fd_start < 0 && x.streamed > 0) {
			struct curl_slist *rh;
			if (!*pinned) {
				rc = rag_error_set(err, RAG_EIO, "%s %s: cannot resume the output "
						   "after %llu bytes: the server sent no ETag",
						   rq->method, target,
						   (unsigned long long)x.streamed);
				break;
			}
			if (!(rh = resume_headers(c, rq, x.streamed, pinned))) {
				rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
				break;
			}
			curl_slist_free_all(hs);
			hs = rh;
			x.resume_at = x.streamed;
		}
		rs->status = 0;
		rs->etag[0] = '\0';
		rs->content_length = rs->range_start = rs->total_size = -1;
		x.rd = rq->body;
		x.rd_left = rq->body_len;
		x.got = 0;
		x.sink_rc = RAG_OK;
		setup_handle(c, &x, url.data, hs);
		if (op->deadline_ns) {
			uint64_t now = rag_now_ns();
			if (now >= op->deadline_ns) {
				rc = rag_error_set(err, RAG_ETIMEOUT, "%s %s: out of time before the request",
						   rq->method, target);
				break;
			}
			/* the whole transfer, not only its silences, must end in time */
			curl_easy_setopt(x.h, CURLOPT_TIMEOUT_MS,
					 (long)((op->deadline_ns - now + 999999) / 1000000));
		}
		curl_easy_setopt(x.h, CURLOPT_ERRORBUFFER, curl_msg);
		cc = curl_easy_perform(x.h);
		curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &rs->status);
		curl_easy_getinfo(x.h, CURLINFO_SIZE_UPLOAD_T, &up);
		curl_easy_setopt(x.h, CURLOPT_ERRORBUFFER, NULL);
		delta.bytes_in += x.got;
		delta.bytes_out += (uint64_t)up;
		if (x.streamed && !*pinned)
			rag_strlcpy(pinned, rs->etag, sizeof(pinned));
		RAG_TRACE(c->log, RAG_TRACE_S3, "s3", "%s %s -> %ld (%s) %llu B in",
			  rq->method, target, rs->status, curl_easy_strerror(cc),
			  (unsigned long long)x.got);

		if (cc == CURLE_WRITE_ERROR && x.sink_rc == RAG_ECORRUPT && x.resume_at) {
			rc = rag_error_set(err, RAG_ECORRUPT, "%s %s: the server did not resume "
					   "at byte %llu (HTTP %ld); the output holds the first "
					   "%llu bytes", rq->method, target,
					   (unsigned long long)x.resume_at, rs->status,
					   (unsigned long long)x.streamed);
			break;
		}
		if (cc == CURLE_OK && rs->status == 412 && x.resume_at) {
			rc = rag_error_set(err, RAG_ECONFLICT, "%s %s: the object changed during "
					   "the transfer; the output holds the first %llu bytes "
					   "of the version with ETag %s", rq->method, target,
					   (unsigned long long)x.streamed, pinned);
			break;
		}
		if (cc == CURLE_WRITE_ERROR && x.sink_rc) {
			rc = x.sink_rc == RAG_ETOOBIG
				     ? rag_error_set(err, RAG_ETOOBIG,
						     "%s %s: object larger than the %zu byte limit",
						     rq->method, target,
						     rq->out ? rq->out->max : (size_t)ERR_BODY_MAX)
				     : rag_error_set(err, x.sink_rc, "%s %s: cannot store the body: %s",
						     rq->method, target, rag_rc_message(x.sink_rc));
			break;
		}
		if (cc == CURLE_OK && rs->status >= 200 && rs->status < 300) {
			bool has_body = strcmp(rq->method, "HEAD") != 0;

			if (!rq->sns)
				atomic_store(&c->bucket_seen, true);
			if (!has_body || rs->content_length < 0 ||
			    (uint64_t)rs->content_length == x.got) {
				rc = RAG_OK;
				break;
			}
			/* invariant 3: a short body is never a success */
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "%s %s: body has %llu bytes, Content-Length said %lld",
					   rq->method, target, (unsigned long long)x.got,
					   (long long)rs->content_length);
			transient = true;
		} else if (cc != CURLE_OK) {
			transient = curl_retryable(cc);
			rc = rag_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? RAG_ETIMEOUT : RAG_ENET,
					   "%s %s: %s", rq->method, target,
					   *curl_msg ? curl_msg : curl_easy_strerror(cc));
		} else {
			/* 409 ConditionalRequestConflict: another conditional
			 * write of the key was in flight; asking again settles it */
			transient = s3_status_retryable(rs->status) ||
				    (rq->if_none_match && rs->status == 409);
			rc = http_error(c, rq, rs, err);
		}
		if (!transient || attempt >= c->max_retries) {
			if (transient && attempt > 0)
				rag_error_prefix(err, "after %u retries", attempt);
			break;
		}
	}
out:
	delta.ns = rag_now_ns() - start;
	delta.errors = rc != RAG_OK;
	record(c, op, rq->kind, &delta, rq, rs, start);
	if (x.h)
		handle_return(c, x.h);
	curl_slist_free_all(hs);
	rag_buf_release(&url);
	return rc;
}

static void response_release(s3_response *rs)
{
	rag_buf_release(&rs->small);
}

/* ------------------------------------------------------------ operations */

static rag_rc add_param(rag_buf *q, const char *name, const char *value)
{
	rag_rc rc;

	if (q->len && (rc = rag_buf_putc(q, '&')))
		return rc;
	if ((rc = rag_buf_puts(q, name)) || (rc = rag_buf_putc(q, '=')))
		return rc;
	return value ? s3_uri_encode(value, false, q) : RAG_OK;
}

rag_rc s3_list_objects(s3_client *c, const s3_op *op, const char *prefix,
		       const char *delimiter, s3_list *out, rag_error *err)
{
	s3_list_page page = {0};
	rag_buf q, body;
	char max_keys[16];
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	rag_buf_init(&q, 8192);
	rag_buf_init(&body, LIST_BODY_MAX);
	snprintf(max_keys, sizeof(max_keys), "%d", c->page_size);
	do {
		s3_request rq = {.method = "GET", .kind = S3_LIST, .out = &body, .fd = -1};
		s3_response rs = {0};

		/* parameters in name order: SigV4's canonical query is sorted */
		rag_buf_reset(&q);
		rag_buf_reset(&body);
		rc = RAG_OK;
		if (page.next_token)
			rc = add_param(&q, "continuation-token", page.next_token);
		if (!rc && delimiter && *delimiter)
			rc = add_param(&q, "delimiter", delimiter);
		/* keys with control characters are not valid in XML 1.0: ask
		 * for them URL-encoded (a server that ignores this sends them raw) */
		if (!rc)
			rc = add_param(&q, "encoding-type", "url");
		if (!rc)
			rc = add_param(&q, "list-type", "2");
		if (!rc)
			rc = add_param(&q, "max-keys", max_keys);
		if (!rc && prefix && *prefix)
			rc = add_param(&q, "prefix", prefix);
		if (rc) {
			rag_error_set(err, rc, "list \"%s\": prefix too long", prefix ? prefix : "");
			break;
		}
		rq.query = q.data;
		rc = s3_perform(c, op, &rq, &rs, err);
		response_release(&rs);
		if (!rc)
			rc = s3_xml_parse_list(body.data, body.len, &page, err);
		if (rc)
			break;
	} while (page.truncated);
	if (rc) {
		s3_list_page_release(&page);
	} else {
		/* the accumulated page arrays become the list's: nothing is copied */
		out->objects = page.objects;
		out->nobjects = page.nobjects;
		out->prefixes = page.prefixes;
		out->nprefixes = page.nprefixes;
		free(page.next_token);
	}
	rag_buf_release(&q);
	rag_buf_release(&body);
	return rc;
}

void s3_list_release(s3_list *l)
{
	for (size_t i = 0; i < l->nobjects; i++)
		s3_object_release(&l->objects[i]);
	for (size_t i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->objects);
	free(l->prefixes);
	memset(l, 0, sizeof(*l));
}

static void fill_info(const s3_response *rs, s3_object *info)
{
	if (!info)
		return;
	rag_strlcpy(info->etag, rs->etag, sizeof(info->etag));
	info->size = rs->total_size > 0 ? (uint64_t)rs->total_size : 0;
	info->last_modified = rs->last_modified;
}

/* A whole-object GET into a buffer or a descriptor, with its metadata. */
static rag_rc get_whole(s3_client *c, const s3_op *op, const char *key, rag_buf *out, int fd,
			s3_object *info, rag_error *err)
{
	s3_request rq = {.method = "GET", .kind = S3_GET, .key = key, .out = out, .fd = fd};
	s3_response rs = {0};
	rag_rc rc = s3_perform(c, op, &rq, &rs, err);

	if (!rc)
		fill_info(&rs, info);
	response_release(&rs);
	return rc;
}

rag_rc s3_get(s3_client *c, const s3_op *op, const char *key, rag_buf *out,
	      s3_object *info, rag_error *err)
{
	return get_whole(c, op, key, out, -1, info, err);
}

rag_rc s3_get_range(s3_client *c, const s3_op *op, const char *key, uint64_t off,
		    uint64_t len, rag_buf *out, rag_error *err)
{
	s3_request rq = {.method = "GET", .kind = S3_GET, .key = key, .out = out, .fd = -1,
			 .range = true, .off = off, .len = len};
	s3_response rs = {0};
	size_t start = out->len;
	rag_rc rc;

	if (len == 0)
		return rag_error_set(err, RAG_EINVAL, "GET \"%s\": empty byte range", key);
	rc = s3_perform(c, op, &rq, &rs, err);
	if (!rc && (rs.status != 206 || rs.range_start != (int64_t)off))
		rc = rag_error_set(err, RAG_ECORRUPT,
				   "GET \"%s\" bytes %llu-%llu: server ignored the range (HTTP %ld)",
				   key, (unsigned long long)off,
				   (unsigned long long)(off + len - 1), rs.status);
	else if (!rc && out->len - start != len)
		rc = rag_error_set(err, RAG_ECORRUPT,
				   "GET \"%s\" bytes %llu-%llu: got %zu bytes (object is %lld bytes)",
				   key, (unsigned long long)off,
				   (unsigned long long)(off + len - 1), out->len - start,
				   (long long)rs.total_size);
	response_release(&rs);
	return rc;
}

rag_rc s3_get_fd(s3_client *c, const s3_op *op, const char *key, int fd,
		 s3_object *info, rag_error *err)
{
	return get_whole(c, op, key, NULL, fd, info, err);
}

rag_rc s3_get_file(s3_client *c, const s3_op *op, const char *key,
		   const char *path, s3_object *info, rag_error *err)
{
	char tmp[4096];
	int fd;
	rag_rc rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.part", path) >= sizeof(tmp))
		return rag_error_set(err, RAG_EINVAL, "\"%s\": path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return rag_error_set(err, RAG_EIO, "cannot create \"%s\": %s", tmp, strerror(errno));
	rc = get_whole(c, op, key, NULL, fd, info, err);
	if (close(fd) != 0 && !rc)
		rc = rag_error_set(err, RAG_EIO, "cannot write \"%s\": %s", tmp, strerror(errno));
	if (!rc && rename(tmp, path) != 0)
		rc = rag_error_set(err, RAG_EIO, "cannot rename \"%s\" to \"%s\": %s", tmp, path,
				   strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

/*
 * A HEAD's error answer has no body, so a 403 cannot say whether the
 * signature or the permission failed, nor a 404 whether the key or the
 * bucket is missing. Ask the same question as a GET of one byte, whose
 * error body says which (one more counted request, only on these errors;
 * for a 404 only while no request to the bucket has succeeded yet).
 */
static rag_rc explain_head_error(s3_client *c, const s3_op *op, const char *key,
				 const s3_response *head, rag_rc rc, rag_error *err)
{
	rag_buf one;
	rag_error probe = {0};
	rag_rc prc;

	if (head->status != 403 && (head->status != 404 || atomic_load(&c->bucket_seen)))
		return rc;
	rag_buf_init(&one, 16);
	prc = s3_get_range(c, op, key, 0, 1, &one, &probe);
	rag_buf_release(&one);
	/* another cause than the HEAD's guess: the signature or key id
	 * (EAUTH), the bucket (NoSuchBucket is ESTORAGE). Anything else, say
	 * a range on an object that appeared meanwhile, leaves the guess. */
	if (prc == RAG_EAUTH || prc == RAG_ESTORAGE)
		return rag_error_set(err, prc, "%s", probe.msg);
	return rc;
}

rag_rc s3_head(s3_client *c, const s3_op *op, const char *key, s3_object *info,
	       rag_error *err)
{
	s3_request rq = {.method = "HEAD", .kind = S3_HEAD, .key = key, .fd = -1};
	s3_response rs = {0};
	rag_rc rc = s3_perform(c, op, &rq, &rs, err);

	if (!rc)
		fill_info(&rs, info);
	else if (rs.small.len == 0)
		rc = explain_head_error(c, op, key, &rs, rc, err);
	response_release(&rs);
	return rc;
}

/* Lower-case hex of n digest bytes; hex holds 2n + 1. */
static void hex_of(const unsigned char *sum, unsigned n, char *hex)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

/* The MD5 of a body, in hex, computed on a thread of its own. */
typedef struct md5_job {
	const void *data;
	size_t len;
	char hex[40];
} md5_job;

static void *md5_run(void *arg)
{
	md5_job *j = arg;
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	digest(EVP_md5(), j->data, j->len, sum, &n);
	hex_of(sum, n, j->hex);
	return NULL;
}

/*
 * A single-part PUT. Small bodies carry Content-MD5, so the store refuses
 * a damaged one. For a large body that MD5 pass would delay the first byte
 * by as long as sending a good part of it; it runs alongside the transfer
 * instead and is checked against the ETag S3 returns (the MD5 of the body
 * for a single-part PUT): a mismatch is retried like a damaged transfer.
 */
static rag_rc put_single(s3_client *c, const s3_op *op, const char *key, const void *data,
			 size_t len, const char *content_type, bool if_absent, char *etag_out,
			 rag_error *err)
{
	bool overlap = len >= MD5_OVERLAP_MIN;
	s3_request rq = {.method = "PUT", .kind = S3_PUT, .key = key, .body = data,
			 .body_len = len, .md5 = !overlap, .content_type = content_type, .fd = -1,
			 .if_none_match = if_absent};
	rag_rc rc = RAG_OK;

	for (unsigned attempt = 0; attempt <= c->max_retries; attempt++) {
		md5_job job = {.data = data, .len = len};
		pthread_t tid;
		bool threaded = overlap && pthread_create(&tid, NULL, md5_run, &job) == 0;
		s3_response rs = {0};

		rc = s3_perform(c, op, &rq, &rs, err);
		if (threaded)
			pthread_join(tid, NULL);
		else if (overlap)
			md5_run(&job);
		/* an ETag that is not an MD5 (SSE-KMS, some servers) cannot be
		 * checked; a mismatch sends the body again (at most max_retries) */
		if (!rc && overlap && strlen(rs.etag) == 32 && strcasecmp(rs.etag, job.hex) != 0) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "PUT \"%s\": the stored object's ETag %s is not the MD5 of "
					   "the %zu bytes sent (%s)", key, rs.etag, len, job.hex);
			response_release(&rs);
			continue;
		}
		if (!rc && etag_out)
			rag_strlcpy(etag_out, rs.etag, 80);
		response_release(&rs);
		break;
	}
	return rc;
}

/* ---- multipart upload ---- */

typedef struct mpu {
	s3_client *c;
	const s3_op *op;
	const char *key;
	const char *upload_id;
	const char *data;
	size_t len, part_size, nparts;
	char (*etags)[80];
	atomic_bool failed;
	pthread_mutex_t lock;
	rag_error first; /* the first part failure */
} mpu;

static rag_rc mpu_part(void *ctx, size_t i)
{
	mpu *m = ctx;
	size_t off = i * m->part_size;
	size_t n = m->len - off < m->part_size ? m->len - off : m->part_size;
	char num[16];
	rag_buf q;
	rag_error e;
	rag_rc rc;

	if (atomic_load(&m->failed))
		return RAG_ECANCELED; /* another part failed: the upload is lost anyway */
	rag_buf_init(&q, 4096);
	snprintf(num, sizeof(num), "%zu", i + 1);
	rc = add_param(&q, "partNumber", num);
	if (!rc)
		rc = add_param(&q, "uploadId", m->upload_id);
	if (!rc) {
		s3_request rq = {.method = "PUT", .kind = S3_PART, .key = m->key, .query = q.data,
				 .body = m->data + off, .body_len = n, .md5 = true, .fd = -1};
		s3_response rs = {0};
		rc = s3_perform(m->c, m->op, &rq, &rs, &e);
		if (!rc && !rs.etag[0])
			rc = rag_error_set(&e, RAG_ESTORAGE, "part %zu of \"%s\": no ETag in answer",
					   i + 1, m->key);
		if (!rc)
			memcpy(m->etags[i], rs.etag, sizeof(m->etags[i]));
		response_release(&rs);
	} else {
		rag_error_set(&e, rc, "part %zu of \"%s\": cannot build the request", i + 1, m->key);
	}
	if (rc) {
		pthread_mutex_lock(&m->lock);
		if (!atomic_exchange(&m->failed, true))
			m->first = e;
		pthread_mutex_unlock(&m->lock);
	}
	rag_buf_release(&q);
	return rc;
}

static rag_rc mpu_control(s3_client *c, const s3_op *op, const char *method, const char *key,
			  const char *query, const char *body, size_t body_len,
			  rag_buf *answer, unsigned *attempts, rag_error *err)
{
	s3_request rq = {.method = method, .kind = S3_MPU, .key = key, .query = query,
			 .body = body, .body_len = body_len, .out = answer, .fd = -1,
			 .content_type = body ? "application/xml" : NULL};
	s3_response rs = {0};
	rag_rc rc = s3_perform(c, op, &rq, &rs, err);

	if (attempts)
		*attempts = rs.attempts;
	response_release(&rs);
	return rc;
}

/*
 * CompleteMultipartUpload is not idempotent: when an attempt completed the
 * upload but its answer was lost, the retry finds no upload and fails.
 * After a retried completion, the object itself says whether it landed:
 * this size and the multipart ETag of these parts (MD5 of their MD5s,
 * "-N"), or the MD5 of the whole body for servers that use that.
 */
static bool mpu_landed(s3_client *c, const s3_op *op, const mpu *m, char *etag_out)
{
	s3_object info;
	rag_error ignore;
	unsigned char sum[EVP_MAX_MD_SIZE], *bin = calloc(m->nparts * 16 + 1, 1);
	unsigned n = 0;
	char want[80], whole[40];
	bool ok = false;

	if (!bin || s3_head(c, op, m->key, &info, &ignore) || info.size != (uint64_t)m->len) {
		free(bin);
		return false;
	}
	for (size_t i = 0; i < m->nparts; i++) {
		if (strlen(m->etags[i]) != 32)
			continue; /* not an MD5: the multipart form cannot match */
		for (int j = 0; j < 16; j++)
			sscanf(m->etags[i] + 2 * j, "%2hhx", &bin[i * 16 + (size_t)j]);
	}
	digest(EVP_md5(), bin, m->nparts * 16, sum, &n);
	hex_of(sum, n, want);
	snprintf(want + 2 * n, sizeof(want) - 2 * n, "-%zu", m->nparts);
	digest(EVP_md5(), m->data, m->len, sum, &n);
	hex_of(sum, n, whole);
	ok = strcmp(info.etag, want) == 0 || strcmp(info.etag, whole) == 0;
	if (ok && etag_out)
		rag_strlcpy(etag_out, info.etag, 80);
	free(bin);
	return ok;
}

static rag_rc put_multipart(s3_client *c, const s3_op *op, const char *key, const void *data,
			    size_t len, char *etag_out, rag_error *err)
{
	mpu m = {.c = c, .op = op, .key = key, .data = data, .len = len,
		 .part_size = (size_t)c->part_size};
	rag_buf q, answer, body;
	char *upload_id = NULL;
	rag_error ignore;
	unsigned attempts = 0;
	rag_rc rc;

	m.nparts = (len + m.part_size - 1) / m.part_size;
	if (m.nparts > 10000)
		return rag_error_set(err, RAG_ETOOBIG,
				     "PUT \"%s\": %zu parts needed, S3 allows 10000 (raise s3.part_size)",
				     key, m.nparts);
	rag_buf_init(&q, 4096);
	rag_buf_init(&answer, ERR_BODY_MAX);
	rag_buf_init(&body, (size_t)m.nparts * 160 + 256);
	pthread_mutex_init(&m.lock, NULL);
	atomic_init(&m.failed, false);
	m.etags = calloc(m.nparts, sizeof(*m.etags));
	if (!m.etags) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = mpu_control(c, op, "POST", key, "uploads=", NULL, 0, &answer, NULL, err)) ||
	    (rc = s3_xml_parse_upload_id(answer.data, answer.len, &upload_id, err)))
		goto out;
	m.upload_id = upload_id;
	if (s3_parallel(c, m.nparts, 0, mpu_part, &m) != RAG_OK) {
		rc = m.first.rc ? m.first.rc : RAG_ESTORAGE;
		if (err)
			*err = m.first;
		goto abort;
	}
	rc = rag_buf_puts(&body, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < m.nparts && !rc; i++)
		rc = rag_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>",
				    i + 1, m.etags[i]);
	if (!rc)
		rc = rag_buf_puts(&body, "</CompleteMultipartUpload>");
	if (!rc)
		rc = add_param(&q, "uploadId", upload_id);
	if (rc) {
		rag_error_set(err, rc, "PUT \"%s\": cannot build the completion request", key);
		goto abort;
	}
	rag_buf_reset(&answer);
	rc = mpu_control(c, op, "POST", key, q.data, body.data, body.len, &answer, &attempts, err);
	if (!rc) {
		/* S3 may answer 200 and still report an error in the body */
		s3_xml_error x;
		if (s3_xml_parse_error(answer.data, answer.len, &x))
			rc = rag_error_set(err, s3_error_code_rc(x.code, 200),
					   "PUT \"%s\": completing the upload failed: %s %s", key,
					   x.code, x.message);
	}
	if (rc && attempts > 1 && mpu_landed(c, op, &m, etag_out)) {
		rc = RAG_OK;
		goto out;
	}
	if (rc)
		goto abort;
	if (etag_out) {
		/* the ETag is in the answer's XML; a HEAD would cost a request */
		const char *p = answer.data ? strstr(answer.data, "<ETag>") : NULL;
		etag_out[0] = '\0';
		if (p) {
			p += 6;
			if (*p == '"' || strncmp(p, "&quot;", 6) == 0)
				p += *p == '"' ? 1 : 6;
			size_t n = strcspn(p, "\"&<");
			rag_strlcpy(etag_out, p, n + 1 < 80 ? n + 1 : 80);
		}
		/* Ceph RGW 16 answers an empty <ETag></ETag>: ask the object */
		if (!etag_out[0]) {
			s3_object info;
			if (s3_head(c, op, key, &info, &ignore) == RAG_OK)
				rag_strlcpy(etag_out, info.etag, 80);
		}
	}
	goto out;
abort:
	rag_buf_reset(&q);
	if (add_param(&q, "uploadId", upload_id) == RAG_OK)
		mpu_control(c, op, "DELETE", key, q.data, NULL, 0, NULL, NULL, &ignore);
out:
	free(upload_id);
	free(m.etags);
	pthread_mutex_destroy(&m.lock);
	rag_buf_release(&q);
	rag_buf_release(&answer);
	rag_buf_release(&body);
	return rc;
}

rag_rc s3_put(s3_client *c, const s3_op *op, const char *key, const void *data,
	      size_t len, const char *content_type, char *etag_out, rag_error *err)
{
	if (len > c->multipart_threshold)
		return put_multipart(c, op, key, data, len, etag_out, err);
	return put_single(c, op, key, data, len, content_type, false, etag_out, err);
}

rag_rc s3_put_if_absent(s3_client *c, const s3_op *op, const char *key, const void *data,
			size_t len, const char *content_type, char *etag_out, rag_error *err)
{
	if (len > c->multipart_threshold)
		return rag_error_set(err, RAG_ETOOBIG, "PUT \"%s\" if absent: %zu bytes is over the "
				     "single-request limit", key, len);
	return put_single(c, op, key, data, len, content_type, true, etag_out, err);
}

rag_rc s3_put_file(s3_client *c, const s3_op *op, const char *path,
		   const char *key, char *etag_out, rag_error *err)
{
	struct stat st;
	void *map = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	rag_rc rc;

	if (fd < 0)
		return rag_error_set(err, RAG_EIO, "cannot open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return rag_error_set(err, RAG_EIO, "\"%s\" is not a regular file", path);
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			close(fd);
			return rag_error_set(err, RAG_EIO, "cannot map \"%s\": %s", path,
					     strerror(errno));
		}
	}
	close(fd);
	rc = s3_put(c, op, key, map ? map : "", (size_t)st.st_size, NULL, etag_out, err);
	if (map)
		munmap(map, (size_t)st.st_size);
	return rc;
}

rag_rc s3_delete(s3_client *c, const s3_op *op, const char *key, rag_error *err)
{
	s3_request rq = {.method = "DELETE", .kind = S3_DELETE, .key = key, .fd = -1};
	s3_response rs = {0};
	rag_rc rc = s3_perform(c, op, &rq, &rs, err);

	response_release(&rs);
	return rc;
}

static rag_rc xml_escape(rag_buf *b, const char *s)
{
	rag_rc rc = RAG_OK;

	for (; *s && !rc; s++) {
		switch (*s) {
		case '&': rc = rag_buf_puts(b, "&amp;"); break;
		case '<': rc = rag_buf_puts(b, "&lt;"); break;
		case '>': rc = rag_buf_puts(b, "&gt;"); break;
		case '"': rc = rag_buf_puts(b, "&quot;"); break;
		case '\'': rc = rag_buf_puts(b, "&apos;"); break;
		default: rc = rag_buf_putc(b, *s);
		}
	}
	return rc;
}

rag_rc s3_delete_many(s3_client *c, const s3_op *op, const char *const *keys,
		      size_t n, rag_error *err)
{
	rag_buf body, answer;
	rag_rc rc = RAG_OK;

	rag_buf_init(&body, 8u << 20);
	rag_buf_init(&answer, 4u << 20);
	for (size_t at = 0; at < n && !rc; at += 1000) {
		size_t end = n - at > 1000 ? at + 1000 : n, nerr = 0;
		s3_xml_error first;

		rag_buf_reset(&body);
		rag_buf_reset(&answer);
		rc = rag_buf_puts(&body, "<Delete><Quiet>true</Quiet>");
		for (size_t i = at; i < end && !rc; i++) {
			rc = rag_buf_puts(&body, "<Object><Key>");
			if (!rc)
				rc = xml_escape(&body, keys[i]);
			if (!rc)
				rc = rag_buf_puts(&body, "</Key></Object>");
		}
		if (!rc)
			rc = rag_buf_puts(&body, "</Delete>");
		if (rc) {
			rag_error_set(err, rc, "delete: request body too large");
			break;
		}
		s3_request rq = {.method = "POST", .kind = S3_DELETE, .query = "delete=",
				 .body = body.data, .body_len = body.len, .md5 = true,
				 .content_type = "application/xml", .out = &answer, .fd = -1};
		s3_response rs = {0};
		rc = s3_perform(c, op, &rq, &rs, err);
		response_release(&rs);
		if (!rc && answer.len)
			rc = s3_xml_parse_delete_result(answer.data, answer.len, &nerr, &first, err);
		if (!rc && nerr)
			rc = rag_error_set(err, s3_error_code_rc(first.code, 0),
					   "delete: %zu keys failed, first \"%s\": %s %s", nerr,
					   first.key, first.code, first.message);
	}
	rag_buf_release(&body);
	rag_buf_release(&answer);
	return rc;
}

/* ------------------------------------------- topics and notifications */

#define CONFIG_ANSWER_MAX (4u << 20) /* ListTopics names every topic of the tenant */

/* One topic action: a form POSTed to the service root (s3.h). */
static rag_rc topic_action(s3_client *c, const s3_op *op, const rag_buf *form, rag_buf *answer,
			   rag_error *err)
{
	s3_request rq = {.method = "POST", .kind = S3_CONFIG, .sns = true, .body = form->data,
			 .body_len = form->len, .content_type = "application/x-www-form-urlencoded",
			 .out = answer, .fd = -1};
	s3_response rs = {0};
	rag_rc rc = s3_perform(c, op, &rq, &rs, err);

	response_release(&rs);
	return rc;
}

/*
 * "&Attributes.entry.N.key=KEY&Attributes.entry.N.value=VALUE". RGW 16
 * splits these parameters at '.' before decoding them and drops empty
 * pieces ("a..b." came back as "a.b"), so every '.' of the value is sent
 * as %2E.
 */
static rag_rc add_attribute(rag_buf *form, int n, const char *key, const char *value)
{
	rag_rc rc = rag_buf_printf(form, "&Attributes.entry.%d.key=%s&Attributes.entry.%d.value=",
				   n, key, n);

	return rc ? rc : uri_encode(value, false, false, form);
}

static bool topic_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 256)
		return false;
	/* AWS's rule; it also keeps the name a single ARN field */
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

rag_rc s3_topic_create(s3_client *c, const s3_op *op, const char *name, const char *push_endpoint,
		       const char *opaque_data, bool persistent, char *arn, size_t arn_len,
		       rag_error *err)
{
	rag_buf form, answer;
	const char *host;
	int n = 0;
	rag_rc rc;

	if (!topic_name_ok(name))
		return rag_error_set(err, RAG_EINVAL, "topic \"%s\": a name is 1 to 256 letters, "
				     "digits, '-' or '_'", name ? name : "");
	/* the endpoint itself may hold a secret: no message quotes it */
	if (!push_endpoint || (strncmp(push_endpoint, "http://", 7) != 0 &&
			       strncmp(push_endpoint, "https://", 8) != 0))
		return rag_error_set(err, RAG_EINVAL, "topic \"%s\": the push endpoint must be an "
				     "http:// or https:// URL", name);
	rag_buf_init(&form, 64 * 1024);
	rag_buf_init(&answer, CONFIG_ANSWER_MAX);
	rc = rag_buf_printf(&form, "Action=CreateTopic&Name=%s", name);
	if (!rc)
		rc = add_attribute(&form, ++n, "push-endpoint", push_endpoint);
	if (!rc && opaque_data)
		rc = add_attribute(&form, ++n, "OpaqueData", opaque_data);
	if (!rc && persistent)
		rc = add_attribute(&form, ++n, "persistent", "true");
	if (rc) {
		rag_error_set(err, rc, "topic \"%s\": push endpoint or opaque data too long", name);
		goto out;
	}
	rc = topic_action(c, op, &form, &answer, err);
	host = strstr(push_endpoint, "://") + 3;
	if (rc == RAG_ESTORAGE && memchr(host, '@', strcspn(host, "/?#")))
		rag_error_prefix(err, "topic \"%s\": the push endpoint holds user:password, which "
				 "RGW accepts only over https", name);
	else if (rc)
		rag_error_prefix(err, "topic \"%s\"", name);
	if (!rc)
		rc = s3_xml_topic_arn(answer.data, answer.len, NULL, arn, arn_len, err);
out:
	rag_buf_release(&form);
	rag_buf_release(&answer);
	return rc;
}

rag_rc s3_topic_delete(s3_client *c, const s3_op *op, const char *topic, rag_error *err)
{
	rag_buf form, answer;
	char arn[512];
	rag_rc rc = RAG_OK;

	if (!topic || (strncmp(topic, "arn:", 4) != 0 && !topic_name_ok(topic)))
		return rag_error_set(err, RAG_EINVAL, "topic \"%s\": neither a name nor an ARN",
				     topic ? topic : "");
	rag_buf_init(&form, 4096);
	rag_buf_init(&answer, CONFIG_ANSWER_MAX);
	if (strncmp(topic, "arn:", 4) == 0) {
		rag_strlcpy(arn, topic, sizeof(arn));
	} else {
		rc = rag_buf_puts(&form, "Action=ListTopics");
		if (!rc)
			rc = topic_action(c, op, &form, &answer, err);
		/* RGW 16 refuses ListTopics over http once a topic holds a password */
		if (rc == RAG_EACCESS)
			rag_error_prefix(err, "looking up topic \"%s\" (delete it by ARN)", topic);
		if (!rc)
			rc = s3_xml_topic_arn(answer.data, answer.len, topic, arn, sizeof(arn), err);
		if (rc == RAG_ENOTFOUND) {
			rc = RAG_OK; /* absent: as a DELETE of an absent key */
			goto out;
		}
	}
	rag_buf_reset(&form);
	if (!rc)
		rc = rag_buf_puts(&form, "Action=DeleteTopic&TopicArn=");
	if (!rc)
		rc = uri_encode(arn, false, true, &form);
	rag_buf_reset(&answer);
	if (!rc)
		rc = topic_action(c, op, &form, &answer, err);
	if (rc)
		rag_error_prefix(err, "delete topic \"%s\"", topic);
out:
	rag_buf_release(&form);
	rag_buf_release(&answer);
	return rc;
}

/* GET, PUT or DELETE of ?notification[=ID]; *status gets the HTTP status. */
static rag_rc notification_request(s3_client *c, const s3_op *op, const char *method,
				   const char *id, const rag_buf *body, rag_buf *answer,
				   long *status, rag_error *err)
{
	rag_buf q;
	rag_rc rc;

	rag_buf_init(&q, 4096);
	rc = add_param(&q, "notification", id ? id : "");
	if (rc) {
		rag_buf_release(&q);
		return rag_error_set(err, rc, "notification id too long");
	}
	s3_request rq = {.method = method, .kind = S3_CONFIG, .query = q.data,
			 .body = body ? body->data : NULL, .body_len = body ? body->len : 0,
			 .md5 = body != NULL, .content_type = body ? "application/xml" : NULL,
			 .out = answer, .fd = -1};
	s3_response rs = {0};
	rc = s3_perform(c, op, &rq, &rs, err);
	if (status)
		*status = rs.status;
	response_release(&rs);
	rag_buf_release(&q);
	return rc;
}

rag_rc s3_bucket_notification_get(s3_client *c, const s3_op *op, rag_buf *xml, rag_error *err)
{
	return notification_request(c, op, "GET", NULL, NULL, xml, NULL, err);
}

static rag_rc notification_xml(const s3_notification *rules, size_t n, rag_buf *b)
{
	rag_rc rc = rag_buf_puts(b, "<NotificationConfiguration "
				    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");

	for (size_t i = 0; i < n && !rc; i++) {
		const s3_notification *r = &rules[i];
		if ((rc = rag_buf_puts(b, "<TopicConfiguration><Id>")) || (rc = xml_escape(b, r->id)) ||
		    (rc = rag_buf_puts(b, "</Id><Topic>")) || (rc = xml_escape(b, r->topic_arn)) ||
		    (rc = rag_buf_puts(b, "</Topic>")))
			break;
		if ((r->events & S3_EVENT_CREATED) &&
		    (rc = rag_buf_puts(b, "<Event>s3:ObjectCreated:*</Event>")))
			break;
		if ((r->events & S3_EVENT_REMOVED) &&
		    (rc = rag_buf_puts(b, "<Event>s3:ObjectRemoved:*</Event>")))
			break;
		if (r->prefix && *r->prefix &&
		    ((rc = rag_buf_puts(b, "<Filter><S3Key><FilterRule><Name>prefix</Name><Value>")) ||
		     (rc = xml_escape(b, r->prefix)) ||
		     (rc = rag_buf_puts(b, "</Value></FilterRule></S3Key></Filter>"))))
			break;
		rc = rag_buf_puts(b, "</TopicConfiguration>");
	}
	return rc ? rc : rag_buf_puts(b, "</NotificationConfiguration>");
}

static bool same_rule(const s3_notification *a, const s3_notification *b)
{
	return !a->other && !b->other && strcmp(a->id, b->id) == 0 && a->topic_arn &&
	       strcmp(a->topic_arn, b->topic_arn) == 0 && a->events == b->events &&
	       strcmp(a->prefix ? a->prefix : "", b->prefix ? b->prefix : "") == 0;
}

static bool wanted(const s3_notification *rules, size_t n, const s3_notification *r)
{
	for (size_t i = 0; i < n; i++)
		if (same_rule(&rules[i], r))
			return true;
	return false;
}

/* Read the configuration back into cur; *exact: it holds rules and nothing else. */
static rag_rc read_back(s3_client *c, const s3_op *op, const s3_notification *rules, size_t n,
			s3_notification_list *cur, bool *exact, rag_error *err)
{
	rag_buf xml;
	size_t matched = 0;
	rag_rc rc;

	rag_buf_init(&xml, CONFIG_ANSWER_MAX);
	rc = s3_bucket_notification_get(c, op, &xml, err);
	if (!rc)
		rc = s3_xml_parse_notifications(xml.data, xml.len, cur, err);
	rag_buf_release(&xml);
	if (rc)
		return rc;
	*exact = true;
	for (size_t i = 0; i < cur->n; i++) {
		if (wanted(rules, n, &cur->rules[i]))
			matched++;
		else
			*exact = false;
	}
	/* every rule written is there once (duplicates would count twice) */
	if (matched != n)
		*exact = false;
	return RAG_OK;
}

/*
 * RGW keeps rules a PUT did not name: delete every rule whose id is that
 * of a rule not written. RGW deletes the first rule with the id, so the
 * id is deleted as many times as it appears, written rules with that id
 * included (the caller writes them again).
 */
static rag_rc delete_extra(s3_client *c, const s3_op *op, const s3_notification *rules, size_t n,
			   const s3_notification_list *cur, rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < cur->n && !rc; i++) {
		const char *id = cur->rules[i].id;
		bool first = true;
		if (wanted(rules, n, &cur->rules[i]))
			continue;
		for (size_t j = 0; j < i; j++)
			if (!wanted(rules, n, &cur->rules[j]) && strcmp(cur->rules[j].id, id) == 0)
				first = false; /* this id was dealt with */
		if (!first)
			continue;
		for (size_t j = 0; j < cur->n && !rc; j++) {
			if (strcmp(cur->rules[j].id, id) == 0)
				rc = notification_request(c, op, "DELETE", id, NULL, NULL, NULL, err);
		}
	}
	return rc;
}

rag_rc s3_bucket_notification_put(s3_client *c, const s3_op *op, const s3_notification *rules,
				  size_t n, rag_error *err)
{
	s3_notification_list cur = {0};
	rag_buf body;
	rag_error put_err = {0};
	bool exact = false;
	long status = 0;
	rag_rc rc = RAG_OK, put_rc;

	for (size_t i = 0; i < n; i++) {
		const s3_notification *r = &rules[i];
		if (!r->id || !*r->id || !r->topic_arn || !*r->topic_arn || !r->events || r->other)
			return rag_error_set(err, RAG_EINVAL, "notification rule \"%s\": %s",
					     r->id ? r->id : "",
					     r->other ? "holds settings ragmap cannot write"
						      : "needs an id, a topic ARN and events");
	}
	rag_buf_init(&body, CONFIG_ANSWER_MAX);
	if (notification_xml(rules, n, &body)) {
		rc = rag_error_set(err, RAG_ETOOBIG, "notification configuration too large");
		goto out;
	}
	put_rc = notification_request(c, op, "PUT", NULL, &body, NULL, &status, &put_err);
	/* RGW refuses an empty configuration (400): the rules go one by one */
	if (put_rc && !(n == 0 && status == 400)) {
		rc = put_rc;
		if (err)
			*err = put_err;
		goto out;
	}
	/* AWS: exact now. RGW: exact unless it kept rules not written */
	if ((rc = read_back(c, op, rules, n, &cur, &exact, err)) || exact)
		goto out;
	if ((rc = delete_extra(c, op, rules, n, &cur, err)))
		goto out;
	if (n && (rc = notification_request(c, op, "PUT", NULL, &body, NULL, NULL, err)))
		goto out;
	s3_notification_list_release(&cur);
	if (!(rc = read_back(c, op, rules, n, &cur, &exact, err)) && !exact)
		rc = rag_error_set(err, RAG_ESTORAGE,
				   "s3://%s: the notification configuration read back (%zu rules) "
				   "is not the %zu written", c->bucket, cur.n, n);
out:
	s3_notification_list_release(&cur);
	rag_buf_release(&body);
	return rc;
}

/* -------------------------------------------------------- parallel batches */

rag_rc s3_parallel(s3_client *c, size_t n, int concurrency, s3_task_fn fn, void *ctx)
{
	return rag_parallel_for(n, concurrency > 0 ? concurrency : c->concurrency, fn, ctx);
}

typedef struct get_batch {
	s3_client *c;
	const s3_op *op;
	s3_get_req *reqs;
} get_batch;

static rag_rc get_one(void *ctx, size_t i)
{
	get_batch *b = ctx;
	s3_get_req *r = &b->reqs[i];

	rag_error_clear(&r->err);
	if (r->len)
		r->rc = s3_get_range(b->c, b->op, r->key, r->off, r->len, &r->buf, &r->err);
	else
		r->rc = s3_get(b->c, b->op, r->key, &r->buf, &r->info, &r->err);
	return r->rc;
}

rag_rc s3_get_many(s3_client *c, const s3_op *op, s3_get_req *reqs, size_t n,
		   int concurrency)
{
	get_batch b = {.c = c, .op = op, .reqs = reqs};

	return s3_parallel(c, n, concurrency, get_one, &b);
}
