/*
 * rag_config — configuration from one declarative table.
 *
 * Each setting is one row of the table in rag_config.c (section, key, type,
 * default, bounds, help). That row feeds the INI file parser, the
 * environment overrides, `ragmap config show` and the commented example.
 *
 * Precedence, lowest first: built-in default < config file < standard AWS
 * variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY) < RAGMAP_<SECTION>_<KEY>.
 *
 * The environment is as strict as the file: a variable named
 * RAGMAP_<SECTION>_... for a known section that is no setting (a typo such
 * as RAGMAP_S3_BUKKET) is an error naming it, like an unknown key in the
 * file. RAGMAP_ variables that start with no section name (RAGMAP_CONFIG,
 * RAGMAP_LOG, RAGMAP_TRACE, the tests' RAGMAP_TEST_*, ...) are not looked
 * at; the few that do start like a setting but are not one
 * (RAGMAP_SOURCE_DIR, RAGMAP_LOCAL_KEY_ID, ...) are listed in one table in
 * rag_config.c, env_not_settings[].
 *
 * Every value remembers where it came from (rag_config_origin_of()), so a
 * message can say "the built-in default" or which file or variable.
 *
 * Secrets (type SECRET) are never printed: show and error messages redact
 * their values.
 */
#ifndef RAG_CONFIG_H
#define RAG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rag_err.h"

/* Where a setting's value came from. */
typedef enum {
	RAG_CFG_DEFAULT = 0, /* the built-in default */
	RAG_CFG_FILE,        /* the configuration file (rag_config.path) */
	RAG_CFG_AWS_ENV,     /* a standard AWS_* variable */
	RAG_CFG_ENV,         /* RAGMAP_<SECTION>_<KEY> */
	RAG_CFG_SET,         /* rag_config_set() by the program */
} rag_config_origin;

/* Room for the table's rows in rag_config.origin (checked when compiling). */
#define RAG_CONFIG_MAX_KEYS 96

typedef struct rag_config {
	struct {
		char *endpoint;          /* http(s)://host[:port] */
		char *region;
		char *bucket;
		bool path_style;         /* host/bucket/key vs bucket.host/key */
		char *access_key_id;     /* secret */
		char *secret_access_key; /* secret */
		char *ca_file;           /* extra CA bundle for https endpoints */
		int64_t max_retries;
		int64_t retry_base_ms;
		int64_t retry_max_ms;
		int64_t connect_timeout_ms;
		int64_t low_speed_time_s;  /* abort below 1 B/s for this long */
		int64_t concurrency;       /* parallel transfers */
		uint64_t multipart_threshold;
		uint64_t part_size;
	} s3;
	struct {
		char *prefix;
	} source;
	struct {
		double get_per_1000;      /* USD per 1,000 GET/HEAD */
		double put_per_1000;      /* USD per 1,000 PUT/POST/LIST */
		double storage_gb_month;  /* USD per GB-month stored */
	} cost;
	struct {
		char *name;
		char *prefix;
		int64_t ivf_threshold;   /* segments with fewer chunks are flat */
		int64_t segment_chunks;  /* most chunks in one segment */
		int64_t max_segments;    /* compact when more live segments than this */
		int64_t gc_grace_s;      /* unreferenced objects older than this go */
	} index;
	struct {
		uint64_t max_object_size; /* larger source objects are rejected */
		int64_t batch_docs;       /* documents fetched and parsed per batch */
		int64_t commit_every;     /* documents per committed version */
		int64_t commit_every_bytes; /* or source bytes */
		int64_t chunk_tokens;
		int64_t chunk_overlap;
		int64_t poll_s;           /* daemon: seconds between passes */
		double refit_growth;      /* refit when live chunks grew by this factor; 0: never */
		double refit_unknown;     /* refit when this share of new tokens is unknown; 0: never */
		char *listen;             /* daemon: HOST:PORT of /v1/events ("": none) */
		char *token;              /* secret: the daemon's bearer token ("": none) */
		int64_t event_window_ms;  /* daemon: coalesce events this long */
		int64_t retry_base_s;     /* failed objects: first backoff, doubling */
		int64_t retry_max_s;      /* ... capped here */
	} ingest;
	struct {
		char *dir;
	} local;
	struct {
		char *prefix;
		char *name;
		int64_t dims;
	} model;
	struct {
		char *mode;              /* memory | pointer | cached | object; checked
					  * by the CLI with qmode_parse() (see
					  * rag_config_check()) */
		char *listen;            /* HOST:PORT */
		char *replica;           /* name in answers ("": hostname:port) */
		int64_t threads;         /* HTTP worker threads */
		int64_t cache_mb;        /* cached mode: chunk text LRU */
		int64_t list_cache_mb;   /* object mode: inverted list LRU (0: none) */
		bool warm;               /* preload the cache at start (serve --warm) */
		int64_t warm_mb;         /* warm-up budget (0: the cache's size) */
		char *token;             /* secret: bearer token, empty = none */
		uint64_t max_body;
		int64_t max_k;
		int64_t max_query_bytes;
		int64_t timeout_ms;
		int64_t reload_s;        /* poll LATEST this often (0: never) */
		char *log_prefix;        /* query log objects */
		int64_t log_flush_s;
		int64_t log_flush_records;
		int64_t rrf_k;           /* hybrid: reciprocal rank fusion constant */
		int64_t hybrid_depth;    /* hybrid: candidates taken from each retriever */
		char *hybrid_method;     /* "zscore" or "rrf" (checked at load) */
		double hybrid_weight;    /* zscore: weight of dense, bm25 gets 1 - it */
		char *scan;              /* "faiss" or "blas" (checked at load): vindex_scan */
	} query;
	char *path; /* the file it was read from, or NULL */
	unsigned char origin[RAG_CONFIG_MAX_KEYS]; /* rag_config_origin of each table row */
} rag_config;

/* Fill cfg with the built-in defaults. Release with rag_config_release(). */
rag_rc rag_config_init(rag_config *cfg);
void rag_config_release(rag_config *cfg);

/*
 * The whole sequence: defaults, then the file (path, else $RAGMAP_CONFIG,
 * else config/ragmap.conf when it exists), then the environment.
 * RAG_ECONFIG with "file:line: ..." or the variable's name in err.
 */
rag_rc rag_config_load(rag_config *cfg, const char *path, rag_error *err);

/* Parse one INI file over the current values. */
rag_rc rag_config_load_file(rag_config *cfg, const char *path, rag_error *err);

/*
 * Apply AWS_* and RAGMAP_<SECTION>_<KEY> overrides. RAG_ECONFIG, naming the
 * variable, for a bad value or for a RAGMAP_<SECTION>_ variable that is no
 * setting (see the top of this file); nothing is applied then.
 */
rag_rc rag_config_apply_env(rag_config *cfg, rag_error *err);

/* Set section.key from text, validating it (origin RAG_CFG_SET).
 * RAG_ECONFIG on error. */
rag_rc rag_config_set(rag_config *cfg, const char *section, const char *key,
		      const char *value, rag_error *err);

/*
 * Where section.key's value came from. With what != NULL, also a phrase
 * for messages in what[0..len): "environment variable RAGMAP_S3_ENDPOINT",
 * "environment variable AWS_ENDPOINT_URL", the file's path, "the program",
 * or for a default "the built-in default (no config file, no
 * AWS_ENDPOINT_URL, no RAGMAP_S3_ENDPOINT)" -- every place it could have
 * been set ("no s3.endpoint in FILE" when a file was read). An unknown key
 * gives RAG_CFG_DEFAULT and "an unknown setting".
 */
rag_config_origin rag_config_origin_of(const rag_config *cfg, const char *section,
				       const char *key, char *what, size_t len);

/*
 * Check a string setting whose valid values belong to a module above the
 * core, which cannot link to it (query.mode: qmode_parse() in src/query).
 * valid(value) says whether the value is one; expected lists them for the
 * message ("memory, pointer, cached, object"). RAG_ECONFIG naming where the
 * value came from, section.key and the value, e.g. "environment variable
 * RAGMAP_QUERY_MODE: query.mode: "foo" is not one of memory, ...".
 * RAG_EINVAL for an unknown or non-string key.
 */
rag_rc rag_config_check(const rag_config *cfg, const char *section, const char *key,
			bool (*valid)(const char *value), const char *expected, rag_error *err);

/* Print the effective settings as INI (secrets shown as "<redacted>"). */
void rag_config_show(const rag_config *cfg, FILE *out);

/* Print a commented example file with every key and its default. */
void rag_config_example(FILE *out);

#endif
