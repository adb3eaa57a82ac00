/*
 * rag_util — small helpers every module needs: clocks, checked number
 * parsing, human-readable sizes.
 */
#ifndef RAG_UTIL_H
#define RAG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in nanoseconds / milliseconds (for durations only). */
uint64_t rag_now_ns(void);
double rag_ms_since(uint64_t start_ns);

/* Wall clock in seconds since the epoch (for timestamps in objects). */
int64_t rag_wall_time(void);

/* Sleep for ms milliseconds (restarts on EINTR unless *stop becomes true). */
void rag_sleep_ms(unsigned ms);

/*
 * Parse a whole string as a signed 64-bit integer / a size with an optional
 * unit (B, K, KB, KiB, M, MB, MiB, G, GB, GiB; all binary). False if the
 * string is empty, has trailing junk or overflows.
 */
bool rag_parse_i64(const char *s, int64_t *out);
bool rag_parse_size(const char *s, uint64_t *out);
bool rag_parse_bool(const char *s, bool *out);
/* A whole string that is a finite number (strtod). */
bool rag_parse_double(const char *s, double *out);

/* "12.4 KiB" into buf (at least 16 bytes); returns buf. */
const char *rag_fmt_bytes(uint64_t n, char *buf, size_t len);

/* Copy at most len-1 bytes of src into dst and terminate it. */
void rag_strlcpy(char *dst, const char *src, size_t len);

/* A copy of s, or NULL when out of memory. rag_strndup copies n bytes. */
char *rag_strdup(const char *s);
char *rag_strndup(const char *s, size_t n);

/* True when s is valid UTF-8 (len bytes). */
bool rag_utf8_valid(const char *s, size_t len);

/*
 * Grow an array to hold at least need elements of size elem, doubling its
 * capacity *cap. Returns the (possibly moved) array, or NULL when out of
 * memory (the old array is then untouched). Use: p = rag_grow(a, &cap, n + 1,
 * sizeof(*a)); if (!p) fail; a = p;
 */
void *rag_grow(void *array, size_t *cap, size_t need, size_t elem);

/* Random 64-bit value from a per-thread xorshift state seeded by time. */
uint64_t rag_rand64(void);

/* 64-bit FNV-1a of n bytes, continuing from h (start with RAG_FNV_INIT). */
#define RAG_FNV_INIT 0xcbf29ce484222325ULL
uint64_t rag_fnv1a(uint64_t h, const void *p, size_t n);

#endif
