/*
 * rag_err — the one error type of ragmap.
 *
 * Every fallible function returns a rag_rc. Details (which object, which
 * field, what the dependency said) go into a caller-provided rag_error, never
 * to stderr: only the CLI prints.
 *
 * The codes are generated from RAG_ERR_LIST so the enum, the names and the
 * default messages cannot drift apart. Numbers are stable: append only.
 */
#ifndef RAG_ERR_H
#define RAG_ERR_H

#include <stdarg.h>
#include <stdbool.h>

/*  X(name, number, message) */
#define RAG_ERR_LIST(X)                                                        \
	X(OK, 0, "success")                                                    \
	X(NOMEM, 1, "out of memory")                                           \
	X(INVAL, 2, "invalid argument")      /* caller or user input */        \
	X(CONFIG, 3, "configuration error")  /* bad key or value */            \
	X(IO, 4, "I/O error")                /* local files */                 \
	X(NET, 5, "network error")           /* transient: connect, reset */   \
	X(TIMEOUT, 6, "timed out")           /* transient */                   \
	X(NOTFOUND, 7, "not found")          /* NoSuchKey, NoSuchBucket */     \
	X(ACCESS, 8, "access denied")        /* AccessDenied */                \
	X(AUTH, 9, "authentication failed")  /* bad key id or signature */     \
	X(STORAGE, 10, "storage error")      /* other S3 errors */             \
	X(CORRUPT, 11, "corrupt data")       /* short body, checksum, format */\
	X(TOOBIG, 12, "size limit exceeded") /* a bounded buffer is full */    \
	X(PARSE, 13, "parse error")          /* XML, JSON, document formats */ \
	X(UNSUPPORTED, 14, "unsupported")                                      \
	X(CONFLICT, 15, "conflict")          /* precondition, changed object */\
	X(INTERNAL, 16, "internal error")    /* a dependency failed oddly */   \
	X(CANCELED, 17, "canceled")

typedef enum {
#define RAG_X(name, num, msg) RAG_E##name = num,
	RAG_ERR_LIST(RAG_X)
#undef RAG_X
} rag_rc;

#define RAG_OK RAG_EOK

/* A result code plus a message that names the object in quotes. */
typedef struct rag_error {
	rag_rc rc;
	char msg[512];
} rag_error;

/* "NOTFOUND" for RAG_ENOTFOUND; "UNKNOWN" for a number not in the list. */
const char *rag_rc_name(rag_rc rc);

/* The default message for a code ("not found"). */
const char *rag_rc_message(rag_rc rc);

/* True for codes a retry may cure (network errors, timeouts). */
bool rag_rc_transient(rag_rc rc);

/*
 * Set err (if not NULL) to rc and a printf-style message; returns rc so
 * callers can write `return rag_error_set(err, RAG_EIO, "...")`.
 */
rag_rc rag_error_set(rag_error *err, rag_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
rag_rc rag_error_vset(rag_error *err, rag_rc rc, const char *fmt, va_list ap);

/* Prefix an existing message with context: "<prefix>: <old message>". */
void rag_error_prefix(rag_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reset to RAG_OK with an empty message. */
void rag_error_clear(rag_error *err);

#endif
