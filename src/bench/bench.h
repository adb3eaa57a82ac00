/*
 * bench — the benchmarks behind `ragmap bench ...`, one file per tool, each
 * built on the library's own paths (the S3 client, commit protocol,
 * segments, vindex, qindex, the embedder) so that what they measure is what
 * ragmap runs.
 *
 * Invariants:
 *  1. A tool's result lines go to env->out, in the format the scripts
 *     under bench/ and tests/integration/ parse: changing one is changing
 *     an interface. Notes go to env->errs as "ragmap: <tool>: note: ...".
 *  2. A tool never exits and never prints its own failure: it returns a
 *     rag_rc with err naming the object. RAG_EINVAL and RAG_ECONFIG mean a
 *     usage or configuration error (the CLI exits 2); an err with an empty
 *     message has been explained already (the usage text, or the CLI's own
 *     message from load_config) and the caller adds nothing.
 *  3. Thread counts (OpenBLAS, OpenMP) are set only at the top of a tool's
 *     entry, for the run, and put back before it returns; no helper changes
 *     them. (The library never does; a benchmark is a program of its own.)
 *  4. Objects a tool writes to the store go under the configured index or
 *     bench/ prefixes it names in its help, never elsewhere.
 *
 * Thread affinity: one tool per process, called from the main thread; the
 * tools start their own worker threads.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stdio.h>

#include "rag_config.h"
#include "rag_err.h"
#include "rag_log.h"

/* What the caller (the CLI) lends a tool. */
typedef struct bench_env {
	FILE *out;                /* results */
	FILE *errs;               /* notes, usage text after a bad option */
	rag_log *log;             /* for the S3 client and qindex */
	const char *config_path;  /* --config given before the command, or NULL */
	/*
	 * Load the configuration at path (NULL: the default search) as every
	 * command does: the same checks and notices. no_s3: the tool makes no
	 * S3 request (no endpoint notice). On failure the callee has explained
	 * why (err's message is empty). On success the tool owns *cfg (release
	 * with rag_config_release()).
	 */
	rag_rc (*load_config)(void *ctx, const char *path, bool no_s3, rag_config *cfg,
			      rag_error *err);
	void *ctx;
} bench_env;

/* A tool: argv[0] is its name, options follow. -h/--help prints its usage
 * on env->out and returns RAG_OK. */
typedef rag_rc (*bench_fn)(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench s3 [--large SIZE] [--small-count N] [--levels 1,4,16] [--rounds R]
 * The S3 client's PUT/GET throughput next to the curl command line doing
 * the same transfers, per concurrency level; a Markdown table of medians.
 * Objects under bench/s3-<pid>-*, deleted after.
 */
rag_rc bench_s3(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench get PREFIX [--concurrency N]: every object under PREFIX fetched
 * once, whole, into memory; "key: value" lines (objects, bytes, seconds,
 * objects_per_s, mb_per_s).
 */
rag_rc bench_get(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench embed [--model-dir DIR] [--texts FILE] [--tokens N] [--count N]
 * [--json] [--dump-texts FILE]: one embedder on one pinned core, OpenBLAS
 * single-threaded, tokenization included; "key: value" lines or --json.
 */
rag_rc bench_embed(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench load --url URL [--clients N] [--duration S] [--requests N] ...:
 * closed-loop HTTP load on a running `ragmap serve` (libcurl, one
 * keep-alive connection per client); one summary line or --json. Returns
 * RAG_EIO when any request failed (a status other than 200 included).
 */
rag_rc bench_load(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench make-index [--chunks N] ...: a synthetic index version committed
 * through the commit protocol exactly as ingestion commits one (commit.h):
 * writer token, claimed chunk ids, model, segments, a catalog snapshot
 * holding every document and chunk, manifest, LATEST; `ragmap verify`
 * accepts it and every retriever answers on it.
 */
rag_rc bench_make_index(bench_env *env, int argc, char **argv, rag_error *err);

/*
 * bench search [--queries FILE] [-k N] [--repeat R] [--json] [--export F]:
 * in-process search time on the newest version through ragmap (vindex with
 * FAISS proposing candidates, vindex with OpenBLAS scanning the probed
 * lists, memory-mode qindex) and through raw FAISS (its C API on the same
 * index.faiss bytes), then recall@k of the IVF configuration vs exact.
 * The run fails (RAG_EINTERNAL) if the two vindex scans ever disagree.
 *
 * The bandwidth figures, all from the same process and run:
 *  - "DRAM bandwidth, one thread" (dram_gbps): GB/s (1e9 bytes/s) of one
 *    thread streaming-reading a buffer 8x the last-level cache (256 MiB to
 *    2 GiB), best of 5 passes. One thread, because a query runs on one;
 *    all cores together would read faster.
 *  - "vectors scanned per query" (list_bytes_per_query): the mean over
 *    the timed queries of count x dims x 4 bytes of every list each
 *    segment probes at its nprobe (a flat segment: all its vectors), i.e.
 *    the bytes a list scan must bring from memory; ids (8 bytes a row) are
 *    left out. The centroids read to choose the lists are shown apart
 *    (centroid_bytes_per_query; at 1M x 256 with nlist 4000, 4 MB, which a
 *    large last-level cache may hold).
 *  - the bandwidth limit (bandwidth_limit_us) = list bytes / bandwidth:
 *    the shortest time any scan of those lists can take from DRAM.
 *  - "x bw" (x_bandwidth per path): the path's MEAN time per query over
 *    that limit; 1.0 would be a scan at memory speed, the target is <= 2.
 *    On a small index the lists sit in cache and "x bw" can fall below 1:
 *    the figure means something only when the vectors far exceed the cache.
 *  - "x limit": the path's p50 over vindex_search's (FAISS) p50;
 *    ratio_blas_vs_raw_faiss: the OpenBLAS scan's p50 over the faster raw
 *    FAISS p50 (target <= 1.1).
 */
rag_rc bench_search(bench_env *env, int argc, char **argv, rag_error *err);

#endif
