/*
 * parse_md.c — a small line-based Markdown reader: enough structure for
 * retrieval, not a renderer.
 *
 * Block level: ATX (#..######) and setext (=== / ---) headings; fenced
 * (``` ~~~) and indented code kept verbatim as one block each ('#' inside
 * is text); paragraphs; a list (its items and continuation lines, across
 * single blank lines between items) is one block; a block quote is one
 * block; thematic breaks, link reference definitions, table delimiter rows
 * and YAML front matter are dropped ("title:" in front matter sets the
 * title).
 *
 * Inline, lightly: [text](url), ![alt](url) and [text][ref] keep only the
 * text; `code` loses its backticks; *, **, _, __, ~~ emphasis markers are
 * dropped unless they sit inside a word or between spaces; <http://...>
 * autolinks keep the URL; backslash escapes are resolved.
 *
 * Source map: every byte of a block's text is copied from the cleaned
 * source (inline stripping only drops bytes), and each copy is recorded:
 * raw_map maps the raw lines of the open block to the source, out_map the
 * inline-stripped text (parse.h, invariant 5).
 *
 * Every step is linear: each search for a closing ']', ')' or backtick run
 * is cached so that no byte is scanned more than a bounded number of times.
 */
#include <string.h>

#include "parse_int.h"

#define LINK_TEXT_MAX 4096  /* longest [text] taken for a link */
#define LINK_URL_MAX 2048   /* longest (url "title") */
#define CODE_RUN_MAX 16     /* longer backtick runs are literal */

typedef enum { B_NONE, B_PARA, B_LIST, B_QUOTE, B_CODE } blk_kind;

typedef struct md_state {
	doc_builder *db;
	rag_buf raw;    /* raw lines of the open block, '\n' separated */
	rag_buf out;    /* inline-stripped text of a block or heading */
	srcmap raw_map; /* raw -> source */
	srcmap out_map; /* out -> source */
	bool map_on;    /* keep the maps (db->want_map) */
	const char *cbase;   /* the cleaned source (db->in_base on entry) */
	const srcmap *cmap;  /* cleaned source -> object */
	blk_kind kind;
	char fence;     /* '`' or '~' inside a fenced code block, else 0 */
	size_t fence_len;
	rag_error *err;
} md_state;

typedef struct line {
	const char *s;
	size_t n;       /* without the '\n' */
	size_t ind;     /* leading whitespace in columns (tab = to next 4) */
	size_t pos;     /* index of the first non-blank byte (n if blank) */
} line;

/* --------------------------------------------------------------- inline */

/* Result of one memchr, reused while the query point stays before it. */
typedef struct find_cache {
	bool valid;
	size_t from, at; /* no ch in [from, at); at == n: none at all */
} find_cache;

static size_t find_char(const char *s, size_t n, size_t from, char ch, find_cache *c)
{
	const char *p;

	if (from >= n)
		return n;
	if (c->valid && from >= c->from && from <= c->at)
		return c->at;
	p = memchr(s + from, ch, n - from);
	c->valid = true;
	c->from = from;
	c->at = p ? (size_t)(p - s) : n;
	return c->at;
}

typedef struct inl {
	const char *s;
	size_t n;
	find_cache close, paren, ref;  /* ']' after '[', ')' after "](", ']' after "][" */
	bool no_code[CODE_RUN_MAX + 1]; /* no closing run of this length remains */
	bool skip;                      /* a link's "](url)" is pending */
	size_t skip_from, skip_to;
} inl;

static bool is_punct(unsigned char c)
{
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
	       (c >= '{' && c <= '~');
}

/* Letters, digits and any non-ASCII byte count as word characters. */
static bool is_wordish(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c >= 0x80;
}

static size_t run_len(const char *s, size_t n, size_t i, char ch)
{
	size_t k = 0;

	while (i + k < n && s[i + k] == ch)
		k++;
	return k;
}

/* Is the '[' at i a link? Then note where its "](url)" / "][ref]" is. */
static bool link_at(inl *x, size_t i)
{
	size_t j = find_char(x->s, x->n, i + 1, ']', &x->close), r;

	if (j >= x->n || j - i > LINK_TEXT_MAX || j + 1 >= x->n)
		return false;
	if (x->s[j + 1] == '(')
		r = find_char(x->s, x->n, j + 2, ')', &x->paren);
	else if (x->s[j + 1] == '[')
		r = find_char(x->s, x->n, j + 2, ']', &x->ref);
	else
		return false;
	if (r >= x->n || r - j > LINK_URL_MAX)
		return false;
	x->skip = true;
	x->skip_from = j;
	x->skip_to = r + 1;
	return true;
}

/* Index of the closing run of exactly k backticks after i, or n. */
static size_t code_close(inl *x, size_t i, size_t k)
{
	size_t j = i;

	if (k > CODE_RUN_MAX || x->no_code[k])
		return x->n;
	while (j < x->n) {
		const char *p = memchr(x->s + j, '`', x->n - j);
		size_t r;

		if (!p)
			break;
		j = (size_t)(p - x->s);
		r = run_len(x->s, x->n, j, '`');
		if (r == k)
			return j;
		j += r;
	}
	x->no_code[k] = true;
	return x->n;
}

/* Length of an <scheme:...> autolink at i, 0 if none. */
static size_t autolink_len(const char *s, size_t n, size_t i)
{
	static const char *const schemes[] = {"<http://", "<https://", "<mailto:"};
	bool ok = false;

	for (size_t k = 0; k < 3; k++) {
		size_t len = strlen(schemes[k]);
		if (n - i >= len && memcmp(s + i, schemes[k], len) == 0)
			ok = true;
	}
	if (!ok)
		return 0;
	for (size_t j = i + 1; j < n && j - i <= LINK_URL_MAX; j++) {
		if (s[j] == '>')
			return j - i + 1;
		if (parse_is_space((unsigned char)s[j]) || s[j] == '<')
			return 0;
	}
	return 0;
}

/* Is a run of k emphasis characters at i a marker to drop? */
static bool emphasis_marker(const char *s, size_t n, size_t i, size_t k)
{
	unsigned char prev = i > 0 ? (unsigned char)s[i - 1] : ' ';
	unsigned char next = i + k < n ? (unsigned char)s[i + k] : ' ';

	if (k > 3 || (s[i] == '~' && k != 2))
		return false;
	if (parse_is_space(prev) && parse_is_space(next))
		return false; /* "2 * 3", a bullet */
	if (is_wordish(prev) && is_wordish(next))
		return false; /* snake_case, 2*3 */
	return true;
}

static const unsigned char special[256] = {
	['\\'] = 1, ['`'] = 1, ['!'] = 1, ['['] = 1, [']'] = 1,
	['<'] = 1,  ['*'] = 1, ['_'] = 1, ['~'] = 1,
};

/*
 * Append the inline-stripped s[0, n) to out. Literal text is copied in runs;
 * each special character either extends the run (literal) or flushes it and
 * emits a replacement.
 */
/* Append s[a, a+k) to out, mapped through imap (s[0] is ibase there). */
static rag_rc put_mapped(rag_buf *out, srcmap *omap, const srcmap *imap, size_t ibase,
			 const char *s, size_t a, size_t k)
{
	if (omap)
		srcmap_copy(omap, out->len, k, imap, ibase + a, k, true);
	return rag_buf_append(out, s + a, k);
}

/* omap NULL: no source map. */
static rag_rc md_inline(rag_buf *out, const char *s, size_t n, srcmap *omap, const srcmap *imap,
			size_t ibase)
{
	inl x = {.s = s, .n = n};
	size_t i = 0, run = 0, k, j;
	rag_rc rc = RAG_OK;

#define FLUSH()                                                             \
	do {                                                                \
		if ((rc = put_mapped(out, omap, imap, ibase, s, run, i - run))) \
			goto out;                                           \
	} while (0)

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (x.skip && i >= x.skip_from) {
			if (i == x.skip_from) { /* the "](url)" of a link */
				FLUSH();
				i = run = x.skip_to;
			}
			x.skip = false;
			continue;
		}
		if (!special[c]) {
			i++;
			continue;
		}
		switch (c) {
		case '\\':
			if (i + 1 < n && is_punct((unsigned char)s[i + 1])) {
				FLUSH();
				run = i + 1; /* keep the escaped character */
				i += 2;
			} else {
				i++;
			}
			break;
		case '`':
			k = run_len(s, n, i, '`');
			j = code_close(&x, i + k, k);
			if (j < n) {
				FLUSH();
				if ((rc = put_mapped(out, omap, imap, ibase, s, i + k, j - (i + k))))
					goto out;
				i = run = j + k;
			} else {
				i += k;
			}
			break;
		case '!':
			if (!x.skip && i + 1 < n && s[i + 1] == '[' && link_at(&x, i + 1)) {
				FLUSH();
				i = run = i + 2;
			} else {
				i++;
			}
			break;
		case '[':
			if (!x.skip && link_at(&x, i)) {
				FLUSH();
				run = ++i;
			} else {
				i++;
			}
			break;
		case '<':
			if ((k = autolink_len(s, n, i))) {
				FLUSH();
				if ((rc = put_mapped(out, omap, imap, ibase, s, i + 1, k - 2)))
					goto out;
				i = run = i + k;
			} else {
				i++;
			}
			break;
		case '*':
		case '_':
		case '~':
			k = run_len(s, n, i, (char)c);
			if (emphasis_marker(s, n, i, k)) {
				FLUSH();
				run = i + k;
			}
			i += k;
			break;
		default: /* ']' that does not close a link */
			i++;
			break;
		}
	}
	FLUSH();
#undef FLUSH
out:
	return rc;
}

/* ---------------------------------------------------------------- blocks */

static line make_line(const char *s, size_t n)
{
	line l = {s, n, 0, 0};

	while (l.pos < n && (s[l.pos] == ' ' || s[l.pos] == '\t')) {
		l.ind = s[l.pos] == '\t' ? (l.ind / 4 + 1) * 4 : l.ind + 1;
		l.pos++;
	}
	return l;
}

static bool line_blank(const line *l)
{
	return l->pos == l->n;
}

/* Only ch (and spaces/tabs after the run) from l->pos on; returns the run. */
static size_t only_run(const line *l, char ch)
{
	size_t k = run_len(l->s, l->n, l->pos, ch);

	for (size_t i = l->pos + k; i < l->n; i++)
		if (l->s[i] != ' ' && l->s[i] != '\t')
			return 0;
	return k;
}

static bool fence_open(const line *l, char *ch, size_t *len)
{
	size_t k;

	if (l->ind > 3 || line_blank(l) || (l->s[l->pos] != '`' && l->s[l->pos] != '~'))
		return false;
	k = run_len(l->s, l->n, l->pos, l->s[l->pos]);
	if (k < 3)
		return false;
	if (l->s[l->pos] == '`' && memchr(l->s + l->pos + k, '`', l->n - l->pos - k))
		return false; /* an inline code span, not a fence */
	*ch = l->s[l->pos];
	*len = k;
	return true;
}

static bool fence_close(const line *l, char ch, size_t len)
{
	return l->ind <= 3 && !line_blank(l) && only_run(l, ch) >= len;
}

/* ATX heading level (0 if not one); *ts, *tn: the heading text. */
static int atx_level(const line *l, const char **ts, size_t *tn)
{
	size_t k, b, e;

	if (l->ind > 3 || line_blank(l) || l->s[l->pos] != '#')
		return 0;
	k = run_len(l->s, l->n, l->pos, '#');
	b = l->pos + k;
	if (k > 6 || (b < l->n && l->s[b] != ' ' && l->s[b] != '\t'))
		return 0;
	e = l->n;
	while (e > b && (l->s[e - 1] == ' ' || l->s[e - 1] == '\t'))
		e--;
	/* an optional closing sequence: " ##" */
	size_t h = e;
	while (h > b && l->s[h - 1] == '#')
		h--;
	if (h == b || l->s[h - 1] == ' ' || l->s[h - 1] == '\t')
		e = h;
	*ts = l->s + b;
	*tn = e - b;
	return (int)k;
}

static int setext_level(const line *l)
{
	if (l->ind > 3 || line_blank(l))
		return 0;
	if (only_run(l, '=') >= 1)
		return 1;
	if (only_run(l, '-') >= 2)
		return 2;
	return 0;
}

/* "***", "- - -", "___": three or more of one character, spaces between. */
static bool thematic_break(const line *l)
{
	char ch;
	size_t count = 0;

	if (l->ind > 3 || line_blank(l))
		return false;
	ch = l->s[l->pos];
	if (ch != '*' && ch != '-' && ch != '_')
		return false;
	for (size_t i = l->pos; i < l->n; i++) {
		if (l->s[i] == ch)
			count++;
		else if (l->s[i] != ' ' && l->s[i] != '\t')
			return false;
	}
	return count >= 3;
}

/* Where the content of a list item starts, 0 if l is not one. */
static size_t list_item(const line *l)
{
	size_t i = l->pos, d = 0;

	if (line_blank(l))
		return 0;
	if (l->s[i] == '-' || l->s[i] == '*' || l->s[i] == '+') {
		i++;
	} else {
		while (i < l->n && d < 10 && l->s[i] >= '0' && l->s[i] <= '9')
			i++, d++;
		if (d == 0 || d > 9 || i >= l->n || (l->s[i] != '.' && l->s[i] != ')'))
			return 0;
		i++;
	}
	if (i < l->n && l->s[i] != ' ' && l->s[i] != '\t')
		return 0;
	return i;
}

/* "[label]: destination" */
static bool link_definition(const line *l)
{
	const char *close;
	size_t i;

	if (l->ind > 3 || line_blank(l) || l->s[l->pos] != '[')
		return false;
	close = memchr(l->s + l->pos, ']', l->n - l->pos);
	if (!close || close == l->s + l->pos + 1)
		return false;
	i = (size_t)(close - l->s) + 1;
	return i < l->n && l->s[i] == ':';
}

/* "| --- | :-: |" */
static bool table_delimiter(const line *l)
{
	bool dash = false, bar = false;

	for (size_t i = l->pos; i < l->n; i++) {
		char c = l->s[i];
		if (c == '-')
			dash = true;
		else if (c == '|')
			bar = true;
		else if (c != ':' && c != ' ' && c != '\t')
			return false;
	}
	return dash && bar;
}

/* s lies in the cleaned source. */
static rag_rc raw_add(md_state *st, const char *s, size_t n)
{
	rag_rc rc = RAG_OK;

	if (st->raw.len && (rc = rag_buf_putc(&st->raw, '\n')))
		return rc;
	if (st->map_on && n)
		srcmap_copy(&st->raw_map, st->raw.len, n, st->cmap, (size_t)(s - st->cbase), n, true);
	return rag_buf_append(&st->raw, s, n);
}

static void raw_reset(md_state *st)
{
	rag_buf_reset(&st->raw);
	srcmap_reset(&st->raw_map);
}

/* The inline-stripped s[0, n) into st->out (and out_map); s is at ibase in imap. */
static rag_rc strip(md_state *st, const char *s, size_t n, const srcmap *imap, size_t ibase)
{
	rag_buf_reset(&st->out);
	srcmap_reset(&st->out_map);
	return md_inline(&st->out, s, n, st->map_on ? &st->out_map : NULL, imap, ibase);
}

/* db_add_block with buf's bytes mapped by map. */
static rag_rc add_mapped(md_state *st, const char *s, size_t n, int level, const srcmap *map)
{
	rag_rc rc;

	st->db->in_base = s;
	st->db->in_map = map;
	rc = db_add_block(st->db, s, n, level, st->err);
	st->db->in_base = st->cbase;
	st->db->in_map = st->cmap;
	return rc;
}

static rag_rc fail(md_state *st, rag_rc rc)
{
	return parse_fail(st->db->key, rc, st->err);
}

/* Close the open block: emit it (code verbatim, the rest inline-stripped). */
static rag_rc flush(md_state *st)
{
	rag_rc rc = RAG_OK;

	if (st->kind == B_NONE && !st->fence)
		return RAG_OK;
	if (st->kind == B_CODE || st->fence) {
		rc = add_mapped(st, st->raw.data, st->raw.len, 0, &st->raw_map);
	} else {
		if ((rc = strip(st, st->raw.data ? st->raw.data : "", st->raw.len, &st->raw_map, 0)))
			return fail(st, rc);
		rc = add_mapped(st, st->out.data, st->out.len, 0, &st->out_map);
	}
	raw_reset(st);
	st->kind = B_NONE;
	st->fence = 0;
	return rc;
}

/* A heading from s[0, n), which is at ibase in imap. */
static rag_rc heading(md_state *st, const char *s, size_t n, int level, const srcmap *imap,
		      size_t ibase)
{
	rag_rc rc;

	if ((rc = strip(st, s, n, imap, ibase)))
		return fail(st, rc);
	for (size_t i = 0; i < st->out.len; i++) /* setext text may span lines */
		if (st->out.data[i] == '\n')
			st->out.data[i] = ' ';
	return add_mapped(st, st->out.data, st->out.len, level, &st->out_map);
}

/* Skip YAML front matter ("---" ... "---" or "..."); returns where to go on. */
static size_t front_matter(md_state *st, const char *s, size_t n, rag_rc *rc)
{
	size_t i, e = 0;
	const char *nl = memchr(s, '\n', n);

	*rc = RAG_OK;
	if (!nl || nl - s != 3 || memcmp(s, "---", 3) != 0)
		return 0;
	for (i = 4; i < n; i = e + 1) {
		const char *p = memchr(s + i, '\n', n - i);
		line l;

		e = p ? (size_t)(p - s) : n;
		l = make_line(s + i, e - i);
		if (l.ind == 0 && (only_run(&l, '-') == 3 || only_run(&l, '.') == 3))
			return e < n ? e + 1 : n;
		if (e - i > 6 && memcmp(s + i, "title:", 6) == 0) {
			const char *v = s + i + 6;
			size_t vn = e - i - 6;

			while (vn && (*v == ' ' || *v == '"' || *v == '\''))
				v++, vn--;
			while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '"' || v[vn - 1] == '\''))
				vn--;
			if ((*rc = db_set_title(st->db, v, vn, st->err)))
				return n;
		}
	}
	return 0; /* never closed: not front matter */
}

/*
 * After a blank line inside a list: the list goes on if the next non-blank
 * line is an item or indented. Returns the index of that line to resume at,
 * or 0 if the list ends.
 */
static size_t list_goes_on(const char *s, size_t n, size_t i)
{
	while (i < n) {
		const char *p = memchr(s + i, '\n', n - i);
		size_t e = p ? (size_t)(p - s) : n;
		line l = make_line(s + i, e - i);

		if (!line_blank(&l))
			return (list_item(&l) || l.ind >= 2) ? i : 0;
		i = e + 1;
	}
	return 0;
}

/* One line outside a fenced code block. *next may be moved forward. */
static rag_rc md_line(md_state *st, const line *l, const char *s, size_t n, size_t *next)
{
	const char *ts;
	size_t tn, k;
	char ch;
	int level;
	rag_rc rc;

	if (line_blank(l)) {
		if (st->kind == B_CODE)
			return (rc = raw_add(st, "", 0)) ? fail(st, rc) : RAG_OK;
		if (st->kind == B_LIST && (k = list_goes_on(s, n, *next))) {
			*next = k;
			return RAG_OK;
		}
		return flush(st);
	}
	if (st->kind == B_CODE) {
		if (l->ind >= 4) {
			size_t i = 0, col = 0; /* drop four columns of indent */
			while (col < 4 && i < l->pos)
				col = l->s[i++] == '\t' ? (col / 4 + 1) * 4 : col + 1;
			return (rc = raw_add(st, l->s + i, l->n - i)) ? fail(st, rc) : RAG_OK;
		}
		if ((rc = flush(st)))
			return rc;
	}
	if (l->ind >= 4 && st->kind == B_NONE) {
		st->kind = B_CODE;
		return md_line(st, l, s, n, next);
	}
	if (fence_open(l, &ch, &k)) {
		if ((rc = flush(st)))
			return rc;
		st->fence = ch;
		st->fence_len = k;
		return RAG_OK;
	}
	if ((level = atx_level(l, &ts, &tn))) {
		if ((rc = flush(st)))
			return rc;
		return heading(st, ts, tn, level, st->cmap, (size_t)(ts - st->cbase));
	}
	if (st->kind == B_PARA && (level = setext_level(l))) {
		rc = heading(st, st->raw.data, st->raw.len, level, &st->raw_map, 0);
		raw_reset(st);
		st->kind = B_NONE;
		return rc;
	}
	if (thematic_break(l))
		return flush(st);
	if (st->kind == B_NONE && link_definition(l))
		return RAG_OK;
	if (l->s[l->pos] == '>') {
		size_t i = l->pos;

		if (st->kind != B_QUOTE && (rc = flush(st)))
			return rc;
		st->kind = B_QUOTE;
		while (i < l->n && (l->s[i] == '>' || l->s[i] == ' ' || l->s[i] == '\t'))
			i++;
		return (rc = raw_add(st, l->s + i, l->n - i)) ? fail(st, rc) : RAG_OK;
	}
	if (list_item(l)) {
		if (st->kind != B_LIST && (rc = flush(st)))
			return rc;
		st->kind = B_LIST;
	} else if (st->kind == B_PARA && table_delimiter(l)) {
		return RAG_OK;
	} else if (st->kind == B_NONE) {
		st->kind = B_PARA;
	}
	return (rc = raw_add(st, l->s + l->pos, l->n - l->pos)) ? fail(st, rc) : RAG_OK;
}

rag_rc parse_md(doc_builder *db, const char *s, size_t n, rag_error *err)
{
	md_state st = {.db = db, .err = err, .map_on = db->want_map && db->in_base,
		       .cbase = db->in_base ? db->in_base : s, .cmap = db->in_map};
	size_t i, next;
	rag_rc rc;

	rag_buf_init(&st.raw, PARSE_TEXT_MAX);
	rag_buf_init(&st.out, PARSE_TEXT_MAX);
	i = front_matter(&st, s, n, &rc);
	if (rc)
		goto out;
	for (; i < n; i = next) {
		const char *p = memchr(s + i, '\n', n - i);
		size_t e = p ? (size_t)(p - s) : n;
		line l = make_line(s + i, e - i);

		next = e + 1;
		if (st.fence) {
			if (fence_close(&l, st.fence, st.fence_len))
				rc = flush(&st);
			else if ((rc = raw_add(&st, l.s, l.n)))
				rc = fail(&st, rc);
		} else {
			rc = md_line(&st, &l, s, n, &next);
		}
		if (rc)
			goto out;
	}
	rc = flush(&st);
out:
	rag_buf_release(&st.raw);
	rag_buf_release(&st.out);
	srcmap_release(&st.raw_map);
	srcmap_release(&st.out_map);
	return rc;
}
