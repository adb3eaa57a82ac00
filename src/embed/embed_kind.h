/*
 * embed_kind.h — what every kind of model provides behind embed.h (internal
 * to the embed module). The table of kinds is in embed.c.
 */
#ifndef EMBED_KIND_H
#define EMBED_KIND_H

#include <jansson.h>

#include "embed.h"

typedef struct embed_kind {
	const char *name; /* "lsa", "bert" */
	/*
	 * Fill e (impl, dims, name, version, ...) from the model's files.
	 * card is the parsed card.json, or NULL for a bare directory. The
	 * generic layer fills in what the card says after this returns.
	 */
	rag_rc (*open)(embedder *e, embed_read_fn read, void *ctx, const json_t *card,
		       rag_error *err);
	rag_rc (*embed)(const embedder *e, const char *const *texts, const size_t *lens,
			size_t n, float *out, embed_stats *st, rag_error *err);
	/* Write every file but the card, and append the card's JSON to card. */
	rag_rc (*save)(const embedder *e, embed_write_fn write, void *ctx, rag_buf *card,
		       rag_error *err);
	void (*free)(void *impl);
} embed_kind;

struct embedder {
	const embed_kind *kind;
	void *impl;
	int dims;
	size_t max_tokens;
	int64_t created_at;
	uint64_t fit_docs;
	char name[EMBED_NAME_MAX];
	char version[17];
	char fitted_on[EMBED_FITTED_ON_MAX];
	char *dir; /* the local directory it was opened from, or NULL */
};

extern const embed_kind embed_kind_lsa;
extern const embed_kind embed_kind_bert;

/* Read a file whole into a fresh buffer (cap EMBED_FILE_MAX); the caller releases it. */
rag_rc embed_read_all(embed_read_fn read, void *ctx, const char *file, rag_buf *out,
		      rag_error *err);
/* Read a file of the local directory e was opened from; RAG_EINVAL if none. */
rag_rc embed_dir_read(const embedder *e, const char *file, rag_buf *out, rag_error *err);
/* Parse a JSON model file; errors name it. */
rag_rc embed_parse_json(const rag_buf *b, const char *file, json_t **out, rag_error *err);

#endif
