/*
 * vindex — the vector index: FAISS (through its C API) flat and IVF-Flat
 * indexes over L2-normalised float32 vectors, similarity = inner product,
 * each vector tagged with a caller-chosen int64 chunk id.
 *
 * Besides search in RAM, it supports the "object" backing mode: an IVF
 * index's inverted lists can be exported as byte ranges (one per list) and
 * searched later from just the centroids and the fetched ranges, with
 * vindex_probe_lists() and vindex_scan_lists().
 *
 * Invariants:
 *  1. Results are a pure function of the data, never of arithmetic order.
 *     A result's score is the canonical score: the inner product summed in
 *     double precision in dimension order and rounded to float, which is the
 *     same bit pattern on every machine and in every code path. Results are
 *     ordered by score descending, then id ascending. FAISS and OpenBLAS
 *     (whose rounding depends on SIMD width, blocking and threads) only
 *     propose candidates; a candidate set is widened until it provably
 *     contains the canonical top k (see "margin" in vindex.c).
 *  2. The lists an IVF query probes are the canonical top nprobe centroids
 *     (same scoring, ties to the lower list number), computed by
 *     vindex_probe_lists() in both the in-RAM and the object path.
 *  Hence, from 1 and 2: for the same query, k and nprobe, probe + scan over
 *  exported lists returns exactly the ids and scores of vindex_search(),
 *  and so does vindex_search_with() whichever its scan.
 *  3. An index is immutable once built or loaded: every call but
 *     vindex_free() may run concurrently from any number of threads.
 *  4. vindex_load() walks FAISS's serialised layout itself, checking every
 *     size against the bytes present, before FAISS reads it, and checks the
 *     structure FAISS built afterwards: garbage yields RAG_ECORRUPT, never
 *     a crash, an abort or an unbounded allocation.
 *
 * Vectors given to vindex_build() must be finite with an L2 norm of at most
 * VINDEX_NORM_MAX (normalised embeddings, or zero vectors); queries need
 * only be finite. Ids must be >= 0 (-1 means "no result").
 *
 * Thread affinity: all calls are CPU-bound (FAISS, OpenBLAS, OpenMP) and
 * belong on a worker thread, never on the HTTP thread.
 */
#ifndef VINDEX_H
#define VINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "rag_buf.h"
#include "rag_err.h"

#define VINDEX_MAX_DIMS 8192
#define VINDEX_MAX_K (1 << 20)         /* largest k a search accepts */
#define VINDEX_NORM_MAX 1.01f          /* largest vector norm vindex_build accepts */
#define VINDEX_NO_SCORE (-3.40282347e+38f) /* score of a missing result (-FLT_MAX, as FAISS) */
#define VINDEX_DEFAULT_IVF_THRESHOLD 10000
#define VINDEX_KMEANS_SEED 1234        /* FAISS's default; written down so it stays fixed */

typedef struct vindex vindex;

typedef enum { VINDEX_FLAT, VINDEX_IVF } vindex_kind;

typedef struct vindex_build_opts {
	int64_t ivf_threshold; /* flat when n < this; 0 = VINDEX_DEFAULT_IVF_THRESHOLD */
	int nlist;             /* IVF lists; 0 = auto: clamp(4*sqrt(n), 1, n/39) */
	int nprobe;            /* default lists probed; 0 = auto: tuned at build (below) */
} vindex_build_opts;

/*
 * Build an index over n vectors (n x dims floats, row-major) with ids[n].
 * Flat (exact) when n < ivf_threshold, else IVF-Flat whose nlist centroids
 * are trained by spherical k-means with VINDEX_KMEANS_SEED: the same input
 * gives the same index, byte for byte, whatever the thread counts (k-means
 * arithmetic is FAISS's and OpenBLAS's, so another CPU or build of them
 * may place centroids differently). opts may be NULL (all defaults).
 * An explicit nlist must be in 1..n; an explicit nprobe in 1..nlist. The
 * auto nprobe is measured: the smallest nprobe giving recall@10 >= 0.97
 * against exact search on a fixed sample of 128 stored vectors used as
 * queries (so held-out queries like the data see about 0.95); this costs
 * 128 exact scans of the data, small next to k-means.
 *
 * *out: caller owns; free with vindex_free(). The inputs are copied.
 * Returns RAG_EINVAL (bad dims, n, ids, opts, non-finite or too long
 * vectors), RAG_ENOMEM, RAG_EINTERNAL (FAISS failed; its message in err).
 */
rag_rc vindex_build(int dims, const float *vecs, const int64_t *ids, size_t n,
		    const vindex_build_opts *opts, vindex **out, rag_error *err);

/* Free the index; NULL is a no-op. No search may be running on it. */
void vindex_free(vindex *v);

vindex_kind vindex_kind_of(const vindex *v);
int vindex_dims(const vindex *v);
size_t vindex_count(const vindex *v);
int vindex_nlist(const vindex *v);   /* 1 for a flat index */
int vindex_nprobe(const vindex *v);  /* default nprobe; 1 for a flat index */

/* Approximate resident bytes: vectors, ids, lists, centroids, maps. */
size_t vindex_memory_bytes(const vindex *v);

/* Vectors in list (0 <= list < vindex_nlist(v); else 0): what a query
 * probing it scans. A flat index's one list holds every vector. */
size_t vindex_list_size(const vindex *v, int list);

/*
 * The k best results for each of nq queries (nq x dims floats).
 * OUT: scores[nq*k], ids[nq*k], query i's results at [i*k, i*k+k), by
 * canonical score descending then id ascending; missing results (fewer
 * than k vectors reachable) have id -1 and score VINDEX_NO_SCORE.
 * nprobe: lists probed by an IVF index, <= 0 = the index's default,
 * clamped to nlist; ignored by a flat index.
 * Returns RAG_EINVAL (k outside 1..VINDEX_MAX_K, non-finite query),
 * RAG_ENOMEM, RAG_EINTERNAL (FAISS failed).
 * Thread-safe: any number of concurrent searches on one index.
 */
rag_rc vindex_search(const vindex *v, const float *queries, size_t nq, int k,
		     int nprobe, float *scores, int64_t *ids, rag_error *err);

/*
 * Who proposes the candidates that canonical scoring decides on (vindex.h,
 * invariant 1): the results are the same, bit for bit; the time is not.
 */
typedef enum {
	/* FAISS: faiss_IndexIVF_search_preassigned() on the probed lists (a
	 * flat index: faiss_Index_search()), its top k + slack widened until
	 * the margin proves it holds the top k. Debian's libfaiss is built for
	 * baseline x86-64, so its inner products use no AVX. vindex_search(). */
	VINDEX_SCAN_FAISS = 0,
	/* OpenBLAS: every row of the probed lists scored in place, in FAISS's
	 * own in-RAM lists, by cblas_sgemv, whose kernel OpenBLAS picks at run
	 * time for the CPU (AVX2, AVX-512); the scan of vindex_scan_lists(). */
	VINDEX_SCAN_BLAS = 1,
} vindex_scan;

/*
 * vindex_search() with the candidates proposed by scan; the same contract,
 * results and errors (RAG_EINVAL also for an unknown scan).
 */
rag_rc vindex_search_with(const vindex *v, vindex_scan scan, const float *queries,
			  size_t nq, int k, int nprobe, float *scores, int64_t *ids,
			  rag_error *err);

/*
 * Append the index in FAISS's own serialised format (write_index; an
 * IndexIDMap over an IndexFlatIP or an IndexIVFFlat) to out. On error out
 * is left as it was. Returns RAG_ETOOBIG (out's cap), RAG_ENOMEM,
 * RAG_EINTERNAL. May run concurrently with searches.
 */
rag_rc vindex_serialize(const vindex *v, rag_buf *out, rag_error *err);

/*
 * Load an index from len bytes written by vindex_serialize(). data is
 * borrowed for the call only. *out: caller owns; free with vindex_free().
 * Returns RAG_ECORRUPT for anything that is not exactly such an index
 * (garbage, truncation, trailing bytes, inconsistent sizes or ids,
 * non-finite or too long vectors), RAG_ENOMEM.
 */
rag_rc vindex_load(const char *data, size_t len, vindex **out, rag_error *err);

/* ---- "object" mode: inverted lists laid out for ranged GETs ----
 *
 * A list, as exported and as vindex_scan_lists() reads it (little-endian):
 *
 *     uint32 count | int64 ids[count] | float32 vecs[count * dims]
 *
 * so its length is exactly 4 + count * (8 + 4 * dims). A flat index is
 * exported as one list (nlist = 1) with no centroids: a reader probes list
 * 0 always (vindex_probe_lists() does so when given centroids == NULL).
 */

/*
 * Append every list back to back to out. *offsets (caller frees with
 * free()) gets nlist + 1 entries: list i is out->data[(*offsets)[i] ..
 * (*offsets)[i+1]), positions in out (so (*offsets)[0] is out->len at the
 * call). *nlist gets the number of lists. On error out is left as it was
 * and *offsets is NULL. Returns RAG_ETOOBIG (out's cap), RAG_ENOMEM,
 * RAG_EINTERNAL.
 */
rag_rc vindex_export_lists(const vindex *v, rag_buf *out, uint64_t **offsets,
			   int *nlist, rag_error *err);

/*
 * The coarse centroids, nlist x dims floats: *centroids is malloc'd
 * (caller frees with free()). A flat index gives *centroids = NULL and
 * *nlist = 1. Returns RAG_ENOMEM.
 */
rag_rc vindex_export_centroids(const vindex *v, float **centroids, int *nlist,
			       rag_error *err);

/*
 * The nprobe lists to scan for query: the nearest centroids by canonical
 * inner product (ties: lower list number), best first. OUT: lists_out
 * [nprobe]; entries past nlist are -1. centroids == NULL with nlist == 1
 * means a flat index: list 0. Returns RAG_EINVAL (bad sizes, non-finite
 * query), RAG_ECORRUPT (non-finite centroid scores), RAG_ENOMEM.
 * Thread-safe (no shared state).
 */
rag_rc vindex_probe_lists(const float *centroids, int nlist, int dims,
			  const float *query, int nprobe, int *lists_out,
			  rag_error *err);

/*
 * Exact top k for query over nlists lists (lists[i] of lens[i] bytes, each
 * as exported; borrowed, any alignment). OUT: scores[k], ids[k] as in
 * vindex_search(). Returns RAG_ECORRUPT (a length inconsistent with its
 * count, non-finite values), RAG_EINVAL (bad sizes, non-finite query),
 * RAG_ENOMEM. Thread-safe (no shared state).
 */
rag_rc vindex_scan_lists(int dims, const float *query, const char *const *lists,
			 const size_t *lens, int nlists, int k, float *scores,
			 int64_t *ids, rag_error *err);

#endif
