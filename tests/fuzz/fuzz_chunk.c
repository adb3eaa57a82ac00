/*
 * The chunker: parse (Markdown, HTML or text, by the first byte) and
 * chunk_document with small budgets taken from the next two bytes, then
 * check the invariants of chunk.h: ordinals 0..n-1, offsets increasing,
 * ranges inside the text on UTF-8 boundaries, at most max_tokens tokens,
 * the heading path of the first block, every token covered.
 */
#include "chunk.h"
#include "fuzz_parse.h"

static bool is_cont(const char *t, size_t len, size_t i)
{
	return i < len && ((unsigned char)t[i] & 0xC0) == 0x80;
}

static const doc_block *block_at(const parsed_doc *d, size_t off)
{
	for (size_t i = 0; i < d->nblocks; i++)
		if (off >= d->blocks[i].off && off < d->blocks[i].off + d->blocks[i].len)
			return &d->blocks[i];
	return NULL;
}

static void check_chunks(const parsed_doc *d, const chunk_opts *o, const doc_chunk *c, size_t n)
{
	char *covered = calloc(d->len + 1, 1);

	FUZZ_CHECK(covered);
	for (size_t i = 0; i < n; i++) {
		const doc_block *b = block_at(d, c[i].off);

		FUZZ_CHECK(c[i].ordinal == (int)i);
		FUZZ_CHECK(c[i].len > 0 && c[i].off + c[i].len <= d->len);
		FUZZ_CHECK(i == 0 || c[i].off > c[i - 1].off);
		FUZZ_CHECK(!is_cont(d->text, d->len, c[i].off));
		FUZZ_CHECK(!is_cont(d->text, d->len, c[i].off + c[i].len));
		FUZZ_CHECK(c[i].ntokens == chunk_count_tokens(d->text + c[i].off, c[i].len));
		FUZZ_CHECK(c[i].ntokens <= o->max_tokens);
		FUZZ_CHECK(b && c[i].heading_path && strcmp(c[i].heading_path, b->heading_path) == 0);
		memset(covered + c[i].off, 1, c[i].len);
	}
	for (size_t i = 0; i < d->nblocks; i++) {
		size_t k = d->blocks[i].off, end = k + d->blocks[i].len;

		while (k < end) {
			size_t e = k;
			if (covered[k]) {
				k++;
				continue;
			}
			while (e < end && !covered[e])
				e++;
			/* what no chunk covers is whitespace to the tokenizer */
			FUZZ_CHECK(chunk_count_tokens(d->text + k, e - k) == 0);
			k = e;
		}
	}
	free(covered);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"a/doc.md", "a/page.html", "a/notes.txt"};
	parsed_doc d = {0};
	doc_chunk *c = NULL;
	size_t n = 0;
	chunk_opts o;
	rag_error err = {0};

	if (size < 3)
		return 0;
	o.max_tokens = 1 + data[1] % 48;
	o.overlap_tokens = data[2] % o.max_tokens;
	if (fuzz_parse(keys[data[0] % 3], data + 3, size - 3, &d) == RAG_OK) {
		rag_rc rc = chunk_document(&d, &o, &c, &n, &err);
		FUZZ_CHECK(rc == RAG_OK || rc == RAG_ENOMEM);
		if (rc == RAG_OK)
			check_chunks(&d, &o, c, n);
		/* deterministic: a second run gives the same chunks */
		if (rc == RAG_OK) {
			doc_chunk *c2 = NULL;
			size_t n2 = 0;
			FUZZ_CHECK(chunk_document(&d, &o, &c2, &n2, &err) == RAG_OK && n2 == n);
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK(c2[i].off == c[i].off && c2[i].len == c[i].len);
			doc_chunks_free(c2, n2);
		}
		doc_chunks_free(c, n);
	}
	parsed_doc_release(&d);
	return 0;
}
