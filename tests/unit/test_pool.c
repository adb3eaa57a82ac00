/*
 * rag_pool: every task runs once, errors do not stop the loop, loops nest
 * and run concurrently without deadlock, and workers persist: the pool
 * does not grow with the number of calls (rag_pool.h invariants 1-3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rag_pool.h"

#define N 20000

typedef struct counts {
	atomic_int runs[N];
	size_t fail_every;   /* 0: none */
} counts;

static rag_rc count_task(void *ctx, size_t i)
{
	counts *c = ctx;

	atomic_fetch_add(&c->runs[i], 1);
	return c->fail_every && i % c->fail_every == c->fail_every - 1 ? RAG_EIO : RAG_OK;
}

static void test_every_task_once(void **state)
{
	counts *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(c);
	assert_int_equal(rag_parallel_for(N, 8, count_task, c), RAG_OK);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(atomic_load(&c->runs[i]), 1);
	assert_int_equal(rag_parallel_for(0, 8, count_task, c), RAG_OK);
	free(c);
}

static void test_errors_do_not_stop(void **state)
{
	counts *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(c);
	c->fail_every = 1000;
	assert_int_equal(rag_parallel_for(N, 4, count_task, c), RAG_EIO);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(atomic_load(&c->runs[i]), 1);
	free(c);
}

static rag_rc inner_task(void *ctx, size_t i)
{
	(void)i;
	atomic_fetch_add((atomic_int *)ctx, 1);
	return RAG_OK;
}

static rag_rc outer_task(void *ctx, size_t i)
{
	(void)i;
	return rag_parallel_for(100, 4, inner_task, ctx);
}

static void test_nested(void **state)
{
	atomic_int total;

	(void)state;
	atomic_init(&total, 0);
	assert_int_equal(rag_parallel_for(64, 8, outer_task, &total), RAG_OK);
	assert_int_equal(atomic_load(&total), 6400);
}

static void *caller(void *arg)
{
	for (int r = 0; r < 50; r++)
		if (rag_parallel_for(200, 4, inner_task, arg))
			return arg;
	return NULL;
}

static void test_concurrent_callers(void **state)
{
	pthread_t t[6];
	atomic_int total;

	(void)state;
	atomic_init(&total, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, caller, &total), 0);
	for (int i = 0; i < 6; i++) {
		void *rc;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
	assert_int_equal(atomic_load(&total), 6 * 50 * 200);
}

static void test_workers_persist(void **state)
{
	atomic_int total;
	int after_first;

	(void)state;
	rag_pool_stop();
	assert_int_equal(rag_pool_threads(), 0);
	atomic_init(&total, 0);
	/* one thread asked for: the caller's alone, no worker */
	assert_int_equal(rag_parallel_for(100, 1, inner_task, &total), RAG_OK);
	assert_int_equal(rag_pool_threads(), 0);
	assert_int_equal(rag_parallel_for(1000, 8, inner_task, &total), RAG_OK);
	after_first = rag_pool_threads();
	assert_true(after_first >= 1 && after_first <= 7);
	/* a thousand more loops, one after another, add no worker */
	for (int r = 0; r < 1000; r++)
		assert_int_equal(rag_parallel_for(50, 8, inner_task, &total), RAG_OK);
	assert_int_equal(rag_pool_threads(), after_first);
	assert_int_equal(atomic_load(&total), 100 + 1000 + 1000 * 50);
	rag_pool_stop();
	assert_int_equal(rag_pool_threads(), 0);
	/* and the pool starts again */
	assert_int_equal(rag_parallel_for(100, 3, inner_task, &total), RAG_OK);
	assert_true(rag_pool_threads() >= 1);
	rag_pool_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_task_once),
		cmocka_unit_test(test_errors_do_not_stop),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_concurrent_callers),
		cmocka_unit_test(test_workers_persist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
