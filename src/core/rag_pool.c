/*
 * rag_pool — see rag_pool.h.
 *
 * Open loops sit in one list; an idle worker joins the oldest loop that
 * still wants helpers and has tasks left, runs tasks until none are left,
 * and goes back to waiting. The caller runs its own loop too, then closes
 * it (no one joins any more) and waits for the helpers inside to leave, so
 * the loop, which lives on the caller's stack, outlives every use of it.
 */
#include "rag_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

typedef struct pool_loop {
	size_t n;
	atomic_size_t next;       /* the next task to claim */
	rag_task_fn fn;
	void *ctx;
	atomic_int first_rc;
	int want;                 /* helpers wanted (under the pool's lock) */
	int joined;               /* helpers that joined it (under the lock) */
	int inside;               /* helpers still running it (under the lock) */
	pthread_cond_t left;      /* inside dropped to 0 */
	struct pool_loop *next_open;
} pool_loop;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* a loop was opened, or stop */
	pool_loop *open;          /* open loops, oldest first */
	pthread_t tid[RAG_POOL_MAX];
	int nthreads;
	int busy;                 /* workers inside a loop; the others are free,
				   * running or about to wait */
	bool stopping;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER};

static void run_tasks(pool_loop *l)
{
	for (;;) {
		size_t i = atomic_fetch_add(&l->next, 1);
		int expected = RAG_OK;
		rag_rc rc;

		if (i >= l->n)
			return;
		if ((rc = l->fn(l->ctx, i)))
			atomic_compare_exchange_strong(&l->first_rc, &expected, (int)rc);
	}
}

/* The oldest open loop that wants a helper and has tasks left (lock held). */
static pool_loop *wanting(void)
{
	for (pool_loop *l = pool.open; l; l = l->next_open)
		if (l->joined < l->want && atomic_load(&l->next) < l->n)
			return l;
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.lock);
	while (!pool.stopping) {
		pool_loop *l = wanting();
		if (!l) {
			pthread_cond_wait(&pool.work, &pool.lock);
			continue;
		}
		l->joined++;
		l->inside++;
		pool.busy++;
		pthread_mutex_unlock(&pool.lock);
		run_tasks(l);
		pthread_mutex_lock(&pool.lock);
		pool.busy--;
		if (--l->inside == 0)
			pthread_cond_signal(&l->left);   /* l is not touched after this */
	}
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

rag_rc rag_parallel_for(size_t n, int threads, rag_task_fn fn, void *ctx)
{
	pool_loop l = {.n = n, .fn = fn, .ctx = ctx};
	pool_loop **tail;
	int add;

	atomic_init(&l.next, 0);
	atomic_init(&l.first_rc, RAG_OK);
	if (threads < 2 || n < 2) {
		run_tasks(&l);
		return (rag_rc)atomic_load(&l.first_rc);
	}
	l.want = (size_t)threads - 1 < n - 1 ? threads - 1 : (int)(n - 1);
	pthread_cond_init(&l.left, NULL);
	pthread_mutex_lock(&pool.lock);
	for (tail = &pool.open; *tail; tail = &(*tail)->next_open)
		;
	*tail = &l;
	/* invariant 1: more workers only when too few are free (a worker just
	 * created, or waking, counts as free: it is not inside a loop) */
	for (add = l.want - (pool.nthreads - pool.busy); add > 0 && pool.nthreads < RAG_POOL_MAX; add--) {
		if (pthread_create(&pool.tid[pool.nthreads], NULL, worker, NULL) != 0)
			break; /* the loop runs with the helpers it has (invariant 2) */
		pool.nthreads++;
	}
	pthread_cond_broadcast(&pool.work);
	pthread_mutex_unlock(&pool.lock);

	run_tasks(&l);

	pthread_mutex_lock(&pool.lock);
	for (tail = &pool.open; *tail != &l; tail = &(*tail)->next_open)
		;
	*tail = l.next_open;   /* closed: no helper joins any more */
	while (l.inside > 0)
		pthread_cond_wait(&l.left, &pool.lock);
	pthread_mutex_unlock(&pool.lock);
	pthread_cond_destroy(&l.left);
	return (rag_rc)atomic_load(&l.first_rc);
}

int rag_pool_threads(void)
{
	int n;

	pthread_mutex_lock(&pool.lock);
	n = pool.nthreads;
	pthread_mutex_unlock(&pool.lock);
	return n;
}

void rag_pool_stop(void)
{
	int n;

	pthread_mutex_lock(&pool.lock);
	pool.stopping = true;
	pthread_cond_broadcast(&pool.work);
	n = pool.nthreads;
	pthread_mutex_unlock(&pool.lock);
	for (int i = 0; i < n; i++)
		pthread_join(pool.tid[i], NULL);
	pthread_mutex_lock(&pool.lock);
	pool.nthreads = 0;
	pool.stopping = false;
	pthread_mutex_unlock(&pool.lock);
}

int rag_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}
