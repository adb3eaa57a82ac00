/*
 * manifest — the JSON document that names one index version, and the keys
 * of an index's objects. Readers load only what a committed manifest names.
 * Which manifest is committed and newest, and the layout of the keys, is
 * the commit protocol's: see commit.h.
 */
#ifndef MANIFEST_H
#define MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_buf.h"
#include "rag_err.h"

typedef struct mf_object {
	char *key;   /* owned */
	uint64_t size;
} mf_object;

enum { MF_INDEX, MF_CHUNKS, MF_CHUNKS_IDX, MF_LISTS, MF_LISTS_IDX, MF_NOBJ };

/* The object names in the order of the enum above. */
extern const char *const mf_object_names[MF_NOBJ];

/* A source object whose last attempt failed, as the manifest lists it. */
typedef struct mf_failed {
	char *key;             /* owned */
	char *error;           /* owned; at most MF_FAILED_ERROR_MAX bytes */
	int attempts;
	int64_t retry_at;      /* unix s: not fetched again before */
} mf_failed;

/* The manifest lists at most this many failed objects (the catalog has
 * them all): readers such as the query server see what fails without the
 * catalog, and a broken corpus cannot bloat every version. */
#define MF_FAILED_MAX 25
#define MF_FAILED_ERROR_MAX 400

typedef struct mf_segment {
	char id[64];
	char kind[8];          /* "flat" or "ivf" */
	int64_t count;         /* chunks (vectors) */
	int64_t first_chunk, last_chunk;
	int nlist, nprobe;
	mf_object obj[MF_NOBJ];
} mf_segment;

typedef struct manifest {
	int64_t version;
	char index[128];
	int64_t created_at;
	char writer[24];       /* the committing writer's token; "" in old manifests */
	struct {
		char name[64];
		char version[40];
		char *key;     /* weights object; owned */
		int dims;
	} model;
	mf_object catalog;     /* the catalog snapshot */
	mf_segment *segments;  /* owned */
	size_t nsegments;
	int64_t *tombstones;   /* [first,last] chunk id pairs; owned */
	size_t ntombstones;    /* pairs */
	int64_t ids_high;      /* highest chunk id any committed writer claimed
	                        * (commit.h, invariant 7); 0 in old manifests */
	int64_t documents, chunks;
	int64_t source_bytes;  /* of the live documents' source objects */
	struct {               /* the ingest run that made this version */
		int64_t objects_read, bytes_read, segments_written;
		int64_t get_requests, put_requests; /* its storage requests by price
		                        * class (GET/HEAD; PUT/POST/LIST), until the
		                        * manifest; 0 in old manifests */
	} run;
	int64_t failed_total;  /* objects whose last attempt failed */
	mf_failed *failed;     /* the first MF_FAILED_MAX of them by key; owned */
	size_t nfailed;
} manifest;

void manifest_release(manifest *m);

/* Serialise (deterministic key order). */
rag_rc manifest_to_json(const manifest *m, rag_buf *out, rag_error *err);

/* Parse and validate; RAG_ECORRUPT naming the field on bad input. */
rag_rc manifest_from_json(const char *json, size_t len, manifest *m, rag_error *err);

/* {"total": N, "objects": [{"key", "error", "attempts", "retry_at"}]}: the
 * failed objects as the manifest, /v1/status and the map show them. */
struct json_t;
struct json_t *manifest_failed_json(const manifest *m);

/* Bytes of every object the manifest names (segments, catalog snapshot):
 * what the version keeps in the store, the model aside. */
uint64_t manifest_stored_bytes(const manifest *m);

/* True when chunk id is inside a tombstone range (ranges sorted by first). */
bool manifest_is_tombstoned(const manifest *m, int64_t chunk_id);

/* Keys: "<prefix><name>/" + rest. Return RAG_ETOOBIG if out is too small. */
rag_rc mf_index_root(const char *prefix, const char *name, char *out, size_t len);
rag_rc mf_manifest_key(const char *root, int64_t version, char *out, size_t len);
rag_rc mf_latest_key(const char *root, char *out, size_t len);
rag_rc mf_catalog_key(const char *root, int64_t version, const char *token, char *out,
		      size_t len);

/* LATEST's body and its parser. */
rag_rc mf_latest_to_json(int64_t version, const char *manifest_key, rag_buf *out);
rag_rc mf_latest_from_json(const char *json, size_t len, int64_t *version,
			   char *manifest_key, size_t keylen, rag_error *err);

#endif
