/*
 * text_map.c — a string -> int32 map with open addressing and one key arena.
 */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

#define MAP_MIN_CAP 64

void text_map_init(text_map *mp, size_t max_keys)
{
	memset(mp, 0, sizeof(*mp));
	mp->max_keys = max_keys;
}

void text_map_release(text_map *mp)
{
	free(mp->slots);
	free(mp->arena);
	memset(mp, 0, sizeof(*mp));
}

static uint32_t key_hash(const char *key, size_t len)
{
	uint64_t h = rag_fnv1a(RAG_FNV_INIT, key, len);

	return (uint32_t)(h ^ (h >> 32));
}

/* The slot holding key, or the empty slot where it would go. */
static text_map_slot *find_slot(const text_map *mp, const char *key,
				 size_t len, uint32_t h)
{
	size_t mask = mp->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		text_map_slot *s = &mp->slots[i];
		if (!s->len)
			return s;
		if (s->hash == h && s->len == len &&
		    memcmp(mp->arena + s->off, key, len) == 0)
			return s;
	}
}

int32_t text_map_get(const text_map *mp, const char *key, size_t len)
{
	const text_map_slot *s;

	if (!mp->cap || !len)
		return -1;
	s = find_slot(mp, key, len, key_hash(key, len));
	return s->len ? s->value : -1;
}

size_t text_map_find_off(const text_map *mp, const char *key, size_t len)
{
	const text_map_slot *s;

	if (!mp->cap || !len)
		return SIZE_MAX;
	s = find_slot(mp, key, len, key_hash(key, len));
	return s->len ? s->off : SIZE_MAX;
}

static rag_rc grow_slots(text_map *mp)
{
	size_t cap = mp->cap ? mp->cap * 2 : MAP_MIN_CAP;
	text_map_slot *old = mp->slots, *slots = calloc(cap, sizeof(*slots));
	size_t oldcap = mp->cap;

	if (!slots)
		return RAG_ENOMEM;
	mp->slots = slots;
	mp->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].len)
			continue;
		text_map_slot *s = &slots[old[i].hash & (cap - 1)];
		while (s->len)
			s = s + 1 < slots + cap ? s + 1 : slots;
		*s = old[i];
	}
	free(old);
	return RAG_OK;
}

static rag_rc arena_add(text_map *mp, const char *key, size_t len, size_t *off)
{
	if (mp->arena_len + len + 1 > mp->arena_cap) {
		size_t cap = mp->arena_cap ? mp->arena_cap : 1024;
		while (cap < mp->arena_len + len + 1)
			cap *= 2;
		char *p = realloc(mp->arena, cap);
		if (!p)
			return RAG_ENOMEM;
		mp->arena = p;
		mp->arena_cap = cap;
	}
	*off = mp->arena_len;
	memcpy(mp->arena + mp->arena_len, key, len);
	mp->arena[mp->arena_len + len] = '\0';
	mp->arena_len += len + 1;
	return RAG_OK;
}

rag_rc text_map_put(text_map *mp, const char *key, size_t len,
		     int32_t value, int32_t *value_out)
{
	uint32_t h = key_hash(key, len);
	text_map_slot *s;
	size_t off;
	rag_rc rc;

	if (!len || len > UINT32_MAX)
		return RAG_EINVAL;
	if (mp->cap) {
		s = find_slot(mp, key, len, h);
		if (s->len) {
			if (value_out)
				*value_out = s->value;
			return RAG_OK;
		}
	}
	if (mp->count >= mp->max_keys)
		return RAG_ETOOBIG;
	/* keep the load factor at most 1/2 */
	if ((mp->count + 1) * 2 > mp->cap && (rc = grow_slots(mp)))
		return rc;
	if ((rc = arena_add(mp, key, len, &off)))
		return rc;
	s = find_slot(mp, key, len, h);
	s->hash = h;
	s->len = (uint32_t)len;
	s->off = off;
	s->value = value;
	mp->count++;
	if (value_out)
		*value_out = value;
	return RAG_OK;
}

