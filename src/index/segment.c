/*
 * segment.c — see segment.h for the layout.
 */
#include "segment.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

#define SEG_OBJ_MAX ((size_t)4 << 30)

static rag_rc put_u32(rag_buf *b, uint32_t v) { return rag_buf_append(b, &v, 4); }
static rag_rc put_u64(rag_buf *b, uint64_t v) { return rag_buf_append(b, &v, 8); }

static rag_rc append_record(rag_buf *out, const seg_chunk *c, rag_error *err)
{
	json_t *h = json_pack("{s:I, s:s, s:i, s:I, s:I, s:s}", "id", (json_int_t)c->id,
			      "key", c->key, "ord", c->ordinal, "off", (json_int_t)c->off,
			      "len", (json_int_t)c->len, "heading", c->heading ? c->heading : "");
	char *line;
	rag_rc rc = RAG_ENOMEM;

	/* the citation only when known: records without it stay as they were */
	if (h && c->page > 0 &&
	    json_object_set_new(h, "page", json_pack("[i, i]", c->page, c->page_end)) != 0)
		goto out;
	if (h && c->src_end > 0 &&
	    json_object_set_new(h, "src", json_pack("[I, I]", (json_int_t)c->src_off,
						    (json_int_t)c->src_end)) != 0)
		goto out;
	line = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (line) {
		rc = rag_buf_puts(out, line);
		if (!rc)
			rc = rag_buf_putc(out, '\n');
		if (!rc)
			rc = rag_buf_append(out, c->text, c->text_len);
	}
	free(line);
out:
	json_decref(h);
	if (rc)
		rag_error_set(err, rc, "segment: cannot encode chunk %lld of \"%s\"",
			      (long long)c->id, c->key);
	return rc;
}

static rag_rc build_chunks(const seg_chunk *chunks, size_t n, seg_build *b, rag_error *err)
{
	rag_buf *bin = &b->obj[MF_CHUNKS], *idx = &b->obj[MF_CHUNKS_IDX];
	rag_rc rc;

	if (!(b->rec_off = calloc(n + 1, sizeof(*b->rec_off))) ||
	    !(b->rec_len = calloc(n + 1, sizeof(*b->rec_len))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if ((rc = rag_buf_append(idx, "RMCI", 4)) || (rc = put_u32(idx, 1)) ||
	    (rc = put_u64(idx, n)))
		return rag_error_set(err, rc, "segment: chunk index too large");
	for (size_t i = 0; i < n; i++) {
		if (i && chunks[i].id <= chunks[i - 1].id)
			return rag_error_set(err, RAG_EINVAL, "segment: chunk ids not ascending");
		b->rec_off[i] = bin->len;
		if ((rc = append_record(bin, &chunks[i], err)))
			return rc;
		if (bin->len - b->rec_off[i] > UINT32_MAX)
			return rag_error_set(err, RAG_ETOOBIG, "segment: chunk %lld too large",
					     (long long)chunks[i].id);
		b->rec_len[i] = (uint32_t)(bin->len - b->rec_off[i]);
		if ((rc = put_u64(idx, (uint64_t)chunks[i].id)) || (rc = put_u64(idx, b->rec_off[i])) ||
		    (rc = put_u32(idx, b->rec_len[i])) || (rc = put_u32(idx, 0)))
			return rag_error_set(err, rc, "segment: chunk index too large");
	}
	return RAG_OK;
}

static rag_rc find_pos(const seg_chunk *chunks, size_t n, int64_t id, size_t *pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (chunks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= n || chunks[lo].id != id)
		return RAG_EINTERNAL;
	*pos = lo;
	return RAG_OK;
}

/* lists.bin: each exported list followed by its members' record table. */
static rag_rc append_lists(const char *raw, const uint64_t *offsets, int nlist, int dims,
			   const seg_chunk *chunks, size_t n, seg_build *b, uint64_t *out_off,
			   rag_error *err)
{
	rag_buf *bin = &b->obj[MF_LISTS];
	rag_rc rc = RAG_OK;

	for (int i = 0; i < nlist && !rc; i++) {
		const char *l = raw + offsets[i];
		uint32_t count;

		memcpy(&count, l, 4);
		out_off[i] = bin->len;
		if ((rc = rag_buf_append(bin, l, (size_t)(offsets[i + 1] - offsets[i]))))
			break;
		for (uint32_t j = 0; j < count && !rc; j++) {
			int64_t id;
			size_t pos;
			memcpy(&id, l + 4 + (size_t)j * 8, 8);
			if (find_pos(chunks, n, id, &pos))
				return rag_error_set(err, RAG_EINTERNAL,
						     "segment: list %d names unknown chunk %lld", i,
						     (long long)id);
			if ((rc = put_u64(bin, b->rec_off[pos])) || (rc = put_u32(bin, b->rec_len[pos])))
				break;
		}
	}
	out_off[nlist] = bin->len;
	(void)dims;
	if (rc)
		rag_error_set(err, rc, "segment: lists too large");
	return rc;
}

static rag_rc build_lists(const vindex *v, int dims, const seg_chunk *chunks, size_t n,
			  seg_build *b, rag_error *err)
{
	rag_buf *idx = &b->obj[MF_LISTS_IDX], raw;
	uint64_t *offsets = NULL, *out_off = NULL;
	float *centroids = NULL;
	int nlist = 0, ncent = 0;
	rag_rc rc;

	rag_buf_init(&raw, SEG_OBJ_MAX);
	if ((rc = vindex_export_lists(v, &raw, &offsets, &nlist, err)) ||
	    (rc = vindex_export_centroids(v, &centroids, &ncent, err)))
		goto out;
	if (!(out_off = calloc((size_t)nlist + 1, sizeof(*out_off)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = append_lists(raw.data, offsets, nlist, dims, chunks, n, b, out_off, err)))
		goto out;
	if ((rc = rag_buf_append(idx, "RMLI", 4)) || (rc = put_u32(idx, 1)) ||
	    (rc = put_u32(idx, (uint32_t)dims)) || (rc = put_u32(idx, (uint32_t)nlist)) ||
	    (rc = put_u32(idx, centroids ? 1 : 0)))
		goto toobig;
	if (centroids &&
	    (rc = rag_buf_append(idx, centroids, (size_t)nlist * (size_t)dims * sizeof(float))))
		goto toobig;
	for (int i = 0; i <= nlist; i++)
		if ((rc = put_u64(idx, out_off[i])))
			goto toobig;
	b->nlist = nlist;
	goto out;
toobig:
	rag_error_set(err, rc, "segment: list index too large");
out:
	rag_buf_release(&raw);
	free(offsets);
	free(out_off);
	free(centroids);
	return rc;
}

rag_rc segment_build(int dims, const seg_chunk *chunks, const float *vecs, size_t n,
		     const vindex_build_opts *opts, seg_build *b, rag_error *err)
{
	int64_t *ids = NULL;
	vindex *v = NULL;
	rag_rc rc;

	memset(b, 0, sizeof(*b));
	for (int k = 0; k < MF_NOBJ; k++)
		rag_buf_init(&b->obj[k], SEG_OBJ_MAX);
	if (n == 0)
		return rag_error_set(err, RAG_EINVAL, "segment: no chunks");
	if (!(ids = malloc(n * sizeof(*ids)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = chunks[i].id;
	if ((rc = build_chunks(chunks, n, b, err)) ||
	    (rc = vindex_build(dims, vecs, ids, n, opts, &v, err)) ||
	    (rc = vindex_serialize(v, &b->obj[MF_INDEX], err)) ||
	    (rc = build_lists(v, dims, chunks, n, b, err)))
		goto out;
	rag_strlcpy(b->kind, vindex_kind_of(v) == VINDEX_IVF ? "ivf" : "flat", sizeof(b->kind));
	b->nprobe = vindex_nprobe(v);
	b->count = n;
	b->first_chunk = chunks[0].id;
	b->last_chunk = chunks[n - 1].id;
out:
	vindex_free(v);
	free(ids);
	if (rc)
		seg_build_release(b);
	return rc;
}

void seg_build_release(seg_build *b)
{
	for (int k = 0; k < MF_NOBJ; k++)
		rag_buf_release(&b->obj[k]);
	free(b->rec_off);
	free(b->rec_len);
	b->rec_off = NULL;
	b->rec_len = NULL;
}

typedef struct upload_ctx {
	s3_client *c;
	const s3_op *op;
	const seg_build *b;
	mf_segment *mf;
	rag_error errs[MF_NOBJ];
} upload_ctx;

static rag_rc upload_one(void *ctx, size_t k)
{
	upload_ctx *u = ctx;

	return s3_put(u->c, u->op, u->mf->obj[k].key, u->b->obj[k].data ? u->b->obj[k].data : "",
		      u->b->obj[k].len, "application/octet-stream", NULL, &u->errs[k]);
}

rag_rc segment_upload(s3_client *c, const s3_op *op, const char *root, const char *id,
		      const seg_build *b, mf_segment *mf, rag_error *err)
{
	upload_ctx u = {.c = c, .op = op, .b = b, .mf = mf};
	static const char *const files[MF_NOBJ] = {"index.faiss", "chunks.bin", "chunks.idx",
						   "lists.bin", "lists.idx"};
	char key[2048];
	rag_rc rc;

	memset(mf, 0, sizeof(*mf));
	rag_strlcpy(mf->id, id, sizeof(mf->id));
	rag_strlcpy(mf->kind, b->kind, sizeof(mf->kind));
	mf->count = (int64_t)b->count;
	mf->first_chunk = b->first_chunk;
	mf->last_chunk = b->last_chunk;
	mf->nlist = b->nlist;
	mf->nprobe = b->nprobe;
	for (int k = 0; k < MF_NOBJ; k++) {
		snprintf(key, sizeof(key), "%ssegments/%s/%s", root, id, files[k]);
		if (!(mf->obj[k].key = rag_strdup(key)))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		mf->obj[k].size = b->obj[k].len;
	}
	if ((rc = s3_parallel(c, MF_NOBJ, MF_NOBJ, upload_one, &u)) != RAG_OK) {
		for (int k = 0; k < MF_NOBJ; k++)
			if (u.errs[k].rc) {
				if (err)
					*err = u.errs[k];
				break;
			}
	}
	return rc;
}

/* ---- reading ---- */

static uint32_t rd_u32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd_u64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

rag_rc segment_parse_chunk_idx(const char *data, size_t len, seg_ptr **ptrs, size_t *n,
			       rag_error *err)
{
	uint64_t cnt;
	seg_ptr *a;

	*ptrs = NULL;
	*n = 0;
	if (len < 16 || memcmp(data, "RMCI", 4) != 0 || rd_u32(data + 4) != 1)
		return rag_error_set(err, RAG_ECORRUPT, "chunks.idx: bad header");
	cnt = rd_u64(data + 8);
	if (cnt > (len - 16) / 24 || 16 + cnt * 24 != len)
		return rag_error_set(err, RAG_ECORRUPT, "chunks.idx: %llu entries do not fit %zu bytes",
				     (unsigned long long)cnt, len);
	if (!(a = malloc((cnt + 1) * sizeof(*a))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (uint64_t i = 0; i < cnt; i++) {
		const char *p = data + 16 + i * 24;
		a[i].id = (int64_t)rd_u64(p);
		a[i].rec_off = rd_u64(p + 8);
		a[i].rec_len = rd_u32(p + 16);
		if (i && a[i].id <= a[i - 1].id) {
			free(a);
			return rag_error_set(err, RAG_ECORRUPT, "chunks.idx: ids not ascending");
		}
	}
	*ptrs = a;
	*n = cnt;
	return RAG_OK;
}

const seg_ptr *segment_find_ptr(const seg_ptr *ptrs, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ptrs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ptrs[lo].id == id ? &ptrs[lo] : NULL;
}

rag_rc segment_parse_record(const char *data, size_t len, seg_record *rec, rag_error *err)
{
	const char *nl = memchr(data, '\n', len);
	json_error_t jerr;
	json_t *h, *key, *heading, *cite;
	json_int_t id, ord, off, l, a, b;

	memset(rec, 0, sizeof(*rec));
	if (!nl)
		return rag_error_set(err, RAG_ECORRUPT, "chunk record: no header line");
	h = json_loadb(data, (size_t)(nl - data), 0, &jerr);
	if (!h || json_unpack(h, "{s:I, s:o, s:I, s:I, s:I, s:o}", "id", &id, "key", &key,
			      "ord", &ord, "off", &off, "len", &l, "heading", &heading) != 0 ||
	    !json_is_string(key) || !json_is_string(heading) || ord < 0 || ord > INT_MAX ||
	    off < 0 || l < 0) {
		json_decref(h);
		return rag_error_set(err, RAG_ECORRUPT, "chunk record: bad header");
	}
	rec->id = id;
	rec->ordinal = (int)ord;
	rec->off = (uint64_t)off;
	rec->len = (uint64_t)l;
	/* optional citation; a malformed one is ignored (none), not corrupt */
	if ((cite = json_object_get(h, "page")) && json_unpack(cite, "[I, I]", &a, &b) == 0 &&
	    a >= 1 && b >= a && b <= INT_MAX) {
		rec->page = (int)a;
		rec->page_end = (int)b;
	}
	if ((cite = json_object_get(h, "src")) && json_unpack(cite, "[I, I]", &a, &b) == 0 &&
	    a >= 0 && b > a) {
		rec->src_off = (uint64_t)a;
		rec->src_end = (uint64_t)b;
	}
	rec->key = rag_strdup(json_string_value(key));
	rec->heading = rag_strdup(json_string_value(heading));
	json_decref(h);
	if (!rec->key || !rec->heading) {
		seg_record_release(rec);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	rec->text = nl + 1;
	rec->text_len = len - (size_t)(nl + 1 - data);
	return RAG_OK;
}

void seg_record_release(seg_record *rec)
{
	free(rec->key);
	free(rec->heading);
	rec->key = rec->heading = NULL;
}

rag_rc segment_parse_lists_idx(const char *data, size_t len, seg_lists *out, rag_error *err)
{
	uint32_t dims, nlist, has;
	size_t need, cbytes;

	memset(out, 0, sizeof(*out));
	if (len < 20 || memcmp(data, "RMLI", 4) != 0 || rd_u32(data + 4) != 1)
		return rag_error_set(err, RAG_ECORRUPT, "lists.idx: bad header");
	dims = rd_u32(data + 8);
	nlist = rd_u32(data + 12);
	has = rd_u32(data + 16);
	if (dims == 0 || dims > 65536 || nlist == 0 || nlist > (1u << 24) || has > 1 ||
	    (!has && nlist != 1))
		return rag_error_set(err, RAG_ECORRUPT, "lists.idx: bad sizes");
	cbytes = has ? (size_t)nlist * dims * sizeof(float) : 0;
	need = 20 + cbytes + ((size_t)nlist + 1) * 8;
	if (len != need)
		return rag_error_set(err, RAG_ECORRUPT, "lists.idx: %zu bytes, expected %zu", len, need);
	out->dims = (int)dims;
	out->nlist = (int)nlist;
	out->offsets = malloc(((size_t)nlist + 1) * 8);
	if (has)
		out->centroids = malloc(cbytes);
	if (!out->offsets || (has && !out->centroids)) {
		seg_lists_release(out);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	if (has)
		memcpy(out->centroids, data + 20, cbytes);
	memcpy(out->offsets, data + 20 + cbytes, ((size_t)nlist + 1) * 8);
	for (uint32_t i = 0; i < nlist; i++)
		if (out->offsets[i] > out->offsets[i + 1]) {
			seg_lists_release(out);
			return rag_error_set(err, RAG_ECORRUPT, "lists.idx: offsets not ascending");
		}
	return RAG_OK;
}

void seg_lists_release(seg_lists *l)
{
	free(l->centroids);
	free(l->offsets);
	l->centroids = NULL;
	l->offsets = NULL;
}

rag_rc segment_list_view(const char *data, size_t len, int dims, seg_list_view *out,
			 rag_error *err)
{
	uint32_t count;
	uint64_t need;

	memset(out, 0, sizeof(*out));
	if (dims <= 0)
		return rag_error_set(err, RAG_ECORRUPT, "list: %d dimensions", dims);
	if (len < 4)
		return rag_error_set(err, RAG_ECORRUPT, "list: %zu bytes, not even a count", len);
	count = rd_u32(data);
	need = 4 + (uint64_t)count * (8 + 4 * (uint64_t)dims + 12);
	if (need != len)
		return rag_error_set(err, RAG_ECORRUPT, "list: %u members need %llu bytes, have %zu",
				     count, (unsigned long long)need, len);
	out->data = data;
	out->vec_len = 4 + (size_t)count * (8 + 4 * (size_t)dims);
	out->count = count;
	out->dims = dims;
	return RAG_OK;
}

int64_t seg_list_id(const seg_list_view *l, uint32_t i)
{
	return (int64_t)rd_u64(l->data + 4 + (size_t)i * 8);
}

const char *seg_list_vector_bytes(const seg_list_view *l, uint32_t i)
{
	return l->data + 4 + (size_t)l->count * 8 + (size_t)i * 4 * (size_t)l->dims;
}

void seg_list_vector(const seg_list_view *l, uint32_t i, float *out)
{
	memcpy(out, seg_list_vector_bytes(l, i), (size_t)l->dims * sizeof(float));
}

/* Entry pos of a record table: {u64 rec_off, u32 rec_len}. */
static void table_record(const char *recs, uint32_t pos, uint64_t *rec_off, uint32_t *rec_len)
{
	const char *p = recs + (size_t)pos * 12;

	*rec_off = rd_u64(p);
	*rec_len = rd_u32(p + 8);
}

void seg_list_record(const seg_list_view *l, uint32_t i, uint64_t *rec_off, uint32_t *rec_len)
{
	table_record(l->data + l->vec_len, i, rec_off, rec_len);
}

int64_t seg_list_find(const seg_list_view *l, int64_t id)
{
	for (uint32_t i = 0; i < l->count; i++)
		if (seg_list_id(l, i) == id)
			return (int64_t)i;
	return -1;
}

rag_rc segment_split_list(const char *data, size_t len, int dims, size_t *vec_len,
			  const char **recs, uint32_t *count, rag_error *err)
{
	seg_list_view l;
	rag_rc rc = segment_list_view(data, len, dims, &l, err);

	*vec_len = l.vec_len;
	*count = l.count;
	*recs = rc ? NULL : data + l.vec_len;
	return rc;
}

void segment_list_record(const char *recs, uint32_t pos, uint64_t *rec_off, uint32_t *rec_len)
{
	table_record(recs, pos, rec_off, rec_len);
}

void segment_catalog_row(const mf_segment *mf, int64_t version, const char *model_version,
			 cat_segment *out)
{
	memset(out, 0, sizeof(*out));
	rag_strlcpy(out->id, mf->id, sizeof(out->id));
	out->version = version;
	out->nchunks = mf->count;
	out->first_chunk = mf->first_chunk;
	out->last_chunk = mf->last_chunk;
	rag_strlcpy(out->kind, mf->kind, sizeof(out->kind));
	for (int k = 0; k < MF_NOBJ; k++)
		out->bytes += mf->obj[k].size;
	rag_strlcpy(out->model_version, model_version, sizeof(out->model_version));
}
