#include "rag_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static unsigned parse_trace(const char *s)
{
	static const struct {
		const char *name;
		unsigned bit;
	} areas[] = {
		{"s3", RAG_TRACE_S3},         {"http", RAG_TRACE_HTTP},
		{"ingest", RAG_TRACE_INGEST}, {"query", RAG_TRACE_QUERY},
		{"index", RAG_TRACE_INDEX},
	};
	unsigned mask = 0;

	while (s && *s) {
		size_t n = strcspn(s, ",");

		if (n == 3 && strncmp(s, "all", 3) == 0)
			mask = ~0u;
		for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++)
			if (strlen(areas[i].name) == n && strncmp(s, areas[i].name, n) == 0)
				mask |= areas[i].bit;
		s += n;
		if (*s == ',')
			s++;
	}
	return mask;
}

void rag_log_init(rag_log *log, FILE *out)
{
	const char *lvl = getenv("RAGMAP_LOG");

	log->out = out ? out : stderr;
	log->level = RAG_LOG_INFO;
	for (int i = 0; lvl && i < 4; i++)
		if (strcmp(lvl, level_names[i]) == 0)
			log->level = (rag_log_level)i;
	log->trace = parse_trace(getenv("RAGMAP_TRACE"));
	if (log->trace)
		log->level = RAG_LOG_DEBUG;
	pthread_mutex_init(&log->lock, NULL);
}

void rag_log_release(rag_log *log)
{
	pthread_mutex_destroy(&log->lock);
}

void rag_log_write(rag_log *log, rag_log_level level, const char *area,
		   const char *fmt, ...)
{
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (!log)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log->lock);
	fprintf(log->out, "%s.%03ldZ %s%s%s %s\n", stamp, ts.tv_nsec / 1000000,
		level_names[level], area ? " " : "", area ? area : "", line);
	fflush(log->out);
	pthread_mutex_unlock(&log->lock);
}
