/*
 * fuzz_parse.h — parse_document under a fixed key, with the invariants of
 * parse.h checked on every successful result. Included by the
 * fuzz_parse_<type>.c targets (and by fuzz_chunk.c).
 */
#ifndef FUZZ_PARSE_H
#define FUZZ_PARSE_H

#include "fuzz_common.h"
#include "parse.h"

static inline bool fuzz_is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The invariants of parse.h (tests/unit/test_parse.c checks the same). */
static inline void fuzz_check_doc(const parsed_doc *d)
{
	size_t prev_end = 0;

	FUZZ_CHECK(d->text && d->title);
	FUZZ_CHECK(strlen(d->text) == d->len);
	FUZZ_CHECK(rag_utf8_valid(d->text, d->len));
	FUZZ_CHECK(rag_utf8_valid(d->title, strlen(d->title)));
	FUZZ_CHECK(!memchr(d->text, '\r', d->len));
	FUZZ_CHECK(d->len > 0 || d->nblocks == 0);
	for (size_t i = 0; i < d->nblocks; i++) {
		const doc_block *b = &d->blocks[i];

		FUZZ_CHECK(b->len > 0 && b->off + b->len <= d->len);
		if (i > 0)
			FUZZ_CHECK(b->off == prev_end + 2 && memcmp(d->text + prev_end, "\n\n", 2) == 0);
		else
			FUZZ_CHECK(b->off == 0);
		FUZZ_CHECK(!fuzz_is_space(d->text[b->off]));
		FUZZ_CHECK(!fuzz_is_space(d->text[b->off + b->len - 1]));
		FUZZ_CHECK(b->heading_path);
		FUZZ_CHECK(b->heading == (b->level > 0) && b->level >= 0 && b->level <= 6);
		prev_end = b->off + b->len;
	}
	FUZZ_CHECK(d->nblocks == 0 || prev_end == d->len);
}

/* Parse; on RAG_OK check and keep the result in *d (caller releases). */
static inline rag_rc fuzz_parse(const char *key, const uint8_t *data, size_t size, parsed_doc *d)
{
	rag_error err = {0};
	rag_rc rc = parse_document(key, (const char *)data, size, d, &err);

	if (rc == RAG_OK)
		fuzz_check_doc(d);
	else
		FUZZ_CHECK(d->text == NULL && d->nblocks == 0 && err.msg[0]);
	return rc;
}

#define FUZZ_PARSE_TARGET(key)                                                 \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)          \
	{                                                                      \
		parsed_doc d = {0};                                            \
		fuzz_parse((key), data, size, &d);                             \
		parsed_doc_release(&d);                                        \
		return 0;                                                      \
	}

#endif
