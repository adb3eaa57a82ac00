/*
 * chunk.c — the chunker. See chunk.h for the contract and invariants.
 *
 * Layout: character classes and the token counter; a token iterator that
 * also reports the whitespace before each token (for sentence and line
 * starts); the packer (add_unit: whole blocks, sentences or pieces go into
 * the open chunk, or close it and open the next with an overlap); the
 * splitters for oversized blocks and sentences; chunk_document.
 *
 * Units: every range handed to add_unit starts at a token start and ends at
 * a token end, and units of one section come in text order, so a chunk's
 * range is simply [start of its first unit, end of its last unit], and
 * budget counts add up (whitespace separates units, or they meet at a token
 * boundary).
 */
#include "chunk.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "rag_util.h"

enum { C_SPACE = 0, C_WORD = 1, C_OTHER = 2, C_CJK = 3 };

#define S_ C_SPACE
#define W_ C_WORD
#define O_ C_OTHER
static const unsigned char ascii_class[128] = {
	S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, /* controls */
	S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_, S_,
	S_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, O_, /*  !"#$%&'()*+,-./ */
	W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, O_, O_, O_, O_, O_, O_, /* 0-9 :;<=>? */
	O_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, /* @A-O */
	W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, O_, O_, O_, O_, O_, /* P-Z [\]^_ */
	O_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, /* `a-o */
	W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, W_, O_, O_, O_, O_, S_, /* p-z {|}~ DEL */
};
#undef S_
#undef W_
#undef O_

/* Length of the valid UTF-8 sequence at p (2..4 bytes) and its code point;
 * 0 if invalid. p[0] >= 0x80. */
static inline size_t decode(const unsigned char *p, const unsigned char *end, int32_t *cp)
{
	size_t n = (size_t)(end - p);
	unsigned c = p[0];
	int32_t v;

	if (c < 0xC2 || c > 0xF4 || n < 2 || (p[1] & 0xC0) != 0x80)
		return 0;
	if (c < 0xE0) {
		*cp = (int32_t)(((c & 0x1F) << 6) | (p[1] & 0x3F));
		return 2;
	}
	if (n < 3 || (p[2] & 0xC0) != 0x80)
		return 0;
	if (c < 0xF0) {
		v = (int32_t)(((c & 0x0F) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3F));
		if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))
			return 0;
		*cp = v;
		return 3;
	}
	if (n < 4 || (p[3] & 0xC0) != 0x80)
		return 0;
	v = (int32_t)(((c & 0x07) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
		      (p[3] & 0x3F));
	if (v < 0x10000 || v > 0x10FFFF)
		return 0;
	*cp = v;
	return 4;
}

/* Han ideographs and kana: one token per character. */
static inline bool is_cjk(int32_t cp)
{
	return (cp >= 0x3040 && cp <= 0x30FF) ||   /* hiragana, katakana */
	       (cp >= 0x3400 && cp <= 0x4DBF) ||   /* CJK extension A */
	       (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified ideographs */
	       (cp >= 0xF900 && cp <= 0xFAFF) ||   /* compatibility ideographs */
	       (cp >= 0xFF66 && cp <= 0xFF9F) ||   /* half-width katakana */
	       (cp >= 0x20000 && cp <= 0x3FFFF);   /* planes 2 and 3 */
}

static int cp_class(int32_t cp)
{
	if (is_cjk(cp))
		return C_CJK;
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU:
	case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO:
	case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC:
	case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return C_WORD;
	case UTF8PROC_CATEGORY_ZS:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
	case UTF8PROC_CATEGORY_CC:
		return C_SPACE;
	case UTF8PROC_CATEGORY_CF: /* zero-width space and BOM separate; ZWJ, SHY join */
		return (cp == 0x200B || cp == 0x2060 || cp == 0xFEFF) ? C_SPACE : C_WORD;
	default:
		return C_OTHER;
	}
}

/* Class of the character at p; *n its length (1 for an invalid byte). */
static inline int char_class(const unsigned char *p, const unsigned char *end, size_t *n,
			     int32_t *cp)
{
	if (*p < 0x80) {
		*n = 1;
		*cp = *p;
		return ascii_class[*p];
	}
	if (!(*n = decode(p, end, cp))) {
		*n = 1;
		*cp = 0xFFFD;
		return C_OTHER;
	}
	return cp_class(*cp);
}

/*
 * Count tokens in [p, end). split: budget counting, a word piece ends after
 * CHUNK_WORD_BYTES bytes (the same rule as tok_next).
 */
static inline size_t count_tokens(const unsigned char *p, const unsigned char *end, bool split)
{
	const unsigned char *word = NULL; /* start of the current word (piece) */
	size_t count = 0, n;
	int32_t cp;
	int cls;

	while (p < end) {
		if (*p < 0x80) {
			cls = ascii_class[*p];
			n = 1;
		} else {
			cls = char_class(p, end, &n, &cp);
		}
		if (cls == C_WORD) {
			if (!word || (split && (size_t)(p - word) + n > CHUNK_WORD_BYTES)) {
				count++;
				word = p;
			}
		} else {
			word = NULL;
			count += cls != C_SPACE;
		}
		p += n;
	}
	return count;
}

int chunk_count_tokens(const char *text, size_t len)
{
	size_t n;

	if (!text)
		return 0;
	n = count_tokens((const unsigned char *)text, (const unsigned char *)text + len, false);
	return n > INT_MAX ? INT_MAX : (int)n;
}

static size_t budget(const char *text, size_t off, size_t end)
{
	return count_tokens((const unsigned char *)text + off, (const unsigned char *)text + end,
			    true);
}

/* ------------------------------------------------------------ iterator */

typedef struct tok {
	size_t start, end;
	int cls;
	int32_t cp;  /* first code point */
	bool ws;     /* whitespace right before it (in the iterated range) */
	bool nl;     /* ... and that whitespace holds a line break */
} tok;

typedef struct tok_it {
	const unsigned char *base, *p, *end;
} tok_it;

static tok_it tok_at(const char *text, size_t off, size_t end)
{
	const unsigned char *b = (const unsigned char *)text;
	tok_it it = {b, b + off, b + end};

	return it;
}

/* The next budget token (words cut after CHUNK_WORD_BYTES); false at end. */
static bool tok_next(tok_it *it, tok *t)
{
	const unsigned char *p = it->p, *s;
	size_t n;
	int32_t cp;
	int cls;

	t->ws = t->nl = false;
	for (;;) {
		if (p >= it->end) {
			it->p = p;
			return false;
		}
		cls = char_class(p, it->end, &n, &cp);
		if (cls != C_SPACE)
			break;
		t->ws = true;
		t->nl |= *p == '\n';
		p += n;
	}
	s = p;
	t->start = (size_t)(s - it->base);
	t->cls = cls;
	t->cp = cp;
	p += n;
	while (cls == C_WORD && p < it->end) {
		int32_t c2;

		if (char_class(p, it->end, &n, &c2) != C_WORD ||
		    (size_t)(p - s) + n > CHUNK_WORD_BYTES)
			break;
		p += n;
	}
	t->end = (size_t)(p - it->base);
	it->p = p;
	return true;
}

/* Sentence starts: a token after a terminator (and closing quotes or
 * brackets) and whitespace; after a CJK full stop no whitespace is needed. */
typedef struct sent {
	bool seen, term, cjk;
} sent;

static bool is_term(int32_t cp)
{
	return cp == '.' || cp == '!' || cp == '?' || cp == 0x2026 || cp == 0x3002 ||
	       cp == 0xFF01 || cp == 0xFF0E || cp == 0xFF1F;
}

static bool is_closer(int32_t cp)
{
	return cp == '"' || cp == '\'' || cp == ')' || cp == ']' || cp == 0x2019 ||
	       cp == 0x201D || cp == 0x00BB || cp == 0x300D || cp == 0x300F;
}

/* Feed tokens in order; true when t starts a sentence (never the first). */
static bool sentence_start(sent *ss, const tok *t)
{
	bool start;

	if (ss->term && !t->ws && is_closer(t->cp))
		return false;
	start = ss->seen && ss->term && (t->ws || ss->cjk);
	ss->term = t->cls == C_OTHER && is_term(t->cp);
	ss->cjk = ss->term && t->cp >= 0x3000;
	ss->seen = true;
	return start;
}

/* -------------------------------------------------------------- packer */

typedef struct chunker {
	const char *text;
	int max, ov;
	const char *path;  /* the section's heading path */
	bool open;         /* a chunk is being built: [cs, ce), ct budget tokens */
	size_t cs, ce;
	int ct;
	doc_chunk *out;
	size_t n, cap;
	rag_error *err;
} chunker;

static rag_rc emit(chunker *ck)
{
	doc_chunk *c;

	if (!ck->open)
		return RAG_OK;
	if (ck->n >= INT_MAX)
		return rag_error_set(ck->err, RAG_ETOOBIG, "chunk: more than %d chunks", INT_MAX);
	if (ck->n == ck->cap) {
		size_t cap = ck->cap ? ck->cap * 2 : 64;
		doc_chunk *p = realloc(ck->out, cap * sizeof(*p));

		if (!p)
			return rag_error_set(ck->err, RAG_ENOMEM, "chunk: out of memory");
		ck->out = p;
		ck->cap = cap;
	}
	c = &ck->out[ck->n];
	c->ordinal = (int)ck->n;
	c->off = ck->cs;
	c->len = ck->ce - ck->cs;
	c->ntokens = chunk_count_tokens(ck->text + ck->cs, c->len);
	if (!(c->heading_path = rag_strdup(ck->path)))
		return rag_error_set(ck->err, RAG_ENOMEM, "chunk: out of memory");
	ck->n++;
	ck->open = false;
	return RAG_OK;
}

static size_t char_start_before(const unsigned char *b, size_t lo, size_t pos)
{
	size_t q = pos - 1;

	while (q > lo && (b[q] & 0xC0) == 0x80 && pos - q < 4)
		q--;
	return q;
}

static int class_at(const unsigned char *b, size_t q, size_t pos)
{
	size_t n;
	int32_t cp;
	int cls = char_class(b + q, b + pos, &n, &cp);

	return n == pos - q ? cls : C_OTHER;
}

/* Start of the want-th budget token counted back from hi (lo if fewer). */
static size_t back_tokens(const char *text, size_t lo, size_t hi, int want)
{
	const unsigned char *b = (const unsigned char *)text;
	size_t pos = hi;
	int got = 0;

	while (pos > lo && got < want) {
		size_t q = char_start_before(b, lo, pos), w;
		int cls = class_at(b, q, pos);

		if (cls == C_SPACE) {
			pos = q;
			continue;
		}
		got++;
		for (w = q; cls == C_WORD && w > lo;) {
			size_t q2 = char_start_before(b, lo, w);

			if (class_at(b, q2, w) != C_WORD || pos - q2 > CHUNK_WORD_BYTES)
				break;
			w = q2;
		}
		pos = w;
	}
	return pos;
}

/*
 * Where the next chunk starts inside the closed chunk [lo, hi): about want
 * tokens before hi, moved to the first sentence start after that when at
 * least half of want is left, else to the first line start on the same
 * terms (lines of PDF or wrapped text often start mid-sentence). *got:
 * budget tokens in [start, hi).
 */
static size_t overlap_start(const chunker *ck, size_t lo, size_t hi, int want, int *got)
{
	size_t pos = back_tokens(ck->text, lo, hi, want), spos = pos, lpos = pos;
	tok_it it = tok_at(ck->text, pos, hi);
	int total = 0, sbefore = -1, lbefore = -1, half = (want + 1) / 2;
	sent ss = {0};
	tok t;

	while (tok_next(&it, &t)) {
		if (sentence_start(&ss, &t) && sbefore < 0) {
			sbefore = total;
			spos = t.start;
		}
		if (t.nl && total > 0 && lbefore < 0) {
			lbefore = total;
			lpos = t.start;
		}
		total++;
	}
	*got = total;
	if (sbefore >= 0 && total - sbefore >= half) {
		*got = total - sbefore;
		return spos;
	}
	if (lbefore >= 0 && total - lbefore >= half) {
		*got = total - lbefore;
		return lpos;
	}
	return pos;
}

/* Add the unit [us, ue) of ut budget tokens (ut <= max) to the section. */
static rag_rc add_unit(chunker *ck, size_t us, size_t ue, int ut)
{
	size_t lo = ck->cs, hi = ck->ce, start = us;
	int want, got, tokens = ut;
	rag_rc rc;

	if (ck->open && ck->ct + ut <= ck->max) {
		ck->ce = ue;
		ck->ct += ut;
		return RAG_OK;
	}
	if (ck->open) {
		want = ck->ov;
		if (want > ck->max - ut)
			want = ck->max - ut;
		if (want > ck->ct - 1)
			want = ck->ct - 1;
		if ((rc = emit(ck)))
			return rc;
		if (want > 0) {
			size_t p = overlap_start(ck, lo, hi, want, &got);

			if (p > lo && p < hi && got + ut <= ck->max) {
				start = p;
				tokens = got + ut;
			}
		}
	}
	ck->open = true;
	ck->cs = start;
	ck->ce = ue;
	ck->ct = tokens;
	return RAG_OK;
}

/* ----------------------------------------------------------- splitters */

/*
 * An oversized sentence [s, e): pieces of at most max - overlap tokens (so
 * the overlap fits beside them), cut at the last line start if that is in
 * the second half of the piece, else at a token boundary.
 */
static rag_rc split_pieces(chunker *ck, size_t s, size_t e)
{
	int lim = ck->max - ck->ov, cnt = 0, lcnt = 0;
	tok_it it = tok_at(ck->text, s, e);
	size_t ps = s, pe = s, ls = 0, lend = 0;
	rag_rc rc;
	tok t;

	if (lim < 1)
		lim = 1;
	while (tok_next(&it, &t)) {
		if (cnt == lim) {
			if (lcnt > 0 && lcnt >= (lim + 1) / 2) {
				if ((rc = add_unit(ck, ps, lend, lcnt)))
					return rc;
				it = tok_at(ck->text, ls, e); /* rescan from the line start */
				cnt = lcnt = 0;
				continue;
			}
			if ((rc = add_unit(ck, ps, pe, cnt)))
				return rc;
			cnt = lcnt = 0;
		}
		if (cnt > 0 && t.nl) {
			ls = t.start;
			lend = pe;
			lcnt = cnt;
		}
		if (cnt == 0)
			ps = t.start;
		cnt++;
		pe = t.end;
	}
	return cnt ? add_unit(ck, ps, pe, cnt) : RAG_OK;
}

static rag_rc add_sentence(chunker *ck, size_t s, size_t e, size_t cnt)
{
	if (cnt <= (size_t)ck->max)
		return add_unit(ck, s, e, (int)cnt);
	return split_pieces(ck, s, e);
}

/* An oversized block [s, e): its sentences become units. */
static rag_rc split_block(chunker *ck, size_t s, size_t e)
{
	tok_it it = tok_at(ck->text, s, e);
	size_t s0 = s, last = s, cnt = 0;
	sent ss = {0};
	rag_rc rc;
	tok t;

	while (tok_next(&it, &t)) {
		if (sentence_start(&ss, &t) && cnt > 0) {
			if ((rc = add_sentence(ck, s0, last, cnt)))
				return rc;
			cnt = 0;
		}
		if (cnt == 0)
			s0 = t.start;
		cnt++;
		last = t.end;
	}
	return cnt ? add_sentence(ck, s0, last, cnt) : RAG_OK;
}

/* ---------------------------------------------------------------- entry */

static bool ascii_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static rag_rc add_block(chunker *ck, const doc_block *b)
{
	size_t s = b->off, e = b->off + b->len, bt;
	const char *path = b->heading_path ? b->heading_path : "";

	while (s < e && ascii_space(ck->text[s]))
		s++;
	while (e > s && ascii_space(ck->text[e - 1]))
		e--;
	bt = budget(ck->text, s, e);
	if (b->heading || !ck->path || (path != ck->path && strcmp(path, ck->path) != 0)) {
		rag_rc rc = emit(ck); /* a new section: no overlap across it */

		if (rc)
			return rc;
		ck->path = path;
	}
	if (bt == 0)
		return RAG_OK;
	if (bt <= (size_t)ck->max)
		return add_unit(ck, s, e, (int)bt);
	return split_block(ck, s, e);
}

/* The page of the block holding text byte pos (the last block starting at
 * or before it). */
static int page_at(const parsed_doc *doc, size_t pos)
{
	size_t lo = 0, hi = doc->nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (doc->blocks[mid].off <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? doc->blocks[lo - 1].page : 0;
}

/* Invariant 5. */
static void cite_chunks(const parsed_doc *doc, doc_chunk *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c[i].page = page_at(doc, c[i].off);
		c[i].page_end = page_at(doc, c[i].off + (c[i].len ? c[i].len - 1 : 0));
		if (!parse_source_range(doc, c[i].off, c[i].len, &c[i].src_off, &c[i].src_end))
			c[i].src_off = c[i].src_end = 0;
	}
}

rag_rc chunk_document(const parsed_doc *doc, const chunk_opts *opts, doc_chunk **chunks,
		      size_t *n, rag_error *err)
{
	chunk_opts o = opts ? *opts : CHUNK_OPTS_DEFAULT;
	chunker ck = {0};
	size_t prev_end = 0;
	rag_rc rc = RAG_OK;

	*chunks = NULL;
	*n = 0;
	if (!doc)
		return rag_error_set(err, RAG_EINVAL, "chunk: no document");
	if (o.max_tokens < 1 || o.overlap_tokens < 0 || o.overlap_tokens >= o.max_tokens)
		return rag_error_set(err, RAG_EINVAL,
				     "chunk: bad options max_tokens=%d overlap_tokens=%d "
				     "(need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens)",
				     o.max_tokens, o.overlap_tokens);
	if (!doc->text || doc->len == 0)
		return RAG_OK;
	ck.text = doc->text;
	ck.max = o.max_tokens;
	ck.ov = o.overlap_tokens;
	ck.err = err;
	for (size_t i = 0; i < doc->nblocks; i++) {
		const doc_block *b = &doc->blocks[i];

		if (b->off < prev_end || b->off > doc->len || b->len > doc->len - b->off) {
			rc = rag_error_set(err, RAG_EINVAL,
					   "chunk: block %zu [%zu, +%zu) is out of order or "
					   "outside the text (%zu bytes)",
					   i, b->off, b->len, doc->len);
			goto out;
		}
		prev_end = b->off + b->len;
		if ((rc = add_block(&ck, b)))
			goto out;
	}
	rc = emit(&ck);
	if (!rc)
		cite_chunks(doc, ck.out, ck.n);
out:
	if (rc) {
		doc_chunks_free(ck.out, ck.n);
		return rc;
	}
	*chunks = ck.out;
	*n = ck.n;
	return RAG_OK;
}

void doc_chunks_free(doc_chunk *chunks, size_t n)
{
	if (!chunks)
		return;
	for (size_t i = 0; i < n; i++)
		free(chunks[i].heading_path);
	free(chunks);
}
