#!/usr/bin/env bash
# Crash safety: `ragmap ingest` and `ragmap daemon`, killed with SIGKILL at
# random instants and restarted, converge to exactly the state of an
# uninterrupted run.
#
# One source prefix changes in waves (add 150 documents, add 150 more,
# then rounds of changes, deletions and re-additions). After each wave an
# uninterrupted run ingests it into index "clean"; then, into index
# "crash", runs (every other one the daemon) are started and SIGKILLed
# after a random delay in [0, the clean run's duration) until an ingest run
# finishes by itself, and one last run completes the wave. After every kill `ragmap verify` must pass (no
# manifest naming a missing or broken object); after every wave both
# indexes must have the same digest (documents, chunk
# texts, vectors) and the same catalog counts.
#
# Small batches and segments make a run long enough to be killed anywhere,
# with several segments, compaction and garbage collection in every commit.
#
# RAGMAP_CRASH_KILLS (default 50) kills at least; RAGMAP_CRASH_SEED (default
# 1) makes the kill delays and the waves repeatable.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
kills_wanted=${RAGMAP_CRASH_KILLS:-50}
seed=${RAGMAP_CRASH_SEED:-1}
RANDOM=$seed
echo "crash test: seed $seed, at least $kills_wanted kills"
export RAGMAP_INGEST_BATCH_DOCS=8 RAGMAP_INGEST_COMMIT_EVERY=40 RAGMAP_INDEX_SEGMENT_CHUNKS=100 RAGMAP_INDEX_MAX_SEGMENTS=3 \
	RAGMAP_INDEX_GC_GRACE_S=0 RAGMAP_LOG=warn
clean=(env RAGMAP_INDEX_NAME="$idx-clean" RAGMAP_MODEL_PREFIX="models-$ns-clean/")
crash=(env RAGMAP_INDEX_NAME="$idx-crash" RAGMAP_MODEL_PREFIX="models-$ns-crash/")

ndocs=300
"$top/bench/gen-corpus.sh" "$work/A" "$ndocs" "$seed" 2000 >/dev/null
"$top/bench/gen-corpus.sh" "$work/B" "$ndocs" "$((seed + 1000))" 2000 >/dev/null
(cd "$work/A" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/names"
mapfile -t names <"$work/names"
# put_doc, rm_doc and state[] (per document: "" absent, A or B): common.sh

apply_wave() { # apply_wave N
	local i k n=$1
	if [ "$n" -le 2 ]; then
		rm -rf "$work/stage" && mkdir -p "$work/stage"
		for ((i = (n - 1) * ndocs / 2; i < n * ndocs / 2; i++)); do
			mkdir -p "$work/stage/$(dirname "${names[i]}")"
			cp "$work/A/${names[i]}" "$work/stage/${names[i]}"
			state[i]=A
		done
		"$bin" s3 put "$work/stage" "$src" >/dev/null || bad "wave $n upload"
		return
	fi
	for ((k = 0; k < 12; k++)); do # change
		i=$((RANDOM % ndocs))
		[ -n "${state[i]}" ] && put_doc "$i" "$([ "${state[i]}" = A ] && echo B || echo A)"
	done
	for ((k = 0; k < 8; k++)); do # delete
		i=$((RANDOM % ndocs))
		[ -n "${state[i]}" ] && rm_doc "$i"
	done
	for ((k = 0; k < 6; k++)); do # come back
		i=$((RANDOM % ndocs))
		[ -z "${state[i]}" ] && put_doc "$i" A
	done
}

# The state to compare: digest, live counts, catalog outcomes. Not version
# numbers (a pass commits every few documents, so a killed run leaves more
# versions) nor tombstoned counts (compaction purges at other moments).
summary() {
	"${@}" "$bin" verify --digest >"$work/sum.v" 2>&1 || { cat "$work/sum.v"; return 1; }
	"${@}" "$bin" status >"$work/sum.s" 2>&1 || { cat "$work/sum.s"; return 1; }
	grep -E '^(live:|digest)' "$work/sum.v"
	grep -E '^(objects|chunks)' "$work/sum.s"
	sed -n 's/^documents: *\([0-9]* live\).*/documents: \1/p' "$work/sum.s"
}

kills=0
wave=0
attempt=0
daemon_attempts=0
t_start=$(date +%s)
while [ "$kills" -lt "$kills_wanted" ] || [ "$wave" -lt 3 ]; do
	wave=$((wave + 1))
	[ "$wave" -le $((12 + kills_wanted / 3)) ] || { bad "only $kills kills in $((wave - 1)) waves"; break; }
	apply_wave "$wave"

	t0=$(date +%s%N)
	"${clean[@]}" "$bin" ingest -q >"$work/clean.log" 2>&1 || { bad "wave $wave: clean run failed"; cat "$work/clean.log"; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -ge 50 ] || ms=50

	wave_kills=0
	while :; do
		delay=$((RANDOM * 32768 + RANDOM))
		delay=$((delay % ms))
		# every other attempt kills the daemon instead (it never ends by
		# itself: the ingest attempts in between let the wave finish). Its
		# automatic refit is off: a pass is then exactly an ingest run, which
		# is what the clean index is built with
		if [ $((attempt++ % 2)) = 1 ]; then
			"${crash[@]}" RAGMAP_INGEST_POLL_S=1 RAGMAP_INGEST_REFIT_GROWTH=0 "$bin" daemon \
				>"$work/crash.log" 2>&1 &
			daemon_attempts=$((daemon_attempts + 1))
		else
			"${crash[@]}" "$bin" ingest -q >"$work/crash.log" 2>&1 &
		fi
		pid=$!
		sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
		kill -9 "$pid" 2>/dev/null
		{ wait "$pid"; } 2>/dev/null # no "Killed" job message
		rc=$?
		if [ "$rc" = 0 ]; then
			break # finished before the kill: the wave is in
		elif [ "$rc" != 137 ]; then
			bad "wave $wave: a run after a kill failed (exit $rc)"
			sed 's/^/     | /' "$work/crash.log" | tail -5
			break
		fi
		kills=$((kills + 1))
		wave_kills=$((wave_kills + 1))
		if ! "${crash[@]}" "$bin" verify >"$work/verify.log" 2>&1; then
			bad "wave $wave: verify after a kill at ${delay} ms"
			sed 's/^/     | /' "$work/verify.log" | tail -8
		fi
	done
	"${crash[@]}" "$bin" ingest -q >"$work/crash.log" 2>&1 || { bad "wave $wave: completing run failed"; cat "$work/crash.log"; }
	summary "${clean[@]}" >"$work/clean.sum" || bad "wave $wave: clean summary"
	summary "${crash[@]}" >"$work/crash.sum" || bad "wave $wave: crash summary"
	if cmp -s "$work/clean.sum" "$work/crash.sum" && grep -q '^digest ' "$work/clean.sum"; then
		ok "wave $wave: $wave_kills kills (clean run ${ms} ms), same state as the clean run"
	else
		bad "wave $wave: after $wave_kills kills the state differs from the clean run"
		diff "$work/clean.sum" "$work/crash.sum" | sed 's/^/     | /'
	fi
done
echo "$kills kills ($daemon_attempts of the daemon) over $wave waves in $(($(date +%s) - t_start)) s"
[ "$daemon_attempts" -ge 10 ] && ok "daemon killed too ($daemon_attempts)" || bad "daemon kills: $daemon_attempts"
[ "$kills" -ge "$kills_wanted" ] && ok "kills ($kills)" || bad "only $kills kills"
sed 's/^/     | /' "$work/crash.sum"
finish
