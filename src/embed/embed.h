/*
 * embed — the built-in embedding model: a tokenizer, a TF-IDF -> truncated
 * SVD (LSA) projection fitted on a corpus, and its on-storage form.
 *
 * The model, in order:
 *  1. Tokens: NFKC + case fold (utf8proc), split on anything that is not a
 *     letter, digit or mark, each Han/Kana character its own token, drop a
 *     small English stopword list and tokens longer than EMBED_TOKEN_MAX
 *     bytes, then the Snowball English stemmer.
 *  2. Terms: the stems with document frequency >= min_df in the fitting
 *     corpus, at most max_vocab of them (highest df first, ties by bytes).
 *  3. A text is the sparse vector w_t = (1 + ln tf_t) * g_t over its terms,
 *     g_t the log-entropy weight of the fitting corpus (N documents):
 *     g_t = 1 + sum_d p_td ln p_td / ln N, p_td = tf_td / sum_d tf_td
 *     (1 for a term in one document, 0 for one spread evenly over all).
 *  4. Its embedding is normalise(w * P), P a (terms x dims) matrix: the top
 *     right singular vectors of the corpus' matrix of L2-normalised rows w
 *     (randomized SVD, fixed seed), column i scaled by sigma_i^(1/2).
 *     Measured on Cranfield (see tests/unit/test_embed_cranfield.c):
 *     log-entropy beat idf and sigma^0.5 beat sigma^0 and sigma^1.
 *
 * Invariants:
 *  1. Fitting is deterministic: the same texts and options give bit-identical
 *     weights (and so the same version) on the same machine and library
 *     build. OpenBLAS runs single-threaded during embed_fit().
 *  2. A model is immutable after embed_fit()/embed_model_load(): every
 *     reader may use it from any thread at once.
 *  3. Terms the model does not know (out of vocabulary) are ignored at embed
 *     time; a text with none of its terms known embeds as the zero vector.
 *     Later documents embed sensibly as long as most of their terms were in
 *     the fitting corpus (they share its vocabulary and idf).
 *  4. The weights object is self-validating: magic, format version, bounded
 *     sizes and a 64-bit checksum of everything before it. The model version
 *     is that checksum in hex, so equal versions mean equal weights.
 */
#ifndef EMBED_H
#define EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "rag_buf.h"
#include "rag_err.h"

/* Longest normalised token in bytes; longer ones are dropped. */
#define EMBED_TOKEN_MAX 64
/* Limits a model (fitted or loaded) must respect. */
#define EMBED_DIMS_MAX 4096
#define EMBED_VOCAB_MAX 2000000
#define EMBED_NAME_MAX 128
#define EMBED_FITTED_ON_MAX 1024

typedef struct embed_model embed_model;

typedef struct embed_fit_opts {
	int dims;              /* wanted dimensions; shrinks on small corpora */
	int min_df;            /* a term must occur in at least this many docs */
	int max_vocab;         /* keep at most this many terms (highest df) */
	uint64_t seed;         /* for the random test matrix */
	const char *name;      /* model name, e.g. "ragmap-lsa" */
	const char *fitted_on; /* free text for the card; may be NULL */
} embed_fit_opts;

#define EMBED_FIT_OPTS_DEFAULT \
	((embed_fit_opts){.dims = 256, .min_df = 2, .max_vocab = 50000, \
			  .seed = 42, .name = "ragmap-lsa", .fitted_on = NULL})

/*
 * Fit a model on n texts (texts[i] has lens[i] bytes, need not be
 * NUL-terminated). If the corpus has fewer documents or terms than
 * opts->dims, the model gets fewer dimensions (embed_dims() tells).
 * opts NULL means EMBED_FIT_OPTS_DEFAULT.
 *
 * OUT *out: caller owns; free with embed_model_free().
 * RAG_EINVAL: bad options, no term occurs in min_df documents, or every
 * term has weight 0 (spread evenly over all documents).
 * RAG_ENOMEM, RAG_EINTERNAL (LAPACK failed).
 * Temporarily sets OpenBLAS to one thread (process-wide) and restores it.
 */
rag_rc embed_fit(const char *const *texts, const size_t *lens, size_t n,
		 const embed_fit_opts *opts, embed_model **out, rag_error *err);

/* Dimensions of the embeddings. */
int embed_dims(const embed_model *m);

/* Borrowed strings, valid until embed_model_free(). */
const char *embed_model_name(const embed_model *m);
/* 16 lowercase hex digits: the checksum of the weights object. */
const char *embed_model_version(const embed_model *m);
const char *embed_model_fitted_on(const embed_model *m);

/* Vocabulary size and number of documents the model was fitted on. */
size_t embed_model_vocab_size(const embed_model *m);
uint64_t embed_model_docs(const embed_model *m);

/*
 * Embed n texts into out (n * embed_dims(m) floats, row i for texts[i]),
 * each L2-normalised; a text with no known term gives a zero row.
 * Thread-safe: concurrent calls on one model are fine (all scratch is per
 * call). RAG_ENOMEM; out is then undefined.
 */
rag_rc embed_texts(const embed_model *m, const char *const *texts,
		   const size_t *lens, size_t n, float *out, rag_error *err);

/*
 * Serialise the model: the weights object (binary, little-endian, see
 * embed_io.c for the layout) appended to weights, and the model card (JSON:
 * name, version, dims, vocab_size, docs, fitted_on, created_at ISO-8601 UTC,
 * tokenizer, method) appended to card_json. Either buffer may be NULL.
 * RAG_ETOOBIG when a buffer's cap is too small, RAG_ENOMEM.
 */
rag_rc embed_model_save(const embed_model *m, rag_buf *weights,
			rag_buf *card_json, rag_error *err);

/*
 * Load a weights object. Every field is validated; bad magic, unknown
 * format version, truncation, trailing bytes, out-of-range sizes, duplicate
 * terms, non-finite numbers or a checksum mismatch give RAG_ECORRUPT with a
 * message saying what is wrong. OUT *out: caller owns; free with
 * embed_model_free(). The created_at of the card is not part of the weights.
 */
rag_rc embed_model_load(const char *data, size_t len, embed_model **out,
			rag_error *err);

/* Free a model; NULL is a no-op. */
void embed_model_free(embed_model *m);

/*
 * The tokenizer (steps 1 above), exposed so BM25 uses the same one: calls
 * fn(ctx, tok, len) for each normalised, stemmed, non-stopword token in
 * order. tok is borrowed for the call only and is NUL-terminated. Invalid
 * UTF-8 bytes act as separators. Thread-safe; never fails (if the stemmer
 * cannot be allocated, tokens are passed on unstemmed).
 */
typedef void (*embed_token_fn)(void *ctx, const char *tok, size_t len);
void embed_tokenize(const char *text, size_t len, embed_token_fn fn, void *ctx);

#endif
