/*
 * catalog — ingestion state in SQLite (WAL): source objects seen, documents,
 * chunks with their text (and an FTS5 index over it), segments and index
 * versions. A snapshot of it is published with every index version.
 *
 * Invariants:
 *  1. The schema version is PRAGMA user_version; catalog_open() applies the
 *     migrations in order inside one transaction, so a catalog is always at
 *     one known version.
 *  2. An index version is `pending` until its manifest and LATEST are in the
 *     store; only then is it marked published. A pending version found at
 *     start-up means the last run died mid-commit (see ingest recovery).
 *  3. A document is never deleted while a live segment holds its chunks: it
 *     is tombstoned (live = 0) and its chunks stay until compaction drops
 *     the segment that holds them.
 *  4. Citations (schema 4): each chunk row has page, page_end (PDF pages,
 *     1-based; 0: none) and src_off, src_end (the source object's bytes
 *     [src_off, src_end); src_end 0: none), as chunk.h defines them. Rows
 *     from before schema 4 read as 0 (no citation), never as wrong values.
 *
 * Not thread-safe: one catalog handle per thread.
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"

typedef struct catalog catalog;

#define CATALOG_OBJ_STATUS(X) \
	X(PENDING, "pending") X(INDEXED, "indexed") X(SKIPPED, "skipped") \
	X(REJECTED, "rejected") X(FAILED, "failed") X(DELETED, "deleted")

typedef enum {
#define CAT_X(name, str) OBJ_##name,
	CATALOG_OBJ_STATUS(CAT_X)
#undef CAT_X
	OBJ_STATUS_COUNT
} obj_status;

const char *obj_status_name(obj_status s);
bool obj_status_parse(const char *s, obj_status *out);

typedef struct cat_object {
	char *key;            /* owned */
	char etag[80];
	uint64_t size;
	int64_t last_modified;
	obj_status status;
	char *error;          /* owned; NULL unless failed/skipped/rejected */
	int attempts;         /* processing attempts since the last success */
	int64_t doc_id;       /* the live document, 0 if none */
	int64_t failed_at;    /* failed: when the last attempt failed (unix s),
	                       * the start of its backoff; 0 otherwise */
} cat_object;

typedef struct cat_doc {
	const char *key;
	const char *etag;
	const char *type;
	const char *title;
	uint64_t bytes;       /* object size */
	uint64_t text_bytes;  /* extracted text */
	uint64_t invalid_bytes;
	int nchunks;
	const char *segment_id;
} cat_doc;

typedef struct cat_chunk {
	int64_t id;           /* > 0: this chunk id (ids come from the writer's
	                       * claimed block, commit.h); 0: the next one */
	int64_t doc_id;
	int ordinal;
	uint64_t off, len;    /* in the extracted text */
	const char *heading;
	const char *text;
	size_t text_len;
	const char *segment_id;
	uint64_t rec_off;     /* the chunk's record in the segment's chunks.bin */
	uint32_t rec_len;
	int page, page_end;   /* citation (invariant 4) */
	uint64_t src_off, src_end;
} cat_chunk;

typedef struct cat_segment {
	char id[64];
	int64_t version;      /* the version that created it */
	int64_t nchunks;
	int64_t first_chunk, last_chunk;
	char kind[8];         /* "flat" or "ivf" */
	uint64_t bytes;
	char model_version[40];
} cat_segment;

/* Open (creating and migrating as needed) the catalog at path. */
rag_rc catalog_open(const char *path, catalog **out, rag_error *err);
void catalog_close(catalog *c);
int catalog_schema_version(catalog *c);

rag_rc catalog_begin(catalog *c, rag_error *err);
rag_rc catalog_commit(catalog *c, rag_error *err);
void catalog_rollback(catalog *c);

/* ---- objects ---- */
/* All objects, sorted by key. Free with cat_objects_free(). */
rag_rc catalog_objects_load(catalog *c, cat_object **out, size_t *n, rag_error *err);
void cat_objects_free(cat_object *objs, size_t n);
/* Insert or replace by key. */
rag_rc catalog_object_save(catalog *c, const cat_object *o, rag_error *err);

/* Failed objects by key, at most limit of them (0: all), and how many
 * there are in *total. Free with cat_objects_free(). */
rag_rc catalog_failed(catalog *c, size_t limit, cat_object **out, size_t *n, int64_t *total,
		      rag_error *err);
/* Counts per status into counts[OBJ_STATUS_COUNT]. */
rag_rc catalog_object_counts(catalog *c, int64_t *counts, rag_error *err);

/* ---- documents and chunks ---- */
rag_rc catalog_doc_insert(catalog *c, const cat_doc *d, int64_t *doc_id, rag_error *err);
rag_rc catalog_doc_tombstone(catalog *c, int64_t doc_id, rag_error *err);
/* The next chunk id that catalog_chunk_insert() will assign. */
rag_rc catalog_next_chunk_id(catalog *c, int64_t *id, rag_error *err);
rag_rc catalog_chunk_insert(catalog *c, const cat_chunk *ch, int64_t *chunk_id, rag_error *err);
/* Chunk ids of tombstoned documents still held by live segments, as
 * [first, last] ranges (ids[2i], ids[2i+1]). Caller frees *ids. */
rag_rc catalog_tombstone_ranges(catalog *c, int64_t **ids, size_t *nranges, rag_error *err);

/* Visit every live chunk (id order): its id, doc key and text. */
typedef rag_rc (*catalog_chunk_fn)(void *ctx, int64_t chunk_id, const char *key,
				   const char *text, size_t len);
rag_rc catalog_each_live_chunk(catalog *c, catalog_chunk_fn fn, void *ctx, rag_error *err);

/* A stored chunk with its document key, for rebuilding segments. */
typedef struct cat_chunk_row {
	int64_t id;
	const char *key;
	int ordinal;
	uint64_t off, len;
	const char *heading;
	const char *text;
	size_t text_len;
	int page, page_end;   /* citation (invariant 4) */
	uint64_t src_off, src_end;
} cat_chunk_row;
typedef rag_rc (*catalog_row_fn)(void *ctx, const cat_chunk_row *row);

/* Visit the live chunks of segment seg (every live chunk when seg is NULL),
 * in id order. Borrowed strings are valid during the call only. */
rag_rc catalog_each_chunk_row(catalog *c, const char *seg, catalog_row_fn fn, void *ctx,
			      rag_error *err);

/* Record that a chunk now lives in segment seg at [rec_off, rec_off+rec_len). */
rag_rc catalog_chunk_move(catalog *c, int64_t chunk_id, const char *seg, uint64_t rec_off,
			  uint32_t rec_len, rag_error *err);
/* Point the live documents of segment from_seg at the segment their chunks
 * moved to (call after catalog_chunk_move of all their chunks). */
rag_rc catalog_docs_follow(catalog *c, const char *from_seg, rag_error *err);

/* Chunks of tombstoned documents held by segment seg. */
int64_t catalog_segment_dead_chunks(catalog *c, const char *seg);

/* ---- segments and versions ---- */
rag_rc catalog_segment_insert(catalog *c, const cat_segment *s, rag_error *err);
/* Mark a segment dropped (compaction) together with its tombstoned docs. */
rag_rc catalog_segment_drop(catalog *c, const char *id, rag_error *err);
rag_rc catalog_segments_live(catalog *c, cat_segment **out, size_t *n, rag_error *err);

rag_rc catalog_version_add(catalog *c, int64_t version, const char *model_version,
			   rag_error *err);
rag_rc catalog_version_publish(catalog *c, int64_t version, rag_error *err);
/* Newest published version (0 if none) and whether a pending one exists. */
rag_rc catalog_versions(catalog *c, int64_t *published, int64_t *pending, rag_error *err);

typedef struct catalog_stats {
	int64_t documents;    /* live */
	int64_t tombstoned;
	int64_t chunks;       /* live */
	int64_t segments;     /* live */
	int64_t text_bytes;
	int64_t source_bytes; /* the live documents' source objects */
} catalog_stats;
rag_rc catalog_stats_get(catalog *c, catalog_stats *st, rag_error *err);

/* Key/value metadata (model version, last run summary...). *value owned. */
rag_rc catalog_meta_set(catalog *c, const char *key, const char *value, rag_error *err);
rag_rc catalog_meta_get(catalog *c, const char *key, char **value, rag_error *err);

/* Write a consistent, compacted copy of the catalog to path (VACUUM INTO). */
rag_rc catalog_snapshot(catalog *c, const char *path, rag_error *err);

/* One chunk with its document key; strings owned (cat_chunk_out_release). */
typedef struct cat_chunk_out {
	char *key;
	int ordinal;
	uint64_t off, len;
	char *heading;
	char *text;
	size_t text_len;
	int page, page_end;   /* citation (invariant 4) */
	uint64_t src_off, src_end;
} cat_chunk_out;
rag_rc catalog_chunk_get(catalog *c, int64_t chunk_id, cat_chunk_out *out, rag_error *err);
void cat_chunk_out_release(cat_chunk_out *o);

/* BM25 over live chunk text (FTS5 with the model's tokenizer); the query's
 * words are quoted, never interpreted as FTS5 syntax. */
rag_rc catalog_search_bm25(catalog *c, const char *query, int k, int64_t *ids,
			   double *scores, int *n, rag_error *err);

/*
 * Ids of the live chunks whose document key starts with prefix (NULL or "":
 * any) and whose type is one of types[0..ntypes) (ntypes 0: any), ascending.
 * *ids is owned by the caller (free()); NULL when *n is 0.
 */
rag_rc catalog_chunk_ids_matching(catalog *c, const char *prefix, const char *const *types,
				  int ntypes, int64_t **ids, size_t *n, rag_error *err);

#endif
