/* Unit tests for the S3 module's pure parts: encoding, XML, retry policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "s3_xml.h"

static void test_uri_encode(void **state)
{
	rag_buf b;

	(void)state;
	rag_buf_init(&b, 1024);
	assert_int_equal(s3_uri_encode("a b/c+d%e=f~g_h.i-j", true, &b), RAG_OK);
	assert_string_equal(b.data, "a%20b/c%2Bd%25e%3Df~g_h.i-j");
	rag_buf_reset(&b);
	assert_int_equal(s3_uri_encode("x/y z", false, &b), RAG_OK);
	assert_string_equal(b.data, "x%2Fy%20z");
	rag_buf_reset(&b);
	/* UTF-8 bytes are encoded one by one, upper-case hex */
	assert_int_equal(s3_uri_encode("\xc3\xbc", true, &b), RAG_OK);
	assert_string_equal(b.data, "%C3%BC");
	rag_buf_release(&b);
}

static const char list_page1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>rag</Name><Prefix>source/</Prefix><KeyCount>2</KeyCount>"
	"<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<NextContinuationToken>tok+/=1</NextContinuationToken>"
	"<Contents><Key>source/a &amp; b.md</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
	"<ETag>&quot;abc123&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>source/\xc3\xbc.txt</Key><ETag>\"def\"</ETag><Size>0</Size></Contents>"
	"<CommonPrefixes><Prefix>source/sub/</Prefix></CommonPrefixes>"
	"</ListBucketResult>";

static void test_parse_list(void **state)
{
	s3_list_page page = {0};
	rag_error err = {0};

	(void)state;
	assert_int_equal(s3_xml_parse_list(list_page1, sizeof(list_page1) - 1, &page, &err), RAG_OK);
	assert_int_equal(page.nobjects, 2);
	assert_string_equal(page.objects[0].key, "source/a & b.md");
	assert_string_equal(page.objects[0].etag, "abc123");
	assert_int_equal(page.objects[0].size, 42);
	assert_int_equal(page.objects[0].last_modified, 1704164645);
	assert_string_equal(page.objects[1].key, "source/\xc3\xbc.txt");
	assert_int_equal(page.nprefixes, 1);
	assert_string_equal(page.prefixes[0], "source/sub/");
	assert_true(page.truncated);
	assert_string_equal(page.next_token, "tok+/=1");
	s3_list_page_release(&page);
}

/* encoding-type=url: keys with control characters survive the XML */
static void test_parse_list_url_encoded(void **state)
{
	static const char body[] =
		"<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
		"<Contents><Key>src/a%08b+c%2Bd%25.md</Key><Size>3</Size></Contents>"
		"<Contents><Key>src/%C3%BC%0A.txt</Key><Size>4</Size></Contents>"
		"<CommonPrefixes><Prefix>src/sub%01dir/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	/* the same names, raw: a server that ignored encoding-type */
	static const char raw[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>src/a+b%20.md</Key><Size>3</Size></Contents></ListBucketResult>";
	static const char *const bad[] = {
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00b</Key>"
		"<Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%G1</Key>"
		"<Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%4</Key>"
		"<Size>1</Size></Contents></ListBucketResult>",
	};
	s3_list_page page = {0};
	rag_error err = {0};

	(void)state;
	assert_int_equal(s3_xml_parse_list(body, sizeof(body) - 1, &page, &err), RAG_OK);
	assert_int_equal(page.nobjects, 2);
	assert_string_equal(page.objects[0].key, "src/a\bb c+d%.md");
	assert_string_equal(page.objects[1].key, "src/\xc3\xbc\n.txt");
	assert_string_equal(page.prefixes[0], "src/sub\x01" "dir/");
	s3_list_page_release(&page);
	memset(&page, 0, sizeof(page));
	assert_int_equal(s3_xml_parse_list(raw, sizeof(raw) - 1, &page, &err), RAG_OK);
	assert_string_equal(page.objects[0].key, "src/a+b%20.md");
	s3_list_page_release(&page);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&page, 0, sizeof(page));
		assert_int_equal(s3_xml_parse_list(bad[i], strlen(bad[i]), &page, &err), RAG_EPARSE);
		assert_non_null(strstr(err.msg, "Key"));
		s3_list_page_release(&page);
	}
}

static void test_parse_list_rejects_garbage(void **state)
{
	static const char *const bad[] = {
		"", "not xml", "<Error><Code>X</Code></Error>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
	};
	rag_error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s3_list_page page = {0};
		assert_int_equal(s3_xml_parse_list(bad[i], strlen(bad[i]), &page, &err), RAG_EPARSE);
		assert_true(strlen(err.msg) > 0);
		s3_list_page_release(&page);
	}
}

static void test_parse_error_body(void **state)
{
	static const char body[] =
		"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
		"<Message>The specified key does not exist.</Message>"
		"<Key>a/b.txt</Key><RequestId>1</RequestId></Error>";
	s3_xml_error x;

	(void)state;
	assert_true(s3_xml_parse_error(body, sizeof(body) - 1, &x));
	assert_string_equal(x.code, "NoSuchKey");
	assert_string_equal(x.key, "a/b.txt");
	assert_string_equal(x.message, "The specified key does not exist.");
	assert_false(s3_xml_parse_error("<html/>", 7, &x));
	assert_false(s3_xml_parse_error(NULL, 0, &x));
}

static void test_parse_upload_and_delete(void **state)
{
	static const char init[] = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
				   "<UploadId>up-1</UploadId></InitiateMultipartUploadResult>";
	static const char del[] = "<DeleteResult><Deleted><Key>a</Key></Deleted>"
				  "<Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
				  "<Error><Key>c</Key><Code>AccessDenied</Code></Error></DeleteResult>";
	char *id = NULL;
	size_t nerr;
	s3_xml_error first;
	rag_error err = {0};

	(void)state;
	assert_int_equal(s3_xml_parse_upload_id(init, sizeof(init) - 1, &id, &err), RAG_OK);
	assert_string_equal(id, "up-1");
	free(id);
	assert_int_equal(s3_xml_parse_upload_id("<x/>", 4, &id, &err), RAG_EPARSE);
	assert_null(id);
	assert_int_equal(s3_xml_parse_delete_result(del, sizeof(del) - 1, &nerr, &first, &err), RAG_OK);
	assert_int_equal(nerr, 2);
	assert_string_equal(first.key, "b");
	assert_string_equal(first.code, "AccessDenied");
}

static void test_retry_policy(void **state)
{
	(void)state;
	/* retryable: 5xx, 429, 408; final: other 4xx */
	assert_true(s3_status_retryable(500));
	assert_true(s3_status_retryable(503));
	assert_true(s3_status_retryable(429));
	assert_false(s3_status_retryable(404));
	assert_false(s3_status_retryable(403));
	assert_false(s3_status_retryable(400));
	/* the cap doubles per attempt and is bounded by max; jitter within [0, cap] */
	assert_int_equal(s3_backoff_ms(1, 100, 5000, UINT64_MAX), UINT64_MAX % 101);
	for (unsigned a = 1; a < 12; a++) {
		unsigned cap = 100u << (a - 1);
		if (cap > 5000)
			cap = 5000;
		for (uint64_t r = 0; r < 2000; r += 37)
			assert_true(s3_backoff_ms(a, 100, 5000, r * 7919) <= cap);
		assert_int_equal(s3_backoff_ms(a, 100, 5000, cap), cap); /* cap itself reachable */
	}
	assert_int_equal(s3_backoff_ms(40, 100, 5000, 5000), 5000); /* no overflow */
}

static void test_error_code_map(void **state)
{
	(void)state;
	assert_int_equal(s3_error_code_rc("NoSuchKey", 404), RAG_ENOTFOUND);
	/* not ENOTFOUND, which callers read as "the key is absent" */
	assert_int_equal(s3_error_code_rc("NoSuchBucket", 404), RAG_ESTORAGE);
	assert_int_equal(s3_error_code_rc("AccessDenied", 403), RAG_EACCESS);
	assert_int_equal(s3_error_code_rc("InvalidAccessKeyId", 403), RAG_EAUTH);
	assert_int_equal(s3_error_code_rc("SignatureDoesNotMatch", 403), RAG_EAUTH);
	assert_int_equal(s3_error_code_rc("Weird", 500), RAG_ESTORAGE);
	assert_int_equal(s3_error_code_rc("", 404), RAG_ENOTFOUND);
}

static void test_parse_time(void **state)
{
	(void)state;
	assert_int_equal(s3_parse_time("2024-01-02T03:04:05.000Z"), 1704164645);
	assert_int_equal(s3_parse_time("Tue, 02 Jan 2024 03:04:05 GMT"), 1704164645);
	assert_int_equal(s3_parse_time("yesterday"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_parse_list_url_encoded),
		cmocka_unit_test(test_parse_list_rejects_garbage),
		cmocka_unit_test(test_parse_error_body),
		cmocka_unit_test(test_parse_upload_and_delete),
		cmocka_unit_test(test_retry_policy),
		cmocka_unit_test(test_error_code_map),
		cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
