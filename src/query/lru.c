#include "lru.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	uint64_t key;
	char *data;
	size_t len;
	struct entry *prev, *next; /* recency list, most recent first */
	struct entry *hnext;       /* hash chain */
} entry;

struct lru {
	pthread_mutex_t lock;
	entry **buckets;
	size_t nbuckets;
	entry *head, *tail;
	lru_stats st;
};

static size_t bucket_of(const lru *c, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)(key & (c->nbuckets - 1));
}

lru *lru_new(size_t max_bytes)
{
	lru *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = 4096;
	if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets)))) {
		free(c);
		return NULL;
	}
	c->st.max_bytes = max_bytes;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void lru_free(lru *c)
{
	if (!c)
		return;
	for (entry *e = c->head, *n; e; e = n) {
		n = e->next;
		free(e->data);
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void unlink_recency(lru *c, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(lru *c, entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static entry *find(lru *c, uint64_t key, entry ***slot)
{
	entry **p = &c->buckets[bucket_of(c, key)];

	while (*p && (*p)->key != key)
		p = &(*p)->hnext;
	if (slot)
		*slot = p;
	return *p;
}

static void evict_one(lru *c)
{
	entry *e = c->tail, **slot;

	if (!e)
		return;
	find(c, e->key, &slot);
	*slot = e->hnext;
	unlink_recency(c, e);
	c->st.bytes -= e->len;
	c->st.entries--;
	c->st.evictions++;
	free(e->data);
	free(e);
}

bool lru_get(lru *c, uint64_t key, char **out, size_t *len)
{
	entry *e;
	bool hit = false;

	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&c->lock);
	if ((e = find(c, key, NULL)) && (*out = malloc(e->len + 1))) {
		memcpy(*out, e->data, e->len);
		(*out)[e->len] = '\0';
		*len = e->len;
		unlink_recency(c, e);
		push_front(c, e);
		hit = true;
	}
	if (hit)
		c->st.hits++;
	else
		c->st.misses++;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void lru_put(lru *c, uint64_t key, const char *data, size_t len)
{
	entry *e, **slot;

	if (len > c->st.max_bytes)
		return;
	pthread_mutex_lock(&c->lock);
	if (find(c, key, &slot)) {
		pthread_mutex_unlock(&c->lock);
		return; /* immutable values: the first copy is as good */
	}
	while (c->st.bytes + len > c->st.max_bytes && c->tail)
		evict_one(c);
	if ((e = calloc(1, sizeof(*e))) && (e->data = malloc(len ? len : 1))) {
		memcpy(e->data, data, len);
		e->key = key;
		e->len = len;
		find(c, key, &slot); /* eviction may have changed the chain */
		e->hnext = *slot;
		*slot = e;
		push_front(c, e);
		c->st.bytes += len;
		c->st.entries++;
	} else {
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

void lru_get_stats(lru *c, lru_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
