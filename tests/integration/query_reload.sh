#!/usr/bin/env bash
# Hot reload under load: servers in memory and object mode poll LATEST every
# second while 8 clients each query them continuously (5 ms apart, so the
# ingests get some CPU on a small machine); meanwhile two new
# versions are ingested, each adding a copy of a document that one of the
# queries finds. Then: no failed request; every answer's index_version is a
# committed version and never goes back for a client; every answer is
# consistent with its version (a document added in version N is in the
# answers to "its" query from version N on, and in no answer claiming an
# older version); /v1/status and /metrics show the newest version and two
# reloads; the servers exit cleanly (no sanitizer report: the old versions
# were freed while queries ran). Then servers are killed and restarted, in
# every mode, while three more versions are committed.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ingest_corpus || { finish; exit 1; }
q2="IVF index inverted lists centroids and nprobe"
q3="LoRA adapters versioning and storage"
{
	echo "$q2"
	echo "$q3"
	echo "why does a RAG pipeline keep source documents in object storage"
	echo "KV cache and GPU memory during inference"
} >"$work/queries"
modes="memory object"
for m in $modes; do
	serve "$m" "$m" RAGMAP_QUERY_RELOAD_S=1 || { finish; exit 1; }
done

# the documents the two new versions copy: the best hit of q2 and of q3
top_key() { post memory "{\"q\": \"$1\", \"k\": 1}" >/dev/null && jq -r '.results[0].key' "$work/body"; }
src2=$(top_key "$q2")
src3=$(top_key "$q3")
[ -n "$src2" ] && [ -n "$src3" ] && [ "$src2" != "$src3" ] && ok "copy-sources ($src2, $src3)" ||
	bad "copy-sources: \"$src2\" \"$src3\""
add2="${src}added/v2-$(basename "$src2")"
add3="${src}added/v3-$(basename "$src3")"

for m in $modes; do
	"$bin" bench load --url "$(url "$m")" --clients 8 --duration 300 --queries "$work/queries" -k 10 --pause-ms 5 \
		--record "$work/$m.rec" --json >"$work/$m.load" 2>"$work/$m.load.err" &
	eval "load_$m=\$!"
done

# wait_version V: until both servers serve V (at most 30 s)
wait_version() {
	local m i v
	for m in $modes; do
		for i in $(seq 300); do
			v=$(curl -s "$(url "$m")/v1/status" | jq -r .index_version)
			[ "$v" = "$1" ] && break
			sleep 0.1
		done
		equal "$m-serves-version-$1" "$v" "$1"
	done
}
# copy KEY NEWKEY: a new source object with KEY's bytes
copy() { "$bin" s3 get "$1" - >"$work/copy" && "$bin" s3 put "$work/copy" "$2" >/dev/null; }

sleep 1
copy "$src2" "$add2" || bad "copy $src2"
check ingest-v2 0 "$bin" ingest
expect ingest-v2-committed "committed version 2" "$work/out"
wait_version 2
sleep 1
copy "$src3" "$add3" || bad "copy $src3"
check ingest-v3 0 "$bin" ingest
expect ingest-v3-committed "committed version 3" "$work/out"
wait_version 3
sleep 1

for m in $modes; do
	eval "kill -TERM \$load_$m"
	eval "wait \$load_$m"
	equal "$m-no-failed-request" "$?" 0
	jqtrue "$m-load-summary" "$work/$m.load" '.failed == 0 and .ok == .requests and .ok > 0'
	cut -f3 "$work/$m.rec" >"$work/$m.rec.clients"
	# each answer, reduced to what the checks need: {client, a: {v, q, keys, n}}
	cut -f4- "$work/$m.rec" | jq -c '{v: .index_version, q: .query, keys: [.results[].key], n: (.results | length)}' |
		paste "$work/$m.rec.clients" - | awk -F'\t' '{ print "{\"client\":" $1 ",\"a\":" $2 "}" }' >"$work/$m.jsonl"
	equal "$m-every-record-200" "$(cut -f1 "$work/$m.rec" | sort -u | tr '\n' ' ')" "200 "
	jqtrue "$m-versions-committed" "$work/$m.jsonl" -s '[.[].a.v] | unique | . == [1,2,3]'
	jqtrue "$m-versions-never-go-back" "$work/$m.jsonl" -s '
		group_by(.client) | all(.[]; [.[].a.v] as $v | $v == ($v | sort))'
	jqtrue "$m-added-docs-follow-versions" "$work/$m.jsonl" -s --arg q2 "$q2" --arg q3 "$q3" \
		--arg a2 "$add2" --arg a3 "$add3" '
		all(.[].a; .keys as $keys | .v as $v |
			(if $v < 2 then ($keys | index($a2)) == null else true end) and
			(if $v < 3 then ($keys | index($a3)) == null else true end) and
			(if .q == $q2 and $v >= 2 then ($keys | index($a2)) != null else true end) and
			(if .q == $q3 and $v >= 3 then ($keys | index($a3)) != null else true end) and
			.n == 10)'
	echo "     $m: $(jq -s -c 'group_by(.a.v) | map({version: .[0].a.v, answers: length})' "$work/$m.jsonl")"
	get "$m" /metrics >/dev/null
	equal "$m-metrics-version" "$(metric "$work/body" ragmap_index_version)" 3
	equal "$m-metrics-reloads" "$(metric "$work/body" ragmap_reloads_total)" 2
	equal "$m-metrics-no-reload-failure" "$(metric "$work/body" ragmap_reload_failures_total)" 0
	equal "$m-metrics-no-error" "$(metric "$work/body" 'ragmap_queries_total{outcome="error"}')" 0
	get "$m" /v1/status >/dev/null
	jqtrue "$m-status-newest" "$work/body" '.index_version == 3 and .counts.documents == $d' \
		--argjson d $(($(find "$top/corpus" -type f | wc -l) + 2))
	stop "$m"
	expect "$m-logged-reloads" "serving version 3" "$work/$m.err"
done

# ---- restarts while LATEST moves: three more versions are committed while
# a server is killed (SIGKILL) and started again, in turn in each mode. Every
# start answers from a committed version, never an older one than the last
# start served; once the ingests are done a start serves the newest.
(
	for v in 4 5 6; do
		copy "$src2" "${src}added/v$v-$(basename "$src2")" && "$bin" ingest >"$work/ingest-v$v.out" 2>&1 || exit 1
	done
) &
ingests=$!
last=3
r=0
restart_modes=(memory pointer cached object)
while kill -0 "$ingests" 2>/dev/null || [ $r -lt 4 ]; do
	m=${restart_modes[$((r % 4))]}
	serve "restart-$r" "$m" RAGMAP_QUERY_RELOAD_S=0 || break
	st=$(post "restart-$r" "{\"q\": \"$q2\", \"k\": 5}")
	v=$(jq .index_version "$work/body")
	if [ "$st" = 200 ] && [ "$v" -ge "$last" ] && [ "$v" -le 6 ]; then
		ok "restart-$r-$m-answers-v$v"
	else
		bad "restart-$r-$m: HTTP $st, version $v after $last"
	fi
	last=$v
	kill -KILL "${spid[restart-$r]}"
	wait "${spid[restart-$r]}" 2>/dev/null
	unset "spid[restart-$r]"
	r=$((r + 1))
	[ $r -lt 40 ] || { bad "restarts: the ingests did not finish"; break; }
done
wait "$ingests"
equal ingests-while-restarting "$?" 0
serve restart-final object RAGMAP_QUERY_RELOAD_S=0 || { finish; exit 1; }
equal restart-final-200 "$(post restart-final "{\"q\": \"$q2\", \"k\": 5}")" 200
jqtrue restart-final-newest "$work/body" '.index_version == 6'
stop restart-final
finish
