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
 *  5. Source map (citations): for text, Markdown and HTML, src maps text
 *     back to the bytes of the source object; parse_source_range() turns a
 *     text range into a source range [start, end) inside [0, object len).
 *     Text: a chunk's source range holds exactly its text, except where the
 *     cleaner changed bytes (CRLF and CR to LF, invalid UTF-8 to U+FFFD,
 *     control bytes to a space, a BOM dropped) and between paragraphs
 *     (the blank lines and trailing blanks the text writes as "\n\n", a
 *     heading's underline). Markdown: the range spans
 *     the source bytes the text came from, with the markup between them
 *     (emphasis markers, link URLs, "> " and list prefixes), so the text's
 *     characters are a subsequence of it. HTML: the range spans the source
 *     of the text nodes the text came from (tags between them included); a
 *     text node whose bytes differ from its decoded content (character
 *     references, a declared non-UTF-8 charset, CRLF line ends inside it)
 *     maps as a whole, from its start to the next '<'; a node that cannot
 *     be found in the source (bounded search, parse_html.c) maps to nothing
 *     and the range comes from its neighbours. PDF has no source map (nsrc
 *     0), pages instead.
 *  6. page: PDF blocks carry the 1-based page they are on (a block never
 *     spans pages); 0 for every other type.
 *  7. Headings beyond Markdown and HTML. Plain text, conservatively: a
 *     paragraph of exactly two lines whose second line is only '=' (level
 *     1) or '-' (level 2), at least 3 of them and at least half as long as
 *     the first line, the first line at most PARSE_HEADING_MAX bytes; or a
 *     one-line paragraph "N[.N]*[.] Title" (each N 1 to 3 digits, level =
 *     number of parts, capped at 6) of at most 80 bytes and 12 words, whose
 *     title starts with an upper-case ASCII letter and does not end in '.',
 *     ',', ';' or ':'. A heading becomes a heading block (level, path) as in
 *     Markdown. PDF: the document outline (bookmarks). An entry that points
 *     at page p opens its section at the first block of page p that starts
 *     with the entry's title (whitespace-insensitive, at a line start),
 *     else at page p's first block; it sets the heading path (outline depth
 *     = level) without adding text, so no heading block comes from it.
 *
 * Thread-safety: parse_document may run concurrently on different
 * documents; it keeps no state between calls (libxml2 is initialised once,
 * internally).
 */
#ifndef RAG_PARSE_H
#define RAG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	int page;               /* PDF: 1-based page of the block; else 0 */
} doc_block;

/*
 * One piece of a source map: text[d, d + dn) came from source[s, s + sn).
 * dn == sn: copied verbatim, text byte d + i is source byte s + i. Else the
 * text was generated from the whole source range (U+FFFD for an invalid
 * byte, "\n" for "\r\n", an HTML node with character references). Text
 * between pieces (block separators) has no source. 32-bit: a document with
 * a source map is under 4 GiB (parse_document builds none otherwise).
 */
typedef struct src_piece {
	uint32_t d, dn, s, sn;
} src_piece;

typedef struct parsed_doc {
	doc_type type;
	char *text;             /* owned, NUL-terminated valid UTF-8: the extracted text; blocks separated by "\n\n" */
	size_t len;
	doc_block *blocks;      /* owned, in text order, non-overlapping */
	size_t nblocks;
	char *title;            /* owned; first H1 / <title> / PDF title / first line; may be "" */
	size_t invalid_bytes;   /* invalid UTF-8 bytes (and NUL bytes) replaced by U+FFFD */
	int pages;              /* PDF page count, else 0 */
	src_piece *src;         /* owned; the source map, in text order (invariant 5) */
	size_t nsrc;            /* 0: no source map (PDF, or an object >= 4 GiB) */
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

/*
 * The source byte range [*start, *end) that the text range [off, off+len)
 * came from (invariant 5): the first source byte of the first mapped text
 * byte at or after off, to the end of the last mapped text byte before
 * off + len. False (and 0, 0) when doc has no source map or nothing in the
 * range is mapped. Pure; O(log nsrc).
 */
bool parse_source_range(const parsed_doc *doc, size_t off, size_t len, uint64_t *start,
			uint64_t *end);

/* Free everything doc owns and zero it. NULL and zeroed docs are fine. */
void parsed_doc_release(parsed_doc *doc);

#endif
