#include "rag_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct pool_run {
	size_t n;
	atomic_size_t next;
	rag_task_fn fn;
	void *ctx;
	atomic_int first_rc;
} pool_run;

static void *pool_worker(void *arg)
{
	pool_run *p = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		int expected = RAG_OK;
		rag_rc rc;

		if (i >= p->n)
			break;
		rc = p->fn(p->ctx, i);
		if (rc)
			atomic_compare_exchange_strong(&p->first_rc, &expected, (int)rc);
	}
	return NULL;
}

rag_rc rag_parallel_for(size_t n, int threads, rag_task_fn fn, void *ctx)
{
	pool_run p = {.n = n, .fn = fn, .ctx = ctx};
	pthread_t tids[256];
	size_t nthreads, started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.first_rc, RAG_OK);
	if (threads < 1)
		threads = 1;
	nthreads = (size_t)threads < n ? (size_t)threads : n;
	if (nthreads > sizeof(tids) / sizeof(tids[0]))
		nthreads = sizeof(tids) / sizeof(tids[0]);
	/* the calling thread works too; the others join it */
	for (size_t i = 1; i < nthreads; i++)
		if (pthread_create(&tids[started], NULL, pool_worker, &p) == 0)
			started++;
	pool_worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return (rag_rc)atomic_load(&p.first_rc);
}

int rag_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}
