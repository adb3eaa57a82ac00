/* Unit tests for the live storage map: the /v1/map document (map.c) and the
 * page compiled into the binary (page.c). The server end to end is in
 * tests/integration/page_browser.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "page.h"
#include "qmode.h"
#include "rag_stage.h"
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

static void test_stage_kinds(void **state)
{
	static const struct {
		const char *stage;
		rag_stage_kind kind;
	} cases[] = {
		{"query.text", RAG_STAGE_QUERY},     {"query.lists", RAG_STAGE_QUERY},
		{"query.catalog", RAG_STAGE_QUERY},  {"query.load", RAG_STAGE_SERVE},
		{"query.reload", RAG_STAGE_SERVE},   {"query.log", RAG_STAGE_SERVE},
		{"query.map", RAG_STAGE_SERVE},      {"ingest.fetch", RAG_STAGE_INGEST},
		{"verify", RAG_STAGE_TOOL},          {"query", RAG_STAGE_UNLISTED},
		{"query.new", RAG_STAGE_UNLISTED},   {"", RAG_STAGE_UNLISTED},
	};
	size_t n;
	const rag_stage *list = rag_stage_list(&n);

	(void)state;
	for (size_t i = 0; i < RAG_ARRAY_LEN(cases); i++)
		assert_int_equal(rag_stage_kind_of(cases[i].stage), cases[i].kind);
	/* invariant 1 of rag_stage.h: unique labels that fit the counters */
	for (size_t i = 0; i < n; i++) {
		assert_true(strlen(list[i].label) <= RAG_STAGE_LABEL_MAX);
		assert_ptr_equal(rag_stage_find(list[i].label), &list[i]);
	}
}

static void test_mode_table(void **state)
{
	static const struct {
		qmode mode;
		bool lists, text, text_cache;
	} cases[] = {
		{QMODE_MEMORY, false, false, false},
		{QMODE_POINTER, false, true, false},
		{QMODE_CACHED, false, true, true},
		{QMODE_OBJECT, true, true, false},
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < RAG_ARRAY_LEN(cases); i++) {
		const qmode_row *r = qmode_info(cases[i].mode);
		qmode back;
		assert_non_null(r);
		assert_int_equal(r->dense_from_lists, cases[i].lists);
		assert_int_equal(r->reads_records, cases[i].text);
		assert_int_equal(r->text_cache, cases[i].text_cache);
		/* qmode.h invariants 2 and 3 */
		assert_true(r->records_in_ram != r->reads_records);
		if (r->dense_from_lists)
			assert_int_equal(r->loads, 1u << MF_LISTS_IDX);
		assert_true(qmode_parse(r->name, &back));
		assert_int_equal(back, cases[i].mode);
	}
	assert_null(qmode_info(QMODE_COUNT));
	assert_string_equal(qmode_list(buf, sizeof(buf)), "memory, pointer, cached, object");
}

static void test_mode_caches(void **state)
{
	rag_config cfg;
	qcaches c;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.query.cache_mb = 1;
	cfg.query.list_cache_mb = 1;
	for (int m = 0; m < QMODE_COUNT; m++) {
		const qmode_row *r = qmode_info((qmode)m);
		assert_int_equal(qcaches_open(&cfg, (qmode)m, &c, NULL), RAG_OK);
		assert_int_equal(c.text != NULL, r->text_cache);
		assert_int_equal(c.lists != NULL, r->list_cache);
		qcaches_close(&c);
		assert_null(c.text);
	}
	cfg.query.list_cache_mb = 0; /* the list cache is optional */
	assert_int_equal(qcaches_open(&cfg, QMODE_OBJECT, &c, NULL), RAG_OK);
	assert_null(c.lists);
	qcaches_close(&c);
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
	/* a stage missing from rag_stage.c's list: shown, never per query */
	add_stage(c, "query.new", S3_GET, 9, 9000, 9000000);
	c->queries_ok = 4;
	c->latency_sum_s = 0.02;
	c->cold_n = 3;
	c->cold_sum_s = 0.018;
	c->warm_n = 1;
	c->warm_sum_s = 0.002;
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
	assert_int_equal(json_array_size(json_object_get(j, "stages")), 5);
	x = json_array_get(json_object_get(j, "stages"), 3);
	assert_string_equal(json_string_value(json_object_get(x, "stage")), "query.log");
	assert_int_equal(json_integer_value(json_object_get(x, "bytes")), 1000);
	assert_true(json_is_false(json_object_get(x, "per_query")));
	assert_string_equal(json_string_value(json_object_get(x, "kind")), "serve");
	x = json_array_get(json_object_get(j, "stages"), 4);
	assert_string_equal(json_string_value(json_object_get(x, "stage")), "query.new");
	assert_true(json_is_false(json_object_get(x, "per_query")));
	assert_string_equal(json_string_value(json_object_get(x, "kind")), "unlisted");
	/* cold and warm answers, each with its mean latency */
	x = json_object_get(j, "query_path");
	assert_int_equal(real_at(x, "cold", "queries"), 3);
	assert_true(fabs(real_at(x, "cold", "latency_ms") - 6) < 1e-9);
	assert_true(fabs(real_at(x, "warm", "latency_ms") - 2) < 1e-9);
	/* every mode of the table, for the page's switch */
	x = json_object_get(j, "modes");
	assert_int_equal(json_array_size(x), QMODE_COUNT);
	assert_string_equal(json_string_value(json_object_get(json_array_get(x, 3), "name")), "object");
	assert_true(json_is_true(json_object_get(json_array_get(x, 3), "lists")));
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
		cmocka_unit_test(test_stage_kinds),
		cmocka_unit_test(test_mode_table),
		cmocka_unit_test(test_mode_caches),
		cmocka_unit_test(test_map_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
