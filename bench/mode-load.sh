# Sourced by bench/query.sh and bench/curves.sh: their work directory and
# its store's lifetime (bench_work), and one ragmap server per backing mode
# under `ragmap bench load`, measured the same way by both (modes).
#
# The caller sets: bin (the ragmap binary), work (bench_work sets it), secs
# (measured seconds per mode), the store's
# environment (s3.env) and RAGMAP_INDEX_NAME. Optional: CLIENTS (clients for
# every mode; default 16 for memory and cached, 8 for pointer and object),
# LARGE_OBJECT_CLIENTS (object mode on the index named "large", default 4).
# srv_pid is the running server, if any: the caller's exit trap stops it.
srv_pid=

# bench_work NAME: $work, an absolute path (RAGMAP_BENCH_DIR, else a fresh
# /tmp/ragmap-bench-NAME.XXXXXX), and an EXIT trap that stops a running
# server, then the store under $work/s3 and removes $work; KEEP=1 keeps both
# (the store holds its objects in RAM) for bench/lancedb/run.sh
# (scripts/s3-local.sh stop "$work/s3" ends it).
bench_work() {
	work=${RAGMAP_BENCH_DIR:-$(mktemp -d "/tmp/ragmap-bench-$1.XXXXXX")}
	mkdir -p "$work"
	work=$(cd "$work" && pwd)
	trap bench_cleanup EXIT
}
bench_cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then
		echo "bench: kept $work; its S3 store still runs" >&2
	else
		"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1 || true
		rm -rf "$work"
	fi
}

# metric FILE SAMPLE: one value of a /metrics dump (0 if absent)
metric() { awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }
# storage FILE: GETs and bytes of the query stages (query.*), "requests bytes"
storage() {
	awk '/^ragmap_storage_requests_total\{stage="query\.[a-z]+",/ && !/query\.(load|reload|log)"/ { r += $2 }
	     /^ragmap_storage_bytes_total\{stage="query\.[a-z]+",/ && !/query\.(load|reload|log)"/ { b += $2 }
	     END { printf "%d %d\n", r, b }' "$1"
}

# serve MODE: start the server in the background; sets srv_pid and srv_url
serve() {
	"$bin" serve --mode "$1" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
	srv_pid=$!
	for _ in $(seq 6000); do
		grep -q "listening on" "$work/serve.out" 2>/dev/null && break
		kill -0 "$srv_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
		sleep 0.1
	done
	srv_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
}
stop() { kill -TERM "$srv_pid"; wait "$srv_pid" || { echo "bench: the $1 server exited $?" >&2; tail -40 "$work/serve.err" >&2; }; srv_pid=; }

# modes NAME QUERIES: the HTTP table for the current index (QUERIES "": the
# built-in queries on the sample corpus); one JSON line per mode is appended
# to $work/results.jsonl (bench load's --json plus index, mode, storage over
# the measured window, server_queries, rss_mb, hwm_mb and the load cost)
modes() {
	local name=$1 mode clients q0 q1 s0 s1 b0 b1 rss hwm st load
	local -a qargs=()
	[ -n "$2" ] && qargs=(--queries "$2")
	echo "| mode | clients | QPS | p50 ms | p95 ms | p99 ms | storage GETs/query | storage KiB/query | server RSS MB (peak) | load: ms, GETs, MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for mode in memory pointer cached object; do
		clients=${CLIENTS:-$([ $mode = memory ] || [ $mode = cached ] && echo 16 || echo 8)}
		if [ "$name" = large ] && [ $mode = object ]; then
			clients=${LARGE_OBJECT_CLIENTS:-4}
		fi
		serve $mode
		curl -s "$srv_url/v1/status" >"$work/status.json"
		# warm-up (connections, caches in cached mode), then the measured run
		"$bin" bench load --url "$srv_url" --clients "$clients" --duration 2 "${qargs[@]}" \
			-k 10 >/dev/null 2>&1 || true
		curl -s "$srv_url/metrics" >"$work/m0"
		load=$("$bin" bench load --url "$srv_url" --clients "$clients" --duration "$secs" \
			"${qargs[@]}" -k 10 --json 2>"$work/load.err") || { cat "$work/load.err" >&2; }
		curl -s "$srv_url/metrics" >"$work/m1"
		rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$srv_pid/status")
		hwm=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$srv_pid/status")
		stop $mode
		q0=$(metric "$work/m0" 'ragmap_queries_total{outcome="ok"}')
		q1=$(metric "$work/m1" 'ragmap_queries_total{outcome="ok"}')
		read -r s0 b0 < <(storage "$work/m0")
		read -r s1 b1 < <(storage "$work/m1")
		st=$(jq -r '"\(.load.ms | floor), \(.load.storage.requests), \(.load.storage.bytes / 1048576 * 10 | floor / 10)"' "$work/status.json")
		echo "$load" | jq -r --arg mode "$mode" --argjson c "$clients" --argjson dq $((q1 - q0)) \
			--argjson ds $((s1 - s0)) --argjson db $((b1 - b0)) --arg rss "$rss" --arg hwm "$hwm" --arg st "$st" '
			"| \($mode) | \($c) | \(.qps | floor) | \(.p50_ms * 100 | round / 100) | \(.p95_ms * 100 | round / 100) | \(.p99_ms * 100 | round / 100) | \(if $dq > 0 then ($ds / $dq * 100 | round / 100) else "-" end) | \(if $dq > 0 then ($db / $dq / 1024 * 10 | round / 10) else "-" end) | \($rss) (\($hwm)) | \($st) |"'
		echo "$load" | jq -c --arg index "$name" --arg mode "$mode" --argjson ds $((s1 - s0)) --argjson db $((b1 - b0)) \
			--argjson dq $((q1 - q0)) --argjson rss "$rss" --argjson hwm "$hwm" --argjson c "$clients" \
			--slurpfile status "$work/status.json" \
			'. + {index: $index, mode: $mode, clients: $c, storage_requests: $ds, storage_bytes: $db,
			      server_queries: $dq, rss_mb: $rss, hwm_mb: $hwm, load: $status[0].load}' >>"$work/results.jsonl"
	done
}
