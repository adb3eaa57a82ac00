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
} doc_builder;

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
