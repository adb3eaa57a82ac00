/*
 * test_bert_tok — BERT's tokenizer (bert_tok.c) on a small hand-written
 * vocabulary. Every expectation was worked out by hand from Hugging Face's
 * slow BertTokenizer (see the notes at the top of bert_tok.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "bert.h"

/* characters, as macros so that a hex escape never swallows a letter after it */
#define EACUTE "\xc3\xa9"     /* U+00E9 e with acute */
#define EACUTE_UP "\xc3\x89"  /* U+00C9 */
#define ACUTE "\xcc\x81"      /* U+0301 combining acute (Mn) */
#define SZ "\xc3\x9f"         /* U+00DF sharp s */
#define SZ_UP "\xe1\xba\x9e"  /* U+1E9E capital sharp s */
#define OSLASH "\xc3\xb8"     /* U+00F8 */
#define LSTROKE "\xc5\x82"    /* U+0142 */
#define I_DOT "\xc4\xb0"      /* U+0130 capital I with dot above */
#define HANGUK "\xed\x95\x9c\xea\xb5\xad" /* U+D55C U+AD6D */
/* their NFD: U+1112 U+1161 U+11AB, U+1100 U+116E U+11A8 */
#define HANGUK_JAMO "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab\xe1\x84\x80\xe1\x85\xae\xe1\x86\xa8"
#define KATAKANA "\xe3\x82\xab\xe3\x82\xbf\xe3\x82\xab\xe3\x83\x8a" /* U+30AB U+30BF U+30AB U+30CA */
#define ZHONG "\xe4\xb8\xad"  /* U+4E2D */
#define WEN "\xe6\x96\x87"    /* U+6587 */
#define EURO "\xe2\x82\xac"   /* U+20AC (Sc) */
#define DEGREE "\xc2\xb0"     /* U+00B0 (So) */
#define GRIN "\xf0\x9f\x98\x80" /* U+1F600 (So) */
#define ZWSP "\xe2\x80\x8b"   /* U+200B (Cf) */
#define ZWJ "\xe2\x80\x8d"    /* U+200D (Cf) */
#define BOM "\xef\xbb\xbf"    /* U+FEFF (Cf) */
#define SHY "\xc2\xad"        /* U+00AD soft hyphen (Cf) */
#define NBSP "\xc2\xa0"       /* U+00A0 (Zs) */
#define IDEO_SPACE "\xe3\x80\x80" /* U+3000 (Zs) */
#define LINE_SEP "\xe2\x80\xa8" /* U+2028 (Zl) */
#define ODOS_UP "\xce\x9f\xce\x94\xce\x9f\xce\xa3"    /* Greek capitals ending in sigma */
#define ODOS_SIGMA "\xce\xbf\xce\xb4\xce\xbf\xcf\x83" /* ... lowered, U+03C3 */
#define ODOS_FINAL "\xce\xbf\xce\xb4\xce\xbf\xcf\x82" /* ... with final sigma U+03C2 */

static const char *const vocab_lines[] = {
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"un", "##aff", "##able", "a", "ab", "##c", "##bcd",
	"cafe", "caf" EACUTE, "Caf" EACUTE,
	SZ, OSLASH, LSTROKE, "ss",
	HANGUK, HANGUK_JAMO, KATAKANA, ZHONG, WEN, ZHONG WEN,
	EURO, DEGREE, GRIN, "5", "##" EURO, "##" DEGREE,
	"foo", "bar", "foobar", "hello", "world", "don", "t", "i", "cls",
	".", ",", "!", "$", "+", "'", "[", "]",
	ODOS_SIGMA, ODOS_FINAL, "x", "##x", "##" SZ,
	/* then a line of 100 x's (vocab_text()) */
};

#define XS 101

/* The vocabulary as one vocab.txt (LF, a final newline); caller frees. */
static char *vocab_text(size_t *len)
{
	size_t n = 0, cap = XS + 2;
	char *s;

	for (size_t i = 0; i < sizeof(vocab_lines) / sizeof(vocab_lines[0]); i++)
		cap += strlen(vocab_lines[i]) + 1;
	s = malloc(cap);
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(vocab_lines) / sizeof(vocab_lines[0]); i++) {
		size_t l = strlen(vocab_lines[i]);
		memcpy(s + n, vocab_lines[i], l);
		n += l;
		s[n++] = '\n';
	}
	memset(s + n, 'x', 100);
	n += 100;
	s[n++] = '\n';
	*len = n;
	return s;
}

static int setup(void **state)
{
	size_t len;
	char *text = vocab_text(&len);
	bert_vocab *v = NULL;
	rag_error err;

	if (bert_vocab_load(text, len, "vocab.txt", &v, &err) != RAG_OK) {
		free(text);
		return -1;
	}
	free(text);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	bert_vocab_free(*state);
	return 0;
}

/*
 * Tokenize and compare the pieces between [CLS] and [SEP], joined by ' ',
 * and the truncated flag.
 */
static void expect_max(const bert_vocab *v, bool lower, const char *text, size_t len,
		       size_t max_len, const char *want, bool want_trunc)
{
	int32_t ids[512];
	char got[8192];
	size_t n = 99, gl = 0;
	bool tr = !want_trunc;
	rag_error err;

	assert_true(max_len <= 512);
	assert_int_equal(bert_tokenize(v, lower, text, len, ids, max_len, &n, &tr, &err), RAG_OK);
	assert_true(n >= 2 && n <= max_len);
	assert_int_equal(ids[0], bert_vocab_id(v, "[CLS]", 5));
	assert_int_equal(ids[n - 1], bert_vocab_id(v, "[SEP]", 5));
	got[0] = '\0';
	for (size_t i = 1; i + 1 < n; i++) {
		const char *tok = bert_vocab_token(v, ids[i]);
		int w;

		assert_non_null(tok);
		w = snprintf(got + gl, sizeof(got) - gl, "%s%s", gl ? " " : "", tok);
		assert_true(w > 0 && (size_t)w < sizeof(got) - gl);
		gl += (size_t)w;
	}
	assert_string_equal(got, want);
	assert_int_equal(tr, want_trunc);
}

#define EXPECT(lower, text, want) \
	expect_max(*state, lower, text, sizeof(text) - 1, 512, want, false)
#define EXPECT_BOTH(text, want) \
	do { \
		EXPECT(true, text, want); \
		EXPECT(false, text, want); \
	} while (0)

static void test_wordpiece_greedy(void **state)
{
	EXPECT(false, "unaffable", "un ##aff ##able");
	EXPECT(true, "UNAFFABLE", "un ##aff ##able");
	EXPECT(false, "UNAFFABLE", "[UNK]");
	/* one position without a match: the whole word, not just the tail */
	EXPECT_BOTH("unaffablez", "[UNK]");
	/* no backtracking: ab ##c, then no "##d"; "a ##bcd" is never tried */
	EXPECT_BOTH("abc", "ab ##c");
	EXPECT_BOTH("abcd", "[UNK]");
	EXPECT_BOTH("abcd unaffable ab", "[UNK] un ##aff ##able ab");
	EXPECT_BOTH("", "");
}

static void test_word_length(void **state)
{
	char xs[XS + 2], want[8 * XS], sz[2 * XS];
	size_t wl = 0;

	/* 100 code points make a word; 101 are [UNK] though "x" * 100 + ##x match */
	memset(xs, 'x', sizeof(xs));
	memset(want, 'x', 100);
	want[100] = '\0';
	expect_max(*state, false, xs, 100, 512, want, false);
	expect_max(*state, true, xs, 100, 512, want, false);
	expect_max(*state, false, xs, 101, 512, "[UNK]", false);
	expect_max(*state, true, xs, 101, 512, "[UNK]", false);
	/* shorter: the 100-x token is too long, greedy takes x ##x ##x */
	expect_max(*state, false, xs, 3, 512, "x ##x ##x", false);
	/* counted after normalisation: 100 x's and an accent are 100 once the
	 * accent is dropped, 101 when it is kept (there is no x-acute to compose) */
	memcpy(xs + 100, ACUTE, 2);
	expect_max(*state, true, xs, 102, 512, want, false);
	expect_max(*state, false, xs, 102, 512, "[UNK]", false);
	/* code points, not bytes: 100 sharp s (200 bytes) are a word */
	for (int i = 0; i < 101; i++)
		memcpy(sz + 2 * i, SZ, 2);
	for (int i = 0; i < 100; i++) {
		memcpy(want + wl, i ? " ##" SZ : SZ, i ? 5 : 2);
		wl += i ? 5 : 2;
	}
	want[wl] = '\0';
	expect_max(*state, false, sz, 200, 512, want, false);
	expect_max(*state, false, sz, 202, 512, "[UNK]", false);
}

static void test_accents_and_case(void **state)
{
	/* lower: lower-case, NFD, Mn dropped */
	EXPECT(true, "Caf" EACUTE, "cafe");
	EXPECT(true, "CAF" EACUTE_UP, "cafe");
	EXPECT(true, "cafe" ACUTE, "cafe");
	/* not lower: nothing stripped; decomposed input is composed (NFC) */
	EXPECT(false, "Caf" EACUTE, "Caf" EACUTE);
	EXPECT(false, "caf" EACUTE, "caf" EACUTE);
	EXPECT(false, "cafe" ACUTE, "caf" EACUTE);
	EXPECT(false, "CAFE", "[UNK]");
	/* no decomposition for these: kept as they are */
	EXPECT_BOTH(SZ " " OSLASH " " LSTROKE, SZ " " OSLASH " " LSTROKE);
	EXPECT(true, SZ_UP, SZ);
	/* U+0130 lowers to i + U+0307, and the dot is an Mn */
	EXPECT(true, I_DOT, "i");
	/* characters are lowered one at a time: no final sigma */
	EXPECT(true, ODOS_UP, ODOS_SIGMA);
	EXPECT(false, ODOS_FINAL, ODOS_FINAL);
	/* a word of marks only is nothing once they are dropped */
	EXPECT(true, "foo " ACUTE ACUTE " bar", "foo bar");
}

static void test_scripts(void **state)
{
	/* Hangul syllables decompose into jamo under NFD (kept: they are Lo) */
	EXPECT(true, HANGUK, HANGUK_JAMO);
	EXPECT(false, HANGUK, HANGUK);
	/* kana is not split into characters */
	EXPECT_BOTH(KATAKANA, KATAKANA);
	/* CJK ideographs are words of their own, even where the pair is a token */
	EXPECT_BOTH(ZHONG WEN, ZHONG " " WEN);
	EXPECT_BOTH("foo" ZHONG "bar", "foo " ZHONG " bar");
	/* currency, degree and emoji are not punctuation: they stay in the word */
	EXPECT_BOTH("5" EURO, "5 ##" EURO);
	EXPECT_BOTH(EURO "5", "[UNK]");
	EXPECT_BOTH("5" DEGREE, "5 ##" DEGREE);
	EXPECT_BOTH(GRIN, GRIN);
	EXPECT_BOTH(GRIN "5", "[UNK]");
	EXPECT_BOTH(EURO " " DEGREE, EURO " " DEGREE);
}

static void test_punctuation(void **state)
{
	EXPECT_BOTH("hello, world!", "hello , world !");
	EXPECT_BOTH("$5+5", "$ 5 + 5");
	EXPECT_BOTH("don't", "don ' t");
	EXPECT_BOTH("foo.bar", "foo . bar");
	EXPECT_BOTH("foo...", "foo . . .");
}

static void test_cleaning(void **state)
{
	/* format characters (Cf) are dropped, not separators */
	EXPECT_BOTH("foo" ZWSP "bar", "foobar");
	EXPECT_BOTH("foo" ZWJ "bar", "foobar");
	EXPECT_BOTH(BOM "foo", "foo");
	EXPECT_BOTH("foo" SHY "bar", "foobar");
	/* white space: \t \r \n, Zs (U+00A0, U+3000) and U+2028 */
	EXPECT_BOTH("foo\tbar\rfoo\nbar" IDEO_SPACE "foo" NBSP "bar" LINE_SEP "foo",
		    "foo bar foo bar foo bar foo");
	/* other controls are dropped: form feed, NUL (inside the text) */
	EXPECT_BOTH("foo\x0c" "bar", "foobar");
	EXPECT_BOTH("foo\0bar", "foobar");
	EXPECT_BOTH("\0", "");
	/* invalid UTF-8 is dropped */
	EXPECT_BOTH("foo\xff" "bar", "foobar");
	EXPECT_BOTH("foo\xe4\xb8", "foo");
	EXPECT_BOTH("foo\xe4\xb8 bar", "foo bar");
	EXPECT_BOTH("\xc0\xaf" "bar", "bar");        /* overlong '/' is not a slash */
	EXPECT_BOTH("foo\xed\xa0\x80" "bar", "foobar"); /* a surrogate */
	EXPECT_BOTH("\x80\xbf" "foo\xf8", "foo");
}

static void test_special_tokens(void **state)
{
	/* written in the text, exact case: their ids, even inside a word */
	EXPECT_BOTH("hello [SEP] world", "hello [SEP] world");
	EXPECT_BOTH("foo[SEP]bar", "foo [SEP] bar");
	EXPECT(true, "HELLO[MASK]WORLD", "hello [MASK] world");
	EXPECT(true, "[UNK][PAD]", "[UNK] [PAD]");
	/* other case: ordinary text */
	EXPECT_BOTH("[cls]", "[ cls ]");
	/* cleaned into "[CLS]": a whole token is kept (never_split) unless
	 * lower-casing lowered it first */
	EXPECT(false, "[CL" ZWSP "S]", "[CLS]");
	EXPECT(true, "[CL" ZWSP "S]", "[ cls ]");
	EXPECT(false, "a[CL" ZWSP "S]", "a [ [UNK] ]");
}

static void test_truncation(void **state)
{
	const bert_vocab *v = *state;

	expect_max(v, false, "unaffable unaffable", 19, 4, "un ##aff", true);
	expect_max(v, false, "unaffable", 9, 5, "un ##aff ##able", false);
	expect_max(v, false, "unaffable foo", 13, 5, "un ##aff ##able", true);
	expect_max(v, false, "unaffable [SEP]", 15, 5, "un ##aff ##able", true);
	expect_max(v, false, "unaffable", 9, 2, "", true);
	expect_max(v, false, "[SEP]", 5, 2, "", true);
	/* nothing left after cleaning: nothing cut */
	expect_max(v, false, "", 0, 2, "", false);
	expect_max(v, false, " " ZWSP " \0", 6, 2, "", false);
	expect_max(v, true, ACUTE, 2, 2, "", false);
	expect_max(v, false, "foo " ACUTE, 6, 3, "foo", true);
}

static void test_arguments(void **state)
{
	const bert_vocab *v = *state;
	int32_t ids[4];
	size_t n = 7;
	rag_error err;

	assert_int_equal(bert_tokenize(v, true, "foo", 3, ids, 1, &n, NULL, &err), RAG_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(bert_tokenize(v, true, NULL, 0, ids, 4, &n, NULL, &err), RAG_OK);
	assert_int_equal(n, 2);
	assert_int_equal(bert_vocab_id(v, "nope", 4), -1);
	assert_int_equal(bert_vocab_id(v, "", 0), -1);
	assert_null(bert_vocab_token(v, -1));
	assert_null(bert_vocab_token(v, (int32_t)bert_vocab_size(v)));
	assert_string_equal(bert_vocab_token(v, 5), "un");
	assert_int_equal(bert_vocab_size(v), sizeof(vocab_lines) / sizeof(vocab_lines[0]) + 1);
	bert_vocab_free(NULL);
}

static bert_vocab *load_ok(const char *text, size_t len)
{
	bert_vocab *v = NULL;
	rag_error err;

	assert_int_equal(bert_vocab_load(text, len, "v.txt", &v, &err), RAG_OK);
	return v;
}

static void expect_load_error(const char *text, size_t len, const char *msg)
{
	bert_vocab *v = (bert_vocab *)1;
	rag_error err;

	assert_int_equal(bert_vocab_load(text, len, "models/m/vocab.txt", &v, &err), RAG_ECORRUPT);
	assert_null(v);
	assert_non_null(strstr(err.msg, "models/m/vocab.txt"));
	assert_non_null(strstr(err.msg, msg));
}

#define LOAD_OK(text) load_ok(text, sizeof(text) - 1)
#define LOAD_ERR(text, msg) expect_load_error(text, sizeof(text) - 1, msg)

static void test_vocab_files(void **state)
{
	bert_vocab *v;

	(void)state;
	/* CRLF, no final newline */
	v = LOAD_OK("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nfoo");
	assert_int_equal(bert_vocab_size(v), 5);
	assert_int_equal(bert_vocab_id(v, "foo", 3), 4);
	assert_int_equal(bert_vocab_id(v, "[SEP]", 5), 3);
	assert_string_equal(bert_vocab_token(v, 3), "[SEP]");
	bert_vocab_free(v);
	/* a final newline adds no line; an empty line is the token "" and keeps
	 * the ids aligned with line numbers; a lone CR ends a line (Python's
	 * text mode); the last of two equal lines wins (load_vocab()) */
	v = LOAD_OK("[PAD]\n\n[UNK]\n[CLS]\r[SEP]\nfoo\nfoo\n");
	assert_int_equal(bert_vocab_size(v), 7);
	assert_int_equal(bert_vocab_id(v, "", 0), 1);
	assert_string_equal(bert_vocab_token(v, 1), "");
	assert_int_equal(bert_vocab_id(v, "[UNK]", 5), 2);
	assert_int_equal(bert_vocab_id(v, "[CLS]", 5), 3);
	assert_int_equal(bert_vocab_id(v, "[SEP]", 5), 4);
	assert_int_equal(bert_vocab_id(v, "foo", 3), 6);
	assert_string_equal(bert_vocab_token(v, 6), "foo");
	assert_int_equal(bert_vocab_id(v, "[MASK]", 6), -1);
	bert_vocab_free(v);
	/* trailing blanks are part of a token */
	v = LOAD_OK("[PAD]\n[UNK]\n[CLS]\n[SEP]\nfoo \n");
	assert_int_equal(bert_vocab_id(v, "foo", 3), -1);
	assert_int_equal(bert_vocab_id(v, "foo ", 4), 4);
	bert_vocab_free(v);

	LOAD_ERR("[PAD]\n[CLS]\n[SEP]\nfoo\n", "\"[UNK]\"");
	LOAD_ERR("[PAD]\n[UNK]\n[SEP]\n", "\"[CLS]\"");
	LOAD_ERR("[PAD]\n[UNK]\n[CLS]\n[sep]\n", "\"[SEP]\"");
	LOAD_ERR("[UNK]\n[CLS]\n[SEP]\n", "\"[PAD]\"");
	LOAD_ERR(BOM "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", "byte order mark");
	LOAD_ERR("", "empty");
	LOAD_ERR("[PAD]\n[UNK]\n[CLS]\n[SEP]\nfo\xff" "o\n", "line 5: invalid UTF-8");
	LOAD_ERR("[PAD]\n[UNK]\n[CLS]\n[SEP]\nf\0o\n", "line 5: NUL");
}

/*
 * "[MASK]" in a text is only special when the vocabulary has it; else it is
 * text: a whole white-space token is still never split (WordPiece finds no
 * "[MASK]"), and lower-casing lowers it first.
 */
static void test_mask_absent(void **state)
{
	bert_vocab *v = LOAD_OK("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[\n]\nmask\n");

	(void)state;
	expect_max(v, false, "[MASK]", 6, 16, "[UNK]", false);
	expect_max(v, true, "[MASK]", 6, 16, "[ mask ]", false);
	expect_max(v, false, "[SEP]", 5, 16, "[SEP]", false);
	bert_vocab_free(v);
}

#define UNIT "The unaffable caf" EACUTE ", " ZHONG WEN "! "
#define UNIT_PIECES 9 /* [UNK] un ##aff ##able cafe , 中 文 ! */

/* n bytes: copies of s, then spaces. */
static char *repeat(const char *s, size_t n)
{
	size_t l = strlen(s);
	char *t = malloc(n);

	assert_non_null(t);
	for (size_t i = 0; i < n; i++)
		t[i] = i / l < n / l ? s[i % l] : ' ';
	return t;
}

static void test_megabytes(void **state)
{
	const bert_vocab *v = *state;
	size_t len = 4u << 20, reps = len / strlen(UNIT), n, max = reps * UNIT_PIECES + 2;
	char *text = repeat(UNIT, len);
	int32_t *ids = malloc(max * sizeof(*ids));
	bool tr;
	rag_error err;

	assert_non_null(ids);
	/* all of it */
	assert_int_equal(bert_tokenize(v, true, text, len, ids, max, &n, &tr, &err), RAG_OK);
	assert_int_equal(n, max);
	assert_false(tr);
	for (size_t i = 1; i + 1 < n; i += UNIT_PIECES)
		assert_memory_equal(ids + i, ids + 1, UNIT_PIECES * sizeof(*ids));
	/* a model's window */
	assert_int_equal(bert_tokenize(v, true, text, len, ids, 512, &n, &tr, &err), RAG_OK);
	assert_int_equal(n, 512);
	assert_true(tr);
	free(text);

	/* one white-space token of megabytes (ASCII, then 2-byte letters) */
	text = repeat("x", len);
	expect_max(v, true, text, len, 8, "[UNK]", false);
	free(text);
	text = repeat(EACUTE, len);
	expect_max(v, true, text, len, 8, "[UNK]", false);
	expect_max(v, false, text, len, 8, "[UNK]", false);
	free(text);
	/* a letter and a megabyte of marks: no place to cut it for NFC */
	text = repeat(ACUTE, len);
	text[0] = 'x';
	text[1] = ' ';
	text[2] = 'x';
	expect_max(v, true, text, len, 8, "x x", false);
	expect_max(v, false, text, len, 8, "x [UNK]", false);
	free(text);
	free(ids);
}

typedef struct thread_arg {
	const bert_vocab *v;
	const char *text;
	size_t len;
	int32_t ids[64];
	size_t n;
	int failed;
} thread_arg;

static void *thread_main(void *p)
{
	thread_arg *a = p;
	int32_t ids[64];
	size_t n;
	rag_error err;

	for (int k = 0; k < 200; k++) {
		if (bert_tokenize(a->v, true, a->text, a->len, ids, 64, &n, NULL, &err) != RAG_OK ||
		    n != a->n || memcmp(ids, a->ids, n * sizeof(*ids)) != 0)
			a->failed++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	thread_arg args[4];
	pthread_t th[4];
	const char *text = "Caf" EACUTE " " HANGUK " unaffable, " ZHONG WEN "; [SEP] x" ACUTE;
	rag_error err;

	for (int i = 0; i < 4; i++) {
		args[i].v = *state;
		args[i].text = text;
		args[i].len = strlen(text);
		args[i].failed = 0;
		assert_int_equal(bert_tokenize(*state, true, text, strlen(text), args[i].ids, 64,
					       &args[i].n, NULL, &err),
				 RAG_OK);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failed, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wordpiece_greedy),
		cmocka_unit_test(test_word_length),
		cmocka_unit_test(test_accents_and_case),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_punctuation),
		cmocka_unit_test(test_cleaning),
		cmocka_unit_test(test_special_tokens),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_vocab_files),
		cmocka_unit_test(test_mask_absent),
		cmocka_unit_test(test_megabytes),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
