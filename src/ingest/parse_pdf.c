/*
 * parse_pdf.c — PDF through poppler-glib.
 *
 * Each page's text (poppler_page_get_text) has no blank lines, so
 * paragraphs are recovered from the layout: where the vertical distance
 * between two lines is clearly larger than the page's usual line pitch (a
 * paragraph skip, space around a heading) or goes back up (a new column), a
 * blank line is inserted. Then the text is cleaned, words hyphenated across
 * a line break are joined ("stor-\nage" -> "storage", only between
 * lower-case ASCII letters), and the page is split into paragraph blocks on
 * blank lines like plain text; a page always ends a block. The title comes
 * from the document information dictionary, else the first line.
 *
 * poppler keeps a pointer to the bytes for the document's lifetime: they
 * are copied into a GBytes that the document holds a reference to.
 */
#include <poppler.h>
#include <stdlib.h>
#include <string.h>

#include "parse_int.h"

typedef struct pdf_line {
	size_t off;  /* byte offset of the line in the page text */
	double y;    /* top of its first non-blank character; < 0 for a blank line */
} pdf_line;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The lines of text with the top of their first visible character. rects
 * has one entry per character of text; false if that does not hold. */
static bool page_lines(const char *text, const PopplerRectangle *rects, guint nrects,
		       pdf_line *lines, size_t *nlines)
{
	size_t n = 0, ci = 0;
	bool start = true;

	for (size_t i = 0; text[i]; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c & 0xC0) == 0x80)
			continue; /* inside a character */
		if (ci >= nrects)
			return false;
		if (start) {
			lines[n].off = i;
			lines[n].y = -1;
			n++;
			start = false;
		}
		if (c == '\n')
			start = true;
		else if (lines[n - 1].y < 0 && c != ' ' && c != '\t')
			lines[n - 1].y = rects[ci].y1 >= 0 ? rects[ci].y1 : 0;
		ci++;
	}
	*nlines = n;
	return ci == nrects;
}

/*
 * Copy text to out with a blank line before each line that starts a new
 * paragraph by the layout. Without a usable layout the text is copied as is.
 */
static rag_rc mark_paragraphs(PopplerPage *page, const char *text, rag_buf *out)
{
	PopplerRectangle *rects = NULL;
	guint nrects = 0;
	size_t nl = 1, n = 0, np = 0, run = 0;
	pdf_line *lines = NULL;
	double *pitch = NULL, thr;
	rag_rc rc = RAG_OK;

	for (const char *p = text; *p; p++)
		nl += *p == '\n';
	if (!g_utf8_validate(text, -1, NULL) || !poppler_page_get_text_layout(page, &rects, &nrects))
		goto plain;
	lines = malloc(nl * sizeof(*lines));
	pitch = malloc(nl * sizeof(*pitch));
	if (!lines || !pitch) {
		rc = RAG_ENOMEM;
		goto out;
	}
	if (!page_lines(text, rects, nrects, lines, &n))
		goto plain;
	for (size_t i = 1, prev = 0; i < n; i++) {
		if (lines[i].y < 0)
			continue;
		if (lines[prev].y >= 0 && lines[i].y > lines[prev].y)
			pitch[np++] = lines[i].y - lines[prev].y;
		prev = i;
	}
	if (np < 2)
		goto plain;
	/* the usual pitch: a low percentile, as paragraph gaps only add to it */
	qsort(pitch, np, sizeof(*pitch), cmp_double);
	thr = pitch[np / 4] * 1.2 + 0.5;
	for (size_t i = 1, prev = 0; i < n; i++) {
		if (lines[i].y < 0)
			continue;
		if (lines[prev].y >= 0 &&
		    (lines[i].y - lines[prev].y > thr || lines[i].y < lines[prev].y)) {
			if ((rc = rag_buf_append(out, text + run, lines[i].off - run)) ||
			    (rc = rag_buf_putc(out, '\n')))
				goto out;
			run = lines[i].off;
		}
		prev = i;
	}
plain:
	rc = rag_buf_puts(out, text + run);
out:
	g_free(rects);
	free(lines);
	free(pitch);
	return rc;
}

static bool lower(char c)
{
	return c >= 'a' && c <= 'z';
}

/* Copy s[0, n) to out, joining "x-\ny" into "xy" for lower-case x and y. */
static rag_rc dehyphenate(rag_buf *out, const char *s, size_t n)
{
	size_t run = 0;
	rag_rc rc;

	for (size_t i = 1; i + 2 < n; i++) {
		if (s[i] == '-' && s[i + 1] == '\n' && lower(s[i - 1]) && lower(s[i + 2])) {
			if ((rc = rag_buf_append(out, s + run, i - run)))
				return rc;
			run = i + 2;
			i++;
		}
	}
	return rag_buf_append(out, s + run, n - run);
}

/* One page: paragraphs by layout, cleaned, dehyphenated, into blocks. Uses
 * a and b as scratch buffers. */
static rag_rc add_page(doc_builder *db, PopplerPage *page, const char *text, rag_buf *a,
		       rag_buf *b, rag_error *err)
{
	rag_rc rc;

	rag_buf_reset(a);
	rag_buf_reset(b);
	if ((rc = mark_paragraphs(page, text, a)) ||
	    (rc = parse_clean_utf8(b, a->data ? a->data : "", a->len, CLEAN_BOM, &db->invalid)))
		return parse_fail(db->key, rc, err);
	rag_buf_reset(a);
	if ((rc = dehyphenate(a, b->data ? b->data : "", b->len)))
		return parse_fail(db->key, rc, err);
	return parse_text(db, a->data ? a->data : "", a->len, err);
}

rag_rc parse_pdf(doc_builder *db, const char *data, size_t len, rag_error *err)
{
	GBytes *bytes = g_bytes_new(data, len);
	GError *gerr = NULL;
	PopplerDocument *doc = NULL;
	rag_buf clean, joined;
	gchar *title = NULL;
	rag_rc rc = RAG_OK;

	rag_buf_init(&clean, PARSE_TEXT_MAX);
	rag_buf_init(&joined, PARSE_TEXT_MAX);
	if (!(doc = poppler_document_new_from_bytes(bytes, NULL, &gerr))) {
		const char *why = gerr && gerr->message ? gerr->message : "unreadable";

		if (gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED)
			rc = rag_error_set(err, RAG_EUNSUPPORTED,
					   "\"%s\": unsupported type (encrypted PDF)", db->key);
		else
			rc = rag_error_set(err, RAG_ECORRUPT, "\"%s\": corrupt PDF: %s", db->key,
					   why);
		goto out;
	}
	db->pages = poppler_document_get_n_pages(doc);
	title = poppler_document_get_title(doc);
	if (title && (rc = db_set_title(db, title, strlen(title), err)))
		goto out;
	for (int i = 0; i < db->pages && !rc; i++) {
		PopplerPage *page = poppler_document_get_page(doc, i);
		char *text;

		if (!page)
			continue;
		if ((text = poppler_page_get_text(page)))
			rc = add_page(db, page, text, &clean, &joined, err);
		g_free(text);
		g_object_unref(page);
	}
out:
	g_free(title);
	if (doc)
		g_object_unref(doc);
	if (gerr)
		g_error_free(gerr);
	g_bytes_unref(bytes);
	rag_buf_release(&clean);
	rag_buf_release(&joined);
	return rc;
}
