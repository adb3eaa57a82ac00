/* Internal to the ingest module: the state of one run. */
#ifndef INGEST_INT_H
#define INGEST_INT_H

#include "ingest.h"

typedef struct run_doc {
	char *key;
	char etag[80];
	uint64_t size;
	int64_t last_modified;
	char type[16];
	char *title;
	char *text;            /* extracted text; chunks point into it */
	size_t text_len;
	uint64_t invalid_bytes;
	size_t first_chunk, nchunks;
	int64_t prior_doc;     /* replaced document, tombstoned */
} run_doc;

typedef struct run_chunk {
	size_t doc;            /* index into docs */
	int ordinal;
	size_t off, len;
	char *heading;
	int page, page_end;    /* citation, as doc_chunk */
	uint64_t src_off, src_end;
} run_chunk;

typedef struct ingest_run_state {
	run_doc *docs;
	size_t ndocs, capdocs;
	run_chunk *chunks;
	size_t nchunks, capchunks;
	cat_object *outcomes;  /* object rows to save (every processed object) */
	size_t noutcomes, capoutcomes;
	int64_t *tombstone_docs;
	size_t ntomb, captomb;
	float *vecs;           /* nchunks x dims once embedded */
} ingest_run_state;

static inline const char *run_chunk_text(const ingest_run_state *r, size_t i)
{
	return r->docs[r->chunks[i].doc].text + r->chunks[i].off;
}

void run_release(ingest_run_state *r);
/* A pass (or refit, or import) begins: remember the "ingest.*" requests so far. */
void ingest_mark_pass(ingest_ctx *ic);
/* The "ingest.*" requests since ingest_mark_pass(), by price class. */
void ingest_pass_requests(const ingest_ctx *ic, int64_t *gets, int64_t *puts);
rag_rc run_embed(const embedder *m, ingest_run_state *r, embed_stats *st, rag_error *err);
rag_rc ingest_commit(ingest_ctx *ic, ingest_run_state *r, ingest_summary *sum, rag_error *err);

#endif
