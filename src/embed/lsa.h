/*
 * lsa.h — the built-in model (internal to the embed module): a TF-IDF ->
 * truncated SVD (LSA) projection fitted on a corpus, and its weights object.
 *
 * The model, in order:
 *  1. Tokens: NFKC + case fold (utf8proc), split on anything that is not a
 *     letter, digit or mark, each Han/Kana character its own token, drop a
 *     small English stopword list and tokens longer than TEXT_TOKEN_MAX
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
 *     build. OpenBLAS runs single-threaded during lsa_fit().
 *  2. A model is immutable after lsa_fit()/lsa_load(): every
 *     reader may use it from any thread at once.
 *  3. Terms the model does not know (out of vocabulary) are ignored at embed
 *     time; a text with none of its terms known embeds as the zero vector.
 *     Later documents embed sensibly as long as most of their terms were in
 *     the fitting corpus (they share its vocabulary and idf).
 *  4. The weights object is self-validating: magic, format version, bounded
 *     sizes and a 64-bit checksum of everything before it. The model version
 *     is that checksum in hex, so equal versions mean equal weights.
 */
#ifndef LSA_H
#define LSA_H

#include <stddef.h>
#include <stdint.h>

#include "embed.h"
#include "rag_buf.h"
#include "rag_err.h"

#define EMBED_VOCAB_MAX 2000000
/* The weights object's file name beside the card. */
#define LSA_WEIGHTS_FILE "weights.bin"

typedef struct lsa_model lsa_model;

/*
 * Fit a model on n texts (texts[i] has lens[i] bytes, need not be
 * NUL-terminated). If the corpus has fewer documents or terms than
 * opts->dims, the model gets fewer dimensions (lsa_dims() tells).
 * opts NULL means EMBED_FIT_OPTS_DEFAULT.
 *
 * OUT *out: caller owns; free with lsa_free().
 * RAG_EINVAL: bad options, no term occurs in min_df documents, or every
 * term has weight 0 (spread evenly over all documents).
 * RAG_ENOMEM, RAG_EINTERNAL (LAPACK failed).
 * Temporarily sets OpenBLAS to one thread (process-wide) and restores it.
 */
rag_rc lsa_fit(const char *const *texts, const size_t *lens, size_t n,
		 const embed_fit_opts *opts, lsa_model **out, rag_error *err);

/* Dimensions of the embeddings. */
int lsa_dims(const lsa_model *m);

/* Borrowed strings, valid until lsa_free(). */
const char *lsa_name(const lsa_model *m);
/* 16 lowercase hex digits: the checksum of the weights object. */
const char *lsa_version(const lsa_model *m);
const char *lsa_fitted_on(const lsa_model *m);

/* Vocabulary size and number of documents the model was fitted on. */
size_t lsa_vocab_size(const lsa_model *m);
uint64_t lsa_docs(const lsa_model *m);

/*
 * Embed n texts into out (n * lsa_dims(m) floats, row i for texts[i]),
 * each L2-normalised; a text with no known term gives a zero row.
 * Thread-safe: concurrent calls on one model are fine (all scratch is per
 * call). RAG_ENOMEM; out is then undefined.
 */
rag_rc lsa_embed(const lsa_model *m, const char *const *texts,
		   const size_t *lens, size_t n, float *out, embed_stats *st, rag_error *err);

/*
 * Serialise the model: the weights object (binary, little-endian, see
 * lsa_io.c for the layout) appended to weights, and the model card (JSON:
 * name, version, dims, vocab_size, docs, fitted_on, created_at ISO-8601 UTC,
 * tokenizer, method) appended to card_json. Either buffer may be NULL.
 * RAG_ETOOBIG when a buffer's cap is too small, RAG_ENOMEM.
 */
rag_rc lsa_save(const lsa_model *m, rag_buf *weights,
			rag_buf *card_json, rag_error *err);

/*
 * Load a weights object. Every field is validated; bad magic, unknown
 * format version, truncation, trailing bytes, out-of-range sizes, duplicate
 * terms, non-finite numbers or a checksum mismatch give RAG_ECORRUPT with a
 * message saying what is wrong. OUT *out: caller owns; free with
 * lsa_free(). The created_at of the card is not part of the weights.
 */
rag_rc lsa_load(const char *data, size_t len, lsa_model **out,
			rag_error *err);

/* Free a model; NULL is a no-op. */
void lsa_free(lsa_model *m);

#endif
