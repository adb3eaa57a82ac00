/*
 * events.c — see events.h.
 */
#include "events.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rag_util.h"

struct evq {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char *bucket;
	rag_scope scope;
	/* the queued keys, in arrival order, and a hash set over them
	 * (open addressing; slots hold index + 1, 0 = empty) */
	char **keys;
	size_t nkeys, capkeys;
	size_t *slots;
	size_t nslots;         /* a power of two, > 2 * nkeys */
	uint64_t first_ns;     /* arrival of the burst's first key */
	evq_stats st;
};

/* A copy of scope in *out (released first). */
static rag_rc copy_scope(rag_scope *out, const rag_scope *scope, rag_error *err)
{
	rag_scope s = {.shard = scope->shard, .shards = scope->shards};

	for (size_t i = 0; i < scope->nprefixes; i++) {
		if (!(s.prefixes[i] = rag_strdup(scope->prefixes[i]))) {
			rag_scope_release(&s);
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		s.nprefixes++;
	}
	rag_scope_release(out);
	*out = s;
	return RAG_OK;
}

evq *evq_new(const char *bucket, const rag_scope *scope, rag_error *err)
{
	evq *q = calloc(1, sizeof(*q));

	if (!q || !(q->bucket = rag_strdup(bucket ? bucket : "")) ||
	    copy_scope(&q->scope, scope, err)) {
		if (q)
			free(q->bucket);
		free(q);
		rag_error_set(err, RAG_ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	return q;
}

rag_rc evq_reconfigure(evq *q, const char *bucket, const rag_scope *scope, rag_error *err)
{
	rag_scope s = {0};
	char *b = rag_strdup(bucket ? bucket : "");
	rag_rc rc;

	if (!b)
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	if ((rc = copy_scope(&s, scope, err))) {
		free(b);
		return rc;
	}
	pthread_mutex_lock(&q->lock);
	rag_scope_release(&q->scope);
	q->scope = s;
	free(q->bucket);
	q->bucket = b;
	pthread_mutex_unlock(&q->lock);
	return RAG_OK;
}

void evq_free(evq *q)
{
	if (!q)
		return;
	evq_keys_free(q->keys, q->nkeys);
	free(q->slots);
	free(q->bucket);
	rag_scope_release(&q->scope);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->wake);
	free(q);
}

void evq_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

/* ------------------------------------------------------------ the key set */

static size_t slot_of(const evq *q, const char *key)
{
	size_t mask = q->nslots - 1, i = rag_fnv1a(RAG_FNV_INIT, key, strlen(key)) & mask;

	while (q->slots[i] && strcmp(q->keys[q->slots[i] - 1], key) != 0)
		i = (i + 1) & mask;
	return i;
}

static bool rehash(evq *q, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return false;
	free(q->slots);
	q->slots = slots;
	q->nslots = nslots;
	for (size_t k = 0; k < q->nkeys; k++)
		q->slots[slot_of(q, q->keys[k])] = k + 1;
	return true;
}

/* Queue key (taken over) unless it is queued already (invariant 2).
 * Returns 1 if queued, 0 if a duplicate, -1 when out of memory (freed). */
static int add_key(evq *q, char *key)
{
	size_t i;
	void *p;

	if (2 * (q->nkeys + 1) >= q->nslots && !rehash(q, q->nslots ? 2 * q->nslots : 64))
		goto oom;
	i = slot_of(q, key);
	if (q->slots[i]) {
		free(key);
		return 0;
	}
	if (!(p = rag_grow(q->keys, &q->capkeys, q->nkeys + 1, sizeof(*q->keys))))
		goto oom;
	q->keys = p;
	q->keys[q->nkeys++] = key;
	q->slots[i] = q->nkeys;
	if (q->nkeys == 1)
		q->first_ns = rag_now_ns();
	return 1;
oom:
	free(key);
	return -1;
}

/* --------------------------------------------------------------- parsing */

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *evq_decode_key(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 1 < n ? hex_value(s[i + 1]) : -1,
			    lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi | lo) == 0) /* no NUL inside a key */
				goto bad;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* The kinds that change what a key holds. */
static bool kind_counts(const char *name)
{
	if (strncmp(name, "s3:", 3) == 0) /* RGW and the configuration's spelling */
		name += 3;
	return strncmp(name, "ObjectCreated:", 14) == 0 || strncmp(name, "ObjectRemoved:", 14) == 0;
}

/* One record: its key decoded in *key (NULL: ignored), or an error. */
static rag_rc parse_record(const evq *q, json_t *rec, size_t i, char **key, rag_error *err)
{
	json_t *s3 = json_object_get(rec, "s3"), *name = json_object_get(rec, "eventName"),
	       *bucket = json_object_get(json_object_get(s3, "bucket"), "name"),
	       *k = json_object_get(json_object_get(s3, "object"), "key"),
	       *source = json_object_get(rec, "eventSource");
	bool raw;

	*key = NULL;
	if (!json_is_object(rec))
		return rag_error_set(err, RAG_EINVAL, "Records[%zu] is not an object", i);
	if (!json_is_string(name))
		return rag_error_set(err, RAG_EINVAL, "Records[%zu].eventName: missing or not a string", i);
	if (!json_is_string(k))
		return rag_error_set(err, RAG_EINVAL, "Records[%zu].s3.object.key: missing or not a string",
				     i);
	if (bucket && !json_is_string(bucket))
		return rag_error_set(err, RAG_EINVAL, "Records[%zu].s3.bucket.name: not a string", i);
	if (!kind_counts(json_string_value(name)) ||
	    (bucket && strcmp(json_string_value(bucket), q->bucket) != 0))
		return RAG_OK;
	/* invariant 5: RGW sends the key as it is, AWS and MinIO encode it */
	raw = json_is_string(source) && strcmp(json_string_value(source), "ceph:s3") == 0;
	if (!(*key = raw ? rag_strdup(json_string_value(k)) : evq_decode_key(json_string_value(k))))
		return rag_error_set(err, RAG_EINVAL, "Records[%zu].s3.object.key: \"%.200s\" is not "
				     "a URL-encoded key", i, json_string_value(k));
	return RAG_OK;
}

rag_rc evq_post(evq *q, const char *body, size_t len, evq_posted *out, rag_error *err)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, 0, &je), *recs;
	char **keys = NULL;
	size_t n = 0;
	rag_rc rc = RAG_OK;

	memset(out, 0, sizeof(*out));
	if (!root) {
		rc = rag_error_set(err, RAG_EINVAL, "not JSON: %s (line %d)", je.text, je.line);
		goto count;
	}
	recs = json_object_get(root, "Records");
	if (!json_is_array(recs)) {
		rc = rag_error_set(err, RAG_EINVAL, "Records: missing or not an array");
		goto count;
	}
	out->records = json_array_size(recs);
	if (!(keys = calloc(out->records + 1, sizeof(*keys)))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto count;
	}
	/* invariant 1: parse every record before queueing any (the lock: the
	 * bucket and the scope may be reconfigured meanwhile) */
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < out->records && !rc; i++) {
		rc = parse_record(q, json_array_get(recs, i), i, &keys[n], err);
		if (keys[n])
			n++;
	}
	pthread_mutex_unlock(&q->lock);
count:
	json_decref(root);
	pthread_mutex_lock(&q->lock);
	q->st.posts++;
	if (rc) {
		q->st.rejected++;
	} else {
		q->st.records += out->records;
		out->ignored = out->records - n;
		for (size_t i = 0; i < n; i++) {
			int added;
			if (!rag_scope_owns(&q->scope, keys[i])) {
				out->ignored++;
				free(keys[i]);
				continue;
			}
			added = add_key(q, keys[i]); /* takes the key */
			if (added > 0) {
				out->queued++;
			} else if (added == 0) {
				out->duplicates++;
			} else {
				rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
				for (size_t j = i + 1; j < n; j++)
					free(keys[j]);
				break;
			}
		}
		q->st.queued += out->queued;
		q->st.duplicates += out->duplicates;
		q->st.ignored += out->ignored;
		if (out->queued) {
			q->st.last_event_at = (int64_t)time(NULL);
			pthread_cond_broadcast(&q->wake);
		}
		n = 0; /* every key was taken over or freed */
	}
	pthread_mutex_unlock(&q->lock);
	evq_keys_free(keys, n);
	return rc;
}

void evq_requeue(evq *q, char *const *keys, size_t n)
{
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < n; i++) {
		char *k = rag_strdup(keys[i]);
		if (k)
			add_key(q, k);
	}
	if (q->nkeys)
		pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

/* ------------------------------------------------------------- taking keys */

static void wait_until(evq *q, uint64_t until_ns)
{
	struct timespec ts;
	uint64_t now = rag_now_ns(), wait = until_ns > now ? until_ns - now : 0;

	if (wait > 100000000u) /* wake to look at the stop flag */
		wait = 100000000u;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(wait / 1000000000u);
	ts.tv_nsec += (long)(wait % 1000000000u);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&q->wake, &q->lock, &ts);
}

char **evq_take(evq *q, unsigned window_ms, uint64_t deadline_ns, volatile sig_atomic_t *stop,
		size_t *n)
{
	char **keys = NULL;

	*n = 0;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		uint64_t now = rag_now_ns();
		if (stop && *stop)
			break;
		if (q->nkeys && now >= q->first_ns + (uint64_t)window_ms * 1000000u) {
			keys = q->keys;
			*n = q->nkeys;
			q->st.taken += q->nkeys;
			q->keys = NULL;
			q->nkeys = q->capkeys = 0;
			memset(q->slots, 0, q->nslots * sizeof(*q->slots));
			break;
		}
		if (now >= deadline_ns)
			break;
		wait_until(q, q->nkeys ? q->first_ns + (uint64_t)window_ms * 1000000u : deadline_ns);
	}
	pthread_mutex_unlock(&q->lock);
	return keys;
}

void evq_get_stats(evq *q, evq_stats *out)
{
	pthread_mutex_lock(&q->lock);
	*out = q->st;
	out->waiting = q->nkeys;
	pthread_mutex_unlock(&q->lock);
}
