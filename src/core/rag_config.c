#include "rag_config.h"

#include <ctype.h>
#include <stdint.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rag_util.h"

/* T_NAME: a string that becomes one path segment on local disk;
 * T_CHOICE: a string that must be one of the row's choices */
typedef enum { T_STR, T_NAME, T_SECRET, T_CHOICE, T_INT, T_SIZE, T_BOOL, T_REAL } cfg_type;

typedef struct cfg_item {
	const char *section;
	const char *key;
	cfg_type type;
	size_t offset;
	const char *def;
	int64_t min, max; /* bounds for T_INT and T_SIZE */
	const char *help;
	const char *const *choices; /* T_CHOICE: the valid values, NULL-terminated */
} cfg_item;

/* The type holds a char * the config owns. */
#define IS_STRING(t) ((t) == T_STR || (t) == T_NAME || (t) == T_SECRET || (t) == T_CHOICE)

#define OFF(f) offsetof(rag_config, f)
#define MiB (1024 * 1024)

/* query.hybrid_method; src/query/qindex.c fuses with rrf or, else, zscore */
static const char *const hybrid_methods[] = {"zscore", "rrf", NULL};
/* query.scan; src/query/qindex.c scans with blas or, else, faiss */
static const char *const scans[] = {"faiss", "blas", NULL};

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
	/* S3 Standard list prices, US East (N. Virginia), from
	 * https://aws.amazon.com/s3/pricing/ (unchanged since December 2016;
	 * recorded 2026-12-02): GET/SELECT and other requests $0.0004 per
	 * 1,000; PUT/COPY/POST/LIST $0.005 per 1,000; storage $0.023 per
	 * GB-month (first 50 TB); DELETE and transfer within the region free */
	{"cost", "get_per_1000", T_REAL, OFF(cost.get_per_1000), "0.0004", 0, 1000,
	 "USD per 1,000 GET/HEAD requests (S3 Standard list price, aws.amazon.com/s3/pricing, 2026-12)"},
	{"cost", "put_per_1000", T_REAL, OFF(cost.put_per_1000), "0.005", 0, 1000,
	 "USD per 1,000 PUT/POST/LIST requests (S3 Standard list price, 2026-12)"},
	{"cost", "storage_gb_month", T_REAL, OFF(cost.storage_gb_month), "0.023", 0, 1000,
	 "USD per GB-month stored (S3 Standard, first 50 TB, 2026-12); transfer in the region is free"},
	{"source", "prefix", T_STR, OFF(source.prefix), "source/", 0, 0,
	 "prefix of the input documents, or several separated by commas (ragmap never "
	 "writes there)"},
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
	{"ingest", "commit_every", T_INT, OFF(ingest.commit_every), "2000", 1, 1000000,
	 "a pass commits a version after this many documents"},
	{"ingest", "commit_every_bytes", T_SIZE, OFF(ingest.commit_every_bytes), "256MiB", 1,
	 (int64_t)1 << 40, "... or after this many source bytes, whichever comes first"},
	{"ingest", "chunk_tokens", T_INT, OFF(ingest.chunk_tokens), "256", 16, 8192,
	 "token budget of a chunk"},
	{"ingest", "chunk_overlap", T_INT, OFF(ingest.chunk_overlap), "32", 0, 4096,
	 "tokens shared by consecutive chunks of a section"},
	{"ingest", "poll_s", T_INT, OFF(ingest.poll_s), "30", 1, 86400,
	 "daemon: seconds between two passes over the source prefix"},
	{"ingest", "listen", T_STR, OFF(ingest.listen), "", 0, 0,
	 "daemon: HOST:PORT serving POST /v1/events and GET /v1/status (empty: none)"},
	{"ingest", "token", T_SECRET, OFF(ingest.token), "", 0, 0,
	 "daemon: bearer token its HTTP endpoint requires (empty: none)"},
	{"ingest", "event_window_ms", T_INT, OFF(ingest.event_window_ms), "200", 0, 60000,
	 "daemon: events arriving within this window are ingested together"},
	{"ingest", "retry_base_s", T_INT, OFF(ingest.retry_base_s), "60", 0, 86400,
	 "a failed object is retried after this long, doubling with each failure"},
	{"ingest", "retry_max_s", T_INT, OFF(ingest.retry_max_s), "21600", 0, 31536000,
	 "... up to this long between two attempts"},
	{"ingest", "refit_growth", T_REAL, OFF(ingest.refit_growth), "1.0", 0, 1000,
	 "refit the built-in model once live chunks grew by this factor (0: never)"},
	{"ingest", "refit_unknown", T_REAL, OFF(ingest.refit_unknown), "0.2", 0, 1,
	 "refit the built-in model once this share of the tokens embedded since the fit was unknown to it (0: never)"},
	{"local", "dir", T_STR, OFF(local.dir), "indexes/", 0, 0,
	 "local working and cache directory"},
	{"model", "prefix", T_STR, OFF(model.prefix), "models/", 0, 0,
	 "prefix of the stored models (fitted or imported)"},
	{"model", "name", T_NAME, OFF(model.name), "ragmap-lsa", 0, 0, "the built-in model's name"},
	{"model", "dims", T_INT, OFF(model.dims), "256", 8, 4096,
	 "dimensions of the built-in model (a change refits it; an imported model has its own)"},
	{"query", "mode", T_STR, OFF(query.mode), "memory", 0, 0,
	 "backing mode: memory, pointer, cached or object"},
	{"query", "listen", T_STR, OFF(query.listen), "127.0.0.1:8080", 0, 0,
	 "HOST:PORT of the query server (loopback by default)"},
	{"query", "replica", T_STR, OFF(query.replica), "", 0, 0,
	 "this server's name in answers (empty: <hostname>:<port>)"},
	{"query", "threads", T_INT, OFF(query.threads), "8", 1, 256, "HTTP worker threads"},
	{"query", "cache_mb", T_INT, OFF(query.cache_mb), "64", 1, 1 << 20,
	 "cached mode: bound of the chunk text LRU, in MiB"},
	{"query", "list_cache_mb", T_INT, OFF(query.list_cache_mb), "0", 0, 1 << 20,
	 "object mode: bound of the inverted-list LRU, in MiB (0: no cache)"},
	{"query", "warm", T_BOOL, OFF(query.warm), "false", 0, 0,
	 "preload the mode's cache at start and after a mode switch (serve --warm)"},
	{"query", "warm_mb", T_INT, OFF(query.warm_mb), "0", 0, 1 << 20,
	 "warm-up budget in MiB (0: the mode's cache size)"},
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
	{"query", "hybrid_method", T_CHOICE, OFF(query.hybrid_method), "zscore", 0, 0,
	 "hybrid fusion: zscore (weighted sum of per-query standardised scores) or rrf",
	 hybrid_methods},
	{"query", "hybrid_weight", T_REAL, OFF(query.hybrid_weight), "0.5", 0, 1,
	 "zscore fusion: weight of the dense score (bm25 gets 1 - weight)"},
	{"query", "scan", T_CHOICE, OFF(query.scan), "blas", 0, 0,
	 "memory, pointer, cached modes: what scans the probed lists: blas (OpenBLAS, "
	 "SIMD chosen at run time) or faiss (Debian's build, baseline x86-64); "
	 "same results",
	 scans},
};

_Static_assert(RAG_ARRAY_LEN(items) <= RAG_CONFIG_MAX_KEYS,
	       "raise RAG_CONFIG_MAX_KEYS in rag_config.h");

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

/* The standard AWS variable that sets it, or NULL. */
static const char *aws_env_of(const cfg_item *it)
{
	for (size_t i = 0; i < RAG_ARRAY_LEN(aws_env); i++)
		if (strcmp(aws_env[i].section, it->section) == 0 &&
		    strcmp(aws_env[i].key, it->key) == 0)
			return aws_env[i].env;
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
	case T_CHOICE: {
		size_t n = 0;
		char list[256];

		for (size_t k = 0; it->choices[k]; k++)
			if (strcmp(value, it->choices[k]) == 0)
				goto string;
		list[0] = '\0';
		for (size_t k = 0; it->choices[k] && n < sizeof(list); k++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", k ? ", " : "",
					      it->choices[k]);
		return rag_error_set(err, RAG_ECONFIG, "%s.%s: \"%s\" is not one of %s",
				     it->section, it->key, value, list);
	}
	case T_NAME:
		if (!name_ok(value))
			return rag_error_set(err, RAG_ECONFIG,
					     "%s.%s: \"%s\" is not a name (1 to 128 of A-Z a-z 0-9 . _ -, "
					     "not starting with a dot)", it->section, it->key, value);
		/* fall through */
	case T_STR:
	case T_SECRET:
	string:
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
		double d = 0;
		if (!rag_parse_double(value, &d) || d < (double)it->min || d > (double)it->max)
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

/* set_item, then remember where the value came from */
static rag_rc set_from(rag_config *cfg, const cfg_item *it, const char *value,
		       rag_config_origin origin, rag_error *err)
{
	rag_rc rc = set_item(cfg, it, value, err);

	if (rc == RAG_OK)
		cfg->origin[it - items] = (unsigned char)origin;
	return rc;
}

static rag_rc config_set(rag_config *cfg, const char *section, const char *key,
			 const char *value, rag_config_origin origin, rag_error *err)
{
	const cfg_item *it = find_item(section, key);

	if (!it) {
		if (!known_section(section))
			return rag_error_set(err, RAG_ECONFIG, "unknown section [%s] (key \"%s\")",
					     section, key);
		return rag_error_set(err, RAG_ECONFIG, "unknown key \"%s\" in section [%s]",
				     key, section);
	}
	return set_from(cfg, it, value, origin, err);
}

rag_rc rag_config_set(rag_config *cfg, const char *section, const char *key,
		      const char *value, rag_error *err)
{
	return config_set(cfg, section, key, value, RAG_CFG_SET, err);
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
		if (IS_STRING(items[i].type)) {
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

	if (config_set(st->cfg, section, name, value, RAG_CFG_FILE, &e) == RAG_OK)
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

/*
 * The RAGMAP_ variables that are not settings although they start like one,
 * RAGMAP_<SECTION>_..., and so would be rejected by check_env_names(). The
 * one place to add such a name; better, a new variable starts with no
 * section name (RAGMAP_TEST_..., RAGMAP_BENCH_...) and needs no entry.
 * The program's own non-setting variables are here too, so that a section
 * named like them ([log], [trace]) could never make them an error.
 */
static const char *const env_not_settings[] = {
	"RAGMAP_CONFIG",       /* the configuration file (rag_config_load) */
	"RAGMAP_LOG",          /* log level (rag_log.c) */
	"RAGMAP_TRACE",        /* trace areas (rag_log.c) */
	"RAGMAP_SOURCE_DIR",   /* tests: the source tree (tests/CMakeLists.txt) */
	"RAGMAP_LOCAL_KEY_ID", /* scripts/s3-local.sh: the local store's user */
	"RAGMAP_LOCAL_SECRET", /* scripts/s3-local.sh: its secret */
};

static bool env_exempt(const char *name, size_t n)
{
	for (size_t i = 0; i < RAG_ARRAY_LEN(env_not_settings); i++)
		if (strlen(env_not_settings[i]) == n && strncmp(env_not_settings[i], name, n) == 0)
			return true;
	return false;
}

/* The row whose variable is name[0..n), compared case-insensitively when fold. */
static const cfg_item *item_of_env(const char *name, size_t n, bool fold)
{
	char want[128];

	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++) {
		env_name(&items[i], want, sizeof(want));
		if (strlen(want) == n &&
		    (fold ? strncasecmp(want, name, n) : strncmp(want, name, n)) == 0)
			return &items[i];
	}
	return NULL;
}

/*
 * Every RAGMAP_<SECTION>_... variable, SECTION a known section, must be a
 * setting's variable or listed in env_not_settings[]: a typo in the
 * environment is an error, as an unknown key in the file is. Variables that
 * start with no section name are not ours to judge and are left alone.
 */
static rag_rc check_env_names(rag_error *err)
{
	char prefix[64], want[128], key[64];

	for (char **e = environ; e && *e; e++) {
		const char *name = *e, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const cfg_item *it;
		const char *section = NULL;

		if (strncmp(name, "RAGMAP_", 7) != 0 || item_of_env(name, n, false) ||
		    env_exempt(name, n))
			continue;
		for (size_t i = 0; i < RAG_ARRAY_LEN(items) && !section; i++) {
			size_t pn;
			snprintf(prefix, sizeof(prefix), "RAGMAP_%s_", items[i].section);
			for (char *p = prefix; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			pn = strlen(prefix);
			if (n > pn && strncmp(name, prefix, pn) == 0)
				section = items[i].section;
		}
		if (!section)
			continue;
		if ((it = item_of_env(name, n, true))) {
			env_name(it, want, sizeof(want));
			return rag_error_set(err, RAG_ECONFIG,
					     "environment variable %.*s: not a setting "
					     "(the name is upper case: %s)", (int)n, name, want);
		}
		/* the key as it would be in the file, for the same message */
		snprintf(key, sizeof(key), "%.*s", (int)(n - strlen(section) - 8),
			 name + strlen(section) + 8);
		for (char *p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return rag_error_set(err, RAG_ECONFIG,
				     "environment variable %.*s: unknown key \"%s\" in section [%s]",
				     (int)n, name, key, section);
	}
	return RAG_OK;
}

rag_rc rag_config_apply_env(rag_config *cfg, rag_error *err)
{
	char name[128];
	const char *v;
	rag_rc rc;

	if ((rc = check_env_names(err)))
		return rc;
	for (size_t i = 0; i < RAG_ARRAY_LEN(aws_env); i++) {
		if (!(v = getenv(aws_env[i].env)) || !*v)
			continue;
		if (config_set(cfg, aws_env[i].section, aws_env[i].key, v, RAG_CFG_AWS_ENV, err)) {
			rag_error_prefix(err, "environment variable %s", aws_env[i].env);
			return err ? err->rc : RAG_ECONFIG;
		}
	}
	for (size_t i = 0; i < RAG_ARRAY_LEN(items); i++) {
		env_name(&items[i], name, sizeof(name));
		if (!(v = getenv(name)))
			continue;
		if (set_from(cfg, &items[i], v, RAG_CFG_ENV, err)) {
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
	case T_CHOICE:
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

rag_config_origin rag_config_origin_of(const rag_config *cfg, const char *section,
				       const char *key, char *what, size_t len)
{
	const cfg_item *it = find_item(section, key);
	rag_config_origin src = it ? (rag_config_origin)cfg->origin[it - items] : RAG_CFG_DEFAULT;
	const char *aws = it ? aws_env_of(it) : NULL;
	char name[128];

	if (!what || !len)
		return src;
	if (!it) {
		snprintf(what, len, "an unknown setting");
		return src;
	}
	env_name(it, name, sizeof(name));
	switch (src) {
	case RAG_CFG_DEFAULT:
		if (cfg->path)
			snprintf(what, len, "the built-in default (no %s.%s in %s, %s%s%sno %s)",
				 section, key, cfg->path, aws ? "no " : "", aws ? aws : "",
				 aws ? ", " : "", name);
		else
			snprintf(what, len, "the built-in default (no config file, %s%s%sno %s)",
				 aws ? "no " : "", aws ? aws : "", aws ? ", " : "", name);
		break;
	case RAG_CFG_FILE:
		snprintf(what, len, "%s", cfg->path ? cfg->path : "the configuration file");
		break;
	case RAG_CFG_AWS_ENV:
		snprintf(what, len, "environment variable %s", aws ? aws : "AWS_*");
		break;
	case RAG_CFG_ENV:
		snprintf(what, len, "environment variable %s", name);
		break;
	case RAG_CFG_SET:
		snprintf(what, len, "the program");
		break;
	}
	return src;
}

rag_rc rag_config_check(const rag_config *cfg, const char *section, const char *key,
			bool (*valid)(const char *value), const char *expected, rag_error *err)
{
	const cfg_item *it = find_item(section, key);
	const char *v;
	char from[512];

	if (!it || !IS_STRING(it->type) || it->type == T_SECRET)
		return rag_error_set(err, RAG_EINVAL, "%s.%s: not a checkable setting",
				     section, key);
	v = *(char *const *)((const char *)cfg + it->offset);
	if (valid(v ? v : ""))
		return RAG_OK;
	rag_config_origin_of(cfg, section, key, from, sizeof(from));
	return rag_error_set(err, RAG_ECONFIG, "%s: %s.%s: \"%s\" is not one of %s", from,
			     section, key, v ? v : "", expected);
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
