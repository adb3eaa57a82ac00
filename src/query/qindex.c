/*
 * qindex.c — loading a version in a backing mode, and answering queries.
 * See qindex.h for the mode table and the invariants.
 */
#include "qindex.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "commit.h"
#include "embed.h"
#include "modelobj.h"
#include "rag_util.h"
#include "segment.h"
#include "vindex.h"

#define OBJ_MAX ((size_t)4 << 30)

typedef struct qseg {
	mf_segment *mf;          /* borrowed from the manifest */
	uint64_t key;            /* hash of the segment id, for cache keys */
	int64_t tombstones;      /* tombstoned chunks inside this segment's id range */
	vindex *vi;              /* memory, pointer, cached */
	seg_ptr *ptrs;           /* memory, pointer, cached */
	size_t nptrs;
	char *records;           /* memory: chunks.bin */
	size_t records_len;
	seg_lists lists;         /* object: centroids and list offsets */
} qseg;

struct qindex {
	atomic_int refs;
	qmode mode;
	const qmode_row *row;     /* qmode_info(mode) */
	s3_client *s3;
	rag_log *log;
	manifest mf;
	embedder *model;
	qseg *segs;
	size_t nsegs;
	qcaches caches;
	qindex_status st;
	/* bm25 and hybrid: the catalog snapshot, fetched on first use */
	pthread_mutex_t cat_lock;
	catalog *cat;
	char cat_path[4200];
	int rrf_k, hybrid_depth;
	bool zscore;
	double weight;
	vindex_scan scan;        /* query.scan: memory, pointer, cached */
	s3_prices prices;        /* what a query's requests cost */
};

/* Most storage requests logged per query and per load (more are counted). */
#define QUERY_TRACE_MAX 4096
#define LOAD_TRACE_MAX 65536

static const char *const ret_names[] = {"dense", "bm25", "hybrid"};

const char *qretriever_name(qretriever r)
{
	return (unsigned)r < RAG_ARRAY_LEN(ret_names) ? ret_names[r] : "unknown";
}

bool qretriever_parse(const char *s, qretriever *out)
{
	for (int i = 0; s && i < (int)RAG_ARRAY_LEN(ret_names); i++)
		if (strcmp(s, ret_names[i]) == 0) {
			*out = (qretriever)i;
			return true;
		}
	return false;
}

/* ------------------------------------------------------------- loading */

static void mkdir_quiet(const char *dir)
{
	mkdir(dir, 0755); /* EEXIST is the common case; open() reports real trouble */
}

static rag_rc index_root(const rag_config *cfg, char *root, size_t len, rag_error *err)
{
	if (mf_index_root(cfg->index.prefix, cfg->index.name, root, len))
		return rag_error_set(err, RAG_ECONFIG, "index.prefix/index.name too long");
	return RAG_OK;
}

rag_rc qindex_latest_version(s3_client *s3, const rag_config *cfg, const char *stage,
			     int64_t *version, rag_error *err)
{
	char root[1024];
	commit_head head;
	rag_rc rc;

	*version = 0;
	if ((rc = index_root(cfg, root, sizeof(root), err)))
		return rc;
	/* the newest committed version, not LATEST's: LATEST may lag (commit.h) */
	if (!(rc = commit_read_newest(s3, S3_OP(stage, NULL), root, &head, NULL, err)))
		*version = head.version;
	return rc;
}

static rag_rc load_manifest(qindex *q, const rag_config *cfg, const s3_op *op, rag_error *err)
{
	char root[1024];
	commit_head head;
	rag_rc rc;

	if ((rc = index_root(cfg, root, sizeof(root), err)) ||
	    (rc = commit_read_newest(q->s3, op, root, &head, &q->mf, err)))
		return rc;
	if (head.version == 0)
		return rag_error_set(err, RAG_ENOTFOUND,
				     "no index version yet: no manifest under \"%smanifests/\" "
				     "(run ragmap ingest)", root);
	return RAG_OK;
}

static int64_t tombstones_in(const manifest *m, int64_t first, int64_t last)
{
	int64_t n = 0;

	for (size_t i = 0; i < m->ntombstones; i++) {
		int64_t a = m->tombstones[2 * i], b = m->tombstones[2 * i + 1];
		if (a < first)
			a = first;
		if (b > last)
			b = last;
		if (a <= b)
			n += b - a + 1;
	}
	return n;
}

/* Whether the mode loads segment object obj at open (qmode.h's table). */
static bool mode_loads(qmode mode, int obj)
{
	return (qmode_info(mode)->loads >> obj) & 1u;
}

static rag_rc load_segments(qindex *q, const s3_op *op, rag_error *err)
{
	size_t nreq = 0, r = 0;
	s3_get_req *reqs;
	rag_rc rc = RAG_OK;

	if (!(q->segs = calloc(q->mf.nsegments + 1, sizeof(*q->segs))) ||
	    !(reqs = calloc(q->mf.nsegments * MF_NOBJ + 1, sizeof(*reqs))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	q->nsegs = q->mf.nsegments;
	for (size_t i = 0; i < q->nsegs; i++) {
		qseg *s = &q->segs[i];
		s->mf = &q->mf.segments[i];
		s->key = rag_fnv1a(RAG_FNV_INIT, s->mf->id, strlen(s->mf->id));
		s->tombstones = tombstones_in(&q->mf, s->mf->first_chunk, s->mf->last_chunk);
		for (int k = 0; k < MF_NOBJ; k++) {
			if (!mode_loads(q->mode, k))
				continue;
			reqs[nreq].key = s->mf->obj[k].key;
			rag_buf_init(&reqs[nreq].buf, OBJ_MAX);
			nreq++;
		}
	}
	/* every segment object in parallel */
	if (s3_get_many(q->s3, op, reqs, nreq, 0)) {
		for (size_t i = 0; i < nreq; i++)
			if (reqs[i].rc) {
				rc = reqs[i].rc;
				if (err)
					*err = reqs[i].err;
				break;
			}
		goto out;
	}
	for (size_t i = 0; i < q->nsegs && !rc; i++) {
		qseg *s = &q->segs[i];
		for (int k = 0; k < MF_NOBJ && !rc; k++) {
			rag_buf *b;
			if (!mode_loads(q->mode, k))
				continue;
			b = &reqs[r++].buf;
			if (k == MF_INDEX)
				rc = vindex_load(b->data, b->len, &s->vi, err);
			else if (k == MF_CHUNKS_IDX)
				rc = segment_parse_chunk_idx(b->data, b->len, &s->ptrs, &s->nptrs, err);
			else if (k == MF_LISTS_IDX)
				rc = segment_parse_lists_idx(b->data, b->len, &s->lists, err);
			else if (k == MF_CHUNKS) {
				s->records = rag_buf_detach(b, &s->records_len);
			}
			if (rc)
				rag_error_prefix(err, "\"%s\"", s->mf->obj[k].key);
		}
		if (!rc && q->row->dense_from_lists && s->lists.dims != q->mf.model.dims)
			rc = rag_error_set(err, RAG_ECORRUPT, "segment \"%s\": %d dims, model has %d",
					   s->mf->id, s->lists.dims, q->mf.model.dims);
	}
out:
	for (size_t i = 0; i < nreq; i++)
		rag_buf_release(&reqs[i].buf);
	free(reqs);
	return rc;
}

static void account(qindex *q)
{
	qindex_status *st = &q->st;

	for (size_t i = 0; i < q->nsegs; i++) {
		qseg *s = &q->segs[i];
		if (s->vi)
			st->vector_bytes += vindex_memory_bytes(s->vi);
		if (s->lists.centroids)
			st->vector_bytes += (uint64_t)s->lists.nlist * (uint64_t)s->lists.dims * 4;
		if (s->lists.offsets)
			st->pointer_bytes += ((uint64_t)s->lists.nlist + 1) * 8;
		st->pointer_bytes += s->nptrs * sizeof(seg_ptr);
		st->text_bytes += s->records_len;
	}
}

rag_rc qindex_open(s3_client *s3, const rag_config *cfg, qmode mode, const qcaches *caches,
		   rag_log *log, qindex **out, rag_error *err)
{
	qindex *q = calloc(1, sizeof(*q));
	uint64_t t0 = rag_now_ns();
	rag_rc rc;

	*out = NULL;
	if (!qmode_info(mode)) {
		free(q);
		return rag_error_set(err, RAG_EINVAL, "unknown mode %d", (int)mode);
	}
	if (!q)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	atomic_init(&q->refs, 1);
	pthread_mutex_init(&q->cat_lock, NULL);
	q->rrf_k = (int)cfg->query.rrf_k;
	q->hybrid_depth = (int)cfg->query.hybrid_depth;
	q->zscore = strcmp(cfg->query.hybrid_method, "rrf") != 0;
	q->weight = cfg->query.hybrid_weight;
	q->scan = strcmp(cfg->query.scan, "blas") == 0 ? VINDEX_SCAN_BLAS : VINDEX_SCAN_FAISS;
	q->mode = mode;
	q->row = qmode_info(mode);
	q->s3 = s3;
	q->log = log;
	if (caches) {   /* only the caches the mode's row names */
		q->caches.text = q->row->text_cache ? caches->text : NULL;
		q->caches.lists = q->row->list_cache ? caches->lists : NULL;
	}
	s3_prices_from_config(cfg, &q->prices);
	/* the load broken down per object (GET /v1/status) */
	s3_trace_log_init(&q->st.load_trace, LOAD_TRACE_MAX);
	q->st.load_start_ns = t0;
	s3_op *op = S3_OP("query.load", &q->st.load_trace);
	if ((rc = load_manifest(q, cfg, op, err)))
		goto fail;
	if ((rc = modelobj_open(s3, op, q->mf.model.key, &q->model, err)))
		goto fail;
	if (embedder_dims(q->model) != q->mf.model.dims ||
	    strcmp(embedder_version(q->model), q->mf.model.version) != 0) {
		rc = rag_error_set(err, RAG_ECORRUPT, "model \"%s\" is not the one the manifest names",
				   q->mf.model.key);
		goto fail;
	}
	if ((rc = load_segments(q, op, err)))
		goto fail;
	snprintf(q->cat_path, sizeof(q->cat_path), "%.2000s/%.200s/query-%d-%p-v%lld.sqlite",
		 cfg->local.dir, cfg->index.name, (int)getpid(), (void *)q, (long long)q->mf.version);
	q->st.mode = mode;
	q->st.version = q->mf.version;
	rag_strlcpy(q->st.model_version, q->mf.model.version, sizeof(q->st.model_version));
	rag_strlcpy(q->st.model_name, q->mf.model.name, sizeof(q->st.model_name));
	q->st.documents = q->mf.documents;
	q->st.chunks = q->mf.chunks;
	q->st.segments = (int64_t)q->nsegs;
	q->st.tombstone_ranges = (int64_t)q->mf.ntombstones;
	account(q);
	q->st.load_ms = rag_ms_since(t0);
	q->st.loaded_at = rag_wall_time();
	*out = q;
	return RAG_OK;
fail:
	qindex_release(q);
	return rc;
}

void qindex_retain(qindex *q)
{
	atomic_fetch_add(&q->refs, 1);
}

void qindex_release(qindex *q)
{
	if (!q || atomic_fetch_sub(&q->refs, 1) != 1)
		return;
	for (size_t i = 0; i < q->nsegs; i++) {
		vindex_free(q->segs[i].vi);
		free(q->segs[i].ptrs);
		free(q->segs[i].records);
		seg_lists_release(&q->segs[i].lists);
	}
	free(q->segs);
	embedder_free(q->model);
	manifest_release(&q->mf);
	if (q->cat) {
		char p[4300];
		catalog_close(q->cat);
		unlink(q->cat_path);
		snprintf(p, sizeof(p), "%s-wal", q->cat_path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", q->cat_path);
		unlink(p);
	}
	pthread_mutex_destroy(&q->cat_lock);
	s3_trace_release(&q->st.load_trace);
	free(q);
}

void qindex_status_get(const qindex *q, qindex_status *st)
{
	*st = q->st;
	/* counters only: the log stays with q (qindex_load_trace()) */
	st->load_trace.reqs = NULL;
	st->load_trace.nreqs = st->load_trace.cap = st->load_trace.max = 0;
}

const s3_trace *qindex_load_trace(const qindex *q)
{
	return &q->st.load_trace;
}

int64_t qindex_status_version(const qindex *q)
{
	return q->st.version;
}

const manifest *qindex_manifest(const qindex *q)
{
	return &q->mf;
}

/* ------------------------------------------------------------ searching */

typedef struct cand {
	float score;
	int64_t id;
	size_t seg;
	uint64_t rec_off;  /* object mode: from the list's record table */
	uint32_t rec_len;
} cand;

static int by_score(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

typedef struct cands {
	cand *a;
	size_t n, cap;
} cands;

static rag_rc cands_add(cands *c, const cand *x)
{
	cand *p = rag_grow(c->a, &c->cap, c->n + 1, sizeof(*c->a));

	if (!p)
		return RAG_ENOMEM;
	c->a = p;
	c->a[c->n++] = *x;
	return RAG_OK;
}

/* How many results to ask a segment for so that k survive its tombstones. */
static int seg_k(const qseg *s, int k)
{
	int64_t kk = k + s->tombstones;

	if (kk > s->mf->count)
		kk = s->mf->count;
	return kk < 1 ? 1 : (int)kk;
}

static rag_rc search_in_ram(qindex *q, const float *qv, int k, cands *out, rag_error *err)
{
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < q->nsegs && !rc; i++) {
		qseg *s = &q->segs[i];
		int kk = seg_k(s, k);
		float *scores = malloc((size_t)kk * sizeof(*scores));
		int64_t *ids = malloc((size_t)kk * sizeof(*ids));

		if (!scores || !ids)
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		else
			rc = vindex_search_with(s->vi, q->scan, qv, 1, kk, s->mf->nprobe, scores, ids,
						err);
		for (int j = 0; j < kk && !rc; j++) {
			cand c = {scores[j], ids[j], i, 0, 0};
			if (ids[j] >= 0 && !manifest_is_tombstoned(&q->mf, ids[j]) && cands_add(out, &c))
				rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		free(scores);
		free(ids);
	}
	return rc;
}

/* The list cache's key of list l of segment s (shared across versions:
 * segments are immutable). */
static uint64_t list_cache_key(const qseg *s, int list)
{
	return s->key ^ ((uint64_t)(list + 1) * 0x9E3779B97F4A7C15ull);
}

/* One probed list of object mode. */
typedef struct probe {
	size_t seg;
	int list;
	char *data;        /* the list region (from the cache or a GET) */
	size_t len;
} probe;

static rag_rc fetch_lists(qindex *q, probe *p, size_t n, s3_trace *trace, qresult *res,
			  rag_error *err)
{
	s3_get_req *reqs = calloc(n + 1, sizeof(*reqs));
	size_t *map = calloc(n + 1, sizeof(*map)), nreq = 0;
	rag_rc rc = RAG_OK;

	if (!reqs || !map) {
		free(reqs);
		free(map);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		qseg *s = &q->segs[p[i].seg];
		uint64_t off = s->lists.offsets[p[i].list], end = s->lists.offsets[p[i].list + 1];
		uint64_t key = list_cache_key(s, p[i].list);

		if (end == off)
			continue; /* an empty list costs nothing */
		if (q->caches.lists && lru_get(q->caches.lists, key, &p[i].data, &p[i].len)) {
			res->cache_hits++;
			continue;
		}
		if (q->caches.lists)
			res->cache_misses++;
		reqs[nreq].key = s->mf->obj[MF_LISTS].key;
		reqs[nreq].off = off;
		reqs[nreq].len = end - off;
		rag_buf_init(&reqs[nreq].buf, (size_t)(end - off));
		map[nreq++] = i;
	}
	if (nreq && s3_get_many(q->s3, S3_OP_BY("query.lists", trace, res->deadline_ns), reqs, nreq,
				0)) {
		for (size_t i = 0; i < nreq; i++)
			if (reqs[i].rc) {
				rc = reqs[i].rc;
				if (err)
					*err = reqs[i].err;
				break;
			}
	}
	for (size_t i = 0; i < nreq; i++) {
		probe *pr = &p[map[i]];
		if (!rc) {
			qseg *s = &q->segs[pr->seg];
			uint64_t key = list_cache_key(s, pr->list);
			if (q->caches.lists)
				lru_put(q->caches.lists, key, reqs[i].buf.data, reqs[i].buf.len);
			pr->data = rag_buf_detach(&reqs[i].buf, &pr->len);
		}
		rag_buf_release(&reqs[i].buf);
	}
	free(reqs);
	free(map);
	return rc;
}

/* Scan one segment's fetched lists and add its top kk to out. */
static rag_rc scan_segment(qindex *q, size_t si, const float *qv, int k, probe *p, size_t np,
			   cands *out, rag_error *err)
{
	qseg *s = &q->segs[si];
	int dims = q->mf.model.dims, kk = seg_k(s, k), nl = 0;
	const char **lists = calloc(np + 1, sizeof(*lists));
	size_t *lens = calloc(np + 1, sizeof(*lens));
	seg_list_view *views = calloc(np + 1, sizeof(*views));
	float *scores = malloc((size_t)kk * sizeof(*scores));
	int64_t *ids = malloc((size_t)kk * sizeof(*ids));
	rag_rc rc = RAG_OK;

	if (!lists || !lens || !views || !scores || !ids) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < np && !rc; i++) {
		if (p[i].seg != si || !p[i].data)
			continue;
		rc = segment_list_view(p[i].data, p[i].len, dims, &views[nl], err);
		lists[nl] = p[i].data;
		lens[nl] = views[nl].vec_len;
		nl++;
	}
	if (rc || nl == 0)
		goto out;
	if ((rc = vindex_scan_lists(dims, qv, lists, lens, nl, kk, scores, ids, err)))
		goto out;
	for (int j = 0; j < kk && !rc; j++) {
		cand c = {scores[j], ids[j], si, 0, 0};
		bool found = false;
		if (ids[j] < 0 || manifest_is_tombstoned(&q->mf, ids[j]))
			continue;
		/* where its record is: the list that holds it says */
		for (int l = 0; l < nl && !found; l++) {
			int64_t m = seg_list_find(&views[l], ids[j]);
			if (m >= 0) {
				seg_list_record(&views[l], (uint32_t)m, &c.rec_off, &c.rec_len);
				found = true;
			}
		}
		if (!found)
			rc = rag_error_set(err, RAG_ECORRUPT, "segment \"%s\": hit %lld in no list",
					   s->mf->id, (long long)ids[j]);
		else if (cands_add(out, &c))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
out:
	free(lists);
	free(lens);
	free(views);
	free(scores);
	free(ids);
	return rc;
}

static rag_rc search_object(qindex *q, const float *qv, int k, cands *out, qresult *res,
			    rag_error *err)
{
	size_t np = 0, cap = 0;
	probe *p = NULL;
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < q->nsegs; i++)
		cap += (size_t)q->segs[i].mf->nprobe < (size_t)q->segs[i].lists.nlist
			       ? (size_t)q->segs[i].mf->nprobe : (size_t)q->segs[i].lists.nlist;
	if (!(p = calloc(cap + 1, sizeof(*p))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	for (size_t i = 0; i < q->nsegs && !rc; i++) {
		qseg *s = &q->segs[i];
		int nprobe = s->mf->nprobe < s->lists.nlist ? s->mf->nprobe : s->lists.nlist;
		int *lists = malloc((size_t)nprobe * sizeof(*lists));
		if (!lists) {
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
			break;
		}
		rc = vindex_probe_lists(s->lists.centroids, s->lists.nlist, s->lists.dims, qv, nprobe,
					lists, err);
		for (int j = 0; j < nprobe && !rc; j++)
			if (lists[j] >= 0)
				p[np++] = (probe){i, lists[j], NULL, 0};
		free(lists);
	}
	/* all probed lists of all segments in one parallel batch */
	if (!rc)
		rc = fetch_lists(q, p, np, &res->trace, res, err);
	for (size_t i = 0; i < q->nsegs && !rc; i++)
		rc = scan_segment(q, i, qv, k, p, np, out, err);
	for (size_t i = 0; i < np; i++)
		free(p[i].data);
	free(p);
	return rc;
}

/* ------------------------------------------------------------- fetching */

static uint64_t rec_cache_key(const qseg *s, uint64_t rec_off)
{
	return s->key ^ (rec_off * 0xD6E8FEB86659FD93ull + 1);
}

static rag_rc fill_hit(qhit *h, const char *rec, size_t len, int64_t want, rag_error *err)
{
	seg_record r;
	rag_rc rc = segment_parse_record(rec, len, &r, err);

	if (rc)
		return rc;
	if (r.id != want) {
		seg_record_release(&r);
		return rag_error_set(err, RAG_ECORRUPT, "chunk record says %lld, expected %lld",
				     (long long)r.id, (long long)want);
	}
	h->chunk_id = r.id;
	h->key = r.key;
	h->heading = r.heading;
	h->ordinal = r.ordinal;
	h->off = r.off;
	h->len = r.len;
	h->page = r.page;
	h->page_end = r.page_end;
	h->src_off = r.src_off;
	h->src_end = r.src_end;
	h->text = rag_strndup(r.text, r.text_len);
	h->text_len = r.text_len;
	return h->text ? RAG_OK : rag_error_set(err, RAG_ENOMEM, "out of memory");
}

static rag_rc fetch_records(qindex *q, const cand *top, int n, qresult *res, rag_error *err)
{
	s3_get_req *reqs = calloc((size_t)n + 1, sizeof(*reqs));
	int *map = calloc((size_t)n + 1, sizeof(*map)), nreq = 0;
	rag_rc rc = RAG_OK;

	if (!reqs || !map) {
		free(reqs);
		free(map);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	for (int i = 0; i < n && !rc; i++) {
		qseg *s = &q->segs[top[i].seg];
		uint64_t off = top[i].rec_off;
		uint32_t len = top[i].rec_len;
		char *data;
		size_t dlen;

		if (!q->row->dense_from_lists) {   /* else the list entry carried it */
			const seg_ptr *ptr = segment_find_ptr(s->ptrs, s->nptrs, top[i].id);
			if (!ptr) {
				rc = rag_error_set(err, RAG_ECORRUPT, "segment \"%s\": no pointer for %lld",
						   s->mf->id, (long long)top[i].id);
				break;
			}
			off = ptr->rec_off;
			len = ptr->rec_len;
		}
		if (q->row->records_in_ram) {
			if (off + len > s->records_len)
				rc = rag_error_set(err, RAG_ECORRUPT, "segment \"%s\": record out of range",
						   s->mf->id);
			else
				rc = fill_hit(&res->hits[i], s->records + off, len, top[i].id, err);
			continue;
		}
		if (q->caches.text &&
		    lru_get(q->caches.text, rec_cache_key(s, off), &data, &dlen)) {
			res->cache_hits++;
			rc = fill_hit(&res->hits[i], data, dlen, top[i].id, err);
			free(data);
			continue;
		}
		if (q->caches.text)
			res->cache_misses++;
		reqs[nreq].key = s->mf->obj[MF_CHUNKS].key;
		reqs[nreq].off = off;
		reqs[nreq].len = len;
		rag_buf_init(&reqs[nreq].buf, len);
		map[nreq++] = i;
	}
	if (!rc && nreq && s3_get_many(q->s3, S3_OP_BY("query.text", &res->trace, res->deadline_ns),
				       reqs, (size_t)nreq, 0)) {
		for (int i = 0; i < nreq; i++)
			if (reqs[i].rc) {
				rc = reqs[i].rc;
				if (err)
					*err = reqs[i].err;
				break;
			}
	}
	for (int i = 0; i < nreq; i++) {
		if (!rc) {
			qseg *s = &q->segs[top[map[i]].seg];
			if (q->caches.text)
				lru_put(q->caches.text, rec_cache_key(s, reqs[i].off), reqs[i].buf.data,
					reqs[i].buf.len);
			rc = fill_hit(&res->hits[map[i]], reqs[i].buf.data, reqs[i].buf.len,
				      top[map[i]].id, err);
		}
		rag_buf_release(&reqs[i].buf);
	}
	free(reqs);
	free(map);
	return rc;
}

/* ---------------------------------------------------------------- bm25 */

/* The catalog snapshot of this version, downloaded on first use (the
 * query that triggers it carries the cost in its trace). Call locked. */
static rag_rc need_catalog(qindex *q, qresult *res, rag_error *err)
{
	char dir[4200], *slash;
	rag_rc rc;

	if (q->cat)
		return RAG_OK;
	rag_strlcpy(dir, q->cat_path, sizeof(dir));
	if ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++)
			if (*p == '/') {
				*p = '\0';
				mkdir_quiet(dir);
				*p = '/';
			}
		mkdir_quiet(dir);
	}
	if ((rc = s3_get_file(q->s3, S3_OP("query.catalog", &res->trace), q->mf.catalog.key,
			      q->cat_path, NULL, err)))
		return rc;
	return catalog_open(q->cat_path, &q->cat, err);
}

static rag_rc bm25_candidates(qindex *q, const char *text, int depth, cands *out,
			      qresult *res, rag_error *err)
{
	int64_t *ids = malloc((size_t)depth * sizeof(*ids));
	double *scores = malloc((size_t)depth * sizeof(*scores));
	int n = 0;
	rag_rc rc;

	if (!ids || !scores) {
		free(ids);
		free(scores);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&q->cat_lock);
	rc = need_catalog(q, res, err);
	if (!rc)
		rc = catalog_search_bm25(q->cat, text, depth, ids, scores, &n, err);
	pthread_mutex_unlock(&q->cat_lock);
	for (int i = 0; i < n && !rc; i++) {
		cand c = {(float)scores[i], ids[i], 0, 0, 0};
		if (cands_add(out, &c))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	free(ids);
	free(scores);
	return rc;
}

/* Hits from the catalog (bm25 and hybrid answers). */
static rag_rc fill_from_catalog(qindex *q, const cand *top, int n, qresult *res, rag_error *err)
{
	rag_rc rc = RAG_OK;

	pthread_mutex_lock(&q->cat_lock);
	for (int i = 0; i < n && !rc; i++) {
		cat_chunk_out o;
		qhit *h = &res->hits[i];
		if ((rc = catalog_chunk_get(q->cat, top[i].id, &o, err)))
			break;
		h->key = o.key;
		h->heading = o.heading;
		h->text = o.text;
		h->text_len = o.text_len;
		h->ordinal = o.ordinal;
		h->off = o.off;
		h->len = o.len;
		h->page = o.page;
		h->page_end = o.page_end;
		h->src_off = o.src_off;
		h->src_end = o.src_end;
	}
	pthread_mutex_unlock(&q->cat_lock);
	return rc;
}

static int by_id(const void *a, const void *b)
{
	const cand *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Fusion of the dense and bm25 lists. rrf: score = sum of 1 / (rrf_k + rank)
 * (ranks 1-based). zscore: each list's scores are standardised over that
 * list (mean 0, deviation 1) and combined as w * dense + (1 - w) * bm25; a
 * chunk missing from a list gets that list's lowest standardised score.
 * Either way the two scales never need comparing directly.
 */
static void standardise(const cands *l, double *mean, double *sd, double *floor_z)
{
	double s = 0, ss = 0, lo = 0;

	for (size_t i = 0; i < l->n; i++) {
		s += l->a[i].score;
		ss += (double)l->a[i].score * l->a[i].score;
	}
	*mean = l->n ? s / (double)l->n : 0;
	*sd = l->n > 1 ? sqrt(fmax(ss / (double)l->n - *mean * *mean, 0)) : 0;
	if (*sd < 1e-9)
		*sd = 1;
	for (size_t i = 0; i < l->n; i++)
		if (i == 0 || (l->a[i].score - *mean) / *sd < lo)
			lo = (l->a[i].score - *mean) / *sd;
	*floor_z = lo;
}

static rag_rc fuse(const qindex *q, const cands *dense, const cands *bm25, cands *out)
{
	double mean[2], sd[2], floor_z[2], w[2] = {q->weight, 1 - q->weight};
	rag_rc rc = RAG_OK;

	standardise(dense, &mean[0], &sd[0], &floor_z[0]);
	standardise(bm25, &mean[1], &sd[1], &floor_z[1]);
	for (int pass = 0; pass < 2 && !rc; pass++) {
		const cands *l = pass ? bm25 : dense;
		for (size_t i = 0; i < l->n && !rc; i++) {
			cand c = l->a[i];
			if (q->zscore)
				/* the other list's floor is added here and taken back if present */
				c.score = (float)(w[pass] * ((l->a[i].score - mean[pass]) / sd[pass]) +
						  w[1 - pass] * floor_z[1 - pass]);
			else
				c.score = (float)(1.0 / (q->rrf_k + (double)(i + 1)));
			rc = cands_add(out, &c);
		}
	}
	if (rc || out->n == 0)
		return rc;
	/* merge duplicates: a chunk in both lists sums its two contributions */
	qsort(out->a, out->n, sizeof(*out->a), by_id);
	size_t n = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (n && out->a[n - 1].id == out->a[i].id) {
			out->a[n - 1].score += out->a[i].score;
			if (q->zscore) /* both floors were added: take them back */
				out->a[n - 1].score -= (float)(w[0] * floor_z[0] + w[1] * floor_z[1]);
		} else {
			out->a[n++] = out->a[i];
		}
	}
	out->n = n;
	return RAG_OK;
}

/* ---------------------------------------------------------------- query */

/* Where a hit stood in each retriever's list (1-based; 0: not in it). */
static void explain_hit(qhit *h, const cands *dense, const cands *bm25)
{
	for (size_t i = 0; i < dense->n && !h->dense_rank; i++)
		if (dense->a[i].id == h->chunk_id) {
			h->dense_rank = (int)i + 1;
			h->dense_score = dense->a[i].score;
		}
	for (size_t i = 0; i < bm25->n && !h->bm25_rank; i++)
		if (bm25->a[i].id == h->chunk_id) {
			h->bm25_rank = (int)i + 1;
			h->bm25_score = bm25->a[i].score;
		}
}

static rag_rc dense_candidates(qindex *q, const float *qv, int depth, cands *out, qresult *res,
			       rag_error *err)
{
	rag_rc rc = q->row->dense_from_lists ? search_object(q, qv, depth, out, res, err)
					    : search_in_ram(q, qv, depth, out, err);

	if (!rc)
		qsort(out->a, out->n, sizeof(*out->a), by_score);
	if (!rc && out->n > (size_t)depth)
		out->n = (size_t)depth;
	return rc;
}

rag_rc qindex_query(qindex *q, const char *text, size_t len, int k, qretriever r,
		    qresult *res, rag_error *err)
{
	return qindex_query_by(q, text, len, k, r, 0, res, err);
}

rag_rc qindex_query_by(qindex *q, const char *text, size_t len, int k, qretriever r,
		       uint64_t deadline_ns, qresult *res, rag_error *err)
{
	return qindex_query_filtered(q, text, len, k, r, NULL, deadline_ns, res, err);
}

/* ------------------------------------------------------------- filters */

static bool filter_active(const qfilter *f)
{
	return f && ((f->prefix && *f->prefix) || f->ntypes > 0);
}

/* The chunk ids f allows, ascending, from the catalog snapshot. */
static rag_rc filter_ids(qindex *q, const qfilter *f, qresult *res, int64_t **ids, size_t *n,
			 rag_error *err)
{
	rag_rc rc;

	pthread_mutex_lock(&q->cat_lock);
	rc = need_catalog(q, res, err);
	if (!rc)
		rc = catalog_chunk_ids_matching(q->cat, f->prefix, f->types, f->ntypes, ids, n, err);
	pthread_mutex_unlock(&q->cat_lock);
	return rc;
}

typedef struct idset {
	const int64_t *ids;  /* ascending */
	size_t n;
} idset;

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Keep only the candidates in allow, in their order. */
static void restrict_to(cands *c, const idset *allow)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		if (bsearch(&c->a[i].id, allow->ids, allow->n, sizeof(*allow->ids), cmp_i64))
			c->a[n++] = c->a[i];
	c->n = n;
}

/* Every vector the segments hold (live or not): a depth that misses nothing. */
static int all_depth(const qindex *q)
{
	int64_t n = 0;

	for (size_t i = 0; i < q->nsegs; i++)
		n += q->segs[i].mf->count;
	return n < 1 ? 1 : n > INT32_MAX / 8 ? INT32_MAX / 8 : (int)n;
}

/*
 * The dense (qv) or bm25 (z) candidates in allow: the unfiltered search at
 * a growing depth, restricted, until k survive or the search returns fewer
 * than it was asked for (nothing deeper). Both rankings are prefixes of one
 * another across depths, so the result is the unfiltered ranking restricted.
 * Object mode starts at the full depth: one fetch of its probed lists.
 */
static rag_rc widen(qindex *q, const float *qv, const char *z, int k, const idset *allow,
		    cands *out, qresult *res, rag_error *err)
{
	int total = all_depth(q), depth = k * 4 > 64 ? k * 4 : 64;
	rag_rc rc;

	if (q->row->dense_from_lists && qv)
		depth = total;
	for (;;) {
		size_t got;
		out->n = 0;
		rc = qv ? dense_candidates(q, qv, depth, out, res, err)
			: bm25_candidates(q, z, depth, out, res, err);
		if (rc)
			return rc;
		got = out->n;
		restrict_to(out, allow);
		if (out->n >= (size_t)k || got < (size_t)depth || depth >= total)
			return RAG_OK;
		depth = depth > total / 4 ? total : depth * 4;
	}
}

rag_rc qindex_query_filtered(qindex *q, const char *text, size_t len, int k, qretriever r,
			     const qfilter *f, uint64_t deadline_ns, qresult *res, rag_error *err)
{
	int64_t *allow_ids = NULL;
	idset allow = {NULL, 0};
	bool filtered = filter_active(f);
	int dims = q->mf.model.dims, n, depth;
	float *qv = malloc((size_t)dims * sizeof(*qv));
	cands dense = {0}, lex = {0}, fused = {0}, *final = &dense;
	uint64_t t0 = rag_now_ns(), t;
	float norm = 0;
	rag_rc rc = RAG_OK;

	memset(res, 0, sizeof(*res));
	res->deadline_ns = deadline_ns;
	res->version = q->mf.version;
	rag_strlcpy(res->model_version, q->mf.model.version, sizeof(res->model_version));
	res->mode = q->mode;
	res->retriever = r;
	if (!qv)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if (k < 1 || k > 1000) {
		free(qv);
		return rag_error_set(err, RAG_EINVAL, "k must be in 1..1000 (got %d)", k);
	}
	/* every storage request of this query, for the per-object trace */
	s3_trace_log_init(&res->trace, QUERY_TRACE_MAX);
	res->start_ns = t0;
	depth = r == QRET_HYBRID ? (k > q->hybrid_depth ? k : q->hybrid_depth) : k;
	if (filtered) {
		rc = filter_ids(q, f, res, &allow_ids, &allow.n, err);
		allow.ids = allow_ids;
		if (rc || allow.n == 0)
			goto matched; /* nothing can match: no search */
		if (r == QRET_HYBRID && depth < all_depth(q))
			depth = all_depth(q);
	}
	if (r != QRET_BM25) {
		t = rag_now_ns();
		rc = embedder_embed(q->model, &text, &len, 1, qv, NULL, err);
		res->embed_ms = rag_ms_since(t);
		for (int i = 0; i < dims && !rc; i++)
			norm += qv[i] * qv[i];
		t = rag_now_ns();
		/* a text without a known term is similar to nothing */
		if (!rc && norm > 0)
			rc = filtered && r == QRET_DENSE
				     ? widen(q, qv, NULL, k, &allow, &dense, res, err)
				     : dense_candidates(q, qv, depth, &dense, res, err);
		res->search_ms = rag_ms_since(t);
	}
	if (!rc && r != QRET_DENSE) {
		char *z = rag_strndup(text, len);
		t = rag_now_ns();
		rc = !z ? RAG_ENOMEM
		     : filtered && r == QRET_BM25 ? widen(q, NULL, z, k, &allow, &lex, res, err)
						  : bm25_candidates(q, z, depth, &lex, res, err);
		res->search_ms += rag_ms_since(t);
		free(z);
		final = &lex;
	}
	if (!rc && r == QRET_HYBRID) {
		rc = fuse(q, &dense, &lex, &fused);
		if (!rc)
			qsort(fused.a, fused.n, sizeof(*fused.a), by_score);
		if (!rc && filtered)
			restrict_to(&fused, &allow);
		final = &fused;
	}
matched:
	if (rc)
		goto done;
	n = final->n < (size_t)k ? (int)final->n : k;
	if (!(res->hits = calloc((size_t)n + 1, sizeof(*res->hits)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto done;
	}
	res->n = n;
	for (int i = 0; i < n; i++) {
		res->hits[i].rank = i + 1;
		res->hits[i].score = final->a[i].score;
		res->hits[i].chunk_id = final->a[i].id;
		explain_hit(&res->hits[i], &dense, &lex);
	}
	if (r == QRET_HYBRID)
		snprintf(res->fusion, sizeof(res->fusion), q->zscore ? "zscore" : "rrf");
	t = rag_now_ns();
	/* dense hits come from where the mode keeps text; the others from the catalog */
	rc = r == QRET_DENSE ? fetch_records(q, final->a, n, res, err)
			     : fill_from_catalog(q, final->a, n, res, err);
	res->fetch_ms = rag_ms_since(t);
done:
	res->total_ms = rag_ms_since(t0);
	res->storage_wall_ms = (double)s3_trace_wall_ns(&res->trace) / 1e6;
	res->cost_usd = s3_cost_usd(res->trace.kind, &q->prices);
	free(dense.a);
	free(lex.a);
	free(fused.a);
	free(qv);
	free(allow_ids);
	if (rc) {
		/* never a partial result */
		qresult_release(res);
		res->n = 0;
	}
	return rc;
}

void qresult_release(qresult *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->hits[i].key);
		free(r->hits[i].heading);
		free(r->hits[i].text);
	}
	free(r->hits);
	r->hits = NULL;
	s3_trace_release(&r->trace);
	r->n = 0;
}

/* ------------------------------------------------------------- warm-up */

#define WARM_GET_MAX (8u << 20)   /* one ranged GET of lists */
#define WARM_BATCH 256            /* record GETs between two looks at *stop */

static bool stopped(const _Atomic bool *stop)
{
	return stop && atomic_load(stop);
}

/* Fetch lists [a, b) of segment s (contiguous bytes) and cache each one. */
static rag_rc warm_list_run(qindex *q, const qseg *s, int a, int b, qwarm_progress *p,
			    rag_error *err)
{
	uint64_t off = s->lists.offsets[a], end = s->lists.offsets[b];
	s3_get_req rq = {.key = s->mf->obj[MF_LISTS].key, .off = off, .len = end - off};
	rag_rc rc;

	if (end == off) {   /* empty lists: nothing to fetch (len 0 would mean all) */
		atomic_fetch_add(&p->items, (uint64_t)(b - a));
		return RAG_OK;
	}
	rag_buf_init(&rq.buf, (size_t)(end - off));
	if ((rc = s3_get_many(q->s3, S3_OP("query.warm", NULL), &rq, 1, 1))) {
		if (err)
			*err = rq.err;
	} else if (rq.buf.len != end - off) {
		rc = rag_error_set(err, RAG_ECORRUPT, "\"%s\": short read of lists", rq.key);
	} else {
		for (int l = a; l < b; l++) {
			uint64_t lo = s->lists.offsets[l] - off, hi = s->lists.offsets[l + 1] - off;
			if (hi > lo)
				lru_put(q->caches.lists, list_cache_key(s, l), rq.buf.data + lo,
					(size_t)(hi - lo));
			atomic_fetch_add(&p->items, 1);
		}
		atomic_fetch_add(&p->bytes, end - off);
	}
	rag_buf_release(&rq.buf);
	return rc;
}

/* One list of one segment, as warm-up plans it. */
typedef struct warm_list {
	size_t seg;
	int list;
	uint64_t hits;   /* how many logged questions probe it */
} warm_list;

static int most_probed(const void *a, const void *b)
{
	const warm_list *x = a, *y = b;

	if (x->hits != y->hits)
		return x->hits < y->hits ? 1 : -1;
	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return (x->list > y->list) - (x->list < y->list);
}

static int in_place(const void *a, const void *b)
{
	const warm_list *x = a, *y = b;

	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return (x->list > y->list) - (x->list < y->list);
}

/* Count, in wl[] (every list, segment by segment), the lists each question
 * probes, as search_object() would probe them. */
static rag_rc count_probes(qindex *q, const char *const *qs, size_t nq, warm_list *wl,
			   const size_t *first, rag_error *err)
{
	int dims = q->mf.model.dims, maxp = 1;
	float *v;
	int *lists;
	size_t *lens;
	rag_rc rc = RAG_OK;

	for (size_t i = 0; i < q->nsegs; i++)
		if (q->segs[i].mf->nprobe > maxp)
			maxp = q->segs[i].mf->nprobe;
	v = malloc((size_t)dims * sizeof(*v) * (nq + 1));
	lists = malloc((size_t)maxp * sizeof(*lists));
	lens = malloc((nq + 1) * sizeof(*lens));
	if (!v || !lists || !lens) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nq; i++)
		lens[i] = strlen(qs[i]);
	if (nq && (rc = embedder_embed(q->model, qs, lens, nq, v, NULL, err)))
		goto out;
	for (size_t j = 0; j < nq && !rc; j++)
		for (size_t i = 0; i < q->nsegs && !rc; i++) {
			const qseg *s = &q->segs[i];
			int np = s->mf->nprobe < s->lists.nlist ? s->mf->nprobe : s->lists.nlist;
			rc = vindex_probe_lists(s->lists.centroids, s->lists.nlist, s->lists.dims,
						v + j * (size_t)dims, np, lists, err);
			for (int l = 0; l < np && !rc; l++)
				if (lists[l] >= 0 && lists[l] < s->lists.nlist)
					wl[first[i] + (size_t)lists[l]].hits++;
		}
out:
	free(v);
	free(lists);
	free(lens);
	return rc;
}

static rag_rc warm_lists(qindex *q, const char *const *qs, size_t nq, uint64_t budget,
			 qwarm_progress *p, const _Atomic bool *stop, rag_error *err)
{
	size_t total = 0, n = 0, *first = calloc(q->nsegs + 1, sizeof(*first));
	uint64_t planned = 0;
	warm_list *wl = NULL;
	rag_rc rc = RAG_OK;

	for (size_t i = 0; first && i < q->nsegs; i++) {
		first[i] = total;
		total += (size_t)q->segs[i].lists.nlist;
	}
	if (!first || !(wl = calloc(total + 1, sizeof(*wl)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < q->nsegs; i++)
		for (int l = 0; l < q->segs[i].lists.nlist; l++)
			wl[first[i] + (size_t)l] = (warm_list){i, l, 0};
	/* the plan: the lists the logged questions probe most, then the others
	 * in manifest order, each while it fits the budget */
	if (nq && (rc = count_probes(q, qs, nq, wl, first, err)))
		goto out;
	qsort(wl, total, sizeof(*wl), most_probed);
	for (size_t i = 0; i < total; i++) {
		const seg_lists *l = &q->segs[wl[i].seg].lists;
		uint64_t len = l->offsets[wl[i].list + 1] - l->offsets[wl[i].list];
		if (planned + len <= budget) {
			planned += len;
			wl[n++] = wl[i];
		}
	}
	atomic_store(&p->planned_items, n);
	atomic_store(&p->planned_bytes, planned);
	/* fetch in place order: runs of adjacent lists, one ranged GET each */
	qsort(wl, n, sizeof(*wl), in_place);
	for (size_t a = 0; a < n && !rc;) {
		const qseg *s = &q->segs[wl[a].seg];
		size_t b = a + 1;
		while (b < n && wl[b].seg == wl[a].seg && wl[b].list == wl[b - 1].list + 1 &&
		       s->lists.offsets[wl[b].list + 1] - s->lists.offsets[wl[a].list] <= WARM_GET_MAX)
			b++;
		if (stopped(stop)) {
			rc = rag_error_set(err, RAG_ECANCELED, "warm-up stopped");
			break;
		}
		rc = warm_list_run(q, s, wl[a].list, wl[b - 1].list + 1, p, err);
		a = b;
	}
out:
	free(first);
	free(wl);
	return rc;
}

/* The pointer of chunk id in this version, or NULL. */
static const seg_ptr *find_record(const qindex *q, int64_t id, const qseg **seg)
{
	if (manifest_is_tombstoned(&q->mf, id))
		return NULL;
	for (size_t i = 0; i < q->nsegs; i++) {
		const qseg *s = &q->segs[i];
		if (id < s->mf->first_chunk || id > s->mf->last_chunk)
			continue;
		*seg = s;
		return segment_find_ptr(s->ptrs, s->nptrs, id);
	}
	return NULL;
}

static rag_rc warm_records(qindex *q, const int64_t *hot, size_t nhot, uint64_t budget,
			   qwarm_progress *p, const _Atomic bool *stop, rag_error *err)
{
	s3_get_req *reqs = calloc(nhot + 1, sizeof(*reqs));
	const qseg **segs = calloc(nhot + 1, sizeof(*segs));
	uint64_t planned = 0;
	size_t n = 0;
	rag_rc rc = RAG_OK;

	if (!reqs || !segs) {
		free(reqs);
		free(segs);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nhot; i++) {
		const qseg *s = NULL;
		const seg_ptr *ptr = find_record(q, hot[i], &s);
		if (!ptr)
			continue;
		if (planned + ptr->rec_len > budget)
			break;
		planned += ptr->rec_len;
		segs[n] = s;
		reqs[n].key = s->mf->obj[MF_CHUNKS].key;
		reqs[n].off = ptr->rec_off;
		reqs[n].len = ptr->rec_len;
		n++;
	}
	atomic_store(&p->planned_items, n);
	atomic_store(&p->planned_bytes, planned);
	for (size_t a = 0; a < n && !rc; a += WARM_BATCH) {
		size_t b = a + WARM_BATCH < n ? a + WARM_BATCH : n;
		if (stopped(stop)) {
			rc = rag_error_set(err, RAG_ECANCELED, "warm-up stopped");
			break;
		}
		for (size_t i = a; i < b; i++)
			rag_buf_init(&reqs[i].buf, (size_t)reqs[i].len);
		if (s3_get_many(q->s3, S3_OP("query.warm", NULL), reqs + a, b - a, 0)) {
			for (size_t i = a; i < b && !rc; i++)
				if (reqs[i].rc) {
					rc = reqs[i].rc;
					if (err)
						*err = reqs[i].err;
				}
		}
		for (size_t i = a; i < b; i++) {
			if (!rc) {
				lru_put(q->caches.text, rec_cache_key(segs[i], reqs[i].off),
					reqs[i].buf.data, reqs[i].buf.len);
				atomic_fetch_add(&p->items, 1);
				atomic_fetch_add(&p->bytes, reqs[i].buf.len);
			}
			rag_buf_release(&reqs[i].buf);
		}
	}
	free(reqs);
	free(segs);
	return rc;
}

rag_rc qindex_warm(qindex *q, const qwarm_hints *h, uint64_t budget, qwarm_progress *p,
		   const _Atomic bool *stop, rag_error *err)
{
	static const qwarm_hints none;

	if (!h)
		h = &none;
	atomic_store(&p->planned_items, 0);
	atomic_store(&p->planned_bytes, 0);
	atomic_store(&p->items, 0);
	atomic_store(&p->bytes, 0);
	if (q->caches.lists)
		return warm_lists(q, h->questions, h->nquestions, budget, p, stop, err);
	if (q->caches.text)
		return warm_records(q, h->chunks, h->nchunks, budget, p, stop, err);
	return RAG_OK;
}
