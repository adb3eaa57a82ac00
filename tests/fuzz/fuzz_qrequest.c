/*
 * The body of POST /v1/query (qrequest.h), with the default limits: what
 * is accepted is a valid request, what is refused has a message.
 */
#include "fuzz_common.h"
#include "qrequest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	qrequest r;
	rag_error err = {0};
	rag_rc rc = qrequest_parse((const char *)data, size, 4096, 100, &r, &err);

	if (rc == RAG_OK) {
		FUZZ_CHECK(r.text && r.len >= 1 && r.len <= 4096 && strlen(r.text) == r.len);
		FUZZ_CHECK(rag_utf8_valid(r.text, r.len));
		FUZZ_CHECK(r.k >= 1 && r.k <= 100);
		FUZZ_CHECK(r.retriever == QRET_DENSE || r.retriever == QRET_BM25 ||
			   r.retriever == QRET_HYBRID);
	} else {
		FUZZ_CHECK(rc == RAG_EINVAL && err.msg[0] && !r.text);
	}
	qrequest_release(&r);
	return 0;
}
