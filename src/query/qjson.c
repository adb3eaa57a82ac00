#include "qjson.h"

#include <stdio.h>

static json_t *counter_json(const s3_counter *c)
{
	return json_pack("{s:I, s:I, s:f, s:I}", "requests", (json_int_t)c->requests, "bytes",
			 (json_int_t)(c->bytes_in + c->bytes_out), "ms", (double)c->ns / 1e6,
			 "retries", (json_int_t)c->retries);
}

json_t *qjson_trace(const s3_trace *t)
{
	s3_counter tot;
	json_t *o, *kinds = json_object();

	s3_trace_total(t, &tot);
	for (int k = 0; k < S3_KIND_COUNT; k++)
		if (t->kind[k].requests)
			json_object_set_new(kinds, s3_kind_name((s3_kind)k), counter_json(&t->kind[k]));
	o = counter_json(&tot);
	json_object_set_new(o, "by_kind", kinds);
	return o;
}

json_t *qjson_result(const qresult *r, const char *bucket, const char *query, int k)
{
	json_t *hits = json_array();

	for (int i = 0; i < r->n; i++) {
		const qhit *h = &r->hits[i];
		char uri[2048];
		snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, h->key);
		json_array_append_new(hits, json_pack("{s:i, s:f, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:s%}",
						      "rank", h->rank, "score", (double)h->score,
						      "key", h->key, "uri", uri, "chunk", h->ordinal,
						      "chunk_id", (json_int_t)h->chunk_id,
						      "offset", (json_int_t)h->off,
						      "length", (json_int_t)h->len,
						      "heading", h->heading, "text", h->text,
						      h->text_len));
	}
	return json_pack("{s:s, s:i, s:o, s:o, s:{s:f, s:f, s:f, s:f}, s:{s:I, s:I}, s:I, s:s,"
			 " s:s, s:s}",
			 "query", query, "k", k, "results", hits, "storage", qjson_trace(&r->trace),
			 "timing", "embed_ms", r->embed_ms, "search_ms", r->search_ms, "fetch_ms",
			 r->fetch_ms, "total_ms", r->total_ms,
			 "cache", "hits", (json_int_t)r->cache_hits, "misses", (json_int_t)r->cache_misses,
			 "index_version", (json_int_t)r->version, "model_version", r->model_version,
			 "mode", qmode_name(r->mode), "retriever", qretriever_name(r->retriever));
}

json_t *qjson_status(const qindex_status *st)
{
	return json_pack("{s:s, s:I, s:{s:s, s:s}, s:{s:I, s:I, s:I, s:I},"
			 " s:{s:I, s:I, s:I}, s:{s:f, s:o, s:I}}",
			 "mode", qmode_name(st->mode), "index_version", (json_int_t)st->version,
			 "model", "name", st->model_name, "version", st->model_version,
			 "counts", "documents", (json_int_t)st->documents, "chunks",
			 (json_int_t)st->chunks, "segments", (json_int_t)st->segments,
			 "tombstone_ranges", (json_int_t)st->tombstone_ranges,
			 "resident_bytes", "vectors", (json_int_t)st->vector_bytes, "text",
			 (json_int_t)st->text_bytes, "pointers", (json_int_t)st->pointer_bytes,
			 "load", "ms", st->load_ms, "storage", qjson_trace(&st->load_trace),
			 "loaded_at", (json_int_t)st->loaded_at);
}
