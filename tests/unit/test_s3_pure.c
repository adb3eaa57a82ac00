/* Unit tests for the S3 module's pure parts: encoding, XML (listings, errors, notification
 * configurations, topic ARNs), retry policy. */
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

/* ---- bucket notification configurations (s3_xml_parse_notifications) ---- */

/* RGW 16's GET ?notification: two topic rules, empty metadata and tag filters */
static const char notif_rgw[] =
	"<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<TopicConfiguration><Id>rag-src</Id><Topic>arn:aws:sns:default::rag-events</Topic>"
	"<Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:*</Event>"
	"<Filter><S3Key><FilterRule><Name>prefix</Name><Value>source/</Value></FilterRule></S3Key>"
	"<S3Metadata></S3Metadata><S3Tags></S3Tags></Filter></TopicConfiguration>"
	"<TopicConfiguration><Id>audit</Id><Topic>arn:aws:sns:default:tenant1:audit</Topic>"
	"<Event>s3:ObjectCreated:*</Event>"
	"<Filter><S3Key><FilterRule><Name>prefix</Name><Value>logs/</Value></FilterRule></S3Key>"
	"</Filter></TopicConfiguration>"
	"</NotificationConfiguration>";

typedef struct notif_want {
	const char *id, *arn, *prefix; /* NULL: absent */
	unsigned events;
	bool other;
} notif_want;

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void check_rule(const char *name, size_t i, const s3_notification *got, const notif_want *w)
{
	if (!str_same(got->id, w->id) || !str_same(got->topic_arn, w->arn) ||
	    !str_same(got->prefix, w->prefix) || got->events != w->events || got->other != w->other)
		fail_msg("case \"%s\", rule %zu: got id=\"%s\" arn=\"%s\" prefix=\"%s\" events=%u other=%d",
			 name, i, got->id ? got->id : "(null)", got->topic_arn ? got->topic_arn : "(null)",
			 got->prefix ? got->prefix : "(null)", got->events, (int)got->other);
}

#define CR (S3_EVENT_CREATED | S3_EVENT_REMOVED)

static void test_parse_notifications(void **state)
{
	static const struct {
		const char *name, *body;
		size_t n;
		notif_want rules[2];
	} cases[] = {
		{"rgw: two rules", notif_rgw, 2,
		 {{"rag-src", "arn:aws:sns:default::rag-events", "source/", CR, false},
		  {"audit", "arn:aws:sns:default:tenant1:audit", "logs/", S3_EVENT_CREATED, false}}},
		{"aws: declaration, Prefix capitalised, no filter",
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		 "<TopicConfiguration><Id>a</Id><Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>"
		 "<Event>s3:ObjectRemoved:*</Event><Event>s3:ObjectCreated:*</Event>"
		 "<Filter><S3Key><FilterRule><Name>Prefix</Name><Value>in/</Value></FilterRule>"
		 "</S3Key></Filter></TopicConfiguration>"
		 "<TopicConfiguration><Id>b</Id><Topic>arn:aws:sns:us-east-1:123456789012:t</Topic>"
		 "<Event>s3:ObjectRemoved:*</Event></TopicConfiguration></NotificationConfiguration>",
		 2, {{"a", "arn:aws:sns:us-east-1:123456789012:t", "in/", CR, false},
		     {"b", "arn:aws:sns:us-east-1:123456789012:t", NULL, S3_EVENT_REMOVED, false}}},
		{"suffix filter rule: other, prefix kept",
		 "<NotificationConfiguration><TopicConfiguration><Id>s</Id><Topic>arn:t</Topic>"
		 "<Event>s3:ObjectCreated:*</Event><Filter><S3Key>"
		 "<FilterRule><Name>prefix</Name><Value>src/</Value></FilterRule>"
		 "<FilterRule><Name>suffix</Name><Value>.md</Value></FilterRule>"
		 "</S3Key></Filter></TopicConfiguration></NotificationConfiguration>",
		 1, {{"s", "arn:t", "src/", S3_EVENT_CREATED, true}}},
		{"unknown and narrower events: other, known ones kept",
		 "<NotificationConfiguration><TopicConfiguration><Id>e</Id><Topic>arn:t</Topic>"
		 "<Event>s3:ObjectCreated:Put</Event><Event>s3:ObjectRemoved:*</Event>"
		 "<Event>s3:ObjectSynced:*</Event></TopicConfiguration></NotificationConfiguration>",
		 1, {{"e", "arn:t", NULL, S3_EVENT_REMOVED, true}}},
		{"two prefix rules: other, the first kept",
		 "<NotificationConfiguration><TopicConfiguration><Id>p</Id><Topic>arn:t</Topic>"
		 "<Filter><S3Key><FilterRule><Name>prefix</Name><Value>a/</Value></FilterRule>"
		 "<FilterRule><Name>prefix</Name><Value>b/</Value></FilterRule></S3Key></Filter>"
		 "</TopicConfiguration></NotificationConfiguration>",
		 1, {{"p", "arn:t", "a/", 0, true}}},
		{"metadata filter, tag filter: other",
		 "<NotificationConfiguration><TopicConfiguration><Id>m</Id><Topic>arn:t</Topic>"
		 "<Filter><S3Metadata><FilterRule><Name>x-amz-meta-k</Name><Value>v</Value></FilterRule>"
		 "</S3Metadata></Filter></TopicConfiguration>"
		 "<TopicConfiguration><Id>g</Id><Topic>arn:t</Topic><Event>s3:ObjectCreated:*</Event>"
		 "<Filter><S3Tags><FilterRule><Name>k</Name><Value>v</Value></FilterRule></S3Tags>"
		 "</Filter></TopicConfiguration></NotificationConfiguration>",
		 2, {{"m", "arn:t", NULL, 0, true}, {"g", "arn:t", NULL, S3_EVENT_CREATED, true}}},
		{"queue target (AWS) and an unknown element: other",
		 "<NotificationConfiguration><QueueConfiguration><Id>q</Id>"
		 "<Queue>arn:aws:sqs:us-east-1:1:q</Queue><Event>s3:ObjectCreated:*</Event>"
		 "</QueueConfiguration><TopicConfiguration><Id>x</Id><Topic>arn:t</Topic>"
		 "<Event>s3:ObjectCreated:*</Event><Future>1</Future></TopicConfiguration>"
		 "</NotificationConfiguration>",
		 2, {{"q", NULL, NULL, S3_EVENT_CREATED, true}, {"x", "arn:t", NULL, S3_EVENT_CREATED, true}}},
		{"entities and CDATA in id, topic and prefix",
		 "<NotificationConfiguration><TopicConfiguration><Id>r&amp;d&#x2d;1</Id>"
		 "<Topic>arn:aws:sns:default::a&amp;b</Topic><Event>s3:ObjectCreated&#58;*</Event>"
		 "<Filter><S3Key><FilterRule><Name>prefix</Name>"
		 "<Value>src/R&amp;D &lt;x&gt; &quot;q&apos; &#xFC;&#252;/</Value>"
		 "</FilterRule></S3Key></Filter></TopicConfiguration>"
		 "<TopicConfiguration><Id>c</Id><Topic>arn:t</Topic><Filter><S3Key><FilterRule>"
		 "<Name>prefix</Name><Value><![CDATA[a&b<c>/]]></Value></FilterRule></S3Key></Filter>"
		 "</TopicConfiguration></NotificationConfiguration>",
		 2, {{"r&d-1", "arn:aws:sns:default::a&b", "src/R&D <x> \"q' \xc3\xbc\xc3\xbc/", S3_EVENT_CREATED, false},
		     {"c", "arn:t", "a&b<c>/", 0, false}}},
		{"empty (RGW, no rules)",
		 "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>", 0, {{0}}},
		{"empty (open and close)", "<NotificationConfiguration></NotificationConfiguration>", 0, {{0}}},
		{"empty (AWS, EventBridge only)",
		 "<NotificationConfiguration><EventBridgeConfiguration></EventBridgeConfiguration>"
		 "</NotificationConfiguration>", 0, {{0}}},
	};
	rag_error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s3_notification_list l;
		memset(&l, 0xa5, sizeof(l)); /* out is overwritten, never read */
		if (s3_xml_parse_notifications(cases[i].body, strlen(cases[i].body), &l, &err) != RAG_OK)
			fail_msg("case \"%s\": %s", cases[i].name, err.msg);
		if (l.n != cases[i].n)
			fail_msg("case \"%s\": %zu rules, want %zu", cases[i].name, l.n, cases[i].n);
		for (size_t r = 0; r < l.n; r++)
			check_rule(cases[i].name, r, &l.rules[r], &cases[i].rules[r]);
		s3_notification_list_release(&l);
		assert_int_equal(l.n, 0);
		assert_null(l.rules);
	}
}

static void test_parse_notifications_rejects(void **state)
{
	static const struct {
		const char *body, *msg; /* msg: a part of the error message */
	} bad[] = {
		{"", "not XML"},
		{"not xml", "not XML"},
		{"<NotificationConfiguration><TopicConfiguration><Id>a</Id>", "not XML"},
		{"<NotificationConfiguration><TopicConfiguration></NotificationConfiguration>", "not XML"},
		{"<NotificationConfiguration><TopicConfiguration><Id>a&nope;</Id></TopicConfiguration>"
		 "</NotificationConfiguration>", "not XML"},
		{"<NotificationConfiguration/><NotificationConfiguration/>", "not XML"},
		{"<Error><Code>AccessDenied</Code></Error>", "expected <NotificationConfiguration>"},
		{"<ListBucketResult/>", "expected <NotificationConfiguration>"},
		{"<NotificationConfiguration><TopicConfiguration><Topic>arn:t</Topic>"
		 "<Event>s3:ObjectCreated:*</Event></TopicConfiguration></NotificationConfiguration>",
		 "without <Id>"},
		{"<NotificationConfiguration><TopicConfiguration><Id></Id><Topic>arn:t</Topic>"
		 "</TopicConfiguration></NotificationConfiguration>", "without <Id>"},
		/* a bad rule after a good one: nothing is returned */
		{"<NotificationConfiguration><TopicConfiguration><Id>a</Id><Topic>arn:t</Topic>"
		 "</TopicConfiguration><TopicConfiguration><Topic>arn:t</Topic></TopicConfiguration>"
		 "</NotificationConfiguration>", "without <Id>"},
	};
	s3_notification_list l;
	rag_error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (s3_xml_parse_notifications(bad[i].body, strlen(bad[i].body), &l, &err) != RAG_EPARSE ||
		    !strstr(err.msg, bad[i].msg))
			fail_msg("bad[%zu]: message \"%s\", want EPARSE and \"%s\"", i, err.msg, bad[i].msg);
		assert_int_equal(l.n, 0);
		assert_null(l.rules);
	}
	assert_int_equal(s3_xml_parse_notifications(NULL, 0, &l, &err), RAG_EPARSE);
	assert_int_equal(l.n, 0);
	/* every truncation of a good answer is an error, never a shorter list */
	for (size_t len = 0; len < sizeof(notif_rgw) - 1; len++) {
		memset(&err, 0, sizeof(err));
		if (s3_xml_parse_notifications(notif_rgw, len, &l, &err) != RAG_EPARSE)
			fail_msg("cut at %zu: accepted (%zu rules)", len, l.n);
		assert_true(strlen(err.msg) > 0);
		assert_int_equal(l.n, 0);
		assert_null(l.rules);
	}
}

/* A DTD's external entity is never read (XXE): the rule is refused or the entity is empty. */
static void test_parse_notifications_no_external_entity(void **state)
{
	static const char body[] =
		"<?xml version=\"1.0\"?><!DOCTYPE n [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<NotificationConfiguration><TopicConfiguration><Id>a</Id><Topic>arn:t</Topic>"
		"<Filter><S3Key><FilterRule><Name>prefix</Name><Value>p&x;q</Value></FilterRule>"
		"</S3Key></Filter></TopicConfiguration></NotificationConfiguration>";
	s3_notification_list l;
	rag_error err = {0};

	(void)state;
	if (s3_xml_parse_notifications(body, sizeof(body) - 1, &l, &err) == RAG_OK) {
		assert_int_equal(l.n, 1);
		assert_string_equal(l.rules[0].prefix, "pq");
	}
	s3_notification_list_release(&l);
}

/* ---- topic ARNs (s3_xml_topic_arn) ---- */

static const char topics_rgw[] =
	"<ListTopicsResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><ListTopicsResult>"
	"<Topics>"
	"<member><User></User><Name>rag-events</Name><EndPoint>"
	"<EndpointAddress>http://10.0.0.5:8091/events?shard=1&amp;x=2</EndpointAddress>"
	"<EndpointArgs>Action=CreateTopic&amp;Name=rag-events&amp;persistent=true</EndpointArgs>"
	"<EndpointTopic>rag-events</EndpointTopic><HasStoredSecret>false</HasStoredSecret>"
	"<Persistent>true</Persistent></EndPoint>"
	"<TopicArn>arn:aws:sns:default::rag-events</TopicArn><OpaqueData></OpaqueData></member>"
	"<member><User>t1</User><Name>rag</Name><EndPoint><EndpointAddress>http://h/</EndpointAddress>"
	"</EndPoint><TopicArn>arn:aws:sns:default:tenant1:rag</TopicArn></member>"
	"<member><Name>audit&amp;log</Name>"
	"<TopicArn>arn:aws:sns:default::audit&amp;log</TopicArn></member>"
	"</Topics></ListTopicsResult>"
	"<ResponseMetadata><RequestId>1-2-3</RequestId></ResponseMetadata></ListTopicsResponse>";

static const char create_topic_rgw[] =
	"<CreateTopicResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult>"
	"<TopicArn>arn:aws:sns:default::rag-events</TopicArn></CreateTopicResult>"
	"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></CreateTopicResponse>";

static void test_topic_arn(void **state)
{
	static const struct {
		const char *what, *body, *name; /* name NULL: a CreateTopic answer */
		size_t arn_len;
		rag_rc rc;
		const char *want; /* the ARN, or a part of the error message */
	} cases[] = {
		{"create", create_topic_rgw, NULL, 512, RAG_OK, "arn:aws:sns:default::rag-events"},
		{"create (AWS)",
		 "<?xml version=\"1.0\"?>\n<CreateTopicResponse><CreateTopicResult><TopicArn>"
		 "arn:aws:sns:us-east-1:123456789012:t</TopicArn></CreateTopicResult></CreateTopicResponse>",
		 NULL, 512, RAG_OK, "arn:aws:sns:us-east-1:123456789012:t"},
		{"list: the first", topics_rgw, "rag-events", 512, RAG_OK, "arn:aws:sns:default::rag-events"},
		/* "rag" is no prefix match of "rag-events": the second, a tenant's */
		{"list: by whole name", topics_rgw, "rag", 512, RAG_OK, "arn:aws:sns:default:tenant1:rag"},
		{"list: entity in the name", topics_rgw, "audit&log", 512, RAG_OK,
		 "arn:aws:sns:default::audit&log"},
		{"list: no such name", topics_rgw, "events", 512, RAG_ENOTFOUND, "\"events\""},
		{"list: the account is no name", topics_rgw, "tenant1", 512, RAG_ENOTFOUND, "tenant1"},
		{"list: empty",
		 "<ListTopicsResponse><ListTopicsResult><Topics></Topics></ListTopicsResult>"
		 "</ListTopicsResponse>", "rag", 512, RAG_ENOTFOUND, "\"rag\""},
		{"list: char reference in the ARN",
		 "<ListTopicsResponse><ListTopicsResult><Topics><member>"
		 "<TopicArn>arn:aws:sns:default:&#58;rag&#x2D;events</TopicArn></member>"
		 "</Topics></ListTopicsResult></ListTopicsResponse>",
		 "rag-events", 512, RAG_OK, "arn:aws:sns:default::rag-events"},
		/* the ARN is 31 bytes */
		{"create: ARN just fits", create_topic_rgw, NULL, 32, RAG_OK,
		 "arn:aws:sns:default::rag-events"},
		{"create: ARN one byte too long", create_topic_rgw, NULL, 31, RAG_ETOOBIG, "31"},
		{"list: ARN too long", topics_rgw, "rag", 16, RAG_ETOOBIG, "16"},
		{"create: no ARN",
		 "<CreateTopicResponse><CreateTopicResult></CreateTopicResult></CreateTopicResponse>",
		 NULL, 512, RAG_EPARSE, "no <TopicArn>"},
		{"create: empty ARN", "<CreateTopicResponse><TopicArn></TopicArn></CreateTopicResponse>",
		 NULL, 512, RAG_EPARSE, "no <TopicArn>"},
		{"not XML", "not xml", NULL, 512, RAG_EPARSE, "not XML"},
		/* an error page is no list: never "no such topic" (a delete would be done) */
		{"list: an error answer", "<ErrorResponse><Error><Code>AccessDenied</Code></Error>"
		 "</ErrorResponse>", "rag", 512, RAG_EPARSE, "<ErrorResponse>, not <ListTopicsResponse>"},
		{"list: an HTML page", "<html><body>ok</body></html>", "rag", 512, RAG_EPARSE, "<html>"},
		{"not XML, with a name", "<ListTopicsResponse><TopicArn>arn:x:rag</TopicArn>", "rag", 512,
		 RAG_EPARSE, "not XML"},
		{"empty", "", "rag", 512, RAG_EPARSE, "not XML"},
	};
	char arn[512];
	rag_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rag_rc rc;
		memset(&err, 0, sizeof(err));
		memset(arn, 'x', sizeof(arn));
		rc = s3_xml_topic_arn(cases[i].body, strlen(cases[i].body), cases[i].name, arn,
				      cases[i].arn_len, &err);
		if (rc != cases[i].rc)
			fail_msg("case \"%s\": rc %s, want %s (%s)", cases[i].what, rag_rc_name(rc),
				 rag_rc_name(cases[i].rc), err.msg);
		if (rc == RAG_OK && strcmp(arn, cases[i].want) != 0)
			fail_msg("case \"%s\": ARN \"%s\", want \"%s\"", cases[i].what, arn, cases[i].want);
		if (rc != RAG_OK && !strstr(err.msg, cases[i].want))
			fail_msg("case \"%s\": message \"%s\" without \"%s\"", cases[i].what, err.msg,
				 cases[i].want);
	}
	/* a truncated list is an error, never "no such topic" (which deletes nothing) */
	for (size_t len = 0; len < sizeof(topics_rgw) - 1; len++) {
		rag_rc rc = s3_xml_topic_arn(topics_rgw, len, "audit&log", arn, sizeof(arn), &err);
		if (rc != RAG_EPARSE)
			fail_msg("cut at %zu: rc %s", len, rag_rc_name(rc));
	}
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
		cmocka_unit_test(test_parse_notifications),
		cmocka_unit_test(test_parse_notifications_rejects),
		cmocka_unit_test(test_parse_notifications_no_external_entity),
		cmocka_unit_test(test_topic_arn),
		cmocka_unit_test(test_retry_policy),
		cmocka_unit_test(test_error_code_map),
		cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
