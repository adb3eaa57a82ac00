#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a warm one:
# set-up, a -Werror build and ctest, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/test.sh            everything
#   scripts/test.sh --fast     skip the sanitizer pass
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/scripts/setup.sh"

jobs=$(nproc 2>/dev/null || echo 2)
run_suite() {
	local dir=$1
	shift
	cmake -S "$top" -B "$dir" -DRAGMAP_WERROR=ON -DFAISS_C_DIR="$top/build/faiss_c" "$@" >/dev/null
	cmake --build "$dir" -j "$jobs"
	(cd "$dir" && ctest --output-on-failure -j 2 --timeout 900)
}

echo "== build and test (RelWithDebInfo, -Werror)"
run_suite "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo

if [ "${1:-}" != "--fast" ]; then
	echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	# ASan keeps freed memory in quarantine (256 MB by default): the load
	# test's bound on resident-memory growth has to allow for it
	export RAGMAP_TEST_LOAD_RSS_MB=${RAGMAP_TEST_LOAD_RSS_MB:-512}
	if [ -f "$top/tests/lsan.supp" ]; then
		export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
	fi
	run_suite "$top/build-asan" -DCMAKE_BUILD_TYPE=Debug -DRAGMAP_SANITIZE=ON
fi
echo "== all tests passed"
