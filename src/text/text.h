/*
 * text.h — words for search: the tokenizer BM25 and the built-in LSA model
 * share, and the string map both use.
 *
 * BM25 depends on this unit, never on the embedding model, so changing the
 * model (embed.h) never changes BM25's tokens.
 *
 * Invariants:
 *  1. A token is a maximal run of letters, digits and marks after NFKC +
 *     case folding (default ignorables removed); each Han/Kana character is
 *     a token of its own; invalid UTF-8 bytes separate.
 *  2. Stopwords (a small English list) and tokens longer than TEXT_TOKEN_MAX
 *     bytes are dropped; the rest are stemmed (Snowball English).
 *  3. Everything here is thread-safe (per-call or per-thread state only).
 */
#ifndef TEXT_H
#define TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"

/* Longest normalised token in bytes; longer ones are dropped. */
#define TEXT_TOKEN_MAX 64

/*
 * The tokenizer (invariants 1-2): calls fn(ctx, tok, len) for each
 * normalised, stemmed, non-stopword token in order. tok is borrowed for the call only and is NUL-terminated. Invalid
 * UTF-8 bytes act as separators. Thread-safe; never fails (if the stemmer
 * cannot be allocated, tokens are passed on unstemmed).
 */
typedef void (*text_token_fn)(void *ctx, const char *tok, size_t len);
void text_tokenize(const char *text, size_t len, text_token_fn fn, void *ctx);

/* ------------------------------------------------------- string -> int32 */

typedef struct text_map_slot {
	uint32_t hash;  /* low 32 bits of the key's hash */
	uint32_t len;   /* key length; 0 = empty slot */
	size_t off;     /* key bytes in the arena */
	int32_t value;
} text_map_slot;

/*
 * Open addressing (linear probing), power-of-two capacity, keys copied into
 * one arena (NUL-terminated). Keys are non-empty. max_keys bounds the number
 * of keys (a cache stops growing there: text_map_put returns RAG_ETOOBIG).
 */
typedef struct text_map {
	text_map_slot *slots;
	size_t cap, count, max_keys;
	char *arena;
	size_t arena_len, arena_cap;
} text_map;

void text_map_init(text_map *mp, size_t max_keys);
void text_map_release(text_map *mp);
/* The value of key, or -1 when absent. */
int32_t text_map_get(const text_map *mp, const char *key, size_t len);
/*
 * Insert key with value unless present. *value_out (may be NULL) gets the
 * stored value (the old one if the key was there). RAG_ENOMEM, RAG_ETOOBIG.
 */
rag_rc text_map_put(text_map *mp, const char *key, size_t len,
		     int32_t value, int32_t *value_out);
/* The arena offset of a present key's bytes (SIZE_MAX when absent). */
size_t text_map_find_off(const text_map *mp, const char *key, size_t len);
/* The NUL-terminated key at an arena offset. */
static inline const char *text_map_key_at(const text_map *mp, size_t off)
{
	return mp->arena + off;
}

/* ---------------------------------------------------------- tokenizer */

struct sb_stemmer;

/* Per-thread tokenizer state: a stemmer and scratch for one word. */
typedef struct text_tok {
	struct sb_stemmer *stemmer; /* NULL: no stemming (out of memory) */
} text_tok;

void text_tok_init(text_tok *tk);
void text_tok_release(text_tok *tk);

/*
 * Step one: call fn for each folded word (NFKC + case fold, split, no
 * stopword removal, no stemming). word is NUL-terminated, len bytes,
 * 1 <= len <= TEXT_TOKEN_MAX.
 */
typedef void (*text_word_fn)(void *ctx, const char *word, size_t len);
void text_words(const char *text, size_t len, text_word_fn fn, void *ctx);

/* True when the folded word is a stopword. */
bool text_is_stopword(const char *word, size_t len);
/* The stopword list (sorted), for tests. */
const char *const *text_stopword_list(size_t *n);

/*
 * Step two: the stem of a folded, non-stopword word. Returns a pointer to
 * the stem (either word itself or the stemmer's buffer, valid until the
 * next call on tk) and its length in *out_len.
 */
const char *text_tok_stem(text_tok *tk, const char *word, size_t len,
			   size_t *out_len);

#endif
