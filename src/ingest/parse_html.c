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
} html_state;

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
	rag_rc rc = db_add_block(st->db, st->blk.data, st->blk.len, st->level, st->err);

	rag_buf_reset(&st->blk);
	st->space = false;
	return rc;
}

/* Append a text node's content, collapsing whitespace (and U+00A0). */
static rag_rc add_text(html_state *st, const char *s, size_t n)
{
	size_t i = 0;
	rag_rc rc = RAG_OK;

	if (st->pre)
		return parse_clean_utf8(&st->blk, s, n, 0, &st->db->invalid);
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
			if ((rc = parse_clean_utf8(&st->blk, s + i, j - i, 0, &st->db->invalid)))
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
		if ((rc = add_text(st, s, strlen(s))))
			rc = fail(st, rc);
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
			if ((rc = parse_clean_utf8(&clean, data, len, 0, &db->invalid))) {
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
	rc = walk(&st, root);
out:
	if (doc)
		xmlFreeDoc(doc);
	if (ctxt)
		htmlFreeParserCtxt(ctxt);
	rag_buf_release(&st.blk);
	rag_buf_release(&clean);
	return rc;
}
