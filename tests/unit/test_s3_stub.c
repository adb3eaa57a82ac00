/*
 * S3 client against an in-process stub server (libmicrohttpd): retries,
 * error messages, timeouts and the exactness of the counters. The stub
 * chooses its answer from the first path segment after the bucket:
 *   flaky<N>/...   503 SlowDown N times, then 200 "payload"
 *   always503/...  503 SlowDown forever
 *   err-<Code>/... the S3 error <Code> with its usual status
 *   echo/...       200 with the request path as the server saw it
 *   anything else  200 "payload"
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rag_util.h"
#include "s3.h"

static atomic_int hits;

static const struct {
	const char *code;
	unsigned status;
} codes[] = {
	{"NoSuchKey", 404}, {"NoSuchBucket", 404}, {"AccessDenied", 403},
	{"InvalidAccessKeyId", 403}, {"SignatureDoesNotMatch", 403}, {"InvalidArgument", 400},
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (status >= 300)
		MHD_add_response_header(r, "Content-Type", "application/xml");
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result stub(void *cls, struct MHD_Connection *conn, const char *url,
			    const char *method, const char *version, const char *data,
			    size_t *size, void **req)
{
	char body[512];
	int n, nth;

	(void)cls, (void)method, (void)version, (void)data;
	if (*req == NULL) { /* first call per request: headers only */
		*req = (void *)1;
		return MHD_YES;
	}
	if (*size) { /* swallow upload data */
		*size = 0;
		return MHD_YES;
	}
	nth = atomic_fetch_add(&hits, 1) + 1;
	if (strncmp(url, "/rag/echo/", 10) == 0)
		return reply(conn, 200, url);
	if (strcmp(url, "/rag") == 0 || strcmp(url, "/rag/") == 0) {
		/* ListObjectsV2: URL-encoded keys only when asked for */
		const char *enc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "encoding-type");
		if (!enc || strcmp(enc, "url") != 0)
			return reply(conn, 400, "<Error><Code>InvalidArgument</Code><Message>stub wants encoding-type=url</Message></Error>");
		return reply(conn, 200, "<ListBucketResult><EncodingType>url</EncodingType>"
					"<IsTruncated>false</IsTruncated><Contents><Key>ctl/a%08b.md</Key>"
					"<Size>1</Size></Contents></ListBucketResult>");
	}
	if (strncmp(url, "/rag/etag/", 10) == 0) {
		/* a PUT answered with an ETag that is no body's MD5 ("bad") or
		 * not an MD5 at all ("kms", as with SSE-KMS) */
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		enum MHD_Result ok;
		MHD_add_response_header(r, "ETag", strncmp(url + 10, "bad", 3) == 0
						   ? "\"0123456789abcdef0123456789abcdef\""
						   : "\"0123456789abcdef0123456789abcdef-1\"");
		ok = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ok;
	}
	url += strlen("/rag/");
	if (sscanf(url, "flaky%d/", &n) == 1 && nth <= n)
		return reply(conn, 503, "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
	if (strncmp(url, "always503/", 10) == 0)
		return reply(conn, 503, "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		size_t cl = strlen(codes[i].code);
		if (strncmp(url, "err-", 4) == 0 && strncmp(url + 4, codes[i].code, cl) == 0 &&
		    url[4 + cl] == '/') {
			snprintf(body, sizeof(body),
				 "<Error><Code>%s</Code><Message>stub says %s</Message>"
				 "<Key>%s</Key><BucketName>rag</BucketName></Error>",
				 codes[i].code, codes[i].code, url);
			return reply(conn, codes[i].status, body);
		}
	}
	return reply(conn, 200, "payload");
}

typedef struct fixture {
	struct MHD_Daemon *d;
	rag_config cfg;
	s3_client *c;
} fixture;

static void make_client(fixture *f, const char *endpoint, int retries, int low_speed_s)
{
	rag_error err = {0};
	char num[16];

	assert_int_equal(rag_config_init(&f->cfg), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "endpoint", endpoint, &err), RAG_OK);
	snprintf(num, sizeof(num), "%d", retries);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "max_retries", num, &err), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "retry_base_ms", "5", &err), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "retry_max_ms", "40", &err), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "connect_timeout_ms", "300", &err), RAG_OK);
	snprintf(num, sizeof(num), "%d", low_speed_s);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "low_speed_time_s", num, &err), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "access_key_id", "AKIDSTUB", &err), RAG_OK);
	assert_int_equal(rag_config_set(&f->cfg, "s3", "secret_access_key", "stubsecret", &err), RAG_OK);
	f->c = s3_client_new(&f->cfg, NULL, &err);
	assert_non_null(f->c);
	s3_client_set_seed(f->c, 7);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char endpoint[64];
	const union MHD_DaemonInfo *info;

	f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				NULL, stub, NULL, MHD_OPTION_END);
	assert_non_null(f->d);
	info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", info->port);
	make_client(f, endpoint, 5, 5);
	atomic_store(&hits, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	s3_client_free(f->c);
	rag_config_release(&f->cfg);
	if (f->d)
		MHD_stop_daemon(f->d);
	free(f);
	return 0;
}

static void test_retry_then_success_is_counted_once(void **state)
{
	fixture *f = *state;
	s3_trace tr = {0};
	rag_buf b;
	rag_error err = {0};

	rag_buf_init(&b, 1024);
	assert_int_equal(s3_get(f->c, S3_OP("test.get", &tr), "flaky3/x", &b, NULL, &err), RAG_OK);
	assert_string_equal(b.data, "payload"); /* error bodies never leak into the result */
	assert_int_equal(atomic_load(&hits), 4);
	assert_int_equal(tr.kind[S3_GET].requests, 1);
	assert_int_equal(tr.kind[S3_GET].retries, 3);
	assert_int_equal(tr.kind[S3_GET].errors, 0);
	assert_true(tr.kind[S3_GET].bytes_in >= 7);

	/* the client-wide counters agree, under the stage label */
	s3_stage_stats st[4];
	size_t n = s3_client_stats(f->c, st, 4);
	assert_int_equal(n, 1);
	assert_string_equal(st[0].stage, "test.get");
	assert_int_equal(st[0].kind[S3_GET].requests, 1);
	assert_int_equal(st[0].kind[S3_GET].retries, 3);
	rag_buf_release(&b);
}

static void test_never_succeeds_is_bounded(void **state)
{
	fixture *f = *state;
	s3_trace tr = {0};
	rag_buf b;
	rag_error err = {0};
	uint64_t t0 = rag_now_ns();

	rag_buf_init(&b, 1024);
	assert_int_equal(s3_get(f->c, S3_OP("t", &tr), "always503/x", &b, NULL, &err), RAG_ESTORAGE);
	assert_true(rag_ms_since(t0) < 2000);
	assert_int_equal(atomic_load(&hits), 6); /* 1 + max_retries */
	assert_int_equal(tr.kind[S3_GET].retries, 5);
	assert_int_equal(tr.kind[S3_GET].errors, 1);
	assert_non_null(strstr(err.msg, "after 5 retries"));
	assert_non_null(strstr(err.msg, "HTTP 503 SlowDown"));
	assert_non_null(strstr(err.msg, "s3://rag/always503/x"));
	rag_buf_release(&b);
}

/* Listings ask for URL-encoded keys and decode them: control characters pass. */
static void test_list_decodes_url_encoded_keys(void **state)
{
	fixture *f = *state;
	s3_list l;
	rag_error err = {0};

	assert_int_equal(s3_list_objects(f->c, S3_OP("test.list", NULL), "ctl/", NULL, &l, &err), RAG_OK);
	assert_int_equal(l.nobjects, 1);
	assert_string_equal(l.objects[0].key, "ctl/a\bb.md");
	s3_list_release(&l);
}

/* A large PUT whose stored ETag is not the MD5 sent is retried, then fails. */
static void test_large_put_etag_mismatch(void **state)
{
	fixture *f = *state;
	size_t len = 9u << 20;
	char *data = calloc(len, 1);
	s3_trace tr = {0};
	rag_error err = {0};

	assert_int_equal(s3_put(f->c, S3_OP("test.put", &tr), "etag/bad.bin", data, len, NULL, NULL,
				&err), RAG_ECORRUPT);
	assert_non_null(strstr(err.msg, "etag/bad.bin"));
	assert_non_null(strstr(err.msg, "is not the MD5"));
	assert_int_equal(atomic_load(&hits), 6); /* the first try and 5 retries */
	/* an ETag that is not an MD5 cannot be checked: accepted */
	assert_int_equal(s3_put(f->c, S3_OP("test.put", &tr), "etag/kms.bin", data, len, NULL, NULL,
				&err), RAG_OK);
	assert_int_equal(atomic_load(&hits), 7);
	free(data);
}

static void test_error_messages(void **state)
{
	static const struct {
		const char *key;
		rag_rc rc;
		const char *want;
	} cases[] = {
		{"err-NoSuchKey/a b.txt", RAG_ENOTFOUND, "no such key \"err-NoSuchKey/a b.txt\" in bucket \"rag\""},
		{"err-NoSuchBucket/k", RAG_ESTORAGE, "no such bucket \"rag\""},
		{"err-AccessDenied/k", RAG_EACCESS, "access denied: GET s3://rag/err-AccessDenied/k"},
		{"err-InvalidAccessKeyId/k", RAG_EAUTH, "invalid access key id"},
		{"err-SignatureDoesNotMatch/k", RAG_EAUTH, "signature does not match"},
		{"err-InvalidArgument/k", RAG_ESTORAGE,
		 "GET s3://rag/err-InvalidArgument/k: HTTP 400 InvalidArgument: stub says InvalidArgument"},
	};
	fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rag_buf b;
		rag_error err = {0};
		rag_buf_init(&b, 1024);
		atomic_store(&hits, 0);
		assert_int_equal(s3_get(f->c, S3_OP("t", NULL), cases[i].key, &b, NULL, &err), cases[i].rc);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("for %s got \"%s\"", cases[i].key, err.msg);
		/* 4xx is final: exactly one request, and no secret in the message */
		assert_int_equal(atomic_load(&hits), 1);
		assert_null(strstr(err.msg, "stubsecret"));
		assert_null(strstr(err.msg, "AKIDSTUB"));
		assert_int_equal(b.len, 0);
		rag_buf_release(&b);
	}
}

static void test_dot_segments_sent_verbatim(void **state)
{
	fixture *f = *state;
	rag_buf b;
	rag_error err = {0};

	/* S3 keys may contain "." and ".." segments; they are names, not paths */
	rag_buf_init(&b, 1024);
	assert_int_equal(s3_get(f->c, S3_OP("t", NULL), "echo/a/../b/./c", &b, NULL, &err), RAG_OK);
	assert_string_equal(b.data, "/rag/echo/a/../b/./c");
	rag_buf_release(&b);
}

static void test_body_over_cap(void **state)
{
	fixture *f = *state;
	rag_buf b;
	rag_error err = {0};

	rag_buf_init(&b, 3);
	assert_int_equal(s3_get(f->c, S3_OP("t", NULL), "ok/x", &b, NULL, &err), RAG_ETOOBIG);
	assert_non_null(strstr(err.msg, "limit"));
	assert_int_equal(atomic_load(&hits), 1); /* not retried */
	rag_buf_release(&b);
}

static void test_unresponsive_server_times_out(void **state)
{
	fixture *f = *state, g = {0};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char endpoint[64];
	rag_buf b;
	rag_error err = {0};
	uint64_t t0;

	/* listens (the kernel completes handshakes) but never answers */
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 16), 0);
	getsockname(s, (struct sockaddr *)&a, &alen);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", ntohs(a.sin_port));
	(void)f;
	make_client(&g, endpoint, 1, 1);
	rag_buf_init(&b, 1024);
	t0 = rag_now_ns();
	assert_int_equal(s3_get(g.c, S3_OP("t", NULL), "x", &b, NULL, &err), RAG_ETIMEOUT);
	double ms = rag_ms_since(t0);
	assert_true(ms >= 1900 && ms < 6000); /* two attempts of ~1 s each */
	assert_non_null(strstr(err.msg, "after 1 retries"));
	rag_buf_release(&b);
	s3_client_free(g.c);
	rag_config_release(&g.cfg);
	close(s);
}

static void test_unreachable_endpoint_fails_fast(void **state)
{
	fixture g = {0};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char endpoint[64];
	rag_buf b;
	rag_error err = {0};
	uint64_t t0;

	(void)state;
	/* a port that was free a moment ago: connection refused */
	bind(s, (struct sockaddr *)&a, sizeof(a));
	getsockname(s, (struct sockaddr *)&a, &alen);
	close(s);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", ntohs(a.sin_port));
	make_client(&g, endpoint, 2, 5);
	rag_buf_init(&b, 1024);
	t0 = rag_now_ns();
	assert_int_equal(s3_get(g.c, S3_OP("t", NULL), "x", &b, NULL, &err), RAG_ENET);
	assert_true(rag_ms_since(t0) < 2000);
	assert_non_null(strstr(err.msg, "after 2 retries"));
	s3_client_free(g.c);
	rag_config_release(&g.cfg);

	/*
	 * A listener whose accept queue is full drops new SYNs, like a host
	 * that does not answer: the connect timeout (300 ms) bounds each attempt.
	 */
	int full = socket(AF_INET, SOCK_STREAM, 0), fillers[8];
	a.sin_port = 0;
	alen = sizeof(a);
	assert_int_equal(bind(full, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(full, 0), 0);
	getsockname(full, (struct sockaddr *)&a, &alen);
	for (int i = 0; i < 8; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
	}
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", ntohs(a.sin_port));
	make_client(&g, endpoint, 1, 5);
	t0 = rag_now_ns();
	assert_int_equal(s3_get(g.c, S3_OP("t", NULL), "x", &b, NULL, &err), RAG_ETIMEOUT);
	assert_true(rag_ms_since(t0) < 2000);
	assert_non_null(strstr(err.msg, "after 1 retries"));
	s3_client_free(g.c);
	rag_config_release(&g.cfg);
	for (int i = 0; i < 8; i++)
		close(fillers[i]);
	close(full);
	rag_buf_release(&b);
}

static void test_bad_endpoint_is_config_error(void **state)
{
	rag_config cfg;
	rag_error err = {0};

	(void)state;
	assert_int_equal(rag_config_init(&cfg), RAG_OK);
	assert_int_equal(rag_config_set(&cfg, "s3", "endpoint", "ftp://x", &err), RAG_OK);
	assert_null(s3_client_new(&cfg, NULL, &err));
	assert_int_equal(err.rc, RAG_ECONFIG);
	assert_non_null(strstr(err.msg, "s3.endpoint"));
	rag_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retry_then_success_is_counted_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_succeeds_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_put_etag_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_decodes_url_encoded_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_segments_sent_verbatim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_over_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unresponsive_server_times_out, setup, teardown),
		cmocka_unit_test(test_unreachable_endpoint_fails_fast),
		cmocka_unit_test(test_bad_endpoint_is_config_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
