#include "rag_buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rag_buf_init(rag_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void rag_buf_release(rag_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void rag_buf_reset(rag_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

rag_rc rag_buf_reserve(rag_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return RAG_ETOOBIG;
	need = b->len + extra + 1; /* room for the terminator */
	if (need <= b->cap)
		return RAG_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return RAG_ENOMEM;
	b->data = p;
	b->cap = cap;
	return RAG_OK;
}

rag_rc rag_buf_append(rag_buf *b, const void *p, size_t n)
{
	rag_rc rc = rag_buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return RAG_OK;
}

rag_rc rag_buf_puts(rag_buf *b, const char *s)
{
	return rag_buf_append(b, s, strlen(s));
}

rag_rc rag_buf_putc(rag_buf *b, char c)
{
	return rag_buf_append(b, &c, 1);
}

rag_rc rag_buf_printf(rag_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	rag_rc rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return RAG_EINVAL;
	if ((rc = rag_buf_reserve(b, (size_t)n)))
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return RAG_OK;
}

char *rag_buf_detach(rag_buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

rag_rc rag_buf_read_file(rag_buf *b, const char *path, rag_error *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t got;
	rag_rc rc = RAG_OK;

	if (!f)
		return rag_error_set(err, errno == ENOENT ? RAG_ENOTFOUND : RAG_EIO,
				     "cannot open \"%s\": %s", path, strerror(errno));
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if ((rc = rag_buf_append(b, chunk, got))) {
			rag_error_set(err, rc, "\"%s\": %s", path,
				      rc == RAG_ETOOBIG ? "file larger than the limit" : "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = rag_error_set(err, RAG_EIO, "cannot read \"%s\"", path);
out:
	fclose(f);
	return rc;
}
