/*
 * parse_text.c — plain text: paragraphs are runs of non-blank lines.
 * Also used for each page of a PDF. With db->text_headings, underlined and
 * numbered headings are recognised (parse.h, invariant 7).
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

/* A line of only c (spaces/tabs around allowed): how many c, else 0. */
static size_t underline(const char *s, size_t n, char c)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == c)
			k++;
		else if (s[i] != ' ' && s[i] != '\t')
			return 0;
	}
	return k;
}

static size_t trimmed_len(const char *s, size_t n)
{
	size_t b = 0;

	while (b < n && parse_is_space((unsigned char)s[b]))
		b++;
	while (n > b && parse_is_space((unsigned char)s[n - 1]))
		n--;
	return n - b;
}

/* "2.1 Title" standing alone: its level (number of parts), else 0. */
static int numbered_heading(const char *s, size_t n)
{
	size_t i = 0, words = 1, tn = trimmed_len(s, n);
	int parts = 0;
	char last;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (tn == 0 || tn > 80)
		return 0;
	for (;;) {
		size_t d = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, d++;
		if (d == 0 || d > 3)
			return 0;
		parts++;
		if (i < n && s[i] == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
			i++;
			continue;
		}
		if (i < n && s[i] == '.')
			i++;
		break;
	}
	if (i >= n || (s[i] != ' ' && s[i] != '\t'))
		return 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] < 'A' || s[i] > 'Z')
		return 0;
	for (size_t j = i; j < n; j++)
		if ((s[j] == ' ' || s[j] == '\t') && j + 1 < n && s[j + 1] != ' ' && s[j + 1] != '\t')
			words++;
	while (n > i && parse_is_space((unsigned char)s[n - 1]))
		n--;
	last = s[n - 1];
	if (words > 12 || last == '.' || last == ',' || last == ';' || last == ':')
		return 0;
	return parts > 6 ? 6 : parts;
}

/* The paragraph s[0, n) as a heading: its level and the heading text. */
static int text_heading(const char *s, size_t n, size_t *hn)
{
	const char *nl = memchr(s, '\n', n);
	size_t l1, k;
	int level;

	if (!nl) {
		*hn = n;
		return numbered_heading(s, n);
	}
	l1 = (size_t)(nl - s);
	if (memchr(nl + 1, '\n', n - l1 - 1))
		return 0; /* more than two lines */
	k = underline(nl + 1, n - l1 - 1, '=');
	level = 1;
	if (!k) {
		k = underline(nl + 1, n - l1 - 1, '-');
		level = 2;
	}
	if (k < 3 || trimmed_len(s, l1) == 0 || l1 > PARSE_HEADING_MAX ||
	    k * 2 < trimmed_len(s, l1))
		return 0;
	*hn = l1;
	return level;
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
		size_t hn = 0;
		int level = db->text_headings ? text_heading(s + start, end - start, &hn) : 0;

		if ((rc = db_add_block(db, s + start, level ? hn : end - start, level, err)))
			break;
	}
	return rc;
}
