/*
 * embed.h — the embedder: the one interface between the pipeline and an
 * embedding model. Nothing outside src/embed/ knows which model is in use.
 *
 * Kinds (one table in embed.c):
 *   lsa   the built-in model, fitted on the corpus itself (lsa.h);
 *   bert  a BERT-family sentence encoder read from a Hugging Face /
 *         sentence-transformers directory (bert.h), e.g. all-MiniLM-L6-v2.
 *
 * A model is a set of named files ("card.json", "weights.bin",
 * "config.json", "1_Pooling/config.json", ...). Where they live is the
 * caller's business: embedder_open() reads them through a callback, so the
 * same code opens a local directory and a stored model object set.
 *
 * Invariants:
 *  1. An embedder is immutable once opened or fitted: embedder_embed() may
 *     run on many threads at once.
 *  2. Rows are L2-normalised; a text the model can say nothing about (LSA:
 *     no known term) embeds as the zero row.
 *  3. The version names the model's content: LSA, a checksum of its weights;
 *     an imported model, a SHA-256 prefix over its files' names and bytes.
 *     Equal versions mean equal embeddings.
 *  4. "card.json" is saved last and lists the other files, so a stored
 *     model whose card exists is complete.
 */
#ifndef EMBED_H
#define EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_buf.h"
#include "rag_err.h"

#define EMBED_DIMS_MAX 4096
#define EMBED_NAME_MAX 128
#define EMBED_FITTED_ON_MAX 1024
/* The largest model file read (a safetensors file of a base-size model). */
#define EMBED_FILE_MAX ((size_t)2 << 30)

typedef struct embedder embedder;

/*
 * Reads the model file named file (a relative name such as "config.json")
 * into out (empty, with a cap of EMBED_FILE_MAX). RAG_ENOTFOUND when the
 * file does not exist (optional files are probed); other codes abort.
 */
typedef rag_rc (*embed_read_fn)(void *ctx, const char *file, rag_buf *out, rag_error *err);
/* Writes one model file. */
typedef rag_rc (*embed_write_fn)(void *ctx, const char *file, const void *data, size_t len,
				 rag_error *err);

/*
 * Open a model. With a "card.json" the card names the kind and the files;
 * without one (a directory as Hugging Face ships it) "config.json" means a
 * BERT-family encoder. Every file is validated; errors name the file and,
 * where there is one, the tensor or field. OUT *out: caller owns; free with
 * embedder_free(). RAG_ENOTFOUND (no model there), RAG_ECORRUPT, RAG_ENOMEM.
 */
rag_rc embedder_open(embed_read_fn read, void *ctx, embedder **out, rag_error *err);

/*
 * embedder_open() on a local directory. name (may be NULL) names the model;
 * by default a card's name, else the directory's base name.
 */
rag_rc embedder_open_dir(const char *dir, const char *name, embedder **out, rag_error *err);

/*
 * Write the model's files, "card.json" last (invariant 4). A model opened
 * from a directory writes that directory's files as they are (read again
 * from it); a fitted one writes its weights. RAG_EINVAL for a model opened
 * from storage (it is stored already).
 */
rag_rc embedder_save(const embedder *e, embed_write_fn write, void *ctx, rag_error *err);

/* Free; NULL is a no-op. */
void embedder_free(embedder *e);

/* Borrowed strings, valid until embedder_free(). */
const char *embedder_kind(const embedder *e);      /* "lsa", "bert" */
const char *embedder_name(const embedder *e);
const char *embedder_version(const embedder *e);   /* 16 lowercase hex digits */
const char *embedder_fitted_on(const embedder *e); /* "" when unknown */
int embedder_dims(const embedder *e);
/* When it was fitted or imported (Unix seconds; 0 unknown). */
int64_t embedder_created_at(const embedder *e);
/* Most tokens per text (longer texts are truncated); 0: no limit. */
size_t embedder_max_tokens(const embedder *e);

/* Counts of one or more embedder_embed() calls (added to, never reset). */
typedef struct embed_stats {
	uint64_t texts;
	uint64_t truncated; /* texts cut at embedder_max_tokens() */
	uint64_t tokens;    /* tokens seen (LSA: non-stopword words) */
	uint64_t unknown;   /* of those, unknown to the model */
} embed_stats;

/*
 * Embed n texts (texts[i] has lens[i] bytes of UTF-8, need not be
 * NUL-terminated) into out: n rows of embedder_dims() floats. st may be
 * NULL. Thread-safe. RAG_ENOMEM; out is then undefined.
 */
rag_rc embedder_embed(const embedder *e, const char *const *texts, const size_t *lens,
		      size_t n, float *out, embed_stats *st, rag_error *err);

/* ---------------------------------------------------------- fitting (LSA) */

typedef struct embed_fit_opts {
	int dims;              /* wanted dimensions; shrinks on small corpora */
	int min_df;            /* a term must occur in at least this many docs;
	                        * 0 (embedder_fit only): 1 under 500 texts, else 2 */
	int max_vocab;         /* keep at most this many terms (highest df) */
	uint64_t seed;         /* for the random test matrix */
	const char *name;      /* model name, e.g. "ragmap-lsa" */
	const char *fitted_on; /* free text for the card; may be NULL */
} embed_fit_opts;

#define EMBED_FIT_OPTS_DEFAULT \
	((embed_fit_opts){.dims = 256, .min_df = 2, .max_vocab = 50000, \
			  .seed = 42, .name = "ragmap-lsa", .fitted_on = NULL})

/* True when the model is fitted on the corpus (so refitting means something). */
bool embedder_fits(const embedder *e);
/* Texts the model was fitted on (0 for one that is not fitted). */
uint64_t embedder_fit_docs(const embedder *e);

/*
 * Fit the built-in model on n texts (see lsa.h). opts NULL means
 * EMBED_FIT_OPTS_DEFAULT. RAG_EINVAL (nothing to fit on), RAG_ENOMEM,
 * RAG_EINTERNAL. Deterministic.
 */
rag_rc embedder_fit(const char *const *texts, const size_t *lens, size_t n,
		    const embed_fit_opts *opts, embedder **out, rag_error *err);

#endif
