#!/usr/bin/env bash
# Many concurrent writers under random SIGKILLs (issue 11).
#
# On one index over 2,000 small documents, at the same time:
#  - 4 `ragmap daemon` processes (RAGMAP_INGEST_POLL_S=1, each with its own
#    local directory), restarted whenever they die;
#  - a loop of `ragmap compact` runs and a loop of `ragmap gc` runs with a
#    grace period of RAGMAP_CHAOS_GRACE_S (default 2) seconds;
#  - this script, adding, changing and deleting documents in rounds, and
#    SIGKILLing one of the processes above at random (seeded) instants,
#    at least RAGMAP_CHAOS_KILLS (default 30) times;
#  - a reader looping over `ragmap verify`: every version it loads must be
#    complete (verify exits 0; a failure is excused only when the load took
#    longer than the gc grace period allows a reader of a superseded
#    version) and the newest version never goes back.
# Daemon passes and compact/gc runs may fail only on an object GC took from
# under them (they retry); any other failure (say a chunk id collision) fails.
# Then the mutations and kills stop, so do compact, gc and daemons d2-d4
# (SIGTERM: they finish their batch and commit, exit 0); d1 finishes the
# work (until `verify --source` passes) and stops; one more `ragmap ingest`
# with its local directory must find nothing to do. At the end
# `verify --source` passes and `verify --digest` (and the live counts) equal
# those of one writer's clean run over the final source (index "clean").
#
# The model is fitted on the first commit's batch (the first
# ingest.commit_every objects in key order): the first 100 documents are
# never touched, so every index fits the same model on the same texts and
# the digests (which cover the vectors) can be compared.
#
# Prints kills per process kind, versions committed, lost races, reader
# loads. RAGMAP_CHAOS_SEED (default 1) seeds mutations and kills;
# RAGMAP_CHAOS_KILLS the kills wanted.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
seed=${RAGMAP_CHAOS_SEED:-1}
kills_wanted=${RAGMAP_CHAOS_KILLS:-30}
grace=${RAGMAP_CHAOS_GRACE_S:-2}
RANDOM=$seed
echo "writers chaos: seed $seed, at least $kills_wanted kills, gc grace $grace s"
export RAGMAP_INGEST_BATCH_DOCS=25 RAGMAP_INGEST_COMMIT_EVERY=50 RAGMAP_INDEX_MAX_SEGMENTS=4 \
	RAGMAP_INGEST_REFIT_GROWTH=0 RAGMAP_INGEST_POLL_S=1 RAGMAP_LOG=warn
# every process of the index shares the grace period, as one config file
# would: writers re-upload a change older than half of it (commit.h, 6)
chaos=(env RAGMAP_INDEX_NAME="$idx" RAGMAP_MODEL_PREFIX="models-$ns/" RAGMAP_INDEX_GC_GRACE_S="$grace")
clean=(env RAGMAP_INDEX_NAME="$idx-clean" RAGMAP_MODEL_PREFIX="models-$ns-clean/"
	RAGMAP_LOCAL_DIR="$work/clean")
stop=$work/stop
anchors=100 # never changed nor deleted: the model's first batch (commit_every 50)

ndocs=2000
npool=2400 # the last 400 arrive during the run
"$top/bench/gen-corpus.sh" "$work/A" "$npool" "$seed" 700 >/dev/null
"$top/bench/gen-corpus.sh" "$work/B" "$npool" "$((seed + 1000))" 700 >/dev/null
(cd "$work/A" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$work/names"
mapfile -t names <"$work/names"
[ "${#names[@]}" = "$npool" ] || { bad "generated ${#names[@]} documents, want $npool"; finish; exit; }
declare -a state # per document: "" absent, A or B
mkdir -p "$work/stage"
for ((i = 0; i < ndocs; i++)); do
	mkdir -p "$work/stage/$(dirname "${names[i]}")"
	cp "$work/A/${names[i]}" "$work/stage/${names[i]}"
	state[i]=A
done
"$bin" s3 put "$work/stage" "$src" >/dev/null || { bad "upload"; finish; exit; }
echo "uploaded $ndocs documents"

# --- the processes under test. Each slot runs its process again and again
# (a daemon at once when it dies, compact and gc after a short pause) and
# keeps its current pid in $work/pid.<slot>. An exit that is neither 0 nor
# a SIGKILL (137) is kept in $work/bad.<slot>.<n>.
slot_loop() { # slot_loop SLOT PAUSE COMMAND...
	local slot=$1 pause=$2 n=0 pid rc
	shift 2
	while [ ! -e "$stop" ] && [ ! -e "$stop.$slot" ]; do
		n=$((n + 1))
		"$@" >"$work/out.$slot" 2>>"$work/log.$slot" &
		pid=$!
		echo "$pid" >"$work/pid.$slot"
		wait "$pid"
		rc=$?
		rm -f "$work/pid.$slot"
		cat "$work/out.$slot" >>"$work/stdout.$slot"
		echo "exit $rc" >>"$work/exits.$slot"
		if [ "$rc" != 0 ] && [ "$rc" != 137 ]; then
			{ echo "run $n of $slot: exit $rc"; tail -5 "$work/out.$slot"; tail -5 "$work/log.$slot"; } \
				>"$work/bad.$slot.$n"
		fi
		[ -e "$stop" ] || [ -e "$stop.$slot" ] || sleep "$pause"
	done
}
slots=(d1 d2 d3 d4 compact gc)
declare -A kind=([d1]=daemon [d2]=daemon [d3]=daemon [d4]=daemon [compact]=compact [gc]=gc)
declare -A sup
for d in d1 d2 d3 d4; do
	slot_loop "$d" 0.1 "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/$d" RAGMAP_LOG=info "$bin" daemon &
	sup[$d]=$!
done
slot_loop compact 0.3 "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/compact" RAGMAP_LOG=info \
	"$bin" compact &
sup[compact]=$!
slot_loop gc 0.3 "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/gc" RAGMAP_LOG=info \
	RAGMAP_INDEX_GC_GRACE_S="$grace" "$bin" gc &
sup[gc]=$!
stop_slot() { # stop_slot SLOT: no new run; a daemon gets SIGTERM (finish the batch, commit)
	local pid i live
	touch "$stop.$1"
	pid=$(cat "$work/pid.$1" 2>/dev/null)
	# a process restarted a moment ago may not have its handler yet (under
	# ASan start-up takes a while): SIGTERM waits until SigCgt has bit 15.
	# One just SIGKILLed (a zombie, or gone) gets none.
	live=0
	for ((i = 0; i < 100; i++)); do
		[ "${kind[$1]}" = daemon ] && [ -n "$pid" ] || break
		grep -q '^State:\s*[^Z]' "/proc/$pid/status" 2>/dev/null || break
		if (($(printf '%d' "0x$(sed -n 's/^SigCgt:\s*//p' "/proc/$pid/status")") & 0x4000)); then
			live=1
			break
		fi
		sleep 0.1
	done
	[ "$live" = 1 ] && kill -TERM "$pid" 2>/dev/null && echo "$1" >>"$work/sigtermed"
	wait "${sup[$1]}"
}

# --- the reader: one line per load, "rc version ms newest", newest 1 when
# the version it loaded was still the newest once it had failed (no
# manifest V+1 yet); a failed load's output is kept in $work/reader.fail.<n>
reader_loop() {
	local n=0 rc v t0 ms newest
	while [ ! -e "$stop" ]; do
		n=$((n + 1))
		t0=$(date +%s%N)
		"${chaos[@]}" RAGMAP_LOCAL_DIR="$work/reader" "$bin" verify >"$work/reader.out" 2>&1
		rc=$?
		ms=$((($(date +%s%N) - t0) / 1000000))
		v=$(sed -n 's/^index .* version \([0-9]*\) .*/\1/p' "$work/reader.out")
		newest=-
		if [ "$rc" != 0 ]; then
			cp "$work/reader.out" "$work/reader.fail.$n"
			newest=0
			[ -n "$v" ] && ! "$bin" s3 stat "${root}manifests/$(printf %010d $((v + 1))).json" \
				>/dev/null 2>&1 && newest=1
		fi
		echo "$rc ${v:-0} $ms $newest $n" >>"$work/reader.log"
		sleep 0.2
	done
}
reader_loop &
reader_pid=$!

kill_servers() { # at exit, whatever happened: stop every slot
	touch "$stop"
	for s in "${slots[@]}"; do
		[ -s "$work/pid.$s" ] && kill -9 "$(cat "$work/pid.$s")" 2>/dev/null
	done
	wait 2>/dev/null
}

# --- mutations (documents >= $anchors only): one upload of the changed and
# added documents and one delete per round
pick() { echo $((anchors + RANDOM % (npool - anchors))); }
mutations=0
mutate() { # 4 changes, 2 deletions, 3 additions
	local i k to_rm=()
	rm -rf "$work/round" && mkdir -p "$work/round"
	stage() { # stage I VERSION
		mkdir -p "$work/round/$(dirname "${names[$1]}")"
		cp "$work/$2/${names[$1]}" "$work/round/${names[$1]}"
		state[$1]=$2
	}
	for ((k = 0; k < 4; k++)); do
		i=$(pick)
		[ -n "${state[i]:-}" ] && [ ! -e "$work/round/${names[i]}" ] &&
			stage "$i" "$([ "${state[i]}" = A ] && echo B || echo A)"
	done
	for ((k = 0; k < 3; k++)); do
		i=$(pick)
		[ -z "${state[i]:-}" ] && stage "$i" "$([ $((RANDOM % 2)) = 0 ] && echo A || echo B)"
	done
	for ((k = 0; k < 2; k++)); do
		i=$(pick)
		[ -n "${state[i]:-}" ] && [ ! -e "$work/round/${names[i]}" ] && { to_rm+=("$src${names[i]}"); state[i]=""; }
	done
	"$bin" s3 put "$work/round" "$src" >/dev/null || bad "mutation round $mutations: upload"
	[ "${#to_rm[@]}" = 0 ] || "$bin" s3 rm "${to_rm[@]}" >/dev/null || bad "mutation round $mutations: rm"
	mutations=$((mutations + 1))
}

# --- kills: a random slot (4 in 6 a daemon); a slot with no live ragmap
# at that instant (compact or gc between runs) passes its turn on. Once
# enough kills are done, only the kinds not killed yet are aimed at (a short
# compact run can dodge every random pick: it did once in an ASan run).
declare -A kills_of=([daemon]=0 [compact]=0 [gc]=0)
kills=0
unkilled() { # the slots of the kinds no kill has hit yet
	local s
	for s in "${slots[@]}"; do
		[ "${kills_of[${kind[$s]}]}" = 0 ] && echo "$s"
	done
}
kill_one() {
	local s pid try pick=("${slots[@]}")
	[ "$kills" -ge "$kills_wanted" ] && mapfile -t pick < <(unkilled)
	[ "${#pick[@]}" -gt 0 ] || return 0
	for try in 1 2 3 4 5 6; do
		s=${pick[RANDOM % ${#pick[@]}]}
		pid=$(cat "$work/pid.$s" 2>/dev/null)
		if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ragmap ] &&
			kill -9 "$pid" 2>/dev/null; then
			kills=$((kills + 1))
			kills_of[${kind[$s]}]=$((kills_of[${kind[$s]}] + 1))
			return
		fi
		sleep 0.05
	done
}

nap() { # nap MIN_MS MAX_MS
	local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}

t_start=$(date +%s)
while [ "$kills" -lt "$kills_wanted" ] || [ "$mutations" -lt 12 ] || [ -n "$(unkilled)" ]; do
	if [ $(($(date +%s) - t_start)) -gt 150 ]; then
		bad "chaos phase: only $kills kills and $mutations mutation rounds in 150 s"
		break
	fi
	mutate
	for _ in 1 2 3; do
		nap 150 600
		kill_one
	done
done
t_chaos=$(($(date +%s) - t_start))
echo "chaos phase: $t_chaos s, $mutations mutation rounds, $kills kills" \
	"(daemon ${kills_of[daemon]}, compact ${kills_of[compact]}, gc ${kills_of[gc]})"

# --- settle: no more kills nor changes. Everything but daemon d1 stops
# (the other daemons on SIGTERM finish their batch and commit); d1 catches
# up with the source (until `verify --source` passes), then stops too.
sleep 1 # the last SIGKILL lands (an ASan process takes a while to die) before any SIGTERM
for s in d2 d3 d4 compact gc; do
	stop_slot "$s"
done
t0=$(date +%s)
caught_up=0
while [ $(($(date +%s) - t0)) -lt 120 ]; do
	if "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/check" "$bin" verify --source >"$work/settle.out" 2>&1; then
		caught_up=1
		break
	fi
	sleep 1
done
if [ "$caught_up" = 1 ]; then
	ok "daemon d1 caught up with the source in $(($(date +%s) - t0)) s"
else
	bad "daemon d1 did not catch up with the source in 120 s"
	sed 's/^/     | /' "$work/settle.out" | tail -12
fi
stop_slot d1
touch "$stop"
wait "$reader_pid"

# --- what the processes and the reader saw. A pass or run that failed on
# an object gone from the store (GC took what a slow process was about to
# read: a reader slower than the grace period) or that gave up against
# other writers is retried by design and only reported; any other failure
# is a bug.
benign='no such key|gave up after [0-9]+ attempts|vanished while read'
: >"$work/failures"
for s in "${slots[@]}"; do
	for f in "$work"/bad."$s".*; do
		[ -e "$f" ] && { head -1 "$f"; grep -m1 -E '^ragmap: |error ' "$f"; } | paste -sd' ' >>"$work/failures"
	done
done
cat "$work"/log.d? | sed -n 's/.*error pass failed (will retry): /daemon pass: /p' >>"$work/failures"
grep -vE "$benign" "$work/failures" >"$work/failures.bug"
if [ -s "$work/failures.bug" ]; then
	bad "$(wc -l <"$work/failures.bug") daemon passes or compact/gc runs failed"
	sort "$work/failures.bug" | uniq -c | sort -rn | head -8 | sed 's/^/     | /'
else
	ok "no daemon pass nor compact/gc run failed (other than on a vanished object: $(wc -l <"$work/failures"))"
fi
grep -E "$benign" "$work/failures" | head -4 | sed 's/^/note: /'
# a daemon stopped by SIGTERM (not one the last kill had just hit) exits 0
grep -qx d1 "$work/sigtermed" || bad "daemon d1 was not running at the end"
while read -r s; do
	last=$(tail -1 "$work/exits.$s" 2>/dev/null)
	[ "$last" = "exit 0" ] && ok "$s stopped cleanly on SIGTERM" || bad "$s: SIGTERM, then ${last:-no exit recorded}"
done <"$work/sigtermed"
# A failed load is ragmap's fault when it cannot be the reader's own
# slowness: GC keeps version V until V+1 is $grace s old (by Last-Modified,
# whole seconds: at least $grace - 1 s), so a load that took less than that,
# or a version still the newest after the failure, must have been complete.
# A slower failed load of a superseded version is only reported.
loads=$(wc -l <"$work/reader.log")
read -r vmin vmax < <(awk '$1 == 0 && $2 > 0 { if (!n++) lo = $2; hi = $2 } END { print lo + 0, hi + 0 }' "$work/reader.log")
awk -v g="$grace" '$1 != 0 && ($3 < (g - 1) * 1000 || $4 == 1)' "$work/reader.log" >"$work/reader.broken"
awk -v g="$grace" '$1 != 0 && !($3 < (g - 1) * 1000 || $4 == 1)' "$work/reader.log" >"$work/reader.slow"
complete=$(awk '$1 == 0' "$work/reader.log" | wc -l)
if [ "$complete" -ge 10 ] && [ ! -s "$work/reader.broken" ]; then
	ok "reader: $complete of $loads loads complete (versions $vmin..$vmax), no broken version"
else
	bad "reader: $(wc -l <"$work/reader.broken") of $loads loads found a broken version ($complete complete)"
	while read -r rc v ms newest n; do
		echo "     | version $v, load of $ms ms, $([ "$newest" = 1 ] && echo "still the newest" || echo "superseded") after the failure:"
		grep -E '^ragmap: ' "$work/reader.fail.$n" | head -3 | sed 's/^/     |   /'
	done <"$work/reader.broken" | head -24
fi
if [ -s "$work/reader.slow" ]; then
	echo "note: $(wc -l <"$work/reader.slow") failed loads took $((grace - 1)) s or more on a superseded" \
		"version (a reader slower than the gc grace period may lose objects):"
	while read -r rc v ms newest n; do
		echo "     | version $v, $ms ms: $(grep -m1 -E '^ragmap: ' "$work/reader.fail.$n")"
	done <"$work/reader.slow" | head -6
fi
went_back=$(awk '$1 == 0 { if ($2 < hi) { print "version " $2 " after " hi; exit } ; if ($2 > hi) hi = $2 }' "$work/reader.log")
[ -z "$went_back" ] && ok "reader: the newest version never went back" ||
	bad "reader: the newest version went back: $went_back"

# --- one more pass by one of the writers: nothing left to do
if "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/d1" "$bin" ingest >"$work/final.out" 2>&1; then
	expect final-pass-nothing "^nothing to commit" "$work/final.out"
else
	bad "final ingest failed"
	sed 's/^/     | /' "$work/final.out" | tail -10
fi

# --- the end state against one writer's clean run over the final source
check clean-ingest 0 "${clean[@]}" "$bin" ingest -q
check verify-source 0 "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/check" "$bin" verify --source
expect verify-source-all "^source: +[0-9]+ objects under .*: [0-9]+ indexed at their current ETag, 0 skipped" "$work/out"
check clean-verify-source 0 "${clean[@]}" "$bin" verify --source --digest
grep -E '^(live:|digest )' "$work/out" >"$work/clean.st"
check verify-digest 0 "${chaos[@]}" RAGMAP_LOCAL_DIR="$work/check" "$bin" verify --digest
grep -E '^(live:|digest )' "$work/out" >"$work/chaos.st"
live_want=0
for ((i = 0; i < npool; i++)); do [ -n "${state[i]:-}" ] && live_want=$((live_want + 1)); done
expect clean-live-all "^live: +$live_want documents" "$work/clean.st"
if grep -q '^digest [0-9a-f]\{64\}$' "$work/clean.st" && cmp -s "$work/clean.st" "$work/chaos.st"; then
	ok "same digest and live counts as a clean single writer"
else
	bad "the end state differs from a clean single writer"
	diff "$work/clean.st" "$work/chaos.st" | sed 's/^/     | /'
fi

# --- figures
version=$(sed -n 's/^index .* version \([0-9]*\) .*/\1/p' "$work/out")
count() { cat "$@" 2>/dev/null | grep -c "$pat"; }
pat="lost the race for a version"
lost_d=$(count "$work"/log.d?)
lost_c=$(count "$work/log.compact")
pat="committed version"
com_d=$(count "$work"/log.d?)
com_c=$(count "$work/log.compact")
echo "figures: $kills kills (daemon ${kills_of[daemon]}, compact ${kills_of[compact]}, gc ${kills_of[gc]});" \
	"$mutations mutation rounds; newest version $version;" \
	"versions committed: daemons $com_d, compact $com_c; lost races: daemons $lost_d, compact $lost_c;" \
	"gc runs $(wc -l <"$work/exits.gc"), deleted $(sed -n 's/^deleted \([0-9]*\).*/\1/p' "$work/stdout.gc" | awk '{ s += $1 } END { print s + 0 }') objects;" \
	"reader loads $loads; $(($(date +%s) - t_start)) s"
[ "$kills" -ge "$kills_wanted" ] && ok "kills ($kills)" || bad "only $kills kills"
for k in daemon compact gc; do
	[ "${kills_of[$k]}" -ge 1 ] && ok "$k killed (${kills_of[$k]})" || bad "no $k was killed"
done
[ "$lost_d" -ge 1 ] && ok "the daemons collided ($lost_d lost races)" || bad "no lost race: the writers never collided"
sed 's/^/     | /' "$work/chaos.st"
finish
