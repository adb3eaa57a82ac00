/*
 * ingest_commit.c — the writer's side of the commit protocol (commit.h):
 * catalog recovery, version commits with rebase on a lost race,
 * compaction, refit and GC.
 *
 * One commit of version V = newest committed + 1:
 *   model (if new) → segment objects (keys unique to this writer) →
 *   local catalog (V pending) → catalog snapshot → manifest V, created only
 *   if absent → LATEST (a hint) → local catalog (V published).
 * A writer that loses V re-reads the newest version, restores its catalog
 * from that version's snapshot, applies its change again by source key and
 * tries the next number. Its segments stay valid: their chunk ids come from
 * a block only this writer claimed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commit.h"
#include "ingest_int.h"
#include "modelobj.h"
#include "rag_util.h"
#include "segment.h"

#define META_WRITER "commit.writer"   /* the token of the catalog's version */
#define LEASE_TTL_S 600               /* single-writer lease, renewed per commit */

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

/* ------------------------------------------------------------ pass cost */

static void ingest_requests_now(const ingest_ctx *ic, s3_counter kind[S3_KIND_COUNT])
{
	s3_client_kind_totals(ic->s3, RAG_STAGE_INGEST, kind);
}

void ingest_mark_pass(ingest_ctx *ic)
{
	ingest_requests_now(ic, ic->pass_start);
}

void ingest_pass_requests(const ingest_ctx *ic, int64_t *gets, int64_t *puts)
{
	s3_counter now[S3_KIND_COUNT];
	int64_t d[S3_KIND_COUNT];

	ingest_requests_now(ic, now);
	for (int k = 0; k < S3_KIND_COUNT; k++)
		d[k] = (int64_t)(now[k].requests - ic->pass_start[k].requests);
	*gets = d[S3_GET] + d[S3_HEAD];
	*puts = d[S3_PUT] + d[S3_PART] + d[S3_MPU] + d[S3_LIST] + d[S3_CONFIG];
}

/* ------------------------------------------------------------- recovery */

static rag_rc read_newest(ingest_ctx *ic, const char *stage, rag_error *err)
{
	manifest m;
	rag_rc rc = commit_read_newest(ic->s3, S3_OP(stage, NULL), ic->root, NULL, &m, err);

	if (rc)
		return rc;
	manifest_release(&ic->latest);
	ic->latest = m;
	return RAG_OK;
}

static rag_rc load_model(ingest_ctx *ic, const char *key, rag_error *err)
{
	rag_rc rc = modelobj_open(ic->s3, S3_OP("ingest.model", NULL), key, &ic->model, err);

	if (!rc)
		rag_strlcpy(ic->model_key, key, sizeof(ic->model_key));
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

/*
 * Make the local catalog equal the snapshot of ic->latest (invariant 1 of
 * ingest.h). It already is when it holds that version, written by the same
 * writer (a pending mark there means we died after the manifest landed).
 */
static rag_rc sync_catalog(ingest_ctx *ic, rag_error *err)
{
	int64_t published, pending, have;
	char *writer = NULL;
	bool same;
	rag_rc rc;

	if ((rc = catalog_versions(ic->cat, &published, &pending, err)))
		return rc;
	if (ic->latest.version == 0)
		return published || pending ? reset_catalog(ic, err) : RAG_OK;
	have = pending > published ? pending : published;
	catalog_meta_get(ic->cat, META_WRITER, &writer, NULL);
	same = have == ic->latest.version && strcmp(writer ? writer : "", ic->latest.writer) == 0;
	free(writer);
	if (!same)
		return restore_catalog(ic, err);
	return pending == have ? catalog_version_publish(ic->cat, pending, err) : RAG_OK;
}

/*
 * Invariant 8 of commit.h: find out, before the first write, whether
 * writers can race safely (a pass that commits nothing writes nothing).
 */
static rag_rc check_writers(ingest_ctx *ic, rag_error *err)
{
	rag_rc rc;

	if (ic->probed)
		return ic->conditional ? RAG_OK
				       : commit_lease(ic->s3, S3_OP("ingest.commit", NULL), ic->root,
						      ic->token, LEASE_TTL_S, err);
	ic->probed = true;
	rc = commit_probe(ic->s3, S3_OP("ingest.recover", NULL), ic->root, &ic->conditional,
				 err);

	if (rc) {
		rag_error_prefix(err, "probing conditional writes under \"%s\"", ic->root);
		return rc;
	}
	if (ic->conditional)
		return RAG_OK;
	RAG_WARN(ic->log, "the store ignores If-None-Match on PUT: single-writer mode (lease %s)",
		 ic->token);
	return commit_lease(ic->s3, S3_OP("ingest.recover", NULL), ic->root, ic->token, LEASE_TTL_S,
			    err);
}

rag_rc ingest_open(ingest_ctx *ic, const rag_config *cfg, s3_client *s3, rag_log *log,
		   rag_error *err)
{
	char dir[4096];
	rag_rc rc;

	memset(ic, 0, sizeof(*ic));
	ic->cfg = cfg;
	ic->s3 = s3;
	ic->log = log;
	commit_token(ic->token);
	if ((rc = rag_scope_init(&ic->scope, cfg->source.prefix, err)))
		return rc;
	if (mf_index_root(cfg->index.prefix, cfg->index.name, ic->root, sizeof(ic->root)) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s/%s", cfg->local.dir, cfg->index.name) >= sizeof(dir)) {
		rc = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto fail;
	}
	if ((size_t)snprintf(ic->cat_path, sizeof(ic->cat_path), "%.4000s/catalog.sqlite", dir) >=
	    sizeof(ic->cat_path)) {
		rc = rag_error_set(err, RAG_ECONFIG, "local.dir too long");
		goto fail;
	}
	if ((rc = mkdirs(dir, err)) || (rc = read_newest(ic, "ingest.recover", err)) ||
	    (rc = catalog_open(ic->cat_path, &ic->cat, err)) || (rc = sync_catalog(ic, err)))
		goto fail;
	if (ic->latest.version && (rc = load_model(ic, ic->latest.model.key, err)))
		goto fail;
	return RAG_OK;
fail:
	ingest_close(ic);
	return rc;
}

void ingest_close(ingest_ctx *ic)
{
	if (ic->s3 && ic->probed && !ic->conditional)
		commit_lease_release(ic->s3, S3_OP("ingest.recover", NULL), ic->root, ic->token);
	catalog_close(ic->cat);
	embedder_free(ic->model);
	manifest_release(&ic->latest);
	rag_scope_release(&ic->scope);
	ic->cat = NULL;
	ic->model = NULL;
}

/* ---------------------------------------------------------------- model */

/* Store m and make it the model of the next commits (ic takes m). */
static rag_rc publish_model(ingest_ctx *ic, embedder *m, rag_error *err)
{
	char key[sizeof(ic->model_key)];
	rag_rc rc = modelobj_publish(ic->s3, S3_OP("ingest.model", NULL), ic->cfg->model.prefix, m,
				     key, sizeof(key), err);

	if (rc)
		return rc;
	embedder_free(ic->model);
	ic->model = m;
	rag_strlcpy(ic->model_key, key, sizeof(ic->model_key));
	RAG_INFO(ic->log, "model %s (%s) version %s, %d dims, at \"%s\"", embedder_name(m),
		 embedder_kind(m), embedder_version(m), embedder_dims(m), key);
	return RAG_OK;
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
	embedder *m = NULL;
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
	o.min_df = 0; /* by corpus size */
	o.name = ic->cfg->model.name;
	o.fitted_on = fitted_on;
	if ((rc = embedder_fit(texts, lens, n, &o, &m, err)))
		goto out;
	if ((rc = publish_model(ic, m, err)))
		embedder_free(m);
out:
	free(st);
	free(sl);
	return rc;
}

/*
 * What the catalog remembers about the model, inside each version's
 * transaction, for ingest_refit_due(): how many chunks it was fitted from,
 * the dims asked for then, and the tokens of the chunks embedded since
 * (how many it did not know).
 */
#define META_DIMS_WANTED "model.dims_wanted"
#define META_TOKENS "model.tokens_since_fit"
#define META_UNKNOWN "model.unknown_since_fit"

static rag_rc meta_set_i64(ingest_ctx *ic, const char *key, int64_t v, rag_error *err)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	return catalog_meta_set(ic->cat, key, s, err);
}

/* The integer at key, or 0 when absent or not one. */
static int64_t meta_i64(ingest_ctx *ic, const char *key)
{
	char *v = NULL;
	int64_t n = 0;

	if (catalog_meta_get(ic->cat, key, &v, NULL) != RAG_OK || !v || !rag_parse_i64(v, &n))
		n = 0;
	free(v);
	return n;
}

/* A model was fitted from n chunks (or imported: it was fitted elsewhere). */
static rag_rc note_fit(ingest_ctx *ic, size_t n, rag_error *err)
{
	rag_rc rc = meta_set_i64(ic, META_FIT_CHUNKS, (int64_t)n, err);

	if (!rc)
		rc = meta_set_i64(ic, META_DIMS_WANTED, ic->cfg->model.dims, err);
	if (!rc)
		rc = meta_set_i64(ic, META_TOKENS, 0, err);
	if (!rc)
		rc = meta_set_i64(ic, META_UNKNOWN, 0, err);
	return rc;
}

/* New chunks were embedded with the current model. */
static rag_rc note_embedded(ingest_ctx *ic, const embed_stats *st, rag_error *err)
{
	rag_rc rc = RAG_OK;

	if (st->tokens)
		rc = meta_set_i64(ic, META_TOKENS, meta_i64(ic, META_TOKENS) + (int64_t)st->tokens,
				  err);
	if (!rc && st->unknown)
		rc = meta_set_i64(ic, META_UNKNOWN,
				  meta_i64(ic, META_UNKNOWN) + (int64_t)st->unknown, err);
	return rc;
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

	rc = segment_build(embedder_dims(ic->model), chunks, vecs, n, &vo, b, err);
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
	cat_segment s;

	segment_catalog_row(mf, version, embedder_version(ic->model), &s);
	return catalog_segment_insert(ic->cat, &s, err);
}

/* ------------------------------------------------------------- publish */

/* The segments version V may name: the base version's plus the change's. */
static rag_rc known_segments(const ingest_ctx *ic, const seg_set *fresh, seg_set *known)
{
	for (size_t i = 0; i < ic->latest.nsegments; i++)
		if (seg_set_add(known, &ic->latest.segments[i]))
			return RAG_ENOMEM;
	for (size_t i = 0; fresh && i < fresh->n; i++)
		if (seg_set_add(known, &fresh->a[i]))
			return RAG_ENOMEM;
	return RAG_OK;
}

/* An error for the manifest's JSON: cut at a character boundary, and a
 * placeholder when it is not UTF-8 (it may quote a document's bytes). */
static char *manifest_error_text(const char *e)
{
	size_t n = strlen(e);

	if (n > MF_FAILED_ERROR_MAX) {
		n = MF_FAILED_ERROR_MAX;
		while (n && ((unsigned char)e[n] & 0xC0) == 0x80)
			n--;
	}
	return rag_utf8_valid(e, n) ? rag_strndup(e, n) : rag_strdup("(the error is not UTF-8)");
}

/* The first MF_FAILED_MAX failed objects, their errors cut to size. */
static rag_rc list_failed(ingest_ctx *ic, manifest *m, rag_error *err)
{
	cat_object *f;
	size_t n;
	rag_rc rc;

	if ((rc = catalog_failed(ic->cat, MF_FAILED_MAX, &f, &n, &m->failed_total, err)))
		return rc;
	if (n && !(m->failed = calloc(n, sizeof(*m->failed))))
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		mf_failed *d = &m->failed[m->nfailed++];
		d->key = f[i].key;
		f[i].key = NULL; /* taken over */
		d->error = manifest_error_text(f[i].error ? f[i].error : "");
		d->attempts = f[i].attempts;
		d->retry_at = ingest_retry_at(ic->cfg, &f[i]);
		if (!d->error)
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	cat_objects_free(f, n);
	return rc;
}

/* The manifest of version V from the catalog (its transaction committed). */
static rag_rc build_manifest(ingest_ctx *ic, int64_t version, const seg_set *known,
			     const char *snap_key, uint64_t snap_size, const ingest_summary *sum,
			     manifest *m, rag_error *err)
{
	cat_segment *live = NULL;
	size_t nlive = 0;
	catalog_stats st;
	rag_rc rc;

	memset(m, 0, sizeof(*m));
	m->version = version;
	rag_strlcpy(m->index, ic->cfg->index.name, sizeof(m->index));
	rag_strlcpy(m->writer, ic->token, sizeof(m->writer));
	m->created_at = rag_wall_time();
	rag_strlcpy(m->model.name, embedder_name(ic->model), sizeof(m->model.name));
	rag_strlcpy(m->model.version, embedder_version(ic->model), sizeof(m->model.version));
	m->model.dims = embedder_dims(ic->model);
	m->model.key = rag_strdup(ic->model_key);
	m->catalog.key = rag_strdup(snap_key);
	m->catalog.size = snap_size;
	if ((rc = catalog_segments_live(ic->cat, &live, &nlive, err)) ||
	    (rc = catalog_tombstone_ranges(ic->cat, &m->tombstones, &m->ntombstones, err)) ||
	    (rc = catalog_stats_get(ic->cat, &st, err)))
		goto out;
	m->documents = st.documents;
	m->chunks = st.chunks;
	m->source_bytes = st.source_bytes;
	m->run.objects_read = sum->fetched;
	m->run.bytes_read = (int64_t)sum->bytes_read;
	m->run.segments_written = sum->segments_written; /* compaction's output included */
	/* until now: this manifest's own PUT and LATEST are the pass's last two */
	ingest_pass_requests(ic, &m->run.get_requests, &m->run.put_requests);
	if ((rc = list_failed(ic, m, err)))
		goto out;
	if (!m->model.key || !m->catalog.key || !(m->segments = calloc(nlive + 1, sizeof(*m->segments)))) {
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
		if (mf_segment_copy(&m->segments[m->nsegments], found)) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		m->nsegments++;
	}
	m->ids_high = commit_ids_high(&ic->latest, m, ic->ids_end);
out:
	free(live);
	if (rc)
		manifest_release(m);
	return rc;
}

/*
 * Publish version V = ic->latest.version + 1 from the catalog, whose
 * transaction for V is committed. RAG_ECONFLICT: another writer has V.
 */
/* A segment id unique to this writer (commit.h, invariant 2). */
static void segment_name(ingest_ctx *ic, char tag, char *out, size_t len)
{
	snprintf(out, len, "%c%s-%06u", tag, ic->token, ++ic->segments_named);
}

/*
 * Segments uploaded at born_ns (rag_now_ns) are too old to be named once
 * half of the GC grace period has passed: GC may take them for a dead
 * writer's garbage when the grace period ends (commit.h, invariant 6), and
 * the other half is the commit's time to land. Under 1 s nothing is safe
 * against a concurrent GC, and no age is refused.
 */
static bool too_old_to_name(const ingest_ctx *ic, uint64_t born_ns)
{
	double grace = (double)ic->cfg->index.gc_grace_s, age = rag_ms_since(born_ns) / 1e3;

	return born_ns && grace >= 1 && age > grace / 2;
}

static rag_rc publish(ingest_ctx *ic, const seg_set *fresh, uint64_t born_ns,
		      ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1;
	seg_set known = {0};
	manifest m = {0};
	char snap[4200], key[1200];
	uint64_t t = rag_now_ns();
	struct stat sb;
	rag_rc rc;

	snprintf(snap, sizeof(snap), "%s.snapshot", ic->cat_path);
	if (mf_catalog_key(ic->root, version, ic->token, key, sizeof(key)))
		return rag_error_set(err, RAG_ECONFIG, "index root too long");
	if (known_segments(ic, fresh, &known)) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = check_writers(ic, err)))
		goto out;
	if ((rc = catalog_snapshot(ic->cat, snap, err)) ||
	    (rc = s3_put_file(ic->s3, S3_OP("ingest.commit", NULL), snap, key, NULL, err)))
		goto out;
	sb.st_size = 0;
	stat(snap, &sb);
	unlink(snap);
	if (too_old_to_name(ic, born_ns)) {
		rc = rag_error_set(err, RAG_ETIMEOUT, "segments uploaded %.1f s ago are too close to "
				   "index.gc_grace_s (%lld s) to be named", rag_ms_since(born_ns) / 1e3,
				   (long long)ic->cfg->index.gc_grace_s);
		goto out;
	}
	if ((rc = build_manifest(ic, version, &known, key, (uint64_t)sb.st_size, sum, &m, err)) ||
	    (rc = commit_publish(ic->s3, S3_OP("ingest.commit", NULL), ic->root, ic->conditional, &m,
				 err)))
		goto out;
	if ((rc = catalog_version_publish(ic->cat, version, err)))
		goto out;
	manifest_release(&ic->latest);
	ic->latest = m;
	memset(&m, 0, sizeof(m));
	sum->version = version;
	sum->commits++;
	RAG_INFO(ic->log, "committed version %lld: %lld documents, %lld chunks, %zu segments",
		 (long long)version, (long long)ic->latest.documents, (long long)ic->latest.chunks,
		 ic->latest.nsegments);
out:
	sum->ms[ING_COMMIT] += rag_ms_since(t);
	manifest_release(&m);
	seg_set_release(&known);
	return rc;
}

/*
 * Take the newest committed version as the base: the catalog from its
 * snapshot (unless it is ours already) and its model. *model_changed when
 * that model is not the one loaded (vectors made with it are void).
 */
static rag_rc follow_newest(ingest_ctx *ic, const char *stage, bool *model_changed,
			    rag_error *err)
{
	rag_rc rc;

	*model_changed = false;
	if ((rc = read_newest(ic, stage, err)) || (rc = sync_catalog(ic, err)))
		return rc;
	if (ic->latest.version && strcmp(ic->latest.model.key, ic->model_key) != 0) {
		*model_changed = true;
		embedder_free(ic->model);
		ic->model = NULL;
		return load_model(ic, ic->latest.model.key, err);
	}
	return RAG_OK;
}

rag_rc ingest_follow(ingest_ctx *ic, rag_error *err)
{
	bool model_changed;

	return follow_newest(ic, "ingest.recover", &model_changed, err);
}

/* After a lost race (counted), wait (jittered), then follow the winner. */
static rag_rc rebase(ingest_ctx *ic, unsigned attempt, bool *model_changed, rag_error *err)
{
	rag_rc rc;

	rag_sleep_ms(commit_backoff_ms(attempt));
	if ((rc = follow_newest(ic, "ingest.commit", model_changed, err)))
		return rc;
	RAG_INFO(ic->log, "lost the race for a version: rebasing on version %lld (attempt %u)",
		 (long long)ic->latest.version, attempt + 1);
	return RAG_OK;
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
	c->page = row->page;
	c->page_end = row->page_end;
	c->src_off = row->src_off;
	c->src_end = row->src_end;
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
 * segments of version V, move them in the catalog (inside the caller's
 * transaction) and add the segments to fresh.
 */
static rag_rc rebuild(ingest_ctx *ic, int64_t version, char tag, rows *r, seg_set *fresh,
		      ingest_summary *sum, embed_stats *st, rag_error *err)
{
	float *vecs = NULL;
	int dims = embedder_dims(ic->model);
	size_t from = 0;
	uint64_t t;
	rag_rc rc;

	if (r->n == 0)
		return RAG_OK;
	if ((rc = rows_texts(r, err)))
		return rc;
	if (!(vecs = malloc(r->n * (size_t)dims * sizeof(float))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	t = rag_now_ns();
	rc = embedder_embed(ic->model, r->texts, r->lens, r->n, vecs, st, err);
	sum->ms[ING_EMBED] += rag_ms_since(t);
	while (!rc && from < r->n) {
		size_t end = segment_end(r->a, from, r->n, (size_t)ic->cfg->index.segment_chunks);
		char id[64];
		seg_build b;
		mf_segment mf;

		segment_name(ic, tag, id, sizeof(id));
		if ((rc = write_segment(ic, id, r->a + from, vecs + from * (size_t)dims, end - from,
					&b, &mf, sum, err)))
			break;
		for (size_t i = from; i < end && !rc; i++)
			rc = catalog_chunk_move(ic->cat, r->a[i].id, id, b.rec_off[i - from],
						b.rec_len[i - from], err);
		if (!rc)
			rc = insert_segment_row(ic, &mf, version, err);
		if (!rc && seg_set_add(fresh, &mf))
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
 * Inside the open transaction: version V is pending, written by this
 * writer (the mark sync_catalog() reads to tell our catalog from a
 * snapshot of someone else's V).
 */
static rag_rc stage_version(ingest_ctx *ic, int64_t version, rag_error *err)
{
	rag_rc rc = catalog_version_add(ic->cat, version, embedder_version(ic->model), err);

	return rc ? rc : catalog_meta_set(ic->cat, META_WRITER, ic->token, err);
}

/*
 * Inside the open transaction of version V: rebuild the chunks r into new
 * segments (added to fresh), retire the segments old, stage V and commit.
 * Rolled back on failure.
 */
static rag_rc rebuild_and_commit(ingest_ctx *ic, int64_t version, char tag, rows *r,
				 const cat_segment *old, size_t nold, seg_set *fresh,
				 ingest_summary *sum, rag_error *err)
{
	embed_stats st = {0};
	rag_rc rc;

	/* the tokens of chunks embedded again are not new: only truncation counts */
	if ((rc = rebuild(ic, version, tag, r, fresh, sum, &st, err)) ||
	    (rc = retire(ic, old, nold, err)) || (rc = stage_version(ic, version, err)) ||
	    (rc = catalog_commit(ic->cat, err)))
		catalog_rollback(ic->cat);
	if (tag != 'c') /* compaction embeds the same chunks again */
		sum->truncated += (int64_t)st.truncated;
	return rc;
}

/* The segments compaction picks: the smallest while there are more than
 * index.max_segments, and those whose tombstoned share is above a third. */
static rag_rc compaction_pick(ingest_ctx *ic, cat_segment **pick, size_t *npick, rag_error *err)
{
	cat_segment *live = NULL;
	size_t nlive = 0, n = 0;
	rag_rc rc;

	*pick = NULL;
	*npick = 0;
	if ((rc = catalog_segments_live(ic->cat, &live, &nlive, err)))
		return rc;
	if (nlive)
		qsort(live, nlive, sizeof(*live), by_size);
	for (size_t i = 0; i < nlive; i++) {
		int64_t dead = catalog_segment_dead_chunks(ic->cat, live[i].id);
		bool too_many = nlive - n + (n ? 1 : 0) > (size_t)ic->cfg->index.max_segments;
		if (too_many || dead * 3 > live[i].nchunks)
			live[n++] = live[i];
	}
	if (n == 1 && catalog_segment_dead_chunks(ic->cat, live[0].id) == 0)
		n = 0; /* merging one clean segment into itself gains nothing */
	if (n == 0)
		free(live);
	else {
		*pick = live;
		*npick = n;
	}
	return RAG_OK;
}

/* One compaction attempt on the current base: rebuild, retire, publish. */
static rag_rc compact_once(ingest_ctx *ic, const cat_segment *pick, size_t npick,
			   ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1;
	seg_set fresh = {0};
	rows r = {0};
	rag_rc rc;

	for (size_t i = 0; i < npick; i++)
		if ((rc = catalog_each_chunk_row(ic->cat, pick[i].id, rows_add, &r, err)))
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
	if ((rc = catalog_begin(ic->cat, err)) ||
	    (rc = rebuild_and_commit(ic, version, 'c', &r, pick, npick, &fresh, sum, err)))
		goto out;
	rc = publish(ic, &fresh, 0, sum, err); /* segments uploaded just now */
out:
	rows_release(&r);
	seg_set_release(&fresh);
	return rc;
}

/*
 * Compaction, a writer like any other: picked on the newest version,
 * published as the next one. A lost race means re-picking on the winner's
 * version (its rebuilt segments become garbage); after a few losses the
 * compaction waits for the next commit.
 */
rag_rc ingest_compact(ingest_ctx *ic, ingest_summary *sum, rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (unsigned attempt = 1; attempt <= 3; attempt++) {
		cat_segment *pick;
		size_t npick;
		bool model_changed;

		if ((rc = compaction_pick(ic, &pick, &npick, err)) || npick == 0)
			return rc;
		RAG_INFO(ic->log, "compacting %zu segments", npick);
		rc = compact_once(ic, pick, npick, sum, err);
		free(pick);
		if (!rc) {
			sum->segments_compacted += (int64_t)npick;
			return RAG_OK;
		}
		if (rc != RAG_ECONFLICT)
			return rc;
		sum->conflicts++;
		if ((rc = rebase(ic, attempt, &model_changed, err)))
			return rc;
	}
	RAG_INFO(ic->log, "compaction deferred: other writers took 3 versions in a row");
	return RAG_OK;
}

/* --------------------------------------------------------------- commit */

/*
 * A run's change, built once per model: its new segments (uploaded), where
 * each chunk's record is, and the chunk ids, which come from a block this
 * writer claimed so the segments stay valid on any base (invariant 7).
 */
typedef struct change {
	seg_set segs;
	size_t *doc_end;       /* per segment: it holds documents [previous end, end) */
	uint64_t *rec_off;     /* per run chunk */
	uint32_t *rec_len;
	int64_t id0;           /* run chunk k has id id0 + k */
	uint64_t born_ns;      /* when the uploads began */
	embed_stats est;       /* of embedding the run */
	bool built;
} change;

static void change_release(change *ch)
{
	seg_set_release(&ch->segs);
	free(ch->doc_end);
	free(ch->rec_off);
	free(ch->rec_len);
	memset(ch, 0, sizeof(*ch));
}

/* n consecutive chunk ids from this writer's block, claiming one as needed. */
static rag_rc take_ids(ingest_ctx *ic, size_t n, int64_t *first, rag_error *err)
{
	rag_rc rc;

	if ((int64_t)n > COMMIT_ID_BLOCK)
		return rag_error_set(err, RAG_EINVAL, "one commit of %zu chunks is over the chunk id "
				     "block of %lld: lower ingest.commit_every", n,
				     (long long)COMMIT_ID_BLOCK);
	if (ic->ids_end - ic->ids_next < (int64_t)n) {
		int64_t floor;
		if ((rc = check_writers(ic, err)))
			return rc;
		floor = ic->ids_end - 1; /* commit_claim_ids reads the newest mark */
		if ((rc = commit_claim_ids(ic->s3, S3_OP("ingest.commit", NULL), ic->root, floor,
					   ic->token, &ic->ids_next, err)))
			return rc;
		ic->ids_end = ic->ids_next + COMMIT_ID_BLOCK;
	}
	*first = ic->ids_next;
	ic->ids_next += (int64_t)n;
	return RAG_OK;
}

/* Embed the run and upload its segments, which end at document boundaries. */
static rag_rc build_change(ingest_ctx *ic, ingest_run_state *r, change *ch, ingest_summary *sum,
			   rag_error *err)
{
	int dims = embedder_dims(ic->model);
	uint64_t t = rag_now_ns();
	size_t d0 = 0;
	rag_rc rc;

	change_release(ch);
	ch->born_ns = rag_now_ns();
	rc = run_embed(ic->model, r, &ch->est, err);
	sum->ms[ING_EMBED] += rag_ms_since(t);
	sum->truncated = (int64_t)ch->est.truncated;
	if (rc || (rc = take_ids(ic, r->nchunks, &ch->id0, err)))
		return rc;
	if (!(ch->doc_end = calloc(r->ndocs + 1, sizeof(*ch->doc_end))) ||
	    !(ch->rec_off = calloc(r->nchunks + 1, sizeof(*ch->rec_off))) ||
	    !(ch->rec_len = calloc(r->nchunks + 1, sizeof(*ch->rec_len))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	while (d0 < r->ndocs) {
		size_t d1 = d0, c0 = r->docs[d0].first_chunk, nch = 0;
		seg_chunk *sc;
		seg_build b;
		mf_segment mf;
		char id[64];

		while (d1 < r->ndocs && (nch == 0 || nch + r->docs[d1].nchunks <=
							    (size_t)ic->cfg->index.segment_chunks))
			nch += r->docs[d1++].nchunks;
		if (!(sc = calloc(nch + 1, sizeof(*sc))))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		for (size_t k = 0; k < nch; k++) {
			run_chunk *c = &r->chunks[c0 + k];
			sc[k] = (seg_chunk){.id = ch->id0 + (int64_t)(c0 + k), .key = r->docs[c->doc].key,
					    .ordinal = c->ordinal, .off = c->off, .len = c->len,
					    .heading = c->heading, .text = run_chunk_text(r, c0 + k),
					    .text_len = c->len, .page = c->page, .page_end = c->page_end,
					    .src_off = c->src_off, .src_end = c->src_end};
		}
		segment_name(ic, 'n', id, sizeof(id));
		rc = write_segment(ic, id, sc, r->vecs + c0 * (size_t)dims, nch, &b, &mf, sum, err);
		free(sc);
		if (rc)
			return rc;
		memcpy(ch->rec_off + c0, b.rec_off, nch * sizeof(*ch->rec_off));
		memcpy(ch->rec_len + c0, b.rec_len, nch * sizeof(*ch->rec_len));
		ch->doc_end[ch->segs.n] = d1;
		rc = seg_set_add(&ch->segs, &mf) ? rag_error_set(err, RAG_ENOMEM, "out of memory")
						 : RAG_OK;
		seg_build_release(&b);
		mf_segment_free(&mf);
		if (rc)
			return rc;
		d0 = d1;
	}
	ch->built = true;
	return RAG_OK;
}

/* The catalog's row for key in objs (sorted by key), NULL if none. */
static const cat_object *find_object(const cat_object *objs, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(objs[mid].key, key);
		if (c == 0)
			return &objs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * An outcome that is not a new document, applied to whatever the base holds
 * for its key: a deleted, skipped or rejected object takes the live document
 * with it; a failed one keeps serving it.
 */
static rag_rc apply_outcome(ingest_ctx *ic, const cat_object *cur, const cat_object *o,
			    rag_error *err)
{
	cat_object row = *o;
	int64_t live = cur ? cur->doc_id : 0;
	rag_rc rc;

	if (o->status == OBJ_FAILED) {
		row.doc_id = live;
	} else {
		row.doc_id = 0;
		if (live && (rc = catalog_doc_tombstone(ic->cat, live, err)))
			return rc;
	}
	return catalog_object_save(ic->cat, &row, err);
}

/*
 * A new document with its chunks. When the base already holds the same
 * object (key and ETag: a writer that won the race indexed it too), ours is
 * inserted tombstoned, so its chunks in our segment are dead on arrival and
 * the document is live once. Otherwise it replaces the live one.
 */
static rag_rc apply_doc(ingest_ctx *ic, ingest_run_state *r, const change *ch, size_t d,
			const char *seg, const cat_object *cur, rag_error *err)
{
	run_doc *doc = &r->docs[d];
	bool dup = cur && cur->status == OBJ_INDEXED && cur->doc_id &&
		   strcmp(cur->etag, doc->etag) == 0;
	cat_doc cd = {.key = doc->key, .etag = doc->etag, .type = doc->type, .title = doc->title,
		      .bytes = doc->size, .text_bytes = doc->text_len,
		      .invalid_bytes = doc->invalid_bytes, .nchunks = (int)doc->nchunks,
		      .segment_id = seg};
	cat_object o = {.key = doc->key, .size = doc->size, .last_modified = doc->last_modified,
			.status = OBJ_INDEXED};
	int64_t doc_id;
	rag_rc rc;

	if ((rc = catalog_doc_insert(ic->cat, &cd, &doc_id, err)))
		return rc;
	for (size_t k = doc->first_chunk; k < doc->first_chunk + doc->nchunks && !rc; k++) {
		run_chunk *c = &r->chunks[k];
		cat_chunk row = {.id = ch->id0 + (int64_t)k, .doc_id = doc_id, .ordinal = c->ordinal,
				 .off = c->off, .len = c->len, .heading = c->heading,
				 .text = run_chunk_text(r, k), .text_len = c->len, .segment_id = seg,
				 .rec_off = ch->rec_off[k], .rec_len = ch->rec_len[k],
				 .page = c->page, .page_end = c->page_end, .src_off = c->src_off,
				 .src_end = c->src_end};
		int64_t got;
		rc = catalog_chunk_insert(ic->cat, &row, &got, err);
	}
	if (rc)
		return rc;
	if (dup)
		return catalog_doc_tombstone(ic->cat, doc_id, err);
	if (cur && cur->doc_id && (rc = catalog_doc_tombstone(ic->cat, cur->doc_id, err)))
		return rc;
	rag_strlcpy(o.etag, doc->etag, sizeof(o.etag));
	o.doc_id = doc_id;
	return catalog_object_save(ic->cat, &o, err);
}

/* The change as version V's catalog transaction, on the current base. */
static rag_rc apply_change(ingest_ctx *ic, ingest_run_state *r, const change *ch,
			   ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1;
	cat_object *objs = NULL;
	size_t nobjs = 0, d0 = 0;
	uint64_t t = rag_now_ns();
	rag_rc rc;

	if ((rc = catalog_objects_load(ic->cat, &objs, &nobjs, err)))
		return rc;
	if ((rc = catalog_begin(ic->cat, err)))
		goto out;
	for (size_t i = 0; i < r->noutcomes && !rc; i++)
		rc = apply_outcome(ic, find_object(objs, nobjs, r->outcomes[i].key), &r->outcomes[i],
				   err);
	for (size_t s = 0; s < ch->segs.n && !rc; s++) {
		const mf_segment *mf = &ch->segs.a[s];
		for (size_t d = d0; d < ch->doc_end[s] && !rc; d++)
			rc = apply_doc(ic, r, ch, d, mf->id, find_object(objs, nobjs, r->docs[d].key),
				       err);
		d0 = ch->doc_end[s];
		if (!rc)
			rc = insert_segment_row(ic, mf, version, err);
	}
	if (!rc)
		rc = sum->model_fitted ? note_fit(ic, r->nchunks, err) : note_embedded(ic, &ch->est, err);
	if (!rc)
		rc = stage_version(ic, version, err);
	if (!rc)
		rc = catalog_commit(ic->cat, err);
	if (rc)
		catalog_rollback(ic->cat);
out:
	sum->ms[ING_CATALOG] += rag_ms_since(t);
	cat_objects_free(objs, nobjs);
	return rc;
}

/* Outcomes before there is any version (no model to name): the local
 * catalog only. */
static rag_rc save_outcomes_locally(ingest_ctx *ic, ingest_run_state *r, rag_error *err)
{
	rag_rc rc;

	if (r->noutcomes == 0)
		return RAG_OK;
	if ((rc = catalog_begin(ic->cat, err)))
		return rc;
	for (size_t i = 0; i < r->noutcomes && !rc; i++)
		rc = catalog_object_save(ic->cat, &r->outcomes[i], err);
	if (rc || (rc = catalog_commit(ic->cat, err)))
		catalog_rollback(ic->cat);
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
	change ch = {0};
	rag_rc rc;

	/* An outcome alone (a failure, a skipped new object) is a version too:
	 * the catalog snapshot is the one record every writer, the query
	 * servers and `status --failed` share, and a failure only in the local
	 * catalog would be forgotten at the next follow, and retried at once. */
	if (r->ndocs == 0 && r->ntomb == 0 && (r->noutcomes == 0 || !ic->model))
		return save_outcomes_locally(ic, r, err);
	if (!ic->model) {
		if (r->nchunks == 0)
			return rag_error_set(err, RAG_EINVAL, "no model and no text to fit one on");
		if ((rc = fit_on_run(ic, r, sum, err)))
			return rc;
	}
	for (unsigned attempt = 1;; attempt++) {
		bool model_changed = false;

		if (!ch.built && (rc = build_change(ic, r, &ch, sum, err)))
			break;
		if ((rc = apply_change(ic, r, &ch, sum, err)))
			break;
		rc = publish(ic, &ch.segs, ch.born_ns, sum, err);
		if (rc != RAG_ECONFLICT && !(rc == RAG_ETIMEOUT && too_old_to_name(ic, ch.born_ns)))
			break;
		if (attempt >= COMMIT_MAX_ATTEMPTS) {
			rag_error_prefix(err, "gave up after %u attempts", attempt);
			break;
		}
		if (rc == RAG_ETIMEOUT) { /* GC may take our segments: new ones */
			RAG_INFO(ic->log, "%s: uploading them again", err->msg);
			ch.built = false;
		} else {
			sum->conflicts++;
		}
		rag_error_clear(err);
		if ((rc = rebase(ic, attempt, &model_changed, err)))
			break;
		if (model_changed) { /* our vectors are from another model: again */
			ch.built = false;
			sum->model_fitted = false;
		}
	}
	change_release(&ch);
	if (!rc)
		rc = ingest_compact(ic, sum, err);
	return rc;
}

/* ------------------------------------------------------ refit and import */

/* Below this many tokens since the fit, the unknown share says nothing yet. */
#define REFIT_MIN_TOKENS 200

bool ingest_refit_due(ingest_ctx *ic, char *why, size_t cap)
{
	const rag_config *cfg = ic->cfg;
	catalog_stats st;
	int64_t fitted, wanted, tokens, unknown;

	if (!ic->model || !embedder_fits(ic->model) || catalog_stats_get(ic->cat, &st, NULL))
		return false;
	wanted = meta_i64(ic, META_DIMS_WANTED);
	if (wanted && wanted != cfg->model.dims) {
		snprintf(why, cap, "model.dims is %lld, the model was fitted for %lld",
			 (long long)cfg->model.dims, (long long)wanted);
		return true;
	}
	/* the chunks the model was fitted from (it may have seen a sample) */
	if ((fitted = meta_i64(ic, META_FIT_CHUNKS)) <= 0)
		fitted = (int64_t)embedder_fit_docs(ic->model);
	if (cfg->ingest.refit_growth > 0 &&
	    (double)st.chunks > (double)fitted * (1.0 + cfg->ingest.refit_growth)) {
		snprintf(why, cap, "%lld live chunks, the model was fitted on %lld (ingest.refit_growth %g)",
			 (long long)st.chunks, (long long)fitted, cfg->ingest.refit_growth);
		return true;
	}
	tokens = meta_i64(ic, META_TOKENS);
	unknown = meta_i64(ic, META_UNKNOWN);
	if (cfg->ingest.refit_unknown > 0 && tokens >= REFIT_MIN_TOKENS &&
	    (double)unknown > (double)tokens * cfg->ingest.refit_unknown) {
		snprintf(why, cap,
			 "%.0f%% of the %lld tokens embedded since the fit are unknown to the model "
			 "(ingest.refit_unknown %g)",
			 100.0 * (double)unknown / (double)tokens, (long long)tokens,
			 cfg->ingest.refit_unknown);
		return true;
	}
	return false;
}

/* Re-embed every live chunk of the base with ic->model into new segments. */
static rag_rc reembed_once(ingest_ctx *ic, size_t fitted, ingest_summary *sum, rag_error *err)
{
	int64_t version = ic->latest.version + 1;
	cat_segment *live = NULL;
	size_t nlive = 0;
	rows r = {0};
	seg_set fresh = {0};
	rag_rc rc;

	if ((rc = catalog_each_chunk_row(ic->cat, NULL, rows_add, &r, err)) ||
	    (rc = catalog_segments_live(ic->cat, &live, &nlive, err)) ||
	    (rc = catalog_begin(ic->cat, err)))
		goto out;
	if ((rc = note_fit(ic, fitted, err))) {
		catalog_rollback(ic->cat);
		goto out;
	}
	if ((rc = rebuild_and_commit(ic, version, 'r', &r, live, nlive, &fresh, sum, err)))
		goto out;
	sum->segments_compacted = (int64_t)nlive;
	sum->chunks = (int64_t)r.n;
	rc = publish(ic, &fresh, 0, sum, err); /* segments uploaded just now */
out:
	free(live);
	rows_release(&r);
	seg_set_release(&fresh);
	return rc;
}

/*
 * Make ic->model (stored already) the index's model: every live chunk is
 * embedded again into a new version. A lost race re-embeds the winner's
 * chunks with that same model.
 */
static rag_rc reembed(ingest_ctx *ic, size_t fitted, ingest_summary *sum, rag_error *err)
{
	rag_rc rc;

	for (unsigned attempt = 1;; attempt++) {
		char model_key[sizeof(ic->model_key)];
		embedder *mine = ic->model;
		bool model_changed;

		if ((rc = reembed_once(ic, fitted, sum, err)) != RAG_ECONFLICT)
			break;
		sum->conflicts++;
		if (attempt >= COMMIT_MAX_ATTEMPTS) {
			rag_error_prefix(err, "re-embedding gave up after %u attempts", attempt);
			break;
		}
		rag_error_clear(err);
		/* keep our model across the rebase (which loads the winner's) */
		rag_strlcpy(model_key, ic->model_key, sizeof(model_key));
		ic->model = NULL;
		rc = rebase(ic, attempt, &model_changed, err);
		embedder_free(ic->model);
		ic->model = mine;
		rag_strlcpy(ic->model_key, model_key, sizeof(ic->model_key));
		if (rc)
			break;
	}
	return rc;
}

/* The model is fitted once, on the live chunks of the base. */
rag_rc ingest_refit(ingest_ctx *ic, ingest_summary *sum, rag_error *err)
{
	rows r = {0};
	char on[256];
	uint64_t t;
	size_t fitted;
	rag_rc rc;

	memset(sum, 0, sizeof(*sum));
	ingest_mark_pass(ic);
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
	fitted = r.n;
	rows_release(&r);
	if (rc)
		goto out;
	sum->model_fitted = true;
	rc = reembed(ic, fitted, sum, err);
out:
	rows_release(&r);
	return rc;
}

rag_rc ingest_use_model(ingest_ctx *ic, embedder *m, ingest_summary *sum, rag_error *err)
{
	catalog_stats st = {0};
	rag_rc rc;

	memset(sum, 0, sizeof(*sum));
	ingest_mark_pass(ic);
	if ((rc = publish_model(ic, m, err))) {
		embedder_free(m);
		return rc;
	}
	if ((rc = catalog_stats_get(ic->cat, &st, err)))
		return rc;
	return reembed(ic, (size_t)st.chunks, sum, err);
}

rag_rc ingest_refit_if_due(ingest_ctx *ic, ingest_summary *sum, char *why, size_t cap,
			   rag_error *err)
{
	memset(sum, 0, sizeof(*sum));
	why[0] = '\0';
	if (!ingest_refit_due(ic, why, cap))
		return RAG_OK;
	RAG_INFO(ic->log, "refitting the model: %s", why);
	return ingest_refit(ic, sum, err);
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
static rag_rc keep_names(const manifest *m, const char *key, keyset *keep)
{
	rag_rc rc = keys_add(keep, key);

	if (!rc)
		rc = keys_add(keep, m->catalog.key);
	for (size_t s = 0; s < m->nsegments && !rc; s++)
		for (int k = 0; k < MF_NOBJ && !rc; k++)
			rc = keys_add(keep, m->segments[s].obj[k].key);
	return rc;
}

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
	rc = keep_names(&m, key, keep);
	manifest_release(&m);
	return rc ? rag_error_set(err, rc, "gc: out of memory") : RAG_OK;
}

/* Chunk id claims above the newest version's high-water mark may be in use
 * (commit.h, invariant 7); those at or below it are never claimed again. */
static bool claim_in_use(const ingest_ctx *ic, const char *key, int64_t high_block)
{
	size_t rl = strlen(ic->root);
	int64_t block;

	if (strncmp(key, ic->root, rl) != 0 || strncmp(key + rl, "ids/", 4) != 0)
		return false;
	return !rag_parse_i64(key + rl + 4, &block) || block > high_block;
}

static double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An object's least possible age: Last-Modified has whole seconds, so the
 * object may be up to one second younger than it reads. */
static double age_s(double now, const s3_object *o)
{
	return now - (double)(o->last_modified + 1);
}

/*
 * A manifest is kept while a reader may still hold it: it is the newest, or
 * the manifest that superseded it is younger than the grace period (so a
 * server that has not reloaded yet keeps every object it reads). Objects no
 * kept manifest names are deleted once they are older than the grace
 * period themselves: a writer's commit in progress writes young objects.
 * Just before deleting, the newest manifest is read again and whatever it
 * names is spared (commit.h, invariant 6).
 */
rag_rc ingest_gc(ingest_ctx *ic, int64_t grace_s, int64_t *deleted, rag_error *err)
{
	s3_list l = {0};
	keyset keep = {0};
	const char **del = NULL;
	char key[1200], newest_key[1200];
	size_t ndel = 0;
	double now = wall_seconds();
	int64_t high_block, hint = 0;
	char hint_key[1200];
	commit_head head;
	manifest newest;
	rag_buf b;
	rag_rc rc;

	*deleted = 0;
	rag_buf_init(&b, COMMIT_MANIFEST_MAX);
	if ((rc = commit_read_newest(ic->s3, S3_OP("ingest.gc", NULL), ic->root, &head, &newest,
				     err)))
		goto out;
	rag_strlcpy(newest_key, head.manifest_key, sizeof(newest_key));
	high_block = commit_id_block(newest.ids_high > commit_max_chunk_id(&newest)
					     ? newest.ids_high : commit_max_chunk_id(&newest));
	manifest_release(&newest);
	/* the manifest LATEST names stays (commit.h, invariant 4) */
	if ((rc = commit_read_hint(ic->s3, S3_OP("ingest.gc", NULL), ic->root, &hint, err)) ||
	    (rc = mf_manifest_key(ic->root, hint, hint_key, sizeof(hint_key))))
		goto out;
	if ((rc = s3_list_objects(ic->s3, S3_OP("ingest.gc", NULL), ic->root, NULL, &l, err)))
		goto out;
	if (!(del = calloc(l.nobjects + 1, sizeof(*del))) ||
	    mf_latest_key(ic->root, key, sizeof(key)) || keys_add(&keep, key) ||
	    (size_t)snprintf(key, sizeof(key), "%swriter.lock", ic->root) >= sizeof(key) ||
	    keys_add(&keep, key)) {
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
		if (strcmp(o->key, newest_key) >= 0 || strcmp(o->key, hint_key) == 0 || !next ||
		    age_s(now, next) < (double)grace_s)
			rc = keep_manifest(ic, o->key, &keep, &b, err);
	}
	if (rc)
		goto out;
	/* invariant 6: what the newest manifest names now is never deleted */
	if ((rc = commit_read_newest(ic->s3, S3_OP("ingest.gc", NULL), ic->root, &head, &newest,
				     err)))
		goto out;
	if (head.version && keep_names(&newest, head.manifest_key, &keep)) {
		manifest_release(&newest);
		rc = rag_error_set(err, RAG_ENOMEM, "gc: out of memory");
		goto out;
	}
	manifest_release(&newest);
	qsort(keep.a, keep.n, sizeof(*keep.a), cmp_str);
	for (size_t i = 0; i < l.nobjects; i++) {
		const s3_object *o = &l.objects[i];
		if (keys_has(&keep, o->key) || age_s(now, o) < (double)grace_s ||
		    claim_in_use(ic, o->key, high_block))
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
