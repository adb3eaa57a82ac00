#include "rag_config.h"

#include <ctype.h>
#include <stdint.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rag_util.h"

/* T_NAME: a string that becomes one path segment on local disk */
typedef enum { T_STR, T_NAME, T_SECRET, T_INT, T_SIZE, T_BOOL, T_REAL } cfg_type;

typedef struct cfg_item {
	const char *section;
	const char *key;
	cfg_type type;
	size_t offset;
	const char *def;
	int64_t min, max; /* bounds for T_INT and T_SIZE */
	const char *help;
} cfg_item;

#define OFF(f) offsetof(rag_config, f)
#define MiB (1024 * 1024)

static const cfg_item items[] = {
	{"s3", "endpoint", T_STR, OFF(s3.endpoint), "http://127.0.0.1:4570", 0, 0,
	 "S3 endpoint URL (http or https); AWS_ENDPOINT_URL overrides it"},
	{"s3", "region", T_STR, OFF(s3.region), "us-east-1", 0, 0,
	 "region used in the SigV4 signature; AWS_REGION overrides it"},
	{"s3", "bucket", T_STR, OFF(s3.bucket), "rag", 0, 0, "bucket holding every prefix below"},
	{"s3", "path_style", T_BOOL, OFF(s3.path_style), "true", 0, 0,
	 "true: http://host/bucket/key; false: http://bucket.host/key"},
	{"s3", "access_key_id", T_SECRET, OFF(s3.access_key_id), "", 0, 0,
	 "access key id; prefer AWS_ACCESS_KEY_ID"},
	{"s3", "secret_access_key", T_SECRET, OFF(s3.secret_access_key), "", 0, 0,
	 "secret key; prefer AWS_SECRET_ACCESS_KEY"},
	{"s3", "ca_file", T_STR, OFF(s3.ca_file), "", 0, 0,
	 "PEM file of CA certificates to trust for https (empty: the system's)"},
	{"s3", "max_retries", T_INT, OFF(s3.max_retries), "5", 0, 100,
	 "retries after a 5xx, 429, connection error or timeout"},
	{"s3", "retry_base_ms", T_INT, OFF(s3.retry_base_ms), "50", 1, 60000,
	 "first backoff; doubles per retry, with full jitter"},
	{"s3", "retry_max_ms", T_INT, OFF(s3.retry_max_ms), "5000", 1, 600000,
	 "largest backoff between two attempts"},
	{"s3", "connect_timeout_ms", T_INT, OFF(s3.connect_timeout_ms), "3000", 1, 600000,
	 "give up connecting after this long"},
	{"s3", "low_speed_time_s", T_INT, OFF(s3.low_speed_time_s), "15", 1, 3600,
	 "abort a transfer that moves no byte for this long"},
	{"s3", "concurrency", T_INT, OFF(s3.concurrency), "16", 1, 256,
	 "parallel transfers in a batch or multipart upload"},
	{"s3", "multipart_threshold", T_SIZE, OFF(s3.multipart_threshold), "64MiB", 5 * MiB,
	 (int64_t)5 << 40, "PUTs larger than this use multipart upload"},
	{"s3", "part_size", T_SIZE, OFF(s3.part_size), "8MiB", 5 * MiB, (int64_t)5 << 30,
	 "multipart part size (S3 requires at least 5 MiB)"},
	{"source", "prefix", T_STR, OFF(source.prefix), "source/", 0, 0,
	 "prefix of the input documents (ragmap never writes here)"},
	{"index", "name", T_NAME, OFF(index.name), "main", 0, 0, "index name"},
	{"index", "prefix", T_STR, OFF(index.prefix), "indexes/", 0, 0,
	 "prefix under which <name>/ (segments, manifests, LATEST) lives"},
	{"index", "ivf_threshold", T_INT, OFF(index.ivf_threshold), "20000", 1, INT32_MAX,
	 "segments with fewer chunks use an exact flat index, larger ones IVF"},
	{"index", "segment_chunks", T_INT, OFF(index.segment_chunks), "200000", 100, INT32_MAX,
	 "most chunks in one segment"},
	{"index", "max_segments", T_INT, OFF(index.max_segments), "8", 1, 100000,
	 "compaction merges the small segments when there are more than this"},
	{"index", "gc_grace_s", T_INT, OFF(index.gc_grace_s), "3600", 0, INT32_MAX,
	 "objects no kept manifest names are deleted once older than this"},
	{"ingest", "max_object_size", T_SIZE, OFF(ingest.max_object_size), "64MiB", 1,
	 (int64_t)1 << 40, "source objects larger than this are rejected"},
	{"ingest", "batch_docs", T_INT, OFF(ingest.batch_docs), "256", 1, 1000000,
	 "documents fetched and parsed per batch"},
	{"ingest", "chunk_tokens", T_INT, OFF(ingest.chunk_tokens), "256", 16, 8192,
	 "token budget of a chunk"},
	{"ingest", "chunk_overlap", T_INT, OFF(ingest.chunk_overlap), "32", 0, 4096,
	 "tokens shared by consecutive chunks of a section"},
	{"ingest", "poll_s", T_INT, OFF(ingest.poll_s), "30", 1, 86400,
	 "daemon: seconds between two passes over the source prefix"},
	{"ingest", "refit_growth", T_REAL, OFF(ingest.refit_growth), "1.0", 0, 1000,
	 "daemon: refit the model once live chunks grew by this factor (0: never)"},
	{"local", "dir", T_STR, OFF(local.dir), "indexes/", 0, 0,
	 "local working and cache directory"},
	{"model", "prefix", T_STR, OFF(model.prefix), "models/", 0, 0,
	 "prefix of the built-in model's weights"},
	{"model", "name", T_NAME, OFF(model.name), "ragmap-lsa", 0, 0, "the built-in model's name"},
	{"model", "dims", T_INT, OFF(model.dims), "256", 8, 4096, "embedding dimensions"},
	{"query", "mode", T_STR, OFF(query.mode), "memory", 0, 0,
	 "backing mode: memory, pointer, cached or object"},
	{"query", "listen", T_STR, OFF(query.listen), "127.0.0.1:8080", 0, 0,
	 "HOST:PORT of the query server (loopback by default)"},
	{"query", "threads", T_INT, OFF(query.threads), "8", 1, 256, "HTTP worker threads"},
	{"query", "cache_mb", T_INT, OFF(query.cache_mb), "64", 1, 1 << 20,
	 "cached mode: bound of the chunk text LRU, in MiB"},
	{"query", "list_cache_mb", T_INT, OFF(query.list_cache_mb), "0", 0, 1 << 20,
	 "object mode: bound of the inverted-list LRU, in MiB (0: no cache)"},
	{"query", "token", T_SECRET, OFF(query.token), "", 0, 0,
	 "bearer token the HTTP API requires (empty: none)"},
	{"query", "max_body", T_SIZE, OFF(query.max_body), "64KiB", 64, 16 << 20,
	 "largest request body"},
	{"query", "max_k", T_INT, OFF(query.max_k), "100", 1, 10000, "largest k a query may ask"},
	{"query", "max_query_bytes", T_INT, OFF(query.max_query_bytes), "4096", 1, 1 << 20,
	 "longest query text"},
	{"query", "timeout_ms", T_INT, OFF(query.timeout_ms), "10000", 1, 600000,
	 "a query's deadline: its storage reads and their retries stop there (HTTP 504)"},
	{"query", "reload_s", T_INT, OFF(query.reload_s), "5", 0, 86400,
	 "poll LATEST this often and hot-reload a new version (0: never)"},
	{"query", "log_prefix", T_STR, OFF(query.log_prefix), "logs/queries/", 0, 0,
	 "prefix of the batched query log objects"},
	{"query", "log_flush_s", T_INT, OFF(query.log_flush_s), "10", 1, 86400,
	 "flush the query log at least this often"},
	{"query", "log_flush_records", T_INT, OFF(query.log_flush_records), "1000", 1, 10000000,
	 "flush the query log once this many records wait"},
	{"query", "rrf_k", T_INT, OFF(query.rrf_k), "60", 1, 100000,
	 "hybrid retriever: k of reciprocal rank fusion, score = sum 1/(k + rank)"},
	{"query", "hybrid_depth", T_INT, OFF(query.hybrid_depth), "100", 1, 1000,
	 "hybrid retriever: candidates taken from each of dense and bm25"},
	{"query", "hybrid_method", T_STR, OFF(query.hybrid_method), "zscore", 0, 0,
	 "hybrid fusion: zscore (weighted sum of per-query standardised scores) or rrf"},
	{"query", "hybrid_weight", T_REAL, OFF(query.hybrid_weight), "0.5", 0, 1,
	 "zscore fusion: weight of the dense score (bm25 gets 1 - weight)"},
};

/* The standard AWS variables and the keys they set. */
static const struct {
	const char *env, *section, *key;
} aws_env[] = {
	{"AWS_ENDPOINT_URL", "s3", "endpoint"},
	{"AWS_REGION", "s3", "region"},
	{"AWS_ACCESS_KEY_ID", "s3", "access_key_id"},
	{"AWS_SECRET_ACCESS_KEY", "s3", "secret_access_key"},
};

static const cfg_item *find_item(const char *section, const char *key)
{
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++)
		if (strcmp(items[i].section, section) == 0 && strcmp(items[i].key, key) == 0)
			return &items[i];
	return NULL;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++)
		if (strcmp(items[i].section, section) == 0)
			return true;
	return false;
}

/*
 * A name that is safe as one path segment: 1..128 of [A-Za-z0-9._-], not
 * starting with a dot. index.name is a directory under local.dir, so "..",
 * "a/b" or "/etc" must never get that far.
 */
static bool name_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 128 || v[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("._-", v[i]))
			return false;
	return true;
}

static rag_rc set_item(rag_config *cfg, const cfg_item *it, const char *value,
		       rag_error *err)
{
	char *base = (char *)cfg + it->offset;
	const char *shown = it->type == T_SECRET ? "<redacted>" : value;
	int64_t i;
	uint64_t u;
	bool b;
	char *s;

	switch (it->type) {
	case T_NAME:
		if (!name_ok(value))
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not a name (1 to 128 of A-Z a-z 0-9 . _ -, "
					     "not starting with a dot)", it->section, it->key, value);
		/* fall through */
	case T_STR:
	case T_SECRET:
		if (!(s = rag_strdup(value)))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		free(*(char **)base);
		*(char **)base = s;
		return RAG_OK;
	case T_INT:
		if (!rag_parse_i64(value, &i) || i < it->min || i > it->max)
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not an integer in %lld..%lld",
					     it->section, it->key, shown,
					     (long long)it->min, (long long)it->max);
		*(int64_t *)base = i;
		return RAG_OK;
	case T_SIZE:
		if (!rag_parse_size(value, &u) || u < (uint64_t)it->min || u > (uint64_t)it->max)
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not a size in %lld..%lld bytes "
					     "(units: K, M, G)",
					     it->section, it->key, shown,
					     (long long)it->min, (long long)it->max);
		*(uint64_t *)base = u;
		return RAG_OK;
	case T_REAL: {
		char *end;
		double d = strtod(value, &end);
		if (!*value || *end || d < (double)it->min || d > (double)it->max)
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not a number in %lld..%lld",
					     it->section, it->key, shown,
					     (long long)it->min, (long long)it->max);
		*(double *)base = d;
		return RAG_OK;
	}
	case T_BOOL:
		if (!rag_parse_bool(value, &b))
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not a boolean (true/false)",
					     it->section, it->key, shown);
		*(bool *)base = b;
		return RAG_OK;
	}
	return rag_error_set(err, RAG_EINTERNAL, "bad config type");
}

rag_rc rag_config_set(rag_config *cfg, const char *section, const char *key,
		      const char *value, rag_error *err)
{
	const cfg_item *it = find_item(section, key);

	if (!it) {
		if (!known_section(section))
			return rag_error_set(err, RAG_ECONFIG, "unknown section [%s] (key \"%s\")",
					     section, key);
		return rag_error_set(err, RAG_ECONFIG, "unknown key \"%s\" in section [%s]",
				     key, section);
	}
	return set_item(cfg, it, value, err);
}

rag_rc rag_config_init(rag_config *cfg)
{
	rag_error err;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++)
		if (set_item(cfg, &items[i], items[i].def, &err)) {
			rag_config_release(cfg);
			return err.rc;
		}
	return RAG_OK;
}

void rag_config_release(rag_config *cfg)
{
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++)
		if (items[i].type == T_STR || items[i].type == T_NAME || items[i].type == T_SECRET) {
			char **p = (char **)((char *)cfg + items[i].offset);
			free(*p);
			*p = NULL;
		}
	free(cfg->path);
	cfg->path = NULL;
}

typedef struct ini_state {
	rag_config *cfg;
	rag_error first; /* the first problem; ini_parse gives its line */
	bool failed;
} ini_state;

static int on_ini_entry(void *user, const char *section, const char *name,
		       const char *value)
{
	ini_state *st = user;
	rag_error e;

	if (rag_config_set(st->cfg, section, name, value, &e) == RAG_OK)
		return 1;
	if (!st->failed) {
		st->first = e;
		st->failed = true;
	}
	return 0;
}

rag_rc rag_config_load_file(rag_config *cfg, const char *path, rag_error *err)
{
	ini_state st = {.cfg = cfg};
	int line = ini_parse(path, on_ini_entry, &st);

	if (line < 0)
		return rag_error_set(err, RAG_ECONFIG, "%s: cannot open configuration file", path);
	if (line > 0) {
		if (st.failed)
			return rag_error_set(err, RAG_ECONFIG, "%s:%d: %s", path, line, st.first.msg);
		return rag_error_set(err, RAG_ECONFIG, "%s:%d: syntax error", path, line);
	}
	free(cfg->path);
	cfg->path = rag_strdup(path);
	return RAG_OK;
}

/* "RAGMAP_" + upper(section) + "_" + upper(key) */
static void env_name(const cfg_item *it, char *buf, size_t len)
{
	snprintf(buf, len, "RAGMAP_%s_%s", it->section, it->key);
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

rag_rc rag_config_apply_env(rag_config *cfg, rag_error *err)
{
	char name[128];
	const char *v;

	for (size_t i = 0; i < RAG_ARRAY_LEN(aws_env); i++) {
		if (!(v = getenv(aws_env[i].env)) || !*v)
			continue;
		if (rag_config_set(cfg, aws_env[i].section, aws_env[i].key, v, err)) {
			rag_error_prefix(err, "environment variable %s", aws_env[i].env);
			return err ? err->rc : RAG_ECONFIG;
		}
	}
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++) {
		env_name(&items[i], name, sizeof(name));
		if (!(v = getenv(name)))
			continue;
		if (set_item(cfg, &items[i], v, err)) {
			rag_error_prefix(err, "environment variable %s", name);
			return err ? err->rc : RAG_ECONFIG;
		}
	}
	return RAG_OK;
}

rag_rc rag_config_load(rag_config *cfg, const char *path, rag_error *err)
{
	const char *file = path;
	rag_rc rc;

	if ((rc = rag_config_init(cfg)))
		return rag_error_set(err, rc, "cannot initialise configuration");
	if (!file || !*file)
		file = getenv("RAGMAP_CONFIG");
	if ((!file || !*file) && access("config/ragmap.conf", R_OK) == 0)
		file = "config/ragmap.conf";
	if (file && *file && (rc = rag_config_load_file(cfg, file, err)))
		goto fail;
	if ((rc = rag_config_apply_env(cfg, err)))
		goto fail;
	return RAG_OK;
fail:
	rag_config_release(cfg);
	return rc;
}

static void print_value(const rag_config *cfg, const cfg_item *it, FILE *out)
{
	const char *base = (const char *)cfg + it->offset;

	switch (it->type) {
	case T_STR:
	case T_NAME:
		fprintf(out, "%s", *(char *const *)base ? *(char *const *)base : "");
		break;
	case T_SECRET:
		fprintf(out, "%s", *(char *const *)base && **(char *const *)base
					   ? "<redacted>" : "");
		break;
	case T_INT:
		fprintf(out, "%lld", (long long)*(const int64_t *)base);
		break;
	case T_SIZE:
		fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)base);
		break;
	case T_BOOL:
		fprintf(out, "%s", *(const bool *)base ? "true" : "false");
		break;
	case T_REAL:
		fprintf(out, "%g", *(const double *)base);
		break;
	}
}

void rag_config_show(const rag_config *cfg, FILE *out)
{
	const char *section = "";

	if (cfg->path)
		fprintf(out, "; read from %s\n", cfg->path);
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++) {
		if (strcmp(section, items[i].section) != 0) {
			section = items[i].section;
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
		}
		fprintf(out, "%s = ", items[i].key);
		print_value(cfg, &items[i], out);
		fputc('\n', out);
	}
}

void rag_config_example(FILE *out)
{
	const char *section = "";
	char name[128];

	fprintf(out, "; ragmap configuration. Every key can be overridden by the\n"
		     "; environment variable RAGMAP_<SECTION>_<KEY>.\n");
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++) {
		if (strcmp(section, items[i].section) != 0) {
			section = items[i].section;
			fprintf(out, "\n[%s]\n", section);
		}
		env_name(&items[i], name, sizeof(name));
		fprintf(out, "; %s (%s)\n", items[i].help, name);
		if (items[i].type == T_SECRET)
			fprintf(out, ";%s = \n", items[i].key);
		else
			fprintf(out, "%s = %s\n", items[i].key, items[i].def);
	}
}
