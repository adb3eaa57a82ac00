/*
 * parse — turn one source object's bytes into plain text with structure.
 *
 * Formats: plain text, Markdown (a small hand-written parser), HTML
 * (libxml2's recovering HTML parser) and PDF (poppler-glib). The result is a
 * parsed_doc: one UTF-8 string plus the list of its structural blocks
 * (headings and body paragraphs) with the heading path each one sits under.
 * The chunker (chunk.h) works on that and nothing else.
 *
 * Invariants of a parsed_doc returned with RAG_OK:
 *  1. text is NUL-terminated, len bytes long, valid UTF-8, contains no NUL
 *     and no '\r'; blocks are separated by "\n\n".
 *  2. blocks are in text order, non-overlapping, inside [0, len), and each
 *     one starts and ends on a non-whitespace byte (never empty).
 *  3. heading_path is never NULL: "" at top level, else the headings that
 *     enclose the block joined with " > ". A heading block's path includes
 *     the heading itself, so every block of one section has the same path.
 *     Each heading's part of the path is capped at PARSE_HEADING_MAX bytes.
 *  4. title and text are never NULL (possibly "").
 *
 * Thread-safety: parse_document may run concurrently on different
 * documents; it keeps no state between calls (libxml2 is initialised once,
 * internally).
 */
#ifndef RAG_PARSE_H
#define RAG_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "rag_err.h"

/* Hard ceiling on the extracted text of one document (RAG_ETOOBIG past it). */
#define PARSE_TEXT_MAX ((size_t)1 << 30)
/* Longest heading text kept in a heading_path, and longest title (bytes). */
#define PARSE_HEADING_MAX 120
#define PARSE_TITLE_MAX 256

typedef enum { DOC_UNKNOWN = 0, DOC_TEXT, DOC_MARKDOWN, DOC_HTML, DOC_PDF } doc_type;

/* "text", "markdown", "html", "pdf"; "unknown" for anything else. */
const char *doc_type_name(doc_type t);

/*
 * One structural block of the extracted text: a heading, a paragraph, a list
 * (its items one per line), a code block, a table row, a block quote.
 */
typedef struct doc_block {
	size_t off, len;        /* byte range in parsed_doc.text */
	bool heading;           /* true for a heading line */
	int level;              /* heading level 1..6; 0 for body */
	char *heading_path;     /* owned by the parsed_doc: the enclosing headings
				 * joined with " > ", e.g. "RAG > Query path";
				 * "" at top level. Consecutive blocks of one
				 * section share one string: never free or steal
				 * it, parsed_doc_release frees it. */
} doc_block;

typedef struct parsed_doc {
	doc_type type;
	char *text;             /* owned, NUL-terminated valid UTF-8: the extracted text; blocks separated by "\n\n" */
	size_t len;
	doc_block *blocks;      /* owned, in text order, non-overlapping */
	size_t nblocks;
	char *title;            /* owned; first H1 / <title> / PDF title / first line; may be "" */
	size_t invalid_bytes;   /* invalid UTF-8 bytes (and NUL bytes) replaced by U+FFFD */
	int pages;              /* PDF page count, else 0 */
} parsed_doc;

/*
 * Decide the type of an object from its key and its first bytes:
 *  - "%PDF-" within the first 1 KiB, or a .pdf extension -> DOC_PDF (a .pdf
 *    that is not one fails later as corrupt rather than being skipped);
 *  - NUL bytes or more than 10% control bytes in the first 8 KiB -> binary
 *    -> DOC_UNKNOWN, whatever the extension (so UTF-16 text is skipped too);
 *  - .html .htm -> DOC_HTML; .md .markdown -> DOC_MARKDOWN;
 *  - .txt .text or no extension -> DOC_TEXT, or DOC_HTML when the content
 *    starts (after a BOM and whitespace) with "<!doctype html" or "<html";
 *  - any other extension -> DOC_HTML if the content starts like HTML, else
 *    DOC_UNKNOWN.
 * Extensions are matched case-insensitively on the last path segment. key
 * may be NULL (no extension); data may be NULL when len is 0. Pure.
 */
doc_type parse_detect(const char *key, const char *data, size_t len);

/*
 * Parse one object's bytes. key is used in error messages only (may be NULL).
 *
 * RAG_OK: out filled; the caller releases it with parsed_doc_release(). An
 *   empty (0-byte or whitespace-only) document of a supported type is RAG_OK
 *   with len 0 and nblocks 0 (an empty "x.bin" is still unsupported). HTML
 *   nested deeper than libxml2's limit (256) is truncated there: RAG_OK with
 *   the content above the limit.
 * RAG_EUNSUPPORTED: not a type we handle (binary, unknown extension,
 *   encrypted PDF); err->msg says why, e.g.
 *   "\"a/b.bin\": unsupported type (binary content)". Skip the document.
 * RAG_EPARSE / RAG_ECORRUPT: broken input (corrupt PDF, ...); err->msg
 *   carries the parser's message. Record the document as failed.
 * RAG_ETOOBIG: the extracted text would exceed PARSE_TEXT_MAX (or the input
 *   is too large for the HTML parser, 2 GiB). RAG_ENOMEM.
 * On any error out is left zeroed (parsed_doc_release on it is a no-op).
 *
 * Never reads outside data[0, len); linear in len for text, Markdown and
 * HTML input.
 */
rag_rc parse_document(const char *key, const char *data, size_t len, parsed_doc *out,
		      rag_error *err);

/* Free everything doc owns and zero it. NULL and zeroed docs are fine. */
void parsed_doc_release(parsed_doc *doc);

#endif
