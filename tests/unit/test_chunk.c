/* Unit tests for src/ingest/chunk: token counting and chunking invariants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "parse.h"
#include "rag_buf.h"
#include "rag_util.h"

#include "../tools/chunk_check.h"

/* ------------------------------------------------------------- helpers */

/* The invariants of chunk.h (tests/tools/chunk_check.h). */
static void check_chunks(const parsed_doc *d, const chunk_opts *o, const doc_chunk *c, size_t n)
{
	char msg[512];
	const char *why = chunk_check(d, o, c, n, msg, sizeof(msg));

	if (why)
		fail_msg("%s", why);
}

static void parse_ok(const char *key, const char *s, size_t len, parsed_doc *d)
{
	rag_error err = {0};

	if (parse_document(key, s, len, d, &err) != RAG_OK)
		fail_msg("parse: %s", err.msg);
}

static void chunk_ok(const parsed_doc *d, chunk_opts o, doc_chunk **c, size_t *n)
{
	rag_error err = {0};

	if (chunk_document(d, &o, c, n, &err) != RAG_OK)
		fail_msg("chunk: %s", err.msg);
	check_chunks(d, &o, *c, *n);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A sentence of n words ending with '.'; words from a small vocabulary. */
static void put_sentence(rag_buf *b, int n)
{
	static const char *const words[] = {"object", "storage", "vector", "index", "query",
					    "bucket", "chunk", "token", "shard", "cache"};

	for (int i = 0; i < n; i++)
		assert_int_equal(rag_buf_printf(b, "%s%s%s", i ? " " : "",
						words[rng() % RAG_ARRAY_LEN(words)],
						i == n - 1 ? ". " : ""),
				 RAG_OK);
}

/* ---------------------------------------------------------------- tests */

static void test_count_tokens(void **state)
{
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{"", 0},
		{"   \n\t ", 0},
		{"hello", 1},
		{"hello world", 2},
		{"Hello, world!", 4},
		{"a.b", 3},
		{"3.14", 3},
		{"snake_case", 3},
		{"x  \t\n y", 2},
		{"na\xC3\xAFve caf\xC3\xA9", 2},                 /* naïve café */
		{"e\xCC\x81t\xC3\xA9", 1},                      /* combining acute stays in */
		{"\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80", 2},
		{"\xE6\x95\xB0\xE6\x8D\xAE\xE5\xBA\x93", 3},   /* 数据库: one per ideograph */
		{"\xE6\x95\xB0\xE3\x80\x82x", 3},               /* 数。x */
		{"\xF0\x9F\x99\x82\xF0\x9F\x99\x82", 2},       /* two emoji */
		{"a\xC2\xA0" "b", 2},                           /* NBSP separates */
		{"a\xE2\x80\x83" "b", 2},                       /* EM SPACE separates */
		{"a\xE2\x80\x8B" "b", 2},                       /* ZERO WIDTH SPACE separates */
		{"\xFF", 1},                                    /* an invalid byte */
		{"ab\xC3", 2},                                  /* a cut sequence */
		{"x\x01y", 2},                                  /* a control byte separates */
		{"\xC2\xB2\xE2\x85\xA0", 1},                    /* ²Ⅰ: numbers */
		{"--", 2},
		{"https://a.b/c", 9},
	};

	(void)state;
	for (size_t i = 0; i < RAG_ARRAY_LEN(cases); i++) {
		int got = chunk_count_tokens(cases[i].s, strlen(cases[i].s));

		if (got != cases[i].want)
			fail_msg("case %zu \"%s\": %d tokens, want %d", i, cases[i].s, got, cases[i].want);
	}
	assert_int_equal(chunk_count_tokens(NULL, 0), 0);
	assert_int_equal(chunk_count_tokens("hello world", 5), 1); /* honours len */
}

static void test_empty_and_errors(void **state)
{
	parsed_doc d;
	doc_chunk *c = (doc_chunk *)1;
	size_t n = 99;
	rag_error err = {0};
	chunk_opts bad[] = {{0, 0}, {-1, 0}, {10, 10}, {10, -1}, {1, 1}};
	doc_block blocks[2] = {{0, 3, false, 0, ""}, {2, 3, false, 0, ""}};
	parsed_doc broken = {DOC_TEXT, "abc\n\ndef", 8, blocks, 2, "", 0, 0};

	(void)state;
	parse_ok("e.txt", "  \n ", 4, &d);
	assert_int_equal(chunk_document(&d, NULL, &c, &n, &err), RAG_OK);
	assert_int_equal(n, 0);
	assert_null(c);
	doc_chunks_free(c, n);
	for (size_t i = 0; i < RAG_ARRAY_LEN(bad); i++) {
		assert_int_equal(chunk_document(&d, &bad[i], &c, &n, &err), RAG_EINVAL);
		assert_non_null(strstr(err.msg, "max_tokens"));
	}
	parsed_doc_release(&d);
	/* overlapping / out-of-range blocks are refused */
	assert_int_equal(chunk_document(&broken, NULL, &c, &n, &err), RAG_EINVAL);
	assert_null(c);
	blocks[1].off = 5;
	blocks[1].len = 4;
	assert_int_equal(chunk_document(&broken, NULL, &c, &n, &err), RAG_EINVAL);
	blocks[1].len = 3;
	assert_int_equal(chunk_document(&broken, NULL, &c, &n, &err), RAG_OK);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].len, 8);
	doc_chunks_free(c, n);
	doc_chunks_free(NULL, 0);
	/* a NULL heading path reads as "" */
	blocks[0].heading_path = NULL;
	blocks[1].heading_path = NULL;
	assert_int_equal(chunk_document(&broken, NULL, &c, &n, &err), RAG_OK);
	assert_string_equal(c[0].heading_path, "");
	doc_chunks_free(c, n);
}

/* Varied documents under many option sets: the invariants always hold. */
static void test_budget_and_coverage(void **state)
{
	static const chunk_opts opts[] = {{1, 0}, {2, 1}, {3, 0}, {7, 3}, {16, 4},
					  {50, 10}, {64, 0}, {256, 32}, {1000, 999}};

	(void)state;
	for (int docn = 0; docn < 12; docn++) {
		rag_buf b;
		parsed_doc d;

		rag_buf_init(&b, 1 << 24);
		for (int s = 0; s < 6; s++) {
			assert_int_equal(rag_buf_printf(&b, "%s Section %d\n\n",
							s % 3 == 0 ? "#" : "##", s),
					 RAG_OK);
			for (int p = 0; p < (int)(rng() % 5); p++) {
				int sentences = (int)(rng() % 30) + 1;
				for (int k = 0; k < sentences; k++)
					put_sentence(&b, (int)(rng() % (docn == 5 ? 400 : 25)) + 1);
				assert_int_equal(rag_buf_puts(&b, "\n\n"), RAG_OK);
			}
			if (s == 4) /* a list and a long line without any sentence end */
				for (int k = 0; k < 80; k++)
					assert_int_equal(rag_buf_printf(&b, "- item %d word word\n", k), RAG_OK);
		}
		parse_ok("doc.md", b.data, b.len, &d);
		for (size_t o = 0; o < RAG_ARRAY_LEN(opts); o++) {
			doc_chunk *c;
			size_t n;

			chunk_ok(&d, opts[o], &c, &n);
			assert_true(n > 0);
			doc_chunks_free(c, n);
		}
		parsed_doc_release(&d);
		rag_buf_release(&b);
	}
}

/* Consecutive chunks of one long section share a tail of ~overlap tokens. */
static void test_overlap(void **state)
{
	const chunk_opts o = {100, 20};
	rag_buf b;
	parsed_doc d;
	doc_chunk *c;
	size_t n, second = 0;

	(void)state;
	rag_buf_init(&b, 1 << 24);
	assert_int_equal(rag_buf_puts(&b, "# Long\n\n"), RAG_OK);
	for (int k = 0; k < 200; k++)
		put_sentence(&b, 11);
	assert_int_equal(rag_buf_puts(&b, "\n\n# Next\n\nShort section.\n"), RAG_OK);
	parse_ok("long.md", b.data, b.len, &d);
	chunk_ok(&d, o, &c, &n);
	assert_true(n > 20);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t end = c[i].off + c[i].len;
		int ov;

		if (strcmp(c[i + 1].heading_path, c[i].heading_path) != 0) {
			/* a new section starts exactly at its heading, no overlap */
			assert_true(c[i + 1].off >= end);
			assert_memory_equal(d.text + c[i + 1].off, "Next", 4);
			second = i + 1;
			continue;
		}
		assert_true(c[i + 1].off < end);
		ov = chunk_count_tokens(d.text + c[i + 1].off, end - c[i + 1].off);
		if (ov < 10 || ov > 20)
			fail_msg("chunks %zu/%zu overlap by %d tokens", i, i + 1, ov);
		/* aligned: starts on a sentence start here (sentences are short) */
		assert_true(isupper((unsigned char)d.text[c[i + 1].off]) ||
			    memcmp(d.text + c[i + 1].off - 2, ". ", 2) == 0);
	}
	assert_true(second > 0);
	assert_string_equal(c[second].heading_path, "Next");
	doc_chunks_free(c, n);

	/* no overlap asked: chunks do not overlap at all */
	chunk_ok(&d, (chunk_opts){100, 0}, &c, &n);
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(c[i + 1].off >= c[i].off + c[i].len);
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

static void test_headings_start_chunks(void **state)
{
	const char in[] = "Preamble text.\n\n# A\n\nBody of A.\n\n## A1\n\nBody of A1.\n\n"
			  "# B\n\nBody of B.\n\n# C\n# D\n\nBody of D.\n";
	static const struct {
		const char *start, *path;
	} want[] = {
		{"Preamble text.", ""}, {"A\n\nBody of A.", "A"}, {"A1\n\nBody of A1.", "A > A1"},
		{"B\n\nBody of B.", "B"}, {"C", "C"}, {"D\n\nBody of D.", "D"},
	};
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	parse_ok("h.md", in, strlen(in), &d);
	chunk_ok(&d, CHUNK_OPTS_DEFAULT, &c, &n);
	assert_int_equal(n, RAG_ARRAY_LEN(want));
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(c[i].len, strlen(want[i].start));
		assert_memory_equal(d.text + c[i].off, want[i].start, c[i].len);
		assert_string_equal(c[i].heading_path, want[i].path);
	}
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
}

/* Paragraphs are packed whole; an oversized one is cut at sentence ends. */
static void test_packing_and_sentences(void **state)
{
	rag_buf b;
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	/* ten paragraphs of 8 tokens: 3 fit in 25 */
	rag_buf_init(&b, 1 << 20);
	for (int k = 0; k < 10; k++)
		assert_int_equal(rag_buf_printf(&b, "Paragraph %d has exactly eight tokens here.\n\n", k), RAG_OK);
	parse_ok("p.txt", b.data, b.len, &d);
	chunk_ok(&d, (chunk_opts){25, 0}, &c, &n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_memory_equal(d.text + c[i].off, "Paragraph", 9);
		assert_int_equal(d.text[c[i].off + c[i].len - 1], '.');
	}
	assert_int_equal(c[0].ntokens, 24);
	doc_chunks_free(c, n);
	parsed_doc_release(&d);

	/* one paragraph of 20 sentences of 10 tokens: chunks end at sentence ends */
	rag_buf_reset(&b);
	for (int k = 0; k < 20; k++)
		assert_int_equal(rag_buf_printf(&b, "Sentence %02d is a short sentence with ten tokens! ", k), RAG_OK);
	parse_ok("s.txt", b.data, b.len, &d);
	assert_int_equal(d.nblocks, 1);
	chunk_ok(&d, (chunk_opts){35, 0}, &c, &n);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++) {
		assert_memory_equal(d.text + c[i].off, "Sentence", 8);
		assert_int_equal(d.text[c[i].off + c[i].len - 1], '!');
		assert_int_equal(c[i].ntokens, i + 1 < n ? 30 : 20);
	}
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

/* A sentence longer than the budget is cut at token boundaries; a huge
 * "word" is cut into pieces on character boundaries. */
static void test_oversized_sentence_and_word(void **state)
{
	rag_buf b;
	parsed_doc d;
	doc_chunk *c;
	size_t n;

	(void)state;
	rag_buf_init(&b, 1 << 22);
	for (int k = 0; k < 1000; k++)
		assert_int_equal(rag_buf_printf(&b, "w%d ", k), RAG_OK);
	parse_ok("one.txt", b.data, b.len, &d);
	chunk_ok(&d, (chunk_opts){64, 8}, &c, &n);
	assert_true(n >= 1000 / 56);
	for (size_t i = 0; i < n; i++) /* cut between words */
		assert_true(d.text[c[i].off] == 'w' &&
			    (c[i].off + c[i].len == d.len || d.text[c[i].off + c[i].len] == ' '));
	doc_chunks_free(c, n);
	parsed_doc_release(&d);

	/* 300 KB without a space, in 2- and 3-byte characters */
	rag_buf_reset(&b);
	for (int k = 0; k < 60000; k++)
		assert_int_equal(rag_buf_puts(&b, "\xC3\xA9\xE2\x82\xAC"), RAG_OK); /* é€ */
	parse_ok("word.txt", b.data, b.len, &d);
	chunk_ok(&d, (chunk_opts){16, 4}, &c, &n);
	assert_true(n > 100);
	for (size_t i = 0; i < n; i++)
		assert_true(c[i].len <= 16 * CHUNK_WORD_BYTES);
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

/* Multibyte text of every sequence length at every possible cut. */
static void test_utf8_boundaries(void **state)
{
	static const char *const chars[] = {"a", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9D\x84\x9E",
					    "\xE6\x95\xB0", "\xE3\x80\x82", "\xCC\x81", " ", ". ",
					    "\xC2\xA0", "\xE2\x80\x83", "\n", "\xF0\x9F\x99\x82"};
	rag_buf b;
	parsed_doc d;

	(void)state;
	rag_buf_init(&b, 1 << 20);
	for (int k = 0; k < 3000; k++)
		assert_int_equal(rag_buf_puts(&b, chars[rng() % RAG_ARRAY_LEN(chars)]), RAG_OK);
	parse_ok("mb.txt", b.data, b.len, &d);
	for (int max = 1; max <= 24; max++) {
		for (int ov = 0; ov < max; ov += 1 + max / 4) {
			doc_chunk *c;
			size_t n;

			chunk_ok(&d, (chunk_opts){max, ov}, &c, &n);
			doc_chunks_free(c, n);
		}
	}
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

static void test_determinism(void **state)
{
	rag_buf b;
	parsed_doc d;
	doc_chunk *c1, *c2;
	size_t n1, n2;

	(void)state;
	rag_buf_init(&b, 1 << 22);
	for (int s = 0; s < 20; s++) {
		assert_int_equal(rag_buf_printf(&b, "## S%d\n\n", s), RAG_OK);
		for (int k = 0; k < 40; k++)
			put_sentence(&b, (int)(rng() % 30) + 1);
		assert_int_equal(rag_buf_puts(&b, "\n\n"), RAG_OK);
	}
	parse_ok("det.md", b.data, b.len, &d);
	chunk_ok(&d, CHUNK_OPTS_DEFAULT, &c1, &n1);
	chunk_ok(&d, CHUNK_OPTS_DEFAULT, &c2, &n2);
	assert_int_equal(n1, n2);
	for (size_t i = 0; i < n1; i++) {
		assert_int_equal(c1[i].off, c2[i].off);
		assert_int_equal(c1[i].len, c2[i].len);
		assert_int_equal(c1[i].ntokens, c2[i].ntokens);
		assert_string_equal(c1[i].heading_path, c2[i].heading_path);
	}
	doc_chunks_free(c1, n1);
	doc_chunks_free(c2, n2);
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

/* A large document chunks correctly (its speed is printed for reference). */
static void test_speed(void **state)
{
	const size_t size = 32u << 20;
	rag_buf b;
	parsed_doc d;
	doc_chunk *c;
	size_t n;
	uint64_t t0;
	double count_ms, chunk_ms;
	long total = 0;
	const chunk_opts dflt = CHUNK_OPTS_DEFAULT;

	(void)state;
	rag_buf_init(&b, size + 1024);
	while (b.len < size) {
		put_sentence(&b, (int)(rng() % 25) + 1);
		if (rng() % 8 == 0)
			assert_int_equal(rag_buf_puts(&b, "\n\n"), RAG_OK);
	}
	parse_ok("big.txt", b.data, b.len, &d);
	t0 = rag_now_ns();
	for (int r = 0; r < 4; r++)
		total += chunk_count_tokens(d.text, d.len);
	count_ms = rag_ms_since(t0) / 4;
	assert_true(total > 0);
	t0 = rag_now_ns();
	assert_int_equal(chunk_document(&d, NULL, &c, &n, NULL), RAG_OK);
	chunk_ms = rag_ms_since(t0);
	check_chunks(&d, &dflt, c, n);
	print_message("count: %.0f MB/s, chunk_document: %.0f MB/s (%zu chunks)\n",
		      (double)d.len / 1e3 / count_ms, (double)d.len / 1e3 / chunk_ms, n);
	/* the speeds are printed, not asserted: a timed unit test fails on a
	 * busy machine (speed is the benchmarks' job, bench/ingest.sh) */
	doc_chunks_free(c, n);
	parsed_doc_release(&d);
	rag_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_tokens),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_budget_and_coverage),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_headings_start_chunks),
		cmocka_unit_test(test_packing_and_sentences),
		cmocka_unit_test(test_oversized_sentence_and_word),
		cmocka_unit_test(test_utf8_boundaries),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
