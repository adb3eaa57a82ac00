/*
 * ingest_commit.c — recovery, version commits, compaction, refit and GC.
 *
 * Commit order for version V (manifest.h, invariant 2):
 *   model (if new) → segment objects → local catalog (V pending) →
 *   catalog snapshot → manifest V → LATEST → local catalog (V published).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest_int.h"
#include "rag_util.h"
#include "segment.h"

#define SMALL_OBJECT_MAX (64u << 20)   /* manifests, LATEST */
#define MODEL_MAX ((size_t)2 << 30)

/* ------------------------------------------------------------- helpers */

static rag_rc mkdirs(const char *path, rag_error *err)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return rag_error_set(err, RAG_EINVAL, "path too long: \"%s\"", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return rag_error_set(err, RAG_EIO, "cannot create \"%s\": %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return rag_error_set(err, RAG_EIO, "cannot create \"%s\": %s", buf, strerror(errno));
	return RAG_OK;
}

static void mf_segment_free(mf_segment *s)
{
	for (int k = 0; k < MF_NOBJ; k++) {
		free(s->obj[k].key);
		s->obj[k].key = NULL;
	}
}

static rag_rc mf_segment_copy(mf_segment *dst, const mf_segment *src)
{
	*dst = *src;
	for (int k = 0; k < MF_NOBJ; k++)
		dst->obj[k].key = NULL;
	for (int k = 0; k < MF_NOBJ; k++)
		if (!(dst->obj[k].key = rag_strdup(src->obj[k].key))) {
			mf_segment_free(dst);
			return RAG_ENOMEM;
		}
	return RAG_OK;
}

/* Segments a version may name: the previous manifest's plus new ones. */
typedef struct seg_set {
	mf_segment *a;
	size_t n, cap;
} seg_set;

static rag_rc seg_set_add(seg_set *s, const mf_segment *seg)
{
	mf_segment *p = rag_grow(s->a, &s->cap, s->n + 1, sizeof(*p));

	if (!p)
		return RAG_ENOMEM;
	s->a = p;
	if (mf_segment_copy(&s->a[s->n], seg))
		return RAG_ENOMEM;
	s->n++;
	return RAG_OK;
}

static void seg_set_release(seg_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		mf_segment_free(&s->a[i]);
	free(s->a);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------- recovery */

/* LATEST and its manifest; version 0 and an empty manifest when absent. */
static rag_rc read_latest(ingest_ctx *ic, const char *stage, manifest *m, rag_error *err)
{
	char key[1200], mkey[1200];
	int64_t version;
	rag_buf b;
	rag_rc rc;

	memset(m, 0, sizeof(*m));
	rag_buf_init(&b, SMALL_OBJECT_MAX);
	mf_latest_key(ic->root, key, sizeof(key));
	rc = s3_get(ic->s3, S3_OP(stage, NULL), key, &b, NULL, err);
	if (rc == RAG_ENOTFOUND) {
		rag_error_clear(err);
		rc = RAG_OK;
		goto out;
	}
	if (rc || (rc = mf_latest_from_json(b.data, b.len, &version, mkey, sizeof(mkey), err)))
		goto out;
	rag_buf_reset(&b);
	if ((rc = s3_get(ic->s3, S3_OP(stage, NULL), mkey, &b, NULL, err)) ||
	    (rc = manifest_from_json(b.data, b.len, m, err)))
		goto out;
	if (m->version != version)
		rc = rag_error_set(err, RAG_ECORRUPT, "LATEST names version %lld but \"%s\" is %lld",
				   (long long)version, mkey, (long long)m->version);
out:
	rag_buf_release(&b);
	return rc;
}

static rag_rc load_model(ingest_ctx *ic, const char *key, rag_error *err)
{
	rag_buf b;
	rag_rc rc;

	rag_buf_init(&b, MODEL_MAX);
	rc = s3_get(ic->s3, S3_OP("ingest.model", NULL), key, &b, NULL, err);
	if (!rc)
		rc = embed_model_load(b.data, b.len, &ic->model, err);
	if (rc)
		rag_error_prefix(err, "model \"%s\"", key);
	else
		rag_strlcpy(ic->model_key, key, sizeof(ic->model_key));
	rag_buf_release(&b);
	return rc;
}

static void remove_db_files(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* Replace the local catalog with the snapshot of the latest version. */
static rag_rc restore_catalog(ingest_ctx *ic, rag_error *err)
{
	char tmp[4200];
	rag_rc rc;

	snprintf(tmp, sizeof(tmp), "%s.restore", ic->cat_path);
	RAG_INFO(ic->log, "restoring the catalog from \"%s\" (version %lld)", ic->latest.catalog.key,
		 (long long)ic->latest.version);
	if ((rc = s3_get_file(ic->s3, S3_OP("ingest.recover", NULL), ic->latest.catalog.key, tmp,
			      NULL, err)))
		return rc;
	catalog_close(ic->cat);
	ic->cat = NULL;
	remove_db_files(ic->cat_path);
	if (rename(tmp, ic->cat_path) != 0)
		return rag_error_set(err, RAG_EIO, "cannot rename \"%s\": %s", tmp, strerror(errno));
	if ((rc = catalog_open(ic->cat_path, &ic->cat, err)))
		return rc;
	return catalog_version_publish(ic->cat, ic->latest.version, err);
}

static rag_rc reset_catalog(ingest_ctx *ic, rag_error *err)
{
	RAG_INFO(ic->log, "no LATEST in the store: starting from an empty catalog");
	catalog_close(ic->cat);
	ic->cat = NULL;
	remove_db_files(ic->cat_path);
	return catalog_open(ic->cat_path, &ic->cat, err);
}

rag_rc ingest_open(ingest_ctx *ic, const rag_config *cfg, s3_client *s3, rag_log *log,
		   rag_error *err)
{
	char dir[4096];
	int64_t published, pending;
	rag_rc rc;

	memset(ic, 0, sizeof(*ic));
	ic->cfg = cfg;
	ic->s3 = s3;
	ic->log = log;
	if (mf_index_root(cfg->index.prefix, cfg->index.name, ic->root, sizeof(ic->root)) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s/%s", cfg->local.dir, cfg->index.name) >= sizeof(dir))
		return rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
	if ((size_t)snprintf(ic->cat_path, sizeof(ic->cat_path), "%.4000s/catalog.sqlite", dir) >=
	    sizeof(ic->cat_path))
		return rag_error_set(err, RAG_ECONFIG, "local.dir too long");
	if ((rc = mkdirs(dir, err)) || (rc = read_latest(ic, "ingest.recover", &ic->latest, err)) ||
	    (rc = catalog_open(ic->cat_path, &ic->cat, err)) ||
	    (rc = catalog_versions(ic->cat, &published, &pending, err)))
		goto fail;
	/* invariant 1: the local catalog equals LATEST's snapshot plus nothing */
	if (ic->latest.version == 0) {
		if ((published || pending) && (rc = reset_catalog(ic, err)))
			goto fail;
	} else if (pending == ic->latest.version && published < pending) {
		/* died after LATEST moved, before the local mark: the work is in */
		if ((rc = catalog_version_publish(ic->cat, pending, err)))
			goto fail;
	} else if (published != ic->latest.version || pending) {
		if ((rc = restore_catalog(ic, err)))
			goto fail;
	}
	if (ic->latest.version && (rc = load_model(ic, ic->latest.model.key, err)))
		goto fail;
	return RAG_OK;
fail:
	ingest_close(ic);
	return rc;
}

void ingest_close(ingest_ctx *ic)
{
	catalog_close(ic->cat);
	embed_model_free(ic->model);
	manifest_release(&ic->latest);
	ic->cat = NULL;
	ic->model = NULL;
}

/* ---------------------------------------------------------------- model */

static rag_rc publish_model(ingest_ctx *ic, embed_model *m, rag_error *err)
{
	rag_buf weights, card;
	char key[1200], base[1100];
	rag_rc rc;

	rag_buf_init(&weights, MODEL_MAX);
	rag_buf_init(&card, 1u << 20);
	snprintf(base, sizeof(base), "%s%s%s/%s/", ic->cfg->model.prefix,
		 ic->cfg->model.prefix[0] && ic->cfg->model.prefix[strlen(ic->cfg->model.prefix) - 1] != '/'
			 ? "/" : "",
		 embed_model_name(m), embed_model_version(m));
	if ((rc = embed_model_save(m, &weights, &card, err)))
		goto out;
	snprintf(key, sizeof(key), "%scard.json", base);
	if ((rc = s3_put(ic->s3, S3_OP("ingest.model", NULL), key, card.data, card.len,
			 "application/json", NULL, err)))
		goto out;
	snprintf(key, sizeof(key), "%sweights.bin", base);
	if ((rc = s3_put(ic->s3, S3_OP("ingest.model", NULL), key, weights.data, weights.len,
			 "application/octet-stream", NULL, err)))
		goto out;
	embed_model_free(ic->model);
	ic->model = m;
	rag_strlcpy(ic->model_key, key, sizeof(ic->model_key));
	RAG_INFO(ic->log, "model %s version %s (%d dims, %zu terms) at \"%s\"", embed_model_name(m),
		 embed_model_version(m), embed_dims(m), embed_model_vocab_size(m), key);
out:
	rag_buf_release(&weights);
	rag_buf_release(&card);
	return rc;
}

/*
 * Most chunks a model is fitted on; a larger corpus is sampled evenly (every
 * stride-th chunk, deterministic). The fit is a single-threaded randomized
 * SVD whose cost grows with its rows, and a sample this size finds the same
 * vocabulary and subspace: on the 20k-document bench corpus (112k chunks)
 * fitting took 36 s of CPU on all of them, 4.4 s on a fifth, with 10626 of
 * the 10814 terms. The refit threshold counts the whole population (meta
 * "model.fit_chunks"), not the sample.
 */
#define FIT_SAMPLE_MAX 25000
#define META_FIT_CHUNKS "model.fit_chunks"

static rag_rc fit_model(ingest_ctx *ic, const char *const *texts, const size_t *lens, size_t n,
			const char *fitted_on, rag_error *err)
{
	embed_fit_opts o = EMBED_FIT_OPTS_DEFAULT;
	embed_model *m = NULL;
	const char **st = NULL;
	size_t *sl = NULL, stride = (n + FIT_SAMPLE_MAX - 1) / FIT_SAMPLE_MAX, ns = 0;
	char on[512];
	rag_rc rc;

	if (stride > 1) {
		if (!(st = malloc((n / stride + 1) * sizeof(*st))) ||
		    !(sl = malloc((n / stride + 1) * sizeof(*sl)))) {
			free(st);
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < n; i += stride, ns++) {
			st[ns] = texts[i];
			sl[ns] = lens[i];
		}
		snprintf(on, sizeof(on), "%s; sampled 1 in %zu: %zu chunks", fitted_on, stride, ns);
		texts = st;
		lens = sl;
		n = ns;
		fitted_on = on;
	}
	o.dims = (int)ic->cfg->model.dims;
	/* on a tiny corpus most terms occur once: requiring two documents would
	 * leave the model almost no vocabulary */
	if (n < 500)
		o.min_df = 1;
	o.name = ic->cfg->model.name;
	o.fitted_on = fitted_on;
	if ((rc = embed_fit(texts, lens, n, &o, &m, err)))
		goto out;
	if ((rc = publish_model(ic, m, err)))
		embed_model_free(m);
out:
	free(st);
	free(sl);
	return rc;
}

/* Record, inside the version's transaction, how many chunks the model was fitted from. */
static rag_rc note_fit_chunks(ingest_ctx *ic, size_t n, rag_error *err)
{
	char v[32];

	snprintf(v, sizeof(v), "%zu", n);
	return catalog_meta_set(ic->cat, META_FIT_CHUNKS, v, err);
}

/* -------------------------------------------------------------- segments */

/* Build and upload one segment over chunks [0, n) with vectors vecs. */
static rag_rc write_segment(ingest_ctx *ic, const char *id, const seg_chunk *chunks,
			    const float *vecs, size_t n, seg_build *b, mf_segment *mf,
			    ingest_summary *sum, rag_error *err)
{
	vindex_build_opts vo = {.ivf_threshold = ic->cfg->index.ivf_threshold};
	uint64_t t = rag_now_ns();
	rag_rc rc;

	rc = segment_build(embed_dims(ic->model), chunks, vecs, n, &vo, b, err);
	sum->ms[ING_INDEX] += rag_ms_since(t);
	if (rc)
		return rc;
	t = rag_now_ns();
	rc = segment_upload(ic->s3, S3_OP("ingest.segment", NULL), ic->root, id, b, mf, err);
	sum->ms[ING_UPLOAD] += rag_ms_since(t);
	if (!rc)
		sum->segments_written++;
	return rc;
}

static rag_rc insert_segment_row(ingest_ctx *ic, const mf_segment *mf, int64_t version,
				 rag_error *err)
{
	cat_segment s = {0};

	rag_strlcpy(s.id, mf->id, sizeof(s.id));
	s.version = version;
	s.nchunks = mf->count;
	s.first_chunk = mf->first_chunk;
	s.last_chunk = mf->last_chunk;
	rag_strlcpy(s.kind, mf->kind, sizeof(s.kind));
	for (int k = 0; k < MF_NOBJ; k++)
		s.bytes += mf->obj[k].size;
	rag_strlcpy(s.model_version, embed_model_version(ic->model), sizeof(s.model_version));
	return catalog_segment_insert(ic->cat, &s, err);
}

/* ------------------------------------------------------------- publish */

static rag_rc publish(ingest_ctx *ic, int64_t version, seg_set *known, ingest_summary *sum,
		      rag_error *err)
{
	manifest m = {0};
	cat_segment *live = NULL;
	size_t nlive = 0;
	catalog_stats st;
	char snap[4200], key[1200], mkey[1200];
	rag_buf body;
	uint64_t t = rag_now_ns();
	struct stat sb;
	rag_rc rc;

	rag_buf_init(&body, SMALL_OBJECT_MAX);
	snprintf(snap, sizeof(snap), "%s.snapshot", ic->cat_path);
	mf_catalog_key(ic->root, version, key, sizeof(key));
	if ((rc = catalog_snapshot(ic->cat, snap, err)) ||
	    (rc = s3_put_file(ic->s3, S3_OP("ingest.commit", NULL), snap, key, NULL, err)))
		goto out;
	stat(snap, &sb);
	unlink(snap);

	m.version = version;
	rag_strlcpy(m.index, ic->cfg->index.name, sizeof(m.index));
	m.created_at = rag_wall_time();
	rag_strlcpy(m.model.name, embed_model_name(ic->model), sizeof(m.model.name));
	rag_strlcpy(m.model.version, embed_model_version(ic->model), sizeof(m.model.version));
	m.model.dims = embed_dims(ic->model);
	m.model.key = rag_strdup(ic->model_key);
	m.catalog.key = rag_strdup(key);
	m.catalog.size = (uint64_t)sb.st_size;
	if ((rc = catalog_segments_live(ic->cat, &live, &nlive, err)) ||
	    (rc = catalog_tombstone_ranges(ic->cat, &m.tombstones, &m.ntombstones, err)) ||
	    (rc = catalog_stats_get(ic->cat, &st, err)))
		goto out;
	m.documents = st.documents;
	m.chunks = st.chunks;
	m.source_bytes = st.source_bytes;
	m.run.objects_read = sum->fetched;
	m.run.bytes_read = (int64_t)sum->bytes_read;
	m.run.segments_written = sum->segments_written; /* compaction's output included */
	if (!(m.segments = calloc(nlive + 1, sizeof(*m.segments)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	/* the live segments, in chunk order, described as they were uploaded */
	for (size_t i = 0; i < nlive; i++) {
		const mf_segment *found = NULL;
		for (size_t j = 0; j < known->n && !found; j++)
			if (strcmp(known->a[j].id, live[i].id) == 0)
				found = &known->a[j];
		if (!found) {
			rc = rag_error_set(err, RAG_EINTERNAL,
					   "segment \"%s\" is live in the catalog but in no manifest",
					   live[i].id);
			goto out;
		}
		if (mf_segment_copy(&m.segments[m.nsegments], found)) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		m.nsegments++;
	}
	/* manifest, then LATEST: from here on readers see version V */
	mf_manifest_key(ic->root, version, mkey, sizeof(mkey));
	if ((rc = manifest_to_json(&m, &body, err)) ||
	    (rc = s3_put(ic->s3, S3_OP("ingest.commit", NULL), mkey, body.data, body.len,
			 "application/json", NULL, err)))
		goto out;
	rag_buf_reset(&body);
	mf_latest_key(ic->root, key, sizeof(key));
	if ((rc = mf_latest_to_json(version, mkey, &body)) ||
	    (rc = s3_put(ic->s3, S3_OP("ingest.commit", NULL), key, body.data, body.len,
			 "application/json", NULL, err)))
		goto out;
	if ((rc = catalog_version_publish(ic->cat, version, err)))
		goto out;
	manifest_release(&ic->latest);
	ic->latest = m;
	memset(&m, 0, sizeof(m));
	sum->version = version;
	RAG_INFO(ic->log, "committed version %lld: %lld documents, %lld chunks, %zu segments",
		 (long long)version, (long long)st.documents, (long long)st.chunks, nlive);
out:
	sum->ms[ING_COMMIT] += rag_ms_since(t);
	free(live);
	manifest_release(&m);
	rag_buf_release(&body);
	return rc;
}

/* ----------------------------------------------------------- rebuilding */

/* Chunks read back from the catalog to rebuild segments (compaction, refit). */
typedef struct rows {
	seg_chunk *a;
	size_t n, cap;
	const char **texts;
	size_t *lens;
} rows;

static rag_rc rows_add(void *ctx, const cat_chunk_row *row)
{
	rows *r = ctx;
	seg_chunk *c = rag_grow(r->a, &r->cap, r->n + 1, sizeof(*c));

	if (!c)
		return RAG_ENOMEM;
	r->a = c;
	c = &r->a[r->n];
	c->id = row->id;
	c->ordinal = row->ordinal;
	c->off = row->off;
	c->len = row->len;
	c->key = rag_strdup(row->key);
	c->heading = rag_strdup(row->heading);
	c->text = rag_strndup(row->text, row->text_len);
	c->text_len = row->text_len;
	if (!c->key || !c->heading || !c->text) {
		free((char *)c->key);
		free((char *)c->heading);
		free((char *)c->text);
		return RAG_ENOMEM;
	}
	r->n++;
	return RAG_OK;
}

static void rows_release(rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->a[i].key);
		free((char *)r->a[i].heading);
		free((char *)r->a[i].text);
	}
	free(r->a);
	free(r->texts);
	free(r->lens);
	memset(r, 0, sizeof(*r));
}

static rag_rc rows_texts(rows *r, rag_error *err)
{
	r->texts = malloc((r->n + 1) * sizeof(*r->texts));
	r->lens = malloc((r->n + 1) * sizeof(*r->lens));
	if (!r->texts || !r->lens)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < r->n; i++) {
		r->texts[i] = r->a[i].text;
		r->lens[i] = r->a[i].text_len;
	}
	return RAG_OK;
}

/* Where the next segment ends: at a document boundary within the budget. */
static size_t segment_end(const seg_chunk *c, size_t from, size_t n, size_t budget)
{
	size_t end = from, last_doc_start = from;

	while (end < n) {
		if (end > from && c[end].ordinal == 0) {
			last_doc_start = end;
			if (end - from >= budget)
				break;
		}
		end++;
	}
	/* a single document larger than the budget stays whole */
	return end < n && last_doc_start > from ? last_doc_start : end;
}

/*
 * Rebuild the given chunks (ids ascending, documents contiguous) into new
 * segments "<tag>-NN" of version V, move them in the catalog (inside the
 * caller's transaction) and add the segments to known.
 */
static rag_rc rebuild(ingest_ctx *ic, int64_t version, const char *tag, rows *r,
		      seg_set *known, ingest_summary *sum, rag_error *err)
{
	float *vecs = NULL;
	int dims = embed_dims(ic->model);
	size_t from = 0;
	int nseg = 0;
	uint64_t t;
	rag_rc rc;

	if (r->n == 0)
		return RAG_OK;
	if ((rc = rows_texts(r, err)))
		return rc;
	if (!(vecs = malloc(r->n * (size_t)dims * sizeof(float))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	t = rag_now_ns();
	rc = embed_texts(ic->model, r->texts, r->lens, r->n, vecs, err);
	sum->ms[ING_EMBED] += rag_ms_since(t);
	while (!rc && from < r->n) {
		size_t end = segment_end(r->a, from, r->n, (size_t)ic->cfg->index.segment_chunks);
		char id[64];
		seg_build b;
		mf_segment mf;

		snprintf(id, sizeof(id), "v%010lld-%s%02d", (long long)version, tag, nseg++);
		if ((rc = write_segment(ic, id, r->a + from, vecs + from * (size_t)dims, end - from,
					&b, &mf, sum, err)))
			break;
		for (size_t i = from; i < end && !rc; i++)
			rc = catalog_chunk_move(ic->cat, r->a[i].id, id, b.rec_off[i - from],
						b.rec_len[i - from], err);
		if (!rc)
			rc = insert_segment_row(ic, &mf, version, err);
		if (!rc && seg_set_add(known, &mf))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		seg_build_release(&b);
		mf_segment_free(&mf);
		from = end;
	}
	free(vecs);
	return rc;
}

/* Retire old segments after their live chunks moved. */
static rag_rc retire(ingest_ctx *ic, const cat_segment *old, size_t n, rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < n && !rc; i++) {
		rc = catalog_docs_follow(ic->cat, old[i].id, err);
		if (!rc)
			rc = catalog_segment_drop(ic->cat, old[i].id, err);
	}
	return rc;
}

static int by_size(const void *a, const void *b)
{
	const cat_segment *x = a, *y = b;

	if (x->nchunks != y->nchunks)
		return x->nchunks < y->nchunks ? -1 : 1;
	return strcmp(x->id, y->id);
}

/*
 * Compaction: merge the smallest segments while there are more than
 * index.max_segments, and rewrite segments whose tombstoned share is above
 * a third (purging those chunks). Runs inside the catalog transaction of
 * version V.
 */
static rag_rc compact(ingest_ctx *ic, int64_t version, seg_set *known, ingest_summary *sum,
		      rag_error *err)
{
	cat_segment *live = NULL, *pick = NULL;
	size_t nlive = 0, npick = 0;
	rows r = {0};
	rag_rc rc;

	if ((rc = catalog_segments_live(ic->cat, &live, &nlive, err)))
		return rc;
	if (!(pick = calloc(nlive + 1, sizeof(*pick)))) {
		free(live);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	qsort(live, nlive, sizeof(*live), by_size);
	for (size_t i = 0; i < nlive; i++) {
		int64_t dead = catalog_segment_dead_chunks(ic->cat, live[i].id);
		bool too_many = nlive - npick + (npick ? 1 : 0) > (size_t)ic->cfg->index.max_segments;
		if (too_many || dead * 3 > live[i].nchunks)
			pick[npick++] = live[i];
	}
	if (npick == 1 && catalog_segment_dead_chunks(ic->cat, pick[0].id) == 0)
		npick = 0; /* merging one clean segment into itself gains nothing */
	if (npick == 0)
		goto out;
	RAG_INFO(ic->log, "compacting %zu of %zu segments", npick, nlive);
	qsort(pick, npick, sizeof(*pick), by_size);
	for (size_t i = 0; i < npick && !rc; i++)
		rc = catalog_each_chunk_row(ic->cat, pick[i].id, rows_add, &r, err);
	if (rc)
		goto out;
	/* back in id order: documents stay contiguous */
	for (size_t i = 1; i < r.n; i++) {
		seg_chunk x = r.a[i];
		size_t j = i;
		while (j > 0 && r.a[j - 1].id > x.id) {
			r.a[j] = r.a[j - 1];
			j--;
		}
		r.a[j] = x;
	}
	if ((rc = rebuild(ic, version, "c", &r, known, sum, err)) ||
	    (rc = retire(ic, pick, npick, err)))
		goto out;
	sum->segments_compacted += (int64_t)npick;
out:
	rows_release(&r);
	free(pick);
	free(live);
	return rc;
}

/* --------------------------------------------------------------- commit */

static rag_rc save_outcomes(ingest_ctx *ic, ingest_run_state *r, rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < r->ntomb && !rc; i++)
		rc = catalog_doc_tombstone(ic->cat, r->tombstone_docs[i], err);
	for (size_t i = 0; i < r->noutcomes && !rc; i++)
		rc = catalog_object_save(ic->cat, &r->outcomes[i], err);
	return rc;
}

/* Insert the run's documents and chunks for segment id, docs [d0, d1). */
static rag_rc insert_docs(ingest_ctx *ic, ingest_run_state *r, size_t d0, size_t d1,
			  const char *seg, const seg_build *b, size_t chunk0, int64_t id0,
			  rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (size_t d = d0; d < d1 && !rc; d++) {
		run_doc *doc = &r->docs[d];
		cat_doc cd = {.key = doc->key, .etag = doc->etag, .type = doc->type,
			      .title = doc->title, .bytes = doc->size, .text_bytes = doc->text_len,
			      .invalid_bytes = doc->invalid_bytes, .nchunks = (int)doc->nchunks,
			      .segment_id = seg};
		cat_object o = {.key = doc->key, .size = doc->size,
				.last_modified = doc->last_modified, .status = OBJ_INDEXED};
		int64_t doc_id;

		if ((rc = catalog_doc_insert(ic->cat, &cd, &doc_id, err)))
			break;
		for (size_t k = doc->first_chunk; k < doc->first_chunk + doc->nchunks && !rc; k++) {
			run_chunk *c = &r->chunks[k];
			cat_chunk ch = {.doc_id = doc_id, .ordinal = c->ordinal, .off = c->off,
					.len = c->len, .heading = c->heading,
					.text = run_chunk_text(r, k), .text_len = c->len,
					.segment_id = seg, .rec_off = b->rec_off[k - chunk0],
					.rec_len = b->rec_len[k - chunk0]};
			int64_t got;
			rc = catalog_chunk_insert(ic->cat, &ch, &got, err);
			if (!rc && got != id0 + (int64_t)k)
				rc = rag_error_set(err, RAG_EINTERNAL,
						   "catalog gave chunk id %lld, expected %lld",
						   (long long)got, (long long)(id0 + (int64_t)k));
		}
		rag_strlcpy(o.etag, doc->etag, sizeof(o.etag));
		o.doc_id = doc_id;
		if (!rc)
			rc = catalog_object_save(ic->cat, &o, err);
	}
	return rc;
}

static rag_rc fit_on_run(ingest_ctx *ic, ingest_run_state *r, ingest_summary *sum,
			 rag_error *err)
{
	const char **texts = malloc((r->nchunks + 1) * sizeof(*texts));
	size_t *lens = malloc((r->nchunks + 1) * sizeof(*lens));
	char on[256];
	uint64_t t = rag_now_ns();
	rag_rc rc;

	if (!texts || !lens) {
		free(texts);
		free(lens);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->nchunks; i++) {
		texts[i] = run_chunk_text(r, i);
		lens[i] = r->chunks[i].len;
	}
	snprintf(on, sizeof(on), "%zu chunks of %zu documents under s3://%s/%s", r->nchunks,
		 r->ndocs, s3_client_bucket(ic->s3), ic->cfg->source.prefix);
	rc = fit_model(ic, texts, lens, r->nchunks, on, err);
	sum->ms[ING_FIT] += rag_ms_since(t);
	sum->model_fitted = rc == RAG_OK;
	free(texts);
	free(lens);
	return rc;
}

rag_rc ingest_commit(ingest_ctx *ic, ingest_run_state *r, ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1, id0;
	seg_set known = {0};
	size_t d0 = 0;
	int nseg = 0;
	uint64_t t;
	rag_rc rc;

	if (r->ndocs == 0 && r->ntomb == 0) {
		/* nothing for readers: record outcomes locally, no new version */
		if (r->noutcomes == 0)
			return RAG_OK;
		if ((rc = catalog_begin(ic->cat, err)))
			return rc;
		if ((rc = save_outcomes(ic, r, err)) || (rc = catalog_commit(ic->cat, err)))
			catalog_rollback(ic->cat);
		return rc;
	}
	if (!ic->model) {
		if (r->nchunks == 0)
			return rag_error_set(err, RAG_EINVAL, "no model and no text to fit one on");
		if ((rc = fit_on_run(ic, r, sum, err)))
			return rc;
	}
	t = rag_now_ns();
	rc = run_embed(ic->model, r, err);
	sum->ms[ING_EMBED] += rag_ms_since(t);
	if (rc)
		return rc;
	for (size_t i = 0; i < ic->latest.nsegments; i++)
		if (seg_set_add(&known, &ic->latest.segments[i])) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
	if ((rc = catalog_next_chunk_id(ic->cat, &id0, err)) || (rc = catalog_begin(ic->cat, err)))
		goto out;
	t = rag_now_ns();
	if ((rc = save_outcomes(ic, r, err)) ||
	    (sum->model_fitted && (rc = note_fit_chunks(ic, r->nchunks, err))))
		goto rollback;
	/* the new documents, in segments that end at document boundaries */
	while (d0 < r->ndocs) {
		size_t d1 = d0, c0 = r->docs[d0].first_chunk, nch = 0;
		int dims = embed_dims(ic->model);
		seg_chunk *sc;
		seg_build b;
		mf_segment mf;
		char id[64];

		while (d1 < r->ndocs && (nch == 0 || nch + r->docs[d1].nchunks <=
							    (size_t)ic->cfg->index.segment_chunks))
			nch += r->docs[d1++].nchunks;
		if (!(sc = calloc(nch + 1, sizeof(*sc)))) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto rollback;
		}
		for (size_t k = 0; k < nch; k++) {
			run_chunk *c = &r->chunks[c0 + k];
			sc[k] = (seg_chunk){.id = id0 + (int64_t)(c0 + k), .key = r->docs[c->doc].key,
					    .ordinal = c->ordinal, .off = c->off, .len = c->len,
					    .heading = c->heading, .text = run_chunk_text(r, c0 + k),
					    .text_len = c->len};
		}
		snprintf(id, sizeof(id), "v%010lld-n%02d", (long long)version, nseg++);
		rc = write_segment(ic, id, sc, r->vecs + c0 * (size_t)dims, nch, &b, &mf, sum, err);
		free(sc);
		if (rc)
			goto rollback;
		rc = insert_docs(ic, r, d0, d1, id, &b, c0, id0, err);
		if (!rc)
			rc = insert_segment_row(ic, &mf, version, err);
		if (!rc && seg_set_add(&known, &mf))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		seg_build_release(&b);
		mf_segment_free(&mf);
		if (rc)
			goto rollback;
		d0 = d1;
	}
	if ((rc = compact(ic, version, &known, sum, err)) ||
	    (rc = catalog_version_add(ic->cat, version, embed_model_version(ic->model), err)))
		goto rollback;
	sum->ms[ING_CATALOG] += rag_ms_since(t);
	if ((rc = catalog_commit(ic->cat, err)))
		goto rollback;
	if ((rc = publish(ic, version, &known, sum, err)))
		goto out;
	t = rag_now_ns();
	rc = ingest_gc(ic, ic->cfg->index.gc_grace_s, &sum->gc_deleted, err);
	sum->ms[ING_GC] += rag_ms_since(t);
	goto out;
rollback:
	catalog_rollback(ic->cat);
out:
	seg_set_release(&known);
	return rc;
}

/* ---------------------------------------------------------------- refit */

bool ingest_refit_due(ingest_ctx *ic)
{
	catalog_stats st;
	char *v = NULL;
	int64_t fitted = 0;

	if (ic->cfg->ingest.refit_growth <= 0 || !ic->model || catalog_stats_get(ic->cat, &st, NULL))
		return false;
	/* the chunks the model was fitted from (it may have seen a sample) */
	if (catalog_meta_get(ic->cat, META_FIT_CHUNKS, &v, NULL) != RAG_OK || !v ||
	    !rag_parse_i64(v, &fitted) || fitted <= 0)
		fitted = (int64_t)embed_model_docs(ic->model);
	free(v);
	return (double)st.chunks > (double)fitted * (1.0 + ic->cfg->ingest.refit_growth);
}

rag_rc ingest_refit(ingest_ctx *ic, ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1;
	cat_segment *live = NULL;
	size_t nlive = 0;
	rows r = {0};
	seg_set known = {0};
	char on[256];
	uint64_t t;
	rag_rc rc;

	memset(sum, 0, sizeof(*sum));
	if ((rc = catalog_each_chunk_row(ic->cat, NULL, rows_add, &r, err)) ||
	    (rc = rows_texts(&r, err)))
		goto out;
	if (r.n == 0) {
		rc = rag_error_set(err, RAG_EINVAL, "refit: the index has no chunks");
		goto out;
	}
	snprintf(on, sizeof(on), "%zu live chunks of index \"%s\" (refit)", r.n, ic->cfg->index.name);
	t = rag_now_ns();
	rc = fit_model(ic, r.texts, r.lens, r.n, on, err);
	sum->ms[ING_FIT] = rag_ms_since(t);
	if (rc)
		goto out;
	sum->model_fitted = true;
	free(r.texts);
	free(r.lens);
	r.texts = NULL;
	r.lens = NULL;
	if ((rc = catalog_segments_live(ic->cat, &live, &nlive, err)) ||
	    (rc = catalog_begin(ic->cat, err)))
		goto out;
	/* everything is re-embedded with the new model into new segments */
	if ((rc = note_fit_chunks(ic, r.n, err)) ||
	    (rc = rebuild(ic, version, "r", &r, &known, sum, err)) ||
	    (rc = retire(ic, live, nlive, err)) ||
	    (rc = catalog_version_add(ic->cat, version, embed_model_version(ic->model), err)) ||
	    (rc = catalog_commit(ic->cat, err))) {
		catalog_rollback(ic->cat);
		goto out;
	}
	sum->segments_compacted = (int64_t)nlive;
	sum->chunks = (int64_t)r.n;
	rc = publish(ic, version, &known, sum, err);
out:
	free(live);
	rows_release(&r);
	seg_set_release(&known);
	return rc;
}

/* ------------------------------------------------------------------- gc */

/* The keys a GC pass must not delete. */
typedef struct keyset {
	char **a;
	size_t n, cap;
} keyset;

static rag_rc keys_add(keyset *k, const char *key)
{
	char **p = rag_grow(k->a, &k->cap, k->n + 1, sizeof(*p));

	if (!p)
		return RAG_ENOMEM;
	k->a = p;
	if (!(k->a[k->n] = rag_strdup(key)))
		return RAG_ENOMEM;
	k->n++;
	return RAG_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool keys_has(const keyset *k, const char *key)
{
	return bsearch(&key, k->a, k->n, sizeof(*k->a), cmp_str) != NULL;
}

static void keys_release(keyset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->a[i]);
	free(k->a);
	memset(k, 0, sizeof(*k));
}

static bool is_manifest(const ingest_ctx *ic, const char *key)
{
	size_t rl = strlen(ic->root), kl = strlen(key);

	return strncmp(key, ic->root, rl) == 0 && strncmp(key + rl, "manifests/", 10) == 0 &&
	       kl > 5 && strcmp(key + kl - 5, ".json") == 0;
}

/* Protect a manifest and everything it names. */
static rag_rc keep_manifest(ingest_ctx *ic, const char *key, keyset *keep, rag_buf *b,
			    rag_error *err)
{
	manifest m;
	rag_rc rc;

	rag_buf_reset(b);
	if ((rc = s3_get(ic->s3, S3_OP("ingest.gc", NULL), key, b, NULL, err)))
		return rc;
	if (manifest_from_json(b->data, b->len, &m, NULL) != RAG_OK)
		return RAG_OK; /* a broken manifest protects nothing */
	rc = keys_add(keep, key);
	if (!rc)
		rc = keys_add(keep, m.catalog.key);
	for (size_t s = 0; s < m.nsegments && !rc; s++)
		for (int k = 0; k < MF_NOBJ && !rc; k++)
			rc = keys_add(keep, m.segments[s].obj[k].key);
	manifest_release(&m);
	return rc ? rag_error_set(err, rc, "gc: out of memory") : RAG_OK;
}

/*
 * A manifest is kept while a reader may still hold it: it is LATEST's, or
 * the manifest that superseded it is younger than the grace period (so a
 * server that has not reloaded yet keeps every object it reads). Objects no
 * kept manifest names are deleted once they are older than the grace
 * period themselves (a commit in progress writes young objects).
 */
rag_rc ingest_gc(ingest_ctx *ic, int64_t grace_s, int64_t *deleted, rag_error *err)
{
	s3_list l = {0};
	keyset keep = {0};
	const char **del = NULL;
	char latest_key[1200], latest_manifest[1200];
	size_t ndel = 0;
	int64_t now = rag_wall_time();
	rag_buf b;
	rag_rc rc;

	*deleted = 0;
	rag_buf_init(&b, SMALL_OBJECT_MAX);
	mf_latest_key(ic->root, latest_key, sizeof(latest_key));
	mf_manifest_key(ic->root, ic->latest.version, latest_manifest, sizeof(latest_manifest));
	if ((rc = s3_list_objects(ic->s3, S3_OP("ingest.gc", NULL), ic->root, NULL, &l, err)))
		goto out;
	if (!(del = calloc(l.nobjects + 1, sizeof(*del))) || keys_add(&keep, latest_key)) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	/* listings are in key order and versions are zero-padded: version order */
	for (size_t i = 0; i < l.nobjects && !rc; i++) {
		const s3_object *o = &l.objects[i], *next = NULL;
		if (!is_manifest(ic, o->key))
			continue;
		for (size_t j = i + 1; j < l.nobjects && !next; j++)
			if (is_manifest(ic, l.objects[j].key))
				next = &l.objects[j];
		if (strcmp(o->key, latest_manifest) == 0 || !next ||
		    now - next->last_modified < grace_s)
			rc = keep_manifest(ic, o->key, &keep, &b, err);
	}
	if (rc)
		goto out;
	qsort(keep.a, keep.n, sizeof(*keep.a), cmp_str);
	for (size_t i = 0; i < l.nobjects; i++) {
		const s3_object *o = &l.objects[i];
		if (keys_has(&keep, o->key) || now - o->last_modified < grace_s)
			continue;
		del[ndel++] = o->key;
	}
	if (ndel) {
		RAG_INFO(ic->log, "gc: deleting %zu unreferenced objects", ndel);
		rc = s3_delete_many(ic->s3, S3_OP("ingest.gc", NULL), del, ndel, err);
	}
	if (!rc)
		*deleted = (int64_t)ndel;
out:
	keys_release(&keep);
	free(del);
	s3_list_release(&l);
	rag_buf_release(&b);
	return rc;
}
