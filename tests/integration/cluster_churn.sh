#!/usr/bin/env bash
# The whole deployment under churn (scripts/cluster.sh: Ceph RGW, two
# sharded daemons fed by RGW's bucket notifications, three replicas in
# three modes behind HAProxy):
#  - 64 clients query through HAProxy for CHURN_SECONDS (60) while a stream
#    of 500 uploads and 100 deletes goes into the source prefix;
#  - one replica is SIGKILLed a third of the way in and started again;
#  - failed requests are counted and reported: only those in flight on the
#    killed replica may fail (at most one per client), and HAProxy's
#    retries usually save even those;
#  - every answer comes from one complete version (tests/tools/
#    check_answers.py: each hit is a live chunk of its key in the version
#    the answer names), and all three replicas answered;
#  - at the end, after the daemons reconcile (SIGHUP: a full pass), the
#    index holds exactly the source: verify --source.
# The store is the cluster's own (not the fixture's): its rules and topics
# must not reach the other tests.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
command -v jq >/dev/null || { echo "FAIL jq is required"; exit 1; }
secs=${CHURN_SECONDS:-60}
uploads=500 deletes=100 clients=64
cdir=$work/cluster
kill_servers() { RAGMAP_BIN=$bin "$top/scripts/cluster.sh" down "$cdir" >/dev/null 2>&1; }

# the cluster's own settings, not this test's namespace
unset RAGMAP_SOURCE_PREFIX RAGMAP_INDEX_NAME RAGMAP_LOCAL_DIR RAGMAP_MODEL_PREFIX RAGMAP_QUERY_LOG_PREFIX
unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export RAGMAP_CLUSTER_MODES="memory pointer object"
check cluster-up 0 env RAGMAP_BIN="$bin" "$top/scripts/cluster.sh" up "$cdir"
[ -s "$cdir/cluster.env" ] || { bad "no cluster.env"; cat "$work/out" "$work/err" | tail -20; finish; exit; }
. "$cdir/cluster.env"
export RAGMAP_LOCAL_DIR=$work/cli
haproxy_url=http://127.0.0.1:$CLUSTER_HAPROXY_PORT
read -r -a dports <<<"$CLUSTER_DAEMON_PORTS"
dstatus() { curl -s -H "Authorization: Bearer $RAGMAP_INGEST_TOKEN" "http://127.0.0.1:${dports[$1]}/v1/status"; }
ncorpus=$("$bin" s3 ls -r source/ | grep -c .)

# --- the stream, in the background: uploads, and every 5th a delete (one
# key per DELETE: RGW 16.2 aborts on a multi-delete under a notified prefix)
gen=$work/gen
mkdir -p "$gen"
stream() {
	local i d=0
	for i in $(seq -w 1 $uploads); do
		printf '# Churn %s\n\nStreamed document %s about kestrel%s migrations and ridge lift.\n' \
			"$i" "$i" "$i" >"$gen/c.md"
		"$bin" s3 put "$gen/c.md" "source/churn/c-$i.md" >/dev/null 2>>"$work/stream.err" ||
			echo "put c-$i failed" >>"$work/stream.err"
		if [ $((10#$i % 5)) = 0 ] && [ $d -lt $deletes ]; then
			d=$((d + 1))
			"$bin" s3 rm "source/churn/c-$(printf '%03d' $((d * 5 - 4))).md" >/dev/null 2>>"$work/stream.err" ||
				echo "rm $d failed" >>"$work/stream.err"
		fi
	done
	echo done >"$work/stream.done"
}

"$bin" bench load --url "$haproxy_url" --clients $clients --duration "$secs" --record "$work/answers.tsv" \
	--json >"$work/load.json" 2>"$work/load.err" &
lpid=$!
stream &
spid=$!
sleep $((secs / 3))
r2pid=$(cat "$cdir/pids/r2.pid")
kill -KILL "$r2pid"
ok "replica r2 (pid $r2pid) killed at ${secs}/3 s"
sleep 2
check cluster-up-again 0 env RAGMAP_BIN="$bin" "$top/scripts/cluster.sh" up "$cdir"
expect r2-restarted "replica r2 .* pid [0-9]+" "$work/out"
wait $lpid
lrc=$?
wait $spid
[ -f "$work/stream.done" ] && ok "stream of $uploads uploads and $deletes deletes sent" || bad "stream did not finish"
[ -s "$work/stream.err" ] && { bad "stream errors"; head "$work/stream.err"; }

# --- the queries: failures only from the kill, every answer complete
jq . "$work/load.json" >/dev/null 2>&1 || { bad "bench load wrote no JSON"; cat "$work/load.err"; }
total=$(jq -r .requests "$work/load.json") failed=$(jq -r .failed "$work/load.json")
echo "     load: $(jq -c '{requests, ok, failed, transport_errors, qps, p50_ms, p99_ms, status}' "$work/load.json")"
[ "$failed" -le $clients ] && ok "failed requests: $failed of $total (in flight on the killed replica, at most one per client)" ||
	bad "$failed of $total requests failed (more than the $clients that can be in flight)"
[ "$lrc" = 0 ] || [ "$failed" -gt 0 ] || bad "bench load exited $lrc with no failure"
[ "$(jq -r .ok "$work/load.json")" -gt 1000 ] && ok "queries answered: $(jq -r .ok "$work/load.json")" || bad "too few answers"
check answers-complete-versions 0 python3 "$top/tests/tools/check_answers.py" "$work/answers.tsv" \
	"indexes/main/" "$bin" "$work"
sed 's/^/     | /' "$work/out" | head -5
expect answers-from-3-replicas "replicas 3:" "$work/out"

# --- the daemons catch up, reconcile, and the index is the source
for _ in $(seq 1 600); do
	w0=$(dstatus 0 | jq -r .events.waiting) w1=$(dstatus 1 | jq -r .events.waiting)
	[ "$w0" = 0 ] && [ "$w1" = 0 ] && break
	sleep 0.2
done
for i in 0 1; do kill -HUP "$(cat "$cdir/pids/daemon$i.pid")"; done
for i in 0 1; do
	for _ in $(seq 1 600); do [ "$(dstatus $i | jq -r .last_pass.kind)" = poll ] && break; sleep 0.2; done
	dstatus $i >"$work/d$i.json"
	equal "daemon$i-reconciled" "$(jq -r .last_pass.kind "$work/d$i.json")" poll
	equal "daemon$i-shard" "$(jq -r .shard "$work/d$i.json")" "$i/2"
	# Fed by events, not only by the pass: about 300 of the stream's events
	# are in each shard. RGW 16.2's persistent queue has once stalled
	# mid-stream in CI (44 queued, then nothing), so the bar is that events
	# arrived; the reconcile pass below must still make the index whole.
	queued=$(jq -r .events.queued "$work/d$i.json")
	[ "$queued" -gt 20 ] && ok "daemon$i took its events ($(jq -c .events "$work/d$i.json"))" ||
		bad "daemon$i queued few events: $(jq -c .events "$work/d$i.json")"
	[ "$queued" -ge 100 ] || echo "     note: daemon$i queued $queued events: RGW's queue stalled"
done
check verify-source 0 "$bin" verify --source --keys
expect verify-live "^live: +$((ncorpus + uploads - deletes)) documents" "$work/out"
check cluster-down 0 env RAGMAP_BIN="$bin" "$top/scripts/cluster.sh" down "$cdir"
finish
