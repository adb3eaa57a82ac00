#!/usr/bin/env bash
# POST /v1/mode under load: a server in memory mode over the sample corpus,
# with a bearer token, while 8 clients query it in a loop, is switched
# through pointer, cached, object and memory three times. Then: no request
# failed (every status 200); each switch answered 200 with the old and new
# mode, the same version and its duration; /v1/status and the next answer
# say the new mode and the same version; every answer carries a mode and
# version 1, and the clients were answered in every mode. Bad requests: an
# unknown mode and an unknown field are 400 naming the valid modes and the
# field; without the token, or with a wrong one, a switch is refused (401)
# and changes nothing. A SIGHUP after a switch keeps the mode switched to.
# The server exits cleanly (no sanitizer report).
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ingest_corpus || { finish; exit 1; }
tok="switch-$RANDOM$RANDOM"
serve ms memory RAGMAP_QUERY_TOKEN="$tok" || { finish; exit 1; }
auth=(-H "Authorization: Bearer $tok")

# switch MODE [curl args...]: POST /v1/mode; prints the status, the body in $work/body
switch() {
	local mode=$1
	shift
	printf '{"mode": "%s"}' "$mode" | curl -sS -o "$work/body" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' --data-binary @- "$@" "$(url ms)/v1/mode"
}
status_mode() { get ms /v1/status "${auth[@]}" >/dev/null && jq -r .mode "$work/body"; }

# ---- refusals, before the load: none changes the mode
equal no-token-401 "$(switch pointer)" 401
equal wrong-token-401 "$(switch pointer -H 'Authorization: Bearer wrong')" 401
st=$(printf '{"mode": "disk"}' | curl -sS -o "$work/body" -w '%{http_code}' -X POST "${auth[@]}" \
	--data-binary @- "$(url ms)/v1/mode")
equal bad-mode-400 "$st" 400
jqtrue bad-mode-names-modes "$work/body" '.error | test("disk") and test("memory, pointer, cached, object")'
st=$(printf '{"mode": "pointer", "fast": true}' | curl -sS -o "$work/body" -w '%{http_code}' -X POST \
	"${auth[@]}" --data-binary @- "$(url ms)/v1/mode")
equal unknown-field-400 "$st" 400
jqtrue unknown-field-named "$work/body" '.error | test("\"fast\"")'
st=$(printf 'mode=pointer' | curl -sS -o "$work/body" -w '%{http_code}' -X POST "${auth[@]}" \
	--data-binary @- "$(url ms)/v1/mode")
equal not-json-400 "$st" 400
equal get-mode-405 "$(get ms /v1/mode "${auth[@]}")" 405
equal still-memory "$(status_mode)" memory

# ---- 8 clients querying in a loop: each line of c$i.log is "STATUS BODY"
queries=("checkpoint asynchronously" "IVF index inverted lists centroids and nprobe"
	"LoRA adapters versioning and storage" "KV cache and GPU memory during inference")
client() {
	local i=$1 n=0 r
	while [ ! -e "$work/stop" ]; do
		r=$(printf '{"q": "%s", "k": 3}' "${queries[$(((i + n) % 4))]}" | curl -sS -w '\n%{http_code}' \
			-X POST -H 'Content-Type: application/json' "${auth[@]}" --data-binary @- \
			"$(url ms)/v1/query" 2>>"$work/c$i.err")
		printf '%s %s\n' "${r##*$'\n'}" "$(printf '%s' "${r%$'\n'*}" | tr -d '\n')" >>"$work/c$i.log"
		n=$((n + 1))
	done
}
cpids=()
for i in $(seq 8); do
	client "$i" &
	cpids+=($!)
done
sleep 1

prev=memory
for round in 1 2 3; do
	for m in pointer cached object memory; do
		sleep 0.3
		st=$(switch "$m" "${auth[@]}")
		if [ "$st" = 200 ] && jq -e --arg m "$m" --arg p "$prev" \
			'.mode == $m and .previous_mode == $p and .index_version == 1 and
			 .previous_index_version == 1 and .changed == true and (.switch_ms | type) == "number" and
			 .switch_ms > 0' "$work/body" >/dev/null; then
			ok "switch-$round-$prev-to-$m ($(jq -r '.switch_ms | floor' "$work/body") ms)"
		else
			bad "switch-$round-$prev-to-$m: HTTP $st: $(cat "$work/body")"
		fi
		equal "status-$round-$m" "$(status_mode)" "$m"
		st=$(post ms '{"q": "checkpoint asynchronously", "k": 3}' "${auth[@]}")
		if [ "$st" = 200 ] && jq -e --arg m "$m" '.mode == $m and .index_version == 1' "$work/body" >/dev/null; then
			ok "answer-after-switch-$round-$m"
		else
			bad "answer-after-switch-$round-$m: HTTP $st: $(head -c 300 "$work/body")"
		fi
		prev=$m
	done
done
sleep 0.5
touch "$work/stop"
wait "${cpids[@]}"

cat "$work"/c*.log >"$work/all.log"
total=$(wc -l <"$work/all.log")
[ "$total" -gt 100 ] && ok "clients-sent-$total-queries" || bad "clients sent only $total queries"
equal every-query-200 "$(cut -d' ' -f1 "$work/all.log" | sort | uniq -c | awk '$2 != 200' | tr -s ' ')" ""
equal no-curl-error "$(cat "$work"/c*.err)" ""
cut -d' ' -f2- "$work/all.log" | jq -c '{mode, v: .index_version}' >"$work/answers.jsonl" 2>"$work/jq.err"
equal answers-parse "$(wc -l <"$work/answers.jsonl")" "$total"
jqtrue answers-version-1 "$work/answers.jsonl" -s 'all(.[]; .v == 1)'
jqtrue answers-in-every-mode "$work/answers.jsonl" -s '[.[].mode] | unique == ["cached","memory","object","pointer"]'
echo "     $(jq -s -c 'group_by(.mode) | map({mode: .[0].mode, answers: length})' "$work/answers.jsonl")"

# ---- asking for the mode served changes nothing
equal same-mode-200 "$(switch memory "${auth[@]}")" 200
jqtrue same-mode-unchanged "$work/body" '.changed == false and .mode == "memory" and .previous_mode == "memory"'

# ---- a SIGHUP keeps the mode switched to (the server was started --mode memory)
equal to-object-200 "$(switch object "${auth[@]}")" 200
kill -HUP "${spid[ms]}"
for i in $(seq 100); do
	grep -q "SIGHUP: object mode" "$work/ms.err" && break
	sleep 0.1
done
expect sighup-reloaded "SIGHUP: object mode" "$work/ms.err"
equal sighup-keeps-object "$(status_mode)" object
equal switches-logged "$(grep -c 'POST /v1/mode: .* mode, replica' "$work/ms.err")" 13
stop ms
finish
