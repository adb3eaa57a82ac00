/*
 * ingest.c — one pass of the pipeline. See ingest.h for the invariants and
 * ingest_commit.c for recovery, version commits, compaction and GC.
 */
#include "ingest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk.h"
#include "ingest_int.h"
#include "parse.h"
#include "rag_pool.h"
#include "rag_util.h"

static const char *const stage_names[] = {
#define ING_X(name, str) str,
	INGEST_STAGES(ING_X)
#undef ING_X
};

const char *ingest_stage_name(ingest_stage s)
{
	return s < ING_STAGE_COUNT ? stage_names[s] : "unknown";
}

/* ------------------------------------------------------------ run buffers */

void run_release(ingest_run_state *r)
{
	for (size_t i = 0; i < r->ndocs; i++) {
		free(r->docs[i].key);
		free(r->docs[i].title);
		free(r->docs[i].text);
	}
	for (size_t i = 0; i < r->nchunks; i++)
		free(r->chunks[i].heading);
	for (size_t i = 0; i < r->noutcomes; i++) {
		free(r->outcomes[i].key);
		free(r->outcomes[i].error);
	}
	free(r->docs);
	free(r->chunks);
	free(r->outcomes);
	free(r->tombstone_docs);
	free(r->vecs);
	memset(r, 0, sizeof(*r));
}

static rag_rc add_outcome(ingest_run_state *r, const cat_object *o, rag_error *err)
{
	cat_object *dst;
	void *p = rag_grow(r->outcomes, &r->capoutcomes, r->noutcomes + 1, sizeof(*r->outcomes));

	if (!p)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	r->outcomes = p;
	dst = &r->outcomes[r->noutcomes];
	*dst = *o;
	dst->key = rag_strdup(o->key);
	dst->error = o->error ? rag_strdup(o->error) : NULL;
	if (!dst->key || (o->error && !dst->error))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	r->noutcomes++;
	return RAG_OK;
}

static rag_rc add_tombstone(ingest_run_state *r, int64_t doc_id, rag_error *err)
{
	void *p;

	if (doc_id <= 0)
		return RAG_OK;
	p = rag_grow(r->tombstone_docs, &r->captomb, r->ntomb + 1, sizeof(*r->tombstone_docs));
	if (!p)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	r->tombstone_docs = p;
	r->tombstone_docs[r->ntomb++] = doc_id;
	return RAG_OK;
}

/* ------------------------------------------------------------------- diff */

/* A listed object that needs work: new, changed, or failed before. */
typedef struct work_item {
	const s3_object *listed;
	int64_t prior_doc;   /* the live document it replaces, 0 if none */
	int attempts;        /* earlier failed attempts */
} work_item;

static bool is_marker(const char *key)
{
	size_t n = strlen(key);

	return n == 0 || key[n - 1] == '/';
}

int64_t ingest_retry_delay_s(const rag_config *cfg, int attempts)
{
	int64_t d = cfg->ingest.retry_base_s;

	for (int i = 1; i < attempts && d < cfg->ingest.retry_max_s; i++)
		d *= 2;
	return d < cfg->ingest.retry_max_s ? d : cfg->ingest.retry_max_s;
}

int64_t ingest_retry_at(const rag_config *cfg, const cat_object *o)
{
	return o->failed_at + ingest_retry_delay_s(cfg, o->attempts);
}

/* A failed object is fetched again when it changed or its wait is over
 * (the wait under today's settings: a shorter backoff applies at once). */
static bool retry_due(const rag_config *cfg, const cat_object *k, bool same, int64_t now)
{
	return !same || k->status != OBJ_FAILED || ingest_retry_at(cfg, k) <= now;
}

/*
 * Merge the listing (sorted by key) with the catalog (sorted the same way:
 * both are byte order) into work items and deletions. Both hold only what
 * this pass may touch (see pass_scope()).
 */
static rag_rc diff(const rag_config *cfg, const s3_list *l, const cat_object *known,
		   size_t nknown, work_item **work, size_t *nwork, ingest_run_state *r,
		   ingest_summary *sum, rag_error *err)
{
	size_t i = 0, j = 0, n = 0;
	work_item *w = calloc(l->nobjects + 1, sizeof(*w));
	int64_t now = (int64_t)time(NULL);
	rag_rc rc = RAG_OK;

	if (!w)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	while ((i < l->nobjects || j < nknown) && !rc) {
		int cmp = i >= l->nobjects ? 1 : j >= nknown ? -1
					   : strcmp(l->objects[i].key, known[j].key);
		if (cmp < 0) { /* new */
			if (!is_marker(l->objects[i].key))
				w[n++] = (work_item){&l->objects[i], 0, 0};
			i++;
		} else if (cmp > 0) { /* gone from the source */
			if (known[j].status != OBJ_DELETED) {
				cat_object o = known[j];
				o.status = OBJ_DELETED;
				o.error = NULL;
				o.doc_id = 0;
				rc = add_outcome(r, &o, err);
				if (!rc)
					rc = add_tombstone(r, known[j].doc_id, err);
				sum->status[OBJ_DELETED]++;
			}
			j++;
		} else {
			const cat_object *k = &known[j];
			bool same = strcmp(k->etag, l->objects[i].etag) == 0;
			if (!retry_due(cfg, k, same, now))
				sum->deferred++;
			else if (!same || k->status == OBJ_FAILED || k->status == OBJ_DELETED ||
				 k->status == OBJ_PENDING)
				w[n++] = (work_item){&l->objects[i], k->doc_id,
						     same && k->status == OBJ_FAILED ? k->attempts : 0};
			else
				sum->unchanged++;
			i++;
			j++;
		}
	}
	if (rc) {
		free(w);
		return rc;
	}
	*work = w;
	*nwork = n;
	return RAG_OK;
}

/* ---------------------------------------------------- fetch, parse, chunk */

typedef struct batch_item {
	work_item *w;
	s3_get_req *req;
	/* outcome */
	obj_status status;
	char error[1400];
	parsed_doc doc;
	doc_chunk *chunks;
	size_t nchunks;
	double parse_ms, chunk_ms;
} batch_item;

typedef struct batch {
	ingest_ctx *ic;
	batch_item *items;
	chunk_opts copts;
} batch;

static rag_rc process_one(void *ctx, size_t i)
{
	batch *b = ctx;
	batch_item *it = &b->items[i];
	rag_error e = {0};
	uint64_t t0;
	rag_rc rc;

	if (it->req->rc == RAG_ENOTFOUND) {
		/* deleted between LIST and GET: the same as gone from the listing */
		it->status = OBJ_DELETED;
		return RAG_OK;
	}
	if (it->req->rc) {
		it->status = it->req->rc == RAG_ETOOBIG ? OBJ_REJECTED : OBJ_FAILED;
		rag_strlcpy(it->error, it->req->err.msg, sizeof(it->error));
		return RAG_OK;
	}
	t0 = rag_now_ns();
	rc = parse_document(it->w->listed->key, it->req->buf.data ? it->req->buf.data : "",
			    it->req->buf.len, &it->doc, &e);
	it->parse_ms = rag_ms_since(t0);
	if (rc) {
		it->status = rc == RAG_EUNSUPPORTED ? OBJ_SKIPPED : OBJ_FAILED;
		rag_strlcpy(it->error, e.msg, sizeof(it->error));
		return RAG_OK;
	}
	if (it->doc.len == 0) {
		it->status = OBJ_SKIPPED;
		snprintf(it->error, sizeof(it->error), "\"%s\": empty document (no text)",
			 it->w->listed->key);
		return RAG_OK;
	}
	t0 = rag_now_ns();
	rc = chunk_document(&it->doc, &b->copts, &it->chunks, &it->nchunks, &e);
	it->chunk_ms = rag_ms_since(t0);
	if (rc) {
		it->status = OBJ_FAILED;
		snprintf(it->error, sizeof(it->error), "\"%s\": %s", it->w->listed->key, e.msg);
		return RAG_OK;
	}
	it->status = it->nchunks ? OBJ_INDEXED : OBJ_SKIPPED;
	if (!it->nchunks)
		snprintf(it->error, sizeof(it->error), "\"%s\": no text to index", it->w->listed->key);
	return RAG_OK;
}

/* Move an indexed item's document and chunks into the run. */
static rag_rc keep_document(ingest_run_state *r, batch_item *it, rag_error *err)
{
	run_doc *d;
	void *p;

	if (!(p = rag_grow(r->docs, &r->capdocs, r->ndocs + 1, sizeof(*r->docs))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	r->docs = p;
	if (!(p = rag_grow(r->chunks, &r->capchunks, r->nchunks + it->nchunks + 1,
			    sizeof(*r->chunks))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	r->chunks = p;
	d = &r->docs[r->ndocs];
	memset(d, 0, sizeof(*d));
	d->key = rag_strdup(it->w->listed->key);
	if (!d->key)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	/* the GET's ETag: if the object changed after LIST, we indexed the new bytes */
	rag_strlcpy(d->etag, it->req->info.etag[0] ? it->req->info.etag : it->w->listed->etag,
		    sizeof(d->etag));
	d->size = it->req->buf.len;
	d->last_modified = it->req->info.last_modified ? it->req->info.last_modified
						       : it->w->listed->last_modified;
	rag_strlcpy(d->type, doc_type_name(it->doc.type), sizeof(d->type));
	d->title = it->doc.title ? rag_strdup(it->doc.title) : NULL;
	d->text = it->doc.text; /* taken over */
	d->text_len = it->doc.len;
	it->doc.text = NULL;
	d->invalid_bytes = it->doc.invalid_bytes;
	d->first_chunk = r->nchunks;
	d->nchunks = it->nchunks;
	d->prior_doc = it->w->prior_doc;
	r->ndocs++;
	for (size_t k = 0; k < it->nchunks; k++) {
		run_chunk *c = &r->chunks[r->nchunks++];
		c->doc = r->ndocs - 1;
		c->ordinal = it->chunks[k].ordinal;
		c->off = it->chunks[k].off;
		c->len = it->chunks[k].len;
		c->heading = it->chunks[k].heading_path;
		it->chunks[k].heading_path = NULL; /* taken over */
		c->page = it->chunks[k].page;
		c->page_end = it->chunks[k].page_end;
		c->src_off = it->chunks[k].src_off;
		c->src_end = it->chunks[k].src_end;
	}
	return RAG_OK;
}

static rag_rc settle_item(ingest_ctx *ic, ingest_run_state *r, batch_item *it,
			  ingest_summary *sum, rag_error *err)
{
	const s3_object *lo = it->w->listed;
	cat_object o = {.key = lo->key, .size = lo->size, .last_modified = lo->last_modified,
			.status = it->status};
	rag_rc rc = RAG_OK;

	rag_strlcpy(o.etag, lo->etag, sizeof(o.etag));
	sum->status[it->status]++;
	switch (it->status) {
	case OBJ_INDEXED:
		sum->bytes += it->req->buf.len;
		if ((rc = keep_document(r, it, err)))
			return rc;
		return add_tombstone(r, it->w->prior_doc, err);
	case OBJ_DELETED:
		o.doc_id = 0;
		rc = add_tombstone(r, it->w->prior_doc, err);
		break;
	case OBJ_FAILED:
		o.attempts = it->w->attempts + 1;
		o.failed_at = (int64_t)time(NULL);
		o.error = it->error;
		/* a failed object keeps serving its last good document */
		o.doc_id = it->w->prior_doc;
		RAG_WARN(ic->log, "failed: %s", it->error);
		break;
	default: /* skipped, rejected: the old document (if any) no longer applies */
		o.error = it->error;
		rc = add_tombstone(r, it->w->prior_doc, err);
		RAG_INFO(ic->log, "%s: %s", obj_status_name(it->status), it->error);
		break;
	}
	if (!rc)
		rc = add_outcome(r, &o, err);
	return rc;
}

static void batch_release(batch_item *items, s3_get_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		parsed_doc_release(&items[i].doc);
		doc_chunks_free(items[i].chunks, items[i].nchunks);
		rag_buf_release(&reqs[i].buf);
	}
}

/*
 * The fetch of one batch, run on a thread of its own so that the next
 * batch downloads while this one is parsed, embedded and committed.
 */
typedef struct fetch_job {
	ingest_ctx *ic;
	work_item *work;
	size_t from, to;
	s3_get_req *reqs;
	double ms;
	pthread_t tid;
	bool running;
} fetch_job;

static void *fetch_run(void *arg)
{
	fetch_job *f = arg;
	uint64_t t0 = rag_now_ns();

	/* per-request outcomes are read later; the batch result is not an error */
	s3_get_many(f->ic->s3, S3_OP("ingest.fetch", NULL), f->reqs, f->to - f->from, 0);
	f->ms = rag_ms_since(t0);
	return NULL;
}

/* Start fetching items [from, to) (runs inline if no thread can start). */
static rag_rc fetch_start(fetch_job *f, ingest_ctx *ic, work_item *work, size_t from, size_t to,
			  rag_error *err)
{
	memset(f, 0, sizeof(*f));
	f->ic = ic;
	f->work = work;
	f->from = from;
	f->to = to;
	if (to == from)
		return RAG_OK;
	if (!(f->reqs = calloc(to - from, sizeof(*f->reqs))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = from; i < to; i++) {
		f->reqs[i - from].key = work[i].listed->key;
		rag_buf_init(&f->reqs[i - from].buf, ic->cfg->ingest.max_object_size);
	}
	f->running = pthread_create(&f->tid, NULL, fetch_run, f) == 0;
	if (!f->running)
		fetch_run(f);
	return RAG_OK;
}

static void fetch_wait(fetch_job *f)
{
	if (f->running)
		pthread_join(f->tid, NULL);
	f->running = false;
}

static void fetch_release(fetch_job *f)
{
	fetch_wait(f);
	for (size_t i = 0; f->reqs && i < f->to - f->from; i++)
		rag_buf_release(&f->reqs[i].buf);
	free(f->reqs);
	memset(f, 0, sizeof(*f));
}

/* Parse and chunk a fetched batch (on all cores) and settle its items. */
static rag_rc process_batch(ingest_ctx *ic, ingest_run_state *r, fetch_job *f,
			    ingest_summary *sum, rag_error *err)
{
	size_t n = f->to - f->from;
	batch_item *items;
	batch b = {.ic = ic};
	rag_rc rc = RAG_OK;

	fetch_wait(f);
	sum->ms[ING_FETCH] += f->ms;
	if (n == 0)
		return RAG_OK;
	if (!(items = calloc(n, sizeof(*items))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	b.items = items;
	b.copts.max_tokens = (int)ic->cfg->ingest.chunk_tokens;
	b.copts.overlap_tokens = (int)ic->cfg->ingest.chunk_overlap;
	if (b.copts.overlap_tokens >= b.copts.max_tokens)
		b.copts.overlap_tokens = b.copts.max_tokens / 4;
	for (size_t i = 0; i < n; i++) {
		items[i].w = &f->work[f->from + i];
		items[i].req = &f->reqs[i];
		if (f->reqs[i].rc == RAG_OK) {
			sum->fetched++;
			sum->bytes_read += f->reqs[i].buf.len;
		}
	}
	rag_parallel_for(n, rag_cpu_count(), process_one, &b);
	for (size_t i = 0; i < n && !rc; i++) {
		sum->ms[ING_PARSE] += items[i].parse_ms / rag_cpu_count();
		sum->ms[ING_CHUNK] += items[i].chunk_ms / rag_cpu_count();
		rc = settle_item(ic, r, &items[i], sum, err);
	}
	batch_release(items, f->reqs, n);
	free(items);
	return rc;
}

/* Objects over the size limit are rejected without a GET. */
static rag_rc reject_large(ingest_ctx *ic, ingest_run_state *r, work_item *w,
			   ingest_summary *sum, rag_error *err)
{
	cat_object o = {.key = w->listed->key, .size = w->listed->size,
			.last_modified = w->listed->last_modified, .status = OBJ_REJECTED};
	char msg[600], lim[32], sz[32];
	rag_rc rc;

	rag_strlcpy(o.etag, w->listed->etag, sizeof(o.etag));
	snprintf(msg, sizeof(msg), "\"%s\": %s is over the %s limit (ingest.max_object_size)",
		 w->listed->key, rag_fmt_bytes(w->listed->size, sz, sizeof(sz)),
		 rag_fmt_bytes(ic->cfg->ingest.max_object_size, lim, sizeof(lim)));
	o.error = msg;
	RAG_INFO(ic->log, "rejected: %s", msg);
	sum->status[OBJ_REJECTED]++;
	if ((rc = add_outcome(r, &o, err)))
		return rc;
	return add_tombstone(r, w->prior_doc, err);
}

/* ---------------------------------------------------------------- embed */

typedef struct embed_job {
	const embedder *m;
	ingest_run_state *r;
	int dims;
	size_t per;
	embed_stats *st; /* one per part, summed at the end */
	rag_error err;
} embed_job;

static rag_rc embed_part(void *ctx, size_t part)
{
	embed_job *j = ctx;
	ingest_run_state *r = j->r;
	size_t from = part * j->per, to = from + j->per < r->nchunks ? from + j->per : r->nchunks;
	const char **texts = malloc((to - from + 1) * sizeof(*texts));
	size_t *lens = malloc((to - from + 1) * sizeof(*lens));
	rag_rc rc;

	if (!texts || !lens) {
		free(texts);
		free(lens);
		return RAG_ENOMEM;
	}
	for (size_t i = from; i < to; i++) {
		texts[i - from] = run_chunk_text(r, i);
		lens[i - from] = r->chunks[i].len;
	}
	rc = embedder_embed(j->m, texts, lens, to - from, r->vecs + from * (size_t)j->dims,
			    &j->st[part], &j->err);
	free(texts);
	free(lens);
	return rc;
}

rag_rc run_embed(const embedder *m, ingest_run_state *r, embed_stats *st, rag_error *err)
{
	int threads = rag_cpu_count();
	embed_job j = {.m = m, .r = r, .dims = embedder_dims(m)};
	size_t parts;
	rag_rc rc;

	free(r->vecs);
	r->vecs = NULL;
	if (r->nchunks == 0)
		return RAG_OK;
	if (!(r->vecs = malloc(r->nchunks * (size_t)j.dims * sizeof(float))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory for %zu vectors", r->nchunks);
	j.per = (r->nchunks + (size_t)threads * 4 - 1) / ((size_t)threads * 4);
	if (j.per < 64)
		j.per = 64;
	parts = (r->nchunks + j.per - 1) / j.per;
	if (!(j.st = calloc(parts, sizeof(*j.st))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	rc = rag_parallel_for(parts, threads, embed_part, &j);
	for (size_t p = 0; p < parts && st && !rc; p++) {
		st->texts += j.st[p].texts;
		st->truncated += j.st[p].truncated;
		st->tokens += j.st[p].tokens;
		st->unknown += j.st[p].unknown;
	}
	free(j.st);
	if (rc)
		return rag_error_set(err, rc, "embed: %s", j.err.msg[0] ? j.err.msg : rag_rc_message(rc));
	return RAG_OK;
}

/* ------------------------------------------------------------------- run */

/*
 * The next batch from *done: at most batch_docs objects within the size
 * limit (larger ones are rejected here, without a GET), ending where the
 * next commit is due counting the in_flight objects not yet settled. Its
 * fetch starts at once.
 */
static rag_rc plan_batch(ingest_ctx *ic, ingest_run_state *r, work_item *work, size_t nwork,
			 size_t *done, size_t in_flight, ingest_summary *sum, fetch_job *f,
			 rag_error *err)
{
	size_t every = (size_t)ic->cfg->ingest.commit_every,
	       pending = r->ndocs + r->noutcomes + in_flight, from = *done, to, take = 0,
	       /* a commit is due before this batch settles: it opens the next window */
	       room = every > pending ? every - pending : every,
	       most = (size_t)ic->cfg->ingest.batch_docs < room ? (size_t)ic->cfg->ingest.batch_docs
								: room;
	rag_rc rc;

	while (from < nwork && work[from].listed->size > ic->cfg->ingest.max_object_size)
		if ((rc = reject_large(ic, r, &work[from++], sum, err)))
			return rc;
	for (to = from; to < nwork && take < most; to++, take++)
		if (work[to].listed->size > ic->cfg->ingest.max_object_size)
			break;
	*done = to;
	return fetch_start(f, ic, work, from, to, err);
}

/* Commit what the run holds and start it afresh. */
static rag_rc commit_batch(ingest_ctx *ic, ingest_run_state *r, ingest_summary *sum,
			   rag_error *err)
{
	rag_rc rc;

	sum->documents += (int64_t)r->ndocs;
	sum->chunks += (int64_t)r->nchunks;
	sum->tombstoned += (int64_t)r->ntomb;
	rc = ingest_commit(ic, r, sum, err);
	run_release(r);
	return rc;
}

/* ---------------------------------------------------------- what a pass sees */

static int cmp_object(const void *a, const void *b)
{
	return strcmp(((const s3_object *)a)->key, ((const s3_object *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Move the objects of src this process owns to the end of dst. */
static rag_rc take_owned(ingest_ctx *ic, s3_list *src, s3_list *dst, ingest_summary *sum,
			 rag_error *err)
{
	s3_object *p = realloc(dst->objects, (dst->nobjects + src->nobjects + 1) * sizeof(*p));

	if (!p)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	dst->objects = p;
	for (size_t i = 0; i < src->nobjects; i++) {
		if (!rag_scope_owns(&ic->scope, src->objects[i].key)) {
			sum->others++;
			continue;
		}
		dst->objects[dst->nobjects++] = src->objects[i];
		src->objects[i].key = NULL; /* taken over */
	}
	return RAG_OK;
}

/* LIST every source prefix; keep the keys of this shard, sorted. */
static rag_rc list_owned(ingest_ctx *ic, s3_list *out, ingest_summary *sum, rag_error *err)
{
	rag_rc rc = RAG_OK;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ic->scope.nprefixes && !rc; i++) {
		s3_list one;
		if ((rc = s3_list_objects(ic->s3, S3_OP("ingest.list", NULL), ic->scope.prefixes[i],
					  NULL, &one, err)))
			break;
		rc = take_owned(ic, &one, out, sum, err);
		s3_list_release(&one);
	}
	/* disjoint prefixes (rag_scope.h, invariant 1): sorting the concatenation
	 * gives the one byte-ordered listing diff() merges with the catalog */
	if (!rc && ic->scope.nprefixes > 1)
		qsort(out->objects, out->nobjects, sizeof(*out->objects), cmp_object);
	return rc;
}

typedef struct head_job {
	ingest_ctx *ic;
	char *const *keys;
	s3_object *found;
	rag_rc *rcs;
	rag_error *errs;
} head_job;

static rag_rc head_one(void *ctx, size_t i)
{
	head_job *j = ctx;

	j->rcs[i] = s3_head(j->ic->s3, S3_OP("ingest.list", NULL), j->keys[i], &j->found[i],
			    &j->errs[i]);
	return RAG_OK; /* judged per key below */
}

/* HEAD each key (sorted, owned): what a LIST would have said of it now. */
static rag_rc head_keys(ingest_ctx *ic, char *const *keys, size_t n, s3_list *out,
			rag_error *err)
{
	head_job j = {.ic = ic, .keys = keys};
	rag_rc rc = RAG_OK;

	memset(out, 0, sizeof(*out));
	j.found = calloc(n + 1, sizeof(*j.found));
	j.rcs = calloc(n + 1, sizeof(*j.rcs));
	j.errs = calloc(n + 1, sizeof(*j.errs));
	if (!j.found || !j.rcs || !j.errs) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	s3_parallel(ic->s3, n, 0, head_one, &j);
	for (size_t i = 0; i < n && !rc; i++) {
		if (j.rcs[i] == RAG_ENOTFOUND)
			continue; /* gone: the diff tombstones what the catalog holds */
		if (j.rcs[i]) {
			rc = rag_error_set(err, j.rcs[i], "%s", j.errs[i].msg);
			break;
		}
		if (!(j.found[i].key = rag_strdup(keys[i])))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	if (!rc) {
		size_t kept = 0;
		for (size_t i = 0; i < n; i++)
			if (j.found[i].key)
				j.found[kept++] = j.found[i];
		out->objects = j.found;
		out->nobjects = kept;
		j.found = NULL;
	}
out:
	if (j.found) {
		for (size_t i = 0; i < n; i++)
			s3_object_release(&j.found[i]);
		free(j.found);
		out->objects = NULL;
	}
	free(j.rcs);
	free(j.errs);
	return rc;
}

/*
 * The catalog objects this pass may change, first and in key order: those
 * this process owns and, for a pass over some keys, one of them. The rest
 * go after them, untouched (rag_scope.h, invariant 3). Their count in *nmine.
 */
static rag_rc pass_scope(ingest_ctx *ic, cat_object *known, size_t nknown, char *const *keys,
			 size_t nkeys, size_t *nmine, rag_error *err)
{
	cat_object *tmp = malloc((nknown + 1) * sizeof(*tmp));
	size_t kept = 0, other = nknown;

	if (!tmp)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	/* a stable partition: mine from the front, the rest from the back */
	for (size_t i = 0; i < nknown; i++) {
		bool mine = rag_scope_owns(&ic->scope, known[i].key) &&
			    (!keys || bsearch(&known[i].key, keys, nkeys, sizeof(*keys), cmp_str));
		if (mine)
			tmp[kept++] = known[i];
		else
			tmp[--other] = known[i];
	}
	if (nknown)
		memcpy(known, tmp, nknown * sizeof(*known));
	free(tmp);
	*nmine = kept;
	return RAG_OK;
}

/* Sort and deduplicate keys in place, dropping those this process does not
 * own; returns how many remain. */
static size_t owned_keys(ingest_ctx *ic, char **keys, size_t n)
{
	size_t kept = 0;

	qsort(keys, n, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (rag_scope_owns(&ic->scope, keys[i]) && (kept == 0 || strcmp(keys[kept - 1], keys[i])))
			keys[kept++] = keys[i];
	return kept;
}

/* ------------------------------------------------------------------- run */

/*
 * One pass over what l lists (owned keys, sorted) against the catalog's
 * objects of the same scope: fetch, process and commit the differences.
 */
static rag_rc run_pass(ingest_ctx *ic, s3_list *l, char *const *keys, size_t nkeys,
		       ingest_summary *sum, rag_error *err)
{
	ingest_run_state r = {0};
	cat_object *known = NULL;
	size_t nknown = 0, nmine = 0, nwork = 0, done = 0;
	work_item *work = NULL;
	/* two slots that swap roles: a fetch thread holds its job's address */
	fetch_job slot[2] = {{0}, {0}}, *cur = &slot[0], *next = &slot[1];
	uint64_t t = rag_now_ns(), bytes_total = 0, bytes_done = 0, batch_bytes = 0;
	char where[512];
	rag_rc rc;

	sum->listed = (int64_t)l->nobjects;
	if ((rc = catalog_objects_load(ic->cat, &known, &nknown, err)))
		goto out;
	if ((rc = pass_scope(ic, known, nknown, keys, nkeys, &nmine, err)) ||
	    (rc = diff(ic->cfg, l, known, nmine, &work, &nwork, &r, sum, err)))
		goto out;
	sum->ms[ING_LIST] += rag_ms_since(t);
	for (size_t i = 0; i < nwork; i++)
		bytes_total += work[i].listed->size;
	RAG_INFO(ic->log, "%lld objects %s %s: %zu to process, %lld unchanged, %lld failed "
		 "waiting for their retry", (long long)sum->listed, keys ? "of the events under"
		 : "listed under", rag_scope_describe(&ic->scope, where, sizeof(where)), nwork,
		 (long long)sum->unchanged, (long long)sum->deferred);
	{
		/* test seam: a window between LIST and GET in which a test can
		 * delete or overwrite source objects */
		const char *pause = getenv("RAGMAP_TEST_PAUSE_AFTER_LIST_MS");
		int64_t ms;
		if (pause && rag_parse_i64(pause, &ms) && ms > 0 && ms <= 600000) {
			RAG_INFO(ic->log, "RAGMAP_TEST_PAUSE_AFTER_LIST_MS: pausing %lld ms after LIST",
				 (long long)ms);
			rag_sleep_ms((unsigned)ms);
		}
	}

	/* the fetch of batch n+1 overlaps the processing and commit of batch n */
	if ((rc = plan_batch(ic, &r, work, nwork, &done, 0, sum, cur, err)))
		goto out;
	while (cur->to > cur->from) {
		fetch_job *swap;
		if (!(ic->stop && *ic->stop) &&
		    (rc = plan_batch(ic, &r, work, nwork, &done, cur->to - cur->from, sum, next, err)))
			goto out;
		if ((rc = process_batch(ic, &r, cur, sum, err)))
			goto out;
		for (size_t i = cur->from; i < cur->to; i++) {
			bytes_done += work[i].listed->size;
			batch_bytes += work[i].listed->size;
		}
		if (ic->progress)
			ic->progress(ic->progress_ctx, (int64_t)cur->to, (int64_t)nwork, bytes_done,
				     bytes_total, (int64_t)(sum->chunks + (int64_t)r.nchunks));
		fetch_release(cur);
		/* invariant 2: commit as the pass goes */
		if ((r.noutcomes + r.ndocs >= (size_t)ic->cfg->ingest.commit_every ||
		     batch_bytes >= (uint64_t)ic->cfg->ingest.commit_every_bytes) &&
		    next->to > next->from && (rc = commit_batch(ic, &r, sum, err)))
			goto out;
		if (r.ndocs == 0 && r.noutcomes == 0)
			batch_bytes = 0;
		swap = cur;
		cur = next;
		next = swap;
	}
	if (done < nwork)
		RAG_INFO(ic->log, "stopping: %zu objects left for the next pass", nwork - done);
	if ((rc = commit_batch(ic, &r, sum, err)))
		goto out;
	if (sum->commits) {
		t = rag_now_ns();
		rc = ingest_gc(ic, ic->cfg->index.gc_grace_s, &sum->gc_deleted, err);
		sum->ms[ING_GC] += rag_ms_since(t);
	}
out:
	fetch_release(&slot[0]);
	fetch_release(&slot[1]);
	free(work);
	cat_objects_free(known, nknown);
	run_release(&r);
	return rc;
}

/*
 * A pass: catch up with the newest version, see what the pass covers (keys
 * NULL: every owned key, listed; else those keys, HEADed) and process the
 * differences.
 */
static rag_rc pass(ingest_ctx *ic, char **keys, size_t nkeys, ingest_summary *sum,
		   rag_error *err)
{
	s3_list l = {0};
	uint64_t t0 = rag_now_ns(), t;
	rag_rc rc;

	ingest_mark_pass(ic);
	rc = ingest_follow(ic, err);
	sum->ms[ING_RECOVER] = rag_ms_since(t0);
	t = rag_now_ns();
	if (!rc)
		rc = keys ? head_keys(ic, keys, nkeys, &l, err) : list_owned(ic, &l, sum, err);
	sum->ms[ING_LIST] = rag_ms_since(t);
	if (!rc)
		rc = run_pass(ic, &l, keys, nkeys, sum, err);
	sum->total_ms = rag_ms_since(t0);
	s3_list_release(&l);
	return rc;
}

rag_rc ingest_run(ingest_ctx *ic, ingest_summary *sum, rag_error *err)
{
	memset(sum, 0, sizeof(*sum));
	return pass(ic, NULL, 0, sum, err);
}

rag_rc ingest_run_keys(ingest_ctx *ic, char **keys, size_t nkeys, ingest_summary *sum,
		       rag_error *err)
{
	memset(sum, 0, sizeof(*sum));
	nkeys = owned_keys(ic, keys, nkeys);
	return nkeys ? pass(ic, keys, nkeys, sum, err) : RAG_OK;
}
