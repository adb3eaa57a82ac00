/*
 * bench_common.c — what the bench tools share (bench_int.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_int.h"
#include "rag_util.h"

void bench_note(const bench_env *env, const char *fmt, ...)
{
	va_list ap;

	fputs("ragmap: ", env->errs);
	va_start(ap, fmt);
	vfprintf(env->errs, fmt, ap);
	va_end(ap);
	fputc('\n', env->errs);
}

rag_rc bench_usage_error(const bench_env *env, const char *usage, rag_error *err)
{
	fputs(usage, env->errs);
	if (err) {
		err->rc = RAG_EINVAL;
		err->msg[0] = '\0';
	}
	return RAG_EINVAL;
}

rag_rc bench_open_s3(bench_env *env, rag_config *cfg, s3_client **out, rag_error *err)
{
	rag_rc rc;

	*out = NULL;
	if ((rc = env->load_config(env->ctx, env->config_path, false, cfg, err)))
		return rc;
	if (!(*out = s3_client_new(cfg, env->log, err))) {
		rag_config_release(cfg);
		return err->rc ? err->rc : RAG_ENOMEM;
	}
	return RAG_OK;
}

/* Queries on the sample corpus, used when no --queries file is given. */
static const char *const default_queries[] = {
	"why does a RAG pipeline keep source documents in object storage",
	"how are checkpoints written to object storage during training",
	"memory pointer cached and object backing modes of a vector database",
	"IVF index inverted lists centroids and nprobe",
	"hybrid search with BM25 and dense vectors",
	"chunking documents by headings paragraphs and token budget",
	"re-embedding the corpus when the embedding model changes",
	"incremental ingestion of new and deleted documents",
	"latency of the query path and ranged GET requests",
	"LoRA adapters versioning and storage",
	"serving many adapters on one base model",
	"KV cache and GPU memory during inference",
	"sharded datasets and WebDataset tar files",
	"streaming data loaders reading from S3",
	"tokenization and preprocessing of training data",
	"artifact registry for trained models",
	"evaluation datasets for fine-tuning",
	"object-native vector search reading segments from the store",
	"throughput of training storage in GB per second",
	"query logs as the inference bookend",
};

rag_rc bench_read_queries(const char *path, char ***out, size_t *n, rag_error *err)
{
	FILE *f;
	char line[8192];
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!path) {
		if (!(*out = calloc(RAG_ARRAY_LEN(default_queries), sizeof(char *))))
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		for (size_t i = 0; i < RAG_ARRAY_LEN(default_queries); i++)
			if (((*out)[(*n)++] = rag_strdup(default_queries[i])) == NULL)
				return rag_error_set(err, RAG_ENOMEM, "out of memory");
		return RAG_OK;
	}
	if (!(f = fopen(path, "r")))
		return rag_error_set(err, RAG_EINVAL, "bench: cannot open \"%s\": %s", path,
				     strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (*n == cap) {
			char **p = realloc(*out, (cap ? cap * 2 : 64) * sizeof(*p));
			if (!p)
				break;
			*out = p;
			cap = cap ? cap * 2 : 64;
		}
		(*out)[(*n)++] = rag_strdup(line);
	}
	fclose(f);
	if (*n == 0)
		return rag_error_set(err, RAG_EINVAL, "bench: no query in \"%s\"", path);
	return RAG_OK;
}

void bench_free_queries(char **q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
}

int bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

typedef struct hit_ {
	float score;
	int64_t id;
} hit_;

static int cmp_hit(const void *a, const void *b)
{
	const hit_ *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Merge nseg lists of k (scores, ids) into the global top k ids (sorted). */
void bench_merge_top(const float *scores, const int64_t *ids, size_t nseg, int k, int64_t *out)
{
	hit_ *h = malloc(nseg * (size_t)k * sizeof(*h) + sizeof(*h));
	size_t n = 0;

	for (size_t i = 0; h && i < nseg * (size_t)k; i++)
		if (ids[i] >= 0)
			h[n++] = (hit_){scores[i], ids[i]};
	if (h)
		qsort(h, n, sizeof(*h), cmp_hit);
	for (int i = 0; i < k; i++)
		out[i] = h && (size_t)i < n ? h[i].id : -1;
	free(h);
}

/*
 * The global top k ids of one query over every segment through vindex:
 * nprobe > 0 for every segment (clamped to its nlist), 0 each segment's own,
 * -1 every list (exact). sc and ids are scratch of nseg * k.
 */
static rag_rc search_all(const bench_seg *segs, size_t nseg, const float *q, int k, int nprobe,
			 float *sc, int64_t *ids, int64_t *top, rag_error *err)
{
	for (size_t s = 0; s < nseg; s++) {
		int np = nprobe > 0 ? nprobe : nprobe < 0 ? segs[s].nlist : segs[s].nprobe;
		/* the OpenBLAS scan: the same results as FAISS's (vindex.h),
		 * several times faster on an exact scan of 1M rows */
		rag_rc r = vindex_search_with(segs[s].vi, VINDEX_SCAN_BLAS, q, 1, k, np,
					      sc + s * (size_t)k, ids + s * (size_t)k, err);
		if (r)
			return r;
	}
	bench_merge_top(sc, ids, nseg, k, top);
	return RAG_OK;
}

bool bench_zero_query(const float *q, int dims)
{
	for (int d = 0; d < dims; d++)
		if (q[d] != 0)
			return false;
	return true;
}

/* |top & exact| / |exact| (k ids each, -1 = none); -1 when exact is empty. */
double bench_recall_of(const int64_t *top, const int64_t *exact, int k)
{
	int hit = 0, have = 0;

	for (int c = 0; c < k; c++) {
		if (exact[c] < 0)
			continue;
		have++;
		for (int a = 0; a < k; a++)
			hit += top[a] == exact[c];
	}
	return have ? (double)hit / have : -1;
}

/*
 * Mean recall@k at nprobe of nq queries (qv, dims each) against exact[nq*k];
 * queries with an empty exact answer do not count. *p50_ms: the median time
 * of one query through vindex's OpenBLAS scan (all segments), if not NULL.
 */
rag_rc bench_recall_at(const bench_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
			int k, int nprobe, const int64_t *exact, double *recall, double *p50_ms,
			rag_error *err)
{
	float *sc = malloc((nseg + 1) * (size_t)k * sizeof(*sc));
	int64_t *ids = malloc((nseg + 1) * (size_t)k * sizeof(*ids)), *top = malloc((size_t)k * 8);
	double *t = malloc((nq + 1) * sizeof(*t)), sum = 0;
	size_t n = 0;
	rag_rc r = RAG_OK;

	if (!sc || !ids || !top || !t) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nq && !r; i++) {
		uint64_t t0 = rag_now_ns();
		double rc_;
		if (exact[i * (size_t)k] < 0)
			continue;
		r = search_all(segs, nseg, qv + i * (size_t)dims, k, nprobe, sc, ids, top, err);
		t[n] = (double)(rag_now_ns() - t0) / 1e6;
		if (!r && (rc_ = bench_recall_of(top, exact + i * (size_t)k, k)) >= 0) {
			sum += rc_;
			n++;
		}
	}
	*recall = n ? sum / (double)n : 0;
	if (p50_ms) {
		qsort(t, n, sizeof(*t), bench_cmp_dbl);
		*p50_ms = n ? t[(n - 1) / 2] : 0;
	}
out:
	free(sc);
	free(ids);
	free(top);
	free(t);
	return r;
}

/* Exact top k of nq queries (exact[nq*k]); zero query vectors get -1s. */
rag_rc bench_exact_all(const bench_seg *segs, size_t nseg, const float *qv, size_t nq, int dims,
			int k, int64_t *exact, rag_error *err)
{
	float *sc = malloc((nseg + 1) * (size_t)k * sizeof(*sc));
	int64_t *ids = malloc((nseg + 1) * (size_t)k * sizeof(*ids));
	rag_rc r = RAG_OK;

	if (!sc || !ids)
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < nq && !r; i++) {
		const float *q = qv + i * (size_t)dims;

		if (bench_zero_query(q, dims)) {
			for (int j = 0; j < k; j++)
				exact[i * (size_t)k + (size_t)j] = -1;
			continue;
		}
		r = search_all(segs, nseg, q, k, -1, sc, ids, exact + i * (size_t)k, err);
	}
	free(sc);
	free(ids);
	return r;
}

