/*
 * rag_log — one log sink for the whole program.
 *
 * A rag_log is passed to modules explicitly (NULL means silent). The level
 * is checked before the arguments are evaluated. Per-area traces are turned
 * on by environment: RAGMAP_TRACE=s3,http (or "all").
 *
 * Thread-safe: one line is written with a single fprintf under a lock.
 */
#ifndef RAG_LOG_H
#define RAG_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum {
	RAG_LOG_ERROR = 0,
	RAG_LOG_WARN = 1,
	RAG_LOG_INFO = 2,
	RAG_LOG_DEBUG = 3,
} rag_log_level;

typedef enum {
	RAG_TRACE_S3 = 1u << 0,
	RAG_TRACE_HTTP = 1u << 1,
	RAG_TRACE_INGEST = 1u << 2,
	RAG_TRACE_QUERY = 1u << 3,
	RAG_TRACE_INDEX = 1u << 4,
} rag_trace_area;

typedef struct rag_log {
	FILE *out;           /* borrowed; stderr by default */
	rag_log_level level;
	unsigned trace;      /* bit set of rag_trace_area */
	pthread_mutex_t lock;
} rag_log;

/* Level from RAGMAP_LOG (error|warn|info|debug), traces from RAGMAP_TRACE. */
void rag_log_init(rag_log *log, FILE *out);
void rag_log_release(rag_log *log);

void rag_log_write(rag_log *log, rag_log_level level, const char *area,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define rag_log_on(log, lvl) ((log) && (lvl) <= (log)->level)
#define rag_trace_on(log, area) ((log) && ((log)->trace & (area)))

#define RAG_LOG(log, lvl, ...)                                      \
	do {                                                        \
		if (rag_log_on(log, lvl))                           \
			rag_log_write(log, lvl, NULL, __VA_ARGS__); \
	} while (0)
#define RAG_ERROR(log, ...) RAG_LOG(log, RAG_LOG_ERROR, __VA_ARGS__)
#define RAG_WARN(log, ...) RAG_LOG(log, RAG_LOG_WARN, __VA_ARGS__)
#define RAG_INFO(log, ...) RAG_LOG(log, RAG_LOG_INFO, __VA_ARGS__)
#define RAG_DEBUG(log, ...) RAG_LOG(log, RAG_LOG_DEBUG, __VA_ARGS__)

#define RAG_TRACE(log, area, name, ...)                                   \
	do {                                                              \
		if (rag_trace_on(log, area))                              \
			rag_log_write(log, RAG_LOG_DEBUG, name, __VA_ARGS__); \
	} while (0)

#endif
