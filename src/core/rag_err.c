#include "rag_err.h"

#include <stdio.h>
#include <string.h>

/* rag_util's rag_strlcpy, restated: rag_err depends on nothing. */
static void rag_strlcpy_tail(char *dst, const char *src, size_t len)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

const char *rag_rc_name(rag_rc rc)
{
	switch (rc) {
#define RAG_X(name, num, msg) \
	case RAG_E##name:     \
		return #name;
		RAG_ERR_LIST(RAG_X)
#undef RAG_X
	}
	return "UNKNOWN";
}

const char *rag_rc_message(rag_rc rc)
{
	switch (rc) {
#define RAG_X(name, num, msg) \
	case RAG_E##name:     \
		return msg;
		RAG_ERR_LIST(RAG_X)
#undef RAG_X
	}
	return "unknown error";
}

bool rag_rc_transient(rag_rc rc)
{
	return rc == RAG_ENET || rc == RAG_ETIMEOUT;
}

rag_rc rag_error_vset(rag_error *err, rag_rc rc, const char *fmt, va_list ap)
{
	if (!err)
		return rc;
	err->rc = rc;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return rc;
}

rag_rc rag_error_set(rag_error *err, rag_rc rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rag_error_vset(err, rc, fmt, ap);
	va_end(ap);
	return rc;
}

void rag_error_prefix(rag_error *err, const char *fmt, ...)
{
	char prefix[256], old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* truncation is fine here: the message is for people, the code says it */
	memcpy(old, err->msg, sizeof(old));
	size_t n = strlen(prefix);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	rag_strlcpy_tail(err->msg + n + 2, old, sizeof(err->msg) - n - 2);
}

void rag_error_clear(rag_error *err)
{
	if (!err)
		return;
	err->rc = RAG_OK;
	err->msg[0] = '\0';
}
