/*
 * qrequest.c — see qrequest.h. The messages are part of the HTTP API
 * (tests/integration/query_errors.sh checks them).
 */
#include "qrequest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

rag_rc qrequest_parse(const char *body, size_t len, int64_t max_query_bytes, int64_t max_k,
		      qrequest *out, rag_error *err)
{
	json_error_t jerr;
	json_t *j = NULL, *jq, *jk, *jr;
	qretriever ret = QRET_DENSE;
	rag_rc rc = RAG_EINVAL;

	memset(out, 0, sizeof(*out));
	if (!body)
		body = "";
	if (!rag_utf8_valid(body, len))
		return rag_error_set(err, RAG_EINVAL, "request body is not valid UTF-8");
	if (!(j = json_loadb(body, len, 0, &jerr)))
		return rag_error_set(err, RAG_EINVAL, "malformed JSON at line %d column %d: %s",
				     jerr.line, jerr.column, jerr.text);
	jq = json_object_get(j, "q");
	jk = json_object_get(j, "k");
	jr = json_object_get(j, "retriever");
	if (!json_is_object(j))
		rag_error_set(err, rc, "the body must be a JSON object");
	else if (!jq)
		rag_error_set(err, rc, "missing field \"q\"");
	else if (!json_is_string(jq))
		rag_error_set(err, rc, "field \"q\" must be a string");
	else if (json_string_length(jq) == 0 ||
		 strspn(json_string_value(jq), " \t\r\n") == json_string_length(jq))
		rag_error_set(err, rc, "field \"q\" is empty");
	else if ((int64_t)json_string_length(jq) > max_query_bytes)
		rag_error_set(err, rc, "field \"q\" is longer than %lld bytes", (long long)max_query_bytes);
	else if (strlen(json_string_value(jq)) != json_string_length(jq))
		rag_error_set(err, rc, "field \"q\" contains a NUL character");
	else if (jk && (!json_is_integer(jk) || json_integer_value(jk) < 1 ||
			json_integer_value(jk) > max_k))
		rag_error_set(err, rc, "field \"k\" must be an integer in 1..%lld", (long long)max_k);
	else if (jr && (!json_is_string(jr) || !qretriever_parse(json_string_value(jr), &ret)))
		rag_error_set(err, rc, "field \"retriever\" must be \"dense\", \"bm25\" or \"hybrid\"");
	else
		rc = RAG_OK;
	if (rc)
		goto out;
	out->len = json_string_length(jq);
	if (!(out->text = rag_strndup(json_string_value(jq), out->len))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	out->k = jk ? (int)json_integer_value(jk) : 5;
	out->retriever = ret;
out:
	json_decref(j);
	return rc;
}

void qrequest_release(qrequest *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}
