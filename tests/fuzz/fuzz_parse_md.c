/* parse_document on "notes/readme.md": the md path of parse.c (see fuzz_parse.h). */
#include "fuzz_parse.h"

FUZZ_PARSE_TARGET("notes/readme.md")
