/*
 * qrequest — the body of POST /v1/query, validated.
 *
 *   {"q": "text", "k": 5, "retriever": "dense",
 *    "filter": {"prefix": "docs/", "type": ["markdown", "pdf"]},
 *    "trace": "full", "explain": false}
 *
 * Only "q" is required. A field not listed here, or a key inside "filter"
 * other than "prefix" and "type", is an error naming it. Types are the
 * catalog's names (text, markdown, html, pdf); "md" and "txt" are accepted
 * for markdown and text.
 *
 * Pure (no I/O, no shared state): the server calls it on every request
 * body, and a fuzz target calls it on anything (tests/fuzz/fuzz_qrequest.c).
 */
#ifndef QREQUEST_H
#define QREQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qindex.h"
#include "rag_err.h"

typedef struct qrequest {
	char *text;            /* owned; NUL-terminated valid UTF-8, no NUL inside */
	size_t len;            /* 1..max_query_bytes, not only whitespace */
	int k;                 /* 1..max_k; 5 when absent */
	qretriever retriever;  /* QRET_DENSE when absent */
	qfilter filter;        /* prefix owned; empty when absent */
	bool trace_full;       /* "trace": "full" (false for "summary" or absent) */
	bool explain;          /* "explain": true */
} qrequest;

/*
 * The catalog's name for a document type given as s ("markdown" or "md"
 * -> "markdown"; static), or NULL if s names no type.
 */
const char *qrequest_type_name(const char *s);

/*
 * Add type name s to f (deduplicated). RAG_EINVAL, err naming s, if it is
 * not a type or f already holds QFILTER_MAX_TYPES.
 */
rag_rc qfilter_add_type(qfilter *f, const char *s, rag_error *err);

/*
 * Parse and validate body (len bytes, not NUL-terminated; NULL when len is
 * 0). RAG_OK: *out filled, release with qrequest_release(). RAG_EINVAL: the
 * body is not a valid query; err->msg is the sentence the server answers
 * with (400), e.g. "field \"k\" must be an integer in 1..100". RAG_ENOMEM.
 * On error *out is zeroed.
 */
rag_rc qrequest_parse(const char *body, size_t len, int64_t max_query_bytes, int64_t max_k,
		      qrequest *out, rag_error *err);

/* Free the text and the filter's prefix and zero r. A zeroed r is fine. */
void qrequest_release(qrequest *r);

#endif
