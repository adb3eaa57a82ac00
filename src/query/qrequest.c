/*
 * qrequest.c — see qrequest.h. The messages are part of the HTTP API
 * (tests/integration/query_errors.sh checks them).
 */
#include "qrequest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

/* The fields a body may hold; anything else is a 400 naming it. */
static const char *const known_fields[] = {"q", "k", "retriever", "filter", "trace", "explain"};
static const char *const filter_fields[] = {"prefix", "type"};

#define PREFIX_MAX 1024
#define TYPE_LIST "text, markdown, html, pdf"

static bool is_known(const char *key, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(key, names[i]) == 0)
			return true;
	return false;
}

/* The first key of o not in names, or NULL. */
static const char *unknown_key(json_t *o, const char *const *names, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		if (!is_known(key, names, n))
			return key;
	}
	return NULL;
}

/* At most 64 bytes of a field name for a message, never cut inside a UTF-8 sequence. */
static int name_len(const char *key)
{
	size_t n = strlen(key);

	if (n <= 64)
		return (int)n;
	n = 64;
	while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

const char *qrequest_type_name(const char *s)
{
	static const struct {
		const char *in, *name;
	} types[] = {
		{"text", "text"}, {"txt", "text"}, {"markdown", "markdown"}, {"md", "markdown"},
		{"html", "html"}, {"pdf", "pdf"},
	};

	for (size_t i = 0; s && i < RAG_ARRAY_LEN(types); i++)
		if (strcmp(s, types[i].in) == 0)
			return types[i].name;
	return NULL;
}

rag_rc qfilter_add_type(qfilter *f, const char *s, rag_error *err)
{
	const char *name = qrequest_type_name(s);

	if (!name)
		return rag_error_set(err, RAG_EINVAL, "unknown type \"%.*s\" (" TYPE_LIST ")",
				     name_len(s), s);
	for (int i = 0; i < f->ntypes; i++)
		if (f->types[i] == name)
			return RAG_OK;
	if (f->ntypes >= QFILTER_MAX_TYPES)
		return rag_error_set(err, RAG_EINVAL, "too many types");
	f->types[f->ntypes++] = name;
	return RAG_OK;
}

/* "filter": {"prefix": "...", "type": "md" | ["md", ...]} into f (prefix borrowed from jf). */
static rag_rc parse_filter(json_t *jf, qfilter *f, const char **prefix, rag_error *err)
{
	json_t *jp, *jt, *v;
	const char *bad;
	size_t i;

	if (!json_is_object(jf))
		return rag_error_set(err, RAG_EINVAL, "field \"filter\" must be an object");
	if ((bad = unknown_key(jf, filter_fields, RAG_ARRAY_LEN(filter_fields))))
		return rag_error_set(err, RAG_EINVAL, "unknown field \"%.*s\" in \"filter\"",
				     name_len(bad), bad);
	jp = json_object_get(jf, "prefix");
	jt = json_object_get(jf, "type");
	if (jp && !json_is_string(jp))
		return rag_error_set(err, RAG_EINVAL, "field \"filter.prefix\" must be a string");
	if (jp && json_string_length(jp) > PREFIX_MAX)
		return rag_error_set(err, RAG_EINVAL,
				     "field \"filter.prefix\" is longer than %d bytes", PREFIX_MAX);
	if (jp && strlen(json_string_value(jp)) != json_string_length(jp))
		return rag_error_set(err, RAG_EINVAL,
				     "field \"filter.prefix\" contains a NUL character");
	*prefix = jp ? json_string_value(jp) : NULL;
	if (!jt)
		return RAG_OK;
	if (json_is_string(jt) && qfilter_add_type(f, json_string_value(jt), err)) {
		rag_error_prefix(err, "field \"filter.type\"");
		return RAG_EINVAL;
	}
	if (json_is_string(jt))
		return RAG_OK;
	if (!json_is_array(jt) || json_array_size(jt) == 0)
		return rag_error_set(err, RAG_EINVAL,
				     "field \"filter.type\" must be a type or a non-empty array of "
				     "types (" TYPE_LIST ")");
	json_array_foreach(jt, i, v) {
		if (!json_is_string(v))
			return rag_error_set(err, RAG_EINVAL,
					     "field \"filter.type\" must hold strings (" TYPE_LIST ")");
		if (qfilter_add_type(f, json_string_value(v), err)) {
			rag_error_prefix(err, "field \"filter.type\"");
			return RAG_EINVAL;
		}
	}
	return RAG_OK;
}

rag_rc qrequest_parse(const char *body, size_t len, int64_t max_query_bytes, int64_t max_k,
		      qrequest *out, rag_error *err)
{
	json_error_t jerr;
	json_t *j = NULL, *jq, *jk, *jr, *jf, *jt, *je;
	qretriever ret = QRET_DENSE;
	const char *bad = NULL, *prefix = NULL;
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
	jf = json_object_get(j, "filter");
	jt = json_object_get(j, "trace");
	je = json_object_get(j, "explain");
	if (json_is_object(j))
		bad = unknown_key(j, known_fields, RAG_ARRAY_LEN(known_fields));
	if (!json_is_object(j))
		rag_error_set(err, rc, "the body must be a JSON object");
	else if (bad)
		rag_error_set(err, rc, "unknown field \"%.*s\"", name_len(bad), bad);
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
	else if (jt && (!json_is_string(jt) || (strcmp(json_string_value(jt), "full") != 0 &&
						 strcmp(json_string_value(jt), "summary") != 0)))
		rag_error_set(err, rc, "field \"trace\" must be \"full\" or \"summary\"");
	else if (je && !json_is_boolean(je))
		rag_error_set(err, rc, "field \"explain\" must be true or false");
	else if (!jf || !parse_filter(jf, &out->filter, &prefix, err))
		rc = RAG_OK;
	if (rc)
		goto out;
	out->len = json_string_length(jq);
	if (!(out->text = rag_strndup(json_string_value(jq), out->len)) ||
	    (prefix && !(out->filter.prefix = rag_strndup(prefix, strlen(prefix))))) {
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
		goto out;
	}
	out->k = jk ? (int)json_integer_value(jk) : 5;
	out->retriever = ret;
	out->trace_full = jt && strcmp(json_string_value(jt), "full") == 0;
	out->explain = je && json_is_true(je);
out:
	json_decref(j);
	if (rc)
		qrequest_release(out);
	return rc;
}

void qrequest_release(qrequest *r)
{
	free(r->text);
	free(r->filter.prefix);
	memset(r, 0, sizeof(*r));
}
