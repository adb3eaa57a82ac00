/*
 * parse_text.c — plain text: paragraphs are runs of non-blank lines.
 * Also used for each page of a PDF.
 */
#include <string.h>

#include "parse_int.h"

/* End of the line starting at i (index of its '\n', or n). */
static size_t line_end(const char *s, size_t n, size_t i)
{
	const char *nl = memchr(s + i, '\n', n - i);

	return nl ? (size_t)(nl - s) : n;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

rag_rc parse_text(doc_builder *db, const char *s, size_t n, rag_error *err)
{
	size_t i = 0;
	rag_rc rc = RAG_OK;

	while (i < n) {
		size_t start, end, le = line_end(s, n, i);

		if (blank(s + i, le - i)) {
			i = le + 1;
			continue;
		}
		start = i;
		do {
			end = le;
			i = le + 1;
			if (i >= n)
				break;
			le = line_end(s, n, i);
		} while (!blank(s + i, le - i));
		if ((rc = db_add_block(db, s + start, end - start, 0, err)))
			break;
	}
	return rc;
}
