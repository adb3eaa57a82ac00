/*
 * test_text_tok — the tokenizer shared by the embedder and BM25.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"
#include "rag_buf.h"

static void collect(void *ctx, const char *tok, size_t len)
{
	rag_buf *b = ctx;

	assert_int_equal(strlen(tok), len); /* NUL-terminated */
	if (b->len)
		assert_int_equal(rag_buf_putc(b, '|'), RAG_OK);
	assert_int_equal(rag_buf_append(b, tok, len), RAG_OK);
}

/* The tokens of text joined by '|'. */
static void expect_tokens(const char *text, size_t len, const char *want)
{
	rag_buf b;

	rag_buf_init(&b, 1 << 16);
	text_tokenize(text, len, collect, &b);
	assert_string_equal(b.data ? b.data : "", want);
	rag_buf_release(&b);
}

#define EXPECT(text, want) expect_tokens(text, sizeof(text) - 1, want)

static void test_case_folding_and_stemming(void **state)
{
	(void)state;
	EXPECT("Running RUNNERS runs", "run|runner|run");
	EXPECT("The Aerodynamics of a Wing", "aerodynam|wing");
	EXPECT("boundary-layer flows", "boundari|layer|flow");
	EXPECT("", "");
	EXPECT("   ...  ", "");
}

static void test_stopwords(void **state)
{
	size_t n;
	const char *const *w = text_stopword_list(&n);

	(void)state;
	EXPECT("what is the effect of it on them", "effect");
	EXPECT("don't", "don"); /* "t" is a stopword */
	assert_true(n > 100);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(strcmp(w[i - 1], w[i]) < 0); /* sorted for bsearch */
		assert_true(text_is_stopword(w[i], strlen(w[i])));
	}
	assert_false(text_is_stopword("wing", 4));
	assert_false(text_is_stopword("th", 2));
	assert_false(text_is_stopword("theirsx", 7));
}

static void test_numbers_kept_unstemmed(void **state)
{
	(void)state;
	EXPECT("mach 2.5 at 30000 ft", "mach|2|5|30000|ft");
	EXPECT("x2s 3ds", "x2s|3ds");
}

static void test_unicode(void **state)
{
	(void)state;
	/* NFKC: full-width letters, ligature fi; case folding of non-ASCII */
	EXPECT("\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", "abc");
	EXPECT("\xef\xac\x81nite", "finit");
	EXPECT("STRASSE Stra\xc3\x9f" "e", "strass|strass");
	EXPECT("\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9");
	/* composed and decomposed e-acute give the same token */
	EXPECT("caf\xc3\xa9 cafe\xcc\x81", "caf\xc3\xa9|caf\xc3\xa9");
	/* soft hyphen (default ignorable) disappears, em dash separates */
	EXPECT("co\xc2\xadoperation a\xe2\x80\x94" "b", "cooper|b");
	/* Han characters are one token each */
	EXPECT("\xe6\x9d\xb1\xe4\xba\xac tower", "\xe6\x9d\xb1|\xe4\xba\xac|tower");
	/* Cyrillic is cased and kept whole */
	EXPECT("\xd0\x9c\xd0\x98\xd0\xa0", "\xd0\xbc\xd0\xb8\xd1\x80");
}

static void test_invalid_utf8_and_long_tokens(void **state)
{
	char longw[TEXT_TOKEN_MAX + 10];

	(void)state;
	EXPECT("abc\xff" "def \xc3", "abc|def");
	EXPECT("wing\xc3\xa9\xff" "flap", "wing\xc3\xa9|flap");
	memset(longw, 'q', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	expect_tokens(longw, strlen(longw), "");
	/* embedded NUL is a separator, not the end */
	expect_tokens("wing\0flap", 9, "wing|flap");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_folding_and_stemming),
		cmocka_unit_test(test_stopwords),
		cmocka_unit_test(test_numbers_kept_unstemmed),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_invalid_utf8_and_long_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
