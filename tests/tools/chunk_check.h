/*
 * chunk_check.h — the invariants of chunk.h, checked on one chunking, for
 * the unit tests (tests/unit/test_chunk.c) and the fuzzer
 * (tests/fuzz/fuzz_chunk.c): ordinals 0..n-1, offsets increasing, ranges
 * inside the text on UTF-8 boundaries and valid UTF-8, the token count
 * right and within max_tokens, the heading path of the block the chunk
 * starts in, and every token of every block in some chunk.
 *
 * chunk_check returns NULL when all hold, else msg saying what broke.
 */
#ifndef CHUNK_CHECK_H
#define CHUNK_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "rag_util.h"

static bool chunk_check_is_cont(const char *text, size_t len, size_t i)
{
	return i < len && ((unsigned char)text[i] & 0xC0) == 0x80;
}

/* The block holding byte off, or NULL (blocks are sorted and disjoint). */
static const doc_block *chunk_check_block_at(const parsed_doc *d, size_t off)
{
	size_t lo = 0, hi = d->nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const doc_block *b = &d->blocks[mid];

		if (off < b->off)
			hi = mid;
		else if (off >= b->off + b->len)
			lo = mid + 1;
		else
			return b;
	}
	return NULL;
}

static const char *chunk_check(const parsed_doc *d, const chunk_opts *o, const doc_chunk *c,
			       size_t n, char *msg, size_t msglen)
{
	char *covered = calloc(d->len + 1, 1);
	const char *why = NULL;

	if (!covered)
		return "out of memory";
	for (size_t i = 0; i < n && !why; i++) {
		const doc_block *b = chunk_check_block_at(d, c[i].off);

		if (c[i].ordinal != (int)i)
			snprintf(msg, msglen, "chunk %zu has ordinal %d", i, c[i].ordinal);
		else if (c[i].len == 0 || c[i].off + c[i].len > d->len)
			snprintf(msg, msglen, "chunk %zu: [%zu, +%zu) is empty or outside the %zu-byte text",
				 i, c[i].off, c[i].len, d->len);
		else if (i > 0 && c[i].off <= c[i - 1].off)
			snprintf(msg, msglen, "chunk %zu starts at %zu, not after chunk %zu", i,
				 c[i].off, i - 1);
		else if (chunk_check_is_cont(d->text, d->len, c[i].off) ||
			 chunk_check_is_cont(d->text, d->len, c[i].off + c[i].len) ||
			 !rag_utf8_valid(d->text + c[i].off, c[i].len))
			snprintf(msg, msglen, "chunk %zu splits a UTF-8 sequence", i);
		else if (c[i].ntokens != chunk_count_tokens(d->text + c[i].off, c[i].len))
			snprintf(msg, msglen, "chunk %zu says %d tokens, has %d", i, c[i].ntokens,
				 chunk_count_tokens(d->text + c[i].off, c[i].len));
		else if (c[i].ntokens > o->max_tokens)
			snprintf(msg, msglen, "chunk %zu has %d tokens > %d", i, c[i].ntokens,
				 o->max_tokens);
		else if (!b || !c[i].heading_path || strcmp(c[i].heading_path, b->heading_path) != 0)
			snprintf(msg, msglen, "chunk %zu: heading path \"%s\" is not its block's", i,
				 c[i].heading_path ? c[i].heading_path : "(null)");
		else {
			memset(covered + c[i].off, 1, c[i].len);
			continue;
		}
		why = msg;
	}
	/* what no chunk covers is whitespace to the tokenizer (which also
	 * knows U+00A0, U+2003, ...) */
	for (size_t i = 0; i < d->nblocks && !why; i++) {
		size_t k = d->blocks[i].off, end = k + d->blocks[i].len;

		while (k < end && !why) {
			size_t e = k;

			if (covered[k]) {
				k++;
				continue;
			}
			while (e < end && !covered[e])
				e++;
			if (chunk_count_tokens(d->text + k, e - k) != 0) {
				snprintf(msg, msglen, "bytes [%zu, %zu) of block %zu are in no chunk: \"%.*s\"",
					 k, e, i, (int)(e - k), d->text + k);
				why = msg;
			}
			k = e;
		}
	}
	free(covered);
	return why;
}

#endif
