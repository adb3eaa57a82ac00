/*
 * fuzz_common.h — shared by the libFuzzer targets in this directory.
 *
 * Each target defines LLVMFuzzerTestOneInput and checks, beyond "no crash,
 * no leak, no undefined behaviour", the invariants the module's header
 * promises; a broken invariant aborts, so the fuzzer keeps the input.
 *
 * The same sources build two ways (tests/CMakeLists.txt):
 *  - with clang -fsanitize=fuzzer (RAGMAP_FUZZ=ON), run by tests/fuzz/run.sh;
 *  - with any compiler and replay_main.c, as "fuzz.replay.<target>" ctest
 *    tests that run every committed seed and regression input once.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,     \
				__LINE__, #cond);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

/* A NUL-terminated copy (for the few functions that want a C string). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		if (size)
			memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
