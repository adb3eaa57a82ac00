/*
 * rag_stage — the one list of storage stage labels.
 *
 * Every storage request is counted under the label of the stage that made
 * it (s3_op.stage, e.g. "query.text"). What a label means to the reports
 * (the map's query path, ingest's summary, `verify`'s request count) is
 * its kind, and the kind comes from this list, never from the label's
 * spelling: a new stage is added here, with its kind, or it is reported
 * as unlisted.
 *
 * Invariants:
 *  1. Labels are unique and at most RAG_STAGE_LABEL_MAX bytes.
 *  2. RAG_STAGE_QUERY stages are exactly the reads a query makes itself,
 *     counted in that query's trace; the query server's other reads (load,
 *     reload, the query log, the map) are RAG_STAGE_SERVE.
 *  3. rag_stage_kind_of() of a label not in the list is RAG_STAGE_UNLISTED,
 *     which no report counts as ingestion or as the query path.
 */
#ifndef RAG_STAGE_H
#define RAG_STAGE_H

#include <stddef.h>

#define RAG_STAGE_LABEL_MAX 47

typedef enum {
	RAG_STAGE_INGEST,   /* ingestion: list, fetch, embed model, write, commit, gc */
	RAG_STAGE_QUERY,    /* a query's own reads: the query path */
	RAG_STAGE_SERVE,    /* the query server's reads outside queries */
	RAG_STAGE_TOOL,     /* CLI tools and benchmarks */
	RAG_STAGE_UNLISTED, /* a label this list does not name */
} rag_stage_kind;

typedef struct rag_stage {
	const char *label;
	rag_stage_kind kind;
	const char *what;   /* one line for help texts and the map */
} rag_stage;

/* The list, in display order; *n gets its length. */
const rag_stage *rag_stage_list(size_t *n);
/* The entry of label, or NULL when unlisted. */
const rag_stage *rag_stage_find(const char *label);
rag_stage_kind rag_stage_kind_of(const char *label);
/* "ingest", "query", "serve", "tool", "unlisted". */
const char *rag_stage_kind_name(rag_stage_kind k);

#endif
