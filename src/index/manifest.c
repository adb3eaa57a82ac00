/*
 * manifest.c — JSON (jansson) for manifests and LATEST.
 */
#include "manifest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

const char *const mf_object_names[MF_NOBJ] = {"index", "chunks", "chunks_idx", "lists",
					      "lists_idx"};

void manifest_release(manifest *m)
{
	for (size_t i = 0; i < m->nsegments; i++)
		for (int k = 0; k < MF_NOBJ; k++)
			free(m->segments[i].obj[k].key);
	free(m->segments);
	free(m->tombstones);
	free(m->model.key);
	free(m->catalog.key);
	for (size_t i = 0; i < m->nfailed; i++) {
		free(m->failed[i].key);
		free(m->failed[i].error);
	}
	free(m->failed);
	memset(m, 0, sizeof(*m));
}

static json_t *object_json(const mf_object *o)
{
	return json_pack("{s:s, s:I}", "key", o->key ? o->key : "", "size", (json_int_t)o->size);
}

json_t *manifest_failed_json(const manifest *m)
{
	json_t *list = json_array();

	for (size_t i = 0; i < m->nfailed; i++)
		json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:I}", "key", m->failed[i].key,
						      "error", m->failed[i].error ? m->failed[i].error : "",
						      "attempts", m->failed[i].attempts,
						      "retry_at", (json_int_t)m->failed[i].retry_at));
	return json_pack("{s:I, s:o}", "total", (json_int_t)m->failed_total, "objects", list);
}

rag_rc manifest_to_json(const manifest *m, rag_buf *out, rag_error *err)
{
	json_t *root, *segs, *tombs;
	char *text;
	rag_rc rc;

	segs = json_array();
	for (size_t i = 0; i < m->nsegments; i++) {
		const mf_segment *s = &m->segments[i];
		json_t *objs = json_object();
		for (int k = 0; k < MF_NOBJ; k++)
			json_object_set_new(objs, mf_object_names[k], object_json(&s->obj[k]));
		json_array_append_new(segs, json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:o}",
						       "id", s->id, "kind", s->kind,
						       "count", (json_int_t)s->count,
						       "first_chunk", (json_int_t)s->first_chunk,
						       "last_chunk", (json_int_t)s->last_chunk,
						       "nlist", s->nlist, "nprobe", s->nprobe,
						       "objects", objs));
	}
	tombs = json_array();
	for (size_t i = 0; i < m->ntombstones; i++)
		json_array_append_new(tombs, json_pack("[I, I]", (json_int_t)m->tombstones[2 * i],
						       (json_int_t)m->tombstones[2 * i + 1]));
	root = json_pack("{s:i, s:s, s:I, s:I, s:{s:s, s:s, s:s, s:i}, s:o, s:o, s:o,"
			 " s:{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}}",
			 "format", 1, "index", m->index, "version", (json_int_t)m->version,
			 "created_at", (json_int_t)m->created_at,
			 "model", "name", m->model.name, "version", m->model.version,
			 "key", m->model.key ? m->model.key : "", "dims", m->model.dims,
			 "catalog", object_json(&m->catalog), "segments", segs,
			 "tombstones", tombs,
			 "stats", "documents", (json_int_t)m->documents,
			 "chunks", (json_int_t)m->chunks, "source_bytes", (json_int_t)m->source_bytes,
			 "run", "objects_read", (json_int_t)m->run.objects_read,
			 "bytes_read", (json_int_t)m->run.bytes_read,
			 "segments_written", (json_int_t)m->run.segments_written,
			 "get_requests", (json_int_t)m->run.get_requests,
			 "put_requests", (json_int_t)m->run.put_requests);
	if (!root)
		return rag_error_set(err, RAG_ENOMEM, "manifest: cannot build JSON");
	if (m->writer[0])
		json_object_set_new(root, "writer", json_string(m->writer));
	if (m->ids_high)
		json_object_set_new(root, "ids_high", json_integer((json_int_t)m->ids_high));
	if (m->failed_total)
		json_object_set_new(root, "failed", manifest_failed_json(m));
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return rag_error_set(err, RAG_ENOMEM, "manifest: cannot serialise JSON");
	rc = rag_buf_puts(out, text);
	free(text);
	return rc ? rag_error_set(err, rc, "manifest: too large") : RAG_OK;
}

static rag_rc get_int(json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *v,
		      const char *where, rag_error *err);

/* "failed": {"total": N, "objects": [{key, error, attempts, retry_at}]} */
static rag_rc failed_from_json(json_t *f, manifest *m, rag_error *err)
{
	json_t *list = json_object_get(f, "objects");
	int64_t attempts;
	char where[48];
	rag_rc rc;

	if ((rc = get_int(f, "total", 0, INT64_MAX, &m->failed_total, "failed", err)))
		return rc;
	if (!json_is_array(list) || json_array_size(list) > MF_FAILED_MAX ||
	    (int64_t)json_array_size(list) > m->failed_total)
		return rag_error_set(err, RAG_ECORRUPT, "manifest: failed.objects missing or too long");
	if (!(m->failed = calloc(json_array_size(list) + 1, sizeof(*m->failed))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *o = json_array_get(list, i), *k = json_object_get(o, "key"),
		       *e = json_object_get(o, "error");
		mf_failed *d = &m->failed[i];
		snprintf(where, sizeof(where), "failed.objects[%zu]", i);
		if (!json_is_string(k) || !json_is_string(e))
			return rag_error_set(err, RAG_ECORRUPT, "manifest: %s: key or error missing", where);
		if ((rc = get_int(o, "attempts", 0, INT32_MAX, &attempts, where, err)) ||
		    (rc = get_int(o, "retry_at", 0, INT64_MAX, &d->retry_at, where, err)))
			return rc;
		d->attempts = (int)attempts;
		d->key = rag_strdup(json_string_value(k));
		d->error = rag_strdup(json_string_value(e));
		m->nfailed = i + 1;
		if (!d->key || !d->error)
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	return RAG_OK;
}

/* Field readers that name what is wrong. */
static rag_rc get_int(json_t *o, const char *name, int64_t lo, int64_t hi, int64_t *v,
		      const char *where, rag_error *err)
{
	json_t *x = json_object_get(o, name);

	if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
		return rag_error_set(err, RAG_ECORRUPT, "manifest: %s.%s missing or out of range",
				     where, name);
	*v = json_integer_value(x);
	return RAG_OK;
}

static rag_rc get_str(json_t *o, const char *name, char *buf, size_t len, bool nonempty,
		      const char *where, rag_error *err)
{
	json_t *x = json_object_get(o, name);

	if (!json_is_string(x) || strlen(json_string_value(x)) >= len ||
	    (nonempty && !*json_string_value(x)))
		return rag_error_set(err, RAG_ECORRUPT, "manifest: %s.%s missing or invalid",
				     where, name);
	rag_strlcpy(buf, json_string_value(x), len);
	return RAG_OK;
}

static rag_rc get_object(json_t *o, mf_object *out, const char *where, rag_error *err)
{
	char key[1024];
	int64_t size;
	rag_rc rc;

	if (!json_is_object(o))
		return rag_error_set(err, RAG_ECORRUPT, "manifest: %s is not an object", where);
	if ((rc = get_str(o, "key", key, sizeof(key), true, where, err)) ||
	    (rc = get_int(o, "size", 0, INT64_MAX, &size, where, err)))
		return rc;
	if (!(out->key = rag_strdup(key)))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	out->size = (uint64_t)size;
	return RAG_OK;
}

static rag_rc parse_segment(json_t *js, mf_segment *s, size_t i, rag_error *err)
{
	char where[64];
	int64_t v;
	json_t *objs;
	rag_rc rc;

	snprintf(where, sizeof(where), "segments[%zu]", i);
	if (!json_is_object(js))
		return rag_error_set(err, RAG_ECORRUPT, "manifest: %s is not an object", where);
	if ((rc = get_str(js, "id", s->id, sizeof(s->id), true, where, err)) ||
	    (rc = get_str(js, "kind", s->kind, sizeof(s->kind), true, where, err)) ||
	    (rc = get_int(js, "count", 0, INT64_MAX, &s->count, where, err)) ||
	    (rc = get_int(js, "first_chunk", 0, INT64_MAX, &s->first_chunk, where, err)) ||
	    (rc = get_int(js, "last_chunk", 0, INT64_MAX, &s->last_chunk, where, err)))
		return rc;
	if (strcmp(s->kind, "flat") != 0 && strcmp(s->kind, "ivf") != 0)
		return rag_error_set(err, RAG_ECORRUPT, "manifest: %s.kind \"%s\" unknown", where,
				     s->kind);
	if ((rc = get_int(js, "nlist", 1, 1 << 24, &v, where, err)))
		return rc;
	s->nlist = (int)v;
	if ((rc = get_int(js, "nprobe", 1, 1 << 24, &v, where, err)))
		return rc;
	s->nprobe = (int)v;
	objs = json_object_get(js, "objects");
	for (int k = 0; k < MF_NOBJ; k++) {
		char w[128];
		snprintf(w, sizeof(w), "%s.objects.%s", where, mf_object_names[k]);
		if ((rc = get_object(json_object_get(objs, mf_object_names[k]), &s->obj[k], w, err)))
			return rc;
	}
	return RAG_OK;
}

rag_rc manifest_from_json(const char *text, size_t len, manifest *m, rag_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *x, *segs, *tombs;
	int64_t v;
	rag_rc rc;

	memset(m, 0, sizeof(*m));
	if (!root)
		return rag_error_set(err, RAG_ECORRUPT, "manifest: not JSON (line %d: %s)",
				     jerr.line, jerr.text);
	if (!json_is_object(root)) {
		rc = rag_error_set(err, RAG_ECORRUPT, "manifest: not a JSON object");
		goto out;
	}
	if ((rc = get_int(root, "format", 1, 1, &v, "manifest", err)) ||
	    (rc = get_int(root, "version", 1, INT64_MAX, &m->version, "manifest", err)) ||
	    (rc = get_str(root, "index", m->index, sizeof(m->index), true, "manifest", err)) ||
	    (rc = get_int(root, "created_at", 0, INT64_MAX, &m->created_at, "manifest", err)))
		goto out;
	/* the writer token (commit.h, invariant 5); manifests before it have none */
	if (json_object_get(root, "writer") &&
	    (rc = get_str(root, "writer", m->writer, sizeof(m->writer), true, "manifest", err)))
		goto out;
	if (json_object_get(root, "ids_high") &&
	    (rc = get_int(root, "ids_high", 0, INT64_MAX, &m->ids_high, "manifest", err)))
		goto out;
	x = json_object_get(root, "model");
	if ((rc = get_str(x, "name", m->model.name, sizeof(m->model.name), true, "model", err)) ||
	    (rc = get_str(x, "version", m->model.version, sizeof(m->model.version), true, "model", err)) ||
	    (rc = get_int(x, "dims", 1, 65536, &v, "model", err)))
		goto out;
	m->model.dims = (int)v;
	{
		char key[1024];
		if ((rc = get_str(x, "key", key, sizeof(key), true, "model", err)))
			goto out;
		if (!(m->model.key = rag_strdup(key))) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
	}
	if ((rc = get_object(json_object_get(root, "catalog"), &m->catalog, "catalog", err)))
		goto out;
	segs = json_object_get(root, "segments");
	if (!json_is_array(segs)) {
		rc = rag_error_set(err, RAG_ECORRUPT, "manifest: segments is not an array");
		goto out;
	}
	m->segments = calloc(json_array_size(segs) + 1, sizeof(*m->segments));
	if (!m->segments) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(segs); i++) {
		m->nsegments = i + 1;
		if ((rc = parse_segment(json_array_get(segs, i), &m->segments[i], i, err)))
			goto out;
	}
	tombs = json_object_get(root, "tombstones");
	if (!json_is_array(tombs)) {
		rc = rag_error_set(err, RAG_ECORRUPT, "manifest: tombstones is not an array");
		goto out;
	}
	m->tombstones = calloc(2 * json_array_size(tombs) + 2, sizeof(*m->tombstones));
	if (!m->tombstones) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(tombs); i++) {
		json_t *p = json_array_get(tombs, i);
		json_t *a = json_array_get(p, 0), *b = json_array_get(p, 1);
		if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(a) ||
		    !json_is_integer(b) || json_integer_value(a) > json_integer_value(b) ||
		    (i && json_integer_value(a) <= m->tombstones[2 * i - 1])) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "manifest: tombstones[%zu] is not an ordered [first, last] pair", i);
			goto out;
		}
		m->tombstones[2 * i] = json_integer_value(a);
		m->tombstones[2 * i + 1] = json_integer_value(b);
		m->ntombstones = i + 1;
	}
	x = json_object_get(root, "stats");
	if ((rc = get_int(x, "documents", 0, INT64_MAX, &m->documents, "stats", err)) ||
	    (rc = get_int(x, "chunks", 0, INT64_MAX, &m->chunks, "stats", err)))
		goto out;
	/* figures for people, added later: optional, but checked when there */
	if (json_object_get(x, "source_bytes") &&
	    (rc = get_int(x, "source_bytes", 0, INT64_MAX, &m->source_bytes, "stats", err)))
		goto out;
	if (json_object_get(x, "run")) {
		json_t *run = json_object_get(x, "run");
		if ((rc = get_int(run, "objects_read", 0, INT64_MAX, &m->run.objects_read,
				  "stats.run", err)) ||
		    (rc = get_int(run, "bytes_read", 0, INT64_MAX, &m->run.bytes_read, "stats.run",
				  err)) ||
		    (rc = get_int(run, "segments_written", 0, INT64_MAX, &m->run.segments_written,
				  "stats.run", err)))
			goto out;
		if ((json_object_get(run, "get_requests") &&
		     (rc = get_int(run, "get_requests", 0, INT64_MAX, &m->run.get_requests,
				   "stats.run", err))) ||
		    (json_object_get(run, "put_requests") &&
		     (rc = get_int(run, "put_requests", 0, INT64_MAX, &m->run.put_requests,
				   "stats.run", err))))
			goto out;
	}
	if (json_object_get(root, "failed") &&
	    (rc = failed_from_json(json_object_get(root, "failed"), m, err)))
		goto out;
out:
	json_decref(root);
	if (rc)
		manifest_release(m);
	return rc;
}

bool manifest_is_tombstoned(const manifest *m, int64_t id)
{
	size_t lo = 0, hi = m->ntombstones;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (id < m->tombstones[2 * mid])
			hi = mid;
		else if (id > m->tombstones[2 * mid + 1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static rag_rc fmt_key(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static rag_rc fmt_key(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? RAG_ETOOBIG : RAG_OK;
}

rag_rc mf_index_root(const char *prefix, const char *name, char *out, size_t len)
{
	size_t pl = strlen(prefix);

	return fmt_key(out, len, "%s%s%s/", prefix, pl && prefix[pl - 1] != '/' ? "/" : "", name);
}

rag_rc mf_manifest_key(const char *root, int64_t version, char *out, size_t len)
{
	return fmt_key(out, len, "%smanifests/%010lld.json", root, (long long)version);
}

rag_rc mf_latest_key(const char *root, char *out, size_t len)
{
	return fmt_key(out, len, "%sLATEST", root);
}

rag_rc mf_catalog_key(const char *root, int64_t version, const char *token, char *out,
		      size_t len)
{
	return fmt_key(out, len, "%scatalog/%010lld-%s.sqlite", root, (long long)version, token);
}

rag_rc mf_latest_to_json(int64_t version, const char *manifest_key, rag_buf *out)
{
	json_t *o = json_pack("{s:I, s:s}", "version", (json_int_t)version, "manifest", manifest_key);
	char *text = o ? json_dumps(o, JSON_SORT_KEYS) : NULL;
	rag_rc rc = text ? rag_buf_puts(out, text) : RAG_ENOMEM;

	free(text);
	json_decref(o);
	return rc;
}

rag_rc mf_latest_from_json(const char *text, size_t len, int64_t *version,
			   char *manifest_key, size_t keylen, rag_error *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, 0, &jerr);
	rag_rc rc;

	if (!o)
		return rag_error_set(err, RAG_ECORRUPT, "LATEST: not JSON (%s)", jerr.text);
	if (!(rc = get_int(o, "version", 1, INT64_MAX, version, "LATEST", err)))
		rc = get_str(o, "manifest", manifest_key, keylen, true, "LATEST", err);
	json_decref(o);
	return rc;
}

uint64_t manifest_stored_bytes(const manifest *m)
{
	uint64_t n = m->catalog.size;

	for (size_t s = 0; s < m->nsegments; s++)
		for (int k = 0; k < MF_NOBJ; k++)
			n += m->segments[s].obj[k].size;
	return n;
}
