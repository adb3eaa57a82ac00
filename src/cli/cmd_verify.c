/*
 * ragmap verify [--digest] — check the committed index version against the
 * commit protocol (manifest.h) and the object formats (segment.h), reading
 * only what LATEST's manifest names, exactly as a query server would.
 *
 * What is checked, in order:
 *  1. LATEST parses and names manifests/<version>.json; that manifest parses,
 *     carries the same version and this index's name.
 *  2. Every object the manifest names (5 per segment, the catalog snapshot,
 *     the model weights) exists with the recorded size (HEAD).
 *  3. Per segment: index.faiss loads with the recorded count, kind and
 *     dimensions; every chunks.idx entry lies inside chunks.bin and its
 *     record parses with the same id; lists.idx matches lists.bin; every
 *     inverted list has a consistent length and its record table points
 *     where chunks.idx does; the ids in the lists are exactly the ids in
 *     chunks.idx, each once.
 *  4. Across segments: no chunk id twice; among live (non-tombstoned)
 *     chunks no (key, ordinal) twice and every document's ordinals are
 *     0..n-1; live documents and chunks equal the manifest's stats and the
 *     catalog snapshot's.
 *  5. The model weights load (checksum) and have the version and dimensions
 *     the manifest records.
 *
 * --digest adds one line "digest <hex>": SHA-256 over the live chunks sorted
 * by (key, ordinal), each as u32 key length | key | u32 ordinal | u64 text
 * length | text | u32 dims | dims float32 (all little-endian). Chunk ids,
 * segment layout and versions are left out, so two indexes that hold the
 * same documents, texts and vectors have the same digest.
 *
 * Storage requests are counted under the stage "verify". Nothing is written,
 * locally (but for a temporary copy of the catalog snapshot) or in the store.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "embed.h"
#include "manifest.h"
#include "rag_util.h"
#include "s3.h"
#include "segment.h"
#include "vindex.h"

#define SMALL_MAX (64u << 20)           /* LATEST, manifests */
#define MAX_SHOWN_PROBLEMS 50

static const char verify_usage[] =
	"usage: ragmap verify [--digest] [--keys] [--config FILE]\n"
	"  Check the index version LATEST names: every object the manifest names\n"
	"  exists with its size, every segment parses and is consistent, no chunk\n"
	"  is duplicated, counts match the manifest. Exit 0 when all is well, 1\n"
	"  with one line per problem otherwise.\n"
	"  --digest  also print \"digest <hex>\": SHA-256 of the live chunks (key,\n"
	"            ordinal, text, vector) sorted by (key, ordinal)\n"
	"  --keys    also print \"live <chunks> <key>\" for every live document\n";

/* A chunk as found in a segment; text and vector borrowed from its buffers. */
typedef struct vchunk {
	int64_t id;
	char *key;            /* owned */
	int ordinal;
	const char *text;
	size_t text_len;
	const char *vec;      /* dims float32, unaligned */
	bool live;
} vchunk;

typedef struct verifier {
	rag_config cfg;
	s3_client *s3;
	char root[1024];
	manifest m;
	int64_t problems;
	int dims;             /* from the first lists.idx */
	vchunk *chunks;
	size_t nchunks, capchunks;
	char **keep;          /* retained chunks.bin / lists.bin data */
	size_t nkeep, capkeep;
	int64_t objects_checked;
	int64_t tombstoned;
	int nflat, nivf;
} verifier;

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(verifier *v, const char *fmt, ...)
{
	va_list ap;

	if (++v->problems > MAX_SHOWN_PROBLEMS)
		return;
	fputs("ragmap: verify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void verifier_release(verifier *v)
{
	for (size_t i = 0; i < v->nchunks; i++)
		free(v->chunks[i].key);
	free(v->chunks);
	for (size_t i = 0; i < v->nkeep; i++)
		free(v->keep[i]);
	free(v->keep);
	manifest_release(&v->m);
	s3_client_free(v->s3);
	rag_config_release(&v->cfg);
}

static bool keep_buffer(verifier *v, rag_buf *b, const char **data)
{
	size_t len;

	if (v->nkeep == v->capkeep) {
		size_t cap = v->capkeep ? v->capkeep * 2 : 16;
		char **p = realloc(v->keep, cap * sizeof(*p));
		if (!p)
			return false;
		v->keep = p;
		v->capkeep = cap;
	}
	*data = v->keep[v->nkeep++] = rag_buf_detach(b, &len);
	return true;
}

static vchunk *add_chunk(verifier *v)
{
	if (v->nchunks == v->capchunks) {
		size_t cap = v->capchunks ? v->capchunks * 2 : 1024;
		vchunk *p = realloc(v->chunks, cap * sizeof(*p));
		if (!p)
			return NULL;
		v->chunks = p;
		v->capchunks = cap;
	}
	memset(&v->chunks[v->nchunks], 0, sizeof(vchunk));
	return &v->chunks[v->nchunks++];
}

static uint64_t rd_u64(const char *p) { uint64_t x; memcpy(&x, p, 8); return x; }

/* ------------------------------------------------------------ LATEST */

/* Read LATEST and its manifest. *found false (and RAG_OK) when no LATEST. */
static rag_rc read_manifest(verifier *v, bool *found, rag_error *err)
{
	char key[1200], mkey[1200], want[1200];
	int64_t version;
	rag_buf b;
	rag_rc rc;

	*found = false;
	rag_buf_init(&b, SMALL_MAX);
	mf_latest_key(v->root, key, sizeof(key));
	rc = s3_get(v->s3, S3_OP("verify", NULL), key, &b, NULL, err);
	if (rc == RAG_ENOTFOUND) {
		rc = RAG_OK;
		goto out;
	}
	if (rc || (rc = mf_latest_from_json(b.data, b.len, &version, mkey, sizeof(mkey), err))) {
		rag_error_prefix(err, "\"%s\"", key);
		goto out;
	}
	mf_manifest_key(v->root, version, want, sizeof(want));
	if (strcmp(want, mkey) != 0)
		problem(v, "LATEST names \"%s\" for version %" PRId64 ", expected \"%s\"", mkey,
			version, want);
	rag_buf_reset(&b);
	if ((rc = s3_get(v->s3, S3_OP("verify", NULL), mkey, &b, NULL, err)) ||
	    (rc = manifest_from_json(b.data, b.len, &v->m, err))) {
		rag_error_prefix(err, "manifest \"%s\" (named by LATEST)", mkey);
		goto out;
	}
	*found = true;
	if (v->m.version != version)
		problem(v, "LATEST names version %" PRId64 " but \"%s\" is version %" PRId64, version,
			mkey, v->m.version);
	if (strcmp(v->m.index, v->cfg.index.name) != 0)
		problem(v, "manifest \"%s\" belongs to index \"%s\", not \"%s\"", mkey, v->m.index,
			v->cfg.index.name);
out:
	rag_buf_release(&b);
	return rc;
}

/* ------------------------------------------------------------- HEADs */

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

	it->rc = s3_head(j->s3, S3_OP("verify", NULL), it->key, &info, &it->err);
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
	v->objects_checked = (int64_t)n;
	free(items);
	return RAG_OK;
}

/* ----------------------------------------------------------- segments */

/* Parse and check the inverted lists; fills vec pointers of seg's chunks. */
static void check_lists(verifier *v, const mf_segment *seg, const char *idx, size_t idx_len,
			const char *bin, size_t bin_len, const seg_ptr *ptrs, size_t nptrs,
			size_t first)
{
	seg_lists l;
	rag_error e = {0};
	unsigned char *seen = calloc(nptrs + 1, 1);

	if (!seen) {
		problem(v, "segment \"%s\": out of memory", seg->id);
		return;
	}
	if (segment_parse_lists_idx(idx, idx_len, &l, &e)) {
		problem(v, "segment \"%s\": %s", seg->id, e.msg);
		free(seen);
		return;
	}
	if (v->dims == 0)
		v->dims = l.dims;
	if (l.dims != v->dims || l.dims != v->m.model.dims)
		problem(v, "segment \"%s\": lists.idx has %d dims, the model %d", seg->id, l.dims,
			v->m.model.dims);
	if (l.nlist != seg->nlist)
		problem(v, "segment \"%s\": lists.idx has %d lists, the manifest says %d", seg->id,
			l.nlist, seg->nlist);
	if (l.offsets[0] != 0 || l.offsets[l.nlist] != bin_len) {
		problem(v, "segment \"%s\": lists.idx spans [%" PRIu64 ", %" PRIu64
			"), lists.bin has %zu bytes", seg->id, l.offsets[0], l.offsets[l.nlist],
			bin_len);
		goto out;
	}
	for (int i = 0; i < l.nlist; i++) {
		const char *p = bin + l.offsets[i], *recs;
		size_t len = (size_t)(l.offsets[i + 1] - l.offsets[i]), vec_len;
		uint32_t cnt;

		if (segment_split_list(p, len, l.dims, &vec_len, &recs, &cnt, &e)) {
			problem(v, "segment \"%s\": list %d: %s", seg->id, i, e.msg);
			continue;
		}
		for (uint32_t k = 0; k < cnt; k++) {
			int64_t id = (int64_t)rd_u64(p + 4 + 8 * (size_t)k);
			const char *vec = p + 4 + 8 * (size_t)cnt + (size_t)k * 4 * (size_t)l.dims;
			const seg_ptr *sp = segment_find_ptr(ptrs, nptrs, id);
			uint64_t rec_off;
			uint32_t rec_len;
			size_t at;

			if (!sp) {
				problem(v, "segment \"%s\": chunk %" PRId64 " is in list %d but not "
					"in chunks.idx", seg->id, id, i);
				continue;
			}
			at = (size_t)(sp - ptrs);
			if (seen[at]++) {
				problem(v, "segment \"%s\": chunk %" PRId64 " is in the lists twice",
					seg->id, id);
				continue;
			}
			segment_list_record(recs, k, &rec_off, &rec_len);
			if (rec_off != sp->rec_off || rec_len != sp->rec_len)
				problem(v, "segment \"%s\": list %d points chunk %" PRId64 " at [%" PRIu64
					", +%u), chunks.idx at [%" PRIu64 ", +%u)", seg->id, i, id,
					rec_off, rec_len, sp->rec_off, sp->rec_len);
			for (int d = 0; d < l.dims; d++) {
				float f;
				memcpy(&f, vec + 4 * d, 4);
				if (!isfinite(f)) {
					problem(v, "segment \"%s\": chunk %" PRId64 " has a non-finite "
						"vector", seg->id, id);
					break;
				}
			}
			v->chunks[first + at].vec = vec;
		}
	}
	for (size_t k = 0; k < nptrs; k++)
		if (!seen[k])
			problem(v, "segment \"%s\": chunk %" PRId64 " is in chunks.idx but in no "
				"list", seg->id, ptrs[k].id);
out:
	seg_lists_release(&l);
	free(seen);
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

static rag_rc check_segment(verifier *v, const mf_segment *seg, rag_error *err)
{
	s3_get_req reqs[MF_NOBJ];
	seg_ptr *ptrs = NULL;
	size_t nptrs = 0, first = v->nchunks;
	const char *bin = NULL, *lbin = NULL;
	size_t bin_len, lbin_len;
	rag_error e = {0};
	rag_rc rc = RAG_OK;
	bool ok = true;

	memset(reqs, 0, sizeof(reqs));
	for (int k = 0; k < MF_NOBJ; k++) {
		reqs[k].key = seg->obj[k].key;
		rag_buf_init(&reqs[k].buf, seg->obj[k].size + 1);
	}
	s3_get_many(v->s3, S3_OP("verify", NULL), reqs, MF_NOBJ, MF_NOBJ);
	for (int k = 0; k < MF_NOBJ; k++)
		if (reqs[k].rc) {
			/* missing ones were reported by the HEADs already */
			if (reqs[k].rc != RAG_ENOTFOUND)
				problem(v, "GET \"%s\": %s", reqs[k].key, reqs[k].err.msg);
			ok = false;
		}
	if (!ok)
		goto out;
	if (seg->nlist < 1 || (strcmp(seg->kind, "flat") == 0 && seg->nlist != 1))
		problem(v, "segment \"%s\": kind %s with %d lists", seg->id, seg->kind, seg->nlist);
	check_faiss(v, seg, reqs[MF_INDEX].buf.data, reqs[MF_INDEX].buf.len);

	if (segment_parse_chunk_idx(reqs[MF_CHUNKS_IDX].buf.data, reqs[MF_CHUNKS_IDX].buf.len,
				    &ptrs, &nptrs, &e)) {
		problem(v, "segment \"%s\": %s", seg->id, e.msg);
		goto out;
	}
	if ((int64_t)nptrs != seg->count ||
	    (nptrs && (ptrs[0].id != seg->first_chunk || ptrs[nptrs - 1].id != seg->last_chunk)))
		problem(v, "segment \"%s\": chunks.idx has %zu chunks [%" PRId64 ", %" PRId64 "], the "
			"manifest says %" PRId64 " [%" PRId64 ", %" PRId64 "]", seg->id, nptrs,
			nptrs ? ptrs[0].id : 0, nptrs ? ptrs[nptrs - 1].id : 0, seg->count,
			seg->first_chunk, seg->last_chunk);
	bin_len = reqs[MF_CHUNKS].buf.len;
	lbin_len = reqs[MF_LISTS].buf.len;
	if (!keep_buffer(v, &reqs[MF_CHUNKS].buf, &bin) || !keep_buffer(v, &reqs[MF_LISTS].buf, &lbin)) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nptrs; i++) {
		const seg_ptr *p = &ptrs[i];
		seg_record rec;
		vchunk *c = add_chunk(v);

		if (!c) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		c->id = p->id;
		c->ordinal = -1;
		if (p->rec_off > bin_len || p->rec_len > bin_len - p->rec_off) {
			problem(v, "segment \"%s\": chunk %" PRId64 " at [%" PRIu64 ", +%u) lies "
				"outside chunks.bin (%zu bytes)", seg->id, p->id, p->rec_off,
				p->rec_len, bin_len);
			continue;
		}
		if (segment_parse_record(bin + p->rec_off, p->rec_len, &rec, &e)) {
			problem(v, "segment \"%s\": chunk %" PRId64 ": %s", seg->id, p->id, e.msg);
			continue;
		}
		if (rec.id != p->id)
			problem(v, "segment \"%s\": the record of chunk %" PRId64 " says id %" PRId64,
				seg->id, p->id, rec.id);
		if (rec.text_len != rec.len)
			problem(v, "segment \"%s\": chunk %" PRId64 " has %zu text bytes, its header "
				"says %" PRIu64, seg->id, p->id, rec.text_len, rec.len);
		if (!rec.key[0])
			problem(v, "segment \"%s\": chunk %" PRId64 " has an empty key", seg->id, p->id);
		c->key = rec.key;
		rec.key = NULL;
		c->ordinal = rec.ordinal;
		c->text = rec.text;
		c->text_len = rec.text_len;
		seg_record_release(&rec);
	}
	check_lists(v, seg, reqs[MF_LISTS_IDX].buf.data, reqs[MF_LISTS_IDX].buf.len, lbin, lbin_len,
		    ptrs, nptrs, first);
	if (strcmp(seg->kind, "ivf") == 0)
		v->nivf++;
	else
		v->nflat++;
out:
	free(ptrs);
	for (int k = 0; k < MF_NOBJ; k++)
		rag_buf_release(&reqs[k].buf);
	return rc;
}

/* ----------------------------------------------------- across segments */

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

/* Live chunks sorted by (key, ordinal); *n of them. Caller frees. */
static vchunk **live_sorted(verifier *v, size_t *n)
{
	vchunk **live = malloc((v->nchunks + 1) * sizeof(*live));
	size_t k = 0;

	if (!live)
		return NULL;
	for (size_t i = 0; i < v->nchunks; i++)
		if (v->chunks[i].live && v->chunks[i].key)
			live[k++] = &v->chunks[i];
	qsort(live, k, sizeof(*live), by_key_ordinal);
	*n = k;
	return live;
}

static void check_snapshot(verifier *v, int64_t docs, int64_t chunks)
{
	char path[4200];
	catalog *cat = NULL;
	catalog_stats st;
	rag_error e = {0};
	int fd;

	snprintf(path, sizeof(path), "%s/verify-snapshot-XXXXXX", P_tmpdir);
	if ((fd = mkstemp(path)) < 0) {
		problem(v, "cannot create a temporary file for the catalog snapshot");
		return;
	}
	close(fd);
	if (s3_get_file(v->s3, S3_OP("verify", NULL), v->m.catalog.key, path, NULL, &e) ||
	    catalog_open(path, &cat, &e) || catalog_stats_get(cat, &st, &e)) {
		if (e.rc != RAG_ENOTFOUND)
			problem(v, "catalog snapshot \"%s\": %s", v->m.catalog.key, e.msg);
	} else if (st.documents != docs || st.chunks != chunks) {
		problem(v, "catalog snapshot \"%s\" has %" PRId64 " live documents and %" PRId64
			" chunks, the segments %" PRId64 " and %" PRId64, v->m.catalog.key,
			st.documents, st.chunks, docs, chunks);
	}
	catalog_close(cat);
	unlink(path);
	{
		char side[4300];
		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
}

static void check_model(verifier *v)
{
	rag_buf b;
	embed_model *m = NULL;
	rag_error e = {0};

	rag_buf_init(&b, (size_t)2 << 30);
	if (s3_get(v->s3, S3_OP("verify", NULL), v->m.model.key, &b, NULL, &e) ||
	    embed_model_load(b.data, b.len, &m, &e)) {
		if (e.rc != RAG_ENOTFOUND)
			problem(v, "model \"%s\": %s", v->m.model.key, e.msg);
	} else if (strcmp(embed_model_version(m), v->m.model.version) != 0 ||
		   embed_dims(m) != v->m.model.dims) {
		problem(v, "model \"%s\" is version %s with %d dims, the manifest says %s with %d",
			v->m.model.key, embed_model_version(m), embed_dims(m), v->m.model.version,
			v->m.model.dims);
	}
	embed_model_free(m);
	rag_buf_release(&b);
}

/* Per-document checks of point 4 over the live chunks; counts documents. */
static void check_documents(verifier *v, vchunk **live, size_t nlive, int64_t *docs)
{
	*docs = 0;
	for (size_t i = 0; i < nlive; i++) {
		bool new_doc = i == 0 || strcmp(live[i]->key, live[i - 1]->key) != 0;
		if (new_doc) {
			(*docs)++;
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
}

static void put_u32(EVP_MD_CTX *h, uint32_t x) { EVP_DigestUpdate(h, &x, 4); }
static void put_u64(EVP_MD_CTX *h, uint64_t x) { EVP_DigestUpdate(h, &x, 8); }

static rag_rc digest(const verifier *v, vchunk **live, size_t nlive, char hex[65],
		     rag_error *err)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok;

	if (!h)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	ok = EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < nlive; i++) {
		const vchunk *c = live[i];
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

static void print_requests(s3_client *c)
{
	s3_stage_stats st[32];
	size_t n = s3_client_stats(c, st, RAG_ARRAY_LEN(st));
	char bytes[32];

	for (size_t i = 0; i < n && i < RAG_ARRAY_LEN(st); i++) {
		s3_counter tot = {0};
		if (strcmp(st[i].stage, "verify") != 0)
			continue;
		for (int k = 0; k < S3_KIND_COUNT; k++)
			s3_counter_add(&tot, &st[i].kind[k]);
		printf("storage:   %" PRIu64 " requests (%" PRIu64 " get, %" PRIu64 " head), %s\n",
		       tot.requests, st[i].kind[S3_GET].requests, st[i].kind[S3_HEAD].requests,
		       rag_fmt_bytes(tot.bytes_in, bytes, sizeof(bytes)));
	}
}

int cmd_verify(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"digest", no_argument, NULL, 'd'},
		{"keys", no_argument, NULL, 'k'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	verifier v;
	rag_error err = {0};
	vchunk **live = NULL;
	size_t nlive = 0;
	int64_t docs = 0;
	bool want_digest = false, want_keys = false, found;
	char hex[65] = "";
	int opt, rc = CLI_OK;

	memset(&v, 0, sizeof(v));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': want_digest = true; break;
		case 'k': want_keys = true; break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(verify_usage, stdout); return CLI_OK;
		default: fputs(verify_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("verify: unexpected argument \"%s\"", argv[optind]);
		return CLI_USAGE;
	}
	if (!cli_load_config(env, &v.cfg))
		return CLI_USAGE;
	if (!(v.s3 = s3_client_new(&v.cfg, &env->log, &err))) {
		rag_config_release(&v.cfg);
		return cli_fail(&err);
	}
	if (mf_index_root(v.cfg.index.prefix, v.cfg.index.name, v.root, sizeof(v.root))) {
		cli_error("verify: index.prefix/index.name too long");
		rc = CLI_USAGE;
		goto out;
	}
	if (read_manifest(&v, &found, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!found) {
		printf("index %s (s3://%s/%s): no LATEST, no version committed yet; nothing to check\n",
		       v.cfg.index.name, v.cfg.s3.bucket, v.root);
		if (want_digest && digest(&v, NULL, 0, hex, &err) == RAG_OK)
			printf("digest %s\n", hex);
		goto out;
	}
	if (check_objects(&v, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	for (size_t s = 0; s < v.m.nsegments; s++)
		if (check_segment(&v, &v.m.segments[s], &err)) {
			rc = cli_fail(&err);
			goto out;
		}
	/* chunk ids across segments, and which are live */
	qsort(v.chunks, v.nchunks, sizeof(*v.chunks), by_id);
	for (size_t i = 0; i < v.nchunks; i++) {
		if (i && v.chunks[i].id == v.chunks[i - 1].id)
			problem(&v, "chunk id %" PRId64 " is in two segments", v.chunks[i].id);
		v.chunks[i].live = !manifest_is_tombstoned(&v.m, v.chunks[i].id);
		if (!v.chunks[i].live)
			v.tombstoned++;
	}
	if (!(live = live_sorted(&v, &nlive))) {
		cli_error("verify: out of memory");
		rc = CLI_FAIL;
		goto out;
	}
	check_documents(&v, live, nlive, &docs);
	if (docs != v.m.documents || (int64_t)nlive != v.m.chunks)
		problem(&v, "the segments hold %" PRId64 " live documents and %zu live chunks, "
			"manifest %" PRId64 " says %" PRId64 " and %" PRId64, docs, nlive, v.m.version,
			v.m.documents, v.m.chunks);
	check_snapshot(&v, docs, (int64_t)nlive);
	check_model(&v);

	printf("index %s version %" PRId64 " (s3://%s/%s)\n", v.cfg.index.name, v.m.version,
	       v.cfg.s3.bucket, v.root);
	printf("objects:   %" PRId64 " named by the manifest\n", v.objects_checked);
	printf("segments:  %zu (%d flat, %d ivf), %zu chunks, %" PRId64 " tombstoned\n",
	       v.m.nsegments, v.nflat, v.nivf, v.nchunks, v.tombstoned);
	printf("live:      %" PRId64 " documents, %zu chunks\n", docs, nlive);
	printf("model:     %s %s, %d dims\n", v.m.model.name, v.m.model.version, v.m.model.dims);
	print_requests(v.s3);
	if (v.problems) {
		if (v.problems > MAX_SHOWN_PROBLEMS)
			cli_error("verify: ... and %" PRId64 " more problems",
				  v.problems - MAX_SHOWN_PROBLEMS);
		printf("FAILED: %" PRId64 " problem%s\n", v.problems, v.problems == 1 ? "" : "s");
		rc = CLI_FAIL;
		goto out;
	}
	printf("ok\n");
	for (size_t i = 0, run = 1; want_keys && i < nlive; i++, run++)
		if (i + 1 == nlive || strcmp(live[i]->key, live[i + 1]->key) != 0) {
			printf("live %zu %s\n", run, live[i]->key);
			run = 0;
		}
	if (want_digest) {
		if (digest(&v, live, nlive, hex, &err)) {
			rc = cli_fail(&err);
			goto out;
		}
		printf("digest %s\n", hex);
	}
out:
	if (v.problems && rc == CLI_OK)
		rc = CLI_FAIL;
	free(live);
	verifier_release(&v);
	return rc;
}
