/*
 * test_qrequest — the /v1/query body: what is accepted, with what defaults,
 * and the exact 400 message for everything else (a table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qrequest.h"

static const struct {
	const char *body;
	size_t len;       /* 0: strlen(body) */
	int k;            /* when accepted */
	qretriever ret;
	const char *msg;  /* NULL: accepted; a trailing '*' matches any rest */
} cases[] = {
	{"{\"q\": \"vector search\"}", 0, 5, QRET_DENSE, NULL},
	{"{\"q\": \"x\", \"k\": 100, \"retriever\": \"hybrid\"}", 0, 100, QRET_HYBRID, NULL},
	{"{\"q\": \"x\", \"k\": 1, \"retriever\": \"bm25\", \"extra\": [1]}", 0, 1, QRET_BM25, NULL},
	{"", 0, 0, 0, "malformed JSON at line 1 column *"},
	{"{\"q\": \"\xff\"}", 0, 0, 0, "request body is not valid UTF-8"},
	{"[1, 2]", 0, 0, 0, "the body must be a JSON object"},
	{"{\"k\": 3}", 0, 0, 0, "missing field \"q\""},
	{"{\"q\": 7}", 0, 0, 0, "field \"q\" must be a string"},
	{"{\"q\": \" \\t\\n\"}", 0, 0, 0, "field \"q\" is empty"},
	{"{\"q\": \"0123456789abcdefg\"}", 0, 0, 0, "field \"q\" is longer than 16 bytes"},
	/* jansson refuses \u0000 itself (no JSON_ALLOW_NUL) */
	{"{\"q\": \"a\\u0000b\"}", 0, 0, 0, "malformed JSON at line 1 column *"},
	{"{\"q\": \"x\", \"k\": 0}", 0, 0, 0, "field \"k\" must be an integer in 1..100"},
	{"{\"q\": \"x\", \"k\": 101}", 0, 0, 0, "field \"k\" must be an integer in 1..100"},
	{"{\"q\": \"x\", \"k\": 2.5}", 0, 0, 0, "field \"k\" must be an integer in 1..100"},
	{"{\"q\": \"x\", \"retriever\": \"sparse\"}", 0, 0, 0,
	 "field \"retriever\" must be \"dense\", \"bm25\" or \"hybrid\""},
	{"{\"q\": \"x\"} trailing", 0, 0, 0, "malformed JSON at line 1 column *"},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		qrequest r;
		rag_error err = {0};
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);
		rag_rc rc = qrequest_parse(len ? cases[i].body : NULL, len, 16, 100, &r, &err);

		if (!cases[i].msg) {
			assert_int_equal(rc, RAG_OK);
			assert_int_equal(r.k, cases[i].k);
			assert_int_equal(r.retriever, cases[i].ret);
			assert_int_equal(strlen(r.text), r.len);
		} else {
			size_t n = strlen(cases[i].msg);
			assert_int_equal(rc, RAG_EINVAL);
			if (cases[i].msg[n - 1] == '*')
				assert_memory_equal(err.msg, cases[i].msg, n - 1);
			else
				assert_string_equal(err.msg, cases[i].msg);
			assert_null(r.text);
		}
		qrequest_release(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
