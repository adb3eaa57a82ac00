/*
 * events — S3 event notifications into a queue of keys for the daemon.
 *
 * A notification body is the JSON that AWS S3, MinIO and Ceph RGW push:
 * {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
 * {"name": B}, "object": {"key": K, ...}}}, ...]}. Only the key matters: the
 * daemon HEADs each queued key and reconciles it with the catalog
 * (ingest_run_keys()), so the event's own ETag, size and even its kind are
 * hints, never trusted.
 *
 * Invariants:
 *  1. A body is accepted whole or not at all: a malformed body (not JSON,
 *     no Records array, a record without s3.object.key) queues nothing and
 *     the error names the record and field.
 *  2. A key is queued once however many events name it before it is taken
 *     (duplicates and bursts coalesce).
 *  3. Records of other buckets, of kinds other than ObjectCreated:* and
 *     ObjectRemoved:*, and keys outside the scope (prefixes, shard) are
 *     counted as ignored and never queued.
 *  4. evq_take() hands out keys no sooner than `window_ms` after the first
 *     key of a burst arrived (later ones join it), and no later than that
 *     unless the caller's deadline or stop flag ends the wait.
 *  5. Keys are read as their sender writes them: AWS S3 and MinIO
 *     URL-encode s3.object.key ('+' for a space); Ceph RGW
 *     ("eventSource": "ceph:s3") sends the raw key.
 *
 * Thread-safe: handlers post from the HTTP threads, the daemon takes.
 */
#ifndef INGEST_EVENTS_H
#define INGEST_EVENTS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"
#include "rag_scope.h"

typedef struct evq evq;

/* What one notification body did. */
typedef struct evq_posted {
	size_t records, queued, duplicates, ignored;
} evq_posted;

/* Counters since the queue was made. */
typedef struct evq_stats {
	uint64_t posts, records, queued, duplicates, ignored, rejected, taken;
	size_t waiting;        /* keys queued now */
	int64_t last_event_at; /* unix s of the last record queued, 0 if none */
} evq_stats;

/* bucket: records naming another bucket are ignored. The scope is copied. */
evq *evq_new(const char *bucket, const rag_scope *scope, rag_error *err);
void evq_free(evq *q);

/* Parse a notification body and queue its keys (invariants 1-3).
 * RAG_EINVAL with the record and field named on a malformed body. */
rag_rc evq_post(evq *q, const char *body, size_t len, evq_posted *out, rag_error *err);

/* A new bucket and scope (the daemon's configuration was reloaded): later
 * bodies are read with them; keys already queued stay (a pass ignores
 * those it no longer owns). */
rag_rc evq_reconfigure(evq *q, const char *bucket, const rag_scope *scope, rag_error *err);

/* Put keys back (a pass over them failed; they are retried with the next
 * burst). Keys are copied. */
void evq_requeue(evq *q, char *const *keys, size_t n);

/*
 * Wait for a burst (invariant 4), until deadline_ns (rag_now_ns() clock)
 * or until *stop is set (checked every 100 ms). Returns the keys taken
 * (malloc'd array of malloc'd strings, free with evq_keys_free()) and
 * their count in *n; NULL with *n = 0 when none came.
 */
char **evq_take(evq *q, unsigned window_ms, uint64_t deadline_ns, volatile sig_atomic_t *stop,
		size_t *n);
void evq_keys_free(char **keys, size_t n);

void evq_get_stats(evq *q, evq_stats *out);

/* Decode an S3 event key as AWS and MinIO send it: URL-encoded with '+'
 * for a space ("a+b%2Bc" is "a b+c"). Returns a malloc'd string, NULL on a
 * bad %-escape or when out of memory. */
char *evq_decode_key(const char *encoded);

#endif
