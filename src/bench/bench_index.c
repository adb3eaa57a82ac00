/*
 * bench make-index — a synthetic index version of N chunks, committed
 * through the commit protocol (commit.h) with the same index-module calls
 * ingestion makes (src/ingest/ingest_commit.c): a writer token; the store's
 * conditional writes probed (else a lease, invariant 8); chunk ids from
 * claimed blocks (invariant 7); the model (modelobj_publish), segments
 * (segment_build, segment_upload) and a catalog snapshot holding every
 * document and chunk; then the manifest (commit_publish, If-None-Match) as
 * the newest committed version + 1, with ids_high carried forward. The
 * index made here replaces every earlier version (nothing of theirs is
 * named), so a lost race needs no rebase: the next number is tried.
 *
 * What it publishes is an ordinary version: `ragmap verify` accepts it and
 * every retriever (dense, bm25, hybrid) answers on it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_int.h"
#include "catalog.h"
#include "commit.h"
#include "embed.h"
#include "manifest.h"
#include "modelobj.h"
#include "rag_buf.h"
#include "rag_pool.h"
#include "rag_util.h"
#include "s3.h"
#include "segment.h"

#define LEASE_TTL_S 600 /* single-writer lease (invariant 8), as ingest holds it */

static const char make_usage[] =
	"usage: ragmap bench make-index [--chunks N] [--topics T] [--seed S]\n"
	"                               [--segment-chunks N] [--nlist L] [--nprobe P]\n"
	"                               [--fit-sample N] [--queries-out FILE] [--queries N]\n"
	"                               [--target-recall R]\n"
	"  Commits a synthetic index version of N chunks (default 1000000) under the\n"
	"  configured index.name, the way ingestion would: model, segments, catalog\n"
	"  snapshot (every document and chunk: BM25 works too), manifest, then\n"
	"  LATEST; chunk ids from claimed blocks. Each chunk is a\n"
	"  short text of made-up words, half from one of T topics (default 2000), half\n"
	"  from a shared Zipf-like vocabulary; the model (model.dims) is fitted on a\n"
	"  sample of them and embeds them all, so the vectors are clustered unit\n"
	"  vectors and text queries mean something. Segments hold up to\n"
	"  --segment-chunks (default N: one segment); IVF from index.ivf_threshold,\n"
	"  nlist/nprobe automatic unless given. --queries-out writes N (default 1000)\n"
	"  queries drawn from the same topics, one a line, for bench load and search.\n"
	"  --target-recall R: instead of the automatic nprobe, the smallest one whose\n"
	"  recall@10 against exact search is at least R on 200 other queries drawn\n"
	"  the same way (held out from --queries-out's).\n";

typedef struct synth {
	uint64_t seed;
	int topics, vocab;
	char **words;        /* vocab made-up words */
	int *topic_words;    /* topics x SYNTH_TOPIC_WORDS */
} synth;

#define SYNTH_TOPIC_WORDS 12
#define SYNTH_CHUNK_WORDS 24
#define SYNTH_DOC_CHUNKS 10

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
	return (double)(splitmix(x) >> 11) / 9007199254740992.0;
}

static bool synth_init(synth *sy, uint64_t seed, int topics, int vocab)
{
	static const char cons[] = "bcdfgklmnprstvz", vow[] = "aeiou";
	uint64_t r = seed * 7919 + 17;

	memset(sy, 0, sizeof(*sy));
	sy->seed = seed;
	sy->topics = topics;
	sy->vocab = vocab;
	if (!(sy->words = calloc((size_t)vocab, sizeof(char *))) ||
	    !(sy->topic_words = calloc((size_t)topics * SYNTH_TOPIC_WORDS, sizeof(int))))
		return false;
	for (int i = 0; i < vocab; i++) {
		char w[16];
		int n = 0, syl = 2 + (int)(splitmix(&r) % 3);
		for (int j = 0; j < syl; j++) {
			w[n++] = cons[splitmix(&r) % (sizeof(cons) - 1)];
			w[n++] = vow[splitmix(&r) % (sizeof(vow) - 1)];
		}
		w[n] = '\0';
		if (!(sy->words[i] = rag_strdup(w)))
			return false;
	}
	for (int t = 0; t < topics * SYNTH_TOPIC_WORDS; t++)
		sy->topic_words[t] = (int)(splitmix(&r) % (uint64_t)vocab);
	return true;
}

static void synth_release(synth *sy)
{
	for (int i = 0; sy->words && i < sy->vocab; i++)
		free(sy->words[i]);
	free(sy->words);
	free(sy->topic_words);
}

/* n words: a share `topical` from topic t, the rest shared (Zipf-like). */
static void synth_text(const synth *sy, uint64_t *r, int t, int n, double topical, rag_buf *out)
{
	for (int i = 0; i < n; i++) {
		const char *w;
		if (unit(r) < topical) {
			w = sy->words[sy->topic_words[t * SYNTH_TOPIC_WORDS +
						      (int)(splitmix(r) % SYNTH_TOPIC_WORDS)]];
		} else {
			double u = unit(r);
			w = sy->words[(int)(u * u * u * sy->vocab)];
		}
		rag_buf_printf(out, "%s%s", i ? " " : "", w);
	}
	rag_buf_putc(out, '.');
}

typedef struct make_ctx {
	const embedder *model;
	const char *const *texts;
	const size_t *lens;
	float *vecs;
	size_t n;
	int dims;
} make_ctx;

#define EMBED_BATCH 8192

static rag_rc embed_batch(void *arg, size_t i)
{
	make_ctx *m = arg;
	size_t from = i * EMBED_BATCH, n = m->n - from < EMBED_BATCH ? m->n - from : EMBED_BATCH;

	return embedder_embed(m->model, m->texts + from, m->lens + from, n,
			      m->vecs + from * (size_t)m->dims, NULL, NULL);
}

/* One run's state: the chunks, the store's side, the catalog. */
typedef struct make {
	bench_env *env;
	const rag_config *cfg;
	s3_client *s3;
	char root[1024];
	char token[COMMIT_TOKEN_LEN];
	bool probed, conditional;     /* the store honours If-None-Match */
	int64_t nchunks, ids_end;     /* ids_end: one past the last claimed id */
	/* the chunks: texts back to back in text, one document per
	 * SYNTH_DOC_CHUNKS chunks */
	rag_buf text;
	char **keys, **heads;         /* per document */
	const char **texts;
	size_t *lens;
	seg_chunk *chunks;
	int64_t *doc_ids;             /* per document: its catalog row */
	catalog *cat;
	char cat_path[4200];
	uint64_t first_upload_ns;     /* the oldest object the manifest names */
} make;

/* The synthetic texts, documents and chunk records (ids not yet set). */
static rag_rc make_texts(make *mk, const synth *sy, int64_t seed, int64_t topics, rag_error *err)
{
	int64_t n = mk->nchunks, ndocs = n / SYNTH_DOC_CHUNKS + 1;
	uint64_t *offs = calloc((size_t)n + 1, sizeof(*offs));
	rag_rc rc = RAG_OK;

	if (!offs || !(mk->keys = calloc((size_t)ndocs, sizeof(*mk->keys))) ||
	    !(mk->heads = calloc((size_t)ndocs, sizeof(*mk->heads))) ||
	    !(mk->doc_ids = calloc((size_t)ndocs, sizeof(*mk->doc_ids))) ||
	    !(mk->texts = calloc((size_t)n, sizeof(*mk->texts))) ||
	    !(mk->lens = calloc((size_t)n, sizeof(*mk->lens))) ||
	    !(mk->chunks = calloc((size_t)n, sizeof(*mk->chunks)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t d = i / SYNTH_DOC_CHUNKS;
		uint64_t rr = (uint64_t)seed * 1000003u + (uint64_t)d, rc_ = rr ^ ((uint64_t)i << 20);
		int topic = (int)(splitmix(&rr) % (uint64_t)topics);
		if (i % SYNTH_DOC_CHUNKS == 0) {
			char k[128], h[128];
			snprintf(k, sizeof(k), "synthetic/t%04d/doc-%07lld.txt", topic, (long long)d);
			snprintf(h, sizeof(h), "Topic %d > Document %lld", topic, (long long)d);
			if (!(mk->keys[d] = rag_strdup(k)) || !(mk->heads[d] = rag_strdup(h))) {
				rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
				goto out;
			}
		}
		offs[i] = mk->text.len;
		synth_text(sy, &rc_, topic, SYNTH_CHUNK_WORDS, 0.5, &mk->text);
		if (rag_buf_putc(&mk->text, '\0')) {
			rc = rag_error_set(err, RAG_ETOOBIG, "synthetic texts too large");
			goto out;
		}
	}
	for (int64_t i = 0; i < n; i++) {
		size_t len = strlen(mk->text.data + offs[i]);
		int64_t d = i / SYNTH_DOC_CHUNKS;
		mk->texts[i] = mk->text.data + offs[i];
		mk->lens[i] = len;
		mk->chunks[i] = (seg_chunk){.key = mk->keys[d], .ordinal = (int)(i % SYNTH_DOC_CHUNKS),
					    .off = (uint64_t)(i % SYNTH_DOC_CHUNKS) * 200, .len = len,
					    .heading = mk->heads[d], .text = mk->texts[i], .text_len = len};
	}
out:
	free(offs);
	return rc;
}

/*
 * Chunk ids from blocks claimed as ingestion claims them (commit.h,
 * invariant 7): ascending, unique to this writer, past every committed id.
 */
static rag_rc make_claim_ids(make *mk, rag_error *err)
{
	int64_t floor_id = 0, first = 0, left = 0;
	rag_rc rc;

	for (int64_t i = 0; i < mk->nchunks; i++) {
		if (left == 0) {
			if ((rc = commit_claim_ids(mk->s3, S3_OP("bench", NULL), mk->root, floor_id,
						   mk->token, &first, err)))
				return rc;
			left = COMMIT_ID_BLOCK;
			floor_id = first + COMMIT_ID_BLOCK - 1;
			mk->ids_end = first + COMMIT_ID_BLOCK;
		}
		mk->chunks[i].id = first++;
		left--;
	}
	return RAG_OK;
}

/* Invariant 8: writers race safely only where If-None-Match works; else
 * this writer holds the lease for its whole run. */
static rag_rc make_check_writers(make *mk, rag_error *err)
{
	rag_rc rc = commit_probe(mk->s3, S3_OP("bench", NULL), mk->root, &mk->conditional, err);

	mk->probed = !rc;
	if (rc) {
		rag_error_prefix(err, "probing conditional writes under \"%s\"", mk->root);
		return rc;
	}
	if (mk->conditional)
		return RAG_OK;
	bench_note(mk->env, "bench make-index: note: the store ignores If-None-Match on PUT: "
		   "single-writer mode (lease %s)", mk->token);
	return commit_lease(mk->s3, S3_OP("bench", NULL), mk->root, mk->token, LEASE_TTL_S, err);
}

/* The catalog rows of one uploaded segment: its documents (each whole in
 * it), their chunks with their records' places, and the segment. */
static rag_rc make_catalog_segment(make *mk, const embedder *model, int64_t from, int64_t n,
				   const seg_build *b, const mf_segment *mf, int64_t version,
				   rag_error *err)
{
	cat_segment cs = {0};
	rag_rc rc = RAG_OK;

	for (int64_t i = from; i < from + n && !rc; i++) {
		const seg_chunk *c = &mk->chunks[i];
		int64_t d = i / SYNTH_DOC_CHUNKS, id;
		if (c->ordinal == 0) {
			int64_t nd = mk->nchunks - i < SYNTH_DOC_CHUNKS ? mk->nchunks - i : SYNTH_DOC_CHUNKS;
			uint64_t bytes = 0;
			for (int64_t j = i; j < i + nd; j++)
				bytes += mk->lens[j];
			cat_doc doc = {.key = c->key, .etag = "synthetic", .type = "text",
				       .title = c->heading, .bytes = bytes, .text_bytes = bytes,
				       .nchunks = (int)nd, .segment_id = mf->id};
			if ((rc = catalog_doc_insert(mk->cat, &doc, &mk->doc_ids[d], err)))
				break;
		}
		cat_chunk ch = {.id = c->id, .doc_id = mk->doc_ids[d], .ordinal = c->ordinal,
				.off = c->off, .len = c->len, .heading = c->heading, .text = c->text,
				.text_len = c->text_len, .segment_id = mf->id,
				.rec_off = b->rec_off[i - from], .rec_len = b->rec_len[i - from]};
		rc = catalog_chunk_insert(mk->cat, &ch, &id, err);
	}
	if (rc)
		return rc;
	segment_catalog_row(mf, version, embedder_version(model), &cs);
	return catalog_segment_insert(mk->cat, &cs, err);
}

/* The local catalog and what SQLite's WAL mode leaves beside it. */
static void remove_db_files(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};

	for (size_t i = 0; i < RAG_ARRAY_LEN(suffix); i++) {
		char p[4300];
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
}

/*
 * Commit m as version V = the newest committed + 1 (commit.h): the catalog
 * stages V as ours, its snapshot goes up under a key unique to this
 * attempt, then the manifest. Another writer's V first: V + 1 (nothing to
 * rebase, see the top of this file), up to COMMIT_MAX_ATTEMPTS. Segments
 * older than half the GC grace period are never named (invariant 6).
 */
static rag_rc make_commit(make *mk, manifest *m, const embedder *model, rag_error *err)
{
	char snap[4300], key[1200];
	double grace = (double)mk->cfg->index.gc_grace_s;
	rag_rc rc = RAG_OK;

	snprintf(snap, sizeof(snap), "%s.snapshot", mk->cat_path);
	for (unsigned attempt = 1;; attempt++) {
		commit_head head;
		manifest base;
		struct stat sb;

		if ((rc = commit_read_newest(mk->s3, S3_OP("bench", NULL), mk->root, &head, &base, err)))
			break;
		m->version = head.version + 1;
		m->ids_high = commit_ids_high(&base, m, mk->ids_end);
		manifest_release(&base);
		m->created_at = rag_wall_time();
		free(m->catalog.key);
		m->catalog.key = NULL;
		if (mf_catalog_key(mk->root, m->version, mk->token, key, sizeof(key))) {
			rc = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
			break;
		}
		if (!(m->catalog.key = rag_strdup(key))) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			break;
		}
		unlink(snap);
		if ((rc = catalog_begin(mk->cat, err)))
			break;
		if ((rc = catalog_version_add(mk->cat, m->version, embedder_version(model), err)) ||
		    (rc = catalog_meta_set(mk->cat, "commit.writer", mk->token, err)) ||
		    (rc = catalog_commit(mk->cat, err))) {
			catalog_rollback(mk->cat);
			break;
		}
		if ((rc = catalog_snapshot(mk->cat, snap, err)) ||
		    (rc = s3_put_file(mk->s3, S3_OP("bench", NULL), snap, key, NULL, err)))
			break;
		m->catalog.size = stat(snap, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		if (grace >= 1 && rag_ms_since(mk->first_upload_ns) / 1e3 > grace / 2) {
			rc = rag_error_set(err, RAG_ETIMEOUT, "segments uploaded %.1f s ago are too close "
					   "to index.gc_grace_s (%lld s) to be named",
					   rag_ms_since(mk->first_upload_ns) / 1e3,
					   (long long)mk->cfg->index.gc_grace_s);
			break;
		}
		if (!mk->conditional && (rc = commit_lease(mk->s3, S3_OP("bench", NULL), mk->root,
							   mk->token, LEASE_TTL_S, err)))
			break;
		rc = commit_publish(mk->s3, S3_OP("bench", NULL), mk->root, mk->conditional, m, err);
		if (rc != RAG_ECONFLICT || attempt >= COMMIT_MAX_ATTEMPTS)
			break;
		fprintf(mk->env->out, "version %lld: committed by another writer first; trying the next\n",
			(long long)m->version);
		fflush(mk->env->out);
		rag_error_clear(err);
		rag_sleep_ms(commit_backoff_ms(attempt));
	}
	unlink(snap);
	return rc;
}

/* The smallest nprobe (1, 2, 3, ... then about 1.25x steps) whose
 * recall@10 on NTUNE held-out queries reaches target. */
enum { NTUNE = 200 };
static rag_rc make_tune(const synth *sy, int64_t seed, int64_t topics, const embedder *model,
			const bench_seg *tune, size_t ntune, double target, int *np_out,
			double *rec_out, rag_error *err)
{
	int dims = embedder_dims(model), maxl = 1, np = 1;
	uint64_t rr = (uint64_t)seed * 4242 + 99; /* not the --queries-out stream */
	float *qv = malloc((size_t)NTUNE * (size_t)dims * sizeof(float));
	int64_t *ex = malloc((size_t)NTUNE * 10 * sizeof(int64_t));
	double rec = 0;
	rag_buf q;
	rag_rc r = RAG_OK;

	rag_buf_init(&q, 1 << 20);
	for (size_t i = 0; i < ntune; i++)
		maxl = tune[i].nlist > maxl ? tune[i].nlist : maxl;
	if (!qv || !ex)
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (int i = 0; i < NTUNE && !r; i++) {
		const char *qt;
		size_t ql;
		rag_buf_reset(&q);
		synth_text(sy, &rr, (int)(splitmix(&rr) % (uint64_t)topics), 6, 0.67, &q);
		q.data[q.len - 1] = '\0';
		qt = q.data;
		ql = strlen(qt);
		r = embedder_embed(model, &qt, &ql, 1, qv + (size_t)i * (size_t)dims, NULL, err);
	}
	if (!r)
		r = bench_exact_all(tune, ntune, qv, NTUNE, dims, 10, ex, err);
	for (np = 1; !r; np = np < 8 ? np + 1 : np + np / 4) {
		if (np > maxl)
			np = maxl;
		if ((r = bench_recall_at(tune, ntune, qv, NTUNE, dims, 10, np, ex, &rec, NULL, err)))
			break;
		if (rec >= target || np == maxl)
			break;
	}
	*np_out = np;
	*rec_out = rec;
	free(qv);
	free(ex);
	rag_buf_release(&q);
	return r;
}

/* n queries from the same topics, one a line. */
static rag_rc make_queries(const synth *sy, int64_t seed, int64_t topics, int64_t n,
			   const char *path, rag_error *err)
{
	FILE *f = fopen(path, "w");
	uint64_t rr = (uint64_t)seed * 31337 + 5;
	rag_buf q;

	if (!f)
		return rag_error_set(err, RAG_EIO, "cannot create \"%s\"", path);
	rag_buf_init(&q, 1 << 20);
	for (int64_t i = 0; i < n; i++) {
		rag_buf_reset(&q);
		synth_text(sy, &rr, (int)(splitmix(&rr) % (uint64_t)topics), 6, 0.67, &q);
		q.data[q.len - 1] = '\0'; /* no final period */
		fprintf(f, "%s\n", q.data);
	}
	rag_buf_release(&q);
	return fclose(f) == 0 ? RAG_OK : rag_error_set(err, RAG_EIO, "cannot write \"%s\"", path);
}

rag_rc bench_make_index(bench_env *env, int argc, char **argv, rag_error *err)
{
	static const struct option opts[] = {
		{"chunks", required_argument, NULL, 'n'}, {"topics", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'}, {"segment-chunks", required_argument, NULL, 'g'},
		{"nlist", required_argument, NULL, 'l'}, {"nprobe", required_argument, NULL, 'p'},
		{"fit-sample", required_argument, NULL, 'f'},
		{"queries-out", required_argument, NULL, 'o'}, {"queries", required_argument, NULL, 'q'},
		{"target-recall", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	double target = 0;
	bench_seg *tune = NULL;
	size_t ntune = 0, nseg_max;
	int64_t nchunks = 1000000, topics = 2000, seed = 1, seg_chunks = 0, nlist = 0, nprobe = 0;
	int64_t fit_sample = 50000, nqueries = 1000;
	const char *qout = NULL, *tmp;
	rag_config cfg;
	synth sy = {0};
	make mk = {0};
	uint64_t t0 = rag_now_ns(), t;
	float *vecs = NULL;
	embedder *model = NULL;
	manifest m = {0};
	char base[1100];
	commit_head head;
	FILE *out = env->out;
	int dims, opt;
	rag_rc r = RAG_OK;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int64_t *dst = NULL, lo = 1, hi = INT32_MAX;
		switch (opt) {
		case 'n': dst = &nchunks; lo = 100; break;
		case 't': dst = &topics; break;
		case 's': dst = &seed; lo = 0; break;
		case 'g': dst = &seg_chunks; lo = 100; break;
		case 'l': dst = &nlist; break;
		case 'p': dst = &nprobe; break;
		case 'f': dst = &fit_sample; lo = 100; break;
		case 'q': dst = &nqueries; break;
		case 'o': qout = optarg; break;
		case 'R': {
			char *end;
			target = strtod(optarg, &end);
			if (*end || !(target > 0 && target <= 1))
				return rag_error_set(err, RAG_EINVAL, "bench make-index: --target-recall "
						     "wants a number in (0, 1]");
			break;
		}
		case 'h': fputs(make_usage, out); return RAG_OK;
		default: return bench_usage_error(env, make_usage, err);
		}
		if (dst && (!rag_parse_i64(optarg, dst) || *dst < lo || *dst > hi)) {
			const char *name = "?";
			for (size_t i = 0; opts[i].name; i++)
				if (opts[i].val == opt)
					name = opts[i].name;
			return rag_error_set(err, RAG_EINVAL, "bench make-index: --%s wants an integer in "
					     "%lld..%lld, not \"%s\"", name, (long long)lo, (long long)hi,
					     optarg);
		}
	}
	if (optind != argc)
		return bench_usage_error(env, make_usage, err);
	if (!seg_chunks)
		seg_chunks = nchunks;
	/* documents stay whole in one segment, as ingestion keeps them */
	seg_chunks = (seg_chunks + SYNTH_DOC_CHUNKS - 1) / SYNTH_DOC_CHUNKS * SYNTH_DOC_CHUNKS;
	if (fit_sample > nchunks)
		fit_sample = nchunks;
	if ((r = bench_open_s3(env, &cfg, &mk.s3, err)))
		return r;
	mk.env = env;
	mk.cfg = &cfg;
	mk.nchunks = nchunks;
	rag_buf_init(&mk.text, (size_t)1 << 34);
	commit_token(mk.token);
	tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(mk.cat_path, sizeof(mk.cat_path), "%.4000s/bench-make-index-%d.sqlite", tmp,
		 (int)getpid());
	if (mf_index_root(cfg.index.prefix, cfg.index.name, mk.root, sizeof(mk.root))) {
		r = rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
		goto out;
	}
	/* the store answers before minutes of embedding; the version is settled
	 * when committing (the newest committed then, + 1) */
	if ((r = commit_read_newest(mk.s3, S3_OP("bench", NULL), mk.root, &head, NULL, err)) ||
	    (r = make_check_writers(&mk, err)))
		goto out;

	/* ---- texts, and their chunk ids */
	t = rag_now_ns();
	if (!synth_init(&sy, (uint64_t)seed, (int)topics, 30000)) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = make_texts(&mk, &sy, seed, topics, err)) || (r = make_claim_ids(&mk, err)))
		goto out;
	fprintf(out, "texts: %lld chunks in %lld documents, %.1f MB, %.1f s\n", (long long)nchunks,
		(long long)((nchunks + SYNTH_DOC_CHUNKS - 1) / SYNTH_DOC_CHUNKS),
		(double)mk.text.len / 1e6, rag_ms_since(t) / 1e3);
	fflush(out);

	/* ---- the model: fitted on an evenly spread sample */
	t = rag_now_ns();
	{
		embed_fit_opts fo = EMBED_FIT_OPTS_DEFAULT;
		const char **st = calloc((size_t)fit_sample, sizeof(*st));
		size_t *sl = calloc((size_t)fit_sample, sizeof(*sl));
		char on[256];
		if (!st || !sl) {
			free(st);
			free(sl);
			r = rag_error_set(err, RAG_ENOMEM, "out of memory");
			goto out;
		}
		for (int64_t i = 0; i < fit_sample; i++) {
			int64_t j = i * (nchunks / fit_sample);
			st[i] = mk.texts[j];
			sl[i] = mk.lens[j];
		}
		snprintf(on, sizeof(on), "%lld of %lld synthetic chunks (ragmap bench make-index, seed %lld)",
			 (long long)fit_sample, (long long)nchunks, (long long)seed);
		fo.dims = (int)cfg.model.dims;
		fo.name = cfg.model.name;
		fo.fitted_on = on;
		r = embedder_fit(st, sl, (size_t)fit_sample, &fo, &model, err);
		free(st);
		free(sl);
		if (r)
			goto out;
	}
	dims = embedder_dims(model);
	if ((r = modelobj_publish(mk.s3, S3_OP("bench", NULL), cfg.model.prefix, model, base,
				  sizeof(base), err)))
		goto out;
	fprintf(out, "model: %s %s, %d dims, fitted on %lld chunks in %.1f s\n",
		embedder_name(model), embedder_version(model), dims, (long long)fit_sample,
		rag_ms_since(t) / 1e3);
	fflush(out);

	/* ---- vectors */
	t = rag_now_ns();
	if (!(vecs = malloc((size_t)nchunks * (size_t)dims * sizeof(float)))) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	{
		make_ctx mc = {model, mk.texts, mk.lens, vecs, (size_t)nchunks, dims};
		if ((r = rag_parallel_for(((size_t)nchunks + EMBED_BATCH - 1) / EMBED_BATCH,
					  rag_cpu_count(), embed_batch, &mc))) {
			rag_error_set(err, r, "embedding the synthetic chunks failed");
			goto out;
		}
	}
	fprintf(out, "vectors: %lld x %d embedded in %.1f s\n", (long long)nchunks, dims,
		rag_ms_since(t) / 1e3);
	fflush(out);

	/* ---- segments, and their rows in the catalog (one transaction) */
	rag_strlcpy(m.index, cfg.index.name, sizeof(m.index));
	rag_strlcpy(m.writer, mk.token, sizeof(m.writer));
	rag_strlcpy(m.model.name, embedder_name(model), sizeof(m.model.name));
	rag_strlcpy(m.model.version, embedder_version(model), sizeof(m.model.version));
	m.model.dims = dims;
	m.model.key = rag_strdup(base); /* the card's key */
	nseg_max = (size_t)((nchunks + seg_chunks - 1) / seg_chunks) + 1;
	if (!m.model.key || !(m.segments = calloc(nseg_max, sizeof(*m.segments))) ||
	    !(tune = calloc(nseg_max, sizeof(*tune)))) {
		r = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	remove_db_files(mk.cat_path);
	if ((r = catalog_open(mk.cat_path, &mk.cat, err)) || (r = catalog_begin(mk.cat, err)))
		goto out;
	for (int64_t from = 0; from < nchunks; from += seg_chunks) {
		int64_t n = nchunks - from < seg_chunks ? nchunks - from : seg_chunks;
		vindex_build_opts vo = {.ivf_threshold = cfg.index.ivf_threshold, .nlist = (int)nlist,
					.nprobe = (int)nprobe};
		mf_segment *ms = &m.segments[m.nsegments];
		seg_build b;
		char id[64];
		t = rag_now_ns();
		/* unique to this writer (commit.h, invariant 2) */
		snprintf(id, sizeof(id), "m%s-%06zu", mk.token, m.nsegments);
		if ((r = segment_build(dims, mk.chunks + from, vecs + (size_t)from * (size_t)dims,
				       (size_t)n, &vo, &b, err)))
			break;
		fprintf(out, "segment %s: %lld chunks, %s, nlist %d, nprobe %d, built in %.1f s; ", id,
			(long long)n, b.kind, b.nlist, b.nprobe, rag_ms_since(t) / 1e3);
		fflush(out);
		if (target > 0) {
			tune[ntune] = (bench_seg){NULL, NULL, b.nlist, b.nprobe, n};
			if ((r = vindex_load(b.obj[MF_INDEX].data, b.obj[MF_INDEX].len, &tune[ntune].vi,
					     err))) {
				seg_build_release(&b);
				break;
			}
			ntune++;
		}
		t = rag_now_ns();
		if (!mk.first_upload_ns)
			mk.first_upload_ns = t;
		r = segment_upload(mk.s3, S3_OP("bench", NULL), mk.root, id, &b, ms, err);
		if (!r) {
			m.nsegments++;
			fprintf(out, "uploaded in %.1f s; ", rag_ms_since(t) / 1e3);
			t = rag_now_ns();
			r = make_catalog_segment(&mk, model, from, n, &b, ms, head.version + 1, err);
		}
		seg_build_release(&b);
		if (r)
			break;
		fprintf(out, "catalog rows in %.1f s\n", rag_ms_since(t) / 1e3);
		fflush(out);
	}
	if (r || (r = catalog_commit(mk.cat, err))) {
		catalog_rollback(mk.cat);
		goto out;
	}
	free(vecs);
	vecs = NULL;

	/* ---- nprobe for a target recall, on held-out queries */
	if (target > 0) {
		int np;
		double rec;
		t = rag_now_ns();
		if ((r = make_tune(&sy, seed, topics, model, tune, ntune, target, &np, &rec, err)))
			goto out;
		for (size_t i = 0; i < m.nsegments; i++)
			m.segments[i].nprobe = np < m.segments[i].nlist ? np : m.segments[i].nlist;
		fprintf(out, "nprobe %d: recall@10 %.4f >= %.2f on %d held-out queries (automatic: %d), "
			     "tuned in %.1f s\n", np, rec, target, NTUNE, ntune ? tune[0].nprobe : 0,
			rag_ms_since(t) / 1e3);
		fflush(out);
	}

	/* ---- the commit */
	{
		catalog_stats cst;
		if ((r = catalog_stats_get(mk.cat, &cst, err)))
			goto out;
		m.documents = cst.documents;
		m.chunks = cst.chunks;
		m.source_bytes = cst.source_bytes;
	}
	if ((r = make_commit(&mk, &m, model, err)))
		goto out;
	fprintf(out, "committed version %lld of index \"%s\": %lld chunks, %zu segments, in %.1f s\n",
		(long long)m.version, cfg.index.name, (long long)nchunks, m.nsegments,
		rag_ms_since(t0) / 1e3);

	/* ---- queries from the same topics */
	if (qout) {
		if ((r = make_queries(&sy, seed, topics, nqueries, qout, err)))
			goto out;
		fprintf(out, "queries: %lld in %s\n", (long long)nqueries, qout);
	}
out:
	if (mk.probed && !mk.conditional)
		commit_lease_release(mk.s3, S3_OP("bench", NULL), mk.root, mk.token);
	catalog_close(mk.cat);
	remove_db_files(mk.cat_path);
	for (int64_t d = 0; mk.keys && d <= nchunks / SYNTH_DOC_CHUNKS; d++) {
		free(mk.keys[d]);
		free(mk.heads[d]);
	}
	free(mk.keys);
	free(mk.heads);
	free(mk.doc_ids);
	free(mk.texts);
	free(mk.lens);
	free(mk.chunks);
	free(vecs);
	for (size_t i = 0; tune && i < ntune; i++)
		vindex_free(tune[i].vi);
	free(tune);
	manifest_release(&m);
	embedder_free(model);
	synth_release(&sy);
	rag_buf_release(&mk.text);
	s3_client_free(mk.s3);
	rag_config_release(&cfg);
	return r;
}
