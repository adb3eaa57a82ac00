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
 * Pages and headings (parse.h, invariants 6 and 7): each block carries its
 * 1-based page; the outline (bookmarks, at most PDF_OUTLINE_MAX entries,
 * at most 6 levels deep) gives heading paths: its entries are sorted by
 * destination page (outline order within a page) and handed to the
 * builder page by page as marks.
 *
 * poppler keeps a pointer to the bytes for the document's lifetime: they
 * are copied into a GBytes that the document holds a reference to.
 */
#include <poppler.h>
#include <stdlib.h>
#include <string.h>

#include "parse_int.h"
#include "rag_util.h"

#define PDF_OUTLINE_MAX 4096

typedef struct outline_ent {
	char *title;  /* cleaned UTF-8 */
	int level, page;
	size_t seq;
} outline_ent;

typedef struct outline {
	outline_ent *v;
	size_t n, cap;
} outline;

static void outline_free(outline *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].title);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static int ent_cmp(const void *a, const void *b)
{
	const outline_ent *x = a, *y = b;

	if (x->page != y->page)
		return x->page < y->page ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int dest_page(PopplerDocument *doc, const PopplerDest *d)
{
	int page = 0;

	if (!d)
		return 0;
	if (d->type == POPPLER_DEST_NAMED) {
		PopplerDest *nd = d->named_dest ? poppler_document_find_dest(doc, d->named_dest) : NULL;

		if (nd) {
			page = nd->page_num;
			poppler_dest_free(nd);
		}
		return page;
	}
	return d->page_num;
}

/* Entries of the outline level at it (depth 0 = top), children after
 * their parent. Out of memory just ends the walk: the outline is optional. */
static void outline_walk(PopplerDocument *doc, PopplerIndexIter *it, int depth, int npages,
			 outline *o)
{
	do {
		PopplerAction *a = poppler_index_iter_get_action(it);
		PopplerIndexIter *child;

		if (o->n >= PDF_OUTLINE_MAX) {
			poppler_action_free(a);
			return;
		}
		if (a && a->type == POPPLER_ACTION_GOTO_DEST && a->goto_dest.title) {
			int page = dest_page(doc, a->goto_dest.dest);
			const char *t = a->goto_dest.title;
			rag_buf clean;
			size_t inv = 0;
			outline_ent *v = o->v;

			rag_buf_init(&clean, PARSE_HEADING_MAX * 16);
			if (page >= 1 && page <= npages && strlen(t) < PARSE_HEADING_MAX * 4 &&
			    !parse_clean_utf8(&clean, t, strlen(t), CLEAN_BOM, &inv) && clean.len &&
			    (v = rag_grow(o->v, &o->cap, o->n + 1, sizeof(*o->v)))) {
				outline_ent *e = &v[o->n];

				o->v = v;
				e->title = rag_buf_detach(&clean, NULL);
				e->level = depth + 1;
				e->page = page;
				e->seq = o->n;
				if (e->title)
					o->n++;
			}
			rag_buf_release(&clean);
			if (!v) { /* out of memory: the outline is optional */
				poppler_action_free(a);
				return;
			}
		}
		poppler_action_free(a);
		if (depth < 5 && (child = poppler_index_iter_get_child(it))) {
			outline_walk(doc, child, depth + 1, npages, o);
			poppler_index_iter_free(child);
		}
	} while (poppler_index_iter_next(it));
}

static void outline_load(PopplerDocument *doc, int npages, outline *o)
{
	PopplerIndexIter *it = poppler_index_iter_new(doc);

	if (!it)
		return;
	outline_walk(doc, it, 0, npages, o);
	poppler_index_iter_free(it);
	if (o->n > 1)
		qsort(o->v, o->n, sizeof(*o->v), ent_cmp);
}

/* Is t (whitespace-insensitive) at a line start of s[0, n)? */
static bool at_line_start(const char *s, size_t n, const char *t)
{
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - s) : n, k = i;
		const char *q = t;

		for (; *q; q++) {
			if (parse_is_space((unsigned char)*q))
				continue;
			while (k < e && parse_is_space((unsigned char)s[k]))
				k++;
			if (k == e || s[k] != *q)
				break;
			k++;
		}
		if (!*q)
			return true;
		i = e + 1;
	}
	return false;
}

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
	/* marks found at a line start wait for their block, the others open
	 * their section at the page's first block */
	for (size_t i = 0; i < db->nmarks; i++)
		db->marks[i].force = !at_line_start(a->data ? a->data : "", a->len, db->marks[i].title);
	for (size_t i = 1; i < db->nmarks; i++)
		for (size_t j = i; j > 0 && db->marks[j].force && !db->marks[j - 1].force; j--) {
			pdf_mark t = db->marks[j];
			db->marks[j] = db->marks[j - 1];
			db->marks[j - 1] = t;
		}
	if ((rc = parse_text(db, a->data ? a->data : "", a->len, err)))
		return rc;
	for (; db->nmarks > 0; db->marks++, db->nmarks--) /* not seen: from here on */
		if ((rc = db_set_heading(db, db->marks->title, strlen(db->marks->title),
					 db->marks->level, err)))
			return rc;
	return RAG_OK;
}

rag_rc parse_pdf(doc_builder *db, const char *data, size_t len, rag_error *err)
{
	GBytes *bytes = g_bytes_new(data, len);
	GError *gerr = NULL;
	PopplerDocument *doc = NULL;
	rag_buf clean, joined;
	gchar *title = NULL;
	outline ol = {0};
	pdf_mark *marks = NULL;
	size_t next = 0;
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
	outline_load(doc, db->pages, &ol);
	if (ol.n && !(marks = calloc(ol.n, sizeof(*marks)))) {
		rc = parse_fail(db->key, RAG_ENOMEM, err);
		goto out;
	}
	for (int i = 0; i < db->pages && !rc; i++) {
		PopplerPage *page = poppler_document_get_page(doc, i);
		char *text;
		size_t k = 0;

		db->page = i + 1;
		for (; next < ol.n && ol.v[next].page == i + 1; next++, k++)
			marks[k] = (pdf_mark){ol.v[next].title, ol.v[next].level, false};
		db->marks = marks;
		db->nmarks = k;
		if (!page) {
			for (size_t j = 0; j < k && !rc; j++)
				rc = db_set_heading(db, marks[j].title, strlen(marks[j].title),
						    marks[j].level, err);
			continue;
		}
		if ((text = poppler_page_get_text(page)))
			rc = add_page(db, page, text, &clean, &joined, err);
		g_free(text);
		g_object_unref(page);
	}
out:
	db->marks = NULL;
	db->nmarks = 0;
	free(marks);
	outline_free(&ol);
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
