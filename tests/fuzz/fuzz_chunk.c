/*
 * The chunker: parse (Markdown, HTML or text, by the first byte) and
 * chunk_document with small budgets taken from the next two bytes, then
 * check the invariants of chunk.h (tests/tools/chunk_check.h, shared with
 * the unit tests).
 */
#include "chunk.h"
#include "fuzz_parse.h"
#include "../tools/chunk_check.h"

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
		if (rc == RAG_OK) {
			char msg[512];
			const char *why = chunk_check(&d, &o, c, n, msg, sizeof(msg));
			if (why)
				fprintf(stderr, "%s\n", why);
			FUZZ_CHECK(why == NULL);
		}
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
