/*
 * qlog — the query log, the inference "bookend": every answered query is
 * buffered in memory and flushed as a JSONL object under
 * <query.log_prefix><yyyy>/<mm>/<dd>/ by a background thread, every
 * log_flush_s seconds or once log_flush_records records wait — never on the
 * query path. Its storage is counted under stage "query.log".
 */
#ifndef QLOG_H
#define QLOG_H

#include <stdint.h>

#include "rag_config.h"
#include "rag_log.h"
#include "s3.h"

typedef struct qlog qlog;

/* Start the flusher. NULL with err on failure. */
qlog *qlog_start(s3_client *s3, const rag_config *cfg, rag_log *log, rag_error *err);

/* Append one record (a JSON object, one line). Never blocks on storage. */
void qlog_append(qlog *l, const char *json_line);

/* Flush what is buffered and stop the thread. NULL is fine. */
void qlog_stop(qlog *l);

/* ---- reading the log back: what warm-up preloads in cached mode ---- */

#define QLOG_HOT_QUESTIONS 1000

typedef struct qlog_hot {
	int64_t *ids;        /* chunk ids, most often returned first (ties: smaller id) */
	uint64_t *hits;      /* how often each was returned */
	size_t n;
	char **questions;    /* the "q" of dense and hybrid records, newest log
			      * objects first, repeats kept (at most QLOG_HOT_QUESTIONS) */
	size_t nquestions;
	uint64_t objects, records;   /* log objects and records read */
} qlog_hot;

/*
 * What answers read most, from the newest log objects under
 * query.log_prefix (at most max_objects of them and max_bytes in all): the
 * chunks returned (each record's "chunks") and the questions that probed
 * IVF lists (dense and hybrid records). Lines that are not JSON, and records
 * without "chunks" (logged before it was), add no chunk. An empty log is
 * RAG_OK with nothing found. Storage under stage "query.warm". Release with
 * qlog_hot_release.
 */
rag_rc qlog_hot_chunks(s3_client *s3, const rag_config *cfg, size_t max_objects,
		       uint64_t max_bytes, qlog_hot *out, rag_error *err);
void qlog_hot_release(qlog_hot *h);

typedef struct qlog_stats {
	uint64_t appended, flushed_records, objects, dropped, failures;
} qlog_stats;
void qlog_get_stats(qlog *l, qlog_stats *st);

#endif
