/* parse_document on "docs/notes.txt": the text path of parse.c (see fuzz_parse.h). */
#include "fuzz_parse.h"

FUZZ_PARSE_TARGET("docs/notes.txt")
