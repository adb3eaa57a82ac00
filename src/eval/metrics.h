/*
 * metrics — retrieval quality: relevance judgements (TREC qrels), query
 * files, and the per-query measures nDCG@k, AP@k, recall@k and RR@k.
 *
 * Conventions, the same for every measure:
 *  1. A document is relevant when its judged gain is > 0; unjudged documents
 *     and gains <= 0 count as gain 0.
 *  2. The ranked list is read best first; a document id that appeared
 *     earlier in the list is ignored (it takes no rank), so rank r is the
 *     r-th distinct document. Only the first k distinct documents count.
 *  3. Every measure is normalised by what the judgements make possible:
 *     nDCG by the ideal DCG of all judged relevant documents of the query,
 *     AP and recall by the number of relevant documents R (not min(R, k)).
 *  4. A query with no relevant document has no defined score: callers skip
 *     it and count it (eval_run_add does both).
 *
 * nDCG uses linear gains: DCG@k = sum_{r=1..k} gain_r / log2(r + 1).
 * Everything here is pure computation on caller data: thread-safe.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "rag_err.h"

/* Largest qrels or queries file accepted. */
#define EVAL_FILE_MAX (256u << 20)

typedef struct eval_judgement {
	const char *docid;
	int gain;
} eval_judgement;

/* The judgements of one query, sorted by docid (distinct). */
typedef struct eval_qrel {
	const char *qid;
	eval_judgement *judged;
	size_t njudged;
	size_t nrel; /* judged with gain > 0 */
} eval_qrel;

/* All judgements, sorted by qid. Strings point into data (owned). */
typedef struct eval_qrels {
	eval_qrel *q;
	size_t n;
	eval_judgement *all;
	char *data;
} eval_qrels;

typedef struct eval_query {
	const char *id;
	const char *text;
} eval_query;

/* Queries in file order. Strings point into data (owned). */
typedef struct eval_queries {
	eval_query *q;
	size_t n;
	char *data;
} eval_queries;

/*
 * Parse TREC qrels text ("qid iter docid gain" per line, whitespace
 * separated; blank lines and lines starting with '#' skipped). When a
 * (qid, docid) pair appears twice the later line wins. name is used in
 * error messages ("name:line: ..."). RAG_EPARSE, RAG_ENOMEM.
 * OUT q: release with eval_qrels_release().
 */
rag_rc eval_qrels_parse(const char *text, size_t len, const char *name,
			eval_qrels *q, rag_error *err);
/* The same from a file (at most EVAL_FILE_MAX bytes). RAG_EIO, RAG_ETOOBIG. */
rag_rc eval_qrels_load(const char *path, eval_qrels *q, rag_error *err);
void eval_qrels_release(eval_qrels *q);

/* The judgements of qid, or NULL when it has none. Borrowed from q. */
const eval_qrel *eval_qrels_find(const eval_qrels *q, const char *qid);

/* The gain of docid for the query (0 when unjudged). */
int eval_qrel_gain(const eval_qrel *j, const char *docid);

/*
 * Parse queries ("id<TAB>text" per line; blank lines skipped; a trailing
 * CR is dropped). Lines without a tab or with an empty id are RAG_EPARSE.
 * OUT q: release with eval_queries_release().
 */
rag_rc eval_queries_parse(const char *text, size_t len, const char *name,
			  eval_queries *q, rag_error *err);
rag_rc eval_queries_load(const char *path, eval_queries *q, rag_error *err);
void eval_queries_release(eval_queries *q);

/*
 * Per-query measures of the ranked list (n document ids, best first) at
 * cut-off k >= 1. j may be NULL (no judgements): all return 0, as they do
 * when j has no relevant document.
 */
double eval_ndcg(const eval_qrel *j, const char *const *ranked, size_t n, size_t k);
double eval_ap(const eval_qrel *j, const char *const *ranked, size_t n, size_t k);
double eval_recall(const eval_qrel *j, const char *const *ranked, size_t n, size_t k);
double eval_rr(const eval_qrel *j, const char *const *ranked, size_t n, size_t k);

/* True when the query can be scored (it has a relevant document). */
bool eval_qrel_scorable(const eval_qrel *j);

/* Sums over the scored queries of a run: nDCG@10, MAP@100, R@100, MRR@10. */
typedef struct eval_run {
	double ndcg10, map100, recall100, mrr10;
	size_t scored;  /* queries with a relevant document */
	size_t skipped; /* queries without (not in the means) */
} eval_run;

/*
 * Add one query's ranking to the run, or count it as skipped when j is
 * NULL or has no relevant document. Returns true when it was scored.
 */
bool eval_run_add(eval_run *r, const eval_qrel *j, const char *const *ranked, size_t n);

/* The means over scored queries (0 when none); out may alias nothing. */
void eval_run_means(const eval_run *r, eval_run *out);

#endif
