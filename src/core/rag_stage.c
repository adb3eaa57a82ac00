/*
 * rag_stage — the list of storage stage labels (see rag_stage.h).
 */
#include "rag_stage.h"

#include <string.h>

#include "rag_util.h"

static const rag_stage stages[] = {
	{"ingest.list", RAG_STAGE_INGEST, "listing the source prefixes"},
	{"ingest.fetch", RAG_STAGE_INGEST, "reading source objects"},
	{"ingest.model", RAG_STAGE_INGEST, "reading and writing the embedding model"},
	{"ingest.segment", RAG_STAGE_INGEST, "writing segment objects"},
	{"ingest.commit", RAG_STAGE_INGEST, "the commit protocol: manifest, catalog, LATEST"},
	{"ingest.recover", RAG_STAGE_INGEST, "reading the newest version at start"},
	{"ingest.gc", RAG_STAGE_INGEST, "deleting unreferenced objects"},
	{"query.text", RAG_STAGE_QUERY, "a hit's chunk record (ranged GET)"},
	{"query.lists", RAG_STAGE_QUERY, "probed IVF lists (object mode)"},
	{"query.catalog", RAG_STAGE_QUERY, "the catalog, once, for a filtered query"},
	{"query.load", RAG_STAGE_SERVE, "loading a version at start"},
	{"query.reload", RAG_STAGE_SERVE, "polling for and loading a newer version"},
	{"query.log", RAG_STAGE_SERVE, "writing the query log"},
	{"query.map", RAG_STAGE_SERVE, "the served version's manifest, for the map"},
	{"query.warm", RAG_STAGE_SERVE, "warm-up: the query log, lists and records preloaded"},
	{"status", RAG_STAGE_TOOL, "ragmap status"},
	{"verify", RAG_STAGE_TOOL, "ragmap verify"},
	{"cost", RAG_STAGE_TOOL, "ragmap cost"},
	{"cli", RAG_STAGE_TOOL, "ragmap s3 and other CLI requests"},
	{"embed.model", RAG_STAGE_TOOL, "ragmap embed reading the index's model"},
	{"bench", RAG_STAGE_TOOL, "ragmap bench"},
	{"bench.embed", RAG_STAGE_TOOL, "ragmap bench embed"},
	{"bench.get", RAG_STAGE_TOOL, "ragmap bench s3: GETs"},
	{"bench.list", RAG_STAGE_TOOL, "ragmap bench s3: LISTs"},
};

const rag_stage *rag_stage_list(size_t *n)
{
	*n = RAG_ARRAY_LEN(stages);
	return stages;
}

const rag_stage *rag_stage_find(const char *label)
{
	for (size_t i = 0; label && i < RAG_ARRAY_LEN(stages); i++)
		if (strcmp(stages[i].label, label) == 0)
			return &stages[i];
	return NULL;
}

rag_stage_kind rag_stage_kind_of(const char *label)
{
	const rag_stage *s = rag_stage_find(label);

	return s ? s->kind : RAG_STAGE_UNLISTED;
}

const char *rag_stage_kind_name(rag_stage_kind k)
{
	static const char *const names[] = {"ingest", "query", "serve", "tool", "unlisted"};

	return (unsigned)k < RAG_ARRAY_LEN(names) ? names[k] : "unlisted";
}
