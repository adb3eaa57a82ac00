/*
 * bench get PREFIX — the store's side of the ingestion benchmark
 * (bench/ingest.sh): every object under PREFIX fetched once, whole, into
 * memory, with the configured concurrency: what the store can deliver to
 * this client, to compare end-to-end ingestion against. One "key: value"
 * result line per figure, for scripts.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_int.h"
#include "rag_util.h"
#include "s3.h"

static const char get_usage[] =
	"usage: ragmap bench get PREFIX [--concurrency N] [--config FILE]\n"
	"  GET every object under PREFIX once, whole, into memory, N at a time\n"
	"  (default s3.concurrency); prints objects/s and MB/s.\n";

typedef struct get_job {
	s3_client *c;
	const s3_list *l;
	uint64_t max;
	_Atomic uint64_t bytes;
	_Atomic int failed;
	rag_error err;
} get_job;

static rag_rc get_task(void *ctx, size_t i)
{
	get_job *j = ctx;
	rag_buf b;
	rag_error e = {0};
	rag_rc rc;

	rag_buf_init(&b, j->max);
	rc = s3_get(j->c, S3_OP("bench.get", NULL), j->l->objects[i].key, &b, NULL, &e);
	if (rc) {
		if (!j->failed++)
			j->err = e;
	} else {
		j->bytes += b.len;
	}
	rag_buf_release(&b);
	return rc;
}

rag_rc bench_get(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"concurrency", required_argument, NULL, 'n'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	rag_config cfg;
	s3_client *c;
	s3_list l = {0};
	get_job j = {0};
	int64_t conc = 0;
	uint64_t t0, listed = 0;
	double secs;
	int opt;
	FILE *out = env->out;
	rag_rc rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!rag_parse_i64(optarg, &conc) || conc < 1 || conc > 256)
				return rag_error_set(err, RAG_EINVAL, "bench get: bad --concurrency \"%s\"",
						     optarg);
			break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(get_usage, out); return RAG_OK;
		default: return bench_usage_error(env, get_usage, err);
		}
	}
	if (optind + 1 != argc)
		return bench_usage_error(env, get_usage, err);
	if ((rc = bench_open_s3(env, &cfg, &c, err)))
		return rc;
	if (!conc)
		conc = cfg.s3.concurrency;
	if ((rc = s3_list_objects(c, S3_OP("bench.list", NULL), argv[optind], NULL, &l, err)))
		goto out;
	for (size_t i = 0; i < l.nobjects; i++)
		listed += l.objects[i].size;
	j.c = c;
	j.l = &l;
	j.max = cfg.ingest.max_object_size;
	t0 = rag_now_ns();
	s3_parallel(c, l.nobjects, (int)conc, get_task, &j);
	secs = (double)(rag_now_ns() - t0) / 1e9;
	if (j.failed) {
		rc = rag_error_set(err, j.err.rc ? j.err.rc : RAG_EIO,
				   "bench get: %d GETs failed; the first: %s", (int)j.failed, j.err.msg);
		goto out;
	}
	fprintf(out, "get: s3://%s/%s, concurrency %lld\n", cfg.s3.bucket, argv[optind], (long long)conc);
	fprintf(out, "objects: %zu\n", l.nobjects);
	fprintf(out, "bytes: %" PRIu64 "\n", (uint64_t)j.bytes);
	fprintf(out, "seconds: %.3f\n", secs);
	fprintf(out, "objects_per_s: %.1f\n", secs > 0 ? (double)l.nobjects / secs : 0);
	fprintf(out, "mb_per_s: %.2f\n", secs > 0 ? (double)j.bytes / 1e6 / secs : 0);
	if (listed != j.bytes)
		bench_note(env, "bench get: listed %" PRIu64 " bytes, fetched %" PRIu64 " (objects changed?)",
			  listed, (uint64_t)j.bytes);
out:
	s3_list_release(&l);
	s3_client_free(c);
	rag_config_release(&cfg);
	return rc;
}

