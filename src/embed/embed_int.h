/*
 * embed_int.h — declarations shared by the files of the embed module only.
 *
 * embed_map.c   a string -> int32 hash map (vocabularies, token caches)
 * embed_tok.c   the tokenizer (words, stopwords, stemming)
 * embed_fit.c   vocabulary, TF-IDF and the randomized SVD
 * embed.c       embedding texts, accessors
 * embed_io.c    the weights object and the model card
 */
#ifndef EMBED_INT_H
#define EMBED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "embed.h"

/* Longest term (a stem) stored in a model. */
#define EMBED_TERM_MAX (2 * EMBED_TOKEN_MAX)

/* ------------------------------------------------------- string -> int32 */

typedef struct embed_map_slot {
	uint32_t hash;  /* low 32 bits of the key's hash */
	uint32_t len;   /* key length; 0 = empty slot */
	size_t off;     /* key bytes in the arena */
	int32_t value;
} embed_map_slot;

/*
 * Open addressing (linear probing), power-of-two capacity, keys copied into
 * one arena (NUL-terminated). Keys are non-empty. max_keys bounds the number
 * of keys (a cache stops growing there: embed_map_put returns RAG_ETOOBIG).
 */
typedef struct embed_map {
	embed_map_slot *slots;
	size_t cap, count, max_keys;
	char *arena;
	size_t arena_len, arena_cap;
} embed_map;

void embed_map_init(embed_map *mp, size_t max_keys);
void embed_map_release(embed_map *mp);
/* The value of key, or -1 when absent. */
int32_t embed_map_get(const embed_map *mp, const char *key, size_t len);
/*
 * Insert key with value unless present. *value_out (may be NULL) gets the
 * stored value (the old one if the key was there). RAG_ENOMEM, RAG_ETOOBIG.
 */
rag_rc embed_map_put(embed_map *mp, const char *key, size_t len,
		     int32_t value, int32_t *value_out);
/* The arena offset of a present key's bytes (SIZE_MAX when absent). */
size_t embed_map_find_off(const embed_map *mp, const char *key, size_t len);
/* The NUL-terminated key at an arena offset. */
static inline const char *embed_map_key_at(const embed_map *mp, size_t off)
{
	return mp->arena + off;
}

/* ---------------------------------------------------------- tokenizer */

struct sb_stemmer;

/* Per-thread tokenizer state: a stemmer and scratch for one word. */
typedef struct embed_tok {
	struct sb_stemmer *stemmer; /* NULL: no stemming (out of memory) */
} embed_tok;

void embed_tok_init(embed_tok *tk);
void embed_tok_release(embed_tok *tk);

/*
 * Step one: call fn for each folded word (NFKC + case fold, split, no
 * stopword removal, no stemming). word is NUL-terminated, len bytes,
 * 1 <= len <= EMBED_TOKEN_MAX.
 */
typedef void (*embed_word_fn)(void *ctx, const char *word, size_t len);
void embed_words(const char *text, size_t len, embed_word_fn fn, void *ctx);

/* True when the folded word is a stopword. */
bool embed_is_stopword(const char *word, size_t len);
/* The stopword list (sorted), for tests. */
const char *const *embed_stopword_list(size_t *n);

/*
 * Step two: the stem of a folded, non-stopword word. Returns a pointer to
 * the stem (either word itself or the stemmer's buffer, valid until the
 * next call on tk) and its length in *out_len.
 */
const char *embed_tok_stem(embed_tok *tk, const char *word, size_t len,
			   size_t *out_len);

/* -------------------------------------------------------------- model */

struct embed_model {
	char name[EMBED_NAME_MAX];
	char fitted_on[EMBED_FITTED_ON_MAX];
	char version[17];
	int dims;
	uint64_t ndocs;
	int64_t created_at; /* fit time (seconds); 0 for a loaded model */
	size_t nterms;
	embed_map vocab;  /* term -> term index */
	size_t *term_off; /* term i's bytes: vocab arena + term_off[i] */
	uint32_t *term_len;
	float *gw;        /* nterms global (log-entropy) weights */
	float *proj;      /* nterms x dims, row-major */
};

/* A model with no terms yet (name/fitted_on copied, truncated). */
embed_model *embed_model_alloc(const char *name, const char *fitted_on);
/*
 * Add term i (called with i = 0, 1, ... in order). RAG_ECONFLICT for a
 * duplicate, RAG_ENOMEM.
 */
rag_rc embed_model_add_term(embed_model *m, const char *term, size_t len);
/* Compute and store the version (serialises the weights once). */
rag_rc embed_model_seal(embed_model *m, rag_error *err);

/*
 * Internal knobs, fixed in embed_fit(); exposed for experiments only (the
 * model card describes the defaults).
 */
typedef struct embed_fit_tuning {
	double sv_power;   /* columns of P scaled by sigma^sv_power */
	int power_iters;   /* randomized SVD power iterations */
	int oversample;    /* extra columns of the test matrix */
	int drop_first;    /* drop the first singular vector(s) */
} embed_fit_tuning;

#define EMBED_FIT_TUNING_DEFAULT \
	((embed_fit_tuning){.sv_power = 0.5, .power_iters = 3, \
			    .oversample = 24, .drop_first = 0})

rag_rc embed_fit_tuned(const char *const *texts, const size_t *lens, size_t n,
		       const embed_fit_opts *opts, const embed_fit_tuning *tune,
		       embed_model **out, rag_error *err);

#endif
