/*
 * metrics.c — qrels and query files, per-query retrieval measures.
 * See metrics.h for the conventions (relevance, duplicates, normalisers).
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag_buf.h"
#include "rag_util.h"

/* ------------------------------------------------------------- files */

static rag_rc read_file(const char *path, char **data, size_t *len, rag_error *err)
{
	rag_buf b;
	rag_rc rc;

	rag_buf_init(&b, EVAL_FILE_MAX);
	if ((rc = rag_buf_read_file(&b, path, err))) {
		rag_buf_release(&b);
		return rc;
	}
	if (!(*data = rag_buf_detach(&b, len)))
		return rag_error_set(err, RAG_ENOMEM, "\"%s\": out of memory", path);
	return RAG_OK;
}

/* The next line of text in place (NUL-terminated, CR dropped), or NULL. */
static char *next_line(char **cur, char *end)
{
	char *s = *cur, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl)
		nl = end;
	*nl = '\0';
	*cur = nl + 1;
	if (nl > s && nl[-1] == '\r')
		nl[-1] = '\0';
	return s;
}

/* Split at whitespace in place: up to max fields, returns how many. */
static size_t split_ws(char *s, char **f, size_t max)
{
	size_t n = 0;

	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (n == max)
			return max + 1;
		f[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = '\0';
	}
	return n;
}

/* ------------------------------------------------------------- qrels */

typedef struct qline {
	const char *qid, *docid;
	int gain;
	size_t line;
} qline;

static int qline_cmp(const void *a, const void *b)
{
	const qline *x = a, *y = b;
	int c = strcmp(x->qid, y->qid);

	if (!c)
		c = strcmp(x->docid, y->docid);
	if (!c)
		c = (x->line > y->line) - (x->line < y->line);
	return c;
}

static rag_rc parse_qrel_lines(char *data, size_t len, const char *name,
			       qline **out, size_t *nout, rag_error *err)
{
	char *cur = data, *line, *f[4];
	qline *v = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	int64_t gain;
	rag_rc rc = RAG_OK;

	while ((line = next_line(&cur, data + len))) {
		lineno++;
		size_t nf = split_ws(line, f, 4);
		if (nf == 0 || f[0][0] == '#')
			continue;
		if (nf != 4) {
			rc = rag_error_set(err, RAG_EPARSE, "%s:%zu: expected \"qid iter docid gain\"",
					   name, lineno);
			goto out;
		}
		if (!rag_parse_i64(f[3], &gain) || gain < -1000 || gain > 1000) {
			rc = rag_error_set(err, RAG_EPARSE, "%s:%zu: bad gain \"%s\"", name, lineno, f[3]);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			qline *p = realloc(v, cap * sizeof(*p));
			if (!p) {
				rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", name);
				goto out;
			}
			v = p;
		}
		v[n++] = (qline){f[0], f[2], (int)gain, lineno};
	}
out:
	if (rc)
		free(v);
	else {
		*out = v;
		*nout = n;
	}
	return rc;
}

/* Group sorted lines into queries; the later of equal (qid, docid) wins. */
static rag_rc group_qrels(eval_qrels *q, const qline *v, size_t n)
{
	q->all = malloc((n ? n : 1) * sizeof(*q->all));
	q->q = malloc((n ? n : 1) * sizeof(*q->q));
	if (!q->all || !q->q)
		return RAG_ENOMEM;
	size_t na = 0;
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && !strcmp(v[i].qid, v[i + 1].qid) &&
		    !strcmp(v[i].docid, v[i + 1].docid))
			continue; /* a later line for the same pair follows */
		if (!q->n || strcmp(q->q[q->n - 1].qid, v[i].qid)) {
			q->q[q->n++] = (eval_qrel){v[i].qid, q->all + na, 0, 0};
		}
		eval_qrel *cur = &q->q[q->n - 1];
		q->all[na++] = (eval_judgement){v[i].docid, v[i].gain};
		cur->njudged++;
		cur->nrel += v[i].gain > 0;
	}
	return RAG_OK;
}

rag_rc eval_qrels_parse(const char *text, size_t len, const char *name,
			eval_qrels *q, rag_error *err)
{
	qline *v = NULL;
	size_t n = 0;
	rag_rc rc;

	memset(q, 0, sizeof(*q));
	q->data = rag_strndup(text, len);
	if (!q->data) {
		rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if ((rc = parse_qrel_lines(q->data, len, name, &v, &n, err)))
		goto out;
	if (n)
		qsort(v, n, sizeof(*v), qline_cmp);
	if ((rc = group_qrels(q, v, n)))
		rag_error_set(err, rc, "%s: out of memory", name);
out:
	free(v);
	if (rc)
		eval_qrels_release(q);
	return rc;
}

rag_rc eval_qrels_load(const char *path, eval_qrels *q, rag_error *err)
{
	char *data = NULL;
	size_t len = 0;
	rag_rc rc;

	memset(q, 0, sizeof(*q));
	if ((rc = read_file(path, &data, &len, err)))
		return rc;
	rc = eval_qrels_parse(data, len, path, q, err);
	free(data);
	return rc;
}

void eval_qrels_release(eval_qrels *q)
{
	free(q->q);
	free(q->all);
	free(q->data);
	memset(q, 0, sizeof(*q));
}

const eval_qrel *eval_qrels_find(const eval_qrels *q, const char *qid)
{
	size_t lo = 0, hi = q->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(qid, q->q[mid].qid);
		if (!c)
			return &q->q[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int eval_qrel_gain(const eval_qrel *j, const char *docid)
{
	size_t lo = 0, hi = j ? j->njudged : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(docid, j->judged[mid].docid);
		if (!c)
			return j->judged[mid].gain;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

bool eval_qrel_scorable(const eval_qrel *j)
{
	return j && j->nrel > 0;
}

/* ----------------------------------------------------------- queries */

rag_rc eval_queries_parse(const char *text, size_t len, const char *name,
			  eval_queries *q, rag_error *err)
{
	char *cur, *line, *tab;
	size_t cap = 0, lineno = 0;
	rag_rc rc = RAG_OK;

	memset(q, 0, sizeof(*q));
	q->data = rag_strndup(text, len);
	if (!q->data) {
		rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	cur = q->data;
	while ((line = next_line(&cur, q->data + len))) {
		lineno++;
		if (!line[strspn(line, " \t")])
			continue;
		tab = strchr(line, '\t');
		if (!tab || tab == line) {
			rc = rag_error_set(err, RAG_EPARSE, "%s:%zu: expected \"id<TAB>text\"",
					   name, lineno);
			goto out;
		}
		*tab = '\0';
		if (q->n == cap) {
			cap = cap ? cap * 2 : 64;
			eval_query *p = realloc(q->q, cap * sizeof(*p));
			if (!p) {
				rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", name);
				goto out;
			}
			q->q = p;
		}
		q->q[q->n++] = (eval_query){line, tab + 1};
	}
out:
	if (rc)
		eval_queries_release(q);
	return rc;
}

rag_rc eval_queries_load(const char *path, eval_queries *q, rag_error *err)
{
	char *data = NULL;
	size_t len = 0;
	rag_rc rc;

	memset(q, 0, sizeof(*q));
	if ((rc = read_file(path, &data, &len, err)))
		return rc;
	rc = eval_queries_parse(data, len, path, q, err);
	free(data);
	return rc;
}

void eval_queries_release(eval_queries *q)
{
	free(q->q);
	free(q->data);
	memset(q, 0, sizeof(*q));
}

/* ---------------------------------------------------------- measures */

/*
 * Walk the first k distinct documents of a ranking. Duplicates are found
 * by comparing with the distinct documents kept so far (at most k of them):
 * O(n k) string compares, fine for the cut-offs used (10, 100).
 */
typedef struct walk {
	const char *const *ranked;
	size_t n, k, i;
	const char **seen;
	size_t nseen;
} walk;

static bool walk_init(walk *w, const char *const *ranked, size_t n, size_t k)
{
	*w = (walk){ranked, n, k, 0, NULL, 0};
	w->seen = malloc((k < n ? k : n ? n : 1) * sizeof(*w->seen));
	return w->seen != NULL;
}

/* The next distinct document (its 1-based rank in *rank), or NULL. */
static const char *walk_next(walk *w, size_t *rank)
{
	while (w->i < w->n && w->nseen < w->k) {
		const char *d = w->ranked[w->i++];
		bool dup = false;
		for (size_t s = 0; s < w->nseen && !dup; s++)
			dup = !strcmp(w->seen[s], d);
		if (dup)
			continue;
		w->seen[w->nseen++] = d;
		*rank = w->nseen;
		return d;
	}
	return NULL;
}

static int gain_desc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x < y) - (x > y);
}

static double ideal_dcg(const eval_qrel *j, size_t k)
{
	int *g = malloc(j->nrel * sizeof(*g));
	size_t n = 0;
	double dcg = 0;

	if (!g)
		return NAN;
	for (size_t i = 0; i < j->njudged; i++)
		if (j->judged[i].gain > 0)
			g[n++] = j->judged[i].gain;
	qsort(g, n, sizeof(*g), gain_desc);
	for (size_t r = 0; r < n && r < k; r++)
		dcg += g[r] / log2((double)r + 2.0);
	free(g);
	return dcg;
}

double eval_ndcg(const eval_qrel *j, const char *const *ranked, size_t n, size_t k)
{
	walk w;
	const char *d;
	size_t rank;
	double dcg = 0, idcg;

	if (!eval_qrel_scorable(j) || !k || !walk_init(&w, ranked, n, k))
		return 0;
	while ((d = walk_next(&w, &rank))) {
		int g = eval_qrel_gain(j, d);
		if (g > 0)
			dcg += g / log2((double)rank + 1.0);
	}
	free(w.seen);
	idcg = ideal_dcg(j, k);
	return idcg > 0 ? dcg / idcg : 0;
}

double eval_ap(const eval_qrel *j, const char *const *ranked, size_t n, size_t k)
{
	walk w;
	const char *d;
	size_t rank, hits = 0;
	double sum = 0;

	if (!eval_qrel_scorable(j) || !k || !walk_init(&w, ranked, n, k))
		return 0;
	while ((d = walk_next(&w, &rank)))
		if (eval_qrel_gain(j, d) > 0)
			sum += (double)++hits / (double)rank;
	free(w.seen);
	return sum / (double)j->nrel;
}

double eval_recall(const eval_qrel *j, const char *const *ranked, size_t n, size_t k)
{
	walk w;
	const char *d;
	size_t rank, hits = 0;

	if (!eval_qrel_scorable(j) || !k || !walk_init(&w, ranked, n, k))
		return 0;
	while ((d = walk_next(&w, &rank)))
		hits += eval_qrel_gain(j, d) > 0;
	free(w.seen);
	return (double)hits / (double)j->nrel;
}

double eval_rr(const eval_qrel *j, const char *const *ranked, size_t n, size_t k)
{
	walk w;
	const char *d;
	size_t rank;
	double rr = 0;

	if (!eval_qrel_scorable(j) || !k || !walk_init(&w, ranked, n, k))
		return 0;
	while ((d = walk_next(&w, &rank)))
		if (eval_qrel_gain(j, d) > 0) {
			rr = 1.0 / (double)rank;
			break;
		}
	free(w.seen);
	return rr;
}

bool eval_run_add(eval_run *r, const eval_qrel *j, const char *const *ranked, size_t n)
{
	if (!eval_qrel_scorable(j)) {
		r->skipped++;
		return false;
	}
	r->ndcg10 += eval_ndcg(j, ranked, n, 10);
	r->map100 += eval_ap(j, ranked, n, 100);
	r->recall100 += eval_recall(j, ranked, n, 100);
	r->mrr10 += eval_rr(j, ranked, n, 10);
	r->scored++;
	return true;
}

void eval_run_means(const eval_run *r, eval_run *out)
{
	double d = r->scored ? (double)r->scored : 1.0;

	out->ndcg10 = r->ndcg10 / d;
	out->map100 = r->map100 / d;
	out->recall100 = r->recall100 / d;
	out->mrr10 = r->mrr10 / d;
	out->scored = r->scored;
	out->skipped = r->skipped;
}
