#!/usr/bin/env bash
# The ragmap demo, end to end on the local S3 server:
#   set-up and build; start the local S3 server (a single-node Ceph RGW,
#   scripts/s3-local.sh) on 127.0.0.1:4570;
#   upload corpus/ under source/; `ragmap ingest` with progress; then the
#   query server in each backing mode in turn, asked the same three
#   questions REPS times, and one side-by-side table of what each mode
#   holds in RAM and reads from object storage per query; last, the server
#   in cached mode on 127.0.0.1:8080 (or a free port) with the live map page,
#   and `ragmap daemon` fed by the store's own event notifications (an RGW
#   topic and bucket rule): a document uploaded then is answered about a
#   second later.
#
#   scripts/demo.sh          run it (a fresh store and index every time)
#   scripts/demo.sh stop     stop the page's server, the daemon, its bucket
#                            rule and the local S3 server
#
# Environment: RAGMAP_DEMO_PORT (S3 port, 4570; 0 = any free one),
# RAGMAP_DEMO_REPS (20), RAGMAP_DEMO_LISTEN (127.0.0.1:8080),
# RAGMAP_DEMO_DIR (.demo), RAGMAP_DEMO_BUILD (build).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo=${RAGMAP_DEMO_DIR:-$top/.demo}
build=${RAGMAP_DEMO_BUILD:-$top/build}
reps=${RAGMAP_DEMO_REPS:-20}
modes=(memory pointer cached object)
questions=(
	"Why should checkpoint uploads be asynchronous?"
	"Is object storage in the query path of a RAG system?"
	"What does an inference server read from object storage?"
)

stop_page() {
	local f
	for f in serve daemon; do
		if [ -f "$demo/$f.pid" ]; then
			kill "$(cat "$demo/$f.pid")" 2>/dev/null || true
			rm -f "$demo/$f.pid"
		fi
	done
	# the daemon's topic and bucket rule live in the store
	if [ -f "$demo/topic" ] && [ -f "$demo/s3/s3.env" ] && [ -x "${ragmap:-}" ]; then
		(. "$demo/s3/s3.env" && RAGMAP_LOCAL_DIR=$demo/local "$ragmap" s3 notify rm \
			--topic "$(cat "$demo/topic")" >/dev/null 2>&1) || true
	fi
	rm -f "$demo/topic"
}
ragmap=${RAGMAP_DEMO_BUILD:-$top/build}/ragmap
if [ "${1:-}" = stop ]; then
	stop_page
	"$top/scripts/s3-local.sh" stop "$demo/s3"
	echo "demo: stopped"
	exit 0
fi

"$top/scripts/setup.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target ragmap >/dev/null
ragmap=$build/ragmap

# A fresh store and index, so every run tells the whole story from upload on.
stop_page
"$top/scripts/s3-local.sh" stop "$demo/s3"
rm -rf "$demo/s3" "$demo/local" "$demo/results"
mkdir -p "$demo/results"
"$top/scripts/s3-local.sh" start "$demo/s3" "${RAGMAP_DEMO_PORT:-4570}" >/dev/null
# the local store's endpoint and S3 user (a real deployment sets its own)
. "$demo/s3/s3.env"
export RAGMAP_LOCAL_DIR=$demo/local
unset RAGMAP_QUERY_TOKEN

echo "== local S3 server: Ceph RGW at $AWS_ENDPOINT_URL (logs in $demo/s3/log)"
echo "== uploading corpus/ to s3://rag/source/"
"$ragmap" s3 put corpus source/
echo
echo "== ragmap ingest: list, fetch, parse, chunk, embed, write segments, commit"
"$ragmap" ingest | tee "$demo/results/ingest.txt"
echo

# serve MODE LISTEN: start the server in the background; sets srv_pid, srv_url.
serve() {
	local log=$demo/serve-$1.log
	rm -f "$log" # else we could read the last run's before the new one truncates it
	"$ragmap" serve --mode "$1" --listen "$2" >"$log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 1 600); do
		if grep -qs "listening on" "$log"; then
			srv_url=$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -1)
			return 0
		fi
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "demo: ragmap serve --mode $1 did not start; its log:" >&2
	cat "$log" >&2
	return 1
}

# p QUANTILE < numbers: the nearest-rank quantile
p() { sort -g | awk -v q="$1" '{ v[NR] = $1 } END { i = int(q * NR + 0.999999); if (i < 1) i = 1; print v[i] }'; }

echo "== the same ${#questions[@]} questions, $reps times each, to the query server in each mode"
printf 'mode\tram_bytes\treq_per_query\tbytes_per_query\tp50_ms\tp95_ms\tfirst_pass_req_per_query\tload_ms\n' \
	>"$demo/results/modes.tsv"
# a per-mode server never outlives the script, even when a step fails
trap 'if [ -n "${mode_pid:-}" ]; then kill "$mode_pid" 2>/dev/null || true; fi' EXIT
for mode in "${modes[@]}"; do
	serve "$mode" 127.0.0.1:0
	mode_pid=$srv_pid
	answers=$demo/results/answers-$mode.jsonl
	: >"$answers"
	for ((r = 0; r < reps; r++)); do
		for q in "${questions[@]}"; do
			jq -cn --arg q "$q" '{q: $q, k: 5}' |
				curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @- \
					"$srv_url/v1/query" >>"$answers"
			echo >>"$answers"
		done
	done
	curl -sS "$srv_url/v1/status" >"$demo/results/status-$mode.json"
	curl -sS "$srv_url/v1/map" >"$demo/results/map-$mode.json"
	kill "$srv_pid"
	wait "$srv_pid" 2>/dev/null || true
	mode_pid=
	ram=$(jq '.resident_bytes | .vectors + .text + .pointers' "$demo/results/status-$mode.json")
	load_ms=$(jq '.load.ms' "$demo/results/status-$mode.json")
	# per query, from each answer's own storage trace
	read -r n req bytes first < <(jq -rs --argjson nq "${#questions[@]}" '
		[length, (map(.storage.requests) | add), (map(.storage.bytes) | add),
		 ((.[0:$nq] | map(.storage.requests) | add) / $nq * 100 | round / 100)] | @tsv' "$answers")
	p50=$(jq -r '.timing.total_ms' "$answers" | p 0.5)
	p95=$(jq -r '.timing.total_ms' "$answers" | p 0.95)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$ram" \
		"$(awk -v a="$req" -v n="$n" 'BEGIN { printf "%.2f", a / n }')" \
		"$(awk -v a="$bytes" -v n="$n" 'BEGIN { printf "%.0f", a / n }')" \
		"$p50" "$p95" "$first" "$load_ms" >>"$demo/results/modes.tsv"
done

human() { awk -v b="$1" 'BEGIN { u = "B KiB MiB GiB"; split(u, s, " "); i = 1;
	while (b >= 1024 && i < 4) { b /= 1024; i++ } printf (i == 1 ? "%.0f %s" : "%.1f %s"), b, s[i] }'; }
echo
echo "== where object storage sits in the query path: $((reps * ${#questions[@]})) queries per mode (k=5)"
echo
printf '%-8s | %-11s | %-24s | %-15s | %-11s\n' mode "RAM held" "storage requests / query" "bytes / query" "p50 latency"
printf '%s\n' "---------+-------------+--------------------------+-----------------+------------"
tail -n +2 "$demo/results/modes.tsv" | while IFS=$'\t' read -r mode ram req bytes p50 _ first _; do
	printf '%-8s | %11s | %24s | %15s | %8.2f ms\n' "$mode" "$(human "$ram")" "$req" "$(human "$bytes")" "$p50"
done
echo
awk -F'\t' 'NR > 1 && $1 == "cached" { printf "cached: %s requests per query on the first pass (cold cache), %s averaged over all passes.\n", $7, $3 }' \
	"$demo/results/modes.tsv"
echo "RAM held = vectors + chunk text + pointers (GET /v1/status; the embedding model, the same"
echo "in every mode, is not counted). Latency is the server's own total per query"
echo "(timing.total_ms), p50 over all queries. Every mode loaded its index from object storage"
echo "at start, and ingestion read and wrote object storage in every case."
if [ "$(jq '.ingestion.ivf_segments' "$demo/results/map-object.json")" = 0 ]; then
	echo "object: this small index is one flat segment, so its one inverted \"list\" holds every"
	echo "vector; IVF segments (index.ivf_threshold chunks and more) read only the probed lists."
fi
if command -v gnuplot >/dev/null; then
	"$top/bench/plots.sh" "$demo/results" "$demo/plots" >/dev/null && echo "Charts: $demo/plots/*.svg"
fi
echo

# The page: cached mode on 8080, or a free port when 8080 is taken; it
# follows LATEST every second, for the live ingestion below.
export RAGMAP_QUERY_RELOAD_S=1
listen=${RAGMAP_DEMO_LISTEN:-127.0.0.1:8080}
if ! serve cached "$listen" 2>/dev/null; then
	serve cached 127.0.0.1:0
fi
echo "$srv_pid" >"$demo/serve.pid"
disown "$srv_pid" 2>/dev/null || true
# Live ingestion: RGW pushes an event per upload to `ragmap daemon --listen`
# (the token in the push URL's query string: RGW cannot send a header).
export RAGMAP_INGEST_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') RAGMAP_INGEST_POLL_S=3600
"$ragmap" daemon --listen 127.0.0.1:0 >"$demo/daemon.out" 2>"$demo/daemon.log" &
echo $! >"$demo/daemon.pid"
disown "$(cat "$demo/daemon.pid")" 2>/dev/null || true
dport=
for _ in $(seq 1 100); do
	dport=$(sed -n 's|^ragmap daemon: events on http://127.0.0.1:\([0-9]*\)/v1/events$|\1|p' "$demo/daemon.out")
	[ -n "$dport" ] && break
	sleep 0.1
done
[ -n "$dport" ] || { echo "demo: ragmap daemon did not start; its log:" >&2; cat "$demo/daemon.log" >&2; exit 1; }
echo "ragmap-demo-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')" >"$demo/topic"
echo "http://127.0.0.1:$dport/v1/events?token=$RAGMAP_INGEST_TOKEN" |
	"$ragmap" s3 notify add --topic "$(cat "$demo/topic")" --push - --prefix source/ >/dev/null
echo "== live ingestion: Ceph RGW notifies ragmap daemon (127.0.0.1:$dport) of every upload under source/"
printf '# Heliostat fields\n\nA late document about heliostat mirrors tracking the sun.\n' >"$demo/late.md"
t0=$(date +%s%N)
"$ragmap" s3 put "$demo/late.md" source/live/heliostats.md >/dev/null
answered=
for _ in $(seq 1 200); do
	if curl -s "$srv_url/v1/query" -d '{"q": "heliostat mirrors", "k": 1, "retriever": "bm25"}' |
		jq -e '.results[0].key == "source/live/heliostats.md"' >/dev/null 2>&1; then
		answered=$((($(date +%s%N) - t0) / 1000000))
		break
	fi
	sleep 0.05
done
if [ -n "$answered" ]; then
	echo "   uploaded source/live/heliostats.md: answered by the cached-mode server ${answered} ms later"
	echo "   (event → daemon: HEAD, GET, parse, embed, commit a version → the server's reload)."
else
	echo "   uploaded source/live/heliostats.md: not answered within 10 s (see $demo/daemon.log)"
fi
echo

echo "== the live storage map: ragmap serve --mode cached is running at $srv_url"
echo
echo "   open   $srv_url/"
echo "          (or $srv_url/#q=checkpoint&autorun=1 to run a query straight away)"
echo "   from another machine, forward the port first: ssh -L ${srv_url##*:}:127.0.0.1:${srv_url##*:} THIS_HOST"
echo "   try    curl -s $srv_url/v1/map | jq .query_path"
stop_cmd="scripts/demo.sh stop"
[ "$demo" = "$top/.demo" ] || stop_cmd="RAGMAP_DEMO_DIR=$demo $stop_cmd"
echo "   upload . $demo/s3/s3.env && $ragmap s3 put FILE source/NAME   (answered about a second later)"
echo "   stop   $stop_cmd      (the page's server, the daemon and the local S3 server)"
