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
 * Secrets (type SECRET) are never printed: show and error messages redact
 * their values.
 */
#ifndef RAG_CONFIG_H
#define RAG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rag_err.h"

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
		int64_t chunk_tokens;
		int64_t chunk_overlap;
		int64_t poll_s;           /* daemon: seconds between passes */
		double refit_growth;      /* refit when live chunks grew by this factor; 0: never */
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
		char *mode;              /* memory | pointer | cached | object */
		char *listen;            /* HOST:PORT */
		int64_t threads;         /* HTTP worker threads */
		int64_t cache_mb;        /* cached mode: chunk text LRU */
		int64_t list_cache_mb;   /* object mode: inverted list LRU (0: none) */
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
		char *hybrid_method;     /* "rrf" or "zscore" */
		double hybrid_weight;    /* zscore: weight of dense, bm25 gets 1 - it */
	} query;
	char *path; /* the file it was read from, or NULL */
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

/* Apply AWS_* and RAGMAP_<SECTION>_<KEY> overrides. */
rag_rc rag_config_apply_env(rag_config *cfg, rag_error *err);

/* Set section.key from text, validating it. RAG_ECONFIG on error. */
rag_rc rag_config_set(rag_config *cfg, const char *section, const char *key,
		      const char *value, rag_error *err);

/* Print the effective settings as INI (secrets shown as "<redacted>"). */
void rag_config_show(const rag_config *cfg, FILE *out);

/* Print a commented example file with every key and its default. */
void rag_config_example(FILE *out);

#endif
