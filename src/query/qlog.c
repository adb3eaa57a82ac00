#include "qlog.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	size_t pl;

	if (!l) {
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		return NULL;
	}
	l->s3 = s3;
	l->log = log;
	l->id = (uint32_t)rag_rand64();
	pl = strlen(cfg->query.log_prefix);
	snprintf(l->prefix, sizeof(l->prefix), "%s%s", cfg->query.log_prefix,
		 pl && cfg->query.log_prefix[pl - 1] != '/' ? "/" : "");
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
