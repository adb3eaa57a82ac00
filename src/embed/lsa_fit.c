/*
 * lsa_fit.c — fitting the model: corpus statistics, vocabulary, TF-IDF,
 * and a randomized truncated SVD (Halko, Martinsson, Tropp 2011, alg. 4.4).
 *
 * X is the (docs x terms) matrix of L2-normalised log-entropy rows
 * (w = (1 + ln tf) * g, see embed.h), held sparse
 * (CSR). Dense matrices are row-major; a row-major (m x l) matrix is the
 * column-major (l x m) one LAPACK sees, so orthonormalising its columns is
 * an LQ factorisation (sgelqf + sorglq) of that transpose. All products go
 * through OpenBLAS: sparse-times-dense as one saxpy per non-zero.
 *
 * With l = k + oversampling columns:
 *   Y = orth(X Omega); q times { Z = orth(X^T Y); Y = orth(X Z) }
 *   Z = X^T Y = Qz R (R upper triangular, l x l); R = Ur S Wr^T
 *   right singular vectors of X: Qz Ur; P = (Qz Ur)[:, :k] diag(S^a).
 */
#include "embed_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

#define FIT_CACHE_MAX (1u << 20) /* folded words remembered while fitting */
#define FIT_DICT_MAX (1u << 28)  /* distinct stems in a fitting corpus */

/* LAPACK, Fortran calling convention (trailing hidden string lengths). */
extern void sgelqf_(const int *m, const int *n, float *a, const int *lda,
		    float *tau, float *work, const int *lwork, int *info);
extern void sorglq_(const int *m, const int *n, const int *k, float *a,
		    const int *lda, const float *tau, float *work,
		    const int *lwork, int *info);
extern void sgesvd_(const char *jobu, const char *jobvt, const int *m,
		    const int *n, float *a, const int *lda, float *s, float *u,
		    const int *ldu, float *vt, const int *ldvt, float *work,
		    const int *lwork, int *info, size_t ljobu, size_t ljobvt);

/* ---------------------------------------------------------- sparse */

typedef struct csr {
	size_t rows, cols;
	size_t *rowp; /* rows + 1 */
	uint32_t *col;
	float *val;
	size_t nnz, cap;
} csr;

static void csr_release(csr *x)
{
	free(x->rowp);
	free(x->col);
	free(x->val);
	memset(x, 0, sizeof(*x));
}

static rag_rc csr_push(csr *x, uint32_t col, float val)
{
	if (x->nnz == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4096;
		uint32_t *c = realloc(x->col, cap * sizeof(*c));
		if (!c)
			return RAG_ENOMEM;
		x->col = c;
		float *v = realloc(x->val, cap * sizeof(*v));
		if (!v)
			return RAG_ENOMEM;
		x->val = v;
		x->cap = cap;
	}
	x->col[x->nnz] = col;
	x->val[x->nnz++] = val;
	return RAG_OK;
}

/* Y (rows x l) = X B, B (cols x l). */
static void csr_mul(const csr *x, const float *b, int l, float *y)
{
	memset(y, 0, x->rows * (size_t)l * sizeof(*y));
	for (size_t i = 0; i < x->rows; i++)
		for (size_t p = x->rowp[i]; p < x->rowp[i + 1]; p++)
			cblas_saxpy(l, x->val[p], b + (size_t)x->col[p] * (size_t)l, 1,
				    y + i * (size_t)l, 1);
}

/* Z (cols x l) = X^T A, A (rows x l). */
static void csr_mul_t(const csr *x, const float *a, int l, float *z)
{
	memset(z, 0, x->cols * (size_t)l * sizeof(*z));
	for (size_t i = 0; i < x->rows; i++)
		for (size_t p = x->rowp[i]; p < x->rowp[i + 1]; p++)
			cblas_saxpy(l, x->val[p], a + i * (size_t)l, 1,
				    z + (size_t)x->col[p] * (size_t)l, 1);
}

/* ------------------------------------------------ corpus statistics */

typedef struct fit_corpus {
	text_tok tk;
	text_map dict;  /* stem -> dictionary id */
	text_map cache; /* folded word -> dictionary id; -2 for a stopword */
	uint32_t *df;    /* per dictionary id */
	uint32_t *last;  /* per id: 1 + the last document that had it */
	size_t *pos;     /* per id: its entry in counts for that document */
	size_t *soff;    /* per id: the stem's offset in dict's arena */
	size_t ndict, capdict;
	csr counts;      /* raw term counts, columns are dictionary ids */
	uint32_t doc_no; /* 1-based */
	rag_rc rc;       /* first failure inside the word callback */
} fit_corpus;

static void corpus_release(fit_corpus *fc)
{
	text_tok_release(&fc->tk);
	text_map_release(&fc->dict);
	text_map_release(&fc->cache);
	free(fc->df);
	free(fc->last);
	free(fc->pos);
	free(fc->soff);
	csr_release(&fc->counts);
	memset(fc, 0, sizeof(*fc));
}

#define GROW(arr, cap) \
	do { \
		void *p_ = realloc((arr), (cap) * sizeof(*(arr))); \
		if (!p_) \
			return RAG_ENOMEM; \
		(arr) = p_; \
	} while (0)

static rag_rc dict_reserve(fit_corpus *fc)
{
	size_t cap = fc->capdict ? fc->capdict * 2 : 4096;

	if (fc->ndict < fc->capdict)
		return RAG_OK;
	GROW(fc->df, cap);
	GROW(fc->last, cap);
	GROW(fc->pos, cap);
	GROW(fc->soff, cap);
	fc->capdict = cap;
	return RAG_OK;
}

/* The dictionary id of a stem, added when new. */
static rag_rc dict_id(fit_corpus *fc, const char *stem, size_t n, int32_t *id)
{
	rag_rc rc;

	*id = text_map_get(&fc->dict, stem, n);
	if (*id >= 0)
		return RAG_OK;
	if ((rc = dict_reserve(fc)) ||
	    (rc = text_map_put(&fc->dict, stem, n, (int32_t)fc->ndict, id)))
		return rc;
	fc->df[*id] = 0;
	fc->last[*id] = 0;
	fc->soff[*id] = text_map_find_off(&fc->dict, stem, n);
	fc->ndict++;
	return RAG_OK;
}

/* The dictionary id of a folded word (new stems are added), -2 stopword. */
static rag_rc word_id(fit_corpus *fc, const char *word, size_t len, int32_t *id)
{
	size_t n;
	const char *st;
	rag_rc rc;

	*id = text_map_get(&fc->cache, word, len);
	if (*id != -1)
		return RAG_OK;
	*id = -2;
	if (!text_is_stopword(word, len)) {
		st = text_tok_stem(&fc->tk, word, len, &n);
		if (n <= EMBED_TERM_MAX && (rc = dict_id(fc, st, n, id)))
			return rc;
	}
	rc = text_map_put(&fc->cache, word, len, *id, NULL);
	return rc == RAG_ETOOBIG ? RAG_OK : rc; /* a full cache costs speed */
}

static void corpus_word(void *p, const char *word, size_t len)
{
	fit_corpus *fc = p;
	int32_t id;

	if (fc->rc || (fc->rc = word_id(fc, word, len, &id)) || id < 0)
		return;
	if (fc->last[id] == fc->doc_no) {
		fc->counts.val[fc->pos[id]] += 1.0f;
		return;
	}
	fc->last[id] = fc->doc_no;
	fc->df[id]++;
	fc->pos[id] = fc->counts.nnz;
	fc->rc = csr_push(&fc->counts, (uint32_t)id, 1.0f);
}

static rag_rc corpus_build(fit_corpus *fc, const char *const *texts,
			   const size_t *lens, size_t n, rag_error *err)
{
	text_tok_init(&fc->tk);
	text_map_init(&fc->dict, FIT_DICT_MAX);
	text_map_init(&fc->cache, FIT_CACHE_MAX);
	fc->counts.rows = n;
	fc->counts.rowp = malloc((n + 1) * sizeof(*fc->counts.rowp));
	if (!fc->counts.rowp)
		return rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
	fc->counts.rowp[0] = 0;
	for (size_t i = 0; i < n; i++) {
		fc->doc_no = (uint32_t)(i + 1);
		text_words(texts[i], lens[i], corpus_word, fc);
		if (fc->rc == RAG_ETOOBIG)
			return rag_error_set(err, RAG_ETOOBIG,
					     "embed fit: more than %u distinct terms", FIT_DICT_MAX);
		if (fc->rc)
			return rag_error_set(err, fc->rc, "embed fit: document %zu: %s",
					     i, rag_rc_message(fc->rc));
		fc->counts.rowp[i + 1] = fc->counts.nnz;
	}
	fc->counts.cols = fc->ndict;
	return RAG_OK;
}

/* ------------------------------------------------------- vocabulary */

typedef struct cand {
	uint32_t df, id;
	const char *s;
} cand;

static int cand_cmp(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	if (x->df != y->df)
		return x->df > y->df ? -1 : 1;
	return strcmp(x->s, y->s);
}

/*
 * Choose the terms (df >= min_df, highest df first, at most max_vocab) and
 * add them to m. OUT remap: dictionary id -> term or -1.
 */
static rag_rc vocab_build(const fit_corpus *fc, size_t ndocs, const embed_fit_opts *o,
			  lsa_model *m, int32_t **remap, rag_error *err)
{
	cand *c = malloc((fc->ndict ? fc->ndict : 1) * sizeof(*c));
	int32_t *rm = malloc((fc->ndict ? fc->ndict : 1) * sizeof(*rm));
	size_t nc = 0;
	rag_rc rc = RAG_OK;

	if (!c || !rm) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	for (size_t i = 0; i < fc->ndict; i++) {
		rm[i] = -1;
		if (fc->df[i] >= (uint32_t)o->min_df)
			c[nc++] = (cand){fc->df[i], (uint32_t)i,
					 text_map_key_at(&fc->dict, fc->soff[i])};
	}
	if (!nc) {
		rc = rag_error_set(err, RAG_EINVAL,
				   "embed fit: no term occurs in at least %d of the %zu documents",
				   o->min_df, ndocs);
		goto out;
	}
	qsort(c, nc, sizeof(*c), cand_cmp);
	if (nc > (size_t)o->max_vocab)
		nc = (size_t)o->max_vocab;
	for (size_t t = 0; t < nc; t++) {
		if ((rc = lsa_add_term(m, c[t].s, strlen(c[t].s)))) {
			rag_error_set(err, rc, "embed fit: vocabulary: %s", rag_rc_message(rc));
			goto out;
		}
		rm[c[t].id] = (int32_t)t;
	}
out:
	free(c);
	if (rc)
		free(rm);
	else
		*remap = rm;
	return rc;
}

/*
 * The log-entropy global weight of every term:
 * g_t = 1 + sum_d p_td ln p_td / ln N, p_td = tf_td / sum_d tf_td.
 * 1 for a term concentrated in one document, 0 for one spread evenly
 * over all N; g_t = 1 everywhere when N = 1.
 */
static rag_rc global_weights(const csr *counts, const int32_t *remap,
			     size_t ndocs, lsa_model *m, rag_error *err)
{
	double *gf = calloc(m->nterms, sizeof(*gf));
	double *ent = calloc(m->nterms, sizeof(*ent));
	rag_rc rc = RAG_OK;

	m->gw = malloc(m->nterms * sizeof(*m->gw));
	if (!gf || !ent || !m->gw) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	for (size_t p = 0; p < counts->nnz; p++)
		if (remap[counts->col[p]] >= 0)
			gf[remap[counts->col[p]]] += counts->val[p];
	for (size_t p = 0; p < counts->nnz; p++) {
		int32_t t = remap[counts->col[p]];
		if (t >= 0) {
			double q = counts->val[p] / gf[t];
			ent[t] += q * log(q);
		}
	}
	for (size_t t = 0; t < m->nterms; t++) {
		double g = ndocs > 1 ? 1.0 + ent[t] / log((double)ndocs) : 1.0;
		m->gw[t] = (float)(g > 0.0 ? g : 0.0);
	}
out:
	free(ent);
	free(gf);
	return rc;
}

/*
 * X: the weighted rows of the documents that kept at least one term with a
 * non-zero weight, each L2-normalised; columns are model terms.
 */
static rag_rc tfidf_build(const csr *counts, const int32_t *remap,
			  const lsa_model *m, csr *x, rag_error *err)
{
	rag_rc rc = RAG_OK;

	memset(x, 0, sizeof(*x));
	x->cols = m->nterms;
	x->rowp = malloc((counts->rows + 1) * sizeof(*x->rowp));
	if (!x->rowp)
		return rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
	x->rowp[0] = 0;
	for (size_t i = 0; i < counts->rows; i++) {
		size_t start = x->nnz;
		for (size_t p = counts->rowp[i]; p < counts->rowp[i + 1]; p++) {
			int32_t t = remap[counts->col[p]];
			if (t < 0)
				continue;
			float w = (1.0f + logf(counts->val[p])) * m->gw[t];
			if (w > 0.0f && (rc = csr_push(x, (uint32_t)t, w)))
				return rag_error_set(err, rc, "embed fit: out of memory");
		}
		size_t nz = x->nnz - start;
		float nrm = nz ? cblas_snrm2((int)nz, x->val + start, 1) : 0.0f;
		if (!(nrm > 0.0f)) {
			x->nnz = start;
			continue; /* nothing left: not a row of X */
		}
		cblas_sscal((int)nz, 1.0f / nrm, x->val + start, 1);
		x->rowp[++x->rows] = x->nnz;
	}
	return rc;
}

/* ---------------------------------------------------- randomized SVD */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* n standard normal floats (Box-Muller), fully determined by seed. */
static void gaussian_fill(float *a, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < n; i += 2) {
		double u1 = ((double)(splitmix64(&s) >> 11) + 1.0) * 0x1.0p-53;
		double u2 = (double)(splitmix64(&s) >> 11) * 0x1.0p-53;
		double r = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
		a[i] = (float)(r * cos(th));
		if (i + 1 < n)
			a[i + 1] = (float)(r * sin(th));
	}
}

/*
 * Orthonormalise the columns of the row-major (m x l) matrix a in place
 * (m >= l). If r is not NULL it receives the column-major (l x l) upper
 * triangular R with a_before = a_after R.
 */
static rag_rc orth(float *a, size_t m, int l, float *r, rag_error *err)
{
	int mm = (int)m, lwork = -1, info = 0;
	float q1 = 0, q2 = 0, *tau = malloc((size_t)l * sizeof(*tau)), *work = NULL;
	rag_rc rc = RAG_OK;

	if (!tau) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	sgelqf_(&l, &mm, a, &l, tau, &q1, &lwork, &info);
	sorglq_(&l, &mm, &l, a, &l, tau, &q2, &lwork, &info);
	lwork = (int)fmaxf(q1, q2) + 1;
	work = malloc((size_t)lwork * sizeof(*work));
	if (!work) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	sgelqf_(&l, &mm, a, &l, tau, work, &lwork, &info);
	if (info) {
		rc = rag_error_set(err, RAG_EINTERNAL, "embed fit: LAPACK sgelqf failed (info %d)", info);
		goto out;
	}
	if (r)
		for (int j = 0; j < l; j++)
			for (int i = 0; i < l; i++)
				r[i + (size_t)j * l] = j >= i ? a[j + (size_t)i * l] : 0.0f;
	sorglq_(&l, &mm, &l, a, &l, tau, work, &lwork, &info);
	if (info)
		rc = rag_error_set(err, RAG_EINTERNAL, "embed fit: LAPACK sorglq failed (info %d)", info);
out:
	free(work);
	free(tau);
	return rc;
}

/* SVD of the column-major (l x l) r: left vectors into u, values into s. */
static rag_rc small_svd(float *r, int l, float *u, float *s, rag_error *err)
{
	int lwork = -1, info = 0, one = 1;
	float q = 0, vt = 0, *work = NULL;
	rag_rc rc = RAG_OK;

	sgesvd_("S", "N", &l, &l, r, &l, s, u, &l, &vt, &one, &q, &lwork, &info, 1, 1);
	lwork = (int)q + 1;
	work = malloc((size_t)lwork * sizeof(*work));
	if (!work)
		return rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
	sgesvd_("S", "N", &l, &l, r, &l, s, u, &l, &vt, &one, work, &lwork, &info, 1, 1);
	if (info)
		rc = rag_error_set(err, RAG_EINTERNAL, "embed fit: LAPACK sgesvd failed (info %d)", info);
	free(work);
	return rc;
}

/* Flip each column of the row-major (rows x k) p so its largest entry is positive. */
static void fix_signs(float *p, size_t rows, int k)
{
	for (int c = 0; c < k; c++) {
		size_t best = (size_t)cblas_isamax((int)rows, p + c, k);
		if (p[best * (size_t)k + (size_t)c] < 0.0f)
			cblas_sscal((int)rows, -1.0f, p + c, k);
	}
}

typedef struct rsvd_plan {
	int k, l, skip; /* kept columns, sketch columns, leading ones dropped */
} rsvd_plan;

/* The projection P (cols x k) of X: see the top of this file. */
static rag_rc rsvd(const csr *x, const rsvd_plan *pl, const lsa_fit_tuning *tu,
		   uint64_t seed, float *p, rag_error *err)
{
	int l = pl->l;
	float *z = malloc(x->cols * (size_t)l * sizeof(*z));
	float *y = malloc(x->rows * (size_t)l * sizeof(*y));
	float *r = malloc((size_t)l * (size_t)l * sizeof(*r));
	float *u = malloc((size_t)l * (size_t)l * sizeof(*u));
	float *s = malloc((size_t)l * sizeof(*s));
	rag_rc rc = RAG_OK;

	if (!z || !y || !r || !u || !s) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	gaussian_fill(z, x->cols * (size_t)l, seed);
	csr_mul(x, z, l, y);
	if ((rc = orth(y, x->rows, l, NULL, err)))
		goto out;
	for (int it = 0; it < tu->power_iters; it++) {
		csr_mul_t(x, y, l, z);
		if ((rc = orth(z, x->cols, l, NULL, err)))
			goto out;
		csr_mul(x, z, l, y);
		if ((rc = orth(y, x->rows, l, NULL, err)))
			goto out;
	}
	csr_mul_t(x, y, l, z);
	if ((rc = orth(z, x->cols, l, r, err)) || (rc = small_svd(r, l, u, s, err)))
		goto out;
	/* P = Qz Ur[:, skip:skip+k]; column c of Ur is row c of u read row-major */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)x->cols, pl->k, l,
		    1.0f, z, l, u + (size_t)pl->skip * (size_t)l, l, 0.0f, p, pl->k);
	fix_signs(p, x->cols, pl->k);
	for (int c = 0; c < pl->k; c++)
		cblas_sscal((int)x->cols, powf(s[pl->skip + c], (float)tu->sv_power),
			    p + c, pl->k);
out:
	free(s);
	free(u);
	free(r);
	free(y);
	free(z);
	return rc;
}

/* --------------------------------------------------------------- fit */

static rag_rc check_opts(const embed_fit_opts *o, rag_error *err)
{
	if (o->dims < 1 || o->dims > EMBED_DIMS_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed fit: dims %d not in 1..%d",
				     o->dims, EMBED_DIMS_MAX);
	if (o->min_df < 1)
		return rag_error_set(err, RAG_EINVAL, "embed fit: min_df %d < 1", o->min_df);
	if (o->max_vocab < 1 || o->max_vocab > EMBED_VOCAB_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed fit: max_vocab %d not in 1..%d",
				     o->max_vocab, EMBED_VOCAB_MAX);
	if (!o->name || !*o->name || strlen(o->name) >= EMBED_NAME_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed fit: model name empty or longer than %d bytes",
				     EMBED_NAME_MAX - 1);
	if (o->fitted_on && strlen(o->fitted_on) >= EMBED_FITTED_ON_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed fit: fitted_on longer than %d bytes",
				     EMBED_FITTED_ON_MAX - 1);
	return RAG_OK;
}

static rsvd_plan plan_for(const csr *x, int dims, const lsa_fit_tuning *tu)
{
	size_t rank = x->rows < x->cols ? x->rows : x->cols;
	rsvd_plan pl;

	pl.skip = tu->drop_first;
	if ((size_t)pl.skip + 1 > rank)
		pl.skip = 0;
	pl.k = (size_t)dims + (size_t)pl.skip <= rank ? dims : (int)(rank - (size_t)pl.skip);
	pl.l = pl.k + pl.skip + tu->oversample;
	if ((size_t)pl.l > rank)
		pl.l = (int)rank;
	return pl;
}

rag_rc lsa_fit_tuned(const char *const *texts, const size_t *lens, size_t n,
		       const embed_fit_opts *opts, const lsa_fit_tuning *tune,
		       lsa_model **out, rag_error *err)
{
	embed_fit_opts o = opts ? *opts : EMBED_FIT_OPTS_DEFAULT;
	lsa_fit_tuning tu = tune ? *tune : LSA_FIT_TUNING_DEFAULT;
	fit_corpus fc = {0};
	csr x = {0};
	int32_t *remap = NULL;
	lsa_model *m = NULL;
	rsvd_plan pl;
	rag_rc rc;

	*out = NULL;
	if ((rc = check_opts(&o, err)))
		return rc;
	if (n == 0 || n >= UINT32_MAX)
		return rag_error_set(err, RAG_EINVAL, "embed fit: %zu documents", n);
	m = lsa_alloc(o.name, o.fitted_on);
	if (!m) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory");
		goto out;
	}
	if ((rc = corpus_build(&fc, texts, lens, n, err)) ||
	    (rc = vocab_build(&fc, n, &o, m, &remap, err)) ||
	    (rc = global_weights(&fc.counts, remap, n, m, err)) ||
	    (rc = tfidf_build(&fc.counts, remap, m, &x, err)))
		goto out;
	corpus_release(&fc); /* the counts are no longer needed */
	if (!x.rows) {
		rc = rag_error_set(err, RAG_EINVAL,
				   "embed fit: every term is spread evenly over all %zu documents", n);
		goto out;
	}
	pl = plan_for(&x, o.dims, &tu);
	m->dims = pl.k;
	m->ndocs = n;
	m->created_at = rag_wall_time();
	m->proj = malloc(m->nterms * (size_t)pl.k * sizeof(*m->proj));
	if (!m->proj) {
		rc = rag_error_set(err, RAG_ENOMEM, "embed fit: out of memory for %zu x %d weights",
				   m->nterms, pl.k);
		goto out;
	}
	if ((rc = rsvd(&x, &pl, &tu, o.seed, m->proj, err)) ||
	    (rc = lsa_seal(m, err)))
		goto out;
	*out = m;
	m = NULL;
out:
	lsa_free(m);
	free(remap);
	csr_release(&x);
	corpus_release(&fc);
	return rc;
}

rag_rc lsa_fit(const char *const *texts, const size_t *lens, size_t n,
		 const embed_fit_opts *opts, lsa_model **out, rag_error *err)
{
	return lsa_fit_tuned(texts, lens, n, opts, NULL, out, err);
}
