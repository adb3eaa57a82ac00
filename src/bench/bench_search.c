/*
 * bench search — in-process search time on the newest version, one query
 * at a time, the same query vectors through two sides:
 *
 *   ragmap    vindex_search() on each segment (what the server's FAISS call
 *             plus canonical scoring costs: the limit), the same with
 *             vindex_search_with(VINDEX_SCAN_BLAS) (the probed lists scored
 *             by OpenBLAS, whose kernels are chosen at run time for the
 *             CPU, instead of Debian's baseline-x86-64 FAISS), and a
 *             memory-mode qindex loaded by qindex_open() (its search_ms:
 *             every segment, merge, tombstones);
 *   raw FAISS faiss_Index_search() through FAISS's C API on the very same
 *             index.faiss bytes, with each segment's nprobe (the raw_*
 *             functions below: the only FAISS calls of the benchmarks, and
 *             the point of the comparison);
 *
 * each timed against the DRAM bandwidth limit measured in the same process
 * (dram_bandwidth(), scanned_bytes(); bench.h says what the figures mean),
 * then recall@k of the IVF configuration against exact search.
 */
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* raw FAISS, for the comparison (its headers say f() for f(void)) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>
#pragma GCC diagnostic pop

#include "bench_int.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "qindex.h"
#include "rag_buf.h"
#include "rag_util.h"
#include "s3.h"

static const char search_usage[] =
	"usage: ragmap bench search [--queries FILE] [-k N] [--repeat R] [--json]\n"
	"                           [--export FILE]\n"
	"  In-process search time on the latest version of index.name, one query at\n"
	"  a time, the same query vectors through: vindex_search (FAISS as the server\n"
	"  calls it, plus canonical scoring: the limit), the same with the probed\n"
	"  lists scored by OpenBLAS (run-time SIMD dispatch; same results), raw FAISS\n"
	"  (faiss_Index_search on the segments' own index.faiss with each segment's\n"
	"  nprobe, with its OpenMP threads and with one), and a memory-mode qindex\n"
	"  (its search_ms: every segment, merge, tombstones; query.scan picks its\n"
	"  scan, RAGMAP_QUERY_SCAN=blas the OpenBLAS one). Each against the DRAM\n"
	"  bandwidth limit: bytes of vectors in the probed lists per query over the\n"
	"  one-thread streaming-read bandwidth measured first, in the same process\n"
	"  (\"x bw\": mean time / that limit). Then recall@k of the\n"
	"  IVF configuration against exact search (all lists probed). Queries are\n"
	"  embedded once, outside the timings; each path runs over all queries once\n"
	"  to warm up, then R times (default 3) timed. --export writes, per query,\n"
	"  its vector (dims x f32) and its exact top k ids (k x i64), little-endian,\n"
	"  after a header \"RMQX\" u32 dims u32 k u32 nq (for bench/lancedb).\n";

/* One row of the table; limit_ms: the bandwidth limit of one query. */
static double stats_line(FILE *out, const char *name, double *v, size_t n, double ref_p50,
			 double limit_ms, json_t *js)
{
	double sum = 0, p50, p99, mean, xbw;

	qsort(v, n, sizeof(*v), bench_cmp_dbl);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	p50 = n ? v[(n - 1) / 2] : 0;
	p99 = n ? v[(size_t)ceil(0.99 * (double)n) - 1] : 0;
	mean = n ? sum / (double)n : 0;
	xbw = limit_ms > 0 ? mean / limit_ms : 0;
	fprintf(out, "| %-34s | %9.1f | %9.1f | %9.1f | %7.2f | %7.2f |\n", name, p50 * 1e3,
	       mean * 1e3, p99 * 1e3, ref_p50 > 0 ? p50 / ref_p50 : 1.0, xbw);
	json_object_set_new(js, name, json_pack("{s:f, s:f, s:f, s:f}", "p50_us", p50 * 1e3,
						"mean_us", mean * 1e3, "p99_us", p99 * 1e3,
						"x_bandwidth", xbw));
	return p50;
}

/* ------------------------------------------------ the bandwidth limit */

#define BW_PASSES 5                    /* timed passes; the best counts */
#define BW_MIN_BYTES ((size_t)256 << 20)
#define BW_MAX_BYTES ((size_t)2 << 30)

/*
 * The DRAM read bandwidth one thread gets (a query runs on one): a
 * streaming read of a buffer 8 times the last-level cache as sysconf
 * reports it (where L3 is split among core complexes, their sum: more than
 * one thread can use), clamped to 256 MiB..2 GiB, summing its 64-bit words into four independent sums (so
 * the adds never wait on each other and memory is the limit), best of
 * BW_PASSES passes after a pass that writes every page. *gbps in 1e9
 * bytes per second; *bytes: the buffer's size.
 */
static rag_rc dram_bandwidth(double *gbps, size_t *bytes, rag_error *err)
{
	long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
	size_t len = llc > 0 ? (size_t)llc * 8 : BW_MIN_BYTES, n;
	uint64_t *buf, sink = 0;
	volatile uint64_t keep;
	double best = 0;

	if (len < BW_MIN_BYTES)
		len = BW_MIN_BYTES;
	if (len > BW_MAX_BYTES)
		len = BW_MAX_BYTES;
	n = len / sizeof(*buf);
	if (!(buf = malloc(len)))
		return rag_error_set(err, RAG_ENOMEM, "out of memory for a %zu-byte bandwidth buffer",
				     len);
	for (size_t i = 0; i < n; i++)
		buf[i] = i; /* every page faulted in before the timing */
	for (int p = 0; p < BW_PASSES; p++) {
		uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = rag_now_ns(), dt;

		for (size_t i = 0; i + 4 <= n; i += 4) {
			s0 += buf[i];
			s1 += buf[i + 1];
			s2 += buf[i + 2];
			s3 += buf[i + 3];
		}
		dt = rag_now_ns() - t0;
		sink += s0 ^ s1 ^ s2 ^ s3;
		if (dt && (double)len / (double)dt > best)
			best = (double)len / (double)dt; /* bytes per ns = GB/s */
	}
	keep = sink; /* the sums are used: the reads cannot be left out */
	(void)keep;
	free(buf);
	*gbps = best;
	*bytes = len;
	return RAG_OK;
}

/*
 * What the queries scan, on average over those with a non-zero vector (the
 * ones timed): *list_bytes, the vectors of the lists each segment probes at
 * its nprobe (vindex_probe_lists(), as every ragmap path probes them; raw
 * FAISS's float probe may pick another list at a near tie), count x dims x
 * 4 bytes (ids left out: 8 bytes a row next to 4 x dims); *cent_bytes, the
 * IVF segments' centroids scanned to choose them.
 */
static rag_rc scanned_bytes(const bench_seg *segs, size_t nseg, const float *qv, size_t nq,
			    int dims, double *list_bytes, double *cent_bytes, rag_error *err)
{
	double rows = 0, cent = 0;
	size_t counted = 0;
	rag_rc r = RAG_OK;

	for (size_t s = 0; s < nseg && !r; s++) {
		float *c = NULL;
		int nl = 0, np = segs[s].nprobe > 0 ? segs[s].nprobe : 1, *lists = NULL;

		if ((r = vindex_export_centroids(segs[s].vi, &c, &nl, err)))
			break;
		if (!(lists = malloc((size_t)np * sizeof(*lists)))) {
			free(c);
			r = rag_error_set(err, RAG_ENOMEM, "out of memory");
			break;
		}
		if (c)
			cent += (double)nl * dims * sizeof(float);
		for (size_t i = 0; i < nq && !r; i++) {
			const float *q = qv + i * (size_t)dims;

			if (bench_zero_query(q, dims))
				continue;
			if (s == 0)
				counted++;
			if ((r = vindex_probe_lists(c, nl, dims, q, np, lists, err)))
				break;
			for (int j = 0; j < np; j++)
				rows += (double)vindex_list_size(segs[s].vi, lists[j]);
		}
		free(lists);
		free(c);
	}
	*list_bytes = counted ? rows * dims * sizeof(float) / (double)counted : 0;
	*cent_bytes = cent;
	return r;
}

/* ------------------------------------------------------------ raw FAISS */

/* FAISS's own reading of a segment's index.faiss, nprobe set as the
 * manifest says. */
static rag_rc raw_faiss_load(const char *data, size_t len, const mf_segment *ms,
			     FaissIndex **out, rag_error *err)
{
	FILE *f = fmemopen((void *)data, len, "rb");
	FaissIndexIVF *ivf;

	*out = NULL;
	if (!f || faiss_read_index(f, 0, out)) {
		if (f)
			fclose(f);
		return rag_error_set(err, RAG_EINTERNAL, "FAISS cannot read \"%s\": %s",
				     ms->obj[MF_INDEX].key, faiss_get_last_error());
	}
	fclose(f);
	if (ms->nlist <= 1)
		return RAG_OK;
	ivf = faiss_IndexIDMap_cast(*out)
		      ? faiss_IndexIVF_cast(faiss_IndexIDMap_sub_index(faiss_IndexIDMap_cast(*out)))
		      : NULL;
	if (!ivf)
		return rag_error_set(err, RAG_ECORRUPT, "segment \"%s\" says IVF, FAISS disagrees",
				     ms->id);
	faiss_IndexIVF_set_nprobe(ivf, (size_t)ms->nprobe);
	return RAG_OK;
}

/* The global top k of one query through faiss_Index_search() on every
 * segment, merged as vindex results are (sc, ids: scratch of nseg * k). */
static rag_rc raw_faiss_query(const bench_seg *segs, size_t nseg, const float *q, int k,
			      float *sc, int64_t *ids, int64_t *top, rag_error *err)
{
	for (size_t s = 0; s < nseg; s++) {
		idx_t lab[1024];
		if (faiss_Index_search(segs[s].faiss, 1, q, k, sc + s * (size_t)k, lab))
			return rag_error_set(err, RAG_EINTERNAL, "FAISS search: %s",
					     faiss_get_last_error());
		for (int j = 0; j < k; j++)
			ids[s * (size_t)k + (size_t)j] = lab[j];
	}
	bench_merge_top(sc, ids, nseg, k, top);
	return RAG_OK;
}

/* ---------------------------------------------------------------- ragmap */

/* The global top k of one query through vindex_search_with(scan) with
 * each segment's nprobe. */
static rag_rc vindex_query(const bench_seg *segs, size_t nseg, vindex_scan scan, const float *q,
			   int k, float *sc, int64_t *ids, int64_t *top, rag_error *err)
{
	for (size_t s = 0; s < nseg; s++) {
		rag_rc r = vindex_search_with(segs[s].vi, scan, q, 1, k, segs[s].nprobe,
					      sc + s * (size_t)k, ids + s * (size_t)k, err);
		if (r)
			return r;
	}
	bench_merge_top(sc, ids, nseg, k, top);
	return RAG_OK;
}

/* Every segment of m: its index.faiss fetched once, loaded by vindex and by
 * raw FAISS from the same bytes. segs[nseg] is the caller's. */
static rag_rc load_segments(s3_client *s3, const manifest *m, bench_seg *segs, rag_error *err)
{
	rag_buf b;
	rag_rc r = RAG_OK;

	rag_buf_init(&b, (size_t)4 << 30);
	for (size_t i = 0; i < m->nsegments && !r; i++) {
		const mf_segment *ms = &m->segments[i];
		FaissIndex *fi = NULL;
		rag_buf_reset(&b);
		if ((r = s3_get(s3, S3_OP("bench", NULL), ms->obj[MF_INDEX].key, &b, NULL, err)) ||
		    (r = vindex_load(b.data, b.len, &segs[i].vi, err)))
			break;
		r = raw_faiss_load(b.data, b.len, ms, &fi, err);
		segs[i].faiss = fi;
		segs[i].nlist = ms->nlist;
		segs[i].nprobe = ms->nprobe;
		segs[i].count = ms->count;
	}
	rag_buf_release(&b);
	return r;
}

/* The path timed in one pass, in the order they run. */
enum { PATH_RAW_OMP, PATH_RAW_ONE, PATH_VINDEX, PATH_VINDEX_BLAS, PATH_QINDEX, PATH_COUNT };

/* The bandwidth limit of the run (dram_bandwidth(), scanned_bytes()). */
typedef struct bw_limit {
	double gbps;          /* one thread's streaming read */
	size_t probe_bytes;   /* the buffer it read */
	double list_bytes;    /* vectors of the probed lists, per query */
	double cent_bytes;    /* centroids, per query */
	double limit_ms;      /* list_bytes at gbps */
} bw_limit;

/* The summary: the table, recall, the nprobe sweep; js gathers --json. */
static rag_rc report(FILE *out, const rag_config *cfg, int64_t version, const bench_seg *segs,
		     size_t nseg, const float *qv, size_t nq, int dims, int k, int64_t repeat,
		     double *t[PATH_COUNT], size_t nrun, const bw_limit *bw,
		     const int64_t *exact_ids, double recall, double recall_faiss, size_t nvalid,
		     json_t *js, rag_error *err)
{
	double ref, p_qindex, p_blas, f_omp, f_one, best, lim = bw->limit_ms;
	int64_t nvec = 0, nl = 0, np = 0;
	rag_rc r;

	for (size_t s = 0; s < nseg; s++) {
		nvec += segs[s].count;
		nl += segs[s].nlist;
		np += segs[s].nprobe;
	}
	fprintf(out, "index \"%s\" version %lld: %lld vectors x %d dims in %zu segments "
		     "(nlist %lld, nprobe %lld in all); %zu queries x %lld, k %d, one thread\n\n",
		cfg->index.name, (long long)version, (long long)nvec, dims, nseg, (long long)nl,
		(long long)np, nq, (long long)repeat, k);
	/* which kernels OpenBLAS chose at run time for this CPU */
	fprintf(out, "OpenBLAS kernels: %s (%s)\n", openblas_get_corename(), openblas_get_config());
	fprintf(out, "DRAM bandwidth, one thread: %.2f GB/s (streaming read of %zu MiB, best of %d)\n"
		     "vectors scanned per query: %.1f KiB in the probed lists (+ %.1f KiB of "
		     "centroids): %.1f us at that bandwidth (the limit of \"x bw\")\n\n",
		bw->gbps, bw->probe_bytes >> 20, BW_PASSES, bw->list_bytes / 1024,
		bw->cent_bytes / 1024, lim * 1e3);
	fprintf(out, "| %-34s | %9s | %9s | %9s | %7s | %7s |\n", "search path (one query)", "p50 us",
		"mean us", "p99 us", "x limit", "x bw");
	fprintf(out, "|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "-----------",
		"-----------", "-----------", "---------", "---------");
	ref = stats_line(out, "vindex_search (the limit)", t[PATH_VINDEX], nrun, 0, lim, js);
	p_blas = stats_line(out, "vindex_search, OpenBLAS scan", t[PATH_VINDEX_BLAS], nrun, ref,
			    lim, js);
	f_omp = stats_line(out, "raw faiss_Index_search, OpenMP", t[PATH_RAW_OMP], nrun, ref, lim,
			   js);
	f_one = stats_line(out, "raw faiss_Index_search, 1 thread", t[PATH_RAW_ONE], nrun, ref, lim,
			   js);
	p_qindex = stats_line(out, "memory-mode qindex search", t[PATH_QINDEX], nrun, ref, lim, js);
	best = f_omp < f_one ? f_omp : f_one;
	fprintf(out, "\nrecall@%d of the IVF configuration vs exact search: %.4f (raw FAISS: %.4f)"
		     " over %zu queries\n", k, recall, recall_faiss, nvalid);
	fprintf(out, "memory-mode search (p50): %.2fx vindex_search, %.2fx the faster raw FAISS "
		     "(target <= 1.2x; query.scan = %s)\n", ref > 0 ? p_qindex / ref : 0,
		best > 0 ? p_qindex / best : 0, cfg->query.scan);
	fprintf(out, "OpenBLAS scan (p50): %.2fx vindex_search through FAISS, %.2fx the faster raw "
		     "FAISS (target <= 1.1x)\n", ref > 0 ? p_blas / ref : 0,
		best > 0 ? p_blas / best : 0);
	json_object_set_new(js, "qindex_scan", json_string(cfg->query.scan));
	json_object_set_new(js, "openblas_core", json_string(openblas_get_corename()));
	json_object_set_new(js, "dram_gbps", json_real(bw->gbps));
	json_object_set_new(js, "list_bytes_per_query", json_real(bw->list_bytes));
	json_object_set_new(js, "centroid_bytes_per_query", json_real(bw->cent_bytes));
	json_object_set_new(js, "bandwidth_limit_us", json_real(lim * 1e3));
	json_object_set_new(js, "ratio_blas_vs_vindex", json_real(ref > 0 ? p_blas / ref : 0));
	json_object_set_new(js, "ratio_blas_vs_raw_faiss", json_real(best > 0 ? p_blas / best : 0));
	json_object_set_new(js, "recall", json_real(recall));
	json_object_set_new(js, "recall_faiss", json_real(recall_faiss));
	/* the trade-off: recall and time at other nprobe values */
	if (nl > (int64_t)nseg) {
		json_t *sw = json_array();
		fprintf(out, "\n| nprobe (each segment) | recall@%d | vindex p50 us |\n|---|---|---|\n", k);
		for (int np_ = 1; np_ <= 1024; np_ *= 2) {
			double rec, p50;
			bool last = true;
			for (size_t s = 0; s < nseg; s++)
				last = last && np_ >= segs[s].nlist;
			if ((r = bench_recall_at(segs, nseg, qv, nq, dims, k, np_, exact_ids, &rec, &p50,
						 err))) {
				json_decref(sw);
				return r;
			}
			fprintf(out, "| %d%s | %.4f | %.1f |\n", np_, last ? " (all: exact)" : "", rec,
				p50 * 1e3);
			json_array_append_new(sw, json_pack("{s:i, s:f, s:f}", "nprobe", np_, "recall", rec,
							    "p50_us", p50 * 1e3));
			if (last || rec >= 0.999 || np_ >= 128)
				break; /* past this it is exact search, slowly */
		}
		json_object_set_new(js, "sweep", sw);
	}
	json_object_set_new(js, "vectors", json_integer((json_int_t)nvec));
	json_object_set_new(js, "segments", json_integer((json_int_t)nseg));
	json_object_set_new(js, "nlist", json_integer((json_int_t)nl));
	json_object_set_new(js, "nprobe", json_integer((json_int_t)np));
	json_object_set_new(js, "ratio_memory_vs_vindex", json_real(ref > 0 ? p_qindex / ref : 0));
	json_object_set_new(js, "ratio_memory_vs_raw_faiss", json_real(best > 0 ? p_qindex / best : 0));
	return RAG_OK;
}

/* --export: per query its vector and its exact top k ids (bench/lancedb). */
static rag_rc export_queries(const char *path, const float *qv, const int64_t *exact_ids,
			     size_t nq, int dims, int k, rag_error *err)
{
	FILE *f = fopen(path, "wb");
	uint32_t hdr[3] = {(uint32_t)dims, (uint32_t)k, (uint32_t)nq};
	bool okw = f && fwrite("RMQX", 1, 4, f) == 4 && fwrite(hdr, 4, 3, f) == 3;

	for (size_t i = 0; okw && i < nq; i++)
		okw = fwrite(qv + i * (size_t)dims, sizeof(float), (size_t)dims, f) == (size_t)dims &&
		      fwrite(exact_ids + i * (size_t)k, 8, (size_t)k, f) == (size_t)k;
	if (!f || fclose(f) != 0 || !okw)
		return rag_error_set(err, RAG_EIO, "cannot write \"%s\"", path);
	return RAG_OK;
}

rag_rc bench_search(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"queries", required_argument, NULL, 'q'}, {"repeat", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'}, {"export", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *qfile = NULL, *xfile = NULL;
	int64_t k = 10, repeat = 3;
	bool as_json = false;
	char **queries = NULL, root[1024];
	commit_head head;
	size_t nq = 0, nseg = 0, nrun = 0, nvalid = 0;
	rag_config cfg;
	s3_client *s3 = NULL;
	manifest m = {0};
	embedder *model = NULL;
	bench_seg *segs = NULL;
	qindex *qi = NULL;
	float *qv = NULL, *sc = NULL;
	int64_t *ids = NULL, *top = NULL, *top_blas = NULL, *exact_ids = NULL, version;
	double *t[PATH_COUNT] = {0}, recall = 0, recall_faiss = 0;
	bw_limit bw = {0};
	int dims, opt, kk, blas_threads, omp_threads;
	FILE *out = env->out;
	json_t *js = NULL;
	rag_rc r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'q': qfile = optarg; break;
		case 'k':
			if (!rag_parse_i64(optarg, &k) || k < 1 || k > 1000)
				return bench_usage_error(env, search_usage, err);
			break;
		case 'r':
			if (!rag_parse_i64(optarg, &repeat) || repeat < 1 || repeat > 1000)
				return bench_usage_error(env, search_usage, err);
			break;
		case 'j': as_json = true; break;
		case 'x': xfile = optarg; break;
		case 'h': fputs(search_usage, out); return RAG_OK;
		default: return bench_usage_error(env, search_usage, err);
		}
	}
	if (optind != argc)
		return bench_usage_error(env, search_usage, err);
	kk = (int)k;
	if ((r = env->load_config(env->ctx, env->config_path, false, &cfg, err)))
		return r;
	/* one query on one thread, as in the server: set for the run here, in
	 * the entry, never in a helper (bench.h, invariant 3) */
	blas_threads = openblas_get_num_threads();
	omp_threads = omp_get_max_threads();
	openblas_set_num_threads(1);
	js = json_object();
	if ((r = bench_read_queries(qfile, &queries, &nq, err)))
		goto out;
	if (!(s3 = s3_client_new(&cfg, env->log, err))) {
		r = err->rc ? err->rc : RAG_ENOMEM;
		goto out;
	}
	if (mf_index_root(cfg.index.prefix, cfg.index.name, root, sizeof(root))) {
		r = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto out;
	}
	if ((r = commit_read_newest(s3, S3_OP("bench", NULL), root, &head, &m, err)))
		goto out;
	if ((version = head.version) == 0) {
		r = rag_error_set(err, RAG_ENOTFOUND, "bench search: index \"%s\" has no version yet",
				  cfg.index.name);
		goto out;
	}
	if ((r = modelobj_open(s3, S3_OP("bench", NULL), m.model.key, &model, err)))
		goto out;
	dims = embedder_dims(model);
	nseg = m.nsegments;
	if (!(segs = calloc(nseg + 1, sizeof(*segs)))) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = load_segments(s3, &m, segs, err)) ||
	    (r = qindex_open(s3, &cfg, QMODE_MEMORY, NULL, env->log, &qi, err)))
		goto out;
	if (qindex_status_version(qi) != version) {
		r = rag_error_set(err, RAG_EINVAL, "the index moved to a new version during the bench");
		goto out;
	}
	if (!(qv = malloc(nq * (size_t)dims * sizeof(float))) ||
	    !(sc = malloc((nseg + 1) * (size_t)kk * sizeof(float))) ||
	    !(ids = malloc((nseg + 1) * (size_t)kk * sizeof(int64_t))) ||
	    !(top = malloc((size_t)kk * sizeof(int64_t))) ||
	    !(top_blas = malloc((size_t)kk * sizeof(int64_t))) ||
	    !(exact_ids = malloc(nq * (size_t)kk * sizeof(*exact_ids)))) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (int p = 0; p < PATH_COUNT; p++)
		if (!(t[p] = malloc(nq * (size_t)repeat * sizeof(double)))) {
			r = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
	for (size_t i = 0; i < nq; i++) {
		const char *qt = queries[i];
		size_t ql = strlen(qt);
		if ((r = embedder_embed(model, &qt, &ql, 1, qv + i * (size_t)dims, NULL, err)))
			goto out;
	}
	/* the bandwidth limit, measured before the timings, in this process */
	if ((r = dram_bandwidth(&bw.gbps, &bw.probe_bytes, err)) ||
	    (r = scanned_bytes(segs, nseg, qv, nq, dims, &bw.list_bytes, &bw.cent_bytes, err)))
		goto out;
	bw.limit_ms = bw.gbps > 0 ? bw.list_bytes / (bw.gbps * 1e9) * 1e3 : 0;
	/*
	 * The timings: one pass per path over every query, R times. (Passes, not
	 * the paths interleaved per query: OpenMP and OpenBLAS worker threads
	 * spin for a while after a call, and on a small machine they would slow
	 * whichever path runs next.)
	 */
	for (int path = 0; path < PATH_COUNT; path++) {
		size_t at = 0;
		/* FAISS without its OpenMP fan-out for this one path; still the
		 * entry's business (bench.h, invariant 3) */
		omp_set_num_threads(path == PATH_RAW_ONE ? 1 : omp_threads);
		for (int64_t rep = -1; rep < repeat; rep++) /* -1: a warm-up pass */
			for (size_t i = 0, first = 1; i < nq; i++, first = 0) {
				const float *q = qv + i * (size_t)dims;
				uint64_t t0;
				qresult res;

				if (bench_zero_query(q, dims))
					continue; /* no known term: nothing to search */
				if (first && rep == 0)
					at = 0; /* the warm-up pass is overwritten */
				t0 = rag_now_ns();
				if (path == PATH_RAW_OMP || path == PATH_RAW_ONE) {
					if ((r = raw_faiss_query(segs, nseg, q, kk, sc, ids, top, err)))
						goto out;
					t[path][at++] = (double)(rag_now_ns() - t0) / 1e6;
				} else if (path == PATH_VINDEX || path == PATH_VINDEX_BLAS) {
					if ((r = vindex_query(segs, nseg,
							      path == PATH_VINDEX ? VINDEX_SCAN_FAISS
										  : VINDEX_SCAN_BLAS,
							      q, kk, sc, ids, top, err)))
						goto out;
					t[path][at++] = (double)(rag_now_ns() - t0) / 1e6;
				} else {
					if ((r = qindex_query(qi, queries[i], strlen(queries[i]), kk,
							      QRET_DENSE, &res, err)))
						goto out;
					t[path][at++] = res.search_ms;
					qresult_release(&res);
				}
			}
		nrun = at;
	}
	omp_set_num_threads(omp_threads);
	/* recall@k: IVF (each segment's nprobe) against exact (every list) */
	if ((r = bench_exact_all(segs, nseg, qv, nq, dims, kk, exact_ids, err)) ||
	    (r = bench_recall_at(segs, nseg, qv, nq, dims, kk, 0, exact_ids, &recall, NULL, err)))
		goto out;
	for (size_t i = 0; i < nq; i++) {
		double rc_;
		if (exact_ids[i * (size_t)kk] < 0)
			continue;
		/* the two ragmap scans agree (vindex.h: bit for bit; test_vindex
		 * proves it, this checks the index at hand) */
		if ((r = vindex_query(segs, nseg, VINDEX_SCAN_FAISS, qv + i * (size_t)dims, kk, sc,
				      ids, top, err)) ||
		    (r = vindex_query(segs, nseg, VINDEX_SCAN_BLAS, qv + i * (size_t)dims, kk, sc,
				      ids, top_blas, err)))
			goto out;
		if (memcmp(top, top_blas, (size_t)kk * sizeof(*top)) != 0) {
			r = rag_error_set(err, RAG_EINTERNAL, "query %zu: the OpenBLAS scan's top %d "
					  "differs from FAISS's", i, kk);
			goto out;
		}
		if ((r = raw_faiss_query(segs, nseg, qv + i * (size_t)dims, kk, sc, ids, top, err)))
			goto out;
		if ((rc_ = bench_recall_of(top, exact_ids + i * (size_t)kk, kk)) >= 0) {
			recall_faiss += rc_;
			nvalid++;
		}
	}
	recall_faiss = nvalid ? recall_faiss / (double)nvalid : 0;
	if (xfile && (r = export_queries(xfile, qv, exact_ids, nq, dims, kk, err)))
		goto out;
	if ((r = report(out, &cfg, version, segs, nseg, qv, nq, dims, kk, repeat, t, nrun, &bw,
			exact_ids, recall, recall_faiss, nvalid, js, err)))
		goto out;
	if (as_json) {
		char *s = json_dumps(js, JSON_COMPACT);
		fprintf(out, "%s\n", s);
		free(s);
	}
out:
	openblas_set_num_threads(blas_threads);
	omp_set_num_threads(omp_threads);
	for (size_t i = 0; segs && i < nseg; i++) {
		faiss_Index_free(segs[i].faiss);
		vindex_free(segs[i].vi);
	}
	free(segs);
	qindex_release(qi);
	free(qv);
	free(sc);
	free(ids);
	free(top);
	free(top_blas);
	free(exact_ids);
	for (int p = 0; p < PATH_COUNT; p++)
		free(t[p]);
	manifest_release(&m);
	embedder_free(model);
	s3_client_free(s3);
	bench_free_queries(queries, nq);
	rag_config_release(&cfg);
	json_decref(js);
	return r;
}
