/*
 * rag_scope.c — see rag_scope.h.
 */
#include "rag_scope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Drop entries that lie under (or equal) another entry (invariant 1). */
static void make_disjoint(rag_scope *s)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->nprefixes; i++) {
		bool covered = false;
		for (size_t j = 0; j < s->nprefixes && !covered; j++) {
			if (j == i || !s->prefixes[j])
				continue;
			/* an exact duplicate: keep the first copy only */
			covered = strcmp(s->prefixes[i], s->prefixes[j]) == 0
					  ? j < i
					  : has_prefix(s->prefixes[i], s->prefixes[j]);
		}
		if (covered) {
			free(s->prefixes[i]);
			s->prefixes[i] = NULL;
		}
	}
	for (size_t i = 0; i < s->nprefixes; i++)
		if (s->prefixes[i])
			s->prefixes[kept++] = s->prefixes[i];
	s->nprefixes = kept;
}

rag_rc rag_scope_init(rag_scope *s, const char *prefixes, rag_error *err)
{
	const char *p = prefixes ? prefixes : "";
	bool empty_entry = false;
	size_t entries = 0;

	memset(s, 0, sizeof(*s));
	s->shards = 1;
	for (;;) {
		const char *end = strchr(p, ','), *a = p, *b = end ? end : p + strlen(p);
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		entries++;
		if (a == b) {
			empty_entry = true;
		} else if (s->nprefixes == RAG_SCOPE_MAX_PREFIXES) {
			rag_scope_release(s);
			return rag_error_set(err, RAG_ECONFIG, "source.prefix: more than %d prefixes",
					     RAG_SCOPE_MAX_PREFIXES);
		} else if (!(s->prefixes[s->nprefixes++] = rag_strndup(a, (size_t)(b - a)))) {
			rag_scope_release(s);
			return rag_error_set(err, RAG_ENOMEM, "out of memory");
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (empty_entry && entries > 1) {
		rag_scope_release(s);
		return rag_error_set(err, RAG_ECONFIG,
				     "source.prefix: \"%s\" has an empty entry (the whole bucket) "
				     "among others", prefixes);
	}
	if (s->nprefixes == 0 && !(s->prefixes[s->nprefixes++] = rag_strdup(""))) {
		rag_scope_release(s);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	make_disjoint(s);
	return RAG_OK;
}

void rag_scope_release(rag_scope *s)
{
	for (size_t i = 0; i < s->nprefixes; i++)
		free(s->prefixes[i]);
	memset(s, 0, sizeof(*s));
}

rag_rc rag_scope_set_shard(rag_scope *s, const char *spec, rag_error *err)
{
	const char *slash = spec ? strchr(spec, '/') : NULL;
	char first[32];
	int64_t i, n;

	if (!slash || (size_t)(slash - spec) >= sizeof(first))
		goto bad;
	memcpy(first, spec, (size_t)(slash - spec));
	first[slash - spec] = '\0';
	if (!rag_parse_i64(first, &i) || !rag_parse_i64(slash + 1, &n) || n < 1 ||
	    n > RAG_SCOPE_MAX_SHARDS || i < 0 || i >= n)
		goto bad;
	s->shard = (unsigned)i;
	s->shards = (unsigned)n;
	return RAG_OK;
bad:
	return rag_error_set(err, RAG_ECONFIG,
			     "--shard: \"%s\" is not I/N with 0 <= I < N <= %d (e.g. 0/2)",
			     spec ? spec : "", RAG_SCOPE_MAX_SHARDS);
}

unsigned rag_scope_shard_of(const char *key, unsigned n)
{
	return n <= 1 ? 0 : (unsigned)(rag_fnv1a(RAG_FNV_INIT, key, strlen(key)) % n);
}

bool rag_scope_owns(const rag_scope *s, const char *key)
{
	bool under = false;

	for (size_t i = 0; i < s->nprefixes && !under; i++)
		under = has_prefix(key, s->prefixes[i]);
	return under && rag_scope_shard_of(key, s->shards) == s->shard;
}

const char *rag_scope_describe(const rag_scope *s, char *buf, size_t len)
{
	size_t at = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < s->nprefixes && at + 1 < len; i++) {
		int w = snprintf(buf + at, len - at, "%s\"%s\"", i ? ", " : "", s->prefixes[i]);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	if (s->shards > 1 && at + 1 < len)
		snprintf(buf + at, len - at, " (shard %u/%u)", s->shard, s->shards);
	return buf;
}
