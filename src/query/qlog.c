#include "qlog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "rag_buf.h"
#include "rag_util.h"

#define QLOG_BUFFER_MAX (64u << 20) /* past this, records are dropped (and counted) */

struct qlog {
	s3_client *s3;
	rag_log *log;
	char prefix[512];
	int64_t flush_s, flush_records;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	rag_buf buf;          /* pending JSONL */
	int64_t pending;
	bool stopping;
	uint64_t seq;
	uint32_t id;          /* tells its objects from another log's in this process
			       * (`ragmap serve` reloaded on SIGHUP has two at once) */
	qlog_stats st;
};

/* query.log_prefix with a trailing '/' (when not empty). */
static void log_prefix(const rag_config *cfg, char *buf, size_t len)
{
	size_t pl = strlen(cfg->query.log_prefix);

	snprintf(buf, len, "%s%s", cfg->query.log_prefix,
		 pl && cfg->query.log_prefix[pl - 1] != '/' ? "/" : "");
}

static void flush_now(qlog *l, rag_buf *batch, int64_t records)
{
	char key[1024], day[32];
	time_t now = time(NULL);
	struct tm tm;
	rag_error err = {0};

	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y/%m/%d", &tm);
	snprintf(key, sizeof(key), "%s%s/%lld-%d-%08x-%06llu.jsonl", l->prefix, day,
		 (long long)rag_wall_time(), (int)getpid(), (unsigned)l->id,
		 (unsigned long long)++l->seq);
	if (s3_put(l->s3, S3_OP("query.log", NULL), key, batch->data, batch->len,
		   "application/x-ndjson", NULL, &err)) {
		RAG_WARN(l->log, "query log: %s (%lld records lost)", err.msg, (long long)records);
		pthread_mutex_lock(&l->lock);
		l->st.failures++;
		l->st.dropped += (uint64_t)records;
		pthread_mutex_unlock(&l->lock);
		return;
	}
	pthread_mutex_lock(&l->lock);
	l->st.objects++;
	l->st.flushed_records += (uint64_t)records;
	pthread_mutex_unlock(&l->lock);
}

static void *flusher(void *arg)
{
	qlog *l = arg;
	rag_buf batch;

	rag_buf_init(&batch, QLOG_BUFFER_MAX);
	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += l->flush_s;
		while (!l->stopping && l->pending < l->flush_records)
			if (pthread_cond_timedwait(&l->wake, &l->lock, &until) != 0)
				break;
		if (l->pending) {
			/* swap buffers: appends go on while we upload */
			rag_buf tmp = l->buf;
			int64_t n = l->pending;
			l->buf = batch;
			batch = tmp;
			l->pending = 0;
			pthread_mutex_unlock(&l->lock);
			flush_now(l, &batch, n);
			rag_buf_reset(&batch);
			pthread_mutex_lock(&l->lock);
		}
		if (l->stopping && !l->pending)
			break;
	}
	pthread_mutex_unlock(&l->lock);
	rag_buf_release(&batch);
	return NULL;
}

qlog *qlog_start(s3_client *s3, const rag_config *cfg, rag_log *log, rag_error *err)
{
	qlog *l = calloc(1, sizeof(*l));

	if (!l) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		return NULL;
	}
	l->s3 = s3;
	l->log = log;
	l->id = (uint32_t)rag_rand64();
	log_prefix(cfg, l->prefix, sizeof(l->prefix));
	l->flush_s = cfg->query.log_flush_s;
	l->flush_records = cfg->query.log_flush_records;
	rag_buf_init(&l->buf, QLOG_BUFFER_MAX);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	if (pthread_create(&l->thread, NULL, flusher, l) != 0) {
		rag_error_set(err, RAG_EINTERNAL, "query log: cannot start its thread");
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->wake);
		free(l);
		return NULL;
	}
	return l;
}

void qlog_append(qlog *l, const char *line)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->st.appended++;
	/* reserve first so a record is appended whole or not at all */
	if (rag_buf_reserve(&l->buf, strlen(line) + 1) || rag_buf_puts(&l->buf, line) ||
	    rag_buf_putc(&l->buf, '\n')) {
		l->st.dropped++;
	} else {
		l->pending++;
		if (l->pending >= l->flush_records)
			pthread_cond_signal(&l->wake);
	}
	pthread_mutex_unlock(&l->lock);
}

void qlog_stop(qlog *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	rag_buf_release(&l->buf);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->wake);
	free(l);
}

void qlog_get_stats(qlog *l, qlog_stats *st)
{
	pthread_mutex_lock(&l->lock);
	*st = l->st;
	pthread_mutex_unlock(&l->lock);
}

/* ------------------------------------------------------------- reading */

static int newest_first(const void *a, const void *b)
{
	/* keys are <prefix>YYYY/MM/DD/<unix time>-...: later sorts greater */
	return -strcmp(((const s3_object *)a)->key, ((const s3_object *)b)->key);
}

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

typedef struct hot_pair {
	int64_t id;
	uint64_t hits;
} hot_pair;

static int most_hits(const void *a, const void *b)
{
	const hot_pair *x = a, *y = b;

	if (x->hits != y->hits)
		return x->hits < y->hits ? 1 : -1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Keep the question of a dense or hybrid record (they probe IVF lists). */
static rag_rc keep_question(json_t *rec, qlog_hot *h, rag_error *err)
{
	const char *q = json_string_value(json_object_get(rec, "q"));
	const char *r = json_string_value(json_object_get(rec, "retriever"));

	if (!q || !r || strcmp(r, "bm25") == 0 || h->nquestions >= QLOG_HOT_QUESTIONS)
		return RAG_OK;
	if (!h->questions && !(h->questions = calloc(QLOG_HOT_QUESTIONS, sizeof(char *))))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if (!(h->questions[h->nquestions] = rag_strdup(q)))
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	h->nquestions++;
	return RAG_OK;
}

/* Append every chunk id of the JSONL in buf to *ids, and keep its questions. */
static rag_rc collect_ids(const char *buf, size_t len, int64_t **ids, size_t *n, size_t *cap,
			  qlog_hot *h, rag_error *err)
{
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *rec = json_loadb(p, ll, 0, NULL), *chunks = json_object_get(rec, "chunks");
		size_t i;
		json_t *v;

		p += ll + 1;
		if (rec)
			h->records++;
		if (rec && keep_question(rec, h, err)) {
			json_decref(rec);
			return RAG_ENOMEM;
		}
		json_array_foreach(chunks, i, v) {
			if (!json_is_integer(v))
				continue;
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 1024;
				int64_t *g = realloc(*ids, nc * sizeof(*g));
				if (!g) {
					json_decref(rec);
					return rag_error_set(err, RAG_ENOMEM, "out of memory");
				}
				*ids = g;
				*cap = nc;
			}
			(*ids)[(*n)++] = (int64_t)json_integer_value(v);
		}
		json_decref(rec);
	}
	return RAG_OK;
}

rag_rc qlog_hot_chunks(s3_client *s3, const rag_config *cfg, size_t max_objects,
		       uint64_t max_bytes, qlog_hot *out, rag_error *err)
{
	char prefix[512];
	s3_list ls = {0};
	int64_t *ids = NULL;
	size_t n = 0, cap = 0, npairs = 0;
	uint64_t read = 0;
	hot_pair *pairs = NULL;
	rag_buf b;
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	log_prefix(cfg, prefix, sizeof(prefix));
	if ((rc = s3_list_objects(s3, S3_OP("query.warm", NULL), prefix, NULL, &ls, err)))
		return rc;
	qsort(ls.objects, ls.nobjects, sizeof(*ls.objects), newest_first);
	rag_buf_init(&b, (size_t)max_bytes);
	for (size_t i = 0; i < ls.nobjects && out->objects < max_objects && !rc; i++) {
		if (read + ls.objects[i].size > max_bytes)
			break;
		rag_buf_reset(&b);
		if ((rc = s3_get(s3, S3_OP("query.warm", NULL), ls.objects[i].key, &b, NULL, err)))
			break;
		read += b.len;
		out->objects++;
		rc = collect_ids(b.data, b.len, &ids, &n, &cap, out, err);
	}
	rag_buf_release(&b);
	s3_list_release(&ls);
	/* count: sort the ids, one pair per run, then most hits first */
	if (!rc && n) {
		qsort(ids, n, sizeof(*ids), by_id);
		if (!(pairs = malloc(n * sizeof(*pairs))))
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		for (size_t i = 0; !rc && i < n; i++) {
			if (npairs && pairs[npairs - 1].id == ids[i])
				pairs[npairs - 1].hits++;
			else
				pairs[npairs++] = (hot_pair){ids[i], 1};
		}
	}
	if (!rc && npairs) {
		qsort(pairs, npairs, sizeof(*pairs), most_hits);
		out->ids = malloc(npairs * sizeof(*out->ids));
		out->hits = malloc(npairs * sizeof(*out->hits));
		if (!out->ids || !out->hits)
			rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		for (size_t i = 0; !rc && i < npairs; i++) {
			out->ids[i] = pairs[i].id;
			out->hits[i] = pairs[i].hits;
		}
		if (!rc)
			out->n = npairs;
	}
	free(ids);
	free(pairs);
	if (rc)
		qlog_hot_release(out);
	return rc;
}

void qlog_hot_release(qlog_hot *h)
{
	if (!h)
		return;
	free(h->ids);
	free(h->hits);
	for (size_t i = 0; i < h->nquestions; i++)
		free(h->questions[i]);
	free(h->questions);
	memset(h, 0, sizeof(*h));
}
