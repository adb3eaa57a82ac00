#include "qjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *qjson_counter(const s3_counter *c)
{
	return json_pack("{s:I, s:I, s:f, s:I}", "requests", (json_int_t)c->requests, "bytes",
			 (json_int_t)(c->bytes_in + c->bytes_out), "ms", (double)c->ns / 1e6,
			 "retries", (json_int_t)c->retries);
}

json_t *qjson_cache(const lru_stats *ls)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "bytes", (json_int_t)ls->bytes, "max_bytes",
			 (json_int_t)ls->max_bytes, "entries", (json_int_t)ls->entries, "hits",
			 (json_int_t)ls->hits, "misses", (json_int_t)ls->misses);
}

json_t *qjson_trace(const s3_trace *t)
{
	s3_counter tot;
	json_t *o, *kinds = json_object();

	s3_trace_total(t, &tot);
	for (int k = 0; k < S3_KIND_COUNT; k++)
		if (t->kind[k].requests)
			json_object_set_new(kinds, s3_kind_name((s3_kind)k), qjson_counter(&t->kind[k]));
	o = qjson_counter(&tot);
	json_object_set_new(o, "by_kind", kinds);
	/* "ms" adds the requests' times up; parallel ones overlap in wall time */
	if (t->max)
		json_object_set_new(o, "wall_ms", json_real((double)s3_trace_wall_ns(t) / 1e6));
	return o;
}

json_t *qjson_requests(const s3_trace *t, uint64_t t0)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < t->nreqs; i++) {
		const s3_req *q = &t->reqs[i];
		json_t *range = json_null();

		if (q->range && q->len)
			range = json_pack("[I, I]", (json_int_t)q->off, (json_int_t)(q->off + q->len - 1));
		else if (q->range)
			range = json_pack("[I, n]", (json_int_t)q->off);
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:o, s:I, s:i, s:i, s:f, s:f}", "op",
				     s3_kind_name(q->kind), "key", q->key, "range", range, "bytes",
				     (json_int_t)(q->bytes_in + q->bytes_out), "status", (int)q->status,
				     "attempts", (int)q->attempts, "start_ms",
				     q->start_ns >= t0 ? (double)(q->start_ns - t0) / 1e6 : 0.0, "ms",
				     (double)q->dur_ns / 1e6));
	}
	return a;
}

/*
 * One hit. Field by field, so that a value JSON cannot hold (text that is
 * not UTF-8) is named in the error instead of silently dropping the hit:
 * an answer with a hit missing would look complete.
 */
/*
 * A hit's citation string: "key#page=N" for a PDF chunk (N its first page),
 * "key#bytes=S-E" for a chunk with a source range (bytes [S, E) of the
 * object, E exclusive), else just the key (chunks indexed before citations).
 */
static json_t *cite_json(const qhit *h)
{
	const char *key = h->key ? h->key : "";
	size_t cap = strlen(key) + 64; /* room for "#bytes=" and two 20-digit numbers */
	char *s;
	json_t *v;

	if (h->page <= 0 && h->src_end == 0)
		return json_string(key);
	if (!(s = malloc(cap)))
		return NULL;
	if (h->page > 0)
		snprintf(s, cap, "%s#page=%d", key, h->page);
	else
		snprintf(s, cap, "%s#bytes=%llu-%llu", key, (unsigned long long)h->src_off,
			 (unsigned long long)h->src_end);
	v = json_string(s);
	free(s);
	return v;
}

static json_t *hit_json(const qhit *h, const char *bucket, rag_error *err)
{
	char uri[2048];
	json_t *o = json_object();
	struct {
		const char *name;
		json_t *v;
	} f[] = {
		{"rank", json_integer(h->rank)},
		{"score", json_real((double)h->score)},
		{"key", json_string(h->key)},
		{"uri", NULL},
		{"chunk", json_integer(h->ordinal)},
		{"chunk_id", json_integer((json_int_t)h->chunk_id)},
		{"offset", json_integer((json_int_t)h->off)},
		{"length", json_integer((json_int_t)h->len)},
		{"heading", json_string(h->heading)},
		{"cite", cite_json(h)},
		{"page", h->page > 0 ? json_integer(h->page) : json_null()},
		{"page_end", h->page > 0 ? json_integer(h->page_end) : json_null()},
		{"source_bytes", h->src_end > 0 ? json_pack("[I, I]", (json_int_t)h->src_off,
							     (json_int_t)h->src_end)
						: json_null()},
		{"text", json_stringn(h->text, h->text_len)},
	};
	const char *bad = o ? NULL : "object";

	snprintf(uri, sizeof(uri), "s3://%s/%s", bucket, h->key ? h->key : "");
	f[3].v = json_string(uri);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (!bad && (!f[i].v || json_object_set_new(o, f[i].name, f[i].v) != 0))
			bad = f[i].name;
		else if (bad)
			json_decref(f[i].v);
	}
	if (!bad)
		return o;
	json_decref(o);
	rag_error_set(err, RAG_ECORRUPT, "hit %d (\"%s\" chunk %d): its %s cannot be encoded as JSON "
		      "(not UTF-8, or out of memory)", h->rank, h->key ? h->key : "?", h->ordinal, bad);
	return NULL;
}

/* One retriever's part in a hit: {"rank", "score"}, or null when it did not find it. */
static json_t *part_json(int rank, float score)
{
	return rank ? json_pack("{s:i, s:f}", "rank", rank, "score", (double)score) : json_null();
}

/*
 * "explain": where the hit stood in the dense and bm25 candidate lists and
 * their scores; for hybrid, the fused score and the fusion method.
 */
static json_t *explain_json(const qresult *r, const qhit *h)
{
	json_t *o = json_object();

	if (r->retriever != QRET_BM25)
		json_object_set_new(o, "dense", part_json(h->dense_rank, h->dense_score));
	if (r->retriever != QRET_DENSE)
		json_object_set_new(o, "bm25", part_json(h->bm25_rank, h->bm25_score));
	if (r->retriever == QRET_HYBRID)
		json_object_set_new(o, "fused", json_pack("{s:f, s:s}", "score", (double)h->score,
							  "method", r->fusion));
	return o;
}

json_t *qjson_result(const qresult *r, const char *bucket, const char *query, int k,
		     rag_error *err)
{
	json_t *hits = json_array(), *out;

	if (!hits) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		return NULL;
	}
	for (int i = 0; i < r->n; i++) {
		json_t *h = hit_json(&r->hits[i], bucket, err);
		if (h && r->explain)
			json_object_set_new(h, "explain", explain_json(r, &r->hits[i]));
		if (!h || json_array_append_new(hits, h) != 0) {
			if (h)
				rag_error_set(err, RAG_ENOMEM, "out of memory");
			json_decref(hits);
			return NULL;
		}
	}
	out = json_pack("{s:s, s:i, s:o, s:o, s:{s:f, s:f, s:f, s:f}, s:{s:I, s:I}, s:I, s:s,"
			" s:s, s:s}",
			"query", query, "k", k, "results", hits, "storage", qjson_trace(&r->trace),
			"timing", "embed_ms", r->embed_ms, "search_ms", r->search_ms, "fetch_ms",
			r->fetch_ms, "total_ms", r->total_ms,
			"cache", "hits", (json_int_t)r->cache_hits, "misses", (json_int_t)r->cache_misses,
			"index_version", (json_int_t)r->version, "model_version", r->model_version,
			"mode", qmode_name(r->mode), "retriever", qretriever_name(r->retriever));
	if (!out) {
		rag_error_set(err, RAG_ENOMEM, "the answer cannot be encoded as JSON");
		return NULL;
	}
	json_object_set_new(out, "cost_usd", json_real(r->cost_usd));
	if (r->full_trace) {
		json_t *st = json_object_get(out, "storage");
		json_object_set_new(st, "request_log", qjson_requests(&r->trace, r->start_ns));
		if (r->trace.dropped)
			json_object_set_new(st, "request_log_dropped",
					    json_integer((json_int_t)r->trace.dropped));
	}
	return out;
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
