/*
 * parse_html.c — HTML through libxml2's recovering HTML parser.
 *
 * The tree is walked iteratively (parent/next pointers, no recursion and no
 * explicit stack), so depth costs nothing here; libxml2 itself stops
 * building the tree at depth 256 (we never pass XML_PARSE_HUGE) and the
 * content below that is lost.
 *
 * <head> (except its <title>), <script>, <style>, <nav>, <noscript>,
 * <template> and embedded objects are dropped with everything inside. Block
 * elements (p, div, li, pre, blockquote, dd, dt, headings, ...) start and end
 * blocks; the cells of one table row form one block, " | " between cells;
 * everything else is inline. Whitespace is collapsed except inside <pre>.
 *
 * Source map (parse.h, invariant 5): libxml2's tree has no byte offsets,
 * so each text node is found in the source by its first run of ASCII
 * letters and digits, searching forward from where the previous node ended
 * (starting at "<body" if there is one) for an occurrence outside a tag;
 * the node starts after the '>' before it (whitespace skipped). If the
 * node's content is the source bytes there, its words map exactly; else
 * the node maps as a whole, up to the '<' after the anchor. The searches
 * read at most 4 x the document size plus 64 KiB in all; a node not found
 * maps to nothing.
 *
 * Encoding: a declared charset (<meta>, XML declaration) is left to libxml2;
 * an undeclared document is read as UTF-8, its invalid bytes replaced by
 * U+FFFD and counted (libxml2 2.9 would otherwise assume Latin-1).
 */
#include <libxml/HTMLparser.h>
#include <libxml/xmlerror.h>
#include <libxml/tree.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse_int.h"
#include "rag_util.h"

#define HTML_OPTS                                                            \
	(HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |      \
	 HTML_PARSE_RECOVER | HTML_PARSE_COMPACT)

typedef enum {
	T_INLINE, /* not in the table */
	T_DROP,
	T_HEAD,
	T_TITLE,
	T_BLOCK,
	T_HEADING,
	T_PRE,
	T_BR,
	T_ROW,
	T_CELL,
} tag_kind;

typedef struct tag {
	const char *name;
	tag_kind kind;
} tag;

/* Sorted by name for bsearch. libxml2 lower-cases HTML element names. */
static const tag tags[] = {
	{"address", T_BLOCK},  {"article", T_BLOCK},    {"aside", T_BLOCK},
	{"blockquote", T_BLOCK}, {"body", T_BLOCK},     {"br", T_BR},
	{"canvas", T_DROP},    {"caption", T_BLOCK},    {"center", T_BLOCK},
	{"dd", T_BLOCK},       {"details", T_BLOCK},    {"dialog", T_BLOCK},
	{"div", T_BLOCK},      {"dl", T_BLOCK},         {"dt", T_BLOCK},
	{"embed", T_DROP},     {"fieldset", T_BLOCK},   {"figcaption", T_BLOCK},
	{"figure", T_BLOCK},   {"footer", T_BLOCK},     {"form", T_BLOCK},
	{"h1", T_HEADING},     {"h2", T_HEADING},       {"h3", T_HEADING},
	{"h4", T_HEADING},     {"h5", T_HEADING},       {"h6", T_HEADING},
	{"head", T_HEAD},      {"header", T_BLOCK},     {"hr", T_BLOCK},
	{"html", T_BLOCK},     {"iframe", T_DROP},      {"legend", T_BLOCK},
	{"li", T_BLOCK},       {"listing", T_PRE},      {"main", T_BLOCK},
	{"math", T_DROP},      {"menu", T_BLOCK},       {"nav", T_DROP},
	{"noscript", T_DROP},  {"object", T_DROP},      {"ol", T_BLOCK},
	{"p", T_BLOCK},        {"plaintext", T_PRE},    {"pre", T_PRE},
	{"script", T_DROP},    {"section", T_BLOCK},    {"select", T_DROP},
	{"style", T_DROP},     {"summary", T_BLOCK},    {"svg", T_DROP},
	{"table", T_BLOCK},    {"tbody", T_BLOCK},      {"td", T_CELL},
	{"template", T_DROP},  {"tfoot", T_BLOCK},      {"th", T_CELL},
	{"thead", T_BLOCK},    {"title", T_TITLE},      {"tr", T_ROW},
	{"ul", T_BLOCK},       {"xmp", T_PRE},
};

typedef struct html_state {
	doc_builder *db;
	rag_buf blk;    /* text of the open block */
	int level;      /* heading level of the open block, 0 for body */
	int pre;        /* depth of <pre> */
	int rows;       /* depth of <tr> */
	bool space;     /* whitespace seen since the last text */
	rag_error *err;
	/* source map */
	bool map_on;
	srcmap blk_map;      /* blk -> object */
	const char *src;     /* what libxml2 parsed */
	size_t srclen;
	const srcmap *cmap;  /* src -> object when src is a cleaned copy, else NULL */
	size_t cur;          /* the next text node is searched from here */
	size_t budget;       /* bytes the searches may still read */
} html_state;

/* Where a text node's content is in src. */
typedef struct node_loc {
	bool verbatim;  /* content[k0, k0 + m) == src[p, p + m) */
	size_t p, k0;   /* verbatim: content byte i (>= k0) is src byte p + i - k0 */
	size_t end;     /* not verbatim: the node is src[p, end) */
} node_loc;

static int tag_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const tag *)elem)->name);
}

static tag_kind kind_of(const xmlNode *n)
{
	const tag *t;

	if (!n->name)
		return T_INLINE;
	t = bsearch(n->name, tags, sizeof(tags) / sizeof(tags[0]), sizeof(tags[0]), tag_cmp);
	return t ? t->kind : T_INLINE;
}

static rag_rc fail(html_state *st, rag_rc rc)
{
	return parse_fail(st->db->key, rc, st->err);
}

static rag_rc flush(html_state *st)
{
	rag_rc rc;

	st->db->in_base = st->map_on ? st->blk.data : NULL;
	st->db->in_map = &st->blk_map;
	rc = db_add_block(st->db, st->blk.data, st->blk.len, st->level, st->err);
	st->db->in_base = NULL;
	st->db->in_map = NULL;
	rag_buf_reset(&st->blk);
	srcmap_reset(&st->blk_map);
	st->space = false;
	return rc;
}

static bool ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

#define BACK_MAX 4096 /* how far back from its word a node's start is sought */

/* Find the text node s[0, n) in the source (see the top). */
static bool locate(html_state *st, const char *s, size_t n, node_loc *l)
{
	size_t k0 = 0, q, wn = 0, m, from = st->cur;

	while (k0 < n && parse_is_space((unsigned char)s[k0]))
		k0++;
	if (k0 == n)
		return false;
	m = n - k0;
	while (m > 0 && parse_is_space((unsigned char)s[k0 + m - 1]))
		m--;
	/* the anchor: the first run of ASCII letters and digits (what a
	 * character reference cannot have produced), at most 32 of them */
	for (q = k0; q < n && !ascii_alnum((unsigned char)s[q]); q++)
		;
	while (q + wn < n && wn < 32 && ascii_alnum((unsigned char)s[q + wn]))
		wn++;
	/* first the next text after the cursor, past tags and whitespace: the
	 * node itself unless the source has dropped content (script, style) there */
	for (size_t b = st->cur, hops = 0; hops < 64 && b < st->srclen && st->budget > 0; hops++) {
		const char *gt;

		while (b < st->srclen && parse_is_space((unsigned char)st->src[b]))
			b++;
		if (b < st->srclen && st->src[b] == '<' &&
		    (gt = memchr(st->src + b, '>', st->srclen - b))) {
			st->budget -= st->budget > (size_t)(gt - st->src) - b ? (size_t)(gt - st->src) - b : st->budget;
			b = (size_t)(gt - st->src) + 1;
			continue;
		}
		if (m <= st->srclen - b && memcmp(st->src + b, s + k0, m) == 0) {
			l->p = b;
			l->k0 = k0;
			l->verbatim = true;
			st->cur = b + m;
			return true;
		}
		break;
	}
	if (wn == 0)
		return false;
	while (st->budget > 0 && from < st->srclen) {
		size_t win = st->srclen - from < st->budget ? st->srclen - from : st->budget;
		const char *p = memmem(st->src + from, win, s + q, wn);
		size_t at, b, lim;

		if (!p) {
			st->budget -= win;
			return false;
		}
		at = (size_t)(p - st->src);
		st->budget -= at - from + 1;
		/* the node starts after the tag before it; inside a tag: not it */
		lim = at - st->cur > BACK_MAX ? at - BACK_MAX : st->cur;
		for (b = at; b > lim && st->src[b - 1] != '>' && st->src[b - 1] != '<'; b--)
			;
		st->budget -= st->budget > at - b ? at - b : st->budget;
		if (b > 0 && st->src[b - 1] == '<') {
			from = at + 1;
			continue;
		}
		while (b < at && parse_is_space((unsigned char)st->src[b]))
			b++;
		if (q == k0 && b != at) { /* other text before the node's first word */
			from = at + 1;
			continue;
		}
		l->p = b;
		l->k0 = k0;
		l->verbatim = m <= st->srclen - b && memcmp(st->src + b, s + k0, m) == 0;
		if (l->verbatim) {
			st->cur = b + m;
		} else {
			const char *lt = memchr(p, '<', st->srclen - at);
			size_t e = lt ? (size_t)(lt - st->src) : st->srclen;

			while (e > at && parse_is_space((unsigned char)st->src[e - 1]))
				e--;
			l->end = e;
			st->cur = e;
		}
		return true;
	}
	return false;
}

/* Append s[a, b) of a text node to blk (cleaned), mapped when l is given. */
static rag_rc put_text(html_state *st, const char *s, size_t a, size_t b, const node_loc *l)
{
	size_t before = st->blk.len;
	rag_rc rc = parse_clean_utf8(&st->blk, s + a, b - a, 0, &st->db->invalid);

	if (!rc && l && a >= l->k0)
		srcmap_copy(&st->blk_map, before, st->blk.len - before, st->cmap,
			    l->p + (a - l->k0), b - a, st->blk.len - before == b - a);
	return rc;
}

/* Append a text node's content, collapsing whitespace (and U+00A0); l:
 * where it is in the source when it is there verbatim. */
static rag_rc add_text(html_state *st, const char *s, size_t n, const node_loc *l)
{
	size_t i = 0;
	rag_rc rc = RAG_OK;

	if (st->pre) {
		size_t a = 0;

		if (l) /* leading whitespace is kept but not mapped */
			a = l->k0;
		if (a && (rc = parse_clean_utf8(&st->blk, s, a, 0, &st->db->invalid)))
			return rc;
		return put_text(st, s, a, n, l);
	}
	while (i < n) {
		size_t j = i;

		while (j < n && !parse_is_space((unsigned char)s[j]) &&
		       !((unsigned char)s[j] == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0))
			j++;
		if (j > i) {
			if (st->space && st->blk.len && st->blk.data[st->blk.len - 1] != '\n' &&
			    (rc = rag_buf_putc(&st->blk, ' ')))
				break;
			st->space = false;
			if ((rc = put_text(st, s, i, j, l)))
				break;
		}
		if (j < n) {
			st->space = true;
			j += (unsigned char)s[j] == 0xC2 ? 2 : 1;
		}
		i = j;
	}
	return rc;
}

static const char *node_text(const xmlNode *n)
{
	return n->content ? (const char *)n->content : "";
}

/* The text directly inside e (its text children), as a title candidate. */
static rag_rc take_title(html_state *st, const xmlNode *e)
{
	rag_buf t;
	rag_rc rc = RAG_OK;

	rag_buf_init(&t, 64 * 1024);
	for (const xmlNode *c = e->children; c && !rc; c = c->next)
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
			rc = rag_buf_puts(&t, node_text(c));
	if (rc == RAG_ETOOBIG) /* an absurd title: keep the start */
		rc = RAG_OK;
	if (rc)
		rc = fail(st, rc);
	else if (t.len)
		rc = db_set_title(st->db, t.data, t.len, st->err);
	rag_buf_release(&t);
	return rc;
}

/* Entering n. *descend: whether to visit its children (and leave it later). */
static rag_rc enter(html_state *st, const xmlNode *n, bool *descend)
{
	rag_rc rc = RAG_OK;

	*descend = false;
	if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
		const char *s = node_text(n);
		size_t len = strlen(s), before = st->blk.len;
		node_loc l;
		bool found = st->map_on && locate(st, s, len, &l);

		if ((rc = add_text(st, s, len, found && l.verbatim ? &l : NULL)))
			return fail(st, rc);
		if (found && !l.verbatim && st->blk.len > before)
			srcmap_copy(&st->blk_map, before, st->blk.len - before, st->cmap, l.p,
				    l.end - l.p, false);
		return rc;
	}
	if (n->type != XML_ELEMENT_NODE)
		return RAG_OK;
	switch (kind_of(n)) {
	case T_DROP:
		return RAG_OK;
	case T_HEAD:
		for (const xmlNode *c = n->children; c && !rc; c = c->next)
			if (c->type == XML_ELEMENT_NODE && kind_of(c) == T_TITLE)
				rc = take_title(st, c);
		return rc;
	case T_TITLE:
		return take_title(st, n);
	case T_BR:
		st->space = false;
		return (rc = rag_buf_putc(&st->blk, '\n')) ? fail(st, rc) : RAG_OK;
	case T_HEADING:
		rc = flush(st);
		st->level = n->name[1] - '0';
		break;
	case T_PRE:
		rc = flush(st);
		st->pre++;
		break;
	case T_ROW:
		rc = flush(st);
		st->rows++;
		break;
	case T_CELL:
		if (st->rows > 0 && st->blk.len) {
			st->space = false;
			if ((rc = rag_buf_puts(&st->blk, " | ")))
				rc = fail(st, rc);
		} else if (st->rows == 0) {
			rc = flush(st);
		}
		break;
	case T_BLOCK:
		rc = flush(st);
		break;
	case T_INLINE:
		break;
	}
	*descend = true;
	return rc;
}

static rag_rc leave(html_state *st, const xmlNode *n)
{
	rag_rc rc = RAG_OK;

	if (n->type != XML_ELEMENT_NODE)
		return RAG_OK;
	switch (kind_of(n)) {
	case T_HEADING:
		rc = flush(st);
		st->level = 0;
		break;
	case T_PRE:
		rc = flush(st);
		st->pre--;
		break;
	case T_ROW:
		rc = flush(st);
		st->rows--;
		break;
	case T_CELL:
		if (st->rows == 0)
			rc = flush(st);
		break;
	case T_BLOCK:
		rc = flush(st);
		break;
	default:
		break;
	}
	return rc;
}

/* Pre-order walk with enter/leave events, iterative. */
static rag_rc walk(html_state *st, xmlNode *root)
{
	xmlNode *n = root;
	bool descend;
	rag_rc rc;

	while (n) {
		if ((rc = enter(st, n, &descend)))
			return rc;
		if (descend && n->children) {
			n = n->children;
			continue;
		}
		if (descend && (rc = leave(st, n)))
			return rc;
		while (n != root && !n->next) {
			n = n->parent;
			if ((rc = leave(st, n)))
				return rc;
		}
		if (n == root)
			break;
		n = n->next;
	}
	return flush(st);
}

/*
 * Does the document name its encoding (<meta charset>, http-equiv, an XML
 * declaration) where libxml2 looks for it? Without one libxml2 2.9 assumes
 * Latin-1, but undeclared documents today are UTF-8.
 */
static bool declares_charset(const char *data, size_t len)
{
	static const char *const marks[] = {"charset", "encoding="};
	size_t n = len < 1024 ? len : 1024;

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < 2; k++)
			if (n - i >= strlen(marks[k]) && strncasecmp(data + i, marks[k], strlen(marks[k])) == 0)
				return true;
	return false;
}

/* Where "<body" starts (case-insensitive), else 0: text nodes are searched
 * from there, so a <title> is not taken for the same words in the body. */
static size_t body_start(const char *data, size_t len)
{
	for (const char *p = data; (p = memchr(p, '<', len - (size_t)(p - data))); p++)
		if (len - (size_t)(p - data) >= 5 && strncasecmp(p, "<body", 5) == 0)
			return (size_t)(p - data);
	return 0;
}

/* libxml2 reports some errors (encoding conversion, I/O) through its
 * generic handler, which prints, whatever the parse options say. */
static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void init_libxml(void)
{
	xmlInitParser();
}

rag_rc parse_html(doc_builder *db, const char *data, size_t len, rag_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	html_state st = {.db = db, .err = err};
	htmlParserCtxtPtr ctxt = NULL;
	htmlDocPtr doc = NULL;
	xmlNode *root;
	const char *enc = NULL;
	xmlGenericErrorFunc old_handler;
	void *old_ctx;
	rag_buf clean;
	srcmap cmap = {0};
	rag_rc rc = RAG_OK;

	rag_buf_init(&st.blk, PARSE_TEXT_MAX);
	rag_buf_init(&clean, PARSE_TEXT_MAX);
	pthread_once(&once, init_libxml);
	if (!(ctxt = htmlNewParserCtxt())) {
		rc = parse_fail(db->key, RAG_ENOMEM, err);
		goto out;
	}
	if (!declares_charset(data, len)) {
		enc = "UTF-8"; /* and make it so: invalid bytes become U+FFFD */
		if (!rag_utf8_valid(data, len)) {
			st.cmap = &cmap;
			if ((rc = parse_clean_utf8_map(&clean, data, len, 0, &db->invalid,
						       db->want_map ? &cmap : NULL, 0))) {
				rc = parse_fail(db->key, rc, err);
				goto out;
			}
			data = clean.data ? clean.data : "";
			len = clean.len;
		}
	}
	if (len > INT_MAX) {
		rc = rag_error_set(err, RAG_ETOOBIG, "\"%s\": HTML larger than %d bytes",
				   db->key, INT_MAX);
		goto out;
	}
	/* the handler is per thread in libxml2: swap it for this parse only */
	old_handler = xmlGenericError;
	old_ctx = xmlGenericErrorContext;
	xmlSetGenericErrorFunc(NULL, quiet);
	doc = htmlCtxtReadMemory(ctxt, data, (int)len, NULL, enc, HTML_OPTS);
	xmlSetGenericErrorFunc(old_ctx, old_handler);
	root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!root) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);

		if (e && e->level >= XML_ERR_FATAL && e->message) {
			char msg[256];
			size_t k;

			rag_strlcpy(msg, e->message, sizeof(msg));
			k = strlen(msg);
			while (k > 0 && parse_is_space((unsigned char)msg[k - 1]))
				msg[--k] = '\0';
			rc = rag_error_set(err, RAG_EPARSE, "\"%s\": HTML: %s", db->key, msg);
		}
		goto out; /* else nothing in it: an empty document */
	}
	st.map_on = db->want_map;
	st.src = data;
	st.srclen = len;
	st.budget = 4 * len + 65536;
	st.cur = body_start(data, len);
	rc = walk(&st, root);
out:
	if (doc)
		xmlFreeDoc(doc);
	if (ctxt)
		htmlFreeParserCtxt(ctxt);
	rag_buf_release(&st.blk);
	rag_buf_release(&clean);
	srcmap_release(&st.blk_map);
	srcmap_release(&cmap);
	return rc;
}
