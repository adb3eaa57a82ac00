/*
 * test_metrics — qrels/queries parsing and the retrieval measures, on
 * examples computed by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static const char qrels_text[] =
	"# a comment\n"
	"q1 0 d1 3\n"
	"q1 0 d2 1\n"
	"q1\t0\td3 0\r\n"
	"q1 0 d4 2\n"
	"\n"
	"q2 0 d9 0\n"
	"q3 0 d5 1\n"
	"q3 0 d5 2\n"; /* the later line wins */

static void load_qrels(eval_qrels *q)
{
	rag_error err = {0};

	assert_int_equal(eval_qrels_parse(qrels_text, sizeof(qrels_text) - 1, "test", q, &err),
			 RAG_OK);
}

static void test_qrels_parse(void **state)
{
	eval_qrels q;
	const eval_qrel *j;

	(void)state;
	load_qrels(&q);
	assert_int_equal(q.n, 3);
	j = eval_qrels_find(&q, "q1");
	assert_non_null(j);
	assert_int_equal(j->njudged, 4);
	assert_int_equal(j->nrel, 3);
	assert_int_equal(eval_qrel_gain(j, "d1"), 3);
	assert_int_equal(eval_qrel_gain(j, "d3"), 0);
	assert_int_equal(eval_qrel_gain(j, "nope"), 0);
	j = eval_qrels_find(&q, "q2");
	assert_non_null(j);
	assert_false(eval_qrel_scorable(j));
	j = eval_qrels_find(&q, "q3");
	assert_int_equal(j->njudged, 1);
	assert_int_equal(eval_qrel_gain(j, "d5"), 2);
	assert_null(eval_qrels_find(&q, "q9"));
	eval_qrels_release(&q);
}

static void test_qrels_errors(void **state)
{
	eval_qrels q;
	rag_error err = {0};
	const char bad1[] = "q1 0 d1\n";
	const char bad2[] = "q1 0 d1 3\nq1 0 d2 x\n";

	(void)state;
	assert_int_equal(eval_qrels_parse(bad1, sizeof(bad1) - 1, "f", &q, &err), RAG_EPARSE);
	assert_string_equal(err.msg, "f:1: expected \"qid iter docid gain\"");
	assert_int_equal(eval_qrels_parse(bad2, sizeof(bad2) - 1, "f", &q, &err), RAG_EPARSE);
	assert_string_equal(err.msg, "f:2: bad gain \"x\"");
	assert_int_equal(eval_qrels_load("/nonexistent/qrels", &q, &err), RAG_ENOTFOUND);
	assert_int_equal(eval_qrels_parse("", 0, "empty", &q, &err), RAG_OK);
	assert_int_equal(q.n, 0);
	eval_qrels_release(&q);
}

static void test_queries_parse(void **state)
{
	const char text[] = "1\twhat is lift\r\n\n2\tdrag, and\ttabs\n";
	const char bad[] = "1 no tab\n";
	eval_queries q;
	rag_error err = {0};

	(void)state;
	assert_int_equal(eval_queries_parse(text, sizeof(text) - 1, "q", &q, &err), RAG_OK);
	assert_int_equal(q.n, 2);
	assert_string_equal(q.q[0].id, "1");
	assert_string_equal(q.q[0].text, "what is lift");
	assert_string_equal(q.q[1].id, "2");
	assert_string_equal(q.q[1].text, "drag, and\ttabs");
	eval_queries_release(&q);
	assert_int_equal(eval_queries_parse(bad, sizeof(bad) - 1, "q", &q, &err), RAG_EPARSE);
	assert_string_equal(err.msg, "q:1: expected \"id<TAB>text\"");
}

/*
 * q1: d1 gain 3, d2 gain 1, d4 gain 2 (R = 3). Ranking, duplicates dropped:
 * d3 (judged 0), d1, [d1 again], dx (unjudged), d4, d2 -> ranks 1..5 with
 * gains 0, 3, 0, 2, 1.
 */
static const char *const ranking[] = {"d3", "d1", "d1", "dx", "d4", "d2"};

static void test_measures(void **state)
{
	eval_qrels q;
	const eval_qrel *j;
	const size_t n = sizeof(ranking) / sizeof(ranking[0]);

	(void)state;
	load_qrels(&q);
	j = eval_qrels_find(&q, "q1");
	/* DCG@3 = 3/log2(3); IDCG@3 = 3 + 2/log2(3) + 1/2 */
	assert_float_equal(eval_ndcg(j, ranking, n, 3), 0.3974895222916884, 1e-9);
	/* DCG@10 adds 2/log2(5) + 1/log2(6) */
	assert_float_equal(eval_ndcg(j, ranking, n, 10), 0.6596152573136869, 1e-9);
	/* relevant at ranks 2, 4, 5: (1/2 + 2/4 + 3/5) / 3 */
	assert_float_equal(eval_ap(j, ranking, n, 10), 1.6 / 3, 1e-12);
	assert_float_equal(eval_ap(j, ranking, n, 3), 0.5 / 3, 1e-12);
	assert_float_equal(eval_recall(j, ranking, n, 3), 1.0 / 3, 1e-12);
	assert_float_equal(eval_recall(j, ranking, n, 10), 1.0, 1e-12);
	assert_float_equal(eval_rr(j, ranking, n, 10), 0.5, 1e-12);
	assert_float_equal(eval_rr(j, ranking, n, 1), 0.0, 1e-12);
	/* a perfect ranking */
	const char *const ideal[] = {"d1", "d4", "d2"};
	assert_float_equal(eval_ndcg(j, ideal, 3, 10), 1.0, 1e-12);
	assert_float_equal(eval_ap(j, ideal, 3, 100), 1.0, 1e-12);
	/* an empty ranking and a query without relevant documents */
	assert_float_equal(eval_ndcg(j, NULL, 0, 10), 0.0, 1e-12);
	assert_float_equal(eval_ndcg(eval_qrels_find(&q, "q2"), ranking, n, 10), 0.0, 1e-12);
	assert_float_equal(eval_ap(NULL, ranking, n, 10), 0.0, 1e-12);
	eval_qrels_release(&q);
}

static void test_run_skips_unjudged(void **state)
{
	eval_qrels q;
	eval_run run = {0}, mean;
	const size_t n = sizeof(ranking) / sizeof(ranking[0]);

	(void)state;
	load_qrels(&q);
	assert_true(eval_run_add(&run, eval_qrels_find(&q, "q1"), ranking, n));
	assert_false(eval_run_add(&run, eval_qrels_find(&q, "q2"), ranking, n));
	assert_false(eval_run_add(&run, eval_qrels_find(&q, "q9"), ranking, n));
	const char *const r3[] = {"d5"};
	assert_true(eval_run_add(&run, eval_qrels_find(&q, "q3"), r3, 1));
	eval_run_means(&run, &mean);
	assert_int_equal(mean.scored, 2);
	assert_int_equal(mean.skipped, 2);
	assert_float_equal(mean.ndcg10, (0.6596152573136869 + 1.0) / 2, 1e-9);
	assert_float_equal(mean.mrr10, (0.5 + 1.0) / 2, 1e-12);
	assert_float_equal(mean.recall100, 1.0, 1e-12);
	eval_qrels_release(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qrels_parse),
		cmocka_unit_test(test_qrels_errors),
		cmocka_unit_test(test_queries_parse),
		cmocka_unit_test(test_measures),
		cmocka_unit_test(test_run_skips_unjudged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
