/*
 * vindex.c — the vector index on the FAISS C API. See vindex.h for the
 * invariants; this file is laid out as: FAISS plumbing; canonical scores
 * and exact top-k (shared by every search path); build; search (FAISS
 * proposing candidates, or exact_topk() over FAISS's lists read in place
 * through vindex_lists.cpp: vindex_scan); the serialised form (write,
 * layout check, load); the object-mode export, probe and scan.
 *
 * Shape of the FAISS index (what vindex_serialize writes, what
 * vindex_load accepts, nothing else):
 *
 *     IndexIDMap ("IxMp", chunk ids by internal id)
 *       └ IndexFlatIP ("IxFI")                          flat
 *       └ IndexIVFFlat ("IwFl", inner product)          IVF
 *           ├ quantizer IndexFlatIP ("IxFI"), nlist spherical centroids
 *           └ ArrayInvertedLists ("ilar")
 *
 * FAISS itself holds sequential internal ids 0..n-1, so an IVF index can
 * keep an Array direct map (faiss_Index_reconstruct by internal id), which
 * export and search need to read a stored vector; the IndexIDMap turns
 * internal ids into chunk ids.
 *
 * The margin. FAISS and OpenBLAS compute inner products in float, with a
 * summation order that depends on the kernel, the SIMD width and the
 * position of a row in a block. For ||x|| <= VINDEX_NORM_MAX, any such
 * float result differs from the exact product by at most
 * gamma_d * ||x|| * ||q|| (gamma_d ~ d * 2^-24), and the canonical score
 * (double sum rounded to float) by about 2^-24 * ||x|| * ||q||. margin()
 * returns twice the sum of these: delta >= |approx - canonical| for every
 * row. Then:
 *  - scan: with T the k-th best approximate score, every row with
 *    approx < T - 2 delta has canonical < T - delta <= the canonical score
 *    of each of the k rows at or above T, so it is not in the top k: only
 *    rows at or above T - 2 delta need canonical scores;
 *  - FAISS search returning its best kk: a row not returned has
 *    approx <= s (the kk-th score returned), so canonical <= s + delta; if
 *    the k-th best canonical score among the returned rows exceeds that,
 *    the returned rows contain the whole top k; otherwise kk doubles.
 */
#include "vindex.h"
#include "vindex_int.h"

#include <cblas.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The FAISS C API headers declare some functions with "()". */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVFFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>
#pragma GCC diagnostic pop

#define SEARCH_SLACK 16          /* FAISS is first asked for k + this */
#define SGEMV_ROWS (1 << 20)     /* rows per cblas_sgemv call (blasint is int) */
#define LIST_HEADER 4            /* uint32 count */
#define TUNE_QUERIES 128         /* sample of stored vectors used as queries */
#define TUNE_K 10
#define TUNE_RECALL 0.97         /* on the sample; held-out queries: >= 0.95 */

struct vindex {
	FaissIndex *top;          /* the IndexIDMap; owns everything below */
	FaissIndex *sub;          /* its IndexFlatIP or IndexIVFFlat (borrowed) */
	FaissIndexIVF *ivf;       /* IVF: sub as an IndexIVF; else NULL */
	const float *xb;          /* flat: count x dims vectors by internal id */
	const float *centroids;   /* IVF: nlist x dims (the quantizer's vectors) */
	const int64_t *ids;       /* chunk id by internal id (the IDMap's id_map) */
	vindex_kind kind;
	int dims;
	size_t count;
	int nlist;                /* 1 for flat */
	int nprobe;               /* default; also FAISS's nprobe (keys stride) */
	size_t mem;               /* vindex_memory_bytes() */
};

/* ------------------------------------------------------- FAISS plumbing */

/*
 * Record a failed FAISS call: its message is only valid until the next
 * FAISS call on this thread, so it is copied here, at once.
 */
static rag_rc faiss_fail(rag_error *err, rag_rc rc, int frc, const char *what)
{
	const char *msg = faiss_get_last_error();

	return rag_error_set(err, rc, "vindex: FAISS %s failed (%d): %s", what, frc,
			     msg && *msg ? msg : "no message");
}

/*
 * Fill v's shortcuts from v->top. False when the index is not of our
 * shape (IDMap over IndexFlatIP, or over IndexIVFFlat with a flat
 * quantizer) or its sizes disagree.
 */
static bool set_pointers(vindex *v)
{
	FaissIndexIDMap *map = faiss_IndexIDMap_cast(v->top);
	idx_t *id_map = NULL;
	size_t n_ids = 0;
	float *xb = NULL;
	size_t nxb = 0;

	if (!map)
		return false;
	v->sub = faiss_IndexIDMap_sub_index(map);
	faiss_IndexIDMap_id_map(map, &id_map, &n_ids);
	v->ids = id_map;
	v->dims = faiss_Index_d(v->top);
	v->count = (size_t)faiss_Index_ntotal(v->top);
	if (!v->sub || n_ids != v->count || faiss_Index_d(v->sub) != v->dims ||
	    faiss_Index_metric_type(v->sub) != METRIC_INNER_PRODUCT)
		return false;
	v->ivf = faiss_IndexIVFFlat_cast(v->sub) ? faiss_IndexIVF_cast(v->sub) : NULL;
	if (v->ivf) {
		FaissIndexFlat *q = faiss_IndexFlat_cast(faiss_IndexIVF_quantizer(v->ivf));

		if (!q)
			return false;
		faiss_IndexFlat_xb(q, &xb, &nxb);
		v->kind = VINDEX_IVF;
		v->centroids = xb;
		v->nlist = (int)faiss_IndexIVF_nlist(v->ivf);
		v->nprobe = (int)faiss_IndexIVF_nprobe(v->ivf);
		v->xb = NULL;
		if (nxb != (size_t)v->nlist * (size_t)v->dims || v->nprobe < 1 ||
		    v->nprobe > v->nlist)
			return false;
	} else {
		FaissIndexFlat *flat = faiss_IndexFlatIP_cast(v->sub) ? faiss_IndexFlat_cast(v->sub)
								       : NULL;

		if (!flat)
			return false;
		faiss_IndexFlat_xb(flat, &xb, &nxb);
		v->kind = VINDEX_FLAT;
		v->xb = xb;
		v->centroids = NULL;
		v->nlist = 1;
		v->nprobe = 1;
		if (nxb != v->count * (size_t)v->dims)
			return false;
	}
	/* vectors + chunk ids; IVF adds list ids, direct map, centroids and
	 * two std::vector headers per list */
	v->mem = sizeof(*v) + v->count * ((size_t)v->dims * sizeof(float) + sizeof(int64_t));
	if (v->ivf)
		v->mem += v->count * 2 * sizeof(int64_t) +
			  (size_t)v->nlist * ((size_t)v->dims * sizeof(float) + 48);
	return true;
}

/* The vector stored under internal id iid, into buf (IVF) or in place. */
static rag_rc stored_vector(const vindex *v, idx_t iid, float *buf, const float **vec,
			    rag_error *err)
{
	int frc;

	if (!v->ivf) {
		*vec = v->xb + (size_t)iid * (size_t)v->dims;
		return RAG_OK;
	}
	frc = faiss_Index_reconstruct(v->sub, iid, buf);
	if (frc)
		return faiss_fail(err, RAG_EINTERNAL, frc, "reconstruct");
	*vec = buf;
	return RAG_OK;
}

/* ------------------------------------------- canonical scores, exact top-k */

/* Invariant 1's canonical score: each product is exact in double. */
static float canon_score(const float *x, const float *q, int dims)
{
	double s = 0.0;

	for (int i = 0; i < dims; i++)
		s += (double)x[i] * (double)q[i];
	return (float)s;
}

/* Norm of q in double, or -1 when q has a non-finite value. */
static double query_norm(const float *q, int dims)
{
	double s = 0.0;

	for (int i = 0; i < dims; i++) {
		if (!isfinite(q[i]))
			return -1.0;
		s += (double)q[i] * (double)q[i];
	}
	return sqrt(s);
}

/* delta: a bound on |float inner product - canonical score| (see the top). */
static double margin(int dims, double qnorm)
{
	return ((double)dims + 2.0) * FLT_EPSILON * VINDEX_NORM_MAX * qnorm + FLT_MIN;
}

typedef struct cand {
	float score;
	int64_t id;
} cand;

static int cand_cmp(const void *pa, const void *pb)
{
	const cand *a = pa, *b = pb;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return (a->id > b->id) - (a->id < b->id);
}

/* Write the first min(k, n) of sorted candidates and pad with "missing". */
static void emit(const cand *c, size_t n, int k, float *scores, int64_t *ids)
{
	for (int i = 0; i < k; i++) {
		bool have = (size_t)i < n;

		scores[i] = have ? c[i].score : VINDEX_NO_SCORE;
		ids[i] = have ? c[i].id : -1;
	}
}

static int64_t get_le64(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 7; i >= 0; i--)
		u = (u << 8) | p[i];
	return (int64_t)u;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Rows to score: count x dims floats, with their ids. */
typedef struct rowset {
	const float *vecs;         /* aligned, host order */
	const unsigned char *ids;  /* count little-endian int64s (exported lists) */
	const int64_t *hids;       /* or count host-order ids (in RAM); both NULL: id = row */
	const int64_t *map;        /* when set, the id above is an index into map */
	size_t count;
} rowset;

/* The id of row i of rs. */
static int64_t row_id(const rowset *rs, size_t i)
{
	int64_t id = rs->ids ? get_le64(rs->ids + 8 * i) : rs->hids ? rs->hids[i] : (int64_t)i;

	return rs->map ? rs->map[id] : id;
}

static int int_cmp(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;

	return (a > b) - (a < b);
}

static void heap_sift_down(float *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		float t;

		if (l < n && h[l] < h[m])
			m = l;
		if (r < n && h[r] < h[m])
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* The k-th largest of a[n] (n > k >= 1), with a min-heap of k. */
static float kth_largest(const float *a, size_t n, int k, float *heap)
{
	for (int i = 0; i < k; i++)
		heap[i] = a[i];
	for (int i = k / 2 - 1; i >= 0; i--)
		heap_sift_down(heap, k, i);
	for (size_t i = (size_t)k; i < n; i++) {
		if (a[i] > heap[0]) {
			heap[0] = a[i];
			heap_sift_down(heap, k, 0);
		}
	}
	return heap[0];
}

/*
 * The canonical top k over the rows of nsets rowsets (invariant 1):
 * cblas_sgemv scores every row, the margin picks the rows that can be in
 * the top k, those get canonical scores. what names the rows in errors.
 */
static rag_rc exact_topk(const rowset *sets, int nsets, int dims, const float *q,
			 double qnorm, int k, float *scores, int64_t *ids,
			 const char *what, rag_error *err)
{
	size_t total = 0, r, ncand = 0;
	float *approx = NULL, *heap = NULL;
	cand *c = NULL;
	double thresh = -INFINITY;
	rag_rc rc = RAG_OK;

	for (int s = 0; s < nsets; s++)
		total += sets[s].count;
	if (!total) {
		emit(NULL, 0, k, scores, ids);
		goto out;
	}
	approx = malloc(total * sizeof(*approx));
	if (!approx) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory scoring %zu %s rows",
				   total, what);
		goto out;
	}
	r = 0;
	for (int s = 0; s < nsets; s++) {
		for (size_t i = 0; i < sets[s].count; i += SGEMV_ROWS) {
			size_t m = sets[s].count - i < SGEMV_ROWS ? sets[s].count - i : SGEMV_ROWS;

			cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)m, (blasint)dims, 1.0f,
				    sets[s].vecs + i * (size_t)dims, (blasint)dims, q, 1, 0.0f,
				    approx + r, 1);
			r += m;
		}
	}
	for (size_t i = 0; i < total; i++) {
		if (!isfinite(approx[i])) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "vindex: %s row %zu has non-finite values", what, i);
			goto out;
		}
	}
	if (total > (size_t)k) {
		heap = malloc((size_t)k * sizeof(*heap));
		if (!heap) {
			rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
			goto out;
		}
		thresh = (double)kth_largest(approx, total, k, heap) - 2.0 * margin(dims, qnorm);
	}
	for (size_t i = 0; i < total; i++)
		ncand += (double)approx[i] >= thresh;
	c = malloc(ncand * sizeof(*c));
	if (!c) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	ncand = 0;
	r = 0;
	for (int s = 0; s < nsets; s++) {
		for (size_t i = 0; i < sets[s].count; i++, r++) {
			if ((double)approx[r] < thresh)
				continue;
			c[ncand].score = canon_score(sets[s].vecs + i * (size_t)dims, q, dims);
			c[ncand].id = row_id(&sets[s], i);
			ncand++;
		}
	}
	qsort(c, ncand, sizeof(*c), cand_cmp);
	emit(c, ncand, k, scores, ids);
out:
	free(c);
	free(heap);
	free(approx);
	return rc;
}

/* ------------------------------------------------------------------ build */

static int auto_nlist(size_t n)
{
	double want = 4.0 * sqrt((double)n);
	size_t cap = n / 39;

	if (want > (double)cap)
		want = (double)cap;
	if (want < 1.0)
		want = 1.0;
	return want > INT_MAX ? INT_MAX : (int)want;
}

static rag_rc check_input(int dims, const float *vecs, const int64_t *ids, size_t n,
			  rag_error *err)
{
	if (dims < 1 || dims > VINDEX_MAX_DIMS)
		return rag_error_set(err, RAG_EINVAL, "vindex: dims %d not in 1..%d", dims,
				     VINDEX_MAX_DIMS);
	if (n > (size_t)INT64_MAX / ((size_t)dims * sizeof(float)))
		return rag_error_set(err, RAG_EINVAL, "vindex: %zu vectors is too many", n);
	if (n && (!vecs || !ids))
		return rag_error_set(err, RAG_EINVAL, "vindex: NULL vectors or ids");
	for (size_t i = 0; i < n; i++) {
		const float *x = vecs + i * (size_t)dims;
		double s = 0.0;

		if (ids[i] < 0)
			return rag_error_set(err, RAG_EINVAL, "vindex: id %" PRId64
					     " (vector %zu) is negative", ids[i], i);
		for (int j = 0; j < dims; j++) {
			if (!isfinite(x[j]))
				return rag_error_set(err, RAG_EINVAL,
						     "vindex: vector %zu (id %" PRId64
						     ") has a non-finite value", i, ids[i]);
			s += (double)x[j] * (double)x[j];
		}
		if (sqrt(s) > VINDEX_NORM_MAX)
			return rag_error_set(err, RAG_EINVAL,
					     "vindex: vector %zu (id %" PRId64
					     ") has norm %g; vectors must be L2-normalised",
					     i, ids[i], sqrt(s));
	}
	return RAG_OK;
}

/*
 * The IVF sub-index: spherical k-means (fixed seed) on all vectors into a
 * flat inner-product quantizer, then an empty IndexIVFFlat over it.
 */
static rag_rc build_ivf(int dims, const float *vecs, size_t n, int nlist, int nprobe,
			FaissIndex **sub, rag_error *err)
{
	FaissClusteringParameters cp;
	FaissClustering *clus = NULL;
	FaissIndexFlatIP *quant = NULL;
	FaissIndexIVFFlat *ivf = NULL;
	rag_rc rc = RAG_OK;
	int frc;

	faiss_ClusteringParameters_init(&cp);
	cp.seed = VINDEX_KMEANS_SEED;
	cp.spherical = 1;   /* what FAISS's IVF does for inner product */
	cp.verbose = 0;
	cp.min_points_per_centroid = 1; /* FAISS would warn on stderr */
	/* 10 Lloyd iterations, not FAISS's 25: the tuned nprobe absorbs the
	 * slightly rougher centroids (bench, 112k x 256, nlist 1338: 44 s -> 19 s
	 * of CPU for the build, auto nprobe 19 -> 20) */
	cp.niter = 10;
	if ((frc = faiss_IndexFlatIP_new_with(&quant, dims))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "IndexFlatIP");
		goto out;
	}
	if ((frc = faiss_Clustering_new_with_params(&clus, dims, nlist, &cp))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "Clustering");
		goto out;
	}
	if ((frc = faiss_Clustering_train(clus, (idx_t)n, vecs, (FaissIndex *)quant))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "k-means training");
		goto out;
	}
	if ((frc = faiss_IndexIVFFlat_new_with_metric(&ivf, (FaissIndex *)quant, (size_t)dims,
						      (size_t)nlist, METRIC_INNER_PRODUCT))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "IndexIVFFlat");
		goto out;
	}
	faiss_IndexIVFFlat_set_own_fields(ivf, 1);
	quant = NULL;
	faiss_IndexIVFFlat_set_nprobe(ivf, (size_t)nprobe);
	*sub = (FaissIndex *)ivf;
	ivf = NULL;
out:
	faiss_IndexIVFFlat_free(ivf);
	faiss_IndexFlatIP_free(quant);
	faiss_Clustering_free(clus);
	return rc;
}

/*
 * The auto nprobe: the smallest nprobe whose recall@10 against exact search
 * reaches TUNE_RECALL on a fixed sample of the stored vectors used as
 * queries (each query's own entry left out). Exact search over all probed
 * lists is exact over those lists (vindex.h, invariant 1), so a true
 * neighbour is found iff its list is probed: recall(nprobe) is the share
 * of (query, true neighbour) pairs whose list ranks below nprobe in the
 * query's probe order, and the answer is a quantile of those ranks. Costs
 * TUNE_QUERIES exact scans of the data; deterministic like the rest.
 */
static rag_rc tune_nprobe(vindex *v, const float *vecs, size_t n, rag_error *err)
{
	size_t nq = n < TUNE_QUERIES ? n : TUNE_QUERIES, nr = 0, at = 0;
	rowset all = { .vecs = vecs, .count = n };
	int *list_of = NULL, *order = NULL, *rank = NULL, *ranks = NULL, np = 1;
	idx_t *lids = NULL;
	float sc[TUNE_K + 1];
	int64_t nb[TUNE_K + 1];
	rag_rc rc = RAG_OK;

	list_of = malloc(n * sizeof(*list_of));
	order = malloc((size_t)v->nlist * sizeof(*order));
	rank = malloc((size_t)v->nlist * sizeof(*rank));
	ranks = malloc(nq * TUNE_K * sizeof(*ranks));
	lids = malloc(n * sizeof(*lids));
	if (!list_of || !order || !rank || !ranks || !lids) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	for (int l = 0; l < v->nlist; l++) {
		size_t ls = faiss_IndexIVF_get_list_size(v->ivf, (size_t)l);

		if (ls > n - at) {
			rc = rag_error_set(err, RAG_EINTERNAL, "vindex: FAISS lists hold too many ids");
			goto out;
		}
		faiss_IndexIVF_invlists_get_ids(v->ivf, (size_t)l, lids + at);
		for (size_t j = at; j < at + ls; j++)
			if (lids[j] >= 0 && (size_t)lids[j] < n)
				list_of[lids[j]] = l;
		at += ls;
	}
	for (size_t s = 0; s < nq; s++) {
		size_t i = s * n / nq;
		const float *q = vecs + i * (size_t)v->dims;
		int taken = 0;

		rc = exact_topk(&all, 1, v->dims, q, query_norm(q, v->dims), TUNE_K + 1, sc, nb,
				"vector", err);
		if (!rc)
			rc = vindex_probe_lists(v->centroids, v->nlist, v->dims, q, v->nlist, order,
						err);
		if (rc)
			goto out;
		for (int r = 0; r < v->nlist; r++)
			rank[order[r]] = r;
		for (int j = 0; j <= TUNE_K && taken < TUNE_K; j++) {
			if (nb[j] < 0 || (size_t)nb[j] == i)
				continue;
			ranks[nr++] = rank[list_of[nb[j]]];
			taken++;
		}
	}
	if (nr) {
		size_t want = (size_t)ceil(TUNE_RECALL * (double)nr);

		qsort(ranks, nr, sizeof(*ranks), int_cmp);
		np = ranks[(want ? want : 1) - 1] + 1;
	}
	v->nprobe = np;
	faiss_IndexIVF_set_nprobe(v->ivf, (size_t)np);
out:
	free(lids);
	free(ranks);
	free(rank);
	free(order);
	free(list_of);
	return rc;
}

rag_rc vindex_build(int dims, const float *vecs, const int64_t *ids, size_t n,
		    const vindex_build_opts *opts, vindex **out, rag_error *err)
{
	vindex_build_opts o = { 0 };
	FaissIndex *sub = NULL;
	FaissIndexIDMap *map = NULL;
	vindex *v = NULL;
	int64_t threshold;
	int nlist = 0, nprobe = 0, frc;
	rag_rc rc;

	*out = NULL;
	if (opts)
		o = *opts;
	if ((rc = check_input(dims, vecs, ids, n, err)))
		goto out;
	threshold = o.ivf_threshold ? o.ivf_threshold : VINDEX_DEFAULT_IVF_THRESHOLD;
	if (threshold < 0 || o.nlist < 0 || o.nprobe < 0) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: negative build option");
		goto out;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	if (n >= 1 && (uint64_t)n >= (uint64_t)threshold) {
		nlist = o.nlist ? o.nlist : auto_nlist(n);
		if ((size_t)nlist > n) {
			rc = rag_error_set(err, RAG_EINVAL, "vindex: nlist %d > %zu vectors", nlist, n);
			goto out;
		}
		nprobe = o.nprobe ? o.nprobe : 1; /* 0: tuned below */
		if (nprobe > nlist) {
			rc = rag_error_set(err, RAG_EINVAL, "vindex: nprobe %d > nlist %d", nprobe, nlist);
			goto out;
		}
		if ((rc = build_ivf(dims, vecs, n, nlist, nprobe, &sub, err)))
			goto out;
	} else {
		FaissIndexFlatIP *flat = NULL;

		if ((frc = faiss_IndexFlatIP_new_with(&flat, dims))) {
			rc = faiss_fail(err, RAG_EINTERNAL, frc, "IndexFlatIP");
			goto out;
		}
		sub = (FaissIndex *)flat;
	}
	if ((frc = faiss_IndexIDMap_new(&map, sub))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "IndexIDMap");
		goto out;
	}
	faiss_IndexIDMap_set_own_fields(map, 1);
	sub = NULL;
	v->top = (FaissIndex *)map;
	map = NULL;
	if (n && (frc = faiss_Index_add_with_ids(v->top, (idx_t)n, vecs, ids))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "add");
		goto out;
	}
	if (!set_pointers(v)) {
		rc = rag_error_set(err, RAG_EINTERNAL, "vindex: FAISS built an unexpected index");
		goto out;
	}
	if (v->ivf && (frc = faiss_IndexIVF_make_direct_map(v->ivf, 1))) {
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "make_direct_map");
		goto out;
	}
	if (v->ivf && !o.nprobe && (rc = tune_nprobe(v, vecs, n, err)))
		goto out;
	*out = v;
	v = NULL;
out:
	vindex_free(v);
	faiss_Index_free((FaissIndex *)map);
	faiss_Index_free(sub);
	return rc;
}

void vindex_free(vindex *v)
{
	if (!v)
		return;
	faiss_Index_free(v->top);
	free(v);
}

vindex_kind vindex_kind_of(const vindex *v) { return v->kind; }
int vindex_dims(const vindex *v) { return v->dims; }
size_t vindex_count(const vindex *v) { return v->count; }
int vindex_nlist(const vindex *v) { return v->nlist; }
int vindex_nprobe(const vindex *v) { return v->nprobe; }
size_t vindex_memory_bytes(const vindex *v) { return v->mem; }

size_t vindex_list_size(const vindex *v, int list)
{
	if (list < 0 || list >= v->nlist)
		return 0;
	return v->ivf ? faiss_IndexIVF_get_list_size(v->ivf, (size_t)list) : v->count;
}

/* ----------------------------------------------------------------- search */

/* Per-call work space, grown as a query needs. */
typedef struct scratch {
	size_t kk_cap, cand_cap;
	float *dis;      /* kk FAISS scores */
	idx_t *lab;      /* kk FAISS labels (internal ids) */
	cand *c;
	int *lists;      /* nlist probed lists */
	idx_t *keys;     /* nprobe: one FAISS call's lists */
	float *coarse;   /* nprobe zeros (IVFFlat ignores them) */
	float *vec;      /* dims: a reconstructed vector */
	float *pscore;   /* nlist: probe scores */
	int64_t *pid;    /* nlist: probe list numbers */
	rowset *sets;    /* nlist: the probed lists (VINDEX_SCAN_BLAS) */
} scratch;

static void scratch_release(scratch *s)
{
	free(s->dis);
	free(s->lab);
	free(s->c);
	free(s->lists);
	free(s->keys);
	free(s->coarse);
	free(s->vec);
	free(s->pscore);
	free(s->pid);
	free(s->sets);
}

static rag_rc scratch_grow(scratch *s, size_t kk, size_t ncand, rag_error *err)
{
	if (kk > s->kk_cap) {
		float *d = realloc(s->dis, kk * sizeof(*d));
		idx_t *l;

		if (!d)
			return rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		s->dis = d;
		l = realloc(s->lab, kk * sizeof(*l));
		if (!l)
			return rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		s->lab = l;
		s->kk_cap = kk;
	}
	if (ncand > s->cand_cap) {
		cand *c = realloc(s->c, ncand * sizeof(*c));

		if (!c)
			return rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		s->c = c;
		s->cand_cap = ncand;
	}
	return RAG_OK;
}

/*
 * The canonical top k of one query through FAISS (see "the margin"); q is
 * finite with norm qnorm, the index not empty (vindex_search_with()).
 */
static rag_rc search_one(const vindex *v, const float *q, double qnorm, int k, int nprobe,
			 scratch *s, float *scores, int64_t *ids, rag_error *err)
{
	double delta = margin(v->dims, qnorm);
	int np = 0, ngroups = 1;
	size_t kk, ncand;
	rag_rc rc = RAG_OK;
	int frc;

	if (v->ivf) {
		np = nprobe <= 0 ? v->nprobe : nprobe > v->nlist ? v->nlist : nprobe;
		if ((rc = vindex_probe_lists(v->centroids, v->nlist, v->dims, q, np, s->lists, err)))
			return rc;
		ngroups = (np + v->nprobe - 1) / v->nprobe;
	}
	kk = (size_t)k + SEARCH_SLACK;
	if (kk > v->count)
		kk = v->count;
	for (;;) {
		bool full = false;
		double bound = -INFINITY;

		if ((rc = scratch_grow(s, kk, kk * (size_t)ngroups, err)))
			return rc;
		ncand = 0;
		for (int g = 0; g < ngroups; g++) {
			if (v->ivf) {
				/* FAISS reads nprobe keys per query; -1 = none */
				for (int j = 0; j < v->nprobe; j++) {
					int at = g * v->nprobe + j;

					s->keys[j] = at < np ? s->lists[at] : -1;
				}
				frc = faiss_IndexIVF_search_preassigned(v->ivf, 1, q, (idx_t)kk,
									s->keys, s->coarse, s->dis,
									s->lab, 0);
			} else {
				frc = faiss_Index_search(v->sub, 1, q, (idx_t)kk, s->dis, s->lab);
			}
			if (frc)
				return faiss_fail(err, RAG_EINTERNAL, frc, "search");
			for (size_t j = 0; j < kk; j++) {
				const float *x = NULL;

				if (s->lab[j] < 0)
					continue;
				if ((size_t)s->lab[j] >= v->count)
					return rag_error_set(err, RAG_EINTERNAL,
							     "vindex: FAISS returned label %" PRId64
							     " of %zu", (int64_t)s->lab[j], v->count);
				if ((rc = stored_vector(v, s->lab[j], s->vec, &x, err)))
					return rc;
				s->c[ncand].score = canon_score(x, q, v->dims);
				s->c[ncand].id = v->ids[s->lab[j]];
				ncand++;
			}
			if (s->lab[kk - 1] >= 0) {
				full = true;
				if ((double)s->dis[kk - 1] > bound)
					bound = (double)s->dis[kk - 1];
			}
		}
		qsort(s->c, ncand, sizeof(*s->c), cand_cmp);
		if (!full || kk >= v->count)
			break;
		if (ncand >= (size_t)k && (double)s->c[k - 1].score > bound + delta)
			break;
		kk = kk * 2 < v->count ? kk * 2 : v->count;
	}
	emit(s->c, ncand, k, scores, ids);
	return RAG_OK;
}

/*
 * The canonical top k of one query by scoring every row of the probed
 * lists, in place, with exact_topk(): OpenBLAS's sgemv (its kernel chosen
 * at run time for the CPU) proposes, canonical scores decide, exactly as
 * vindex_scan_lists() over exported lists. The rows are the ones FAISS
 * would scan for the same probe (invariant 2), hence the same results.
 * Same preconditions as search_one().
 */
static rag_rc scan_one(const vindex *v, const float *q, double qnorm, int k, int nprobe,
		       scratch *s, float *scores, int64_t *ids, rag_error *err)
{
	int np = 1;
	rag_rc rc;

	if (!v->ivf) {
		s->sets[0] = (rowset){ .vecs = v->xb, .hids = v->ids, .count = v->count };
	} else {
		np = nprobe <= 0 ? v->nprobe : nprobe > v->nlist ? v->nlist : nprobe;
		if ((rc = vindex_probe_lists(v->centroids, v->nlist, v->dims, q, np, s->lists, err)))
			return rc;
		for (int i = 0; i < np; i++) {
			rowset *rs = &s->sets[i];

			*rs = (rowset){ .map = v->ids };
			if (vindex_ivf_list(v->ivf, (size_t)s->lists[i], v->dims, &rs->count,
					    &rs->vecs, &rs->hids))
				return rag_error_set(err, RAG_EINTERNAL,
						     "vindex: FAISS list %d cannot be read in place",
						     s->lists[i]);
		}
	}
	return exact_topk(s->sets, np, v->dims, q, qnorm, k, scores, ids, "list", err);
}

rag_rc vindex_search(const vindex *v, const float *queries, size_t nq, int k, int nprobe,
		     float *scores, int64_t *ids, rag_error *err)
{
	return vindex_search_with(v, VINDEX_SCAN_FAISS, queries, nq, k, nprobe, scores, ids, err);
}

rag_rc vindex_search_with(const vindex *v, vindex_scan scan, const float *queries, size_t nq,
			  int k, int nprobe, float *scores, int64_t *ids, rag_error *err)
{
	scratch s = { 0 };
	rag_rc rc = RAG_OK;

	if (scan != VINDEX_SCAN_FAISS && scan != VINDEX_SCAN_BLAS) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: unknown scan %d", (int)scan);
		goto out;
	}
	if (k < 1 || k > VINDEX_MAX_K) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: k %d not in 1..%d", k, VINDEX_MAX_K);
		goto out;
	}
	if (!nq)
		goto out;
	if (!queries || !scores || !ids) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: NULL queries or results");
		goto out;
	}
	s.vec = malloc((size_t)v->dims * sizeof(*s.vec));
	s.lists = malloc((size_t)v->nlist * sizeof(*s.lists));
	s.keys = malloc((size_t)v->nprobe * sizeof(*s.keys));
	s.coarse = calloc((size_t)v->nprobe, sizeof(*s.coarse));
	s.sets = malloc((size_t)v->nlist * sizeof(*s.sets));
	if (!s.vec || !s.lists || !s.keys || !s.coarse || !s.sets) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	for (size_t i = 0; i < nq; i++) {
		const float *q = queries + i * (size_t)v->dims;
		float *qs = scores + i * (size_t)k;
		int64_t *qi = ids + i * (size_t)k;
		double qnorm = query_norm(q, v->dims);

		if (qnorm < 0)
			rc = rag_error_set(err, RAG_EINVAL, "vindex: query has a non-finite value");
		else if (!v->count)
			emit(NULL, 0, k, qs, qi);
		else if (scan == VINDEX_SCAN_BLAS)
			rc = scan_one(v, q, qnorm, k, nprobe, &s, qs, qi, err);
		else
			rc = search_one(v, q, qnorm, k, nprobe, &s, qs, qi, err);
		if (rc) {
			rag_error_prefix(err, "query %zu", i);
			goto out;
		}
	}
out:
	scratch_release(&s);
	return rc;
}

/* ---------------------------------------------------------- serialised form */

/* A FILE over a rag_buf (writing) or a borrowed byte range (reading). */
typedef struct stream {
	rag_buf *buf;       /* writing */
	rag_rc rc;          /* first append error */
	const char *data;   /* reading */
	size_t len, pos;
} stream;

static ssize_t stream_write(void *cookie, const char *p, size_t n)
{
	stream *st = cookie;
	rag_rc rc = rag_buf_append(st->buf, p, n);

	if (rc) {
		if (!st->rc)
			st->rc = rc;
		return 0;  /* fopencookie: 0 is the error return */
	}
	return (ssize_t)n;
}

static ssize_t stream_read(void *cookie, char *p, size_t n)
{
	stream *st = cookie;
	size_t left = st->len - st->pos;

	if (n > left)
		n = left;
	memcpy(p, st->data + st->pos, n);
	st->pos += n;
	return (ssize_t)n;
}

rag_rc vindex_serialize(const vindex *v, rag_buf *out, rag_error *err)
{
	cookie_io_functions_t io = { .write = stream_write };
	stream st = { .buf = out };
	size_t start = out->len;
	FILE *f = NULL;
	rag_rc rc = RAG_OK;
	int frc, cerr;

	f = fopencookie(&st, "w", io);
	if (!f) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: fopencookie failed");
		goto out;
	}
	frc = faiss_write_index(v->top, f);
	if (frc && !st.rc)
		rc = faiss_fail(err, RAG_EINTERNAL, frc, "write_index");
	cerr = fclose(f);
	if (!rc && st.rc)
		rc = rag_error_set(err, st.rc, "vindex: serialised index exceeds the %zu-byte cap",
				   out->max);
	else if (!rc && cerr)
		rc = rag_error_set(err, RAG_EINTERNAL, "vindex: flushing the serialised index failed");
out:
	if (rc && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

/*
 * The layout check (invariant 4): a cursor over the blob that walks FAISS
 * 1.7.3's write_index layout for the one shape we write, checking every
 * count against the bytes that remain before FAISS sizes a vector by it.
 * FAISS writes host byte order; so does it read.
 */
typedef struct cursor {
	const unsigned char *p;
	size_t left;
	const char *bad;  /* first problem, or NULL */
} cursor;

static bool take(cursor *c, void *dst, size_t n, const char *what)
{
	if (c->bad)
		return false;
	if (n > c->left) {
		c->bad = what;
		return false;
	}
	if (dst)
		memcpy(dst, c->p, n);
	c->p += n;
	c->left -= n;
	return true;
}

static bool expect(cursor *c, bool ok, const char *what)
{
	if (!c->bad && !ok)
		c->bad = what;
	return !c->bad;
}

static uint32_t fourcc(const char *s)
{
	return (uint32_t)(unsigned char)s[0] | (uint32_t)(unsigned char)s[1] << 8 |
	       (uint32_t)(unsigned char)s[2] << 16 | (uint32_t)(unsigned char)s[3] << 24;
}

/* Index header: int32 d, int64 ntotal, 2 x int64, bool is_trained, int32 metric. */
static bool take_header(cursor *c, int32_t d, int64_t ntotal, const char *what)
{
	int32_t hd = 0, metric = -1;
	int64_t hn = -1, dummy[2];
	unsigned char trained = 2;

	take(c, &hd, sizeof(hd), what);
	take(c, &hn, sizeof(hn), what);
	take(c, dummy, sizeof(dummy), what);
	take(c, &trained, 1, what);
	take(c, &metric, sizeof(metric), what);
	expect(c, hd == d && hn == ntotal, what);
	expect(c, trained <= 1, what);
	return expect(c, metric == METRIC_INNER_PRODUCT, "metric is not inner product");
}

/* A vector<T>: uint64 size then size elements of elem bytes. */
static bool take_vector(cursor *c, size_t elem, uint64_t *size, const char *what)
{
	if (!take(c, size, sizeof(*size), what))
		return false;
	return expect(c, *size <= c->left / elem, what) && take(c, NULL, *size * elem, what);
}

/* "IxFI": header, then the vectors as a float count and the floats. */
static bool take_flat(cursor *c, int32_t d, int64_t ntotal, const char *what)
{
	uint32_t h = 0;
	uint64_t nf = 0;

	take(c, &h, sizeof(h), what);
	expect(c, h == fourcc("IxFI"), what);
	take_header(c, d, ntotal, what);
	take(c, &nf, sizeof(nf), what);
	expect(c, nf / (uint64_t)d == (uint64_t)ntotal && nf % (uint64_t)d == 0, what);
	return expect(c, nf <= c->left / 4, what) && take(c, NULL, nf * 4, what);
}

static bool take_ivf(cursor *c, int32_t d, int64_t ntotal, int64_t *nlist_out)
{
	uint64_t nlist = 0, nprobe = 0, n = 0, cs = 0, m = 0, total = 0;
	uint64_t *sizes = NULL;
	uint32_t h = 0, lt = 0;
	unsigned char dm = 0;
	bool ok = false;

	take_header(c, d, ntotal, "IVF header");
	take(c, &nlist, sizeof(nlist), "IVF nlist");
	take(c, &nprobe, sizeof(nprobe), "IVF nprobe");
	/* the quantizer holds nlist x d floats: bounds nlist by the blob */
	expect(c, nlist >= 1 && nlist <= INT_MAX && nlist <= c->left / 4 / (uint64_t)d,
	       "IVF nlist");
	expect(c, nprobe >= 1 && nprobe <= nlist, "IVF nprobe");
	if (!take_flat(c, d, (int64_t)nlist, "IVF quantizer"))
		goto out;
	take(c, &dm, 1, "direct map");
	expect(c, dm <= 2, "direct map type");
	take_vector(c, 8, &n, "direct map array");
	if (dm == 2)
		take_vector(c, 16, &n, "direct map table");
	take(c, &h, sizeof(h), "inverted lists");
	expect(c, h == fourcc("ilar"), "inverted lists type");
	take(c, &n, sizeof(n), "inverted lists");
	take(c, &cs, sizeof(cs), "inverted lists");
	expect(c, n == nlist && cs == (uint64_t)d * 4, "inverted lists shape");
	take(c, &lt, sizeof(lt), "inverted lists");
	if (c->bad)
		goto out;
	sizes = calloc(nlist, sizeof(*sizes));
	if (!sizes) {
		c->bad = "out of memory";
		goto out;
	}
	if (lt == fourcc("full")) {
		take(c, &m, sizeof(m), "list sizes");
		expect(c, m == nlist, "list sizes");
		take(c, sizes, nlist * 8, "list sizes");
	} else if (lt == fourcc("sprs")) {
		const unsigned char *pairs = c->p;

		take_vector(c, 8, &m, "sparse list sizes");
		expect(c, m % 2 == 0, "sparse list sizes");
		for (uint64_t i = 0; !c->bad && i < m; i += 2) {
			uint64_t pr[2];

			memcpy(pr, pairs + 8 + i * 8, sizeof(pr));
			if (expect(c, pr[0] < nlist, "sparse list number"))
				sizes[pr[0]] = pr[1];
		}
	} else {
		expect(c, false, "list size format");
	}
	for (uint64_t i = 0; !c->bad && i < nlist; i++) {
		uint64_t per = cs + 8;

		expect(c, sizes[i] <= c->left / per, "inverted list data");
		take(c, NULL, sizes[i] * per, "inverted list data");
		total += sizes[i];
	}
	ok = expect(c, total == (uint64_t)ntotal, "list sizes do not add up to ntotal");
	*nlist_out = (int64_t)nlist;
out:
	free(sizes);
	return ok;
}

static const char *check_layout(const char *data, size_t len)
{
	cursor c = { (const unsigned char *)data, len, NULL };
	int32_t d = 0;
	int64_t ntotal = -1, nlist;
	uint32_t h = 0, sub = 0;
	uint64_t nids = 0;
	unsigned char rest[8 + 8 + 1 + 4]; /* 2 dummies, is_trained, metric */

	take(&c, &h, sizeof(h), "truncated");
	if (!expect(&c, h == fourcc("IxMp"), "not a vindex (IndexIDMap) blob"))
		return c.bad;
	/* the sub-index's header must repeat the map's d and ntotal */
	take(&c, &d, sizeof(d), "map header");
	take(&c, &ntotal, sizeof(ntotal), "map header");
	take(&c, rest, sizeof(rest), "map header");
	expect(&c, d >= 1 && d <= VINDEX_MAX_DIMS && ntotal >= 0, "map header");
	expect(&c, rest[16] <= 1, "map header");
	expect(&c, memcmp(rest + 17, &(int32_t){ METRIC_INNER_PRODUCT }, 4) == 0,
	       "metric is not inner product");
	take(&c, &sub, sizeof(sub), "sub-index");
	if (c.bad)
		return c.bad;
	if (sub == fourcc("IxFI")) {
		/* take_flat reads the fourcc again */
		c.p -= 4;
		c.left += 4;
		take_flat(&c, d, ntotal, "flat index");
	} else if (sub == fourcc("IwFl")) {
		take_ivf(&c, d, ntotal, &nlist);
	} else {
		expect(&c, false, "sub-index is neither IndexFlatIP nor IndexIVFFlat");
	}
	take(&c, &nids, sizeof(nids), "id map");
	expect(&c, nids == (uint64_t)ntotal && nids <= c.left / 8, "id map size");
	take(&c, NULL, nids * 8, "id map");
	expect(&c, c.left == 0, "trailing bytes");
	return c.bad;
}

/*
 * What FAISS built, checked: the IVF direct map rebuilt from the lists
 * (FAISS reads the stored one unchecked), every internal id in exactly
 * one list, chunk ids >= 0, vectors finite and no longer than allowed.
 */
static rag_rc check_loaded(vindex *v, rag_error *err)
{
	unsigned char *seen = NULL;
	idx_t *lids = NULL;
	float *vec = NULL;
	rag_rc rc = RAG_OK;
	int frc;

	if (!set_pointers(v)) {
		rc = rag_error_set(err, RAG_ECORRUPT, "vindex: unexpected index types or sizes");
		goto out;
	}
	for (size_t i = 0; i < v->count; i++) {
		if (v->ids[i] < 0) {
			rc = rag_error_set(err, RAG_ECORRUPT, "vindex: negative chunk id %" PRId64,
					   v->ids[i]);
			goto out;
		}
	}
	vec = malloc((size_t)v->dims * sizeof(*vec));
	if (!vec) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	if (v->ivf) {
		size_t total = 0;

		seen = calloc(v->count ? v->count : 1, 1);
		if (!seen) {
			rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
			goto out;
		}
		for (int l = 0; l < v->nlist; l++) {
			size_t ls = faiss_IndexIVF_get_list_size(v->ivf, (size_t)l);
			idx_t *p;

			if (ls > v->count - total) {
				rc = rag_error_set(err, RAG_ECORRUPT, "vindex: lists hold too many ids");
				goto out;
			}
			p = realloc(lids, (ls ? ls : 1) * sizeof(*lids));
			if (!p) {
				rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
				goto out;
			}
			lids = p;
			faiss_IndexIVF_invlists_get_ids(v->ivf, (size_t)l, lids);
			for (size_t j = 0; j < ls; j++) {
				if (lids[j] < 0 || (size_t)lids[j] >= v->count || seen[lids[j]]) {
					rc = rag_error_set(err, RAG_ECORRUPT,
							   "vindex: list %d holds bad or repeated id %" PRId64,
							   l, (int64_t)lids[j]);
					goto out;
				}
				seen[lids[j]] = 1;
			}
			total += ls;
		}
		if ((frc = faiss_IndexIVF_make_direct_map(v->ivf, 0)) ||
		    (frc = faiss_IndexIVF_make_direct_map(v->ivf, 1))) {
			rc = faiss_fail(err, RAG_ECORRUPT, frc, "make_direct_map");
			goto out;
		}
		for (int l = 0; l < v->nlist; l++) {
			double s = query_norm(v->centroids + (size_t)l * (size_t)v->dims, v->dims);

			if (s < 0 || s > VINDEX_NORM_MAX) {
				rc = rag_error_set(err, RAG_ECORRUPT, "vindex: centroid %d is bad", l);
				goto out;
			}
		}
	}
	for (size_t i = 0; i < v->count; i++) {
		const float *x = NULL;
		double s;

		if (stored_vector(v, (idx_t)i, vec, &x, err)) {
			rc = RAG_ECORRUPT;
			if (err)
				err->rc = rc;
			goto out;
		}
		s = query_norm(x, v->dims);
		if (s < 0 || s > VINDEX_NORM_MAX) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "vindex: vector of id %" PRId64 " is non-finite or too long",
					   v->ids[i]);
			goto out;
		}
	}
out:
	free(vec);
	free(lids);
	free(seen);
	return rc;
}

rag_rc vindex_load(const char *data, size_t len, vindex **out, rag_error *err)
{
	cookie_io_functions_t io = { .read = stream_read };
	stream st = { .data = data, .len = len };
	const char *bad;
	FaissIndex *idx = NULL;
	vindex *v = NULL;
	FILE *f = NULL;
	rag_rc rc = RAG_OK;
	int frc;

	*out = NULL;
	if (!data && len) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: NULL data");
		goto out;
	}
	if ((bad = check_layout(data, len))) {
		rc = rag_error_set(err, RAG_ECORRUPT, "vindex: corrupt index (%zu bytes): %s",
				   len, bad);
		goto out;
	}
	f = fopencookie(&st, "r", io);
	if (!f) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: fopencookie failed");
		goto out;
	}
	frc = faiss_read_index(f, 0, &idx);
	if (frc) {
		rc = faiss_fail(err, RAG_ECORRUPT, frc, "read_index");
		goto out;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	v->top = idx;
	idx = NULL;
	if ((rc = check_loaded(v, err)))
		goto out;
	*out = v;
	v = NULL;
out:
	if (f)
		fclose(f);
	faiss_Index_free(idx);
	vindex_free(v);
	return rc;
}

/* ------------------------------------------------------ object-mode export */

static void put_le32(unsigned char *p, uint32_t u)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t u)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

/* Append one list: count, chunk ids, vectors (little-endian). */
static rag_rc put_list(const vindex *v, const idx_t *iids, size_t n, float *vec,
		       rag_buf *out, rag_error *err)
{
	size_t need = LIST_HEADER + n * (8 + 4 * (size_t)v->dims);
	unsigned char *p;
	rag_rc rc;

	if (n > UINT32_MAX)
		return rag_error_set(err, RAG_ETOOBIG, "vindex: list of %zu entries", n);
	if ((rc = rag_buf_reserve(out, need)))
		return rag_error_set(err, rc, "vindex: exported lists exceed the %zu-byte cap",
				     out->max);
	p = (unsigned char *)out->data + out->len;
	put_le32(p, (uint32_t)n);
	p += LIST_HEADER;
	for (size_t i = 0; i < n; i++, p += 8)
		put_le64(p, (uint64_t)v->ids[iids ? (size_t)iids[i] : i]);
	for (size_t i = 0; i < n; i++) {
		const float *x = NULL;

		if ((rc = stored_vector(v, iids ? iids[i] : (idx_t)i, vec, &x, err)))
			return rc;
		for (int j = 0; j < v->dims; j++, p += 4) {
			uint32_t u;

			memcpy(&u, &x[j], 4);
			put_le32(p, u);
		}
	}
	out->len += need;
	out->data[out->len] = '\0';
	return RAG_OK;
}

rag_rc vindex_export_lists(const vindex *v, rag_buf *out, uint64_t **offsets, int *nlist,
			   rag_error *err)
{
	size_t start = out->len;
	uint64_t *offs = NULL;
	idx_t *lids = NULL;
	float *vec = NULL;
	rag_rc rc = RAG_OK;

	*offsets = NULL;
	*nlist = 0;
	offs = malloc(((size_t)v->nlist + 1) * sizeof(*offs));
	vec = malloc((size_t)v->dims * sizeof(*vec));
	if (!offs || !vec) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	if (!v->ivf) {
		offs[0] = out->len;
		if ((rc = put_list(v, NULL, v->count, vec, out, err)))
			goto out;
	} else {
		for (int l = 0; l < v->nlist; l++) {
			size_t ls = faiss_IndexIVF_get_list_size(v->ivf, (size_t)l);
			idx_t *p = realloc(lids, (ls ? ls : 1) * sizeof(*lids));

			if (!p) {
				rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
				goto out;
			}
			lids = p;
			faiss_IndexIVF_invlists_get_ids(v->ivf, (size_t)l, lids);
			offs[l] = out->len;
			if ((rc = put_list(v, lids, ls, vec, out, err)))
				goto out;
		}
	}
	offs[v->nlist] = out->len;
	*offsets = offs;
	*nlist = v->nlist;
	offs = NULL;
out:
	if (rc && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	free(vec);
	free(lids);
	free(offs);
	return rc;
}

rag_rc vindex_export_centroids(const vindex *v, float **centroids, int *nlist,
			       rag_error *err)
{
	size_t n = (size_t)v->nlist * (size_t)v->dims;

	*centroids = NULL;
	*nlist = v->nlist;
	if (!v->ivf)
		return RAG_OK;
	*centroids = malloc(n * sizeof(float));
	if (!*centroids)
		return rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
	memcpy(*centroids, v->centroids, n * sizeof(float));
	return RAG_OK;
}

/* ----------------------------------------------------- object-mode search */

rag_rc vindex_probe_lists(const float *centroids, int nlist, int dims, const float *query,
			  int nprobe, int *lists_out, rag_error *err)
{
	rowset rs = { .vecs = centroids, .count = (size_t)nlist };
	float *sc = NULL;
	int64_t *id = NULL;
	double qnorm;
	int np = nprobe < nlist ? nprobe : nlist;
	rag_rc rc = RAG_OK;

	if (nlist < 1 || dims < 1 || dims > VINDEX_MAX_DIMS || nprobe < 1 || !query ||
	    !lists_out || (!centroids && nlist != 1)) {
		rc = rag_error_set(err, RAG_EINVAL,
				   "vindex: bad probe (nlist %d, dims %d, nprobe %d)", nlist,
				   dims, nprobe);
		goto out;
	}
	qnorm = query_norm(query, dims);
	if (qnorm < 0) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: query has a non-finite value");
		goto out;
	}
	for (int i = 0; i < nprobe; i++)
		lists_out[i] = -1;
	if (!centroids) {
		lists_out[0] = 0;  /* a flat index: its one list */
		goto out;
	}
	sc = malloc((size_t)np * sizeof(*sc));
	id = malloc((size_t)np * sizeof(*id));
	if (!sc || !id) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	if ((rc = exact_topk(&rs, 1, dims, query, qnorm, np, sc, id, "centroid", err)))
		goto out;
	for (int i = 0; i < np; i++)
		lists_out[i] = (int)id[i];
out:
	free(id);
	free(sc);
	return rc;
}

rag_rc vindex_scan_lists(int dims, const float *query, const char *const *lists,
			 const size_t *lens, int nlists, int k, float *scores, int64_t *ids,
			 rag_error *err)
{
	rowset *rs = NULL;
	float **copies = NULL;
	double qnorm;
	rag_rc rc = RAG_OK;

	if (dims < 1 || dims > VINDEX_MAX_DIMS || k < 1 || k > VINDEX_MAX_K || nlists < 0 ||
	    !query || !scores || !ids || (nlists && (!lists || !lens))) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: bad scan (dims %d, k %d, %d lists)",
				   dims, k, nlists);
		goto out;
	}
	qnorm = query_norm(query, dims);
	if (qnorm < 0) {
		rc = rag_error_set(err, RAG_EINVAL, "vindex: query has a non-finite value");
		goto out;
	}
	rs = calloc((size_t)nlists + 1, sizeof(*rs));
	copies = calloc((size_t)nlists + 1, sizeof(*copies));
	if (!rs || !copies) {
		rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
		goto out;
	}
	for (int i = 0; i < nlists; i++) {
		const unsigned char *p = (const unsigned char *)lists[i];
		size_t per = 8 + 4 * (size_t)dims, n;
		const unsigned char *vp;

		if (lens[i] < LIST_HEADER || !p) {
			rc = rag_error_set(err, RAG_ECORRUPT, "vindex: list %d: %zu bytes, no header",
					   i, lens[i]);
			goto out;
		}
		n = get_le32(p);
		/* n * per cannot overflow once n <= (len - 4) / per */
		if (n > (lens[i] - LIST_HEADER) / per || LIST_HEADER + n * per != lens[i]) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "vindex: list %d: %zu bytes do not hold count %zu at %d dims",
					   i, lens[i], n, dims);
			goto out;
		}
		rs[i].count = n;
		rs[i].ids = p + LIST_HEADER;
		for (size_t j = 0; j < n; j++) {
			if (get_le64(rs[i].ids + 8 * j) < 0) {
				rc = rag_error_set(err, RAG_ECORRUPT, "vindex: list %d: negative id", i);
				goto out;
			}
		}
		vp = p + LIST_HEADER + 8 * n;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		if ((uintptr_t)vp % _Alignof(float) == 0) {
			rs[i].vecs = (const float *)(const void *)vp;
			continue;
		}
#endif
		/* unaligned or big-endian: decode a copy */
		copies[i] = malloc(n * (size_t)dims * sizeof(float) + 1);
		if (!copies[i]) {
			rc = rag_error_set(err, RAG_ENOMEM, "vindex: out of memory");
			goto out;
		}
		for (size_t j = 0; j < n * (size_t)dims; j++) {
			uint32_t u = get_le32(vp + 4 * j);

			memcpy(&copies[i][j], &u, 4);
		}
		rs[i].vecs = copies[i];
	}
	rc = exact_topk(rs, nlists, dims, query, qnorm, k, scores, ids, "list", err);
out:
	if (copies)
		for (int i = 0; i < nlists; i++)
			free(copies[i]);
	free(copies);
	free(rs);
	return rc;
}
