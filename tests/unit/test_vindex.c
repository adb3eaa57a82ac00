/*
 * test_vindex — the vector index: flat and IVF build and search, the
 * in-RAM vs object-mode equivalence (probe + scan over exported lists),
 * recall of IVF at the default nprobe, serialisation round trips, corrupt
 * blobs and lists, and concurrent searches.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rag_buf.h"
#include "rag_err.h"
#include "rag_util.h"
#include "vindex.h"

#define BLOB_MAX (1u << 30)

/* ------------------------------------------------------------ test data */

typedef struct rng {
	uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(rng *r)
{
	return sqrt(-2.0 * log(rng_unit(r))) * cos(6.283185307179586 * rng_unit(r));
}

static void normalise(float *x, int dims)
{
	double s = 0.0;

	for (int j = 0; j < dims; j++)
		s += (double)x[j] * x[j];
	s = sqrt(s);
	for (int j = 0; j < dims; j++)
		x[j] = (float)(x[j] / s);
}

/* n random unit vectors. */
static float *random_vecs(size_t n, int dims, uint64_t seed)
{
	float *v = malloc(n * (size_t)dims * sizeof(float));
	rng r = { seed };

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < dims; j++)
			v[i * dims + j] = (float)rng_gauss(&r);
		normalise(v + i * dims, dims);
	}
	return v;
}

/*
 * A mixture of Gaussians on the sphere, like embeddings: nc random unit
 * centres (from seed centres), each point a random centre plus isotropic
 * noise of total norm ~sigma, normalised.
 */
static float *clustered_vecs(size_t n, int dims, int nc, double sigma, uint64_t centres,
			     uint64_t seed)
{
	float *c = random_vecs((size_t)nc, dims, centres);
	float *v = malloc(n * (size_t)dims * sizeof(float));
	rng r = { seed };

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		const float *ci = c + (rng_next(&r) % (uint64_t)nc) * dims;

		for (int j = 0; j < dims; j++)
			v[i * dims + j] = (float)(ci[j] + sigma * rng_gauss(&r) / sqrt(dims));
		normalise(v + i * dims, dims);
	}
	free(c);
	return v;
}

/* Non-contiguous, large, shuffled-looking ids. */
static int64_t *sparse_ids(size_t n)
{
	int64_t *ids = malloc(n * sizeof(*ids));

	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)((i * 2654435761u) % 1000003u) * 1000 + 7000000000000LL;
	return ids;
}

static vindex *build(int dims, const float *v, const int64_t *ids, size_t n, int64_t thr,
		     int nlist, int nprobe)
{
	vindex_build_opts o = { .ivf_threshold = thr, .nlist = nlist, .nprobe = nprobe };
	rag_error err = { 0 };
	vindex *x = NULL;
	rag_rc rc = vindex_build(dims, v, ids, n, &o, &x, &err);

	if (rc)
		print_error("build: %s: %s\n", rag_rc_name(rc), err.msg);
	assert_int_equal(rc, RAG_OK);
	return x;
}

/* Exact top k by double inner product over all vectors (test oracle). */
static void brute_topk(const float *v, const int64_t *ids, size_t n, int dims, const float *q,
		       int k, int64_t *out)
{
	double *best = malloc((size_t)k * sizeof(*best));

	assert_non_null(best);
	for (int i = 0; i < k; i++) {
		best[i] = -INFINITY;
		out[i] = -1;
	}
	for (size_t i = 0; i < n; i++) {
		double s = 0.0;
		int at;

		for (int j = 0; j < dims; j++)
			s += (double)v[i * dims + j] * q[j];
		if (s <= best[k - 1])
			continue;
		for (at = k - 1; at > 0 && best[at - 1] < s; at--) {
			best[at] = best[at - 1];
			out[at] = out[at - 1];
		}
		best[at] = s;
		out[at] = ids[i];
	}
	free(best);
}

/* Search results are sorted: score desc, then id asc; missing at the end. */
static void assert_sorted(const float *sc, const int64_t *id, int k)
{
	for (int i = 1; i < k; i++) {
		if (id[i] < 0)
			continue;
		assert_true(id[i - 1] >= 0);
		assert_true(sc[i - 1] > sc[i] || (sc[i - 1] == sc[i] && id[i - 1] < id[i]));
	}
}

/* -------------------------------------------------- object-mode helpers */

typedef struct exported {
	rag_buf lists;
	uint64_t *offs;
	int nlist;
	float *centroids;
	int ncent;
} exported;

static void export_all(const vindex *x, exported *e)
{
	rag_error err = { 0 };

	rag_buf_init(&e->lists, BLOB_MAX);
	assert_int_equal(vindex_export_lists(x, &e->lists, &e->offs, &e->nlist, &err), RAG_OK);
	assert_int_equal(vindex_export_centroids(x, &e->centroids, &e->ncent, &err), RAG_OK);
	assert_int_equal(e->nlist, vindex_nlist(x));
	assert_int_equal(e->ncent, vindex_nlist(x));
	assert_int_equal(e->offs[0], 0);
	assert_int_equal(e->offs[e->nlist], e->lists.len);
}

static void exported_release(exported *e)
{
	rag_buf_release(&e->lists);
	free(e->offs);
	free(e->centroids);
}

/* Object mode: probe the centroids, "fetch" each probed list, scan. */
static void object_search(const exported *e, int dims, const float *q, int nprobe, int k,
			  float *sc, int64_t *id)
{
	int *probe = malloc((size_t)nprobe * sizeof(*probe));
	const char **lists = malloc((size_t)nprobe * sizeof(*lists));
	size_t *lens = malloc((size_t)nprobe * sizeof(*lens));
	rag_error err = { 0 };
	int n = 0;

	assert_non_null(probe);
	assert_non_null(lists);
	assert_non_null(lens);
	assert_int_equal(vindex_probe_lists(e->centroids, e->ncent, dims, q, nprobe, probe, &err),
			 RAG_OK);
	for (int i = 0; i < nprobe; i++) {
		if (probe[i] < 0)
			continue;
		assert_true(probe[i] < e->nlist);
		lists[n] = e->lists.data + e->offs[probe[i]];
		lens[n] = (size_t)(e->offs[probe[i] + 1] - e->offs[probe[i]]);
		n++;
	}
	assert_int_equal(vindex_scan_lists(dims, q, lists, lens, n, k, sc, id, &err), RAG_OK);
	free(lens);
	free(lists);
	free(probe);
}

/* ------------------------------------------------------------------ tests */

static void test_flat_basic(void **state)
{
	const int dims = 16, k = 12;
	const size_t n = 500;
	float *v = random_vecs(n, dims, 1);
	int64_t *ids = sparse_ids(n), want[12], got[12];
	float sc[12];
	vindex *x = build(dims, v, ids, n, 0, 0, 0);
	rag_error err = { 0 };

	(void)state;
	assert_int_equal(vindex_kind_of(x), VINDEX_FLAT);
	assert_int_equal(vindex_dims(x), dims);
	assert_int_equal(vindex_count(x), n);
	assert_int_equal(vindex_nlist(x), 1);
	assert_true(vindex_memory_bytes(x) >= n * dims * sizeof(float));
	/* a stored vector finds itself, with its (non-contiguous) id */
	for (size_t i = 0; i < n; i += 37) {
		assert_int_equal(vindex_search(x, v + i * dims, 1, k, 0, sc, got, &err), RAG_OK);
		assert_int_equal(got[0], ids[i]);
		assert_true(fabsf(sc[0] - 1.0f) < 1e-5f);
		assert_sorted(sc, got, k);
		brute_topk(v, ids, n, dims, v + i * dims, k, want);
		assert_memory_equal(want, got, sizeof(want));
	}
	vindex_free(x);
	free(ids);
	free(v);
}

static void test_small_and_empty(void **state)
{
	const int dims = 8;
	float *v = random_vecs(3, dims, 2), sc[5];
	int64_t ids[3] = { 42, 7, 1LL << 40 }, got[5];
	rag_error err = { 0 };
	vindex *x = build(dims, v, ids, 3, 0, 0, 0);

	(void)state;
	/* k > n: the rest is missing */
	assert_int_equal(vindex_search(x, v, 1, 5, 0, sc, got, &err), RAG_OK);
	assert_int_equal(got[0], 42);
	assert_int_equal(got[3], -1);
	assert_int_equal(got[4], -1);
	assert_true(sc[4] == VINDEX_NO_SCORE);
	assert_int_equal(vindex_search(x, v, 1, 0, 0, sc, got, &err), RAG_EINVAL);
	vindex_free(x);
	/* an empty index */
	x = build(dims, NULL, NULL, 0, 0, 0, 0);
	assert_int_equal(vindex_count(x), 0);
	assert_int_equal(vindex_search(x, v, 1, 5, 0, sc, got, &err), RAG_OK);
	assert_int_equal(got[0], -1);
	vindex_free(x);
	/* IVF even for tiny n when asked: nlist clamps to 1 */
	x = build(dims, v, ids, 3, 1, 0, 0);
	assert_int_equal(vindex_kind_of(x), VINDEX_IVF);
	assert_int_equal(vindex_nlist(x), 1);
	assert_int_equal(vindex_search(x, v + dims, 1, 5, 0, sc, got, &err), RAG_OK);
	assert_int_equal(got[0], 7);
	assert_int_equal(got[3], -1);
	vindex_free(x);
	free(v);
}

static void test_build_invalid(void **state)
{
	const int dims = 4;
	float v[8] = { 1, 0, 0, 0, 0, 1, 0, 0 };
	int64_t ids[2] = { 1, 2 };
	rag_error err = { 0 };
	vindex *x = (vindex *)1;
	vindex_build_opts o = { .ivf_threshold = 1, .nlist = 3 };

	(void)state;
	assert_int_equal(vindex_build(0, v, ids, 2, NULL, &x, &err), RAG_EINVAL);
	assert_null(x);
	assert_int_equal(vindex_build(VINDEX_MAX_DIMS + 1, v, ids, 2, NULL, &x, &err), RAG_EINVAL);
	ids[1] = -5;
	assert_int_equal(vindex_build(dims, v, ids, 2, NULL, &x, &err), RAG_EINVAL);
	ids[1] = 2;
	v[5] = NAN;
	assert_int_equal(vindex_build(dims, v, ids, 2, NULL, &x, &err), RAG_EINVAL);
	v[5] = 3.0f; /* not normalised */
	assert_int_equal(vindex_build(dims, v, ids, 2, NULL, &x, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "normalised"));
	v[5] = 1.0f;
	assert_int_equal(vindex_build(dims, v, ids, 2, &o, &x, &err), RAG_EINVAL); /* nlist > n */
	o.nlist = 2;
	o.nprobe = 3;
	assert_int_equal(vindex_build(dims, v, ids, 2, &o, &x, &err), RAG_EINVAL); /* nprobe > nlist */
	o.nprobe = 0;
	assert_int_equal(vindex_build(dims, v, ids, 2, &o, &x, &err), RAG_OK);
	assert_int_equal(vindex_nlist(x), 2);
	vindex_free(x);
	vindex_free(NULL);
}

/*
 * The crucial property: probe + scan over exported lists == vindex_search
 * on the IVF index in RAM, for several nprobe (including more than the
 * default, which vindex_search serves in several FAISS calls).
 */
static void test_ivf_object_equivalence(void **state)
{
	const int dims = 64, k = 10, nq = 100;
	const size_t n = 20000;
	const int probes[] = { 1, 3, 0 /* default */, 100, 1000 };
	float *v = random_vecs(n, dims, 3), *q = random_vecs((size_t)nq, dims, 4);
	int64_t *ids = sparse_ids(n);
	vindex *x = build(dims, v, ids, n, 0, 0, 0);
	float sa[10], sb[10];
	int64_t ia[10], ib[10];
	rag_error err = { 0 };
	exported e;

	(void)state;
	assert_int_equal(vindex_kind_of(x), VINDEX_IVF);
	/* clamp(4 * sqrt(20000), 1, 20000 / 39) */
	assert_int_equal(vindex_nlist(x), 512);
	assert_true(vindex_nprobe(x) >= 1 && vindex_nprobe(x) <= 512);
	export_all(x, &e);
	for (size_t p = 0; p < RAG_ARRAY_LEN(probes); p++) {
		int np = probes[p] ? probes[p] : vindex_nprobe(x);
		int eff = np > vindex_nlist(x) ? vindex_nlist(x) : np;
		double maxdiff = 0.0;

		for (int i = 0; i < nq; i++) {
			assert_int_equal(vindex_search(x, q + i * dims, 1, k, probes[p], sa, ia, &err),
					 RAG_OK);
			object_search(&e, dims, q + i * dims, eff, k, sb, ib);
			assert_memory_equal(ia, ib, sizeof(ia));
			for (int j = 0; j < k; j++) {
				assert_true(fabsf(sa[j] - sb[j]) <= 1e-5f);
				if (fabs((double)sa[j] - sb[j]) > maxdiff)
					maxdiff = fabs((double)sa[j] - sb[j]);
			}
			assert_sorted(sa, ia, k);
		}
		print_message("equivalence nprobe %4d: %d queries, ids identical, max |score diff| %g\n",
			      eff, nq, maxdiff);
	}
	/* all lists probed = exact search */
	for (int i = 0; i < 10; i++) {
		int64_t want[10];

		assert_int_equal(vindex_search(x, q + i * dims, 1, k, 512, sa, ia, &err), RAG_OK);
		brute_topk(v, ids, n, dims, q + i * dims, k, want);
		assert_memory_equal(want, ia, sizeof(want));
	}
	exported_release(&e);
	vindex_free(x);
	free(ids);
	free(q);
	free(v);
}

/* Batch search == one query at a time. */
static void test_batch_search(void **state)
{
	const int dims = 32, k = 7, nq = 25;
	const size_t n = 3000;
	float *v = random_vecs(n, dims, 5), *q = random_vecs((size_t)nq, dims, 6);
	int64_t *ids = sparse_ids(n), *ib = malloc(nq * k * sizeof(*ib)), one_i[7];
	float *sb = malloc(nq * k * sizeof(*sb)), one_s[7];
	vindex *x = build(dims, v, ids, n, 1000, 0, 0);
	rag_error err = { 0 };

	(void)state;
	assert_int_equal(vindex_search(x, q, (size_t)nq, k, 0, sb, ib, &err), RAG_OK);
	for (int i = 0; i < nq; i++) {
		assert_int_equal(vindex_search(x, q + i * dims, 1, k, 0, one_s, one_i, &err), RAG_OK);
		assert_memory_equal(one_i, ib + i * k, sizeof(one_i));
		assert_memory_equal(one_s, sb + i * k, sizeof(one_s));
	}
	vindex_free(x);
	free(sb);
	free(ib);
	free(ids);
	free(q);
	free(v);
}

static double ms_per_query(const vindex *x, const float *q, int nq, int dims, int k)
{
	float sc[10];
	int64_t id[10];
	rag_error err = { 0 };
	uint64_t t0 = rag_now_ns();

	for (int i = 0; i < nq; i++)
		assert_int_equal(vindex_search(x, q + i * dims, 1, k, 0, sc, id, &err), RAG_OK);
	return rag_ms_since(t0) / nq;
}

static double recall_at_10(const vindex *ivf, const vindex *flat, const float *q, int nq,
			   int dims, int nprobe)
{
	int hit = 0;
	rag_error err = { 0 };

	for (int i = 0; i < nq; i++) {
		float sa[10], sb[10];
		int64_t ia[10], ib[10];

		assert_int_equal(vindex_search(flat, q + i * dims, 1, 10, 0, sa, ia, &err), RAG_OK);
		assert_int_equal(vindex_search(ivf, q + i * dims, 1, 10, nprobe, sb, ib, &err), RAG_OK);
		for (int a = 0; a < 10; a++)
			for (int b = 0; b < 10; b++)
				hit += ia[a] == ib[b];
	}
	return hit / (10.0 * nq);
}

/*
 * Recall@10 of IVF at the default (tuned) nprobe vs exact search, on
 * clustered data (queries from the same mixture, not stored vectors), and
 * on uniform random data, IVF's worst case; with search times.
 */
static void recall_case(const char *name, const float *v, const float *q, size_t n, int nq,
			int dims)
{
	int64_t *ids = sparse_ids(n);
	vindex *flat = build(dims, v, ids, n, INT64_MAX, 0, 0), *ivf;
	uint64_t t0 = rag_now_ns();
	double recall, tb, tf, ti;

	ivf = build(dims, v, ids, n, 0, 0, 0);
	tb = rag_ms_since(t0);
	assert_int_equal(vindex_kind_of(flat), VINDEX_FLAT);
	assert_int_equal(vindex_kind_of(ivf), VINDEX_IVF);
	recall = recall_at_10(ivf, flat, q, nq, dims, 0);
	tf = ms_per_query(flat, q, nq, dims, 10);
	ti = ms_per_query(ivf, q, nq, dims, 10);
	print_message("%s %zu x %d: nlist %d, tuned nprobe %d (build %.0f ms): recall@10 %.4f; "
		      "per query (k 10): flat %.3f ms, IVF %.3f ms\n", name, n, dims,
		      vindex_nlist(ivf), vindex_nprobe(ivf), tb, recall, tf, ti);
	assert_true(recall >= 0.95);
	vindex_free(ivf);
	vindex_free(flat);
	free(ids);
}

static void test_recall(void **state)
{
	const int dims = 64, nq = 200;
	const size_t n = 20000;
	float *v = clustered_vecs(n, dims, 200, 1.3, 70, 7);
	float *q = clustered_vecs((size_t)nq, dims, 200, 1.3, 70, 77); /* same centres */

	(void)state;
	recall_case("200 Gaussians", v, q, n, nq, dims);
	free(q);
	free(v);
	v = random_vecs(n, dims, 8);
	q = random_vecs((size_t)nq, dims, 9);
	recall_case("uniform", v, q, n, nq, dims);
	free(q);
	free(v);
}

static void roundtrip(int64_t thr)
{
	const int dims = 24, k = 10, nq = 30;
	const size_t n = 4000;
	float *v = clustered_vecs(n, dims, 40, 0.8, 110, 11), *q = random_vecs((size_t)nq, dims, 12);
	int64_t *ids = sparse_ids(n);
	vindex *a = build(dims, v, ids, n, thr, 0, 0), *b = NULL, *c;
	rag_buf blob, blob2, blob3;
	rag_error err = { 0 };

	rag_buf_init(&blob, BLOB_MAX);
	rag_buf_init(&blob2, BLOB_MAX);
	rag_buf_init(&blob3, BLOB_MAX);
	assert_int_equal(vindex_serialize(a, &blob, &err), RAG_OK);
	assert_int_equal(vindex_load(blob.data, blob.len, &b, &err), RAG_OK);
	assert_int_equal(vindex_kind_of(a), vindex_kind_of(b));
	assert_int_equal(vindex_count(a), vindex_count(b));
	assert_int_equal(vindex_nlist(a), vindex_nlist(b));
	assert_int_equal(vindex_nprobe(a), vindex_nprobe(b));
	assert_int_equal(vindex_memory_bytes(a), vindex_memory_bytes(b));
	for (int np = 0; np <= vindex_nlist(a); np = np ? np * 4 : 1) {
		float sa[30 * 10], sb[30 * 10];
		int64_t ia[30 * 10], ib[30 * 10];

		assert_int_equal(vindex_search(a, q, (size_t)nq, k, np, sa, ia, &err), RAG_OK);
		assert_int_equal(vindex_search(b, q, (size_t)nq, k, np, sb, ib, &err), RAG_OK);
		assert_memory_equal(ia, ib, sizeof(ia));
		assert_memory_equal(sa, sb, sizeof(sa));
	}
	/* the loaded index serialises to the same bytes */
	assert_int_equal(vindex_serialize(b, &blob2, &err), RAG_OK);
	assert_int_equal(blob.len, blob2.len);
	assert_memory_equal(blob.data, blob2.data, blob.len);
	/* building again gives the same bytes: deterministic k-means */
	c = build(dims, v, ids, n, thr, 0, 0);
	assert_int_equal(vindex_serialize(c, &blob3, &err), RAG_OK);
	assert_int_equal(blob.len, blob3.len);
	assert_memory_equal(blob.data, blob3.data, blob.len);
	/* a cap too small: RAG_ETOOBIG, buffer untouched */
	rag_buf_release(&blob3);
	rag_buf_init(&blob3, blob.len - 1);
	assert_int_equal(vindex_serialize(c, &blob3, &err), RAG_ETOOBIG);
	assert_int_equal(blob3.len, 0);
	print_message("%s round trip: %zu-byte blob\n", vindex_kind_of(a) == VINDEX_IVF ? "IVF"
			: "flat", blob.len);
	vindex_free(c);
	vindex_free(b);
	vindex_free(a);
	rag_buf_release(&blob3);
	rag_buf_release(&blob2);
	rag_buf_release(&blob);
	free(ids);
	free(q);
	free(v);
}

static void test_roundtrip_flat(void **state)
{
	(void)state;
	roundtrip(INT64_MAX);
}

static void test_roundtrip_ivf(void **state)
{
	(void)state;
	roundtrip(1);
}

/* Load bytes; whatever happens, no crash, and a loaded index works. */
static rag_rc try_load(const char *p, size_t len)
{
	vindex *x = NULL;
	rag_error err = { 0 };
	rag_rc rc = vindex_load(p, len, &x, &err);

	if (rc) {
		assert_null(x);
		assert_true(rc == RAG_ECORRUPT);
		assert_true(err.msg[0] != '\0');
	} else {
		float q[8] = { 1, 0, 0, 0, 0, 0, 0, 0 }, sc[5];
		int64_t id[5];

		assert_int_equal(vindex_search(x, q, 1, 5, 0, sc, id, &err), RAG_OK);
		assert_int_equal(vindex_search(x, q, 1, 5, vindex_nlist(x), sc, id, &err), RAG_OK);
		vindex_free(x);
	}
	return rc;
}

static void corrupt_blobs(int64_t thr, int nlist)
{
	const int dims = 8;
	const size_t n = 120;
	float *v = random_vecs(n, dims, 13);
	int64_t *ids = sparse_ids(n);
	vindex *x = build(dims, v, ids, n, thr, nlist, 0);
	rag_buf blob;
	rag_error err = { 0 };
	char *copy, junk[4096];
	rng r = { 99 };
	size_t ok = 0;

	rag_buf_init(&blob, BLOB_MAX);
	assert_int_equal(vindex_serialize(x, &blob, &err), RAG_OK);
	copy = malloc(blob.len + 8);
	assert_non_null(copy);
	/* the intact blob loads */
	assert_int_equal(try_load(blob.data, blob.len), RAG_OK);
	/* every truncation is rejected */
	for (size_t len = 0; len < blob.len; len++) {
		memcpy(copy, blob.data, len);
		assert_int_equal(try_load(copy, len), RAG_ECORRUPT);
	}
	/* trailing bytes are rejected */
	memcpy(copy, blob.data, blob.len);
	memset(copy + blob.len, 0, 8);
	assert_int_equal(try_load(copy, blob.len + 8), RAG_ECORRUPT);
	/* garbage */
	for (int t = 0; t < 200; t++) {
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)rng_next(&r);
		assert_int_equal(try_load(junk, 1 + rng_next(&r) % sizeof(junk)), RAG_ECORRUPT);
	}
	/* a real header followed by garbage */
	memcpy(junk, blob.data, 64);
	assert_int_equal(try_load(junk, sizeof(junk)), RAG_ECORRUPT);
	/* every single byte changed: rejected or loads and searches */
	for (size_t i = 0; i < blob.len; i++) {
		memcpy(copy, blob.data, blob.len);
		copy[i] ^= (char)(1 + rng_next(&r) % 255);
		ok += try_load(copy, blob.len) == RAG_OK;
	}
	print_message("%s blob of %zu bytes: every truncation rejected; %zu of %zu one-byte "
		      "changes still load (vector bytes)\n", thr == 1 ? "IVF" : "flat", blob.len,
		      ok, blob.len);
	vindex_free(x);
	rag_buf_release(&blob);
	free(copy);
	free(ids);
	free(v);
}

static void test_load_corrupt_flat(void **state)
{
	(void)state;
	corrupt_blobs(INT64_MAX, 0);
}

static void test_load_corrupt_ivf(void **state)
{
	(void)state;
	corrupt_blobs(1, 3);  /* with 3 lists for 120 points */
	corrupt_blobs(1, 100); /* mostly empty lists: the sparse list-size format */
}

/* A flat index exported as one list, no centroids: scan == search. */
static void test_flat_export_scan(void **state)
{
	const int dims = 16, k = 10;
	const size_t n = 1500;
	float *v = random_vecs(n, dims, 14), *q = random_vecs(20, dims, 15), sa[10], sb[10];
	int64_t *ids = sparse_ids(n), ia[10], ib[10];
	vindex *x = build(dims, v, ids, n, INT64_MAX, 0, 0);
	rag_error err = { 0 };
	int probe[3];
	exported e;

	(void)state;
	export_all(x, &e);
	assert_int_equal(e.nlist, 1);
	assert_null(e.centroids);
	assert_int_equal(e.lists.len, 4 + n * (8 + 4 * dims));
	assert_int_equal(vindex_probe_lists(NULL, 1, dims, q, 3, probe, &err), RAG_OK);
	assert_int_equal(probe[0], 0);
	assert_int_equal(probe[1], -1);
	assert_int_equal(probe[2], -1);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vindex_search(x, q + i * dims, 1, k, 0, sa, ia, &err), RAG_OK);
		object_search(&e, dims, q + i * dims, 1, k, sb, ib);
		assert_memory_equal(ia, ib, sizeof(ia));
		assert_memory_equal(sa, sb, sizeof(sa));
	}
	exported_release(&e);
	vindex_free(x);
	free(ids);
	free(q);
	free(v);
}

/* Corrupt list bytes are rejected; unaligned lists still scan. */
static void test_scan_lists_corrupt(void **state)
{
	const int dims = 4;
	float v[3 * 4] = { 1, 0, 0, 0, 0, 1, 0, 0, 0.6f, 0.8f, 0, 0 }, q[4] = { 0, 1, 0, 0 };
	int64_t ids[3] = { 5, 9, 1LL << 50 }, id[4];
	float sc[4];
	vindex *x = build(dims, v, ids, 3, INT64_MAX, 0, 0);
	rag_error err = { 0 };
	exported e;
	char *buf;
	const char *lp[1];
	size_t len;

	(void)state;
	export_all(x, &e);
	len = e.lists.len;
	buf = calloc(1, len + 16);
	assert_non_null(buf);
	/* intact, then at an odd address */
	lp[0] = e.lists.data;
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 1, 4, sc, id, &err), RAG_OK);
	assert_int_equal(id[0], 9);
	assert_int_equal(id[1], 1LL << 50);
	assert_true(fabsf(sc[1] - 0.8f) < 1e-6f);
	assert_int_equal(id[3], -1);
	memcpy(buf + 1, e.lists.data, len);
	lp[0] = buf + 1;
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 1, 4, sc, id, &err), RAG_OK);
	assert_int_equal(id[0], 9);
	/* length inconsistent with count: short, long, tiny */
	for (size_t bad = 0; bad < len + 8; bad++) {
		if (bad == len)
			continue;
		memcpy(buf, e.lists.data, len < bad ? len : bad);
		lp[0] = buf;
		assert_int_equal(vindex_scan_lists(dims, q, lp, &bad, 1, 4, sc, id, &err),
				 RAG_ECORRUPT);
	}
	/* a huge count */
	memcpy(buf, e.lists.data, len);
	memset(buf, 0xff, 4);
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 1, 4, sc, id, &err), RAG_ECORRUPT);
	/* a NaN vector, a negative id */
	memcpy(buf, e.lists.data, len);
	memset(buf + 4 + 3 * 8 + 4, 0xff, 4);
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 1, 4, sc, id, &err), RAG_ECORRUPT);
	memcpy(buf, e.lists.data, len);
	buf[4 + 7] = (char)0x80;
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 1, 4, sc, id, &err), RAG_ECORRUPT);
	/* no lists: all missing */
	assert_int_equal(vindex_scan_lists(dims, q, lp, &len, 0, 4, sc, id, &err), RAG_OK);
	assert_int_equal(id[0], -1);
	free(buf);
	exported_release(&e);
	vindex_free(x);
}

/* Probe: best first, ties to the lower list number, -1 past nlist. */
static void test_probe_ties(void **state)
{
	float c[4 * 2] = { 0, 1, 1, 0, 0, 1, 0.6f, 0.8f }, q[2] = { 0, 1 }, bad[2] = { NAN, 0 };
	int out[6];
	rag_error err = { 0 };

	(void)state;
	assert_int_equal(vindex_probe_lists(c, 4, 2, q, 6, out, &err), RAG_OK);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 2);
	assert_int_equal(out[2], 3);
	assert_int_equal(out[3], 1);
	assert_int_equal(out[4], -1);
	assert_int_equal(out[5], -1);
	assert_int_equal(vindex_probe_lists(c, 4, 2, bad, 2, out, &err), RAG_EINVAL);
	assert_int_equal(vindex_probe_lists(c, 4, 2, q, 0, out, &err), RAG_EINVAL);
	assert_int_equal(vindex_probe_lists(NULL, 4, 2, q, 2, out, &err), RAG_EINVAL);
}

/* Duplicate vectors: ties broken by id, identically on both paths. */
static void test_duplicates(void **state)
{
	const int dims = 16, k = 10;
	const size_t n = 2000;
	float *v = random_vecs(n, dims, 16), sa[10], sb[10];
	int64_t *ids = sparse_ids(n), ia[10], ib[10];
	vindex *x;
	rag_error err = { 0 };
	exported e;

	(void)state;
	for (size_t i = 1; i < 40; i++) /* 40 copies of vector 0 */
		memcpy(v + i * 50 * dims, v, dims * sizeof(float));
	x = build(dims, v, ids, n, 1, 20, 5);
	export_all(x, &e);
	for (int np = 1; np <= 20; np++) {
		assert_int_equal(vindex_search(x, v, 1, k, np, sa, ia, &err), RAG_OK);
		object_search(&e, dims, v, np, k, sb, ib);
		assert_memory_equal(ia, ib, sizeof(ia));
		assert_memory_equal(sa, sb, sizeof(sa));
		assert_sorted(sa, ia, k);
		assert_int_equal(vindex_search_with(x, VINDEX_SCAN_BLAS, v, 1, k, np, sb, ib, &err),
				 RAG_OK);
		assert_memory_equal(ia, ib, sizeof(ia));
		assert_memory_equal(sa, sb, sizeof(sa));
	}
	assert_true(sa[0] == sa[k - 1]); /* all ten are copies at nprobe 20 */
	exported_release(&e);
	vindex_free(x);
	free(ids);
	free(v);
}

/*
 * VINDEX_SCAN_BLAS (OpenBLAS over FAISS's lists in place) against
 * VINDEX_SCAN_FAISS (vindex_search): the same ids and scores, bit for bit
 * (vindex.h, invariants 1 and 2), over flat and IVF indexes, built and
 * loaded, for several k (past the vectors reachable too) and nprobe, one
 * query at a time and in batches; all lists probed = brute force.
 */
static void scan_paths_agree(const vindex *x, const float *q, int nq, int dims, const int *ks,
			     size_t nks, const int *probes, size_t nprobes, const char *what)
{
	rag_error err = { 0 };
	size_t cases = 0;

	for (size_t a = 0; a < nks; a++) {
		int k = ks[a];
		float *sa = malloc((size_t)nq * (size_t)k * sizeof(*sa));
		float *sb = malloc((size_t)nq * (size_t)k * sizeof(*sb));
		int64_t *ia = malloc((size_t)nq * (size_t)k * sizeof(*ia));
		int64_t *ib = malloc((size_t)nq * (size_t)k * sizeof(*ib));

		assert_non_null(sa);
		assert_non_null(sb);
		assert_non_null(ia);
		assert_non_null(ib);
		for (size_t p = 0; p < nprobes; p++) {
			int np = probes[p];

			/* one call for the batch, then one query at a time */
			assert_int_equal(vindex_search(x, q, (size_t)nq, k, np, sa, ia, &err), RAG_OK);
			assert_int_equal(vindex_search_with(x, VINDEX_SCAN_BLAS, q, (size_t)nq, k, np,
							    sb, ib, &err), RAG_OK);
			assert_memory_equal(ia, ib, (size_t)nq * (size_t)k * sizeof(*ia));
			assert_memory_equal(sa, sb, (size_t)nq * (size_t)k * sizeof(*sa));
			for (int i = 0; i < nq; i++) {
				assert_int_equal(vindex_search_with(x, VINDEX_SCAN_BLAS, q + i * dims, 1,
								    k, np, sb, ib, &err), RAG_OK);
				assert_memory_equal(ia + (size_t)i * k, ib, (size_t)k * sizeof(*ib));
				assert_memory_equal(sa + (size_t)i * k, sb, (size_t)k * sizeof(*sb));
				assert_sorted(sb, ib, k);
			}
			cases++;
		}
		free(ib);
		free(ia);
		free(sb);
		free(sa);
	}
	print_message("scan paths, %s: %zu (k, nprobe) cases x %d queries bit-identical\n", what,
		      cases, nq);
}

static void test_scan_paths(void **state)
{
	const int dims = 48, nq = 40;
	const size_t n = 12000;
	const int ks_flat[] = { 1, 7, 10, 100, 2999, 3000, 3100 };
	const int ks_ivf[] = { 1, 10, 50, 300 };
	float *v = clustered_vecs(n, dims, 60, 0.7, 201, 202), *q = random_vecs((size_t)nq, dims, 203);
	int64_t *ids = sparse_ids(n);
	vindex *flat, *ivf, *loaded = NULL, *empty;
	rag_buf blob;
	rag_error err = { 0 };
	float sc[10];
	int64_t id[10], want[10];

	(void)state;
	/* half the queries are stored vectors: exact ties with a row */
	memcpy(q, v + 17 * dims, (size_t)(nq / 2) * dims * sizeof(float));
	flat = build(dims, v, ids, 3000, 0, 0, 0);
	assert_int_equal(vindex_kind_of(flat), VINDEX_FLAT);
	{
		const int probes[] = { 0, 1, 9 };

		scan_paths_agree(flat, q, nq, dims, ks_flat, RAG_ARRAY_LEN(ks_flat), probes,
				 RAG_ARRAY_LEN(probes), "flat");
	}
	ivf = build(dims, v, ids, n, 1000, 0, 0);
	assert_int_equal(vindex_kind_of(ivf), VINDEX_IVF);
	{
		int nl = vindex_nlist(ivf);
		const int probes[] = { 1, 3, 0 /* default */, 17, nl - 1, nl, nl + 5 };
		size_t rows = 0;

		for (int l = 0; l < nl; l++)
			rows += vindex_list_size(ivf, l);
		assert_int_equal(rows, n);
		assert_int_equal(vindex_list_size(ivf, -1), 0);
		assert_int_equal(vindex_list_size(ivf, nl), 0);
		scan_paths_agree(ivf, q, nq, dims, ks_ivf, RAG_ARRAY_LEN(ks_ivf), probes,
				 RAG_ARRAY_LEN(probes), "IVF built");
		rag_buf_init(&blob, BLOB_MAX);
		assert_int_equal(vindex_serialize(ivf, &blob, &err), RAG_OK);
		assert_int_equal(vindex_load(blob.data, blob.len, &loaded, &err), RAG_OK);
		rag_buf_release(&blob);
		scan_paths_agree(loaded, q, nq, dims, ks_ivf, RAG_ARRAY_LEN(ks_ivf), probes,
				 RAG_ARRAY_LEN(probes), "IVF loaded");
		/* every list probed: the exact top 10 */
		for (int i = 0; i < 5; i++) {
			assert_int_equal(vindex_search_with(loaded, VINDEX_SCAN_BLAS, q + i * dims, 1,
							    10, nl, sc, id, &err), RAG_OK);
			brute_topk(v, ids, n, dims, q + i * dims, 10, want);
			assert_memory_equal(want, id, sizeof(want));
		}
	}
	/* an empty index, an unknown scan, a bad query */
	empty = build(dims, v, ids, 0, 0, 0, 0);
	assert_int_equal(vindex_search_with(empty, VINDEX_SCAN_BLAS, q, 1, 10, 0, sc, id, &err),
			 RAG_OK);
	assert_int_equal(id[0], -1);
	assert_true(sc[9] == VINDEX_NO_SCORE);
	assert_int_equal(vindex_search_with(ivf, (vindex_scan)7, q, 1, 10, 0, sc, id, &err),
			 RAG_EINVAL);
	q[3] = NAN;
	assert_int_equal(vindex_search_with(ivf, VINDEX_SCAN_BLAS, q, 1, 10, 0, sc, id, &err),
			 RAG_EINVAL);
	vindex_free(empty);
	vindex_free(loaded);
	vindex_free(ivf);
	vindex_free(flat);
	free(ids);
	free(q);
	free(v);
}

typedef struct worker {
	const vindex *x;
	const float *q;
	int nq, dims;
	int64_t *ids;
	float *sc;
	rag_rc rc;
	vindex_scan scan;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	rag_error err = { 0 };

	for (int rep = 0; rep < 3 && !w->rc; rep++)
		w->rc = vindex_search_with(w->x, w->scan, w->q, (size_t)w->nq, 10,
					   rep == 1 ? 200 : 0, w->sc, w->ids, &err);
	return NULL;
}

static void test_concurrent_search(void **state)
{
	const int dims = 32, nq = 50, nt = 4;
	const size_t n = 10000;
	float *v = clustered_vecs(n, dims, 50, 1.0, 170, 17), *q = random_vecs((size_t)nq, dims, 18);
	int64_t *ids = sparse_ids(n), want[50 * 10];
	float wsc[50 * 10];
	vindex *x = build(dims, v, ids, n, 0, 0, 0);
	pthread_t th[4];
	worker w[4];
	rag_error err = { 0 };

	(void)state;
	assert_int_equal(vindex_search(x, q, (size_t)nq, 10, 0, wsc, want, &err), RAG_OK);
	for (int t = 0; t < nt; t++) {
		/* half the threads scan with OpenBLAS, the same results */
		w[t] = (worker){ x, q, nq, dims, malloc(sizeof(want)), malloc(sizeof(wsc)), RAG_OK,
				 t % 2 ? VINDEX_SCAN_BLAS : VINDEX_SCAN_FAISS };
		assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
	}
	for (int t = 0; t < nt; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(w[t].rc, RAG_OK);
		assert_memory_equal(w[t].ids, want, sizeof(want));
		assert_memory_equal(w[t].sc, wsc, sizeof(wsc));
		free(w[t].ids);
		free(w[t].sc);
	}
	vindex_free(x);
	free(ids);
	free(q);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flat_basic),
		cmocka_unit_test(test_small_and_empty),
		cmocka_unit_test(test_build_invalid),
		cmocka_unit_test(test_ivf_object_equivalence),
		cmocka_unit_test(test_batch_search),
		cmocka_unit_test(test_recall),
		cmocka_unit_test(test_roundtrip_flat),
		cmocka_unit_test(test_roundtrip_ivf),
		cmocka_unit_test(test_load_corrupt_flat),
		cmocka_unit_test(test_load_corrupt_ivf),
		cmocka_unit_test(test_flat_export_scan),
		cmocka_unit_test(test_scan_lists_corrupt),
		cmocka_unit_test(test_probe_ties),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_scan_paths),
		cmocka_unit_test(test_concurrent_search),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
