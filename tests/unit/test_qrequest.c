/*
 * test_qrequest — the /v1/query body: what is accepted, with what defaults,
 * and the exact 400 message for everything else (a table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
	{"{\"q\": \"x\", \"k\": 1, \"retriever\": \"bm25\", \"extra\": [1]}", 0, 0, 0,
	 "unknown field \"extra\""},
	{"{\"q\": \"x\", \"tpye\": \"pdf\"}", 0, 0, 0, "unknown field \"tpye\""},
	/* an unknown field is named before any other problem */
	{"{\"k\": 0, \"Q\": \"x\"}", 0, 0, 0, "unknown field \"Q\""},
	{"{\"q\": \"x\", \"filter\": {\"prefix\": \"a/\", \"types\": [\"pdf\"]}}", 0, 0, 0,
	 "unknown field \"types\" in \"filter\""},
	{"{\"q\": \"x\", \"filter\": [\"pdf\"]}", 0, 0, 0, "field \"filter\" must be an object"},
	{"{\"q\": \"x\", \"filter\": {\"prefix\": 3}}", 0, 0, 0,
	 "field \"filter.prefix\" must be a string"},
	{"{\"q\": \"x\", \"filter\": {\"type\": \"doc\"}}", 0, 0, 0,
	 "field \"filter.type\": unknown type \"doc\" (text, markdown, html, pdf)"},
	{"{\"q\": \"x\", \"filter\": {\"type\": [\"pdf\", \"docx\"]}}", 0, 0, 0,
	 "field \"filter.type\": unknown type \"docx\" (text, markdown, html, pdf)"},
	{"{\"q\": \"x\", \"filter\": {\"type\": []}}", 0, 0, 0,
	 "field \"filter.type\" must be a type or a non-empty array of types (*"},
	{"{\"q\": \"x\", \"filter\": {\"type\": [1]}}", 0, 0, 0,
	 "field \"filter.type\" must hold strings (text, markdown, html, pdf)"},
	{"{\"q\": \"x\", \"trace\": \"all\"}", 0, 0, 0, "field \"trace\" must be \"full\" or \"summary\""},
	{"{\"q\": \"x\", \"trace\": true}", 0, 0, 0, "field \"trace\" must be \"full\" or \"summary\""},
	{"{\"q\": \"x\", \"explain\": \"yes\"}", 0, 0, 0, "field \"explain\" must be true or false"},
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

/* Accepted filters and flags: what lands in the qrequest. */
static void test_filter(void **state)
{
	static const struct {
		const char *body;
		const char *prefix;   /* NULL: none */
		const char *types;    /* comma-joined canonical names, "" for none */
		bool trace_full, explain;
	} ok[] = {
		{"{\"q\": \"x\"}", NULL, "", false, false},
		{"{\"q\": \"x\", \"filter\": {}}", NULL, "", false, false},
		{"{\"q\": \"x\", \"filter\": {\"prefix\": \"corpus/rag/\"}}", "corpus/rag/", "", false,
		 false},
		{"{\"q\": \"x\", \"filter\": {\"type\": \"md\"}, \"trace\": \"full\"}", NULL, "markdown",
		 true, false},
		{"{\"q\": \"x\", \"filter\": {\"prefix\": \"\", \"type\": [\"md\", \"pdf\", \"markdown\", "
		 "\"txt\", \"html\"]}, \"trace\": \"summary\", \"explain\": true}",
		 "", "markdown,pdf,text,html", false, true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		qrequest r;
		rag_error err = {0};
		char types[128] = "";
		size_t n = 0;

		assert_int_equal(qrequest_parse(ok[i].body, strlen(ok[i].body), 16, 100, &r, &err),
				 RAG_OK);
		if (ok[i].prefix)
			assert_string_equal(r.filter.prefix, ok[i].prefix);
		else
			assert_null(r.filter.prefix);
		for (int t = 0; t < r.filter.ntypes; t++)
			n += (size_t)snprintf(types + n, sizeof(types) - n, "%s%s", t ? "," : "",
					      r.filter.types[t]);
		assert_string_equal(types, ok[i].types);
		assert_int_equal(r.trace_full, ok[i].trace_full);
		assert_int_equal(r.explain, ok[i].explain);
		qrequest_release(&r);
		assert_null(r.filter.prefix);
	}
	assert_string_equal(qrequest_type_name("txt"), "text");
	assert_null(qrequest_type_name("doc"));
	assert_null(qrequest_type_name(NULL));
}

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
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
