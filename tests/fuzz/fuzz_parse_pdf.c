/* parse_document on "papers/paper.pdf": the pdf path of parse.c (see fuzz_parse.h). */
#include "fuzz_parse.h"

FUZZ_PARSE_TARGET("papers/paper.pdf")
