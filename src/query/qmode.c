/*
 * qmode — the table of backing modes (see qmode.h).
 */
#include "qmode.h"

#include <stdio.h>
#include <string.h>

#include "manifest.h"
#include "rag_util.h"

#define LOADS(x) (1u << (x))

/* In enum order (invariant 1). */
static const qmode_row modes[QMODE_COUNT] = {
	[QMODE_MEMORY] = {.name = "memory",
			  .holds = "vectors, chunk records, pointers",
			  .reads = "nothing",
			  .loads = LOADS(MF_INDEX) | LOADS(MF_CHUNKS_IDX) | LOADS(MF_CHUNKS),
			  .records_in_ram = true},
	[QMODE_POINTER] = {.name = "pointer",
			   .holds = "vectors, pointers",
			   .reads = "one ranged GET per hit (its record)",
			   .loads = LOADS(MF_INDEX) | LOADS(MF_CHUNKS_IDX),
			   .reads_records = true},
	[QMODE_CACHED] = {.name = "cached",
			  .holds = "vectors, pointers, an LRU of records",
			  .reads = "one ranged GET per hit missing the LRU",
			  .loads = LOADS(MF_INDEX) | LOADS(MF_CHUNKS_IDX),
			  .reads_records = true,
			  .text_cache = true},
	[QMODE_OBJECT] = {.name = "object",
			  .holds = "IVF centroids, list offsets",
			  .reads = "each probed IVF list (one ranged GET), then one ranged GET per hit",
			  .loads = LOADS(MF_LISTS_IDX),
			  .reads_records = true,
			  .dense_from_lists = true,
			  .list_cache = true},
};

const qmode_row *qmode_info(qmode m)
{
	return (unsigned)m < QMODE_COUNT ? &modes[m] : NULL;
}

const char *qmode_name(qmode m)
{
	return (unsigned)m < QMODE_COUNT ? modes[m].name : "unknown";
}

bool qmode_parse(const char *s, qmode *out)
{
	for (int m = 0; s && m < QMODE_COUNT; m++)
		if (strcmp(s, modes[m].name) == 0) {
			*out = (qmode)m;
			return true;
		}
	return false;
}

const char *qmode_list(char *buf, size_t len)
{
	size_t n = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (int m = 0; m < QMODE_COUNT && n < len; m++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", m ? ", " : "", modes[m].name);
	return buf;
}

rag_rc qcaches_open(const rag_config *cfg, qmode m, qcaches *out, rag_error *err)
{
	const qmode_row *row = qmode_info(m);

	memset(out, 0, sizeof(*out));
	if (!row)
		return rag_error_set(err, RAG_EINVAL, "unknown mode %d", (int)m);
	if (row->text_cache && !(out->text = lru_new((size_t)cfg->query.cache_mb << 20)))
		goto nomem;
	if (row->list_cache && cfg->query.list_cache_mb &&
	    !(out->lists = lru_new((size_t)cfg->query.list_cache_mb << 20)))
		goto nomem;
	return RAG_OK;
nomem:
	qcaches_close(out);
	return rag_error_set(err, RAG_ENOMEM, "out of memory (the %s mode's caches)", row->name);
}

void qcaches_close(qcaches *c)
{
	if (!c)
		return;
	lru_free(c->text);
	lru_free(c->lists);
	memset(c, 0, sizeof(*c));
}
