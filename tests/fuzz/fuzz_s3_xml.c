/*
 * The S3 XML bodies (s3_xml.h), the first byte choosing the parser (its
 * value modulo 7): 0 ListBucketResult (twice into one page, as pagination
 * does), 1 Error, 2 DeleteResult, 3 InitiateMultipartUploadResult, 4 the
 * date parser, 5 NotificationConfiguration, 6 a topic's ARN: when the
 * first byte divided by 7 is even (6, 20, ...) as in a CreateTopic answer
 * (no name), when odd (13, 27, ...) as in ListTopics, the name being the
 * input's first line and the answer the rest.
 */
#include "fuzz_common.h"
#include "s3_xml.h"

/* Every rule has an Id and only known event bits; a failure returns nothing. */
static void notifications(const char *body, size_t size)
{
	s3_notification_list l;
	rag_error err = {0};
	rag_rc rc = s3_xml_parse_notifications(body, size, &l, &err);

	if (rc == RAG_OK) {
		FUZZ_CHECK(l.n == 0 || l.rules != NULL);
		for (size_t i = 0; i < l.n; i++) {
			const s3_notification *r = &l.rules[i];
			FUZZ_CHECK(r->id != NULL && r->id[0] != '\0');
			FUZZ_CHECK((r->events & ~(S3_EVENT_CREATED | S3_EVENT_REMOVED)) == 0);
			/* read every string whole: ASan sees a dangling or unterminated one
			 * (no bound from size: a DTD's entities may lengthen a value) */
			FUZZ_CHECK(strlen(r->id) + (r->topic_arn ? strlen(r->topic_arn) : 0) +
					   (r->prefix ? strlen(r->prefix) : 0) > 0);
		}
	} else {
		FUZZ_CHECK(rc == RAG_EPARSE || rc == RAG_ENOMEM);
		FUZZ_CHECK(l.n == 0 && l.rules == NULL && err.msg[0] != '\0');
	}
	s3_notification_list_release(&l);
	FUZZ_CHECK(l.n == 0 && l.rules == NULL);
}

/*
 * A found ARN is non-empty, fits, and (with a name) ends in ":name";
 * "no such topic" only when a name was asked for.
 */
static void topic_arn(const char *body, size_t size, bool with_name)
{
	char arn[128], *name = NULL;
	rag_error err = {0};
	rag_rc rc;

	if (with_name) {
		const char *nl = memchr(body, '\n', size);
		size_t n = nl ? (size_t)(nl - body) : size;
		if (!(name = fuzz_cstr((const uint8_t *)body, n)))
			return;
		body += nl ? n + 1 : n;
		size -= nl ? n + 1 : n;
	}
	rc = s3_xml_topic_arn(body, size, name, arn, sizeof(arn), &err);
	if (rc == RAG_OK) {
		const char *last;
		FUZZ_CHECK(memchr(arn, '\0', sizeof(arn)) != NULL && arn[0] != '\0');
		last = strrchr(arn, ':');
		FUZZ_CHECK(!name || (last && strcmp(last + 1, name) == 0));
	} else {
		FUZZ_CHECK(rc == RAG_EPARSE || rc == RAG_ETOOBIG || rc == RAG_ENOMEM ||
			   (rc == RAG_ENOTFOUND && name));
		FUZZ_CHECK(err.msg[0] != '\0');
	}
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	rag_error err = {0};

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	size--;
	switch (data[0] % 7) {
	case 0: {
		s3_list_page page = {0};
		if (s3_xml_parse_list(body, size, &page, &err) == RAG_OK) {
			size_t n = page.nobjects;
			FUZZ_CHECK(page.nobjects <= page.capobjects || page.capobjects == 0);
			for (size_t i = 0; i < page.nobjects; i++)
				FUZZ_CHECK(page.objects[i].key != NULL &&
					   memchr(page.objects[i].etag, '\0', sizeof(page.objects[i].etag)));
			for (size_t i = 0; i < page.nprefixes; i++)
				FUZZ_CHECK(page.prefixes[i] != NULL);
			FUZZ_CHECK(!page.truncated || page.next_token);
			/* the next page appends */
			if (s3_xml_parse_list(body, size, &page, &err) == RAG_OK)
				FUZZ_CHECK(page.nobjects == 2 * n);
		}
		s3_list_page_release(&page);
		break;
	}
	case 1: {
		s3_xml_error e;
		if (s3_xml_parse_error(body, size, &e))
			FUZZ_CHECK(memchr(e.code, '\0', sizeof(e.code)) && memchr(e.message, '\0', sizeof(e.message)) &&
				   memchr(e.key, '\0', sizeof(e.key)) && memchr(e.bucket, '\0', sizeof(e.bucket)));
		break;
	}
	case 2: {
		s3_xml_error first;
		size_t nerrors = 0;
		if (s3_xml_parse_delete_result(body, size, &nerrors, &first, &err) == RAG_OK && nerrors)
			FUZZ_CHECK(memchr(first.code, '\0', sizeof(first.code)) &&
				   memchr(first.key, '\0', sizeof(first.key)));
		break;
	}
	case 3: {
		char *id = NULL;
		if (s3_xml_parse_upload_id(body, size, &id, &err) == RAG_OK)
			FUZZ_CHECK(id != NULL);
		free(id);
		break;
	}
	case 4: {
		char *s = fuzz_cstr((const uint8_t *)body, size);
		if (s)
			(void)s3_parse_time(s);
		free(s);
		break;
	}
	case 5:
		notifications(body, size);
		break;
	default:
		topic_arn(body, size, (data[0] / 7) % 2 == 1);
		break;
	}
	return 0;
}
