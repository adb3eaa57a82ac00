/*
 * rag_buf — a growable byte buffer with a mandatory size cap.
 *
 * Every download, request body and parsed document is held in one of these;
 * growing past the cap fails with RAG_ETOOBIG instead of exhausting memory.
 * The data is always NUL-terminated (the terminator is not counted in len),
 * so text can be handed to C string functions directly.
 */
#ifndef RAG_BUF_H
#define RAG_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "rag_err.h"

typedef struct rag_buf {
	char *data;  /* NULL until the first append; owned */
	size_t len;  /* bytes in use */
	size_t cap;  /* bytes allocated */
	size_t max;  /* len may never exceed this */
} rag_buf;

/* Initialise an empty buffer that may hold at most max bytes. */
void rag_buf_init(rag_buf *b, size_t max);

/* Free the memory; the buffer is empty (and reusable) afterwards. */
void rag_buf_release(rag_buf *b);

/* Forget the contents but keep the allocation. */
void rag_buf_reset(rag_buf *b);

/* Make room for extra more bytes. RAG_ETOOBIG past max, RAG_ENOMEM. */
rag_rc rag_buf_reserve(rag_buf *b, size_t extra);

rag_rc rag_buf_append(rag_buf *b, const void *p, size_t n);
rag_rc rag_buf_puts(rag_buf *b, const char *s);
rag_rc rag_buf_putc(rag_buf *b, char c);
rag_rc rag_buf_printf(rag_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Append the whole file at path. RAG_ENOTFOUND when it does not exist,
 * RAG_EIO when it cannot be read, RAG_ETOOBIG past the cap; the message
 * names the file.
 */
rag_rc rag_buf_read_file(rag_buf *b, const char *path, rag_error *err);

/* Hand the data to the caller (who frees it) and reset the buffer. */
char *rag_buf_detach(rag_buf *b, size_t *len);

#endif
