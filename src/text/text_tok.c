/*
 * text_tok.c — the tokenizer: folded words, stopwords, stemming.
 *
 * Words are maximal runs of letters, digits and marks after NFKC + case
 * folding (default ignorables removed). Pure-ASCII runs take a fast path
 * (lower-casing is exactly NFKC + case fold there); anything else goes
 * through utf8proc_map. Han and Kana characters have no spaces between
 * words, so each one is a token of its own. Invalid UTF-8 bytes separate.
 */
#include "text.h"

#include <libstemmer.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "rag_util.h"

/* Sorted (C locale) for bsearch; a unit test walks it. */
static const char *const stopwords[] = {
	"a", "about", "above", "after", "again", "against", "all", "also",
	"am", "an", "and", "any", "are", "as", "at", "be", "because", "been",
	"before", "being", "below", "between", "both", "but", "by", "can",
	"could", "d", "did", "do", "does", "doing", "down", "during", "each",
	"etc", "few", "for", "from", "further", "had", "has", "have",
	"having", "he", "her", "here", "hers", "herself", "him", "himself",
	"his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
	"just", "ll", "m", "may", "me", "might", "more", "most", "must",
	"my", "myself", "no", "nor", "not", "of", "off", "on", "once",
	"only", "or", "other", "our", "ours", "ourselves", "out", "over",
	"own", "re", "s", "same", "shall", "she", "should", "so", "some",
	"such", "t", "than", "that", "the", "their", "theirs", "them",
	"themselves", "then", "there", "these", "they", "this", "those",
	"through", "to", "too", "under", "until", "up", "upon", "ve",
	"very", "via", "was", "we", "were", "what", "when", "where", "which",
	"while", "who", "whom", "why", "will", "with", "would", "yet", "you",
	"your", "yours", "yourself", "yourselves",
};

typedef struct word_key {
	const char *s;
	size_t len;
} word_key;

static int stopword_cmp(const void *k, const void *elem)
{
	const word_key *key = k;
	const char *w = *(const char *const *)elem;
	size_t wl = strlen(w);
	int c = memcmp(key->s, w, key->len < wl ? key->len : wl);

	if (c)
		return c;
	return key->len < wl ? -1 : key->len > wl;
}

const char *const *text_stopword_list(size_t *n)
{
	*n = RAG_ARRAY_LEN(stopwords);
	return stopwords;
}

bool text_is_stopword(const char *word, size_t len)
{
	word_key key = {word, len};

	if (len > 10) /* longer than the longest stopword */
		return false;
	return bsearch(&key, stopwords, RAG_ARRAY_LEN(stopwords),
		       sizeof(stopwords[0]), stopword_cmp) != NULL;
}

/* ------------------------------------------------------------- words */

static inline bool ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* A byte that ends a word: ASCII but not a letter or digit. */
static inline bool ascii_sep(unsigned char c)
{
	return c < 0x80 && !ascii_alnum(c);
}

static bool cp_wordish(utf8proc_int32_t cp)
{
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return true;
	default:
		return false;
	}
}

/* Scripts written without spaces: one token per character. */
static bool cp_alone(utf8proc_int32_t cp)
{
	return (cp >= 0x3040 && cp <= 0x30FF) ||   /* Hiragana, Katakana */
	       (cp >= 0x3400 && cp <= 0x4DBF) ||   /* CJK extension A */
	       (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified */
	       (cp >= 0xF900 && cp <= 0xFAFF) ||   /* CJK compatibility */
	       (cp >= 0x20000 && cp <= 0x3134F);   /* CJK extensions B-G */
}

typedef struct word_acc {
	char buf[TEXT_TOKEN_MAX + 1];
	size_t len;
	bool too_long;
	text_word_fn fn;
	void *ctx;
} word_acc;

static void acc_flush(word_acc *a)
{
	if (a->len && !a->too_long) {
		a->buf[a->len] = '\0';
		a->fn(a->ctx, a->buf, a->len);
	}
	a->len = 0;
	a->too_long = false;
}

static void acc_add(word_acc *a, const unsigned char *p, size_t n)
{
	if (a->too_long || a->len + n > TEXT_TOKEN_MAX) {
		a->too_long = true;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

/* Split the NFKC-folded form of one valid UTF-8 run into words. */
static void map_and_split(word_acc *a, const unsigned char *s, size_t n)
{
	utf8proc_uint8_t *dst = NULL;
	utf8proc_ssize_t m, i = 0;
	utf8proc_int32_t cp;

	m = utf8proc_map(s, (utf8proc_ssize_t)n, &dst,
			 UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
				 UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
	if (m < 0)
		return; /* out of memory: the run is skipped */
	while (i < m) {
		utf8proc_ssize_t r = utf8proc_iterate(dst + i, m - i, &cp);
		if (r <= 0)
			break;
		if (cp_alone(cp)) {
			acc_flush(a);
			acc_add(a, dst + i, (size_t)r);
			acc_flush(a);
		} else if (cp_wordish(cp)) {
			acc_add(a, dst + i, (size_t)r);
		} else {
			acc_flush(a);
		}
		i += r;
	}
	acc_flush(a);
	free(dst);
}

/* A segment with non-ASCII bytes: valid runs are mapped, bad bytes split. */
static void split_unicode(word_acc *a, const unsigned char *s, size_t n)
{
	size_t j = 0;
	utf8proc_int32_t cp;

	while (j < n) {
		size_t start = j;
		while (j < n) {
			utf8proc_ssize_t r = utf8proc_iterate(s + j, (utf8proc_ssize_t)(n - j), &cp);
			if (r <= 0)
				break;
			j += (size_t)r;
		}
		if (j > start)
			map_and_split(a, s + start, j - start);
		if (j < n)
			j++; /* an invalid byte */
	}
}

static void emit_ascii(word_acc *a, const unsigned char *s, size_t n)
{
	if (n > TEXT_TOKEN_MAX)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		a->buf[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	a->len = n;
	acc_flush(a);
}

void text_words(const char *text, size_t len, text_word_fn fn, void *ctx)
{
	const unsigned char *s = (const unsigned char *)text;
	word_acc a = {.len = 0, .too_long = false, .fn = fn, .ctx = ctx};
	size_t i = 0;

	while (i < len) {
		if (ascii_sep(s[i])) {
			i++;
			continue;
		}
		size_t start = i;
		bool ascii = true;
		while (i < len && !ascii_sep(s[i])) {
			ascii &= s[i] < 0x80;
			i++;
		}
		if (ascii)
			emit_ascii(&a, s + start, i - start);
		else
			split_unicode(&a, s + start, i - start);
	}
}

/* ---------------------------------------------------------- stemming */

void text_tok_init(text_tok *tk)
{
	tk->stemmer = sb_stemmer_new("english", NULL);
}

void text_tok_release(text_tok *tk)
{
	if (tk->stemmer)
		sb_stemmer_delete(tk->stemmer);
	tk->stemmer = NULL;
}

const char *text_tok_stem(text_tok *tk, const char *word, size_t len,
			   size_t *out_len)
{
	const sb_symbol *st;

	*out_len = len;
	if (!tk->stemmer || len < 3)
		return word;
	for (size_t i = 0; i < len; i++)
		if (word[i] >= '0' && word[i] <= '9')
			return word; /* numbers and codes stay as they are */
	st = sb_stemmer_stem(tk->stemmer, (const sb_symbol *)word, (int)len);
	if (!st)
		return word;
	*out_len = (size_t)sb_stemmer_length(tk->stemmer);
	return (const char *)st;
}

/* ---------------------------------------------------- text_tokenize */

/*
 * text_tokenize() runs once per chunk for the BM25 index, where stemming
 * was most of the catalog's insert time. Each thread keeps a word -> stem
 * cache across calls: words maps a folded word to the arena offset of its
 * stem in stems (-2: a stopword). A full cache only costs speed.
 */
#define STEM_CACHE_MAX (1u << 17)

typedef struct stem_cache {
	text_tok tk;
	text_map words, stems;
} stem_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
	stem_cache *c = p;

	text_tok_release(&c->tk);
	text_map_release(&c->words);
	text_map_release(&c->stems);
	free(c);
}

static void cache_key_make(void)
{
	pthread_key_create(&cache_key, cache_free);
}

static stem_cache *thread_cache(void)
{
	stem_cache *c;

	pthread_once(&cache_once, cache_key_make);
	if ((c = pthread_getspecific(cache_key)))
		return c;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	text_tok_init(&c->tk);
	text_map_init(&c->words, STEM_CACHE_MAX);
	text_map_init(&c->stems, STEM_CACHE_MAX);
	if (pthread_setspecific(cache_key, c) != 0) {
		cache_free(c);
		return NULL;
	}
	return c;
}

typedef struct tokenize_ctx {
	stem_cache *cache;     /* NULL: out of memory, stem every word */
	text_tok tk;          /* used only without a cache */
	text_token_fn fn;
	void *ctx;
	char buf[2 * TEXT_TOKEN_MAX + 1];
} tokenize_ctx;

static void emit_stem(tokenize_ctx *t, const char *st, size_t n)
{
	if (n >= sizeof(t->buf))
		n = sizeof(t->buf) - 1;
	if (!n)
		return;
	memcpy(t->buf, st, n);
	t->buf[n] = '\0';
	t->fn(t->ctx, t->buf, n);
}

static void tokenize_word(void *p, const char *word, size_t len)
{
	tokenize_ctx *t = p;
	stem_cache *c = t->cache;
	const char *st;
	int32_t off;
	size_t n;

	if (!c) {
		if (!text_is_stopword(word, len)) {
			st = text_tok_stem(&t->tk, word, len, &n);
			emit_stem(t, st, n);
		}
		return;
	}
	if ((off = text_map_get(&c->words, word, len)) == -1) {
		if (text_is_stopword(word, len)) {
			off = -2;
		} else {
			size_t at;
			st = text_tok_stem(&c->tk, word, len, &n);
			if (!n || text_map_put(&c->stems, st, n, 0, NULL) != RAG_OK ||
			    (at = text_map_find_off(&c->stems, st, n)) > INT32_MAX) {
				emit_stem(t, st, n); /* not cached */
				return;
			}
			off = (int32_t)at;
		}
		text_map_put(&c->words, word, len, off, NULL);
	}
	if (off >= 0) {
		st = text_map_key_at(&c->stems, (size_t)off);
		emit_stem(t, st, strlen(st));
	}
}

void text_tokenize(const char *text, size_t len, text_token_fn fn, void *ctx)
{
	tokenize_ctx t = {.cache = thread_cache(), .fn = fn, .ctx = ctx};

	if (!t.cache)
		text_tok_init(&t.tk);
	text_words(text, len, tokenize_word, &t);
	if (!t.cache)
		text_tok_release(&t.tk);
}
