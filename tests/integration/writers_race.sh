#!/usr/bin/env bash
# Two unsharded writers racing on the same changes (issue 11): nothing lost,
# nothing twice.
#
# Round 1 uploads 300 documents; rounds 2-4 change, delete and add some.
# Every round starts two `ragmap ingest` at the same instant on the same
# index ("race"), each with its own local directory (the local catalog is
# per writer), committing every few documents: they list the same changes
# and race for every version number, so the loser of each race rebases its
# batch onto the winner's version (where it finds the same objects at the
# same ETags already indexed). After each round:
#  - both writers exited 0;
#  - `verify --source` passes on "race": every source object indexed exactly
#    once at its current ETag, nothing extra;
#  - `status` counts no skipped, rejected or failed object in either index
#    (verify --source excuses those, and the generated corpus has none: an
#    object wrongly settled as "empty document" would be a silent loss);
#  - `verify --digest` (and the live counts) equals that of index "clean",
#    built by one writer alone over the same rounds;
#  - the lost races the writers reported (their summary lines) are counted.
# At the end at least one race must have been lost, else the writers never
# collided and the test did not test what it is for.
#
# RAGMAP_RACE_SEED (default 1) makes the corpus and the changes repeatable.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
seed=${RAGMAP_RACE_SEED:-1}
RANDOM=$seed
echo "writers race: seed $seed"
export RAGMAP_INGEST_BATCH_DOCS=5 RAGMAP_INGEST_COMMIT_EVERY=10 RAGMAP_INDEX_MAX_SEGMENTS=4 \
	RAGMAP_INDEX_SEGMENT_CHUNKS=200 RAGMAP_INDEX_GC_GRACE_S=3600 RAGMAP_LOG=warn
race=(env RAGMAP_INDEX_NAME="$idx-race" RAGMAP_MODEL_PREFIX="models-$ns-race/")
w1=("${race[@]}" RAGMAP_LOCAL_DIR="$work/w1")
w2=("${race[@]}" RAGMAP_LOCAL_DIR="$work/w2")
clean=(env RAGMAP_INDEX_NAME="$idx-clean" RAGMAP_MODEL_PREFIX="models-$ns-clean/"
	RAGMAP_LOCAL_DIR="$work/clean")

ndocs=360 # 300 uploaded in round 1, the rest arrive later
"$top/bench/gen-corpus.sh" "$work/A" "$ndocs" "$seed" 1500 >/dev/null
"$top/bench/gen-corpus.sh" "$work/B" "$ndocs" "$((seed + 1000))" 1500 >/dev/null
(cd "$work/A" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/names"
mapfile -t names <"$work/names"
[ "${#names[@]}" = "$ndocs" ] || { bad "generated ${#names[@]} documents, want $ndocs"; finish; exit; }
# put_doc, rm_doc and state[] (per document: "" absent, A or B): common.sh

# round 1: the first 300 documents; later rounds: 15 changes, 10 deletions,
# 10 additions (never seen documents first, then deleted ones coming back)
apply_round() {
	local i k n=$1 changed=0 deleted=0 added=0
	if [ "$n" = 1 ]; then
		mkdir -p "$work/stage"
		for ((i = 0; i < 300; i++)); do
			mkdir -p "$work/stage/$(dirname "${names[i]}")"
			cp "$work/A/${names[i]}" "$work/stage/${names[i]}"
			state[i]=A
		done
		"$bin" s3 put "$work/stage" "$src" >/dev/null || bad "round 1 upload"
		echo "round 1: 300 documents uploaded"
		return
	fi
	while [ "$changed" -lt 15 ]; do
		i=$((RANDOM % ndocs))
		[ -n "${state[i]:-}" ] || continue
		put_doc "$i" "$([ "${state[i]}" = A ] && echo B || echo A)"
		changed=$((changed + 1))
	done
	while [ "$deleted" -lt 10 ]; do
		i=$((RANDOM % ndocs))
		[ -n "${state[i]:-}" ] || continue
		rm_doc "$i"
		deleted=$((deleted + 1))
	done
	while [ "$added" -lt 10 ]; do
		i=$((RANDOM % ndocs))
		[ -z "${state[i]:-}" ] || continue
		put_doc "$i" A
		added=$((added + 1))
	done
	echo "round $n: 15 changed, 10 deleted, 10 added"
}

# summary_field FILE: "COMMITS LOST" from a writer's summary line ("0 0"
# when it had nothing to commit)
summary_field() {
	local line
	line=$(sed -n 's/^committed version [0-9]*: \([0-9]*\) versions this pass (\([0-9]*\) lost to other writers and rebased).*/\1 \2/p' "$1")
	if [ -n "$line" ]; then echo "$line"
	elif grep -q '^nothing to commit' "$1"; then echo "0 0"
	else echo "? ?"; fi
}

# The state to compare: the digest and live counts of verify, the live
# documents and chunks of status. Not versions, segments or tombstones.
state_of() { # state_of OUT ENV...
	local out=$1
	shift
	"$@" "$bin" verify --digest >"$work/st.v" 2>&1 || { cat "$work/st.v"; return 1; }
	grep -E '^(live:|digest )' "$work/st.v" >"$out"
	grep -q '^digest [0-9a-f]\{64\}$' "$out" || { echo "no digest"; cat "$work/st.v"; return 1; }
}

lost_total=0
commits_total=0
t_start=$(date +%s)
for round in 1 2 3 4; do
	apply_round "$round"
	# the two writers, started together
	"${w1[@]}" "$bin" ingest >"$work/w1.out" 2>"$work/w1.err" &
	p1=$!
	"${w2[@]}" "$bin" ingest >"$work/w2.out" 2>"$work/w2.err" &
	p2=$!
	wait "$p1"
	rc1=$?
	wait "$p2"
	rc2=$?
	for w in 1 2; do
		rc=$([ "$w" = 1 ] && echo "$rc1" || echo "$rc2")
		if [ "$rc" = 0 ]; then
			ok "round $round: writer $w exited 0"
		else
			bad "round $round: writer $w exited $rc"
			sed 's/^/     | /' "$work/w$w.out" "$work/w$w.err" | tail -15
		fi
	done
	read -r c1 l1 < <(summary_field "$work/w1.out")
	read -r c2 l2 < <(summary_field "$work/w2.out")
	echo "round $round: writer 1 committed $c1 versions ($l1 lost races), writer 2 $c2 ($l2 lost)"
	if [[ "$c1$l1$c2$l2" =~ ^[0-9]+$ ]]; then
		lost_total=$((lost_total + l1 + l2))
		commits_total=$((commits_total + c1 + c2))
	else
		bad "round $round: a writer printed no summary line"
	fi

	# the single writer's clean index over the same source
	if "${clean[@]}" "$bin" ingest -q >"$work/clean.log" 2>&1; then
		ok "round $round: clean ingest"
	else
		bad "round $round: clean ingest failed"
		sed 's/^/     | /' "$work/clean.log" | tail -10
	fi

	if "${race[@]}" "$bin" verify --source >"$work/vs.out" 2>&1; then
		ok "round $round: verify --source (nothing lost, nothing twice)"
	else
		bad "round $round: verify --source on the raced index"
		sed 's/^/     | /' "$work/vs.out" | tail -20
	fi
	# verify --source excuses objects the catalog calls skipped, rejected or
	# failed; the generated corpus has none, so any is a lost document
	for which in race clean; do
		if [ "$which" = race ]; then envs=("${race[@]}"); else envs=("${clean[@]}"); fi
		"${envs[@]}" "$bin" status >"$work/status.out" 2>&1 || bad "round $round: $which status"
		objects=$(grep '^objects:' "$work/status.out")
		if [[ "$objects" =~ \ 0\ skipped,\ 0\ rejected,\ 0\ failed, ]]; then
			ok "round $round: $which: every source object indexed (none skipped or failed)"
		else
			bad "round $round: $which index: ${objects:-no objects line}"
			[ "$which" = race ] && cat=$work/local/$idx-race/catalog.sqlite ||
				cat=$work/clean/$idx-clean/catalog.sqlite
			sqlite3 -readonly "$cat" "SELECT status, error FROM objects
				WHERE status IN ('skipped', 'rejected', 'failed') LIMIT 3" 2>&1 | sed 's/^/     | /'
		fi
	done
	if state_of "$work/clean.st" "${clean[@]}" && state_of "$work/race.st" "${race[@]}"; then
		if cmp -s "$work/clean.st" "$work/race.st"; then
			ok "round $round: same digest and live counts as the clean single writer"
		else
			bad "round $round: the raced index differs from the clean single writer"
			diff "$work/clean.st" "$work/race.st" | sed 's/^/     | /'
		fi
	else
		bad "round $round: verify --digest failed"
	fi
done
echo "$commits_total versions committed by the two writers, $lost_total lost races," \
	"in $(($(date +%s) - t_start)) s"
[ "$lost_total" -ge 1 ] && ok "the writers collided ($lost_total lost races)" ||
	bad "no lost race in 4 rounds: the writers never collided"
sed 's/^/     | /' "$work/race.st"
finish
