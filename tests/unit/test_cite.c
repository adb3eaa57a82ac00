/* Citations (issue 14 item 7): source byte ranges for text, Markdown and
 * HTML chunks, PDF pages and outline headings, plain-text headings, and
 * their way through the catalog (with its migration) and segment records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "chunk.h"
#include "parse.h"
#include "rag_buf.h"
#include "segment.h"

/* ------------------------------------------------------------- helpers */

static bool sp(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* s with whitespace runs collapsed to one space, trimmed (caller frees). */
static char *collapse(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	size_t o = 0;
	bool space = false;

	assert_non_null(d);
	for (size_t i = 0; i < n; i++) {
		if (sp(s[i])) {
			space = o > 0;
			continue;
		}
		if (space)
			d[o++] = ' ';
		space = false;
		d[o++] = s[i];
	}
	d[o] = '\0';
	return d;
}

/* s without any whitespace (tags may or may not separate words). */
static char *nospace(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	size_t o = 0;

	assert_non_null(d);
	for (size_t i = 0; i < n; i++)
		if (!sp(s[i]))
			d[o++] = s[i];
	d[o] = '\0';
	return d;
}

/* Are the non-space bytes of t a subsequence of s? */
static bool subsequence(const char *t, size_t tn, const char *s, size_t sn)
{
	size_t j = 0;

	for (size_t i = 0; i < tn; i++) {
		if (sp(t[i]))
			continue;
		while (j < sn && s[j] != t[i])
			j++;
		if (j == sn)
			return false;
		j++;
	}
	return true;
}

/* Tag-stripped s[0, n) with a few character references decoded and the
 * invalid byte 0xFF as the parser shows it (U+FFFD). */
static char *strip_tags(const char *s, size_t n)
{
	static const struct {
		const char *ref, *ch;
	} refs[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&eacute;", "\xC3\xA9"}};
	char *d = malloc(3 * n + 1);
	size_t o = 0;

	assert_non_null(d);
	for (size_t i = 0; i < n;) {
		size_t k;

		if ((unsigned char)s[i] == 0xFF) {
			memcpy(d + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			continue;
		}
		if (s[i] == '<') {
			const char *gt = memchr(s + i, '>', n - i);
			i = gt ? (size_t)(gt - s) + 1 : n;
			continue;
		}
		for (k = 0; k < sizeof(refs) / sizeof(refs[0]); k++)
			if (n - i >= strlen(refs[k].ref) && memcmp(s + i, refs[k].ref, strlen(refs[k].ref)) == 0)
				break;
		if (k < sizeof(refs) / sizeof(refs[0])) {
			memcpy(d + o, refs[k].ch, strlen(refs[k].ch)); /* never longer than the ref */
			o += strlen(refs[k].ch);
			i += strlen(refs[k].ref);
		} else {
			d[o++] = s[i++];
		}
	}
	d[o] = '\0';
	return d;
}

static void parse_chunk(const char *key, const char *src, size_t len, int max_tokens,
			parsed_doc *d, doc_chunk **c, size_t *n)
{
	rag_error err = {0};
	chunk_opts o = {max_tokens, max_tokens / 4};

	assert_int_equal(parse_document(key, src, len, d, &err), RAG_OK);
	assert_int_equal(chunk_document(d, &o, c, n, &err), RAG_OK);
	assert_true(*n > 0);
}

/* Every chunk has a source range inside the object, in order. */
static void check_ranges(const doc_chunk *c, size_t n, size_t srclen)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(c[i].src_end > c[i].src_off);
		assert_true(c[i].src_end <= srclen);
		assert_int_equal(c[i].page, 0);
		if (i > 0)
			assert_true(c[i].src_off >= c[i - 1].src_off);
	}
}

static char *repeat_words(const char *prefix, int n)
{
	rag_buf b;

	rag_buf_init(&b, 1 << 20);
	for (int i = 0; i < n; i++) {
		char w[64];
		snprintf(w, sizeof(w), "%s%d%s", prefix, i, i % 9 == 8 ? ". " : " ");
		assert_int_equal(rag_buf_puts(&b, w), RAG_OK);
	}
	return rag_buf_detach(&b, NULL);
}

/* ---------------------------------------------------------------- text */

static void test_text_exact_ranges(void **state)
{
	char *w1 = repeat_words("alpha", 200), *w2 = repeat_words("beta", 150);
	rag_buf src;
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	rag_buf_init(&src, 1 << 20);
	rag_buf_puts(&src, "\n\nIntro line one\nintro line two\n\n");
	rag_buf_puts(&src, w1);
	rag_buf_puts(&src, "\n\n   \n");
	rag_buf_puts(&src, w2);
	rag_buf_puts(&src, "\nlast line\n");
	parse_chunk("a.txt", src.data, src.len, 40, &d, &c, &n);
	assert_true(n > 5); /* oversized blocks were split inside */
	check_ranges(c, n, src.len);
	for (size_t i = 0; i < n; i++) {
		const char *t = d.text + c[i].off, *s = src.data + c[i].src_off;
		size_t sn = c[i].src_end - c[i].src_off;

		if (!memmem(t, c[i].len, "\n\n", 2)) {
			/* inside one paragraph: the source bytes are exactly the text */
			assert_int_equal(sn, c[i].len);
			assert_memory_equal(s, t, c[i].len);
		} else {
			/* across paragraphs: only the whitespace between them differs */
			char *a = collapse(s, sn), *b = collapse(t, c[i].len);
			assert_string_equal(a, b);
			assert_int_equal(s[0], t[0]);
			assert_int_equal(s[sn - 1], t[c[i].len - 1]);
			free(a);
			free(b);
		}
	}
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&src);
	free(w1);
	free(w2);
}

static void test_text_cleaned_bytes(void **state)
{
	/* BOM, CRLF, an invalid byte, a control byte: the range still spans
	 * exactly the bytes the text came from */
	const char src[] = "\xEF\xBB\xBF" "First para\r\nsecond line\r\n\r\nbad \xFF byte\x01 here\r\n\r\ntail";
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	parse_chunk("b.txt", src, sizeof(src) - 1, 3, &d, &c, &n);
	check_ranges(c, n, sizeof(src) - 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = src + c[i].src_off;
		size_t sn = c[i].src_end - c[i].src_off;
		char *a = collapse(s, sn), *b = collapse(d.text + c[i].off, c[i].len);

		/* first and last characters coincide (ASCII ones here) */
		if ((unsigned char)d.text[c[i].off] < 0x80)
			assert_int_equal(s[0], d.text[c[i].off]);
		if ((unsigned char)d.text[c[i].off + c[i].len - 1] < 0x80)
			assert_int_equal(s[sn - 1], d.text[c[i].off + c[i].len - 1]);
		if (!memchr(s, '\xFF', sn) && !memchr(s, '\x01', sn))
			assert_string_equal(a, b); /* only CRLF differs */
		free(a);
		free(b);
	}
	/* "bad \xFF byte\x01 here" is one chunk at most 3 tokens: find the U+FFFD one */
	for (size_t i = 0; i < n; i++)
		if (memmem(d.text + c[i].off, c[i].len, "\xEF\xBF\xBD", 3))
			assert_non_null(memchr(src + c[i].src_off, '\xFF', c[i].src_end - c[i].src_off));
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
}

static void test_text_headings(void **state)
{
	const char *src =
		"User Guide\n==========\n\n"
		"Some prose that is not a heading.\n\n"
		"1. Getting Started\n\n"
		"Install it.\n\n"
		"1.2 Configuration Files\n\n"
		"Edit the file.\n\n"
		"Options\n-------\n\n"
		"Flags here.\n\n"
		/* prose that must stay prose */
		"2 apples are red.\n\n"
		"3.14 Is roughly pi.\n\n"
		"1999 Was a year\n\n"
		"Hi\n--\n\n"
		"Title\n==\n\n"
		"A much longer first line\n====\n\n"
		"A line\nanother line\n---\n\n"
		"12 Monkeys\n\n";
	parsed_doc d;
	rag_error err = {0};
	int heads = 0;

	(void)state;
	assert_int_equal(parse_document("guide.txt", src, strlen(src), &d, &err), RAG_OK);
	for (size_t i = 0; i < d.nblocks; i++) {
		const doc_block *b = &d.blocks[i];
		char *t = collapse(d.text + b->off, b->len);

		if (strcmp(t, "User Guide") == 0) {
			assert_int_equal(b->level, 1);
			assert_string_equal(b->heading_path, "User Guide");
		} else if (strcmp(t, "1. Getting Started") == 0) {
			assert_int_equal(b->level, 1);
		} else if (strcmp(t, "Install it.") == 0) {
			assert_string_equal(b->heading_path, "1. Getting Started");
		} else if (strcmp(t, "1.2 Configuration Files") == 0) {
			assert_int_equal(b->level, 2);
		} else if (strcmp(t, "Edit the file.") == 0) {
			assert_string_equal(b->heading_path, "1. Getting Started > 1.2 Configuration Files");
		} else if (strcmp(t, "Options") == 0) {
			assert_int_equal(b->level, 2);
		} else if (strcmp(t, "Flags here.") == 0) {
			assert_string_equal(b->heading_path, "1. Getting Started > Options");
		} else if (strcmp(t, "12 Monkeys") == 0) {
			assert_int_equal(b->level, 1); /* a numbered title: accepted */
		} else {
			/* the prose ones, the too-long underline, three lines */
			if (b->level != 0)
				fail_msg("block \"%s\" taken for a heading", t);
		}
		heads += b->level > 0;
		free(t);
	}
	assert_int_equal(heads, 5);
	/* the setext underline is not part of the text */
	assert_null(strstr(d.text, "=========="));
	parsed_doc_release(&d);
	/* Markdown and PDF keep their own rules: a .md with a numbered line */
	assert_int_equal(parse_document("n.md", "2.1 Title\n\nbody\n", 16, &d, &err), RAG_OK);
	assert_int_equal(d.blocks[0].level, 0);
	parsed_doc_release(&d);
}

/* ------------------------------------------------------------ Markdown */

static void test_markdown_ranges(void **state)
{
	char *w = repeat_words("gamma", 120);
	rag_buf src;
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	rag_buf_init(&src, 1 << 20);
	rag_buf_puts(&src, "---\ntitle: Front\n---\n# Top *title*\r\n\r\n");
	rag_buf_puts(&src, "Some **bold** and _em_ text with a [link](http://x.y/z) and `code`.\n\n");
	rag_buf_puts(&src, "> quoted line one\n> quoted line two\n\n");
	rag_buf_puts(&src, "- item one\n- item two\n\n  continued\n\n");
	rag_buf_puts(&src, "## Sub\n\n");
	rag_buf_puts(&src, w);
	rag_buf_puts(&src, "\n\n```\ncode block\n  indented\n```\n\nSetext\n------\n\ntail <http://a.b/c> end\n");
	parse_chunk("doc.md", src.data, src.len, 12, &d, &c, &n);
	check_ranges(c, n, src.len);
	for (size_t i = 0; i < n; i++) {
		const char *t = d.text + c[i].off, *s = src.data + c[i].src_off;
		size_t sn = c[i].src_end - c[i].src_off;

		/* exact at both ends, everything between in order */
		assert_int_equal(s[0], t[0]);
		assert_int_equal(s[sn - 1], t[c[i].len - 1]);
		if (!subsequence(t, c[i].len, s, sn))
			fail_msg("chunk %zu \"%.*s\" not within source \"%.*s\"", i, (int)c[i].len, t,
				 (int)sn, s);
	}
	/* the heading's range is exactly "Top *title" ... "*" dropped at the end */
	assert_memory_equal(src.data + c[0].src_off, "Top *title", 10);
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&src);
	free(w);
}

/* ----------------------------------------------------------------- HTML */

static void check_html(const char *key, const char *src, int max_tokens, bool exact)
{
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	parse_chunk(key, src, strlen(src), max_tokens, &d, &c, &n);
	check_ranges(c, n, strlen(src));
	for (size_t i = 0; i < n; i++) {
		char *raw = strip_tags(src + c[i].src_off, c[i].src_end - c[i].src_off);
		char *s = nospace(raw, strlen(raw)), *t = nospace(d.text + c[i].off, c[i].len);

		if (exact ? strcmp(s, t) != 0 : !strstr(s, t))
			fail_msg("%s chunk %zu: text \"%s\", source \"%s\"", key, i, t, s);
		free(raw);
		free(s);
		free(t);
	}
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
}

static void test_html_ranges(void **state)
{
	char *w = repeat_words("delta", 100);
	rag_buf b;

	(void)state;
	/* no character references: the stripped range is the chunk's text */
	rag_buf_init(&b, 1 << 20);
	rag_buf_puts(&b, "<!doctype html><html><head><title>Intro</title><style>p{}</style></head>\n"
			 "<body><nav>menu Intro</nav><h1>Intro</h1>\n<p>First <b>bold</b> para\n  with"
			 " <a href=\"x\" title=\"para\">a link</a>.</p><script>var x = 'para';</script>\n"
			 "<h2>Details</h2><div>");
	rag_buf_puts(&b, w);
	rag_buf_puts(&b, "</div><ul><li>one</li><li>two</li></ul><pre>  pre\n  text</pre></body></html>\n");
	check_html("page.html", b.data, 10, true);
	rag_buf_release(&b);
	/* character references: the node maps whole, the text is inside it */
	check_html("refs.html", "<html><body><p>Fish &amp; chips &lt;3 are good</p>"
				"<p>caf&eacute; au lait</p><p>plain words after</p></body></html>", 4, false);
	/* invalid UTF-8 in an undeclared document, CRLF line ends */
	check_html("bad.html", "<html><body>\r\n<p>ok \xFF here</p>\r\n<p>next para</p></body></html>", 3,
		   false);
	free(w);
}

/* ------------------------------------------------------------------ PDF */

typedef struct pdf_page {
	const char *lines[12]; /* NULL-terminated; "" = a paragraph gap */
} pdf_page;

typedef struct pdf_outline {
	const char *title;
	int page;   /* 1-based */
	int parent; /* index of the parent entry, -1 at top */
} pdf_outline;

/*
 * A PDF with one Helvetica text line per entry (a "" entry leaves a gap of
 * three lines, which the parser takes for a paragraph break) and an outline.
 * Object numbers: 1 catalog, 2 pages, 3 font, 4 outlines, then per page a
 * page and a content stream, then the outline items. Caller frees.
 */
static char *make_pdf(const pdf_page *pages, int npages, const pdf_outline *ol, int nol,
		      size_t *len)
{
	rag_buf b, c;
	size_t off[64];
	int nobj = 4 + 2 * npages + nol;
	char tmp[512];

	rag_buf_init(&b, 1 << 20);
	rag_buf_init(&c, 1 << 16);
	rag_buf_puts(&b, "%PDF-1.4\n");
#define OBJ(i)                                                                  \
	do {                                                                    \
		off[i] = b.len;                                                 \
		snprintf(tmp, sizeof(tmp), "%d 0 obj\n", i);                    \
		rag_buf_puts(&b, tmp);                                          \
	} while (0)
	OBJ(1);
	rag_buf_puts(&b, nol ? "<< /Type /Catalog /Pages 2 0 R /Outlines 4 0 R >>\nendobj\n"
			     : "<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
	OBJ(2);
	rag_buf_puts(&b, "<< /Type /Pages /Kids [");
	for (int p = 0; p < npages; p++) {
		snprintf(tmp, sizeof(tmp), " %d 0 R", 5 + 2 * p);
		rag_buf_puts(&b, tmp);
	}
	snprintf(tmp, sizeof(tmp), " ] /Count %d >>\nendobj\n", npages);
	rag_buf_puts(&b, tmp);
	OBJ(3);
	rag_buf_puts(&b, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
	OBJ(4);
	{
		int first = -1, last = -1, count = 0;
		for (int i = 0; i < nol; i++)
			if (ol[i].parent < 0) {
				if (first < 0)
					first = i;
				last = i;
				count++;
			}
		snprintf(tmp, sizeof(tmp), "<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>\nendobj\n",
			 5 + 2 * npages + (first < 0 ? 0 : first), 5 + 2 * npages + (last < 0 ? 0 : last), count);
		rag_buf_puts(&b, tmp);
	}
	for (int p = 0; p < npages; p++) {
		int y = 720;

		OBJ(5 + 2 * p);
		snprintf(tmp, sizeof(tmp),
			 "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n",
			 6 + 2 * p);
		rag_buf_puts(&b, tmp);
		rag_buf_reset(&c);
		for (int l = 0; pages[p].lines[l]; l++) {
			if (!pages[p].lines[l][0]) {
				y -= 32;
				continue;
			}
			snprintf(tmp, sizeof(tmp), "BT /F1 12 Tf 72 %d Td (%s) Tj ET\n", y, pages[p].lines[l]);
			rag_buf_puts(&c, tmp);
			y -= 16;
		}
		OBJ(6 + 2 * p);
		snprintf(tmp, sizeof(tmp), "<< /Length %zu >>\nstream\n", c.len);
		rag_buf_puts(&b, tmp);
		rag_buf_append(&b, c.data, c.len);
		rag_buf_puts(&b, "endstream\nendobj\n");
	}
	for (int i = 0; i < nol; i++) {
		int id = 5 + 2 * npages + i, prev = -1, next = -1, first = -1, last = -1, kids = 0;

		for (int j = 0; j < nol; j++) {
			if (ol[j].parent == ol[i].parent && j < i)
				prev = j;
			if (ol[j].parent == ol[i].parent && j > i && next < 0)
				next = j;
			if (ol[j].parent == i) {
				if (first < 0)
					first = j;
				last = j;
				kids++;
			}
		}
		OBJ(id);
		snprintf(tmp, sizeof(tmp), "<< /Title (%s) /Parent %d 0 R /Dest [%d 0 R /XYZ 0 792 0]",
			 ol[i].title, ol[i].parent < 0 ? 4 : 5 + 2 * npages + ol[i].parent,
			 5 + 2 * (ol[i].page - 1));
		rag_buf_puts(&b, tmp);
		if (prev >= 0) {
			snprintf(tmp, sizeof(tmp), " /Prev %d 0 R", 5 + 2 * npages + prev);
			rag_buf_puts(&b, tmp);
		}
		if (next >= 0) {
			snprintf(tmp, sizeof(tmp), " /Next %d 0 R", 5 + 2 * npages + next);
			rag_buf_puts(&b, tmp);
		}
		if (kids) {
			snprintf(tmp, sizeof(tmp), " /First %d 0 R /Last %d 0 R /Count %d",
				 5 + 2 * npages + first, 5 + 2 * npages + last, kids);
			rag_buf_puts(&b, tmp);
		}
		rag_buf_puts(&b, " >>\nendobj\n");
	}
	{
		size_t x = b.len;
		snprintf(tmp, sizeof(tmp), "xref\n0 %d\n0000000000 65535 f \n", nobj + 1);
		rag_buf_puts(&b, tmp);
		for (int i = 1; i <= nobj; i++) {
			snprintf(tmp, sizeof(tmp), "%010zu 00000 n \n", off[i]);
			rag_buf_puts(&b, tmp);
		}
		snprintf(tmp, sizeof(tmp), "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
			 nobj + 1, x);
		rag_buf_puts(&b, tmp);
	}
#undef OBJ
	rag_buf_release(&c);
	return rag_buf_detach(&b, len);
}

static const pdf_page book[] = {
	{{"Introduction", "", "Alpha paragraph line one about storage.", "Alpha line two goes on.",
	  "Alpha line three ends it.", NULL}},
	{{"Methods", "", "Beta paragraph line one.", "Beta line two.", "Beta line three.",
	  "Beta line four.", "", "Details", "", "Gamma paragraph line one.", "Gamma line two.",
	  NULL}},
	{{"Epsilon paragraph line one.", "Epsilon line two.", "Epsilon line three.", NULL}},
};

static const pdf_outline book_outline[] = {
	{"Introduction", 1, -1},
	{"Methods", 2, -1},
	{"Details", 2, 1},
	{"Conclusion", 3, -1}, /* not in the page's text: opens the page */
};

/* The block whose text starts with s. */
static const doc_block *block_starting(const parsed_doc *d, const char *s)
{
	for (size_t i = 0; i < d->nblocks; i++)
		if (d->blocks[i].len >= strlen(s) && memcmp(d->text + d->blocks[i].off, s, strlen(s)) == 0)
			return &d->blocks[i];
	fail_msg("no block starting \"%s\" in:\n%s", s, d->text);
	return NULL;
}

static void test_pdf_pages_and_outline(void **state)
{
	size_t len, n;
	char *pdf = make_pdf(book, 3, book_outline, 4, &len);
	parsed_doc d;
	doc_chunk *c;
	struct {
		const char *start, *path;
		int page;
	} want[] = {
		{"Introduction", "Introduction", 1},
		{"Alpha paragraph", "Introduction", 1},
		{"Methods", "Methods", 2},
		{"Beta paragraph", "Methods", 2},
		{"Details", "Methods > Details", 2},
		{"Gamma paragraph", "Methods > Details", 2},
		{"Epsilon paragraph", "Conclusion", 3},
	};

	(void)state;
	parse_chunk("book.pdf", pdf, len, 256, &d, &c, &n);
	assert_int_equal(d.type, DOC_PDF);
	assert_int_equal(d.pages, 3);
	assert_int_equal(d.nsrc, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const doc_block *b = block_starting(&d, want[i].start);
		assert_int_equal(b->page, want[i].page);
		assert_int_equal(b->level, 0); /* outline headings add no text */
		assert_string_equal(b->heading_path, want[i].path);
	}
	for (size_t i = 0; i < n; i++) {
		assert_true(c[i].page >= 1 && c[i].page <= 3);
		assert_int_equal(c[i].page_end, c[i].page); /* sections end at pages here */
		assert_int_equal(c[i].src_end, 0);
		if (memmem(d.text + c[i].off, c[i].len, "Epsilon", 7))
			assert_int_equal(c[i].page, 3);
		if (memmem(d.text + c[i].off, c[i].len, "Gamma", 5)) {
			assert_int_equal(c[i].page, 2);
			assert_string_equal(c[i].heading_path, "Methods > Details");
		}
	}
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	free(pdf);
	/* without an outline one section: a chunk spans pages 1 to 3 */
	pdf = make_pdf(book, 3, NULL, 0, &len);
	parse_chunk("flat.pdf", pdf, len, 256, &d, &c, &n);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].page, 1);
	assert_int_equal(c[0].page_end, 3);
	assert_string_equal(c[0].heading_path, "");
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	free(pdf);
}

/* ------------------------------------------------------- random inputs */

/* Any input: the source map is ordered and inside the object, and every
 * chunk's range too (bytes drawn from markup characters, so that every
 * parser path and the HTML search run). */
static void test_random_inputs_stay_in_range(void **state)
{
	static const char alphabet[] = "<>/&;#*_`[]()!-=\n\n  \t\rabcXYZ12.\xC3\xA9\xFF";
	static const char *const keys[] = {"r.txt", "r.md", "r.html"};
	static const char *const seeds[] = {"", "", "<html><body><p>"};
	unsigned x = 12345;

	(void)state;
	for (int it = 0; it < 600; it++) {
		char buf[600];
		size_t n = 0, k = (size_t)it % 3;
		parsed_doc d;
		doc_chunk *c = NULL;
		size_t nc = 0;
		rag_error err = {0};
		chunk_opts o = {8, 2};

		n = (size_t)snprintf(buf, sizeof(buf), "%s", seeds[k]);
		for (size_t len = 50 + (size_t)(it * 7) % 500; n < len && n + 1 < sizeof(buf); n++) {
			x = x * 1103515245u + 12345u;
			buf[n] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
		}
		if (parse_document(keys[k], buf, n, &d, &err) != RAG_OK)
			continue;
		for (size_t i = 0; i < d.nsrc; i++) {
			assert_true((size_t)d.src[i].s + d.src[i].sn <= n);
			if (i > 0)
				assert_true(d.src[i].d >= d.src[i - 1].d + d.src[i - 1].dn);
		}
		assert_int_equal(chunk_document(&d, &o, &c, &nc, &err), RAG_OK);
		for (size_t i = 0; i < nc; i++)
			if (c[i].src_end) {
				assert_true(c[i].src_off < c[i].src_end);
				assert_true(c[i].src_end <= n);
			}
		doc_chunks_free(c, nc);
		parsed_doc_release(&d);
	}
}

/* -------------------------------------------------- catalog and segment */

static void test_catalog_citations_and_migration(void **state)
{
	char path[] = "/tmp/ragmap-cite-XXXXXX";
	int fd = mkstemp(path);
	catalog *c;
	sqlite3 *db;
	rag_error err = {0};
	int64_t doc, id1, id2;
	cat_chunk_out o;

	(void)state;
	close(fd);
	unlink(path);
	/* a catalog as schema 3 left it: no citation columns, one chunk */
	assert_int_equal(catalog_open(path, &c, &err), RAG_OK);
	assert_int_equal(catalog_schema_version(c), 4);
	assert_int_equal(catalog_begin(c, &err), RAG_OK);
	assert_int_equal(catalog_doc_insert(c, &(cat_doc){.key = "k/a.md", .etag = "e", .type = "markdown",
							  .segment_id = "s1", .nchunks = 2}, &doc, &err), RAG_OK);
	assert_int_equal(catalog_chunk_insert(c, &(cat_chunk){.doc_id = doc, .ordinal = 0, .text = "old chunk",
							      .text_len = 9, .segment_id = "s1", .heading = "",
							      .page = 9, .src_end = 9},
					      &id1, &err), RAG_OK);
	assert_int_equal(catalog_commit(c, &err), RAG_OK);
	catalog_close(c);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE chunks DROP COLUMN page;"
					  "ALTER TABLE chunks DROP COLUMN page_end;"
					  "ALTER TABLE chunks DROP COLUMN src_off;"
					  "ALTER TABLE chunks DROP COLUMN src_end;"
					  "PRAGMA user_version = 3;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* reopening migrates: the old chunk survives with no citation */
	assert_int_equal(catalog_open(path, &c, &err), RAG_OK);
	assert_int_equal(catalog_schema_version(c), 4);
	assert_int_equal(catalog_chunk_get(c, id1, &o, &err), RAG_OK);
	assert_string_equal(o.text, "old chunk");
	assert_int_equal(o.page, 0);
	assert_int_equal(o.src_end, 0);
	cat_chunk_out_release(&o);
	/* a new chunk keeps its citation */
	assert_int_equal(catalog_chunk_insert(c, &(cat_chunk){.doc_id = doc, .ordinal = 1, .text = "new chunk",
							      .text_len = 9, .segment_id = "s1", .heading = "H",
							      .page = 2, .page_end = 3, .src_off = 120,
							      .src_end = 480},
					      &id2, &err), RAG_OK);
	assert_int_equal(catalog_chunk_get(c, id2, &o, &err), RAG_OK);
	assert_int_equal(o.page, 2);
	assert_int_equal(o.page_end, 3);
	assert_int_equal(o.src_off, 120);
	assert_int_equal(o.src_end, 480);
	cat_chunk_out_release(&o);
	catalog_close(c);
	unlink(path);
}

static void test_segment_record_citation(void **state)
{
	enum { D = 4 };
	seg_chunk ch[2] = {
		{.id = 1, .key = "k/a.pdf", .heading = "", .text = "pdf text", .text_len = 8, .page = 2,
		 .page_end = 3},
		{.id = 2, .key = "k/b.md", .heading = "H", .text = "md text", .text_len = 7, .src_off = 5,
		 .src_end = 12},
	};
	float vecs[2 * D] = {1, 0, 0, 0, 0, 1, 0, 0};
	vindex_build_opts o = {.ivf_threshold = 100};
	seg_build b;
	seg_ptr *ptrs;
	size_t nptrs;
	rag_error err = {0};
	seg_record r;

	(void)state;
	assert_int_equal(segment_build(D, ch, vecs, 2, &o, &b, &err), RAG_OK);
	assert_int_equal(segment_parse_chunk_idx(b.obj[MF_CHUNKS_IDX].data, b.obj[MF_CHUNKS_IDX].len,
						 &ptrs, &nptrs, &err), RAG_OK);
	assert_int_equal(segment_parse_record(b.obj[MF_CHUNKS].data + ptrs[0].rec_off, ptrs[0].rec_len,
					      &r, &err), RAG_OK);
	assert_int_equal(r.page, 2);
	assert_int_equal(r.page_end, 3);
	assert_int_equal(r.src_end, 0);
	assert_memory_equal(r.text, "pdf text", 8);
	seg_record_release(&r);
	assert_int_equal(segment_parse_record(b.obj[MF_CHUNKS].data + ptrs[1].rec_off, ptrs[1].rec_len,
					      &r, &err), RAG_OK);
	assert_int_equal(r.page, 0);
	assert_int_equal(r.src_off, 5);
	assert_int_equal(r.src_end, 12);
	seg_record_release(&r);
	/* a record from before citations reads as none; a bad citation is ignored */
	{
		const char *old = "{\"heading\":\"\",\"id\":7,\"key\":\"k\",\"len\":1,\"off\":0,\"ord\":0}\nx";
		const char *odd = "{\"heading\":\"\",\"id\":7,\"key\":\"k\",\"len\":1,\"off\":0,\"ord\":0,"
				  "\"page\":[3,1],\"src\":\"no\"}\nx";
		assert_int_equal(segment_parse_record(old, strlen(old), &r, &err), RAG_OK);
		assert_int_equal(r.page, 0);
		assert_int_equal(r.src_end, 0);
		seg_record_release(&r);
		assert_int_equal(segment_parse_record(odd, strlen(odd), &r, &err), RAG_OK);
		assert_int_equal(r.page, 0);
		assert_int_equal(r.src_end, 0);
		seg_record_release(&r);
	}
	free(ptrs);
	seg_build_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_exact_ranges),
		cmocka_unit_test(test_text_cleaned_bytes),
		cmocka_unit_test(test_text_headings),
		cmocka_unit_test(test_markdown_ranges),
		cmocka_unit_test(test_html_ranges),
		cmocka_unit_test(test_pdf_pages_and_outline),
		cmocka_unit_test(test_random_inputs_stay_in_range),
		cmocka_unit_test(test_catalog_citations_and_migration),
		cmocka_unit_test(test_segment_record_citation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
