/*
 * qmode — the backing modes of the vector DB: the one table of what each
 * mode holds, loads and reads per query, and which caches it needs.
 *
 *   mode     held in RAM                        read from storage per query
 *   memory   vectors, chunk records, pointers   nothing
 *   pointer  vectors, pointers                  one ranged GET per hit (its record)
 *   cached   vectors, pointers, LRU of records  one ranged GET per hit missing the LRU
 *   object   IVF centroids, list offsets        each probed list (one ranged GET; it
 *                                               carries its members' record pointers),
 *                                               then one ranged GET per hit
 *
 * Everything that behaves differently by mode (qindex's load and search,
 * the server, the CLI's query, eval and cost, the map and its page) asks
 * this table instead of comparing modes, so a mode's definition lives here
 * only.
 *
 * Invariants:
 *  1. qmode_info(m) is non-NULL for every m in [0, QMODE_COUNT); the table is
 *     in enum order and names are unique.
 *  2. Exactly one of records_in_ram and reads_records holds for each mode:
 *     a hit's record comes either from RAM or from storage (through the
 *     record LRU when text_cache).
 *  3. dense_from_lists modes load MF_LISTS_IDX and not the FAISS index or
 *     the pointers: their list entries carry the record pointers.
 *  4. qcaches_open() builds exactly the caches the mode's row names (the
 *     list cache only when query.list_cache_mb > 0), so every caller runs a
 *     mode the same way.
 */
#ifndef QMODE_H
#define QMODE_H

#include <stdbool.h>
#include <stddef.h>

#include "lru.h"
#include "rag_config.h"
#include "rag_err.h"

typedef enum { QMODE_MEMORY, QMODE_POINTER, QMODE_CACHED, QMODE_OBJECT, QMODE_COUNT } qmode;

typedef struct qmode_row {
	const char *name;
	const char *holds;      /* what stays in RAM, for help texts and the map */
	const char *reads;      /* what one query reads from storage */
	unsigned loads;         /* segment objects loaded at open: bit (1u << MF_*) */
	bool records_in_ram;    /* hits' records come from the loaded chunks object */
	bool reads_records;     /* hits' records are ranged GETs (stage query.text) */
	bool dense_from_lists;  /* dense search fetches the probed IVF lists (query.lists) */
	bool text_cache;        /* keeps an LRU of records (query.cache_mb) */
	bool list_cache;        /* keeps an LRU of IVF lists (query.list_cache_mb) */
} qmode_row;

/* The row of mode m (invariant 1); NULL outside the enum. */
const qmode_row *qmode_info(qmode m);
const char *qmode_name(qmode m);            /* "unknown" outside the enum */
bool qmode_parse(const char *s, qmode *out);
/* "memory, pointer, cached, object" into buf (for messages); returns buf. */
const char *qmode_list(char *buf, size_t len);

/* Caches shared across versions (records and lists are immutable). */
typedef struct qcaches {
	lru *text;   /* text_cache modes; NULL otherwise */
	lru *lists;  /* list_cache modes with query.list_cache_mb > 0; else NULL */
} qcaches;

/*
 * The caches mode m needs under cfg (invariant 4) into *out, which is
 * zeroed first. RAG_ENOMEM when a cache cannot be made (nothing is left
 * allocated).
 */
rag_rc qcaches_open(const rag_config *cfg, qmode m, qcaches *out, rag_error *err);
void qcaches_close(qcaches *c);   /* frees both caches and zeroes c; NULL ok */

#endif
