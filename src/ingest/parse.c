/*
 * parse.c — type detection, the UTF-8 cleaner, the document builder and
 * parse_document(). The format parsers live in parse_text.c, parse_md.c,
 * parse_html.c and parse_pdf.c; see parse_int.h for what they share.
 */
#include "parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse_int.h"
#include "rag_util.h"

#define SNIFF_BINARY 8192 /* bytes examined for NULs and control bytes */
#define SNIFF_MAGIC 1024  /* bytes searched for "%PDF-" and "<html" */

static const char *const type_names[] = {"unknown", "text", "markdown", "html", "pdf"};

const char *doc_type_name(doc_type t)
{
	return (unsigned)t < RAG_ARRAY_LEN(type_names) ? type_names[t] : "unknown";
}

/* ------------------------------------------------------------- detection */

/* The extension of the key's last path segment ("" if none), lower case. */
static void key_ext(const char *key, char *ext, size_t cap)
{
	const char *base, *dot;
	size_t i;

	ext[0] = '\0';
	if (!key)
		return;
	base = strrchr(key, '/');
	base = base ? base + 1 : key;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return;
	for (i = 0; dot[1 + i] && i + 1 < cap; i++) {
		char c = dot[1 + i];
		ext[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (dot[1 + i]) /* longer than any extension we know */
		i = 0;
	ext[i] = '\0';
}

static bool ext_in(const char *ext, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ext, list[i]) == 0)
			return true;
	return false;
}

static bool has_pdf_magic(const char *data, size_t len)
{
	size_t n = len < SNIFF_MAGIC ? len : SNIFF_MAGIC;

	return n >= 5 && memmem(data, n, "%PDF-", 5) != NULL;
}

static bool is_binary(const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t n = len < SNIFF_BINARY ? len : SNIFF_BINARY, ctrl = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c == 0)
			return true;
		if ((c < 0x20 && !parse_is_space(c) && c != 0x1b) || c == 0x7f)
			ctrl++;
	}
	return ctrl * 10 > n;
}

static bool prefix_ci(const char *s, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	return n >= k && strncasecmp(s, lit, k) == 0;
}

/* Content that starts with markup and names <html> near the start. */
static bool looks_html(const char *data, size_t len)
{
	size_t i = 0, n = len < SNIFF_MAGIC ? len : SNIFF_MAGIC;

	if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < n && parse_is_space((unsigned char)data[i]))
		i++;
	if (i >= n || data[i] != '<')
		return false;
	for (; i < n; i++) {
		if (data[i] != '<')
			continue;
		if (prefix_ci(data + i, n - i, "<!doctype html"))
			return true;
		if (prefix_ci(data + i, n - i, "<html") &&
		    (i + 5 == n || data[i + 5] == '>' || parse_is_space((unsigned char)data[i + 5])))
			return true;
	}
	return false;
}

typedef enum { WHY_OK, WHY_BINARY, WHY_EXT } detect_why;

static doc_type detect(const char *key, const char *data, size_t len, detect_why *why)
{
	static const char *const html[] = {"html", "htm"};
	static const char *const md[] = {"md", "markdown"};
	static const char *const txt[] = {"txt", "text"};
	char ext[16];

	if (!data)
		len = 0;
	key_ext(key, ext, sizeof(ext));
	*why = WHY_OK;
	if (has_pdf_magic(data, len) || strcmp(ext, "pdf") == 0)
		return DOC_PDF;
	if (is_binary(data, len)) {
		*why = WHY_BINARY;
		return DOC_UNKNOWN;
	}
	if (ext_in(ext, html, RAG_ARRAY_LEN(html)))
		return DOC_HTML;
	if (ext_in(ext, md, RAG_ARRAY_LEN(md)))
		return DOC_MARKDOWN;
	if (looks_html(data, len))
		return DOC_HTML;
	if (!ext[0] || ext_in(ext, txt, RAG_ARRAY_LEN(txt)))
		return DOC_TEXT;
	*why = WHY_EXT;
	return DOC_UNKNOWN;
}

doc_type parse_detect(const char *key, const char *data, size_t len)
{
	detect_why why;

	return detect(key, data, len, &why);
}

/* ------------------------------------------------------------ UTF-8 */

size_t parse_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], c1;

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4 || n < 2 || (s[1] & 0xC0) != 0x80)
		return 0;
	if (c < 0xE0)
		return 2;
	c1 = s[1];
	if (n < 3 || (s[2] & 0xC0) != 0x80)
		return 0;
	if (c < 0xF0) {
		/* overlong forms and UTF-16 surrogates */
		if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))
			return 0;
		return 3;
	}
	if (n < 4 || (s[3] & 0xC0) != 0x80)
		return 0;
	if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
		return 0;
	return 4;
}

rag_rc parse_clean_utf8(rag_buf *out, const char *s, size_t n, unsigned flags,
			size_t *invalid)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run, k;
	rag_rc rc = RAG_OK;

	if (n <= out->max - out->len)
		rag_buf_reserve(out, n); /* a hint; appends below check again */
	if ((flags & CLEAN_BOM) && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	run = i;
	while (i < n) {
		unsigned char c = p[i];
		const char *rep;

		if ((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t') {
			i++;
			continue;
		}
		if (c >= 0x80 && (k = parse_utf8_seq(p + i, n - i))) {
			i += k;
			continue;
		}
		if ((rc = rag_buf_append(out, p + run, i - run)))
			goto out;
		if (c >= 0x80 || c == 0) {
			rep = "\xEF\xBF\xBD";
			(*invalid)++;
		} else if (c == '\r') {
			rep = "\n";
			if (i + 1 < n && p[i + 1] == '\n')
				i++;
		} else if (c == '\f' || c == '\v') {
			rep = "\n";
		} else {
			rep = " ";
		}
		if ((rc = rag_buf_puts(out, rep)))
			goto out;
		run = ++i;
	}
	rc = rag_buf_append(out, p + run, n - run);
out:
	return rc;
}

/* ------------------------------------------------------------- builder */

rag_rc parse_fail(const char *key, rag_rc rc, rag_error *err)
{
	if (rc == RAG_ETOOBIG)
		return rag_error_set(err, rc, "\"%s\": extracted text exceeds %zu bytes", key,
				     (size_t)PARSE_TEXT_MAX);
	if (rc == RAG_ENOMEM)
		return rag_error_set(err, rc, "\"%s\": out of memory", key);
	return rag_error_set(err, rc, "\"%s\": %s", key, rag_rc_message(rc));
}

void db_init(doc_builder *db, const char *key)
{
	memset(db, 0, sizeof(*db));
	db->key = key ? key : "";
	rag_buf_init(&db->text, PARSE_TEXT_MAX);
}

/* Free blocks' paths: consecutive blocks share one string. */
static void free_blocks(doc_block *blocks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (i == 0 || blocks[i].heading_path != blocks[i - 1].heading_path)
			free(blocks[i].heading_path);
	free(blocks);
}

void db_release(doc_builder *db)
{
	rag_buf_release(&db->text);
	free_blocks(db->blocks, db->nblocks);
	for (int i = 0; i < 6; i++)
		free(db->heads[i]);
	if (!db->path_used)
		free(db->path);
	free(db->title);
	free(db->first_h1);
	memset(db, 0, sizeof(*db));
}

/*
 * A copy of s[0, n) with whitespace runs collapsed to one space, trimmed,
 * cut at cap bytes on a character boundary. NULL when out of memory.
 */
static char *collapse_dup(const char *s, size_t n, size_t cap)
{
	char *d = malloc(cap + 1);
	size_t o = 0;
	bool space = false;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n && o < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (parse_is_space(c)) {
			space = o > 0;
			continue;
		}
		if (space) {
			d[o++] = ' ';
			space = false;
			if (o == cap)
				break;
		}
		d[o++] = (char)c;
	}
	/* a cut must not leave half a character (s is valid UTF-8) */
	if (o == cap) {
		size_t k = o;
		while (k > 0 && ((unsigned char)d[k - 1] & 0xC0) == 0x80)
			k--;
		if (k > 0 && parse_utf8_seq((unsigned char *)d + k - 1, o - (k - 1)) == 0)
			o = k - 1;
	}
	while (o > 0 && d[o - 1] == ' ')
		o--;
	d[o] = '\0';
	return d;
}

/* Rebuild db->path from the heading stack. */
static rag_rc rebuild_path(doc_builder *db)
{
	size_t n = 0, o = 0;
	char *p;

	for (int i = 0; i < 6; i++)
		if (db->heads[i])
			n += strlen(db->heads[i]) + 3;
	if (!(p = malloc(n + 1)))
		return RAG_ENOMEM;
	for (int i = 0; i < 6; i++) {
		size_t k;

		if (!db->heads[i])
			continue;
		if (o) {
			memcpy(p + o, " > ", 3);
			o += 3;
		}
		k = strlen(db->heads[i]);
		memcpy(p + o, db->heads[i], k);
		o += k;
	}
	p[o] = '\0';
	if (!db->path_used)
		free(db->path);
	db->path = p;
	db->path_used = false;
	return RAG_OK;
}

static rag_rc push_heading(doc_builder *db, const char *s, size_t n, int level)
{
	char *h = collapse_dup(s, n, PARSE_HEADING_MAX);

	if (!h)
		return RAG_ENOMEM;
	for (int i = level - 1; i < 6; i++) {
		free(db->heads[i]);
		db->heads[i] = NULL;
	}
	db->heads[level - 1] = h;
	if (level == 1 && !db->first_h1 && !(db->first_h1 = collapse_dup(s, n, PARSE_TITLE_MAX)))
		return RAG_ENOMEM;
	return rebuild_path(db);
}

rag_rc db_add_block(doc_builder *db, const char *s, size_t n, int level, rag_error *err)
{
	rag_rc rc = RAG_OK;
	doc_block *b;

	while (n > 0 && parse_is_space((unsigned char)*s))
		s++, n--;
	while (n > 0 && parse_is_space((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		goto out;
	if (level < 0 || level > 6)
		level = 0;
	if (level > 0 && (rc = push_heading(db, s, n, level)))
		goto out;
	if (!db->path && !(db->path = rag_strdup(""))) {
		rc = RAG_ENOMEM;
		goto out;
	}
	if (db->nblocks == db->capblocks) {
		size_t cap = db->capblocks ? db->capblocks * 2 : 64;
		doc_block *p = realloc(db->blocks, cap * sizeof(*p));

		if (!p) {
			rc = RAG_ENOMEM;
			goto out;
		}
		db->blocks = p;
		db->capblocks = cap;
	}
	if (db->text.len > 0 && (rc = rag_buf_append(&db->text, "\n\n", 2)))
		goto out;
	b = &db->blocks[db->nblocks];
	b->off = db->text.len;
	b->len = n;
	b->heading = level > 0;
	b->level = level;
	b->heading_path = db->path;
	if ((rc = rag_buf_append(&db->text, s, n)))
		goto out;
	db->nblocks++;
	db->path_used = true;
out:
	return rc ? parse_fail(db->key, rc, err) : RAG_OK;
}

rag_rc db_set_title(doc_builder *db, const char *s, size_t n, rag_error *err)
{
	rag_buf clean;
	size_t invalid = 0;
	rag_rc rc = RAG_OK;

	if (db->title)
		return RAG_OK;
	/* metadata titles come from outside any cleaning: clean them here */
	if (n > PARSE_TITLE_MAX * 16)
		n = PARSE_TITLE_MAX * 16;
	rag_buf_init(&clean, 3 * n); /* each byte becomes at most U+FFFD */
	if ((rc = parse_clean_utf8(&clean, s, n, CLEAN_BOM, &invalid)))
		goto out;
	if (!(db->title = collapse_dup(clean.data ? clean.data : "", clean.len, PARSE_TITLE_MAX))) {
		rc = RAG_ENOMEM;
		goto out;
	}
	if (!db->title[0]) { /* an empty title does not count */
		free(db->title);
		db->title = NULL;
	}
out:
	rag_buf_release(&clean);
	return rc ? parse_fail(db->key, rc, err) : RAG_OK;
}

/* Move the builder's result into out: the title falls back to the first H1,
 * then the first line of the text. */
static rag_rc db_finish(doc_builder *db, parsed_doc *out)
{
	char *title = db->title ? db->title : db->first_h1;

	if (title) {
		out->title = rag_strdup(title);
	} else {
		const char *nl = db->text.data ? memchr(db->text.data, '\n', db->text.len) : NULL;
		size_t n = nl ? (size_t)(nl - db->text.data) : db->text.len;

		out->title = collapse_dup(db->text.data ? db->text.data : "", n, PARSE_TITLE_MAX);
	}
	if (!out->title)
		return RAG_ENOMEM;
	out->text = rag_buf_detach(&db->text, &out->len);
	if (!out->text)
		return RAG_ENOMEM;
	out->blocks = db->blocks;
	out->nblocks = db->nblocks;
	db->blocks = NULL;
	db->nblocks = db->capblocks = 0;
	if (!db->path_used) /* else the blocks, now out's, hold it */
		free(db->path);
	db->path = NULL;
	db->path_used = false;
	out->invalid_bytes = db->invalid;
	out->pages = db->pages;
	return RAG_OK;
}

/* ------------------------------------------------------------- entry */

static bool all_space(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!parse_is_space((unsigned char)data[i]))
			return false;
	return true;
}

/* Text and Markdown: clean the bytes first, then parse lines. */
static rag_rc parse_clean_then(doc_builder *db, doc_type type, const char *data, size_t len,
			       rag_error *err)
{
	rag_buf src;
	rag_rc rc;

	rag_buf_init(&src, PARSE_TEXT_MAX);
	if ((rc = parse_clean_utf8(&src, data, len, CLEAN_BOM, &db->invalid))) {
		parse_fail(db->key, rc, err);
		goto out;
	}
	if (type == DOC_MARKDOWN)
		rc = parse_md(db, src.data ? src.data : "", src.len, err);
	else
		rc = parse_text(db, src.data ? src.data : "", src.len, err);
out:
	rag_buf_release(&src);
	return rc;
}

rag_rc parse_document(const char *key, const char *data, size_t len, parsed_doc *out,
		      rag_error *err)
{
	doc_builder db;
	detect_why why;
	doc_type type;
	rag_rc rc;

	memset(out, 0, sizeof(*out));
	if (!key)
		key = "";
	if (!data)
		len = 0;
	db_init(&db, key);
	type = detect(key, data, len, &why);
	if (type == DOC_UNKNOWN) {
		rc = rag_error_set(err, RAG_EUNSUPPORTED, "\"%s\": unsupported type (%s)", key,
				   why == WHY_BINARY ? "binary content" : "unknown extension");
		goto out;
	}
	if (all_space(data, len)) {
		rc = RAG_OK;
	} else if (type == DOC_HTML) {
		rc = parse_html(&db, data, len, err);
	} else if (type == DOC_PDF) {
		rc = parse_pdf(&db, data, len, err);
	} else {
		rc = parse_clean_then(&db, type, data, len, err);
	}
	if (rc)
		goto out;
	out->type = type;
	if ((rc = db_finish(&db, out)))
		parse_fail(key, rc, err);
out:
	db_release(&db);
	if (rc)
		parsed_doc_release(out);
	return rc;
}

void parsed_doc_release(parsed_doc *doc)
{
	if (!doc)
		return;
	free(doc->text);
	free_blocks(doc->blocks, doc->nblocks);
	free(doc->title);
	memset(doc, 0, sizeof(*doc));
}
