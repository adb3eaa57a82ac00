/*
 * parse_int.h — what the per-format parsers (parse_*.c) share: the document
 * builder and the UTF-8 cleaner. Not part of the public API.
 *
 * A parser feeds blocks to a doc_builder in text order; the builder owns the
 * growing text, the block array, the heading stack and the title, and
 * enforces the invariants listed in parse.h. parse_document() (parse.c)
 * creates the builder, calls one format parser and moves the result into the
 * caller's parsed_doc.
 */
#ifndef RAG_PARSE_INT_H
#define RAG_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "parse.h"
#include "rag_buf.h"

/*
 * A growable source map (pieces as in parse.h, appended in increasing d):
 * maps one buffer's offsets to source-object offsets. A map that ran out of
 * memory or past 4 GiB is marked broken and maps nothing; parsing goes on.
 */
typedef struct srcmap {
	src_piece *v;
	size_t n, cap;
	bool broken;
} srcmap;

void srcmap_release(srcmap *m);
void srcmap_reset(srcmap *m);
/* Add buffer[d, d+dn) <- source[s, s+sn); merges with the previous piece
 * when both are verbatim and contiguous. */
void srcmap_add(srcmap *m, size_t d, size_t dn, size_t s, size_t sn);
/*
 * Add buffer[d, d+dn), which was made from input[from, from+n): input is
 * mapped by in (NULL: input offsets are source offsets). verbatim (dn == n,
 * copied byte for byte): in's pieces are carried over; else one generated
 * piece covering the source range of input[from, from+n).
 */
void srcmap_copy(srcmap *m, size_t d, size_t dn, const srcmap *in, size_t from, size_t n,
		 bool verbatim);
/* Source offset where buffer byte pos starts / where the bytes before end
 * end (see parse_source_range); false if unmapped. */
bool srcmap_start(const src_piece *v, size_t n, size_t pos, size_t limit, size_t *out);
bool srcmap_end(const src_piece *v, size_t n, size_t end, size_t low, size_t *out);

typedef struct doc_builder {
	const char *key;          /* for messages; never NULL */
	rag_buf text;             /* the document text being built */
	doc_block *blocks;
	size_t nblocks, capblocks;
	char *heads[6];           /* current heading text per level, or NULL */
	char *path;               /* path of the current section; shared by its blocks */
	bool path_used;           /* path is referenced by a block (so not ours to free) */
	char *title;              /* explicit title (<title>, PDF metadata) */
	char *first_h1;           /* text of the first level-1 heading */
	size_t invalid;           /* bytes replaced by U+FFFD */
	int pages;
	int page;                 /* PDF: the page blocks are added from (1-based) */
	bool text_headings;       /* plain text: detect headings (parse.h, 7) */
	bool want_map;            /* build the source map (not PDF, < 4 GiB) */
	srcmap map;               /* text -> source */
	/* Where the next db_add_block's bytes come from: s lies in the buffer
	 * starting at in_base, mapped to the source by in_map (NULL: in_base is
	 * the source itself). in_base NULL: the block has no source. */
	const char *in_base;
	const srcmap *in_map;
	/* PDF outline entries not yet applied, for the current page */
	struct pdf_mark *marks;
	size_t nmarks;
} doc_builder;

/* A heading from outside the text (PDF outline): it applies from the next
 * block that starts with title (whitespace-insensitive) or, with force,
 * from the next block whatever it says. */
typedef struct pdf_mark {
	char *title;
	int level;
	bool force;
} pdf_mark;

/* Flags for parse_clean_utf8(). */
#define CLEAN_BOM 1u  /* drop a leading U+FEFF */

/*
 * Append s[0, n) to out as valid UTF-8: invalid bytes and NUL become U+FFFD
 * (counted in *invalid), "\r\n" and a lone '\r' become '\n', '\f' and '\v'
 * become '\n', other C0 controls and DEL become ' '. Linear; RAG_ETOOBIG
 * when out's cap is reached, RAG_ENOMEM.
 */
rag_rc parse_clean_utf8(rag_buf *out, const char *s, size_t n, unsigned flags,
			size_t *invalid);
/* The same, recording in map (if not NULL) where out's new bytes came from
 * in s (offsets in s + base). */
rag_rc parse_clean_utf8_map(rag_buf *out, const char *s, size_t n, unsigned flags,
			    size_t *invalid, srcmap *map, size_t base);

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
size_t parse_utf8_seq(const unsigned char *s, size_t n);

/* True for ' ', '\t', '\n', '\r', '\f', '\v'. */
static inline bool parse_is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

void db_init(doc_builder *db, const char *key);
void db_release(doc_builder *db);

/*
 * Add one block. s[0, n) must be clean UTF-8 (as produced by
 * parse_clean_utf8 or libxml2); leading and trailing whitespace is trimmed
 * and an empty block is dropped. level 0 is body text, 1..6 a heading: a
 * heading replaces the heading stack from its level down and so starts a new
 * section (its text is also what goes into the path, whitespace collapsed).
 */
rag_rc db_add_block(doc_builder *db, const char *s, size_t n, int level, rag_error *err);

/* Set the heading stack as a heading of level 1..6 with text s[0, n)
 * would, without adding a block. */
rag_rc db_set_heading(doc_builder *db, const char *s, size_t n, int level, rag_error *err);

/* Set the explicit title unless one is set (whitespace collapsed, capped). */
rag_rc db_set_title(doc_builder *db, const char *s, size_t n, rag_error *err);

/*
 * Format parsers: each one fills db from data[0, len) or fails with err set.
 * parse_text and parse_md expect data already cleaned by parse_clean_utf8.
 */
rag_rc parse_text(doc_builder *db, const char *data, size_t len, rag_error *err);
rag_rc parse_md(doc_builder *db, const char *data, size_t len, rag_error *err);
rag_rc parse_html(doc_builder *db, const char *data, size_t len, rag_error *err);
rag_rc parse_pdf(doc_builder *db, const char *data, size_t len, rag_error *err);

/* Common message for a builder error code (RAG_ENOMEM, RAG_ETOOBIG). */
rag_rc parse_fail(const char *key, rag_rc rc, rag_error *err);

#endif
