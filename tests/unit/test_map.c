/* Unit tests for the live storage map: the /v1/map document (map.c) and the
 * page compiled into the binary (page.c). The server end to end is in
 * tests/integration/page_browser.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "page.h"
#include "rag_util.h"

static void test_page_matches_source(void **state)
{
	const char *dir = getenv("RAGMAP_SOURCE_DIR");
	char path[4096], *want;
	FILE *f;
	long n;

	(void)state;
	if (!dir)
		skip();
	snprintf(path, sizeof(path), "%s/src/query/page/index.html", dir);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	assert_non_null(want = malloc((size_t)n + 1));
	assert_int_equal(fread(want, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	/* if this fails: run src/query/page/gen.sh after editing index.html */
	assert_int_equal(page_html_len(), (size_t)n);
	assert_memory_equal(page_html(), want, (size_t)n);
	free(want);
}

static void test_page_is_self_contained(void **state)
{
	const char *p = page_html();

	(void)state;
	assert_int_equal(strlen(p), page_html_len());
	assert_true(rag_utf8_valid(p, page_html_len()));
	/* works offline: nothing is fetched from anywhere but this server */
	assert_null(strstr(p, "http://"));
	assert_null(strstr(p, "https://"));
	assert_null(strstr(p, "src=\""));
	assert_null(strstr(p, "@import"));
	assert_non_null(strstr(p, "<svg"));
	assert_non_null(strstr(p, "/v1/map"));
	assert_non_null(strstr(p, "/v1/query"));
}

static void test_stage_per_query(void **state)
{
	static const struct {
		const char *stage;
		bool per_query;
	} cases[] = {
		{"query.text", true},    {"query.lists", true},   {"query.catalog", true},
		{"query.load", false},   {"query.reload", false}, {"query.log", false},
		{"query.map", false},    {"ingest.fetch", false}, {"query", false},
		{"", false},
	};

	(void)state;
	for (size_t i = 0; i < RAG_ARRAY_LEN(cases); i++)
		assert_int_equal(qmap_stage_per_query(cases[i].stage), cases[i].per_query);
}

static void test_mode_touches(void **state)
{
	static const struct {
		qmode mode;
		bool lists, text;
	} cases[] = {
		{QMODE_MEMORY, false, false},
		{QMODE_POINTER, false, true},
		{QMODE_CACHED, false, true},
		{QMODE_OBJECT, true, true},
	};

	(void)state;
	for (size_t i = 0; i < RAG_ARRAY_LEN(cases); i++) {
		bool l, t;
		qmap_mode_touches(cases[i].mode, &l, &t);
		assert_int_equal(l, cases[i].lists);
		assert_int_equal(t, cases[i].text);
	}
}

static void add_stage(qmap_counts *c, const char *stage, s3_kind kind, uint64_t req, uint64_t bytes,
		      uint64_t ns)
{
	s3_stage_stats *s = &c->stages[c->nstages++];

	rag_strlcpy(s->stage, stage, sizeof(s->stage));
	s->kind[kind].requests = req;
	s->kind[kind].bytes_in = bytes;
	s->kind[kind].ns = ns;
}

static double real_at(json_t *j, const char *a, const char *b)
{
	json_t *x = json_object_get(json_object_get(j, a), b);

	assert_true(json_is_number(x));
	return json_number_value(x);
}

static void test_map_json(void **state)
{
	rag_config cfg;
	qmap *m;
	qmap_counts *c = calloc(1, sizeof(*c));
	json_t *j, *x;

	(void)state;
	assert_non_null(c);
	assert_int_equal(rag_config_init(&cfg), RAG_OK);
	assert_non_null(m = qmap_new(NULL, &cfg));
	c->status.mode = QMODE_CACHED;
	c->status.version = 3;
	c->status.vector_bytes = 1000;
	c->status.text_bytes = 0;
	c->status.pointer_bytes = 24;
	add_stage(c, "query.load", S3_GET, 5, 900000, 30000000);
	add_stage(c, "query.text", S3_GET, 6, 3000, 12000000);
	add_stage(c, "query.reload", S3_GET, 2, 136, 1000000);
	add_stage(c, "query.log", S3_PUT, 1, 800, 1000000);
	c->stages[3].kind[S3_PUT].bytes_out = 200; /* a PUT's bytes count as moved */
	c->queries_ok = 4;
	c->latency_sum_s = 0.02;
	c->has_text_cache = true;
	c->text_cache.hits = 6;
	c->text_cache.misses = 6;

	assert_non_null(j = qmap_json(m, c));
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "cached");
	x = json_object_get(j, "store");
	assert_string_equal(json_string_value(json_object_get(x, "bucket")), "rag");
	assert_string_equal(json_string_value(json_object_get(x, "source")), "source/");
	assert_string_equal(json_string_value(json_object_get(x, "index")), "indexes/main/");
	assert_true(json_is_false(json_object_get(json_object_get(j, "touches"), "lists")));
	assert_true(json_is_true(json_object_get(json_object_get(j, "touches"), "text")));
	assert_int_equal(real_at(j, "resident_bytes", "total"), 1024);
	/* only query.text is on the query path: 6 requests over 4 queries */
	assert_int_equal(real_at(j, "query_path", "requests"), 6);
	assert_int_equal(real_at(j, "query_path", "bytes"), 3000);
	assert_true(real_at(j, "query_path", "requests_per_query") == 1.5);
	assert_true(real_at(j, "query_path", "bytes_per_query") == 750);
	assert_true(real_at(j, "query_path", "storage_ms_per_query") == 3);
	assert_true(real_at(j, "query_path", "latency_ms_per_query") == 5);
	x = json_object_get(json_object_get(j, "caches"), "text");
	assert_true(json_real_value(json_object_get(x, "hit_rate")) == 0.5);
	assert_int_equal(json_array_size(json_object_get(j, "stages")), 4);
	x = json_array_get(json_object_get(j, "stages"), 3);
	assert_string_equal(json_string_value(json_object_get(x, "stage")), "query.log");
	assert_int_equal(json_integer_value(json_object_get(x, "bytes")), 1000);
	assert_true(json_is_false(json_object_get(x, "per_query")));
	/* the manifest was never read: the map says so instead of failing */
	assert_non_null(json_object_get(json_object_get(j, "ingestion"), "error"));
	json_decref(j);

	/* before the first query: per-query figures are null, not 0 or NaN */
	c->queries_ok = 0;
	c->text_cache.hits = c->text_cache.misses = 0;
	assert_non_null(j = qmap_json(m, c));
	assert_true(json_is_null(json_object_get(json_object_get(j, "query_path"), "requests_per_query")));
	x = json_object_get(json_object_get(j, "caches"), "text");
	assert_true(json_is_null(json_object_get(x, "hit_rate")));
	json_decref(j);

	qmap_free(m);
	qmap_free(NULL);
	rag_config_release(&cfg);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_matches_source),
		cmocka_unit_test(test_page_is_self_contained),
		cmocka_unit_test(test_stage_per_query),
		cmocka_unit_test(test_mode_touches),
		cmocka_unit_test(test_map_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
