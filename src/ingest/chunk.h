/*
 * chunk — split a parsed document into retrieval chunks.
 *
 * A chunk is a byte range of parsed_doc.text plus its heading path. The
 * chunker works section by section (a section starts at each heading block,
 * or wherever the heading path changes) and never lets a chunk straddle two
 * sections.
 *
 * Invariants of the chunks of one document (for any input):
 *  1. ordinals are 0..n-1; offsets strictly increase; every range is inside
 *     the text and starts and ends on a UTF-8 character boundary (and on a
 *     token boundary, except inside a word longer than CHUNK_WORD_BYTES).
 *  2. chunk_count_tokens() of every chunk is at most max_tokens.
 *  3. the union of the ranges covers every non-whitespace byte of every
 *     block; two consecutive chunks overlap only within one section.
 *  4. the result depends on the input only (deterministic).
 *  5. citations: page / page_end are the pages (parse.h, invariant 6) of
 *     the blocks holding the chunk's first and last bytes (0 when the
 *     document has no pages); [src_off, src_end) is
 *     parse_source_range() of the chunk's text range, src_end == 0 when
 *     there is none (PDF, or nothing mapped).
 *
 * Budget tokens: for packing, a word longer than CHUNK_WORD_BYTES counts as
 * one token per CHUNK_WORD_BYTES bytes (as a subword tokenizer would see
 * it), so one huge "word" (base64, a hex dump) is cut into pieces instead of
 * becoming one huge chunk. chunk_count_tokens() and doc_chunk.ntokens count
 * such a word as one token, so they never exceed the budget.
 *
 * Linear in the text length. Thread-safe (no shared state).
 */
#ifndef RAG_CHUNK_H
#define RAG_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"
#include "rag_err.h"

#define CHUNK_WORD_BYTES 64

typedef struct chunk_opts {
	int max_tokens;      /* >= 1 */
	int overlap_tokens;  /* >= 0 and < max_tokens */
} chunk_opts;

#define CHUNK_OPTS_DEFAULT ((chunk_opts){256, 32})

typedef struct doc_chunk {
	int ordinal;            /* 0.. in document order */
	size_t off, len;        /* byte range in parsed_doc.text (so the chunk text is text+off, len bytes) */
	int ntokens;            /* tokens by chunk_count_tokens() */
	char *heading_path;     /* owned; heading path of the chunk's first block */
	int page, page_end;     /* PDF: first and last page (1-based); else 0 */
	uint64_t src_off, src_end; /* source object bytes [src_off, src_end); src_end 0: none */
} doc_chunk;

/*
 * Token count as the chunker sees it: a token is a run of letters, digits
 * and combining marks (Unicode categories L*, N*, M* via utf8proc), or a
 * single other non-space character. CJK ideographs and kana are one token
 * each (those scripts do not put spaces between words). Whitespace (Z*,
 * ASCII and other control characters) separates tokens and is not one; an
 * invalid UTF-8 byte is one token. Saturates at INT_MAX. Pure; runs at
 * several hundred MB/s on ASCII.
 */
int chunk_count_tokens(const char *text, size_t len);

/*
 * Split doc into chunks. Structure-aware: a heading starts a new chunk and
 * stays with the text below it; whole blocks are packed up to max_tokens; an
 * oversized block is split at sentence ends (". ", "! ", "? ", CJK full
 * stops), an oversized sentence at token boundaries, preferring a line
 * start in the second half of the piece. Consecutive chunks of one section
 * overlap by about overlap_tokens tokens: the next chunk starts with the
 * previous chunk's tail, aligned to a token start, moved to a sentence or
 * line start when that keeps at least half of the overlap; the overlap is
 * shrunk when the next unit would not fit beside it.
 *
 * opts NULL means CHUNK_OPTS_DEFAULT. An empty doc gives 0 chunks.
 * OUT: *chunks (owned array; free with doc_chunks_free, NULL when *n is 0)
 * and *n.
 * RAG_EINVAL: bad opts, or blocks out of order or outside the text.
 * RAG_ENOMEM. On error *chunks is NULL and *n is 0.
 */
rag_rc chunk_document(const parsed_doc *doc, const chunk_opts *opts, doc_chunk **chunks,
		      size_t *n, rag_error *err);

/* Free the array and every heading_path. (NULL, 0) is fine. */
void doc_chunks_free(doc_chunk *chunks, size_t n);

#endif
