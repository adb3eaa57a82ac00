/*
 * ragmap bench get | embed — the two baselines of the ingestion benchmark
 * (bench/ingest.sh):
 *
 *   get PREFIX   every object under PREFIX fetched once, whole, into memory,
 *                with the configured concurrency: what the store can deliver
 *                to this client, to compare end-to-end ingestion against.
 *   embed        the built-in embedder alone on one core: the model of the
 *                configured index's newest version and texts of ~256 tokens
 *                cut from its chunks, embedded on one pinned thread with
 *                OpenBLAS single-threaded.
 *
 * Both print one "key: value" result line per figure, for scripts.
 */
#include <cblas.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "cli.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "rag_pool.h"
#include "rag_util.h"
#include "s3.h"
#include "segment.h"

static const char get_usage[] =
	"usage: ragmap bench get PREFIX [--concurrency N] [--config FILE]\n"
	"  GET every object under PREFIX once, whole, into memory, N at a time\n"
	"  (default s3.concurrency); prints objects/s and MB/s.\n";

static const char embed_usage[] =
	"usage: ragmap bench embed [--count N] [--config FILE]\n"
	"  Embed N texts of ~256 tokens (default 20000, cycling) cut from the chunks\n"
	"  of the configured index's newest version, with its model, on one core;\n"
	"  prints chunks/s.\n";

/* ------------------------------------------------------------------ get */

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

static int bench_get(cli_env *env, int argc, char **argv)
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
	rag_error err = {0};
	int64_t conc = 0;
	uint64_t t0, listed = 0;
	double secs;
	int opt, rc = CLI_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!rag_parse_i64(optarg, &conc) || conc < 1 || conc > 256) {
				cli_error("bench get: bad --concurrency \"%s\"", optarg);
				return CLI_USAGE;
			}
			break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(get_usage, stdout); return CLI_OK;
		default: fputs(get_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs(get_usage, stderr);
		return CLI_USAGE;
	}
	if ((rc = cli_open_s3(env, &cfg, &c)))
		return rc;
	if (!conc)
		conc = cfg.s3.concurrency;
	if (s3_list_objects(c, S3_OP("bench.list", NULL), argv[optind], NULL, &l, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < l.nobjects; i++)
		listed += l.objects[i].size;
	j.c = c;
	j.l = &l;
	j.max = cfg.ingest.max_object_size;
	t0 = rag_now_ns();
	s3_parallel(c, l.nobjects, (int)conc, get_task, &j);
	secs = (double)(rag_now_ns() - t0) / 1e9;
	if (j.failed) {
		cli_error("bench get: %d GETs failed; the first: %s", (int)j.failed, j.err.msg);
		rc = CLI_FAIL;
		goto out;
	}
	printf("get: s3://%s/%s, concurrency %lld\n", cfg.s3.bucket, argv[optind], (long long)conc);
	printf("objects: %zu\n", l.nobjects);
	printf("bytes: %" PRIu64 "\n", (uint64_t)j.bytes);
	printf("seconds: %.3f\n", secs);
	printf("objects_per_s: %.1f\n", secs > 0 ? (double)l.nobjects / secs : 0);
	printf("mb_per_s: %.2f\n", secs > 0 ? (double)j.bytes / 1e6 / secs : 0);
	if (listed != j.bytes)
		cli_error("bench get: listed %" PRIu64 " bytes, fetched %" PRIu64 " (objects changed?)",
			  listed, (uint64_t)j.bytes);
out:
	s3_list_release(&l);
	s3_client_free(c);
	rag_config_release(&cfg);
	return rc;
}

/* ---------------------------------------------------------------- embed */

typedef struct texts {
	char **a;
	size_t *lens;
	size_t n, cap;
} texts;

static void texts_release(texts *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->a[i]);
	free(t->a);
	free(t->lens);
}

static rag_rc texts_add(texts *t, const char *s, size_t len)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		char **a = realloc(t->a, cap * sizeof(*a));
		size_t *l = a ? realloc(t->lens, cap * sizeof(*l)) : NULL;
		if (a)
			t->a = a;
		if (!a || !l)
			return RAG_ENOMEM;
		t->lens = l;
		t->cap = cap;
	}
	if (!(t->a[t->n] = rag_strndup(s, len)))
		return RAG_ENOMEM;
	t->lens[t->n++] = len;
	return RAG_OK;
}

/* The newest manifest of the configured index, its model and up to max chunk texts. */
static rag_rc load_index(s3_client *c, const rag_config *cfg, size_t max, manifest *m,
			 embedder **model, texts *t, rag_error *err)
{
	char root[1024];
	commit_head head;
	rag_buf b;
	rag_rc rc;

	rag_buf_init(&b, (size_t)4 << 30);
	if (mf_index_root(cfg->index.prefix, cfg->index.name, root, sizeof(root))) {
		rc = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto out;
	}
	if ((rc = commit_read_newest(c, S3_OP("bench.embed", NULL), root, &head, m, err)))
		goto out;
	if (head.version == 0) {
		rc = rag_error_set(err, RAG_ENOTFOUND, "bench embed: index \"%s\" has no version yet "
				   "(run ragmap ingest first)", cfg->index.name);
		goto out;
	}
	rag_buf_reset(&b);
	if ((rc = modelobj_open(c, S3_OP("bench.embed", NULL), m->model.key, model, err)))
		goto out;
	for (size_t s = 0; s < m->nsegments && t->n < max; s++) {
		const char *p, *end;
		rag_buf_reset(&b);
		if ((rc = s3_get(c, S3_OP("bench.embed", NULL), m->segments[s].obj[MF_CHUNKS].key,
				 &b, NULL, err)))
			goto out;
		/* records back to back: header line, then len bytes of text */
		for (p = b.data, end = b.data + b.len; p < end && t->n < max;) {
			seg_record rec;
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t hlen, tlen;
			if (!nl)
				break;
			hlen = (size_t)(nl + 1 - p);
			/* parse the header alone (text_len 0) to learn len */
			if (segment_parse_record(p, hlen, &rec, err)) {
				rc = err ? err->rc : RAG_ECORRUPT;
				goto out;
			}
			tlen = (size_t)rec.len;
			seg_record_release(&rec);
			if (tlen > (size_t)(end - nl - 1)) {
				rc = rag_error_set(err, RAG_ECORRUPT, "bench embed: truncated chunks.bin");
				goto out;
			}
			if ((rc = texts_add(t, nl + 1, tlen))) {
				rag_error_set(err, rc, "out of memory");
				goto out;
			}
			p = nl + 1 + tlen;
		}
	}
	if (t->n == 0)
		rc = rag_error_set(err, RAG_EINVAL, "bench embed: the index has no chunks");
out:
	rag_buf_release(&b);
	return rc;
}

/*
 * Texts of about `tokens` tokens by the chunker's count, cut at word ends
 * from the chunk texts read one after the other: the index's own chunks are
 * shorter on average (sections end early), and the target is stated for
 * ~256-token chunks.
 */
static rag_rc make_texts(const texts *in, int tokens, texts *out)
{
	rag_buf acc;
	int have = 0;
	rag_rc rc = RAG_OK;

	rag_buf_init(&acc, (size_t)1 << 20);
	for (size_t i = 0; i < in->n && !rc; i++) {
		const char *p = in->a[i], *end = p + in->lens[i];
		while (p < end && !rc) {
			const char *w = p;
			int t;
			while (w < end && !isspace((unsigned char)*w))
				w++;
			while (w < end && isspace((unsigned char)*w))
				w++;
			t = chunk_count_tokens(p, (size_t)(w - p));
			if (have && have + t > tokens) {
				rc = texts_add(out, acc.data, acc.len);
				rag_buf_reset(&acc);
				have = 0;
			}
			if (!rc)
				rc = rag_buf_append(&acc, p, (size_t)(w - p));
			have += t;
			p = w;
		}
		if (!rc)
			rc = rag_buf_putc(&acc, '\n');
	}
	rag_buf_release(&acc);
	return rc;
}

static int bench_embed(cli_env *env, int argc, char **argv)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	rag_config cfg;
	s3_client *c;
	manifest m = {0};
	embedder *model = NULL;
	texts raw = {0}, t = {0};
	const char **ptrs = NULL;
	size_t *lens = NULL;
	float *out = NULL;
	rag_error err = {0};
	int64_t count = 20000;
	uint64_t tokens = 0, bytes = 0, t0;
	double secs;
	cpu_set_t cpus;
	int opt, rc = CLI_OK, cpu, blas_threads;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!rag_parse_i64(optarg, &count) || count < 1 || count > 10000000) {
				cli_error("bench embed: bad --count \"%s\"", optarg);
				return CLI_USAGE;
			}
			break;
		case 'c': env->config_path = optarg; break;
		case 'h': fputs(embed_usage, stdout); return CLI_OK;
		default: fputs(embed_usage, stderr); return CLI_USAGE;
		}
	}
	if (optind != argc) {
		fputs(embed_usage, stderr);
		return CLI_USAGE;
	}
	if ((rc = cli_open_s3(env, &cfg, &c)))
		return rc;
	if (load_index(c, &cfg, (size_t)count * 2, &m, &model, &raw, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	if (make_texts(&raw, 256, &t) || t.n == 0) {
		cli_error("bench embed: cannot cut ~256-token texts from the index's chunks");
		rc = CLI_FAIL;
		goto out;
	}
	ptrs = malloc((size_t)count * sizeof(*ptrs));
	lens = malloc((size_t)count * sizeof(*lens));
	out = malloc((size_t)count * (size_t)embedder_dims(model) * sizeof(float));
	if (!ptrs || !lens || !out) {
		cli_error("bench embed: out of memory");
		rc = CLI_FAIL;
		goto out;
	}
	for (int64_t i = 0; i < count; i++) {
		ptrs[i] = t.a[(size_t)i % t.n];
		lens[i] = t.lens[(size_t)i % t.n];
		bytes += lens[i];
		tokens += (uint64_t)chunk_count_tokens(ptrs[i], lens[i]);
	}
	/* one core: this thread pinned where it runs, OpenBLAS on it alone */
	cpu = sched_getcpu();
	CPU_ZERO(&cpus);
	CPU_SET(cpu < 0 ? 0 : cpu, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	blas_threads = openblas_get_num_threads();
	openblas_set_num_threads(1);
	t0 = rag_now_ns();
	for (int64_t i = 0; i < count && !rc; i += 256) {
		size_t n = (size_t)(count - i < 256 ? count - i : 256);
		if (embedder_embed(model, ptrs + i, lens + i, n,
				   out + (size_t)i * (size_t)embedder_dims(model), NULL, &err))
			rc = cli_fail(&err);
	}
	secs = (double)(rag_now_ns() - t0) / 1e9;
	openblas_set_num_threads(blas_threads);
	if (rc)
		goto out;
	printf("embed: model %s (%s) %s, %d dims; index %s version %lld; 1 core\n",
	       embedder_name(model), embedder_kind(model), embedder_version(model),
	       embedder_dims(model), cfg.index.name, (long long)m.version);
	printf("chunks: %lld (%zu distinct)\n", (long long)count,
	       t.n < (size_t)count ? t.n : (size_t)count);
	printf("tokens_per_chunk: %.1f\n", (double)tokens / (double)count);
	printf("bytes_per_chunk: %.0f\n", (double)bytes / (double)count);
	printf("seconds: %.3f\n", secs);
	printf("chunks_per_s_per_core: %.0f\n", secs > 0 ? (double)count / secs : 0);
	printf("mb_per_s_per_core: %.2f\n", secs > 0 ? (double)bytes / 1e6 / secs : 0);
out:
	free(ptrs);
	free(lens);
	free(out);
	texts_release(&t);
	texts_release(&raw);
	embedder_free(model);
	manifest_release(&m);
	s3_client_free(c);
	rag_config_release(&cfg);
	return rc;
}

int bench_ingest_dispatch(cli_env *env, int argc, char **argv)
{
	if (strcmp(argv[0], "get") == 0)
		return bench_get(env, argc, argv);
	return bench_embed(env, argc, argv);
}
