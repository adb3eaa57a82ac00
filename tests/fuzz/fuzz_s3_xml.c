/*
 * The S3 XML bodies (s3_xml.h), the first byte choosing the parser:
 * ListBucketResult (twice into one page, as pagination does), Error,
 * DeleteResult, InitiateMultipartUploadResult, and the date parser.
 */
#include "fuzz_common.h"
#include "s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	rag_error err = {0};

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	size--;
	switch (data[0] % 5) {
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
	default: {
		char *s = fuzz_cstr((const uint8_t *)body, size);
		if (s)
			(void)s3_parse_time(s);
		free(s);
		break;
	}
	}
	return 0;
}
