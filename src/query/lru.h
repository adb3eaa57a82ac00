/*
 * lru — a byte-bounded, thread-safe LRU cache of immutable blobs keyed by a
 * 64-bit key. Used for chunk records (cached mode) and inverted lists
 * (object mode). Segment objects never change, so entries never go stale.
 */
#ifndef LRU_H
#define LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lru lru;

/* A cache holding at most max_bytes of values. NULL when out of memory. */
lru *lru_new(size_t max_bytes);
void lru_free(lru *c);

/* Copy the value of key into a malloc'd buffer (*out, *len; caller frees).
 * Counts a hit or a miss. */
bool lru_get(lru *c, uint64_t key, char **out, size_t *len);

/* Insert a copy (values larger than the whole cache are not kept). */
void lru_put(lru *c, uint64_t key, const char *data, size_t len);

typedef struct lru_stats {
	uint64_t hits, misses, evictions;
	size_t bytes, entries, max_bytes;
} lru_stats;
void lru_get_stats(lru *c, lru_stats *st);

#endif
