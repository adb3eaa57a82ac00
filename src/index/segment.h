/*
 * segment — one immutable slice of an index version, as objects:
 *
 *   index.faiss  the FAISS index (flat or IVF) over the segment's chunk ids
 *   chunks.bin   chunk records back to back; one record = a JSON header line
 *                ({"id","key","ord","off","len","heading"}, plus the optional
 *                citation "page":[first,last] and "src":[start,end] when
 *                known; readers treat their absence as "none") + "\n" + the text,
 *                so one ranged GET returns everything a hit needs
 *   chunks.idx   the pointer table: "RMCI" u32 1 | u64 n | n x {i64 id,
 *                u64 rec_off, u32 rec_len, u32 0}, sorted by id
 *   lists.bin    per IVF list, back to back: the list as vindex_export_lists()
 *                lays it out (u32 count | i64 ids | f32 vecs), then its record
 *                table: count x {u64 rec_off, u32 rec_len} in list order, so one
 *                ranged GET of a list gives the vectors and where each member's
 *                chunk record is in chunks.bin (object mode needs nothing else)
 *   lists.idx    "RMLI" u32 1 | u32 dims | u32 nlist | u32 has_centroids |
 *                f32 centroids[nlist*dims] (if any) | u64 offsets[nlist+1]
 *
 * All integers little-endian (the formats are written and read on
 * little-endian hosts; segment_* check the magic and every length).
 */
#ifndef SEGMENT_H
#define SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "manifest.h"
#include "rag_buf.h"
#include "rag_err.h"
#include "s3.h"
#include "vindex.h"

typedef struct seg_chunk {
	int64_t id;
	const char *key;      /* source object key */
	int ordinal;
	uint64_t off, len;    /* in the document's extracted text */
	const char *heading;
	const char *text;
	size_t text_len;
	int page, page_end;   /* citation (chunk.h invariant 5): PDF pages, 0: none */
	uint64_t src_off, src_end; /* source bytes [src_off, src_end); src_end 0: none */
} seg_chunk;

/* A segment built in memory, ready to upload. */
typedef struct seg_build {
	rag_buf obj[MF_NOBJ];
	uint64_t *rec_off;    /* per input chunk: its record in chunks.bin */
	uint32_t *rec_len;
	char kind[8];
	int nlist, nprobe;
	size_t count;
	int64_t first_chunk, last_chunk;
} seg_build;

/* Build every object of a segment over n chunks (ids ascending) and their
 * vectors (n x dims). Release with seg_build_release(). */
rag_rc segment_build(int dims, const seg_chunk *chunks, const float *vecs, size_t n,
		     const vindex_build_opts *opts, seg_build *out, rag_error *err);
void seg_build_release(seg_build *b);

/* PUT the objects (in parallel) under <root>segments/<id>/ and describe them in mf. */
rag_rc segment_upload(s3_client *c, const s3_op *op, const char *root, const char *id,
		      const seg_build *b, mf_segment *mf, rag_error *err);

/* The catalog's row of segment mf, created by version with the model of
 * model_version (what every writer inserts with catalog_segment_insert()). */
void segment_catalog_row(const mf_segment *mf, int64_t version, const char *model_version,
			 cat_segment *out);

/* ---- reading ---- */

typedef struct seg_ptr {
	int64_t id;
	uint64_t rec_off;
	uint32_t rec_len;
} seg_ptr;

/* Parse chunks.idx. *ptrs is malloc'd (caller frees). */
rag_rc segment_parse_chunk_idx(const char *data, size_t len, seg_ptr **ptrs, size_t *n,
			       rag_error *err);
/* Binary search a pointer table; NULL if absent. */
const seg_ptr *segment_find_ptr(const seg_ptr *ptrs, size_t n, int64_t id);

typedef struct seg_record {
	int64_t id;
	char *key;            /* owned */
	int ordinal;
	uint64_t off, len;
	char *heading;        /* owned */
	const char *text;     /* borrowed from the record bytes */
	size_t text_len;
	int page, page_end;   /* citation (chunk.h invariant 5): PDF pages, 0: none */
	uint64_t src_off, src_end; /* source bytes [src_off, src_end); src_end 0: none */
} seg_record;

/* Parse one chunk record (exactly its bytes). */
rag_rc segment_parse_record(const char *data, size_t len, seg_record *rec, rag_error *err);
void seg_record_release(seg_record *rec);

typedef struct seg_lists {
	int dims, nlist;
	float *centroids;     /* NULL for a flat segment (one list) */
	uint64_t *offsets;    /* nlist + 1 */
} seg_lists;

rag_rc segment_parse_lists_idx(const char *data, size_t len, seg_lists *out, rag_error *err);
void seg_lists_release(seg_lists *l);

/*
 * One list region of lists.bin, decoded in place: the only reader of that
 * layout (qindex and verify use it, nothing else decodes the bytes).
 *
 *   u32 count | count x i64 id | count x dims f32 vector   (vec_len bytes:
 *               the list as vindex_export_lists() lays it out)
 *   count x {u64 rec_off, u32 rec_len}                      (record table)
 *
 * Once segment_list_view() returned RAG_OK:
 *  1. the region is exactly 4 + count * (8 + 4 * dims + 12) bytes;
 *  2. data[0, vec_len) is what vindex_scan_lists() reads;
 *  3. member i < count has an id, a vector and a record pointer, in list
 *     order; the accessors read them with memcpy (no alignment needed) as
 *     the little-endian values they are stored as.
 * The view borrows data: valid while those bytes are. Accessors do not
 * check i; i < count is the caller's.
 */
typedef struct seg_list_view {
	const char *data;     /* the region (borrowed) */
	size_t vec_len;       /* bytes vindex_scan_lists() reads */
	uint32_t count;       /* members */
	int dims;
} seg_list_view;

/* Decode the region data[0, len) for dims-dimensional vectors.
 * RAG_ECORRUPT, naming the sizes, if they do not add up (invariant 1). */
rag_rc segment_list_view(const char *data, size_t len, int dims, seg_list_view *out,
			 rag_error *err);

/* Member i's chunk id. */
int64_t seg_list_id(const seg_list_view *l, uint32_t i);

/* Member i's vector: dims floats copied into out. */
void seg_list_vector(const seg_list_view *l, uint32_t i, float *out);

/* Member i's vector as stored (dims little-endian f32, unaligned; borrowed),
 * for hashing the bytes as they are. */
const char *seg_list_vector_bytes(const seg_list_view *l, uint32_t i);

/* Member i's chunk record in chunks.bin. */
void seg_list_record(const seg_list_view *l, uint32_t i, uint64_t *rec_off,
		     uint32_t *rec_len);

/* The position of chunk id among the members, or -1 (a linear scan: a list
 * is in FAISS's order, not sorted). */
int64_t seg_list_find(const seg_list_view *l, int64_t id);

/*
 * The older form of the same decoding, kept for the format tests and the
 * fuzz target (tests/unit/test_formats.c, tests/fuzz/fuzz_segment.c); both
 * go through segment_list_view(). *vec_len is the view's vec_len, *recs its
 * record table, *count its members; segment_list_record() reads entry pos
 * of such a table.
 */
rag_rc segment_split_list(const char *data, size_t len, int dims, size_t *vec_len,
			  const char **recs, uint32_t *count, rag_error *err);
void segment_list_record(const char *recs, uint32_t pos, uint64_t *rec_off, uint32_t *rec_len);

#endif
