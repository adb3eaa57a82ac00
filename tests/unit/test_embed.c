/*
 * test_embed — the built-in model: fitting, determinism, embeddings,
 * persistence and rejection of corrupt weights.
 *
 * The corpus is synthetic: documents drawn from a few topics, each with its
 * own words, plus shared filler, generated from a fixed seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>

#include "lsa.h"
#include "rag_buf.h"
#include "rag_util.h"

#define NTOPICS 4
#define NDOCS 120
#define WEIGHTS_MAX (64u << 20)

static const char *const topic_words[NTOPICS][8] = {
	{"wing", "lift", "airfoil", "drag", "flutter", "aileron", "stall", "vortex"},
	{"heart", "blood", "artery", "cardiac", "pulse", "valve", "vein", "aorta"},
	{"stock", "market", "equity", "bond", "dividend", "yield", "broker", "trade"},
	{"protein", "enzyme", "gene", "cell", "membrane", "ribosome", "kinase", "dna"},
};
static const char *const filler[] = {"study", "result", "method", "analysis", "data",
				     "report", "paper", "work"};

typedef struct corpus {
	char *text[NDOCS];
	size_t len[NDOCS];
	int topic[NDOCS];
} corpus;

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void make_corpus(corpus *c)
{
	uint64_t s = 12345;

	for (int d = 0; d < NDOCS; d++) {
		rag_buf b;
		int t = d % NTOPICS;
		rag_buf_init(&b, 1 << 16);
		for (int w = 0; w < 60; w++) {
			const char *word = rng(&s) % 3 ? topic_words[t][rng(&s) % 8]
						       : filler[rng(&s) % 8];
			assert_int_equal(rag_buf_printf(&b, "%s%s", w ? " " : "", word), RAG_OK);
		}
		c->topic[d] = t;
		c->text[d] = rag_buf_detach(&b, &c->len[d]);
	}
}

static void free_corpus(corpus *c)
{
	for (int d = 0; d < NDOCS; d++)
		free(c->text[d]);
}

static lsa_model *fit(const corpus *c, int dims)
{
	embed_fit_opts o = EMBED_FIT_OPTS_DEFAULT;
	lsa_model *m = NULL;
	rag_error err = {0};

	o.dims = dims;
	o.fitted_on = "synthetic \"topics\"";
	if (lsa_fit((const char *const *)c->text, c->len, NDOCS, &o, &m, &err))
		fail_msg("fit: %s", err.msg);
	return m;
}

static void save(const lsa_model *m, rag_buf *w)
{
	rag_error err = {0};

	rag_buf_init(w, WEIGHTS_MAX);
	assert_int_equal(lsa_save(m, w, NULL, &err), RAG_OK);
}

static float *embed(const lsa_model *m, const char *const *t, size_t n)
{
	size_t *l = malloc(n * sizeof(*l));
	float *out = malloc(n * (size_t)lsa_dims(m) * sizeof(*out));
	rag_error err = {0};

	assert_true(l && out);
	for (size_t i = 0; i < n; i++)
		l[i] = strlen(t[i]);
	assert_int_equal(lsa_embed(m, t, l, n, out, NULL, &err), RAG_OK);
	free(l);
	return out;
}

static float dot(const float *a, const float *b, int n)
{
	float s = 0;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static void test_fit_shape_and_dims_shrink(void **state)
{
	corpus c;
	lsa_model *m;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 256);
	/* 40 distinct words: the model cannot have more dimensions than that */
	assert_true(lsa_dims(m) >= 1 && lsa_dims(m) <= 40);
	assert_int_equal(lsa_vocab_size(m), 40);
	assert_int_equal(lsa_docs(m), NDOCS);
	assert_string_equal(lsa_name(m), "ragmap-lsa");
	assert_int_equal(strlen(lsa_version(m)), 16);
	lsa_free(m);
	m = fit(&c, 8);
	assert_int_equal(lsa_dims(m), 8);
	lsa_free(m);
	free_corpus(&c);
}

static void test_determinism(void **state)
{
	corpus c;
	lsa_model *a, *b;
	rag_buf wa, wb;

	(void)state;
	make_corpus(&c);
	a = fit(&c, 16);
	b = fit(&c, 16);
	assert_string_equal(lsa_version(a), lsa_version(b));
	save(a, &wa);
	save(b, &wb);
	assert_int_equal(wa.len, wb.len);
	assert_memory_equal(wa.data, wb.data, wa.len);
	rag_buf_release(&wa);
	rag_buf_release(&wb);
	lsa_free(a);
	lsa_free(b);
	free_corpus(&c);
}

static void test_embeddings_normalised_and_topical(void **state)
{
	corpus c;
	lsa_model *m;
	const char *q[] = {
		"lift and drag of a wing",           /* topic 0 */
		"cardiac valve and blood pulse",     /* topic 1 */
		"zyzzyva quux",                      /* all unknown */
		"",                                  /* empty */
		"the of and",                        /* stopwords only */
		"a new aileron vortex stall paper", /* a later document */
	};
	int want[] = {0, 1, -1, -1, -1, 0};
	float *dv, *qv;
	int dims;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	dims = lsa_dims(m);
	dv = embed(m, (const char *const *)c.text, NDOCS);
	qv = embed(m, q, RAG_ARRAY_LEN(q));
	for (int d = 0; d < NDOCS; d++)
		assert_float_equal(dot(dv + d * dims, dv + d * dims, dims), 1.0f, 1e-4);
	for (size_t i = 0; i < RAG_ARRAY_LEN(q); i++) {
		const float *v = qv + i * (size_t)dims;
		if (want[i] < 0) {
			for (int k = 0; k < dims; k++)
				assert_true(v[k] == 0.0f);
			continue;
		}
		assert_float_equal(dot(v, v, dims), 1.0f, 1e-4);
		/* the best document is of the query's topic */
		int best = 0;
		for (int d = 1; d < NDOCS; d++)
			if (dot(v, dv + d * dims, dims) > dot(v, dv + best * dims, dims))
				best = d;
		assert_int_equal(c.topic[best], want[i]);
	}
	free(qv);
	free(dv);
	lsa_free(m);
	free_corpus(&c);
}

static void test_batch_equals_single(void **state)
{
	corpus c;
	lsa_model *m;
	float *all, *one;
	int dims;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	dims = lsa_dims(m);
	all = embed(m, (const char *const *)c.text, 5);
	for (int i = 0; i < 5; i++) {
		one = embed(m, (const char *const *)&c.text[i], 1);
		assert_memory_equal(one, all + i * dims, (size_t)dims * sizeof(float));
		free(one);
	}
	free(all);
	lsa_free(m);
	free_corpus(&c);
}

static void test_save_load_round_trip(void **state)
{
	corpus c;
	lsa_model *m, *l = NULL;
	rag_buf w, card, w2;
	rag_error err = {0};
	float *a, *b;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	rag_buf_init(&w, WEIGHTS_MAX);
	rag_buf_init(&card, 1 << 16);
	assert_int_equal(lsa_save(m, &w, &card, &err), RAG_OK);
	assert_int_equal(lsa_load(w.data, w.len, &l, &err), RAG_OK);
	assert_string_equal(lsa_version(l), lsa_version(m));
	assert_string_equal(lsa_name(l), "ragmap-lsa");
	assert_string_equal(lsa_fitted_on(l), "synthetic \"topics\"");
	assert_int_equal(lsa_dims(l), 8);
	assert_int_equal(lsa_docs(l), NDOCS);
	a = embed(m, (const char *const *)c.text, NDOCS);
	b = embed(l, (const char *const *)c.text, NDOCS);
	assert_memory_equal(a, b, (size_t)NDOCS * 8 * sizeof(float));
	save(l, &w2); /* saving the loaded model gives the same bytes */
	assert_int_equal(w2.len, w.len);
	assert_memory_equal(w2.data, w.data, w.len);

	/* the card: the fields, escaped */
	assert_non_null(strstr(card.data, "\"name\": \"ragmap-lsa\""));
	assert_non_null(strstr(card.data, lsa_version(m)));
	assert_non_null(strstr(card.data, "\"dims\": 8"));
	assert_non_null(strstr(card.data, "\"vocab_size\": 40"));
	assert_non_null(strstr(card.data, "\"docs\": 120"));
	assert_non_null(strstr(card.data, "\"fitted_on\": \"synthetic \\\"topics\\\"\""));
	assert_non_null(strstr(card.data, "\"created_at\": \"20"));
	assert_non_null(strstr(card.data, "\"tokenizer\": "));

	free(a);
	free(b);
	rag_buf_release(&w2);
	rag_buf_release(&card);
	rag_buf_release(&w);
	lsa_free(l);
	lsa_free(m);
	free_corpus(&c);
}

static void expect_corrupt(const char *data, size_t len, const char *msg_part)
{
	lsa_model *m = (lsa_model *)0x1;
	rag_error err = {0};

	assert_int_equal(lsa_load(data, len, &m, &err), RAG_ECORRUPT);
	assert_null(m);
	assert_int_equal(err.rc, RAG_ECORRUPT);
	if (!strstr(err.msg, msg_part))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
}

static void test_corrupt_weights_rejected(void **state)
{
	corpus c;
	lsa_model *m;
	rag_buf w;
	char *copy;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	save(m, &w);
	copy = malloc(w.len);
	assert_non_null(copy);

	/* every truncation fails cleanly */
	for (size_t n = 0; n < w.len; n += n < 200 ? 1 : 97)
		expect_corrupt(w.data, n, "");
	expect_corrupt(w.data, w.len - 1, "truncated");
	expect_corrupt(w.data, 10, "truncated");
	/* a flipped byte anywhere is caught */
	for (size_t i = 0; i < w.len; i += i < 300 ? 1 : 101) {
		memcpy(copy, w.data, w.len);
		copy[i] ^= 0x20;
		expect_corrupt(copy, w.len, "");
	}
	memcpy(copy, w.data, w.len);
	copy[w.len - 100] ^= 1;
	expect_corrupt(copy, w.len, "checksum");
	memcpy(copy, w.data, w.len);
	copy[0] = 'X';
	expect_corrupt(copy, w.len, "bad magic");
	memcpy(copy, w.data, w.len);
	copy[8] = 9; /* format version */
	expect_corrupt(copy, w.len, "format version");
	/* trailing garbage */
	assert_int_equal(rag_buf_append(&w, "xx", 2), RAG_OK);
	expect_corrupt(w.data, w.len, "trailing");

	free(copy);
	rag_buf_release(&w);
	lsa_free(m);
	free_corpus(&c);
}

static void test_fit_errors(void **state)
{
	const char *t[] = {"alpha beta", "gamma delta"};
	size_t l[] = {10, 11};
	embed_fit_opts o = EMBED_FIT_OPTS_DEFAULT;
	lsa_model *m = NULL;
	rag_error err = {0};

	(void)state;
	/* no term in two documents */
	assert_int_equal(lsa_fit(t, l, 2, &o, &m, &err), RAG_EINVAL);
	assert_null(m);
	assert_non_null(strstr(err.msg, "no term"));
	o.dims = 0;
	assert_int_equal(lsa_fit(t, l, 2, &o, &m, &err), RAG_EINVAL);
	o = EMBED_FIT_OPTS_DEFAULT;
	o.name = "";
	assert_int_equal(lsa_fit(t, l, 2, &o, &m, &err), RAG_EINVAL);
	assert_int_equal(lsa_fit(t, l, 0, NULL, &m, &err), RAG_EINVAL);
	/* min_df 1 on two one-term docs: a model of one or two dimensions */
	o = EMBED_FIT_OPTS_DEFAULT;
	o.min_df = 1;
	assert_int_equal(lsa_fit(t, l, 2, &o, &m, &err), RAG_OK);
	assert_true(lsa_dims(m) >= 1 && lsa_dims(m) <= 2);
	lsa_free(m);
	lsa_free(NULL);
	/* the same words evenly in every document carry no information */
	const char *same[] = {"alpha beta", "alpha beta"};
	size_t same_l[] = {10, 10};
	assert_int_equal(lsa_fit(same, same_l, 2, NULL, &m, &err), RAG_EINVAL);
	assert_non_null(strstr(err.msg, "spread evenly"));
	assert_null(m);
}

static void test_save_cap(void **state)
{
	corpus c;
	lsa_model *m;
	rag_buf w;
	rag_error err = {0};

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	rag_buf_init(&w, 100);
	assert_int_equal(lsa_save(m, &w, NULL, &err), RAG_ETOOBIG);
	assert_non_null(strstr(err.msg, "ragmap-lsa"));
	rag_buf_release(&w);
	lsa_free(m);
	free_corpus(&c);
}

typedef struct thread_job {
	const lsa_model *m;
	const corpus *c;
	float *out;
} thread_job;

static void *embed_thread(void *p)
{
	thread_job *j = p;
	rag_error err = {0};

	for (int rep = 0; rep < 5; rep++)
		if (lsa_embed(j->m, (const char *const *)j->c->text, j->c->len, NDOCS,
				j->out, NULL, &err))
			return p;
	return NULL;
}

static void test_concurrent_embedding(void **state)
{
	corpus c;
	lsa_model *m;
	pthread_t th[4];
	thread_job jobs[4];
	float *want;

	(void)state;
	make_corpus(&c);
	m = fit(&c, 8);
	want = embed(m, (const char *const *)c.text, NDOCS);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (thread_job){m, &c, malloc((size_t)NDOCS * 8 * sizeof(float))};
		assert_non_null(jobs[i].out);
		assert_int_equal(pthread_create(&th[i], NULL, embed_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
		assert_memory_equal(jobs[i].out, want, (size_t)NDOCS * 8 * sizeof(float));
		free(jobs[i].out);
	}
	free(want);
	lsa_free(m);
	free_corpus(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_shape_and_dims_shrink),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_embeddings_normalised_and_topical),
		cmocka_unit_test(test_batch_equals_single),
		cmocka_unit_test(test_save_load_round_trip),
		cmocka_unit_test(test_corrupt_weights_rejected),
		cmocka_unit_test(test_fit_errors),
		cmocka_unit_test(test_save_cap),
		cmocka_unit_test(test_concurrent_embedding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
