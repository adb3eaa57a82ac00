/*
 * verify.c — the checks verify.h lists, in its order. The state of one run
 * is a verifier; every check adds problems to its report and goes on, so
 * one run names as many differences as it finds. Only what stops every
 * check (no manifest, no source listing, no memory) is an error.
 */
#include "verify.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "rag_util.h"
#include "segment.h"
#include "vindex.h"


/* A chunk as found in a segment; text and vector borrowed from its buffers. */
typedef struct vchunk {
	int64_t id;
	char *key;            /* owned */
	int ordinal;
	const char *text;
	size_t text_len;
	const char *vec;      /* dims little-endian float32, unaligned */
	bool live;
} vchunk;

/* A live document of the catalog snapshot. */
typedef struct vdoc {
	int64_t doc_id;
	char *key;            /* owned */
	char *etag;           /* owned */
} vdoc;

/* A live chunk of the catalog snapshot. */
typedef struct vrow {
	int64_t id;
	char *key;            /* owned */
	int ordinal;
} vrow;

/* What the catalog snapshot holds (check 5, 6 and 8). */
typedef struct vcatalog {
	bool loaded;          /* false: unreadable (a problem says why) */
	catalog_stats st;
	vdoc *docs;           /* sorted by key, then doc id */
	size_t ndocs;
	vrow *rows;           /* sorted by id */
	size_t nrows, caprows;
	cat_object *objs;     /* sorted by key */
	size_t nobjs;
} vcatalog;

typedef struct verifier {
	s3_client *s3;
	const verify_opts *opts;
	verify_report *rep;
	manifest m;
	int dims;             /* from the first lists.idx */
	vchunk *chunks;
	size_t nchunks, capchunks;
	char **keep;          /* retained chunks.bin / lists.bin data */
	size_t nkeep, capkeep;
	vchunk **live;        /* live chunks sorted by (key, ordinal) */
	size_t nlive;
	vcatalog cat;
} verifier;

#define VERIFY_OP S3_OP("verify", NULL)

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(verifier *v, const char *fmt, ...)
{
	verify_report *r = v->rep;
	char msg[1024];
	va_list ap;

	r->problems++;
	if (r->nshown >= VERIFY_MAX_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* out of memory: still counted, only not shown */
	if ((r->shown[r->nshown] = rag_strdup(msg)))
		r->nshown++;
}

static void vcatalog_release(vcatalog *c)
{
	for (size_t i = 0; i < c->ndocs; i++) {
		free(c->docs[i].key);
		free(c->docs[i].etag);
	}
	free(c->docs);
	for (size_t i = 0; i < c->nrows; i++)
		free(c->rows[i].key);
	free(c->rows);
	cat_objects_free(c->objs, c->nobjs);
	memset(c, 0, sizeof(*c));
}

static void verifier_release(verifier *v)
{
	for (size_t i = 0; i < v->nchunks; i++)
		free(v->chunks[i].key);
	free(v->chunks);
	for (size_t i = 0; i < v->nkeep; i++)
		free(v->keep[i]);
	free(v->keep);
	free(v->live);
	vcatalog_release(&v->cat);
	manifest_release(&v->m);
}

void verify_report_release(verify_report *r)
{
	for (size_t i = 0; i < r->nkeys; i++)
		free(r->keys[i].key);
	free(r->keys);
	for (size_t i = 0; i < r->nshown; i++)
		free(r->shown[i]);
	memset(r, 0, sizeof(*r));
}

static bool keep_buffer(verifier *v, rag_buf *b, const char **data)
{
	size_t len;
	void *p = rag_grow(v->keep, &v->capkeep, v->nkeep + 1, sizeof(*v->keep));

	if (!p)
		return false;
	v->keep = p;
	*data = v->keep[v->nkeep++] = rag_buf_detach(b, &len);
	return true;
}

static vchunk *add_chunk(verifier *v)
{
	void *p = rag_grow(v->chunks, &v->capchunks, v->nchunks + 1, sizeof(*v->chunks));

	if (!p)
		return NULL;
	v->chunks = p;
	memset(&v->chunks[v->nchunks], 0, sizeof(vchunk));
	return &v->chunks[v->nchunks++];
}

/* ----------------------------------------------------- 1. the version */

static rag_rc read_newest(verifier *v, rag_error *err)
{
	commit_head head = {0};
	rag_rc rc = commit_read_newest(v->s3, VERIFY_OP, v->opts->root, &head, &v->m, err);

	if (rc) {
		rag_error_prefix(err, "verify: the newest version under \"%s\"", v->opts->root);
		return rc;
	}
	v->rep->version = head.version;
	rag_strlcpy(v->rep->manifest_key, head.manifest_key, sizeof(v->rep->manifest_key));
	if (head.version == 0)
		return RAG_OK;
	if (v->m.version != head.version)
		problem(v, "manifest \"%s\" says version %" PRId64 ", it is committed as %" PRId64,
			head.manifest_key, v->m.version, head.version);
	if (strcmp(v->m.index, v->opts->index_name) != 0)
		problem(v, "manifest \"%s\" belongs to index \"%s\", not \"%s\"", head.manifest_key,
			v->m.index, v->opts->index_name);
	return RAG_OK;
}

/* ----------------------------------------------------- 2. the objects */

typedef struct head_item {
	const char *key;
	int64_t size;         /* -1: not recorded */
	rag_rc rc;
	rag_error err;
	uint64_t got;
} head_item;

typedef struct head_job {
	s3_client *s3;
	head_item *items;
} head_job;

static rag_rc head_one(void *ctx, size_t i)
{
	head_job *j = ctx;
	head_item *it = &j->items[i];
	s3_object info = {0};

	it->rc = s3_head(j->s3, VERIFY_OP, it->key, &info, &it->err);
	it->got = info.size;
	return RAG_OK; /* every outcome is looked at below */
}

static rag_rc check_objects(verifier *v, rag_error *err)
{
	size_t n = 2 + v->m.nsegments * MF_NOBJ, k = 0;
	head_item *items = calloc(n, sizeof(*items));
	head_job j = {.s3 = v->s3, .items = items};

	if (!items)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	items[k++] = (head_item){.key = v->m.catalog.key, .size = (int64_t)v->m.catalog.size};
	items[k++] = (head_item){.key = v->m.model.key, .size = -1};
	for (size_t s = 0; s < v->m.nsegments; s++)
		for (int o = 0; o < MF_NOBJ; o++)
			items[k++] = (head_item){.key = v->m.segments[s].obj[o].key,
						 .size = (int64_t)v->m.segments[s].obj[o].size};
	s3_parallel(v->s3, n, 0, head_one, &j);
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc == RAG_ENOTFOUND)
			problem(v, "object \"%s\" named by manifest %" PRId64 " is missing",
				items[i].key, v->m.version);
		else if (items[i].rc)
			problem(v, "HEAD \"%s\": %s", items[i].key, items[i].err.msg);
		else if (items[i].size >= 0 && items[i].got != (uint64_t)items[i].size)
			problem(v, "object \"%s\" has %" PRIu64 " bytes, the manifest says %" PRId64,
				items[i].key, items[i].got, items[i].size);
	}
	v->rep->objects = (int64_t)n;
	free(items);
	return RAG_OK;
}

/* ---------------------------------------------------- 3. each segment */

/* What one segment's list check needs. */
typedef struct list_ctx {
	verifier *v;
	const mf_segment *seg;
	const seg_ptr *ptrs;
	size_t nptrs;
	size_t first;         /* the segment's first entry in v->chunks */
	unsigned char *seen;  /* per ptrs entry */
	float *vec;           /* dims floats of scratch */
} list_ctx;

/* Member k of list i: in chunks.idx, once, pointing where it does, finite. */
static void check_member(list_ctx *c, const seg_list_view *l, int i, uint32_t k)
{
	verifier *v = c->v;
	int64_t id = seg_list_id(l, k);
	const seg_ptr *sp = segment_find_ptr(c->ptrs, c->nptrs, id);
	uint64_t rec_off;
	uint32_t rec_len;
	size_t at;

	if (!sp) {
		problem(v, "segment \"%s\": chunk %" PRId64 " is in list %d but not in chunks.idx",
			c->seg->id, id, i);
		return;
	}
	at = (size_t)(sp - c->ptrs);
	if (c->seen[at]++) {
		problem(v, "segment \"%s\": chunk %" PRId64 " is in the lists twice", c->seg->id, id);
		return;
	}
	seg_list_record(l, k, &rec_off, &rec_len);
	if (rec_off != sp->rec_off || rec_len != sp->rec_len)
		problem(v, "segment \"%s\": list %d points chunk %" PRId64 " at [%" PRIu64 ", +%u), "
			"chunks.idx at [%" PRIu64 ", +%u)", c->seg->id, i, id, rec_off, rec_len,
			sp->rec_off, sp->rec_len);
	seg_list_vector(l, k, c->vec);
	for (int d = 0; d < l->dims; d++)
		if (!isfinite(c->vec[d])) {
			problem(v, "segment \"%s\": chunk %" PRId64 " has a non-finite vector",
				c->seg->id, id);
			break;
		}
	v->chunks[c->first + at].vec = seg_list_vector_bytes(l, k);
}

/* lists.idx against the manifest and the model; true when the lists can be read. */
static bool check_lists_idx(verifier *v, const mf_segment *seg, const seg_lists *l,
			    size_t bin_len)
{
	if (v->dims == 0)
		v->dims = l->dims;
	if (l->dims != v->dims || l->dims != v->m.model.dims)
		problem(v, "segment \"%s\": lists.idx has %d dims, the model %d", seg->id, l->dims,
			v->m.model.dims);
	if (l->nlist != seg->nlist)
		problem(v, "segment \"%s\": lists.idx has %d lists, the manifest says %d", seg->id,
			l->nlist, seg->nlist);
	if (l->offsets[0] != 0 || l->offsets[l->nlist] != bin_len) {
		problem(v, "segment \"%s\": lists.idx spans [%" PRIu64 ", %" PRIu64 "), lists.bin "
			"has %zu bytes", seg->id, l->offsets[0], l->offsets[l->nlist], bin_len);
		return false;
	}
	return true;
}

/* The inverted lists of seg; fills the vec pointers of its chunks. */
static void check_lists(verifier *v, const mf_segment *seg, const char *idx, size_t idx_len,
			const char *bin, size_t bin_len, const seg_ptr *ptrs, size_t nptrs,
			size_t first)
{
	list_ctx c = {.v = v, .seg = seg, .ptrs = ptrs, .nptrs = nptrs, .first = first};
	seg_lists l = {0};
	rag_error e = {0};

	if (segment_parse_lists_idx(idx, idx_len, &l, &e)) {
		problem(v, "segment \"%s\": %s", seg->id, e.msg);
		return;
	}
	c.seen = calloc(nptrs + 1, 1);
	c.vec = malloc((size_t)l.dims * sizeof(float));
	if (!c.seen || !c.vec) {
		problem(v, "segment \"%s\": out of memory", seg->id);
		goto out;
	}
	if (!check_lists_idx(v, seg, &l, bin_len))
		goto out;
	for (int i = 0; i < l.nlist; i++) {
		seg_list_view lv;

		if (segment_list_view(bin + l.offsets[i], (size_t)(l.offsets[i + 1] - l.offsets[i]),
				      l.dims, &lv, &e)) {
			problem(v, "segment \"%s\": list %d: %s", seg->id, i, e.msg);
			continue;
		}
		for (uint32_t k = 0; k < lv.count; k++)
			check_member(&c, &lv, i, k);
	}
	for (size_t k = 0; k < nptrs; k++)
		if (!c.seen[k])
			problem(v, "segment \"%s\": chunk %" PRId64 " is in chunks.idx but in no list",
				seg->id, ptrs[k].id);
out:
	seg_lists_release(&l);
	free(c.seen);
	free(c.vec);
}

static void check_faiss(verifier *v, const mf_segment *seg, const char *data, size_t len)
{
	vindex *vi = NULL;
	rag_error e = {0};

	if (vindex_load(data, len, &vi, &e)) {
		problem(v, "segment \"%s\": index.faiss: %s", seg->id, e.msg);
		return;
	}
	if ((int64_t)vindex_count(vi) != seg->count)
		problem(v, "segment \"%s\": index.faiss holds %zu vectors, the manifest says %" PRId64,
			seg->id, vindex_count(vi), seg->count);
	if (vindex_dims(vi) != v->m.model.dims)
		problem(v, "segment \"%s\": index.faiss has %d dims, the model %d", seg->id,
			vindex_dims(vi), v->m.model.dims);
	if ((vindex_kind_of(vi) == VINDEX_IVF) != (strcmp(seg->kind, "ivf") == 0) ||
	    vindex_nlist(vi) != seg->nlist)
		problem(v, "segment \"%s\": index.faiss is %s with %d lists, the manifest says %s "
			"with %d", seg->id, vindex_kind_of(vi) == VINDEX_IVF ? "ivf" : "flat",
			vindex_nlist(vi), seg->kind, seg->nlist);
	vindex_free(vi);
}

/* chunks.idx against the manifest's count and id range. */
static void check_chunk_idx(verifier *v, const mf_segment *seg, const seg_ptr *ptrs,
			    size_t nptrs)
{
	if ((int64_t)nptrs != seg->count ||
	    (nptrs && (ptrs[0].id != seg->first_chunk || ptrs[nptrs - 1].id != seg->last_chunk)))
		problem(v, "segment \"%s\": chunks.idx has %zu chunks [%" PRId64 ", %" PRId64 "], the "
			"manifest says %" PRId64 " [%" PRId64 ", %" PRId64 "]", seg->id, nptrs,
			nptrs ? ptrs[0].id : 0, nptrs ? ptrs[nptrs - 1].id : 0, seg->count,
			seg->first_chunk, seg->last_chunk);
}

/* One chunk record of chunks.bin into c (key taken over). */
static void check_record(verifier *v, const mf_segment *seg, const seg_ptr *p, const char *bin,
			 size_t bin_len, vchunk *c)
{
	seg_record rec;
	rag_error e = {0};

	c->id = p->id;
	c->ordinal = -1;
	if (p->rec_off > bin_len || p->rec_len > bin_len - p->rec_off) {
		problem(v, "segment \"%s\": chunk %" PRId64 " at [%" PRIu64 ", +%u) lies outside "
			"chunks.bin (%zu bytes)", seg->id, p->id, p->rec_off, p->rec_len, bin_len);
		return;
	}
	if (segment_parse_record(bin + p->rec_off, p->rec_len, &rec, &e)) {
		problem(v, "segment \"%s\": chunk %" PRId64 ": %s", seg->id, p->id, e.msg);
		return;
	}
	if (rec.id != p->id)
		problem(v, "segment \"%s\": the record of chunk %" PRId64 " says id %" PRId64,
			seg->id, p->id, rec.id);
	if (rec.text_len != rec.len)
		problem(v, "segment \"%s\": chunk %" PRId64 " has %zu text bytes, its header says "
			"%" PRIu64, seg->id, p->id, rec.text_len, rec.len);
	if (!rec.key[0])
		problem(v, "segment \"%s\": chunk %" PRId64 " has an empty key", seg->id, p->id);
	c->key = rec.key;
	rec.key = NULL;
	c->ordinal = rec.ordinal;
	c->text = rec.text;
	c->text_len = rec.text_len;
	seg_record_release(&rec);
}

/* GET the segment's objects; false (problems said) if one is not there. */
static bool fetch_segment(verifier *v, const mf_segment *seg, s3_get_req *reqs)
{
	bool ok = true;

	memset(reqs, 0, MF_NOBJ * sizeof(*reqs));
	for (int k = 0; k < MF_NOBJ; k++) {
		reqs[k].key = seg->obj[k].key;
		rag_buf_init(&reqs[k].buf, seg->obj[k].size + 1);
	}
	s3_get_many(v->s3, VERIFY_OP, reqs, MF_NOBJ, MF_NOBJ);
	for (int k = 0; k < MF_NOBJ; k++)
		if (reqs[k].rc) {
			/* missing ones were reported by the HEADs already */
			if (reqs[k].rc != RAG_ENOTFOUND)
				problem(v, "GET \"%s\": %s", reqs[k].key, reqs[k].err.msg);
			ok = false;
		}
	return ok;
}

static rag_rc check_segment(verifier *v, const mf_segment *seg, rag_error *err)
{
	s3_get_req reqs[MF_NOBJ];
	seg_ptr *ptrs = NULL;
	size_t nptrs = 0, first = v->nchunks, bin_len, lbin_len;
	const char *bin = NULL, *lbin = NULL;
	rag_error e = {0};
	rag_rc rc = RAG_OK;

	if (!fetch_segment(v, seg, reqs))
		goto out;
	if (seg->nlist < 1 || (strcmp(seg->kind, "flat") == 0 && seg->nlist != 1))
		problem(v, "segment \"%s\": kind %s with %d lists", seg->id, seg->kind, seg->nlist);
	check_faiss(v, seg, reqs[MF_INDEX].buf.data, reqs[MF_INDEX].buf.len);
	if (segment_parse_chunk_idx(reqs[MF_CHUNKS_IDX].buf.data, reqs[MF_CHUNKS_IDX].buf.len,
				    &ptrs, &nptrs, &e)) {
		problem(v, "segment \"%s\": %s", seg->id, e.msg);
		goto out;
	}
	check_chunk_idx(v, seg, ptrs, nptrs);
	bin_len = reqs[MF_CHUNKS].buf.len;
	lbin_len = reqs[MF_LISTS].buf.len;
	if (!keep_buffer(v, &reqs[MF_CHUNKS].buf, &bin) ||
	    !keep_buffer(v, &reqs[MF_LISTS].buf, &lbin)) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nptrs; i++) {
		vchunk *c = add_chunk(v);
		if (!c) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		check_record(v, seg, &ptrs[i], bin, bin_len, c);
	}
	check_lists(v, seg, reqs[MF_LISTS_IDX].buf.data, reqs[MF_LISTS_IDX].buf.len, lbin,
		    lbin_len, ptrs, nptrs, first);
	if (strcmp(seg->kind, "ivf") == 0)
		v->rep->nivf++;
	else
		v->rep->nflat++;
out:
	free(ptrs);
	for (int k = 0; k < MF_NOBJ; k++)
		rag_buf_release(&reqs[k].buf);
	return rc;
}

/* --------------------------------------------- 4. across the segments */

static int by_id(const void *a, const void *b)
{
	const vchunk *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int by_key_ordinal(const void *a, const void *b)
{
	const vchunk *x = *(const vchunk *const *)a, *y = *(const vchunk *const *)b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->ordinal < y->ordinal ? -1 : x->ordinal > y->ordinal;
}

/* Chunk ids once; which are live; v->live sorted by (key, ordinal). */
static rag_rc mark_live(verifier *v, rag_error *err)
{
	size_t k = 0;

	if (v->nchunks) /* qsort's array must not be NULL, even for 0 */
		qsort(v->chunks, v->nchunks, sizeof(*v->chunks), by_id);
	for (size_t i = 0; i < v->nchunks; i++) {
		if (i && v->chunks[i].id == v->chunks[i - 1].id)
			problem(v, "chunk id %" PRId64 " is in two segments", v->chunks[i].id);
		v->chunks[i].live = !manifest_is_tombstoned(&v->m, v->chunks[i].id);
		if (!v->chunks[i].live)
			v->rep->tombstoned++;
	}
	if (!(v->live = malloc((v->nchunks + 1) * sizeof(*v->live))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < v->nchunks; i++)
		if (v->chunks[i].live && v->chunks[i].key)
			v->live[k++] = &v->chunks[i];
	qsort(v->live, k, sizeof(*v->live), by_key_ordinal);
	v->nlive = k;
	v->rep->chunks = (int64_t)v->nchunks;
	v->rep->live_chunks = (int64_t)k;
	return RAG_OK;
}

/* Per-document checks over the live chunks; counts the live documents. */
static void check_documents(verifier *v)
{
	vchunk **live = v->live;
	int64_t docs = 0;

	for (size_t i = 0; i < v->nlive; i++) {
		bool new_doc = i == 0 || strcmp(live[i]->key, live[i - 1]->key) != 0;
		if (new_doc) {
			docs++;
			if (live[i]->ordinal != 0)
				problem(v, "document \"%s\": its first live chunk has ordinal %d, not 0",
					live[i]->key, live[i]->ordinal);
		} else if (live[i]->ordinal == live[i - 1]->ordinal) {
			problem(v, "document \"%s\": chunk ordinal %d is live twice (chunks %" PRId64
				" and %" PRId64 ")", live[i]->key, live[i]->ordinal, live[i - 1]->id,
				live[i]->id);
		} else if (live[i]->ordinal != live[i - 1]->ordinal + 1) {
			problem(v, "document \"%s\": live chunk ordinals jump from %d to %d",
				live[i]->key, live[i - 1]->ordinal, live[i]->ordinal);
		}
		if (!live[i]->vec)
			problem(v, "chunk %" PRId64 " of \"%s\" has no vector", live[i]->id,
				live[i]->key);
	}
	v->rep->live_documents = docs;
}

/* ------------------------------------------- the catalog snapshot's data */

/*
 * The live documents (key, ETag) of the snapshot at path. The catalog
 * module has no call that lists them, so they are read here with one
 * read-only query on its documents table (schema: catalog.c, migration 1).
 */
static rag_rc load_live_docs(const char *path, vcatalog *c, rag_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	rag_rc rc = RAG_OK;
	int s;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT doc_id, key, etag FROM documents WHERE live = 1"
			       " ORDER BY key, doc_id", -1, &st, NULL) != SQLITE_OK) {
		rc = rag_error_set(err, RAG_ECORRUPT, "documents: %s", sqlite3_errmsg(db));
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		vdoc *d = rag_grow(c->docs, &cap, c->ndocs + 1, sizeof(*d));
		if (!d) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		c->docs = d;
		d = &c->docs[c->ndocs++];
		d->doc_id = sqlite3_column_int64(st, 0);
		d->key = rag_strdup((const char *)sqlite3_column_text(st, 1));
		d->etag = rag_strdup((const char *)sqlite3_column_text(st, 2));
		if (!d->key || !d->etag) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (s != SQLITE_DONE)
		rc = rag_error_set(err, RAG_ECORRUPT, "documents: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static rag_rc add_row(void *ctx, const cat_chunk_row *row)
{
	vcatalog *c = ctx;
	vrow *r = rag_grow(c->rows, &c->caprows, c->nrows + 1, sizeof(*r));

	if (!r)
		return RAG_ENOMEM;
	c->rows = r;
	r = &c->rows[c->nrows];
	r->id = row->id;
	r->ordinal = row->ordinal;
	if (!(r->key = rag_strdup(row->key ? row->key : "")))
		return RAG_ENOMEM;
	c->nrows++;
	return RAG_OK;
}

/* Stats, live chunks and objects through the catalog module. */
static rag_rc load_catalog(const char *path, vcatalog *c, rag_error *err)
{
	catalog *cat = NULL;
	rag_rc rc;

	if ((rc = catalog_open(path, &cat, err)) || (rc = catalog_stats_get(cat, &c->st, err)) ||
	    (rc = catalog_objects_load(cat, &c->objs, &c->nobjs, err)))
		goto out;
	if ((rc = catalog_each_chunk_row(cat, NULL, add_row, c, err)) == RAG_ENOMEM)
		rag_error_set(err, rc, "out of memory");
out:
	catalog_close(cat);
	return rc;
}

static void unlink_snapshot(const char *path)
{
	static const char *const sides[] = {"", "-wal", "-shm", "-journal", ".part"};
	char p[4400];

	for (size_t i = 0; i < RAG_ARRAY_LEN(sides); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sides[i]);
		unlink(p);
	}
}

/* Fill v->cat from the manifest's catalog snapshot; a problem if it cannot. */
static void read_snapshot(verifier *v)
{
	const char *dir = v->opts->tmp_dir ? v->opts->tmp_dir : P_tmpdir;
	char path[4200];
	rag_error e = {0};
	int fd;

	snprintf(path, sizeof(path), "%s/verify-snapshot-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0) {
		problem(v, "catalog snapshot \"%s\": cannot create a temporary file in \"%s\"",
			v->m.catalog.key, dir);
		return;
	}
	close(fd);
	if (s3_get_file(v->s3, VERIFY_OP, v->m.catalog.key, path, NULL, &e) ||
	    load_live_docs(path, &v->cat, &e) || load_catalog(path, &v->cat, &e)) {
		/* a missing snapshot was reported by the HEADs already */
		if (e.rc != RAG_ENOTFOUND)
			problem(v, "catalog snapshot \"%s\": %s", v->m.catalog.key, e.msg);
		vcatalog_release(&v->cat);
	} else {
		v->cat.loaded = true;
	}
	unlink_snapshot(path);
}

/* ------------------------------------------------------------ 5. stats */

static void check_stats(verifier *v)
{
	int64_t docs = v->rep->live_documents, chunks = v->rep->live_chunks;

	if (docs != v->m.documents || chunks != v->m.chunks)
		problem(v, "the segments hold %" PRId64 " live documents and %" PRId64 " live chunks, "
			"manifest %" PRId64 " says %" PRId64 " and %" PRId64, docs, chunks,
			v->m.version, v->m.documents, v->m.chunks);
	if (v->cat.loaded && (v->cat.st.documents != docs || v->cat.st.chunks != chunks))
		problem(v, "catalog snapshot \"%s\" has %" PRId64 " live documents and %" PRId64
			" chunks, the segments %" PRId64 " and %" PRId64, v->m.catalog.key,
			v->cat.st.documents, v->cat.st.chunks, docs, chunks);
}

/* ------------------------------------------------ 6. catalog snapshot */

static void check_duplicate_docs(verifier *v)
{
	const vdoc *d = v->cat.docs;

	for (size_t i = 1; i < v->cat.ndocs; i++)
		if (strcmp(d[i].key, d[i - 1].key) == 0)
			problem(v, "\"%s\" has two live documents in the catalog snapshot (doc %" PRId64
				" at ETag %s, doc %" PRId64 " at ETag %s)", d[i].key, d[i - 1].doc_id,
				d[i - 1].etag, d[i].doc_id, d[i].etag);
}

/* Merge the snapshot's live chunks (by id) with the segments' chunks (by id). */
static void check_catalog_chunks(verifier *v)
{
	const vrow *r = v->cat.rows;
	const vchunk *c = v->chunks;
	size_t i = 0, j = 0;

	while (i < v->cat.nrows || j < v->nchunks) {
		if (j < v->nchunks && !c[j].key) {
			/* an unreadable record: check 3 named it */
			if (i < v->cat.nrows && r[i].id == c[j].id)
				i++;
			j++;
		} else if (j < v->nchunks && !c[j].live) {
			if (i < v->cat.nrows && r[i].id == c[j].id) {
				problem(v, "chunk %" PRId64 " (\"%s\" #%d) is live in the catalog snapshot "
					"but tombstoned in manifest %" PRId64, r[i].id, r[i].key,
					r[i].ordinal, v->m.version);
				i++;
			}
			j++;
		} else if (j >= v->nchunks || (i < v->cat.nrows && r[i].id < c[j].id)) {
			problem(v, "chunk %" PRId64 " (\"%s\" #%d) is live in the catalog snapshot but "
				"in no segment", r[i].id, r[i].key, r[i].ordinal);
			i++;
		} else if (i >= v->cat.nrows || c[j].id < r[i].id) {
			problem(v, "chunk %" PRId64 " (\"%s\" #%d) is live in the segments but not in "
				"the catalog snapshot", c[j].id, c[j].key, c[j].ordinal);
			j++;
		} else {
			if (strcmp(r[i].key, c[j].key) != 0 || r[i].ordinal != c[j].ordinal)
				problem(v, "chunk %" PRId64 " is \"%s\" #%d in the segments, \"%s\" #%d "
					"in the catalog snapshot", c[j].id, c[j].key, c[j].ordinal,
					r[i].key, r[i].ordinal);
			i++;
			j++;
		}
	}
}

/* ------------------------------------------------------------ 7. model */

static void check_model(verifier *v)
{
	embedder *em = NULL;
	rag_error e = {0};

	if (modelobj_open(v->s3, VERIFY_OP, v->m.model.key, &em, &e)) {
		/* a missing model was reported by the HEADs already */
		if (e.rc != RAG_ENOTFOUND)
			problem(v, "%s", e.msg);
	} else if (strcmp(embedder_version(em), v->m.model.version) != 0 ||
		   embedder_dims(em) != v->m.model.dims) {
		problem(v, "model \"%s\" is version %s with %d dims, the manifest says %s with %d",
			v->m.model.key, embedder_version(em), embedder_dims(em), v->m.model.version,
			v->m.model.dims);
	}
	embedder_free(em);
}

/* ----------------------------------------------------------- 8. source */

/* A directory marker, not a document: ingest skips these keys too. */
static bool is_marker(const char *key)
{
	size_t n = strlen(key);

	return n == 0 || key[n - 1] == '/';
}

static int object_by_key(const void *a, const void *b)
{
	return strcmp(((const s3_object *)a)->key, ((const s3_object *)b)->key);
}

static const cat_object *find_object(const vcatalog *c, const char *key)
{
	size_t lo = 0, hi = c->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->objs[mid].key, key);
		if (cmp == 0)
			return &c->objs[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Legitimately not indexed: the catalog's outcome at the current ETag says so. */
static bool excused(const cat_object *o, const s3_object *s)
{
	return o && strcmp(o->etag, s->etag) == 0 &&
	       (o->status == OBJ_SKIPPED || o->status == OBJ_REJECTED || o->status == OBJ_FAILED);
}

/* One source object against its live documents docs[0, n). */
static void check_source_object(verifier *v, const s3_object *s, const vdoc *docs, size_t n)
{
	const cat_object *o = find_object(&v->cat, s->key);

	if (excused(o, s)) {
		v->rep->source_excused++;
		if (n && o->status != OBJ_FAILED)
			problem(v, "source object \"%s\" is %s at its current ETag %s, yet document %"
				PRId64 " (ETag %s) is live", s->key, obj_status_name(o->status),
				s->etag, docs[0].doc_id, docs[0].etag);
		return;
	}
	if (n == 0) {
		if (o)
			problem(v, "source object \"%s\" (ETag %s) is not indexed (the catalog says %s "
				"at ETag %s)", s->key, s->etag, obj_status_name(o->status), o->etag);
		else
			problem(v, "source object \"%s\" (ETag %s) is not indexed (the catalog has "
				"no record of it)", s->key, s->etag);
		return;
	}
	/* n > 1 is check 6's: one line for it is enough */
	if (strcmp(docs[0].etag, s->etag) != 0)
		problem(v, "source object \"%s\" is indexed at ETag %s, the source has ETag %s",
			s->key, docs[0].etag, s->etag);
	else
		v->rep->source_indexed++;
}

/* Merge the sorted listing with the live documents (sorted by key). */
static void compare_source(verifier *v, const s3_list *l)
{
	const vdoc *d = v->cat.docs;
	size_t i = 0, j = 0, nd = v->cat.ndocs;

	while (i < l->nobjects || j < nd) {
		const s3_object *s = i < l->nobjects ? &l->objects[i] : NULL;
		int cmp = !s ? 1 : j >= nd ? -1 : strcmp(s->key, d[j].key);
		size_t k = j;

		if (s && is_marker(s->key)) {
			v->rep->source_markers++;
			i++;
			continue;
		}
		if (cmp > 0) {
			problem(v, "live document \"%s\" (doc %" PRId64 ", ETag %s) is not in the source",
				d[j].key, d[j].doc_id, d[j].etag);
			j++;
			continue;
		}
		v->rep->source_objects++;
		while (cmp == 0 && k < nd && strcmp(d[k].key, s->key) == 0)
			k++;
		check_source_object(v, s, d + j, k - j);
		i++;
		j = k;
	}
}

/* Append src's objects to dst (src's keys taken over). */
static rag_rc append_listing(s3_list *dst, s3_list *src, rag_error *err)
{
	s3_object *p = realloc(dst->objects, (dst->nobjects + src->nobjects + 1) * sizeof(*p));

	if (!p)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	dst->objects = p;
	memcpy(dst->objects + dst->nobjects, src->objects, src->nobjects * sizeof(*p));
	dst->nobjects += src->nobjects;
	src->nobjects = 0; /* taken over */
	return RAG_OK;
}

static rag_rc check_source(verifier *v, rag_error *err)
{
	const rag_scope *sc = v->opts->source;
	s3_list l = {0};
	char where[512];
	rag_rc rc = RAG_OK;

	/* every prefix, whatever shard: the index answers for all of them */
	for (size_t i = 0; i < sc->nprefixes && !rc; i++) {
		s3_list one = {0};
		if ((rc = s3_list_objects(v->s3, VERIFY_OP, sc->prefixes[i], NULL, &one, err)))
			rag_error_prefix(err, "verify: listing the source \"%s\"", sc->prefixes[i]);
		else
			rc = append_listing(&l, &one, err);
		s3_list_release(&one);
	}
	if (rc) {
		s3_list_release(&l);
		return rc;
	}
	if (l.nobjects)
		qsort(l.objects, l.nobjects, sizeof(*l.objects), object_by_key);
	if (v->rep->version > 0 && !v->cat.loaded)
		problem(v, "the source %s cannot be compared: the catalog snapshot \"%s\" was not "
			"read", rag_scope_describe(sc, where, sizeof(where)), v->m.catalog.key);
	else
		compare_source(v, &l);
	v->rep->source_checked = true;
	s3_list_release(&l);
	return RAG_OK;
}

/* ----------------------------------------------------- keys and digest */

static rag_rc collect_keys(verifier *v, rag_error *err)
{
	verify_report *r = v->rep;
	size_t cap = 0;

	for (size_t i = 0, run = 1; i < v->nlive; i++, run++) {
		verify_key *k;
		if (i + 1 < v->nlive && strcmp(v->live[i]->key, v->live[i + 1]->key) == 0)
			continue;
		if (!(k = rag_grow(r->keys, &cap, r->nkeys + 1, sizeof(*k))))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		r->keys = k;
		if (!(r->keys[r->nkeys].key = rag_strdup(v->live[i]->key)))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		r->keys[r->nkeys++].chunks = (int64_t)run;
		run = 0;
	}
	return RAG_OK;
}

static void put_u32(EVP_MD_CTX *h, uint32_t x) { EVP_DigestUpdate(h, &x, 4); }
static void put_u64(EVP_MD_CTX *h, uint64_t x) { EVP_DigestUpdate(h, &x, 8); }

static rag_rc digest(const verifier *v, char hex[65], rag_error *err)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok;

	if (!h)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	ok = EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < v->nlive; i++) {
		const vchunk *c = v->live[i];
		size_t klen = strlen(c->key);
		put_u32(h, (uint32_t)klen);
		EVP_DigestUpdate(h, c->key, klen);
		put_u32(h, (uint32_t)c->ordinal);
		put_u64(h, c->text_len);
		EVP_DigestUpdate(h, c->text, c->text_len);
		put_u32(h, (uint32_t)v->dims);
		if (c->vec)
			EVP_DigestUpdate(h, c->vec, (size_t)v->dims * 4);
	}
	ok = ok && EVP_DigestFinal_ex(h, md, &mdlen) && mdlen == 32;
	EVP_MD_CTX_free(h);
	if (!ok)
		return rag_error_set(err, RAG_EINTERNAL, "verify: SHA-256 failed");
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return RAG_OK;
}

/* ------------------------------------------------------------- the run */

/* Checks 2-7 on the committed version v->m. */
static rag_rc check_version(verifier *v, rag_error *err)
{
	verify_report *r = v->rep;
	rag_rc rc;

	rag_strlcpy(r->model_name, v->m.model.name, sizeof(r->model_name));
	rag_strlcpy(r->model_version, v->m.model.version, sizeof(r->model_version));
	r->dims = v->m.model.dims;
	r->segments = v->m.nsegments;
	if ((rc = check_objects(v, err)))
		return rc;
	for (size_t s = 0; s < v->m.nsegments; s++)
		if ((rc = check_segment(v, &v->m.segments[s], err)))
			return rc;
	if ((rc = mark_live(v, err)))
		return rc;
	check_documents(v);
	read_snapshot(v);
	check_stats(v);
	if (v->cat.loaded) {
		check_duplicate_docs(v);
		check_catalog_chunks(v);
	}
	check_model(v);
	return RAG_OK;
}

rag_rc verify_index(s3_client *s3, const verify_opts *opts, verify_report *out,
		    rag_error *err)
{
	verifier v = {.s3 = s3, .opts = opts, .rep = out};
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_newest(&v, err)))
		goto out;
	if (out->version > 0 && (rc = check_version(&v, err)))
		goto out;
	if (opts->source && (rc = check_source(&v, err)))
		goto out;
	if (opts->keys && (rc = collect_keys(&v, err)))
		goto out;
	if (opts->digest)
		rc = digest(&v, out->digest, err);
out:
	verifier_release(&v);
	return rc;
}
