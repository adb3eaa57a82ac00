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

typedef struct qlog_stats {
	uint64_t appended, flushed_records, objects, dropped, failures;
} qlog_stats;
void qlog_get_stats(qlog *l, qlog_stats *st);

#endif
