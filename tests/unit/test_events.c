/*
 * test_events — the daemon's scope (prefixes, shards) and its queue of S3
 * event keys: parsing AWS/MinIO/RGW notification bodies, deduplication,
 * the burst window, and the errors that name the record and field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"
#include "rag_util.h"
#include "rag_scope.h"

static void test_scope_prefixes(void **state)
{
	rag_scope s;
	rag_error err = {0};
	char buf[256];

	(void)state;
	/* nested and duplicate prefixes collapse (invariant 1) */
	assert_int_equal(rag_scope_init(&s, " docs/ ,papers/, docs/old/,papers/", &err), RAG_OK);
	assert_int_equal(s.nprefixes, 2);
	assert_string_equal(s.prefixes[0], "docs/");
	assert_string_equal(s.prefixes[1], "papers/");
	assert_true(rag_scope_owns(&s, "docs/a.md"));
	assert_true(rag_scope_owns(&s, "docs/old/b.md"));
	assert_true(rag_scope_owns(&s, "papers/c.pdf"));
	assert_false(rag_scope_owns(&s, "other/d.md"));
	assert_false(rag_scope_owns(&s, "doc"));
	assert_string_equal(rag_scope_describe(&s, buf, sizeof(buf)), "\"docs/\", \"papers/\"");
	rag_scope_release(&s);
	/* the whole bucket alone is fine, not among others */
	assert_int_equal(rag_scope_init(&s, "", &err), RAG_OK);
	assert_int_equal(s.nprefixes, 1);
	assert_true(rag_scope_owns(&s, "anything"));
	rag_scope_release(&s);
	assert_int_equal(rag_scope_init(&s, "a/,,b/", &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, "source.prefix"));
}

static void test_scope_shards(void **state)
{
	rag_scope s[3];
	rag_error err = {0};
	const char *bad[] = {"2/2", "-1/2", "1", "1/0", "a/b", "0/99999", "1/2x", ""};
	char key[64];
	int owners[3] = {0};

	(void)state;
	for (int i = 0; i < 3; i++) {
		char spec[8];
		snprintf(spec, sizeof(spec), "%d/3", i);
		assert_int_equal(rag_scope_init(&s[i], "src/", &err), RAG_OK);
		assert_int_equal(rag_scope_set_shard(&s[i], spec, &err), RAG_OK);
	}
	/* every key has exactly one owner, and the slices are balanced */
	for (int k = 0; k < 3000; k++) {
		int n = 0;
		snprintf(key, sizeof(key), "src/doc-%05d.md", k);
		for (int i = 0; i < 3; i++)
			if (rag_scope_owns(&s[i], key)) {
				n++;
				owners[i]++;
			}
		assert_int_equal(n, 1);
	}
	for (int i = 0; i < 3; i++)
		assert_in_range(owners[i], 850, 1150);
	/* the hash is part of the on-disk contract (invariant 2): pinned */
	assert_int_equal(rag_scope_shard_of("source/a.md", 1), 0);
	assert_int_equal(rag_scope_shard_of("source/a.md", 1000),
			 rag_fnv1a(RAG_FNV_INIT, "source/a.md", 11) % 1000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rag_scope_set_shard(&s[0], bad[i], &err), RAG_ECONFIG);
		assert_non_null(strstr(err.msg, "--shard"));
	}
	for (int i = 0; i < 3; i++)
		rag_scope_release(&s[i]);
}

static void test_decode_key(void **state)
{
	char *k;

	(void)state;
	assert_non_null(k = evq_decode_key("a+b%2Bc%20d%C3%BC.md"));
	assert_string_equal(k, "a b+c d\xc3\xbc.md");
	free(k);
	assert_null(evq_decode_key("bad%2"));
	assert_null(evq_decode_key("bad%zz"));
	assert_null(evq_decode_key("nul%00byte"));
}

#define RECORD(name, bucket, key) \
	"{\"eventName\":\"" name "\",\"s3\":{\"bucket\":{\"name\":\"" bucket "\"}," \
	"\"object\":{\"key\":\"" key "\",\"size\":3}}}"

static void test_post_and_take(void **state)
{
	rag_scope sc;
	rag_error err = {0};
	evq *q;
	evq_posted p;
	evq_stats st;
	char **keys;
	size_t n;
	uint64_t t0;
	const char *body =
		"{\"Records\":[" RECORD("ObjectCreated:Put", "b", "src/a.md") ","
		RECORD("s3:ObjectRemoved:Delete", "b", "src/b+c.md") ","
		RECORD("ObjectCreated:Put", "b", "src/a.md") ","        /* duplicate */
		RECORD("ObjectCreated:Put", "other", "src/x.md") ","    /* other bucket */
		RECORD("ObjectCreated:Put", "b", "elsewhere/y.md") ","  /* outside the prefixes */
		RECORD("s3:TestEvent", "b", "src/z.md") ","
		/* RGW: the raw key, '+' and '%' as they are (events.h, invariant 5) */
		"{\"eventSource\":\"ceph:s3\",\"eventName\":\"ObjectCreated:Put\",\"s3\":{"
		"\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"src/a+b c%20d.md\"}}}]}";

	(void)state;
	assert_int_equal(rag_scope_init(&sc, "src/", &err), RAG_OK);
	assert_non_null(q = evq_new("b", &sc, &err));
	rag_scope_release(&sc);
	assert_int_equal(evq_post(q, body, strlen(body), &p, &err), RAG_OK);
	assert_int_equal(p.records, 7);
	assert_int_equal(p.queued, 3);
	assert_int_equal(p.duplicates, 1);
	assert_int_equal(p.ignored, 3);
	/* the same body again: everything is a duplicate until taken */
	assert_int_equal(evq_post(q, body, strlen(body), &p, &err), RAG_OK);
	assert_int_equal(p.queued, 0);
	assert_int_equal(p.duplicates, 4);
	/* the window holds the burst back, then hands it out whole */
	t0 = rag_now_ns();
	keys = evq_take(q, 150, rag_now_ns() + 5000000000ull, NULL, &n);
	assert_true(rag_now_ns() - t0 >= 100000000ull);
	assert_int_equal(n, 3);
	assert_string_equal(keys[0], "src/a.md");
	assert_string_equal(keys[1], "src/b c.md");
	assert_string_equal(keys[2], "src/a+b c%20d.md");
	evq_keys_free(keys, n);
	/* nothing queued: the deadline ends the wait */
	assert_null(evq_take(q, 0, rag_now_ns() + 50000000ull, NULL, &n));
	assert_int_equal(n, 0);
	/* requeued keys come back (once) */
	evq_requeue(q, (char *[]){"src/a.md", "src/a.md"}, 2);
	keys = evq_take(q, 0, rag_now_ns() + 1000000000ull, NULL, &n);
	assert_int_equal(n, 1);
	evq_keys_free(keys, n);
	evq_get_stats(q, &st);
	assert_int_equal(st.posts, 2);
	assert_int_equal(st.records, 14);
	assert_int_equal(st.taken, 4);
	assert_int_equal(st.waiting, 0);
	evq_free(q);
}

static void test_post_malformed(void **state)
{
	static const struct {
		const char *body, *msg;
	} cases[] = {
		{"not json", "not JSON"},
		{"{\"records\": []}", "Records: missing or not an array"},
		{"{\"Records\": [1]}", "Records[0] is not an object"},
		{"{\"Records\": [" RECORD("ObjectCreated:Put", "b", "src/ok.md") ", {\"eventName\": "
		 "\"ObjectCreated:Put\", \"s3\": {\"object\": {}}}]}",
		 "Records[1].s3.object.key: missing or not a string"},
		{"{\"Records\": [{\"s3\": {\"object\": {\"key\": \"src/a\"}}}]}",
		 "Records[0].eventName: missing or not a string"},
		{"{\"Records\": [" RECORD("ObjectCreated:Put", "b", "src/bad%zz") "]}",
		 "Records[0].s3.object.key: \"src/bad%zz\" is not a URL-encoded key"},
	};
	rag_scope sc;
	rag_error err = {0};
	evq *q;
	evq_posted p;
	evq_stats st;

	(void)state;
	assert_int_equal(rag_scope_init(&sc, "src/", &err), RAG_OK);
	assert_non_null(q = evq_new("b", &sc, &err));
	rag_scope_release(&sc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(evq_post(q, cases[i].body, strlen(cases[i].body), &p, &err), RAG_EINVAL);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
	}
	/* invariant 1: the good record before the bad one was not queued */
	evq_get_stats(q, &st);
	assert_int_equal(st.waiting, 0);
	assert_int_equal(st.rejected, sizeof(cases) / sizeof(cases[0]));
	evq_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_prefixes),
		cmocka_unit_test(test_scope_shards),
		cmocka_unit_test(test_decode_key),
		cmocka_unit_test(test_post_and_take),
		cmocka_unit_test(test_post_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
