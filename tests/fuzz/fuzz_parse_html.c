/* parse_document on "site/page.html": the html path of parse.c (see fuzz_parse.h). */
#include "fuzz_parse.h"

FUZZ_PARSE_TARGET("site/page.html")
