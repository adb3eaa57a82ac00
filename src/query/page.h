/*
 * page — the live storage map page served at GET / (src/query/page/index.html,
 * compiled in by src/query/page/gen.sh as page.c).
 *
 * The page is static: it holds no data and no secret. It draws the RAG
 * pipeline as an inline SVG and fills in the figures from GET /v1/map every
 * two seconds; its query box calls POST /v1/query. Both need the bearer
 * token when one is configured; the page takes it from its address
 * (#token=...) and sends it as an Authorization header. It loads nothing
 * else: no external asset, font or script.
 */
#ifndef PAGE_H
#define PAGE_H

#include <stddef.h>

/* The page (UTF-8 HTML). Static storage; never freed. */
const char *page_html(void);

/* Its length in bytes (without a terminating NUL). */
size_t page_html_len(void);

#endif
