/*
 * bert_tok.c — BERT's tokenizer: vocab.txt, the basic tokenizer, WordPiece.
 *
 * The reference is Hugging Face's slow BertTokenizer (tokenize_chinese_chars
 * on, strip_accents unset) as called by encode(): PreTrainedTokenizer.tokenize
 * and then BasicTokenizer and WordpieceTokenizer. What it does to a text, in
 * its order, and how this file does the same in one pass:
 *
 *  1. Special tokens written in the text ("[CLS]", "[SEP]", "[UNK]", "[PAD]",
 *     "[MASK]", exact case) are cut out first and become their ids; the text
 *     on either side is tokenized separately. Here: matched on the raw bytes
 *     at each '['. "[MASK]" only when the vocabulary has it (Hugging Face
 *     would give it a new id past the vocabulary, which no model can take).
 *  2. When lower-casing, every other character is lowered one at a time
 *     (str.lower() of a one-character string: U+0130 becomes "i" U+0307, and
 *     there is no final sigma, as no capital sigma survives to step 5).
 *  3. Cleaning: NUL, U+FFFD and every C* code point but \t \n \r are
 *     dropped; space, \t, \n, \r and Zs separate tokens, and so do U+2028
 *     and U+2029 (str.split() counts them as white space). Invalid UTF-8
 *     bytes are dropped like U+FFFD.
 *  4. Each CJK ideograph is a token of its own.
 *  5. NFC, then per white-space token: if lower-casing, lower again, NFD and
 *     drop Mn; otherwise a token that is exactly a special token is kept
 *     whole. Punctuation (ASCII 33-47, 58-64, 91-96, 123-126, Unicode P*)
 *     is split off, one word per character.
 *  6. WordPiece per word: more than 100 code points is [UNK]; else greedy
 *     longest match from the left, "##" before every piece but the first;
 *     one position with no match makes the whole word one [UNK].
 *
 * Bounded work: the pass stops as soon as max_len - 2 pieces are out and one
 * more is known to exist. Normalisation works on chunks of a white-space
 * token; a long token is cut before a code point that no normalisation can
 * join to what precedes it (see safe_break()), so scratch stays small for
 * most texts (a token with no such code point is normalised whole). Words
 * keep at most 101 code points.
 *
 * Known differences: Unicode versions (libutf8proc's tables against
 * Python's unicodedata: code points assigned only in the newer one are C*
 * for the other).
 */
#include "bert.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "rag_util.h"

/* WordpieceTokenizer.max_input_chars_per_word */
#define WORD_MAX 100
/* A chunk this long (bytes) is normalised at the next safe break. */
#define CHUNK_SOFT 4096

/* ------------------------------------------------------------ UTF-8 */

/*
 * Decode one code point at s[*i] (strict: no overlong forms, surrogates or
 * values past U+10FFFF). Returns false for an invalid sequence, leaving *i
 * unchanged: the caller drops one byte and tries again, so a valid byte
 * after a broken sequence is never swallowed.
 */
static bool utf8_next(const unsigned char *s, size_t len, size_t *i, int32_t *cp)
{
	size_t p = *i, n;
	unsigned char b = s[p];
	int32_t c, min;

	if (b < 0x80) {
		*cp = b;
		*i = p + 1;
		return true;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		n = 1;
		c = b & 0x1f;
		min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		n = 2;
		c = b & 0x0f;
		min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		n = 3;
		c = b & 0x07;
		min = 0x10000;
	} else {
		return false;
	}
	if (len - p <= n)
		return false;
	for (size_t k = 1; k <= n; k++) {
		if ((s[p + k] & 0xc0) != 0x80)
			return false;
		c = (c << 6) | (s[p + k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return false;
	*cp = c;
	*i = p + n + 1;
	return true;
}

/* ------------------------------------------------------------ vocabulary */

typedef struct vocab_slot {
	uint32_t hash;
	int32_t id; /* -1: empty */
} vocab_slot;

struct bert_vocab {
	char *text;       /* the tokens in id order, each NUL-terminated */
	size_t *off;      /* n + 1 offsets into text; token i has length
			     off[i + 1] - off[i] - 1 */
	size_t n;
	vocab_slot *slots; /* open addressing, linear probing */
	size_t mask;       /* capacity - 1 (a power of two) */
	size_t max_tok;    /* longest token in bytes */
	int32_t empty_id;  /* the last empty line, or -1 */
	int32_t cls, sep, unk, pad, mask_tok;
};

static uint32_t tok_hash(const char *s, size_t len)
{
	uint64_t h = rag_fnv1a(RAG_FNV_INIT, s, len);

	return (uint32_t)(h ^ (h >> 32));
}

/* The slot of tok, or the empty slot where it would go. */
static vocab_slot *vocab_find(const bert_vocab *v, const char *tok, size_t len, uint32_t h)
{
	for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
		vocab_slot *s = &v->slots[i];
		if (s->id < 0)
			return s;
		if (s->hash == h && v->off[s->id + 1] - v->off[s->id] - 1 == len &&
		    memcmp(v->text + v->off[s->id], tok, len) == 0)
			return s;
	}
}

int32_t bert_vocab_id(const bert_vocab *v, const char *tok, size_t len)
{
	if (!v || (!tok && len))
		return -1;
	if (!len)
		return v->empty_id;
	return vocab_find(v, tok, len, tok_hash(tok, len))->id;
}

size_t bert_vocab_size(const bert_vocab *v)
{
	return v ? v->n : 0;
}

const char *bert_vocab_token(const bert_vocab *v, int32_t id)
{
	if (!v || id < 0 || (size_t)id >= v->n)
		return NULL;
	return v->text + v->off[id];
}

void bert_vocab_free(bert_vocab *v)
{
	if (!v)
		return;
	free(v->text);
	free(v->off);
	free(v->slots);
	free(v);
}

/* The end of the line starting at p and where the next one starts. */
static size_t line_end(const char *data, size_t len, size_t p, size_t *next)
{
	size_t e = p;

	while (e < len && data[e] != '\n' && data[e] != '\r')
		e++;
	/* "\n", "\r\n" and a lone "\r" end a line, as in Python's text mode */
	if (e + 1 < len && data[e] == '\r' && data[e + 1] == '\n')
		*next = e + 2;
	else
		*next = e < len ? e + 1 : len;
	return e;
}

rag_rc bert_vocab_load(const char *data, size_t len, const char *file, bert_vocab **out,
		       rag_error *err)
{
	static const char *const required[] = {"[CLS]", "[SEP]", "[UNK]", "[PAD]"};
	bert_vocab *v = NULL;
	size_t n = 0, cap = 16, next, line;
	rag_rc rc = RAG_OK;

	if (!file)
		file = "vocab.txt";
	if (!out || (!data && len))
		return rag_error_set(err, RAG_EINVAL, "%s: no data", file);
	*out = NULL;

	/* pass 1: count lines, check the bytes */
	for (size_t p = 0; p < len; p = next) {
		size_t e = line_end(data, len, p, &next);

		n++;
		for (size_t i = p; i < e;) {
			int32_t c;

			if (!data[i])
				return rag_error_set(err, RAG_ECORRUPT, "%s: line %zu: NUL byte",
						     file, n);
			if (!utf8_next((const unsigned char *)data, e, &i, &c))
				return rag_error_set(err, RAG_ECORRUPT,
						     "%s: line %zu: invalid UTF-8", file, n);
		}
	}
	if (!n)
		return rag_error_set(err, RAG_ECORRUPT, "%s: empty vocabulary", file);
	if (n > INT32_MAX)
		return rag_error_set(err, RAG_ECORRUPT, "%s: more than %d tokens", file,
				     INT32_MAX);
	while (cap < 2 * n)
		cap *= 2;

	v = calloc(1, sizeof(*v));
	if (!v) {
		rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", file);
		goto out;
	}
	v->n = n;
	v->mask = cap - 1;
	v->empty_id = -1;
	v->text = malloc(len + n);
	v->off = malloc((n + 1) * sizeof(*v->off));
	v->slots = malloc(cap * sizeof(*v->slots));
	if (!v->text || !v->off || !v->slots) {
		rc = rag_error_set(err, RAG_ENOMEM, "%s: out of memory", file);
		goto out;
	}
	for (size_t i = 0; i < cap; i++)
		v->slots[i].id = -1;

	/* pass 2: copy the tokens, index them (the last id of a token wins, as
	 * in Hugging Face's load_vocab()) */
	line = 0;
	v->off[0] = 0;
	for (size_t p = 0; p < len; p = next, line++) {
		size_t e = line_end(data, len, p, &next), tl = e - p;
		char *t = v->text + v->off[line];

		memcpy(t, data + p, tl);
		t[tl] = '\0';
		v->off[line + 1] = v->off[line] + tl + 1;
		if (tl > v->max_tok)
			v->max_tok = tl;
		if (!tl) {
			v->empty_id = (int32_t)line;
			continue;
		}
		uint32_t h = tok_hash(t, tl);
		vocab_slot *s = vocab_find(v, t, tl, h);
		s->hash = h;
		s->id = (int32_t)line;
	}

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (bert_vocab_id(v, required[i], strlen(required[i])) < 0) {
			rc = rag_error_set(err, RAG_ECORRUPT,
					   "%s: no \"%s\" token (a BERT vocabulary needs [CLS], "
					   "[SEP], [UNK] and [PAD])%s",
					   file, required[i],
					   len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0
						   ? "; the file starts with a UTF-8 byte order mark"
						   : "");
			goto out;
		}
	}
	v->cls = bert_vocab_id(v, "[CLS]", 5);
	v->sep = bert_vocab_id(v, "[SEP]", 5);
	v->unk = bert_vocab_id(v, "[UNK]", 5);
	v->pad = bert_vocab_id(v, "[PAD]", 5);
	v->mask_tok = bert_vocab_id(v, "[MASK]", 6);
	*out = v;
	v = NULL;
out:
	bert_vocab_free(v);
	return rc;
}

/* ------------------------------------------------------- character classes */

static bool is_cjk(int32_t c)
{
	return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
	       (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
	       (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b820 && c <= 0x2ceaf) ||
	       (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

static bool is_punct(int32_t c)
{
	if (c < 0x80)
		return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
		       (c >= 123 && c <= 126);
	utf8proc_category_t cat = utf8proc_category(c);
	return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/*
 * True when NFC and NFD of a chunk that starts with c do not depend on what
 * precedes it: c has combining class 0 and is never the second half of a
 * canonical composition. Below U+0300, Hangul syllables and kana letters
 * qualify (checked against Python's unicodedata for every code point);
 * other code points are simply never break points.
 */
static bool safe_break(int32_t c)
{
	return c < 0x300 || (c >= 0xac00 && c <= 0xd7a3) || (c >= 0x3041 && c <= 0x3096) ||
	       (c >= 0x30a1 && c <= 0x30fa);
}

/* str.lower() of one character (the only multi-character case is U+0130). */
static int lower_cp(int32_t c, int32_t out[2])
{
	if (c < 0x80) {
		out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
		return 1;
	}
	if (c == 0x130) {
		out[0] = 'i';
		out[1] = 0x307;
		return 2;
	}
	out[0] = utf8proc_tolower(c);
	return 1;
}

/* ------------------------------------------------------------ tokenizer */

typedef struct special {
	const char *s;
	size_t len;
} special;

static const special specials[] = {
	{"[CLS]", 5}, {"[SEP]", 5}, {"[UNK]", 5}, {"[PAD]", 5}, {"[MASK]", 6},
};

typedef struct tok {
	const bert_vocab *v;
	bool lower;
	int32_t *out;    /* where pieces go (after [CLS]) */
	size_t room;     /* max_len - 2 */
	size_t n;        /* pieces written */
	bool truncated;
	bool stop;       /* room is full and another piece exists */
	rag_rc rc;

	/* the current chunk of a white-space token: cleaned UTF-8 */
	unsigned char *chunk;
	size_t chunk_len, chunk_cap;
	bool chunk_ascii;
	bool chunk_whole; /* the chunk began the token */

	/* normalisation scratch */
	int32_t *nbuf;
	size_t nbuf_cap;
	unsigned char *rbuf;
	size_t rbuf_cap;
	int32_t *dbuf;
	size_t dbuf_cap;

	/* the current word: its length in code points, the first WORD_MAX kept */
	int32_t word[WORD_MAX];
	size_t word_len;

	/* WordPiece scratch: "##" + the UTF-8 of the word from a start on */
	unsigned char wb[4 * WORD_MAX];
	size_t woff[WORD_MAX + 1];
	char key[2 + 4 * WORD_MAX];
	int32_t pieces[WORD_MAX];
} tok;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return true;
	while (c < need) {
		if (c > SIZE_MAX / 2 / elem)
			return false;
		c *= 2;
	}
	q = realloc(*p, c * elem);
	if (!q)
		return false;
	*p = q;
	*cap = c;
	return true;
}

static void emit(tok *t, int32_t id)
{
	if (t->n == t->room) {
		t->truncated = true;
		t->stop = true;
		return;
	}
	t->out[t->n++] = id;
}

/* WordPiece of the current word (1 <= word_len <= WORD_MAX). */
static void wordpiece(tok *t)
{
	const bert_vocab *v = t->v;
	size_t n = t->word_len, np = 0, blen = 0;

	for (size_t i = 0; i < n; i++) {
		t->woff[i] = blen;
		blen += (size_t)utf8proc_encode_char(t->word[i], t->wb + blen);
	}
	t->woff[n] = blen;

	for (size_t start = 0; start < n;) {
		size_t pre = start ? 2 : 0, end = n;
		const char *key = t->key + 2 - pre;
		int32_t id = -1;

		memcpy(t->key, "##", 2);
		memcpy(t->key + 2, t->wb + t->woff[start], blen - t->woff[start]);
		/* nothing longer than the longest token can match */
		while (end > start && pre + t->woff[end] - t->woff[start] > v->max_tok)
			end--;
		for (; end > start; end--) {
			size_t kl = pre + t->woff[end] - t->woff[start];

			id = vocab_find(v, key, kl, tok_hash(key, kl))->id;
			if (id >= 0)
				break;
		}
		if (id < 0) {
			np = 0;
			t->pieces[np++] = v->unk;
			break;
		}
		t->pieces[np++] = id;
		start = end;
	}
	for (size_t i = 0; i < np && !t->stop; i++)
		emit(t, t->pieces[i]);
}

static void word_add(tok *t, int32_t c)
{
	if (t->n == t->room) {
		/* a word is at least one piece, and there is no room left */
		t->truncated = true;
		t->stop = true;
		return;
	}
	if (t->word_len < WORD_MAX)
		t->word[t->word_len] = c;
	t->word_len++;
}

static void word_end(tok *t)
{
	if (!t->word_len || t->stop)
		return;
	if (t->word_len > WORD_MAX)
		emit(t, t->v->unk);
	else
		wordpiece(t);
	t->word_len = 0;
}

/*
 * utf8proc_decompose of s into *buf, growing it. Returns the number of code
 * points, or -1 (t->rc set).
 */
static utf8proc_ssize_t decompose(tok *t, const unsigned char *s, size_t len, int32_t **buf,
			 size_t *cap, utf8proc_option_t opt)
{
	for (;;) {
		utf8proc_ssize_t k = utf8proc_decompose(s, (utf8proc_ssize_t)len, *buf,
							(utf8proc_ssize_t)*cap, opt);
		if (k < 0) {
			t->rc = RAG_EINTERNAL; /* the chunk is valid UTF-8: cannot happen */
			return -1;
		}
		if ((size_t)k <= *cap)
			return k;
		if (!grow((void **)buf, cap, (size_t)k, sizeof(**buf))) {
			t->rc = RAG_ENOMEM;
			return -1;
		}
	}
}

/*
 * Normalise the chunk (step 5 up to the punctuation split). Returns the code
 * points (in t's scratch) and their number, or NULL (t->rc set).
 */
static const int32_t *normalise(tok *t, size_t *n_out)
{
	utf8proc_ssize_t k;

	if (t->chunk_ascii) {
		/* NFC, NFD and lower-casing (done in step 2) change nothing */
		if (!grow((void **)&t->nbuf, &t->nbuf_cap, t->chunk_len, sizeof(*t->nbuf))) {
			t->rc = RAG_ENOMEM;
			return NULL;
		}
		for (size_t i = 0; i < t->chunk_len; i++)
			t->nbuf[i] = t->chunk[i];
		*n_out = t->chunk_len;
		return t->nbuf;
	}
	/* at least one slot per code point, so the buffer is never NULL */
	if (!grow((void **)&t->nbuf, &t->nbuf_cap, t->chunk_len, sizeof(*t->nbuf)) ||
	    !grow((void **)&t->dbuf, &t->dbuf_cap, t->chunk_len * 2, sizeof(*t->dbuf))) {
		t->rc = RAG_ENOMEM;
		return NULL;
	}
	k = decompose(t, t->chunk, t->chunk_len, &t->nbuf, &t->nbuf_cap,
		      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	if (k < 0)
		return NULL;
	k = utf8proc_normalize_utf32(t->nbuf, k, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	if (k < 0) {
		t->rc = RAG_EINTERNAL;
		return NULL;
	}
	if (!t->lower) {
		*n_out = (size_t)k;
		return t->nbuf;
	}

	/* lower (a second time, as BasicTokenizer does), NFD, drop Mn */
	size_t rl = 0, m = 0;
	if ((size_t)k > SIZE_MAX / 8 || !grow((void **)&t->rbuf, &t->rbuf_cap, (size_t)k * 8, 1)) {
		t->rc = RAG_ENOMEM;
		return NULL;
	}
	for (utf8proc_ssize_t i = 0; i < k; i++) {
		int32_t lc[2];
		int nl = lower_cp(t->nbuf[i], lc);

		for (int j = 0; j < nl; j++)
			rl += (size_t)utf8proc_encode_char(lc[j], t->rbuf + rl);
	}
	k = decompose(t, t->rbuf, rl, &t->dbuf, &t->dbuf_cap, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
	if (k < 0)
		return NULL;
	for (utf8proc_ssize_t i = 0; i < k; i++)
		if (utf8proc_category(t->dbuf[i]) != UTF8PROC_CATEGORY_MN)
			t->dbuf[m++] = t->dbuf[i];
	*n_out = m;
	return t->dbuf;
}

static bool is_special(const int32_t *c, size_t n)
{
	for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++) {
		size_t i = 0;

		if (specials[s].len != n)
			continue;
		while (i < n && c[i] == (unsigned char)specials[s].s[i])
			i++;
		if (i == n)
			return true;
	}
	return false;
}

/*
 * Normalise and split the current chunk into words. tok_end: the
 * white-space token ends here (else the chunk was cut at a safe break and
 * the word may go on).
 */
static void chunk_flush(tok *t, bool tok_end)
{
	if (t->chunk_len && !t->stop && t->rc == RAG_OK) {
		size_t n;
		const int32_t *c = normalise(t, &n);

		if (!c)
			return;
		if (tok_end && t->chunk_whole && !t->lower && is_special(c, n)) {
			/* never_split: the token goes to WordPiece as it is */
			for (size_t i = 0; i < n && !t->stop; i++)
				word_add(t, c[i]);
		} else {
			for (size_t i = 0; i < n && !t->stop; i++) {
				if (is_punct(c[i])) {
					word_end(t);
					word_add(t, c[i]);
					word_end(t);
				} else {
					word_add(t, c[i]);
				}
			}
		}
	}
	t->chunk_len = 0;
	t->chunk_ascii = true;
	t->chunk_whole = tok_end;
	if (tok_end)
		word_end(t);
}

static void chunk_add(tok *t, int32_t c)
{
	if (t->chunk_len >= CHUNK_SOFT && safe_break(c))
		chunk_flush(t, false);
	if (!grow((void **)&t->chunk, &t->chunk_cap, t->chunk_len + 4, 1)) {
		t->rc = RAG_ENOMEM;
		return;
	}
	if (c >= 0x80)
		t->chunk_ascii = false;
	t->chunk_len += (size_t)utf8proc_encode_char(c, t->chunk + t->chunk_len);
}

/* Steps 3 and 4 for one (lowered) code point. */
static void feed(tok *t, int32_t c)
{
	utf8proc_category_t cat;

	if (c < 0x80) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			chunk_flush(t, true);
		else if (c >= 0x20 && c != 0x7f)
			chunk_add(t, c);
		return; /* other ASCII controls (and NUL) are dropped */
	}
	if (c == 0xfffd)
		return;
	cat = utf8proc_category(c);
	switch (cat) {
	case UTF8PROC_CATEGORY_ZS:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
		chunk_flush(t, true);
		return;
	case UTF8PROC_CATEGORY_CN:
	case UTF8PROC_CATEGORY_CC:
	case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS:
	case UTF8PROC_CATEGORY_CO:
		return;
	default:
		break;
	}
	if (is_cjk(c)) {
		chunk_flush(t, true);
		chunk_add(t, c);
		chunk_flush(t, true);
		return;
	}
	chunk_add(t, c);
}

/* The id of the special token written at s, or -1; *len gets its length. */
static int32_t special_at(const bert_vocab *v, const char *s, size_t avail, size_t *len)
{
	const int32_t ids[] = {v->cls, v->sep, v->unk, v->pad, v->mask_tok};

	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
		if (ids[i] >= 0 && avail >= specials[i].len &&
		    memcmp(s, specials[i].s, specials[i].len) == 0) {
			*len = specials[i].len;
			return ids[i];
		}
	}
	return -1;
}

rag_rc bert_tokenize(const bert_vocab *v, bool lower, const char *text, size_t len,
		     int32_t *ids, size_t max_len, size_t *n_out, bool *truncated,
		     rag_error *err)
{
	const unsigned char *s = (const unsigned char *)text;
	tok *t;
	rag_rc rc;

	if (n_out)
		*n_out = 0;
	if (truncated)
		*truncated = false;
	if (!v || !ids || !n_out || (!text && len) || max_len < 2)
		return rag_error_set(err, RAG_EINVAL, "bert tokenize: bad arguments (max_len %zu)",
				     max_len);
	t = calloc(1, sizeof(*t));
	if (!t)
		return rag_error_set(err, RAG_ENOMEM, "bert tokenize: out of memory");
	t->v = v;
	t->lower = lower;
	t->out = ids + 1;
	t->room = max_len - 2;
	t->chunk_ascii = true;
	t->chunk_whole = true;

	for (size_t i = 0; i < len && !t->stop && t->rc == RAG_OK;) {
		int32_t c, lc[2];
		size_t sl;

		if (s[i] == '[') {
			int32_t id = special_at(v, text + i, len - i, &sl);
			if (id >= 0) {
				chunk_flush(t, true);
				emit(t, id);
				i += sl;
				continue;
			}
		}
		if (!utf8_next(s, len, &i, &c)) {
			i++; /* an invalid byte: dropped */
			continue;
		}
		if (!lower) {
			feed(t, c);
			continue;
		}
		for (int k = 0, nl = lower_cp(c, lc); k < nl; k++)
			feed(t, lc[k]);
	}
	chunk_flush(t, true);

	rc = t->rc;
	if (rc == RAG_OK) {
		ids[0] = v->cls;
		ids[t->n + 1] = v->sep;
		*n_out = t->n + 2;
		if (truncated)
			*truncated = t->truncated;
	} else if (rc == RAG_ENOMEM) {
		rag_error_set(err, rc, "bert tokenize: out of memory");
	} else {
		rag_error_set(err, rc, "bert tokenize: utf8proc failed on valid UTF-8");
	}
	free(t->chunk);
	free(t->nbuf);
	free(t->rbuf);
	free(t->dbuf);
	free(t);
	return rc;
}
