/*
 * bert.h — a BERT-family sentence encoder (internal to the embed module).
 *
 * Two parts with separate homes:
 *   bert_tok.c  BERT's tokenizer: the basic tokenizer, then WordPiece;
 *   bert_net.c  config.json + model.safetensors, and the encoder itself.
 * embed_bert.c puts them behind the embedder interface (embed.h).
 *
 * Invariants:
 *  1. The tokenizer matches Hugging Face's slow BertTokenizer (what
 *     tokenize() does, tokenize_chinese_chars on, strip_accents unset); the
 *     steps, in its order, open bert_tok.c. In short: special tokens written
 *     in the text are kept; cleaning drops NUL, U+FFFD and C* code points
 *     and splits on white space (space, \t, \r, \n, Zs, U+2028/9); CJK
 *     ideographs are words of their own (kana and Hangul are not); NFC;
 *     when lower-casing, lower case per character, NFD and drop Mn (Hangul
 *     syllables become jamo; ß, ø and ł stay); punctuation (ASCII 33-47,
 *     58-64, 91-96, 123-126 and Unicode P*; not €, ° or emoji) is split
 *     off; then WordPiece: greedy longest match, "##" continuations, no
 *     backtracking, a word of more than 100 code points or with an
 *     unmatched piece is one [UNK]. The reference test (embed_bert.sh)
 *     compares with an independent Python implementation of these rules.
 *  2. A sequence is [CLS] pieces [SEP], the pieces cut at max_len - 2 (even
 *     inside a word).
 *  3. The network is immutable once loaded; bert_net_encode() may run on
 *     many threads at once (all scratch is per call).
 *  4. Weights are stored [out, in] (PyTorch's Linear). Every matrix product
 *     goes through OpenBLAS (cblas_sgemm).
 */
#ifndef BERT_H
#define BERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"

/* ------------------------------------------------------------ tokenizer */

typedef struct bert_vocab bert_vocab;

/*
 * Parse vocab.txt (one token per line, id = line number, "\n" or "\r\n";
 * a lone "\r" ends a line too; a final line without newline counts). file
 * names the object in errors. [CLS], [SEP], [UNK] and [PAD] must be
 * present (RAG_ECORRUPT naming the missing one and the file). Duplicate
 * tokens: the last id wins, as in Hugging Face's load_vocab().
 * OUT *out: caller owns; free with bert_vocab_free().
 */
rag_rc bert_vocab_load(const char *data, size_t len, const char *file, bert_vocab **out,
		       rag_error *err);
void bert_vocab_free(bert_vocab *v);
size_t bert_vocab_size(const bert_vocab *v);
/* The id of a token, or -1. */
int32_t bert_vocab_id(const bert_vocab *v, const char *tok, size_t len);
/* The token of an id (borrowed, NUL-terminated), or NULL out of range. */
const char *bert_vocab_token(const bert_vocab *v, int32_t id);

/*
 * Tokenize text (len bytes of UTF-8; invalid bytes are dropped as in
 * cleaning) into ids[0..*n_out): [CLS] pieces [SEP] with at most max_len
 * ids (max_len >= 2). *truncated (may be NULL) tells whether pieces were
 * cut. lower: do_lower_case. Thread-safe. RAG_ENOMEM.
 */
rag_rc bert_tokenize(const bert_vocab *v, bool lower, const char *text, size_t len,
		     int32_t *ids, size_t max_len, size_t *n_out, bool *truncated,
		     rag_error *err);

/* --------------------------------------------------------------- network */

typedef struct bert_config {
	int vocab_size;
	int hidden;         /* hidden_size */
	int layers;         /* num_hidden_layers */
	int heads;          /* num_attention_heads; divides hidden */
	int intermediate;   /* intermediate_size */
	int max_positions;  /* max_position_embeddings */
	int type_vocab;     /* type_vocab_size */
	double eps;         /* layer_norm_eps */
} bert_config;

typedef struct bert_net bert_net;

/*
 * Load config.json and model.safetensors (F32 tensors used as they are,
 * F16 and BF16 converted; tensors of other dtypes, such as the I64
 * position_ids, are skipped). Tensor names may carry a "bert." prefix.
 * hidden_act must be "gelu" (exact erf GELU). Every needed tensor must be
 * present with its exact shape. Errors are RAG_ECORRUPT naming the file and,
 * where there is one, the tensor or field ("model.safetensors: tensor
 * \"encoder.layer.3.attention.self.query.weight\": shape [384, 380],
 * expected [384, 384]"); a truncated or malformed file is an error, never a
 * crash. The caller's buffers are not kept. OUT *out: caller owns.
 */
rag_rc bert_net_load(const char *config, size_t config_len, const char *st, size_t st_len,
		     bert_net **out, rag_error *err);
void bert_net_free(bert_net *net);
const bert_config *bert_net_config(const bert_net *net);

/*
 * Encode n sequences of token ids (seqs[i] has lens[i] ids, 1 <= lens[i] <=
 * max_positions, every id < vocab_size, token type 0) and pool each:
 * cls_pool ? row 0 of the last hidden state : the mean over its rows.
 * Writes n rows of config.hidden floats to out, each L2-normalised.
 * Sequences are processed in batches of similar length (no padding cost).
 * Thread-safe. RAG_EINVAL (a bad id or length), RAG_ECORRUPT (weights so
 * large the activations overflow float: only absurd files), RAG_ENOMEM.
 */
rag_rc bert_net_encode(const bert_net *net, const int32_t *const *seqs, const size_t *lens,
		       size_t n, bool cls_pool, float *out, rag_error *err);

#endif
