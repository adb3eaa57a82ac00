/*
 * map.c — see map.h.
 */
#include "map.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "manifest.h"
#include "qjson.h"
#include "rag_stage.h"
#include "rag_util.h"

/* What the manifest of one version says about ingestion. */
typedef struct qmap_ingest {
	int64_t version;         /* 0: nothing read yet */
	rag_error err;           /* err.rc != RAG_OK: the read failed */
	char manifest_key[1200];
	int64_t created_at, documents, chunks, tombstone_ranges, source_bytes;
	int64_t run_objects_read, run_bytes_read, run_segments_written;
	int64_t run_get_requests, run_put_requests;
	int64_t segments, flat_segments, ivf_segments, segment_objects;
	uint64_t segment_bytes, manifest_bytes, catalog_bytes;
	uint64_t bytes_by_object[MF_NOBJ];
	char model_key[1024];
} qmap_ingest;

struct qmap {
	s3_client *s3;
	const rag_config *cfg;
	pthread_mutex_t lock;    /* guards ing; held across the manifest read */
	qmap_ingest ing;
};

qmap *qmap_new(s3_client *s3, const rag_config *cfg)
{
	qmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->s3 = s3;
	m->cfg = cfg;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void qmap_free(qmap *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool per_query(const char *stage)
{
	return rag_stage_kind_of(stage) == RAG_STAGE_QUERY;
}

/* The table of modes (qmode.h), for the page's switch and labels. */
static json_t *modes_json(void)
{
	json_t *a = json_array();

	for (int m = 0; a && m < QMODE_COUNT; m++) {
		const qmode_row *r = qmode_info((qmode)m);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:b, s:b}", "name", r->name,
						   "holds", r->holds, "reads", r->reads, "lists",
						   r->dense_from_lists, "text", r->reads_records,
						   "text_cache", r->text_cache));
	}
	return a;
}

/* Read version's manifest into ing (the lock is held). */
static rag_rc read_manifest(qmap *m, int64_t version, qmap_ingest *ing, rag_error *err)
{
	char root[1024];
	commit_head head;
	manifest mf;
	rag_rc rc;

	memset(ing, 0, sizeof(*ing));
	ing->version = version;
	if (mf_index_root(m->cfg->index.prefix, m->cfg->index.name, root, sizeof(root)) ||
	    mf_manifest_key(root, version, ing->manifest_key, sizeof(ing->manifest_key)))
		return rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
	/* errors name the manifest's key */
	if ((rc = commit_read_version(m->s3, S3_OP("query.map", NULL), root, version, &head, &mf,
				      err)))
		return rc;
	ing->manifest_bytes = head.manifest_bytes;
	ing->created_at = mf.created_at;
	ing->documents = mf.documents;
	ing->chunks = mf.chunks;
	ing->source_bytes = mf.source_bytes;
	ing->run_objects_read = mf.run.objects_read;
	ing->run_bytes_read = mf.run.bytes_read;
	ing->run_segments_written = mf.run.segments_written;
	ing->run_get_requests = mf.run.get_requests;
	ing->run_put_requests = mf.run.put_requests;
	ing->tombstone_ranges = (int64_t)mf.ntombstones;
	ing->segments = (int64_t)mf.nsegments;
	ing->catalog_bytes = mf.catalog.size;
	rag_strlcpy(ing->model_key, mf.model.key ? mf.model.key : "", sizeof(ing->model_key));
	for (size_t i = 0; i < mf.nsegments; i++) {
		const mf_segment *s = &mf.segments[i];
		if (strcmp(s->kind, "ivf") == 0)
			ing->ivf_segments++;
		else
			ing->flat_segments++;
		for (int k = 0; k < MF_NOBJ; k++) {
			if (!s->obj[k].key)
				continue;
			ing->segment_objects++;
			ing->segment_bytes += s->obj[k].size;
			ing->bytes_by_object[k] += s->obj[k].size;
		}
	}
	manifest_release(&mf);
	return RAG_OK;
}

rag_rc qmap_prepare(qmap *m, int64_t version, rag_error *err)
{
	rag_rc rc = RAG_OK;

	pthread_mutex_lock(&m->lock);
	/* A failed read is retried on the next call; a good one is kept. */
	if (version > 0 && (m->ing.version != version || m->ing.err.rc)) {
		rc = read_manifest(m, version, &m->ing, &m->ing.err);
		if (rc && err)
			*err = m->ing.err;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* The API's counter, plus the failed requests the page shows. */
static json_t *counter_json(const s3_counter *c)
{
	json_t *o = qjson_counter(c);

	json_object_set_new(o, "errors", json_integer((json_int_t)c->errors));
	return o;
}

static json_t *ingest_json(const qmap_ingest *ing)
{
	json_t *by_obj;

	if (!ing->version)
		return json_pack("{s:s}", "error", "no index version loaded yet");
	if (ing->err.rc)
		return json_pack("{s:s, s:I}", "error", ing->err.msg, "version",
				 (json_int_t)ing->version);
	by_obj = json_object();
	for (int k = 0; k < MF_NOBJ; k++)
		json_object_set_new(by_obj, mf_object_names[k],
				    json_integer((json_int_t)ing->bytes_by_object[k]));
	return json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I,"
			 " s:I, s:I, s:o, s:I, s:I, s:s}",
			 "from", "manifest", "version", (json_int_t)ing->version, "manifest_key",
			 ing->manifest_key, "created_at", (json_int_t)ing->created_at,
			 "documents", (json_int_t)ing->documents,
			 "objects_read", (json_int_t)ing->documents,
			 "source_bytes", (json_int_t)ing->source_bytes,
			 "last_run", "objects_read", (json_int_t)ing->run_objects_read,
			 "bytes_read", (json_int_t)ing->run_bytes_read,
			 "segments_written", (json_int_t)ing->run_segments_written,
			 "chunks", (json_int_t)ing->chunks,
			 "tombstone_ranges", (json_int_t)ing->tombstone_ranges,
			 "segments", (json_int_t)ing->segments,
			 "flat_segments", (json_int_t)ing->flat_segments,
			 "ivf_segments", (json_int_t)ing->ivf_segments,
			 "segment_objects", (json_int_t)ing->segment_objects,
			 "segment_bytes_by_object", by_obj,
			 "segment_bytes", (json_int_t)ing->segment_bytes,
			 "catalog_bytes", (json_int_t)ing->catalog_bytes,
			 "model_key", ing->model_key);
}

/* The API's cache figures, plus evictions and the hit rate the page shows. */
static json_t *cache_json(const lru_stats *ls)
{
	uint64_t n = ls->hits + ls->misses;
	json_t *o = qjson_cache(ls);

	json_object_set_new(o, "evictions", json_integer((json_int_t)ls->evictions));
	json_object_set_new(o, "hit_rate", n ? json_real((double)ls->hits / (double)n) : json_null());
	return o;
}

/*
 * Dollars at the [cost] prices: per million queries in this mode (from the
 * query path's requests so far; null before the first query), the last
 * ingestion pass (from its manifest) and the version's storage per month.
 */
static json_t *cost_json(const rag_config *cfg, const qmap_ingest *ing,
			 const s3_counter path_kind[S3_KIND_COUNT], uint64_t ok)
{
	s3_prices p;
	json_t *o;
	uint64_t stored = ing->segment_bytes + ing->catalog_bytes + ing->manifest_bytes;

	s3_prices_from_config(cfg, &p);
	o = json_pack("{s:f, s:f, s:f}", "get_per_1000", p.get_per_1000, "put_per_1000",
		      p.put_per_1000, "storage_gb_month", p.storage_gb_month);
	json_object_set_new(o, "per_million_queries",
			    ok ? json_real(s3_cost_usd(path_kind, &p) / (double)ok * 1e6)
			       : json_null());
	if (ing->version && !ing->err.rc) {
		json_object_set_new(o, "last_ingest_pass",
				    json_real((double)ing->run_get_requests * p.get_per_1000 / 1000 +
					      (double)ing->run_put_requests * p.put_per_1000 / 1000));
		json_object_set_new(o, "storage_per_month",
				    json_real((double)stored / 1e9 * p.storage_gb_month));
		json_object_set_new(o, "stored_bytes", json_integer((json_int_t)stored));
	}
	return o;
}

json_t *qmap_json(qmap *m, const qmap_counts *c)
{
	const qindex_status *st = &c->status;
	json_t *j, *stages = json_array(), *per_stage = json_array(), *caches = json_object();
	s3_counter path = {0}, all, load;
	char root[1024];
	qmap_ingest ing;
	bool lists, text;
	uint64_t ok = c->queries_ok;
	size_t n = c->nstages < QMAP_MAX_STAGES ? c->nstages : QMAP_MAX_STAGES;

	pthread_mutex_lock(&m->lock);
	ing = m->ing;
	pthread_mutex_unlock(&m->lock);
	if (ing.version != st->version)
		memset(&ing, 0, sizeof(ing)); /* a reload raced us; shown as not read yet */
	lists = qmode_info(st->mode)->dense_from_lists;
	text = qmode_info(st->mode)->reads_records;
	s3_trace_total(&st->load_trace, &load);
	if (mf_index_root(m->cfg->index.prefix, m->cfg->index.name, root, sizeof(root)))
		root[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		json_t *kinds = json_object(), *o;
		memset(&all, 0, sizeof(all));
		for (int k = 0; k < S3_KIND_COUNT; k++) {
			if (!c->stages[i].kind[k].requests)
				continue;
			s3_counter_add(&all, &c->stages[i].kind[k]);
			json_object_set_new(kinds, s3_kind_name((s3_kind)k),
					    counter_json(&c->stages[i].kind[k]));
		}
		o = counter_json(&all);
		json_object_set_new(o, "stage", json_string(c->stages[i].stage));
		json_object_set_new(o, "per_query", json_boolean(per_query(c->stages[i].stage)));
		json_object_set_new(o, "kind",
				    json_string(rag_stage_kind_name(rag_stage_kind_of(c->stages[i].stage))));
		json_object_set_new(o, "by_kind", kinds);
		json_array_append_new(stages, o);
		if (per_query(c->stages[i].stage)) {
			s3_counter_add(&path, &all);
			json_array_append_new(per_stage, json_string(c->stages[i].stage));
		}
	}
	if (c->has_text_cache)
		json_object_set_new(caches, "text", cache_json(&c->text_cache));
	if (c->has_list_cache)
		json_object_set_new(caches, "lists", cache_json(&c->list_cache));
	j = json_pack("{s:s, s:I, s:{s:s, s:s}, s:{s:b, s:b}, s:{s:I, s:I, s:I, s:I},"
		      " s:{s:f, s:o, s:I}, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:f}, s:o}",
		      "mode", qmode_name(st->mode), "index_version", (json_int_t)st->version,
		      "model", "name", st->model_name, "version", st->model_version,
		      "touches", "lists", lists, "text", text,
		      "resident_bytes", "vectors", (json_int_t)st->vector_bytes, "text",
		      (json_int_t)st->text_bytes, "pointers", (json_int_t)st->pointer_bytes, "total",
		      (json_int_t)(st->vector_bytes + st->text_bytes + st->pointer_bytes),
		      "load", "ms", st->load_ms, "storage", counter_json(&load),
		      "loaded_at", (json_int_t)st->loaded_at,
		      "ingestion", ingest_json(&ing), "stages", stages,
		      "queries", "ok", (json_int_t)ok, "bad_request", (json_int_t)c->queries_bad,
		      "error", (json_int_t)c->queries_failed, "unauthorized",
		      (json_int_t)c->unauthorized, "latency_sum_s", c->latency_sum_s,
		      "caches", caches);
	if (!j) {
		json_decref(per_stage);
		return NULL;
	}
	json_object_set_new(j, "modes", modes_json());
	/* where things live, to label the store's prefixes with their real names */
	json_object_set_new(j, "store", json_pack("{s:s, s:s, s:s, s:s, s:s}", "bucket",
			    m->cfg->s3.bucket, "source", m->cfg->source.prefix, "models",
			    m->cfg->model.prefix, "index", root, "logs", m->cfg->query.log_prefix));
	{
		json_t *pq = counter_json(&path);
		json_object_set_new(pq, "stages", per_stage);
		json_object_set_new(pq, "queries", json_integer((json_int_t)ok));
		/* per query: null until a query was answered */
		json_object_set_new(pq, "requests_per_query",
				    ok ? json_real((double)path.requests / (double)ok) : json_null());
		json_object_set_new(pq, "bytes_per_query",
				    ok ? json_real((double)(path.bytes_in + path.bytes_out) / (double)ok)
				       : json_null());
		json_object_set_new(pq, "storage_ms_per_query",
				    ok ? json_real((double)path.ns / 1e6 / (double)ok) : json_null());
		json_object_set_new(pq, "latency_ms_per_query",
				    ok ? json_real(c->latency_sum_s * 1e3 / (double)ok) : json_null());
		/* cold: the answer read storage on the query path; warm: it did not */
		json_object_set_new(pq, "cold", json_pack("{s:I, s:o}", "queries",
				    (json_int_t)c->cold_n, "latency_ms", c->cold_n
				    ? json_real(c->cold_sum_s * 1e3 / (double)c->cold_n) : json_null()));
		json_object_set_new(pq, "warm", json_pack("{s:I, s:o}", "queries",
				    (json_int_t)c->warm_n, "latency_ms", c->warm_n
				    ? json_real(c->warm_sum_s * 1e3 / (double)c->warm_n) : json_null()));
		json_object_set_new(j, "query_path", pq);
	}
	json_object_set_new(j, "cost", qmap_cost(m, c));
	return j;
}

json_t *qmap_cost(qmap *m, const qmap_counts *c)
{
	s3_counter path_kind[S3_KIND_COUNT] = {{0}};
	size_t n = c->nstages < QMAP_MAX_STAGES ? c->nstages : QMAP_MAX_STAGES;
	qmap_ingest ing;

	pthread_mutex_lock(&m->lock);
	ing = m->ing;
	pthread_mutex_unlock(&m->lock);
	if (ing.version != c->status.version)
		memset(&ing, 0, sizeof(ing));
	for (size_t i = 0; i < n; i++)
		if (per_query(c->stages[i].stage))
			for (int k = 0; k < S3_KIND_COUNT; k++)
				s3_counter_add(&path_kind[k], &c->stages[i].kind[k]);
	return cost_json(m->cfg, &ing, path_kind, c->queries_ok);
}
