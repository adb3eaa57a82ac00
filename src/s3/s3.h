/*
 * s3 — the S3 client. The only code in ragmap that talks to storage.
 *
 * Invariants:
 *  1. Every HTTP request to the store goes through s3_perform() in s3.c and
 *     is counted there, once, under the caller's stage label and kind, with
 *     its bytes in and out, its duration (retries and backoff included) and
 *     its retry count. Traces and /metrics are built on these counts only.
 *  2. Retries happen on 5xx, 429, connection errors, timeouts and truncated
 *     bodies, with exponential backoff and full jitter, at most max_retries
 *     times. Other 4xx answers are final.
 *  3. A GET succeeds only when the body received is exactly Content-Length
 *     bytes; a single-part PUT always sends Content-MD5.
 *  4. Requests are signed with libcurl's SigV4. No header is both removed
 *     and signed: libcurl before 8.3.0 signs a header it was told to drop
 *     ("Expect:"), which real stores refuse, so there curl keeps its own
 *     100-continue for bodies over 1 MiB.
 *
 * Thread safety: an s3_client may be used from many threads at once; each
 * call borrows a curl handle from a pool, and connections are shared.
 */
#ifndef S3_H
#define S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_buf.h"
#include "rag_config.h"
#include "rag_err.h"
#include "rag_log.h"
#include "rag_stage.h"
#include "s3_xml.h"

/* Request kinds, as counted. MPU = multipart create/complete/abort;
 * CONFIG = topics and bucket notification configurations. */
#define S3_KIND_LIST(X) X(LIST, "list") X(GET, "get") X(HEAD, "head") \
	X(PUT, "put") X(PART, "part") X(MPU, "multipart") X(DELETE, "delete") \
	X(CONFIG, "config")

typedef enum {
#define S3_X(name, str) S3_##name,
	S3_KIND_LIST(S3_X)
#undef S3_X
	S3_KIND_COUNT
} s3_kind;

const char *s3_kind_name(s3_kind kind);

typedef struct s3_counter {
	uint64_t requests; /* logical requests (a retried one counts once) */
	uint64_t retries;  /* extra attempts on top of requests */
	uint64_t errors;   /* requests that failed in the end */
	uint64_t bytes_in; /* response bytes received, all attempts */
	uint64_t bytes_out;/* request body bytes sent, all attempts */
	uint64_t ns;       /* wall time, backoff included */
} s3_counter;

/* One request of a traced operation, as it went (s3_trace_log_init()). */
typedef struct s3_req {
	s3_kind kind;
	char key[256];     /* the object (truncated past 255 bytes); "" for the bucket */
	bool range;        /* a ranged GET of [off, off + len) (len 0: to the end) */
	uint64_t off, len;
	uint64_t bytes_in, bytes_out; /* all attempts */
	long status;       /* the last HTTP status; 0 when no answer came */
	unsigned attempts; /* 1 + retries */
	uint64_t start_ns, dur_ns;    /* rag_now_ns() clock */
} s3_req;

/*
 * What a caller's own work cost: add one to an s3_op to collect it. The
 * counters always; the request log too once s3_trace_log_init() asked for
 * it (it grows as requests come, up to max; later ones are counted in
 * dropped). A zeroed trace is valid (counters only).
 */
typedef struct s3_trace {
	s3_counter kind[S3_KIND_COUNT];
	s3_req *reqs;      /* owned */
	size_t nreqs, cap, max; /* max 0: no log */
	uint64_t dropped;
} s3_trace;

/* Log up to max requests in t (room is taken as they come). */
void s3_trace_log_init(s3_trace *t, size_t max);
/* Free the log; the counters stay. */
void s3_trace_release(s3_trace *t);

/* Sum over kinds. */
void s3_trace_total(const s3_trace *t, s3_counter *out);

/* Storage prices (config [cost]), in US dollars. */
typedef struct s3_prices {
	double get_per_1000;      /* GET, HEAD */
	double put_per_1000;      /* PUT, POST (multipart, notifications), LIST */
	double storage_gb_month;
} s3_prices;

void s3_prices_from_config(const rag_config *cfg, s3_prices *p);

/* What the requests of counters kind[] cost: GET/HEAD and PUT/POST/LIST at
 * their price per 1,000; DELETE is free; transfer in the region is free. */
double s3_cost_usd(const s3_counter kind[S3_KIND_COUNT], const s3_prices *p);

/*
 * Wall time spent waiting on storage: the union of the logged requests'
 * intervals (parallel requests count once), in ns. 0 without a log.
 */
uint64_t s3_trace_wall_ns(const s3_trace *t);
void s3_counter_add(s3_counter *into, const s3_counter *c);

/* Who is asking: the stage label for the counters, and an optional trace. */
typedef struct s3_op {
	const char *stage;    /* a label of rag_stage.h's list, e.g. "query.text";
	                       * static string */
	s3_trace *trace;      /* may be NULL; updated under the client's lock */
	uint64_t deadline_ns; /* rag_now_ns() clock; 0: none. A request (with its
	                       * retries) that would run past it fails RAG_ETIMEOUT */
} s3_op;

#define S3_OP(stage, trace) (&(s3_op){(stage), (trace), 0})
#define S3_OP_BY(stage, trace, deadline_ns) (&(s3_op){(stage), (trace), (deadline_ns)})

typedef struct s3_client s3_client;

/*
 * A client for cfg's endpoint and bucket (the config is copied). log may be
 * NULL. Returns NULL with err set on a bad endpoint or out of memory.
 * Free with s3_client_free().
 */
s3_client *s3_client_new(const rag_config *cfg, rag_log *log, rag_error *err);
void s3_client_free(s3_client *c);

const char *s3_client_bucket(const s3_client *c);

/* For tests: keys per ListObjectsV2 page (1..1000, default 1000). */
void s3_client_set_page_size(s3_client *c, int max_keys);

/* For tests: seed the jitter so backoff is repeatable. */
void s3_client_set_seed(s3_client *c, uint64_t seed);

/* ---- counters ---- */

typedef struct s3_stage_stats {
	char stage[RAG_STAGE_LABEL_MAX + 1];
	s3_counter kind[S3_KIND_COUNT];
} s3_stage_stats;

/*
 * Copy the counters of every stage seen so far into out (up to max
 * entries); returns the number of stages.
 */
size_t s3_client_stats(s3_client *c, s3_stage_stats *out, size_t max);

/* The counters of every stage of kind k (rag_stage.h's list), summed per
 * request kind into out[]. */
void s3_client_kind_totals(s3_client *c, rag_stage_kind k, s3_counter out[S3_KIND_COUNT]);

/* ---- requests ---- */

typedef struct s3_list {
	s3_object *objects;
	size_t nobjects;
	char **prefixes; /* CommonPrefixes when a delimiter was given */
	size_t nprefixes;
} s3_list;

/* Every key under prefix (all pages). delimiter may be NULL. */
rag_rc s3_list_objects(s3_client *c, const s3_op *op, const char *prefix,
		       const char *delimiter, s3_list *out, rag_error *err);
void s3_list_release(s3_list *l);

/*
 * GET a whole object into out (appending; bounded by out->max) and its
 * metadata into info (may be NULL; the key is not filled in).
 */
rag_rc s3_get(s3_client *c, const s3_op *op, const char *key, rag_buf *out,
	      s3_object *info, rag_error *err);

/* GET bytes [off, off+len) into out. RAG_ECORRUPT if fewer come back. */
rag_rc s3_get_range(s3_client *c, const s3_op *op, const char *key, uint64_t off,
		    uint64_t len, rag_buf *out, rag_error *err);

/* GET into a file (written as path.part, then renamed). */
rag_rc s3_get_file(s3_client *c, const s3_op *op, const char *key,
		   const char *path, s3_object *info, rag_error *err);

/*
 * GET into an open descriptor (a pipe, stdout, /dev/null, a file), streamed:
 * nothing is held in memory. A retry rewinds a regular file. Anything else
 * is resumed: the retry asks for the rest of the object from the last byte
 * written, pinned to the ETag of what was sent (If-Match), so the
 * descriptor receives exactly one version of the object. If the object
 * changed meanwhile: RAG_ECONFLICT, and the descriptor holds a prefix of
 * the first version (the error says how many bytes).
 */
rag_rc s3_get_fd(s3_client *c, const s3_op *op, const char *key, int fd,
		 s3_object *info, rag_error *err);

/* HEAD: size, ETag and last-modified. RAG_ENOTFOUND if absent. */
rag_rc s3_head(s3_client *c, const s3_op *op, const char *key, s3_object *info,
	       rag_error *err);

/*
 * PUT len bytes. Above the multipart threshold the upload is split into
 * parts uploaded in parallel (and aborted on failure). etag_out (may be
 * NULL, at least 80 bytes) receives the new ETag.
 */
rag_rc s3_put(s3_client *c, const s3_op *op, const char *key, const void *data,
	      size_t len, const char *content_type, char *etag_out, rag_error *err);

/*
 * PUT only if the key does not exist ("If-None-Match: *"): RAG_ECONFLICT
 * (412) when it does. A 409 ConditionalRequestConflict is retried. A 412
 * after a retry may mean the first attempt landed: callers that must know
 * read the object back. Single-request bodies only (RAG_ETOOBIG above the
 * multipart threshold). Stores that ignore the header simply overwrite:
 * see commit_probe().
 */
rag_rc s3_put_if_absent(s3_client *c, const s3_op *op, const char *key, const void *data,
			size_t len, const char *content_type, char *etag_out, rag_error *err);

/* PUT a local file (mapped into memory, then as s3_put). */
rag_rc s3_put_file(s3_client *c, const s3_op *op, const char *path,
		   const char *key, char *etag_out, rag_error *err);

/* DELETE one key (absent keys are not an error, as in S3). */
rag_rc s3_delete(s3_client *c, const s3_op *op, const char *key, rag_error *err);

/* Multi-object delete, 1000 keys per request. */
rag_rc s3_delete_many(s3_client *c, const s3_op *op, const char *const *keys,
		      size_t n, rag_error *err);

/* ---- event notifications: topics and bucket rules ----
 *
 * A bucket's notification configuration is a list of rules (s3_notification,
 * in s3_xml.h), each sending the events of keys under a prefix to a topic,
 * and a topic holds the push endpoint. This is Ceph RGW's API: topics are
 * created by SNS-style actions POSTed to the service root of the S3
 * endpoint (AWS keeps topics in SNS, another service: not supported here).
 *
 * What Ceph RGW 16.2 does with them (found by trying; see
 * tests/integration/s3_notify.sh):
 *  1. A rule holds a copy of its topic made when the rule is written: a
 *     topic changed later reaches the rule only when it is written again.
 *  2. Without `persistent`, the push happens inside the request that made
 *     the event: the client's PUT or DELETE waits for the endpoint's answer
 *     (up to rgw_curl_low_speed_time, 300 s, for an endpoint that accepts
 *     and never answers). A failed push (refused, non-2xx) is logged and
 *     dropped, never retried, and the request still succeeds, but RGW stops
 *     there: the rules after it (in the order of "<id>_<topic>") receive
 *     nothing for that request.
 *  3. A persistent topic queues events in RADOS and pushes them from a
 *     background thread (in parallel, so in any order; the first push of a
 *     new queue came 7-30 s late), retrying at once and without end until
 *     the endpoint answers 2xx; the client's request does not wait. After
 *     the endpoint refused a connection, the queue stalled for good (until
 *     radosgw restarts) in 2 of 6 tries, and a persistent topic created
 *     again under the name of a deleted one is never pushed.
 *  4. Each push is one POST of {"Records": [one record]}, Content-Type
 *     application/json, no Authorization header, to the endpoint URL as
 *     given (its query string included). eventName is "ObjectCreated:Put",
 *     "ObjectRemoved:Delete", ... (no "s3:" prefix), s3.object.key is the
 *     raw key (not URL-encoded as AWS does), eTag unquoted, and the topic's
 *     OpaqueData comes back in every record as "opaqueData".
 *  5. Topic actions are not authorised per user: anonymous requests may
 *     create, read (push endpoint and OpaqueData included), list and delete
 *     the topics of the default tenant (fixed in later Ceph releases). A
 *     secret in a topic is only as private as RGW's port.
 *  6. A multi-object delete (s3_delete_many) of keys a rule covers makes
 *     radosgw 16.2.15 abort, persistent topic or not: under a notified
 *     prefix, delete one key per request.
 */

/*
 * Create the topic called name (letters, digits, '-', '_'; at most 256)
 * or update its attributes, and put its ARN in arn (arn_len bytes, 256 is
 * plenty). push_endpoint is an http:// or https:// URL (it may carry a
 * secret, e.g. a ?token= parameter: it is never logged or put in an error
 * message). opaque_data (NULL: none) is sent back in every record.
 * persistent: RGW queues and retries delivery (invariant 3 above). RGW
 * refuses an endpoint with user:password@ unless this request comes over
 * https. Rules already written keep the old copy (invariant 1).
 */
rag_rc s3_topic_create(s3_client *c, const s3_op *op, const char *name, const char *push_endpoint,
		       const char *opaque_data, bool persistent, char *arn, size_t arn_len,
		       rag_error *err);

/*
 * Delete a topic, given its ARN ("arn:...") or its name (then its ARN is
 * looked up with ListTopics, which RGW 16 refuses over http once any topic
 * of the tenant holds a password: RAG_EACCESS). An absent topic is not an
 * error. Rules naming it keep their copy (invariant 1): remove them first.
 */
rag_rc s3_topic_delete(s3_client *c, const s3_op *op, const char *topic, rag_error *err);

/*
 * The bucket's notification configuration as the store sends it (XML,
 * appended to xml, bounded by xml->max); s3_xml_parse_notifications()
 * reads it.
 */
rag_rc s3_bucket_notification_get(s3_client *c, const s3_op *op, rag_buf *xml, rag_error *err);

/*
 * Make rules (n of them; 0: none) the bucket's whole notification
 * configuration, and check it by reading it back. Every rule needs an id,
 * a topic ARN and events; a rule marked `other` cannot be written
 * (RAG_EINVAL). AWS replaces the configuration with one PUT. Ceph RGW adds
 * a PUT's rules to the ones it has (a rule with the same id and topic is
 * replaced; the same id with another topic is a second rule) and refuses an
 * empty configuration; so when the read-back shows rules that were not
 * written, they are deleted one by one by id (DELETE ?notification=ID, an
 * RGW extension, sent only after such a read-back) and the rules written
 * again. RAG_ESTORAGE when the configuration read back still differs.
 * Not atomic: two processes rewriting one bucket's configuration at once
 * can lose each other's rules.
 */
rag_rc s3_bucket_notification_put(s3_client *c, const s3_op *op, const s3_notification *rules,
				  size_t n, rag_error *err);

/* ---- parallel transfers ---- */

/* One ranged or whole GET of a batch. */
typedef struct s3_get_req {
	const char *key;  /* borrowed */
	uint64_t off, len;/* len == 0: the whole object */
	rag_buf buf;      /* caller initialises with its cap; result appended */
	s3_object info;   /* whole GETs: ETag, size, last-modified (key not set) */
	rag_rc rc;
	rag_error err;
} s3_get_req;

/*
 * Run all GETs with at most concurrency in flight (0: the configured
 * value). Returns RAG_OK when all succeeded, else the first failure's code
 * (each request keeps its own rc and err).
 */
rag_rc s3_get_many(s3_client *c, const s3_op *op, s3_get_req *reqs, size_t n,
		   int concurrency);

/*
 * Run fn(ctx, i) for i in [0, n) on up to concurrency threads (0: the
 * configured value). Returns the first non-OK code. Building block for
 * batch transfers; fn must be thread-safe.
 */
typedef rag_rc (*s3_task_fn)(void *ctx, size_t i); /* same as rag_task_fn */
rag_rc s3_parallel(s3_client *c, size_t n, int concurrency, s3_task_fn fn, void *ctx);

/* ---- pure helpers (exposed for tests) ---- */

/* Percent-encode s for a URI path (keep_slash) or a query value. */
rag_rc s3_uri_encode(const char *s, bool keep_slash, rag_buf *out);

/* The backoff before retry number attempt (1-based), in ms, full jitter. */
unsigned s3_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms,
		       uint64_t random);

/*
 * Whether this libcurl signs an "Expect:" header (which suppresses its own
 * 100-continue) correctly, i.e. leaves it out of SignedHeaders: 8.3.0 and
 * later. Anything that sends signed requests through libcurl, the curl
 * baseline of `ragmap bench s3` included, asks here.
 */
bool s3_can_drop_expect(void);

/* Whether an HTTP status / curl code deserves a retry. */
bool s3_status_retryable(long status);

/* Map an S3 error code to a rag_rc (NoSuchKey → RAG_ENOTFOUND ...). */
rag_rc s3_error_code_rc(const char *code, long status);

#endif
