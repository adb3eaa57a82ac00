/*
 * rag_scope — which source keys one ingestion process owns: the keys under one
 * of the index's source prefixes (source.prefix, a comma-separated list)
 * that fall into its shard (`--shard I/N`).
 *
 * Invariants:
 *  1. Prefixes are disjoint after parsing: a prefix that lies under another
 *     one is dropped (its keys are the other's), and duplicates go; so a
 *     key is listed at most once and belongs to exactly one prefix.
 *  2. The shard of a key is FNV-1a(key) mod N. It depends on the key's
 *     bytes only, so every worker, on every machine and in every version
 *     of ragmap, agrees on it; with N = 1 every key is in shard 0.
 *  3. A process fetches, indexes and tombstones only keys it owns: objects
 *     of other prefixes and other shards are never touched, so ingesting
 *     one prefix or shard never tombstones another's documents.
 */
#ifndef RAG_SCOPE_H
#define RAG_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "rag_err.h"

#define RAG_SCOPE_MAX_PREFIXES 64
#define RAG_SCOPE_MAX_SHARDS 4096

typedef struct rag_scope {
	char *prefixes[RAG_SCOPE_MAX_PREFIXES]; /* owned, disjoint (invariant 1) */
	size_t nprefixes;
	unsigned shard, shards;             /* this process is shard `shard` of `shards` */
} rag_scope;

/* Parse "a/, b/" into disjoint prefixes; shard 0 of 1. An empty entry (the
 * whole bucket) is allowed only alone. RAG_ECONFIG naming source.prefix. */
rag_rc rag_scope_init(rag_scope *s, const char *prefixes, rag_error *err);
void rag_scope_release(rag_scope *s);

/* "I/N" with 0 <= I < N <= RAG_SCOPE_MAX_SHARDS; RAG_ECONFIG naming --shard. */
rag_rc rag_scope_set_shard(rag_scope *s, const char *spec, rag_error *err);

/* The shard of key among n (invariant 2). */
unsigned rag_scope_shard_of(const char *key, unsigned n);

/* Under one of the prefixes and in this shard. */
bool rag_scope_owns(const rag_scope *s, const char *key);

/* The prefixes joined by ", " (for messages), in buf. */
const char *rag_scope_describe(const rag_scope *s, char *buf, size_t len);

#endif
