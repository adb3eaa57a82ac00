/*
 * parse.c — type detection, the UTF-8 cleaner, the document builder and
 * parse_document(). The format parsers live in parse_text.c, parse_md.c,
 * parse_html.c and parse_pdf.c; see parse_int.h for what they share.
 */
#include "parse.h"

#include <stdint.h>
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
	return parse_clean_utf8_map(out, s, n, flags, invalid, NULL, 0);
}

/* Append s[from, to) verbatim, mapped to source base + from. */
static rag_rc put_run(rag_buf *out, const unsigned char *p, size_t from, size_t to, srcmap *map,
		      size_t base)
{
	if (map)
		srcmap_add(map, out->len, to - from, base + from, to - from);
	return rag_buf_append(out, p + from, to - from);
}

rag_rc parse_clean_utf8_map(rag_buf *out, const char *s, size_t n, unsigned flags,
			    size_t *invalid, srcmap *map, size_t base)
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
		size_t at = i;

		if ((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t') {
			i++;
			continue;
		}
		if (c >= 0x80 && (k = parse_utf8_seq(p + i, n - i))) {
			i += k;
			continue;
		}
		if ((rc = put_run(out, p, run, i, map, base)))
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
		if (map)
			srcmap_add(map, out->len, strlen(rep), base + at, i + 1 - at);
		if ((rc = rag_buf_puts(out, rep)))
			goto out;
		run = ++i;
	}
	rc = put_run(out, p, run, n, map, base);
out:
	return rc;
}

/* ------------------------------------------------------------ source map */

void srcmap_release(srcmap *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

void srcmap_reset(srcmap *m)
{
	m->n = 0;
	m->broken = false;
}

void srcmap_add(srcmap *m, size_t d, size_t dn, size_t s, size_t sn)
{
	src_piece *p;

	if (m->broken || dn == 0)
		return;
	if (d > UINT32_MAX - dn || s > UINT32_MAX - sn) {
		m->broken = true;
		return;
	}
	if (m->n) {
		p = &m->v[m->n - 1];
		if (p->dn == p->sn && dn == sn && p->d + p->dn == d && p->s + p->sn == s) {
			p->dn += (uint32_t)dn;
			p->sn += (uint32_t)sn;
			return;
		}
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;

		if (!(p = realloc(m->v, cap * sizeof(*p)))) {
			m->broken = true;
			return;
		}
		m->v = p;
		m->cap = cap;
	}
	m->v[m->n++] = (src_piece){(uint32_t)d, (uint32_t)dn, (uint32_t)s, (uint32_t)sn};
}

/* Index of the first piece that ends after pos (n if none). */
static size_t piece_after(const src_piece *v, size_t n, size_t pos)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((size_t)v[mid].d + v[mid].dn > pos)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

bool srcmap_start(const src_piece *v, size_t n, size_t pos, size_t limit, size_t *out)
{
	size_t i = piece_after(v, n, pos);

	if (i == n || v[i].d >= limit)
		return false;
	if (v[i].d <= pos && v[i].dn == v[i].sn)
		*out = (size_t)v[i].s + (pos - v[i].d);
	else
		*out = v[i].s;
	return true;
}

bool srcmap_end(const src_piece *v, size_t n, size_t end, size_t low, size_t *out)
{
	size_t i = piece_after(v, n, end); /* the last piece starting before end is i - 1 or i */

	if (i < n && v[i].d < end)
		i++;
	if (i == 0)
		return false;
	i--;
	if ((size_t)v[i].d + v[i].dn <= low)
		return false;
	if ((size_t)v[i].d + v[i].dn > end && v[i].dn == v[i].sn)
		*out = (size_t)v[i].s + (end - v[i].d);
	else
		*out = (size_t)v[i].s + v[i].sn;
	return true;
}

void srcmap_copy(srcmap *m, size_t d, size_t dn, const srcmap *in, size_t from, size_t n,
		 bool verbatim)
{
	size_t s0, s1;

	if (m->broken || dn == 0)
		return;
	if (!in) {
		srcmap_add(m, d, dn, from, n);
		return;
	}
	if (in->broken) {
		m->broken = true;
		return;
	}
	if (!verbatim || dn != n) {
		if (srcmap_start(in->v, in->n, from, from + n, &s0) &&
		    srcmap_end(in->v, in->n, from + n, from, &s1) && s1 > s0)
			srcmap_add(m, d, dn, s0, s1 - s0);
		return;
	}
	for (size_t i = piece_after(in->v, in->n, from); i < in->n && in->v[i].d < from + n; i++) {
		const src_piece *p = &in->v[i];
		size_t a = p->d > from ? p->d : from;
		size_t b = (size_t)p->d + p->dn < from + n ? (size_t)p->d + p->dn : from + n;

		if (p->dn == p->sn)
			srcmap_add(m, d + (a - from), b - a, p->s + (a - p->d), b - a);
		else
			srcmap_add(m, d + (a - from), b - a, p->s, p->sn);
	}
}

bool parse_source_range(const parsed_doc *doc, size_t off, size_t len, uint64_t *start,
			uint64_t *end)
{
	size_t s0, s1;

	*start = *end = 0;
	if (!doc || !doc->nsrc || len == 0 || off > SIZE_MAX - len)
		return false;
	if (!srcmap_start(doc->src, doc->nsrc, off, off + len, &s0) ||
	    !srcmap_end(doc->src, doc->nsrc, off + len, off, &s1) || s1 <= s0)
		return false;
	*start = s0;
	*end = s1;
	return true;
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
	srcmap_release(&db->map);
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

/* Does s[0, n) start with t, ignoring whitespace in both? */
static bool starts_with_ws(const char *s, size_t n, const char *t)
{
	size_t i = 0;

	for (; *t; t++) {
		if (parse_is_space((unsigned char)*t))
			continue;
		while (i < n && parse_is_space((unsigned char)s[i]))
			i++;
		if (i == n || s[i] != *t)
			return false;
		i++;
	}
	return true;
}

rag_rc db_set_heading(doc_builder *db, const char *s, size_t n, int level, rag_error *err)
{
	rag_rc rc;

	if (level < 1 || level > 6)
		return RAG_OK;
	rc = push_heading(db, s, n, level);
	return rc ? parse_fail(db->key, rc, err) : RAG_OK;
}

/* Apply the pending PDF outline marks that open their section at s[0, n). */
static rag_rc apply_marks(doc_builder *db, const char *s, size_t n)
{
	rag_rc rc = RAG_OK;

	while (db->nmarks > 0 && !rc) {
		pdf_mark *m = db->marks;

		if (!m->force && !starts_with_ws(s, n, m->title))
			break;
		rc = push_heading(db, m->title, strlen(m->title), m->level);
		db->marks++;
		db->nmarks--;
	}
	return rc;
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
	if (db->nmarks && (rc = apply_marks(db, s, n)))
		goto out;
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
	b->page = db->page;
	if (db->want_map && db->in_base)
		srcmap_copy(&db->map, b->off, n, db->in_map, (size_t)(s - db->in_base), n, true);
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
	if (db->want_map && !db->map.broken && db->map.n) {
		out->src = db->map.v;
		out->nsrc = db->map.n;
		db->map.v = NULL;
		db->map.n = db->map.cap = 0;
	}
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
	srcmap cmap = {0};
	rag_rc rc;

	rag_buf_init(&src, PARSE_TEXT_MAX);
	if ((rc = parse_clean_utf8_map(&src, data, len, CLEAN_BOM, &db->invalid,
				       db->want_map ? &cmap : NULL, 0))) {
		parse_fail(db->key, rc, err);
		goto out;
	}
	db->in_base = src.data ? src.data : "";
	db->in_map = &cmap;
	if (type == DOC_MARKDOWN) {
		rc = parse_md(db, src.data ? src.data : "", src.len, err);
	} else {
		db->text_headings = true;
		rc = parse_text(db, src.data ? src.data : "", src.len, err);
	}
out:
	db->in_base = NULL;
	db->in_map = NULL;
	srcmap_release(&cmap);
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
	db.want_map = type != DOC_PDF && len <= UINT32_MAX;
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
	free(doc->src);
	memset(doc, 0, sizeof(*doc));
}
