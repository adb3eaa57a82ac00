/* The S3 client against the real local S3 server (ctest fixture "s3"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>

#include "live.h"
#include "s3.h"

typedef struct fx {
	rag_config cfg;
	s3_client *c;
	char prefix[128];
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	rag_error err = {0};

	if (!live_config(&f->cfg)) {
		free(f);
		fail_msg("no local S3 server: run through ctest (fixture s3)");
	}
	rag_config_set(&f->cfg, "s3", "multipart_threshold", "8MiB", &err);
	rag_config_set(&f->cfg, "s3", "part_size", "5MiB", &err);
	f->c = s3_client_new(&f->cfg, NULL, &err);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	s3_client_free(f->c);
	rag_config_release(&f->cfg);
	free(f);
	return 0;
}

typedef struct put_batch {
	s3_client *c;
	const char *prefix;
} put_batch;

static rag_rc put_nth(void *ctx, size_t i)
{
	put_batch *b = ctx;
	char key[256], body[32];
	rag_error err;

	snprintf(key, sizeof(key), "%sk%05zu", b->prefix, i);
	snprintf(body, sizeof(body), "%zu", i);
	return s3_put(b->c, S3_OP("test.put", NULL), key, body, strlen(body), NULL, NULL, &err);
}

static void test_list_2500_keys_across_pages(void **state)
{
	fx *f = *state;
	put_batch b = {f->c, f->prefix};
	s3_trace tr = {0};
	s3_list l;
	rag_error err = {0};

	live_prefix(f->prefix, sizeof(f->prefix), "list");
	assert_int_equal(s3_parallel(f->c, 2500, 16, put_nth, &b), RAG_OK);
	assert_int_equal(s3_list_objects(f->c, S3_OP("test.list", &tr), f->prefix, NULL, &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, 2500);
	for (size_t i = 0; i < l.nobjects; i++) {
		char want[256];
		snprintf(want, sizeof(want), "%sk%05zu", f->prefix, i);
		assert_string_equal(l.objects[i].key, want);
	}
	assert_int_equal(tr.kind[S3_LIST].requests, 3); /* 1000 + 1000 + 500 */
	s3_list_release(&l);

	/* smaller pages: same keys, more requests */
	memset(&tr, 0, sizeof(tr));
	s3_client_set_page_size(f->c, 700);
	assert_int_equal(s3_list_objects(f->c, S3_OP("test.list", &tr), f->prefix, NULL, &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, 2500);
	assert_int_equal(tr.kind[S3_LIST].requests, 4);
	s3_list_release(&l);
}

static void test_delimiter_and_weird_keys(void **state)
{
	static const char *const names[] = {
		"with space.txt", "uni\xc3\xbc\xe2\x86\x92\xe6\x97\xa5.md", "plus+sign", "pct%25%.txt",
		"eq=ual&amp", "deep/er/nest/ed.txt", "tilde~'quote'(paren)", "sub/leaf.txt",
	};
	fx *f = *state;
	s3_list l;
	rag_error err = {0};
	char key[512];
	size_t n = sizeof(names) / sizeof(names[0]);

	live_prefix(f->prefix, sizeof(f->prefix), "weird");
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s%s", f->prefix, names[i]);
		assert_int_equal(s3_put(f->c, S3_OP("t", NULL), key, names[i], strlen(names[i]),
					"text/plain", NULL, &err), RAG_OK);
	}
	for (size_t i = 0; i < n; i++) {
		rag_buf b;
		rag_buf_init(&b, 1024);
		snprintf(key, sizeof(key), "%s%s", f->prefix, names[i]);
		if (s3_get(f->c, S3_OP("t", NULL), key, &b, NULL, &err))
			fail_msg("get \"%s\": %s", key, err.msg);
		assert_string_equal(b.data, names[i]);
		rag_buf_release(&b);
	}
	assert_int_equal(s3_list_objects(f->c, S3_OP("t", NULL), f->prefix, NULL, &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, n);
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		snprintf(key, sizeof(key), "%s%s", f->prefix, names[i]);
		for (size_t j = 0; j < l.nobjects; j++)
			found |= strcmp(l.objects[j].key, key) == 0;
		if (!found)
			fail_msg("key \"%s\" not listed back exactly", key);
	}
	s3_list_release(&l);
	/* with a delimiter, nested keys collapse into common prefixes */
	assert_int_equal(s3_list_objects(f->c, S3_OP("t", NULL), f->prefix, "/", &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, n - 2);
	for (size_t j = 0; j < l.nobjects; j++)
		assert_null(strchr(l.objects[j].key + strlen(f->prefix), '/'));
	assert_int_equal(l.nprefixes, 2);
	for (size_t i = 0; i < 2; i++) {
		bool have = false;
		snprintf(key, sizeof(key), "%s%s", f->prefix, i ? "deep/" : "sub/");
		for (size_t j = 0; j < l.nprefixes; j++)
			have |= strcmp(l.prefixes[j], key) == 0;
		if (!have)
			fail_msg("common prefix \"%s\" not listed", key);
	}
	s3_list_release(&l);
}

static void test_ranges_head_and_errors(void **state)
{
	fx *f = *state;
	char key[256], data[1000];
	s3_object info;
	rag_buf b;
	rag_error err = {0};

	live_prefix(f->prefix, sizeof(f->prefix), "range");
	snprintf(key, sizeof(key), "%sblob", f->prefix);
	for (int i = 0; i < 1000; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(s3_put(f->c, S3_OP("t", NULL), key, data, sizeof(data), NULL, NULL, &err), RAG_OK);
	rag_buf_init(&b, 4096);
	assert_int_equal(s3_get_range(f->c, S3_OP("t", NULL), key, 100, 50, &b, &err), RAG_OK);
	assert_int_equal(b.len, 50);
	assert_memory_equal(b.data, data + 100, 50);
	rag_buf_reset(&b);
	assert_int_equal(s3_get_range(f->c, S3_OP("t", NULL), key, 999, 1, &b, &err), RAG_OK);
	assert_int_equal(b.data[0], data[999]);
	rag_buf_reset(&b);
	/* a range running past the end is reported, not silently short */
	assert_int_not_equal(s3_get_range(f->c, S3_OP("t", NULL), key, 990, 20, &b, &err), RAG_OK);
	assert_non_null(strstr(err.msg, "blob"));
	rag_buf_reset(&b);
	assert_int_equal(s3_head(f->c, S3_OP("t", NULL), key, &info, &err), RAG_OK);
	assert_int_equal(info.size, 1000);
	assert_int_equal(strlen(info.etag), 32);
	assert_true(info.last_modified > 1700000000);

	snprintf(key, sizeof(key), "%smissing", f->prefix);
	assert_int_equal(s3_get(f->c, S3_OP("t", NULL), key, &b, NULL, &err), RAG_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no such key"));
	assert_non_null(strstr(err.msg, "missing"));
	assert_int_equal(s3_head(f->c, S3_OP("t", NULL), key, &info, &err), RAG_ENOTFOUND);
	rag_buf_release(&b);

	/* a bucket that does not exist */
	rag_config_set(&f->cfg, "s3", "bucket", "no-such-bucket", &err);
	s3_client *other = s3_client_new(&f->cfg, NULL, &err);
	s3_list l;
	assert_int_equal(s3_list_objects(other, S3_OP("t", NULL), "", NULL, &l, &err), RAG_ESTORAGE);
	/* a HEAD says too, although its answer has no body */
	assert_int_equal(s3_head(other, S3_OP("t", NULL), "k", &info, &err), RAG_ESTORAGE);
	assert_non_null(strstr(err.msg, "no such bucket \"no-such-bucket\""));
	s3_client_free(other);
	rag_config_set(&f->cfg, "s3", "bucket", "rag", &err);
}

static void test_multipart_20mib_round_trip(void **state)
{
	fx *f = *state;
	size_t len = 20u << 20;
	char *data = malloc(len), key[256], etag[80], path[256];
	s3_trace tr = {0};
	s3_object info;
	rag_buf b;
	rag_error err = {0};
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(data + i, &x, 8);
	}
	live_prefix(f->prefix, sizeof(f->prefix), "mpu");
	snprintf(key, sizeof(key), "%sbig.bin", f->prefix);
	assert_int_equal(s3_put(f->c, S3_OP("t", &tr), key, data, len, NULL, etag, &err), RAG_OK);
	assert_int_equal(tr.kind[S3_PART].requests, 4); /* 5+5+5+5 MiB */
	assert_int_equal(tr.kind[S3_MPU].requests, 2);  /* create + complete */
	assert_int_equal(tr.kind[S3_PUT].requests, 0);
	assert_true(tr.kind[S3_PART].bytes_out >= len);
	assert_true(strlen(etag) >= 32); /* from the completion answer; GET must agree */
	rag_buf_init(&b, len);
	assert_int_equal(s3_get(f->c, S3_OP("t", NULL), key, &b, &info, &err), RAG_OK);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, data, len);
	assert_string_equal(info.etag, etag);
	rag_buf_release(&b);

	/* the same through a file */
	snprintf(path, sizeof(path), "/tmp/ragmap-mpu-%d.bin", (int)getpid());
	assert_int_equal(s3_get_file(f->c, S3_OP("t", NULL), key, path, NULL, &err), RAG_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, len);
	unlink(path);
	free(data);
}

/*
 * A large single-part PUT sends no Content-MD5: the MD5 runs alongside the
 * transfer and is checked against the returned ETag. One request, no retry,
 * and the ETag is the body's MD5.
 */
static void test_large_single_put_checks_etag(void **state)
{
	fx *f = *state;
	size_t len = 8u << 20; /* = multipart_threshold: still one part */
	char *data = malloc(len), key[256], etag[80], hex[40];
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	s3_trace tr = {0};
	s3_object info;
	rag_error err = {0};

	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 2654435761u >> 13);
	EVP_Digest(data, len, sum, &n, EVP_md5(), NULL);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	live_prefix(f->prefix, sizeof(f->prefix), "single");
	snprintf(key, sizeof(key), "%sone.bin", f->prefix);
	assert_int_equal(s3_put(f->c, S3_OP("t", &tr), key, data, len, NULL, etag, &err), RAG_OK);
	assert_int_equal(tr.kind[S3_PUT].requests, 1);
	assert_int_equal(tr.kind[S3_PUT].retries, 0);
	assert_int_equal(tr.kind[S3_PART].requests, 0);
	assert_string_equal(etag, hex);
	assert_int_equal(s3_head(f->c, S3_OP("t", NULL), key, &info, &err), RAG_OK);
	assert_int_equal(info.size, len);
	assert_string_equal(info.etag, hex);
	free(data);
}

static void test_parallel_get_and_delete(void **state)
{
	fx *f = *state;
	put_batch pb = {f->c, f->prefix};
	s3_get_req reqs[40];
	char keys[40][256];
	const char *kp[40];
	s3_trace tr = {0};
	s3_list l;
	rag_error err = {0};

	live_prefix(f->prefix, sizeof(f->prefix), "par");
	assert_int_equal(s3_parallel(f->c, 40, 8, put_nth, &pb), RAG_OK);
	for (int i = 0; i < 40; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%sk%05d", f->prefix, i);
		kp[i] = keys[i];
		memset(&reqs[i], 0, sizeof(reqs[i]));
		reqs[i].key = keys[i];
		rag_buf_init(&reqs[i].buf, 64);
	}
	assert_int_equal(s3_get_many(f->c, S3_OP("t", &tr), reqs, 40, 8), RAG_OK);
	for (int i = 0; i < 40; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%d", i);
		assert_string_equal(reqs[i].buf.data, want);
		rag_buf_release(&reqs[i].buf);
	}
	assert_int_equal(tr.kind[S3_GET].requests, 40);
	assert_int_equal(s3_delete(f->c, S3_OP("t", NULL), keys[0], &err), RAG_OK);
	assert_int_equal(s3_delete_many(f->c, S3_OP("t", &tr), kp + 1, 39, &err), RAG_OK);
	assert_int_equal(tr.kind[S3_DELETE].requests, 1);
	assert_int_equal(s3_list_objects(f->c, S3_OP("t", NULL), f->prefix, NULL, &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, 0);
	s3_list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_2500_keys_across_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delimiter_and_weird_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranges_head_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multipart_20mib_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_single_put_checks_etag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_get_and_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
