#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer and run each one for a
# bounded time: first over its crash regressions (tests/fuzz/regress/<t>/),
# then fuzzing from its committed seeds (tests/fuzz/corpus/<t>/, never
# written to; new inputs go to the build tree). Prints executions and time
# per target; exits 1 if any target crashed, leaked or broke an invariant.
#
#   tests/fuzz/run.sh [TARGET...]       default: every fuzz_*.c
#   RAGMAP_FUZZ_SECONDS=20              fuzzing time per target
#   RAGMAP_FUZZ_JOBS=2                  targets fuzzed at once
#   RAGMAP_FUZZ_BUILD=<top>/build-fuzz  the clang build tree
#   RAGMAP_FUZZ_ARGS="-max_len=65536"   more libFuzzer flags, for every target
#
# A crash leaves its input in $RAGMAP_FUZZ_BUILD/fuzz-artifacts/<target>/:
# fix the bug, then copy the input to tests/fuzz/regress/<target>/ so every
# build replays it (ctest fuzz.replay.<target>) and this script too.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=$top/tests/fuzz
build=${RAGMAP_FUZZ_BUILD:-$top/build-fuzz}
secs=${RAGMAP_FUZZ_SECONDS:-20}
jobs=${RAGMAP_FUZZ_JOBS:-2}

command -v clang >/dev/null || { echo "fuzz: clang is required (scripts/setup.sh installs it)" >&2; exit 1; }
if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$fuzz"/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

t0=$(date +%s)
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DRAGMAP_FUZZ=ON -DRAGMAP_SANITIZE=ON \
	-DRAGMAP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
	-DFAISS_C_DIR="${FAISS_C_DIR:-$top/build/faiss_c}" >"$build.cmake.log" 2>&1 ||
	{ cat "$build.cmake.log"; exit 1; }
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" >"$build.build.log" 2>&1 ||
	{ grep -E "error|Error" "$build.build.log" | head -40; exit 1; }
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - t0)) s; fuzzing each for $secs s, $jobs at a time"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# one TARGET: replay the regressions, then fuzz; a summary line on stdout
one() {
	local t=$1 bin=$build/tests/$1 out=$build/fuzz-out/$1 opts=() regress=()
	rm -rf "$out"
	mkdir -p "$out/corpus" "$build/fuzz-artifacts/$t"
	case "$t" in
	fuzz_parse_pdf) opts+=(-max_len=4096) ;; # poppler is slow on large inputs
	fuzz_config) opts+=(-max_len=2048) ;;
	esac
	if [ -d "$fuzz/regress/$t" ]; then
		for f in "$fuzz/regress/$t"/*; do [ -f "$f" ] && regress+=("$f"); done
	fi
	if [ ${#regress[@]} -gt 0 ] &&
		! "$bin" "${regress[@]}" >"$out/regress.log" 2>&1; then
		echo "FAIL $t: a regression input fails again (log: $out/regress.log)"
		tail -30 "$out/regress.log" | sed 's/^/     | /'
		return 1
	fi
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$t/" "${opts[@]}" ${RAGMAP_FUZZ_ARGS:-} \
		"$out/corpus" "$fuzz/corpus/$t" >"$out/fuzz.log" 2>&1; then
		echo "FAIL $t: see $out/fuzz.log; the input is in $build/fuzz-artifacts/$t/"
		grep -E "ERROR|SUMMARY|invariant|runtime error" "$out/fuzz.log" | head -10 | sed 's/^/     | /'
		return 1
	fi
	local execs rate cov corpus
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/fuzz.log")
	cov=$(grep -o 'cov: [0-9]*' "$out/fuzz.log" | tail -1 | sed 's/cov: //')
	corpus=$(find "$out/corpus" -type f | wc -l)
	printf 'ok   %-16s %9s execs in %s s (%s/s), coverage %s, %s new inputs, %s regressions replayed\n' \
		"$t" "${execs:-?}" "$secs" "${rate:-?}" "${cov:-?}" "$corpus" "${#regress[@]}"
}
export -f one
export build fuzz secs

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {} >"$build.results" || true
sort "$build.results"
failed=$(grep -c '^FAIL' "$build.results" || true)
passed=$(grep -c '^ok' "$build.results" || true)
echo "fuzz: $passed passed, $failed failed (of ${#targets[@]}) in $(($(date +%s) - t0)) s"
[ "$failed" = 0 ] && [ "$passed" = "${#targets[@]}" ]
