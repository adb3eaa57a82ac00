#!/usr/bin/env bash
# The live storage map page in a real browser (headless Chromium): the page
# loads, takes the bearer token from its address, runs a query through its
# own query box, and its DOM shows the mode, the hits and the counters —
# the same numbers /metrics gives. Memory mode draws no query-path edge to
# storage. The page's mode switch changes the server's mode and the page
# shows the new one. A screenshot is saved as page.png next to the ragmap binary.
#
# Runs against the ctest "s3" fixture in a private namespace. Fails when no
# chromium is installed: scripts/setup.sh installs it, so a missing browser
# is a broken set-up, not a pass.
set -uo pipefail
bin=${RAGMAP_BIN:?}
top=${RAGMAP_SOURCE_DIR:?}
builddir=$(cd "$(dirname "$bin")" && pwd)
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
	echo "FAIL chromium is not installed (scripts/setup.sh installs Debian's chromium)"
	exit 1
fi
command -v jq >/dev/null || { echo "FAIL jq is required (scripts/setup.sh installs it)"; exit 1; }
. "${RAGMAP_TEST_S3_DIR:?}/s3.env"
unset RAGMAP_CONFIG RAGMAP_QUERY_TOKEN
work=$(mktemp -d)
ns="page-$$-$RANDOM"
export RAGMAP_SOURCE_PREFIX="src-$ns/" RAGMAP_INDEX_NAME=$ns RAGMAP_LOCAL_DIR=$work/local \
	RAGMAP_MODEL_PREFIX="models-$ns/" RAGMAP_QUERY_LOG_PREFIX="logs-$ns/queries/"
cd "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
equal() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got \"$2\", want \"$3\""; fi; }

# serve MODE: start a server on an ephemeral port; sets url.
serve() {
	local log=$work/serve-$1.log
	"$bin" serve --mode "$1" --listen 127.0.0.1:0 >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 400); do
		url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1)
		[ -n "$url" ] && return 0
		sleep 0.05
	done
	bad "serve --mode $1 did not start"; cat "$log"
	return 1
}

# chrome OUT ARGS... URL: headless Chromium with a fresh profile, stdout in
# OUT; the page's own timers and fetches run in virtual time before it dumps
# or shoots. A nonzero exit or a timeout is a failure (counted here): every
# run here is expected to exit 0.
chrome() {
	local out=$1 rc
	shift
	rm -rf "$work/profile"
	mkdir -p "$work/profile"
	timeout -k 10 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--disable-dev-shm-usage --hide-scrollbars --user-data-dir="$work/profile" \
		--window-size=1280,1600 --virtual-time-budget=8000 "$@" >"$out" 2>"$work/chromium.err"
	rc=$?
	[ $rc = 0 ] && return 0
	# timeout(1) exits 124 after TERM, 137 when it had to KILL
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		bad "chromium on ${*: -1}: timed out after 120 s"
	else
		bad "chromium on ${*: -1}: exit $rc"
	fi
	tail -20 "$work/chromium.err"
	return 1
}

# browse OUT URL: the DOM after the page ran, in OUT. A failure is counted;
# the checks of OUT that follow then fail too.
browse() {
	local out=$1 url=$2
	chrome "$out" --dump-dom "$url" || return 1
	if ! grep -q '</html>' "$out"; then
		bad "chromium on $url: no </html> in the dumped DOM"; tail -20 "$work/chromium.err"
		return 1
	fi
}

# text DOM ID: the text of the element with that id (no nested tags).
text() { sed -n "s/.*id=\"$2\"[^>]*>\\([^<]*\\)<.*/\\1/p" "$1" | head -1; }
# metric NAME LABELS: one sample of /metrics, 0 when absent
metric() { awk -v k="$1{$2}" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$work/metrics"; }

# --- an index of the sample corpus
"$bin" s3 put "$top/corpus" "src-$ns/" >/dev/null || bad "upload"
"$bin" ingest --quiet >"$work/ingest.out" 2>&1 || { bad "ingest"; cat "$work/ingest.out"; }
docs=$(find "$top/corpus" -type f | wc -l)

# --- cached mode behind a bearer token
export RAGMAP_QUERY_TOKEN="page-token-$RANDOM"
serve cached || exit 1
code=$(curl -s -o "$work/root.html" -w '%{http_code}' "$url/")
equal "page-is-public" "$code" 200
grep -q '<svg' "$work/root.html" && ok "page-has-svg" || bad "page-has-svg"
equal "map-needs-token" "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/map")" 401

# screenshot (it runs a query too), then the DOM of a second visit
rm -f "$builddir/page.png"
if chrome /dev/null --screenshot="$builddir/page.png" "$url/#token=$RAGMAP_QUERY_TOKEN&q=checkpoint&autorun=1"; then
	[ -s "$builddir/page.png" ] && ok "screenshot $builddir/page.png" || { bad "no screenshot"; tail "$work/chromium.err"; }
fi
browse "$work/dom.html" "$url/#token=$RAGMAP_QUERY_TOKEN&q=checkpoint&autorun=1&k=5"
curl -s -H "Authorization: Bearer $RAGMAP_QUERY_TOKEN" "$url/metrics" >"$work/metrics"
dom=$work/dom.html

grep -q 'data-mode="cached"' "$dom" && ok "dom-body-mode" || bad "dom-body-mode"
equal "dom-mode" "$(text "$dom" mode)" cached
grep -q 'data-query-done="1"' "$dom" && ok "query-ran" || { bad "query-ran"; grep -o 'id="qstatus"[^<]*' "$dom"; }
nhits=$(grep -o '<li data-key="[^"]*"' "$dom" | wc -l)
equal "five-hits" "$nhits" 5
grep -o '<li data-key="[^"]*"' "$dom" | grep -qi checkpoint && ok "hits-about-checkpoints" ||
	bad "hits-about-checkpoints"
equal "trace-mode" "$(text "$dom" tr-mode | cut -d' ' -f1)" cached
# the first visit (the screenshot) filled the cache: this one reads nothing
equal "trace-warm-cache" "$(text "$dom" tr-total)" "none: 0 requests, 0 bytes"
equal "trace-cache-hits" "$(text "$dom" tr-cache)" "5 hits, 0 misses"
equal "ingestion-docs-read" "$(text "$dom" t1-req)" "$docs"
[ "$(text "$dom" t1-bytes)" != "—" ] && ok "ingestion-bytes ($(text "$dom" t1-bytes))" || bad "ingestion-bytes: none"
text "$dom" f-ing-run | grep -q "^last run: $docs read, " && ok "ingestion-last-run" ||
	bad "ingestion-last-run: $(text "$dom" f-ing-run)"
text "$dom" f-seg-run | grep -q "^last run: [1-9][0-9]* new segments\?$" && ok "ingestion-last-run-segments" ||
	bad "ingestion-last-run-segments: $(text "$dom" f-seg-run)"

# the page's counters are /metrics' counters
ok_q=$(metric ragmap_queries_total 'outcome="ok"')
equal "queries-match-metrics" "$(text "$dom" m-queries)" "$ok_q"
equal "two-queries" "$ok_q" 2
treq=$(metric ragmap_storage_requests_total 'stage="query.text",kind="get"')
tbytes=$(metric ragmap_storage_bytes_total 'stage="query.text",kind="get"')
lreq=$(metric ragmap_storage_requests_total 'stage="query.lists",kind="get"')
lbytes=$(metric ragmap_storage_bytes_total 'stage="query.lists",kind="get"')
equal "text-requests-match-metrics" "$(text "$dom" t5-req)" "$treq"
equal "query-path-totals-match-metrics" "$(text "$dom" m-totals)" \
	"$((treq + lreq)) requests, $((tbytes + lbytes)) bytes over 2 queries"
# the costs: the query path's GETs at $0.0004 per 1,000, per million queries
got_cost=$(text "$dom" m-cost-q)
awk -v r="$((treq + lreq))" -v g="$got_cost" 'BEGIN {
	want = r * 0.0004 / 1000 / 2 * 1e6; sub(/^\$/, "", g); split(g, a, " ")
	exit !(a[2] == "in" && a[3] == "cached" && (a[1] - want) ^ 2 < (want * 0.01) ^ 2 + 1e-12) }' &&
	ok "cost-per-million-queries ($got_cost)" || bad "cost-per-million-queries: $got_cost"
text "$dom" m-cost-ing | grep -q '^\$[0-9.e-]*$' && ok "cost-ingest-pass ($(text "$dom" m-cost-ing))" ||
	bad "cost-ingest-pass: $(text "$dom" m-cost-ing)"
text "$dom" m-cost-store | grep -q '^\$[0-9.e-]* (' && ok "cost-storage ($(text "$dom" m-cost-store))" ||
	bad "cost-storage: $(text "$dom" m-cost-store)"
# a load GETs LATEST, the manifest and the objects, and HEADs for newer versions
equal "load-requests-match-metrics" "$(text "$dom" t3-req)" \
	"$(($(metric ragmap_storage_requests_total 'stage="query.load",kind="get"') +
		$(metric ragmap_storage_requests_total 'stage="query.load",kind="head"')))"
hits=$(metric ragmap_cache_hits_total 'cache="text"')
misses=$(metric ragmap_cache_misses_total 'cache="text"')
text "$dom" m-cache | grep -q "($hits hits, $misses misses)" && ok "cache-matches-metrics" ||
	bad "cache-matches-metrics: $(text "$dom" m-cache) vs $hits/$misses"
[ "$hits" -gt 0 ] && ok "second-visit-hit-the-cache" || bad "second-visit-hit-the-cache"
grep -q 'id="e-text"[^>]*display="inline"' "$dom" && ok "text-edge-drawn" || bad "text-edge-drawn"
grep -q 'id="e-lists"[^>]*display="none"' "$dom" && ok "no-list-edge-in-cached" || bad "no-list-edge-in-cached"
grep -q 'id="e-none"[^>]*display="none"' "$dom" && ok "storage-note-hidden" || bad "storage-note-hidden"

# a wrong token: the page says what to do instead of showing stale figures
browse "$work/wrong.html" "$url/#token=wrong"
grep -q 'bearer token' "$work/wrong.html" && ok "wrong-token-banner" || bad "wrong-token-banner"
kill "${pids[-1]}"
unset RAGMAP_QUERY_TOKEN

# --- memory mode: no query-path edge to storage, 0 storage requests per query
serve memory || exit 1
browse "$work/mem.html" "$url/#q=checkpoint&autorun=1"
equal "memory-mode" "$(text "$work/mem.html" mode)" memory
grep -q 'id="e-none"[^>]*display="inline"' "$work/mem.html" && ok "memory-no-storage-note" || bad "memory-no-storage-note"
grep -q 'id="e-text"[^>]*display="none"' "$work/mem.html" && ok "memory-no-text-edge" || bad "memory-no-text-edge"
equal "memory-zero-requests" "$(text "$work/mem.html" m-req)" "0.00"
text "$work/mem.html" m-coldwarm | grep -q '^cold 0 queries · warm 1 query, [0-9.]* ms$' &&
	ok "memory-query-warm" || bad "memory-query-warm: $(text "$work/mem.html" m-coldwarm)"
equal "memory-warm-up-not-run" "$(text "$work/mem.html" m-warm)" "not run"
equal "memory-trace-empty" "$(text "$work/mem.html" tr-total)" "none: 0 requests, 0 bytes"

# --- object mode: both edges
serve object || exit 1
browse "$work/obj.html" "$url/#q=checkpoint&autorun=1"
grep -q 'id="e-lists"[^>]*display="inline"' "$work/obj.html" && ok "object-list-edge" || bad "object-list-edge"
grep -q 'id="e-text"[^>]*display="inline"' "$work/obj.html" && ok "object-text-edge" || bad "object-text-edge"

# --- the mode switch: the page's button (clicked by #switch=MODE, the same
# click handler) posts /v1/mode; the server then serves in that mode and the
# page shows it. Behind a token: from #token=..., or from ?token=...
export RAGMAP_QUERY_TOKEN="switch-token-$RANDOM"
serve memory || exit 1
st() { curl -s -H "Authorization: Bearer $RAGMAP_QUERY_TOKEN" "$url/v1/status" | jq -r .mode; }
browse "$work/sw.html" "$url/#token=$RAGMAP_QUERY_TOKEN&q=checkpoint&autorun=1&switch=pointer"
equal "switch-server-mode" "$(st)" pointer
grep -q 'data-switch="done"' "$work/sw.html" && ok "switch-done" || { bad "switch-done"; text "$work/sw.html" switch-status; }
grep -q 'data-mode="pointer"' "$work/sw.html" && ok "switch-page-body-mode" || bad "switch-page-body-mode"
equal "switch-page-mode" "$(text "$work/sw.html" mode)" pointer
grep -q 'id="sw-pointer"[^>]*aria-pressed="true"' "$work/sw.html" && ok "switch-button-pressed" ||
	bad "switch-button-pressed"
equal "switch-page-status" "$(text "$work/sw.html" switch-status | cut -d' ' -f1-4)" "switched memory → pointer"
# the query shown before the switch ran again: its trace is the new mode's
equal "switch-trace-mode" "$(text "$work/sw.html" tr-mode | cut -d' ' -f1)" pointer
grep -q 'id="e-text"[^>]*display="inline"' "$work/sw.html" && ok "switch-text-edge-drawn" || bad "switch-text-edge-drawn"
browse "$work/sw2.html" "$url/?token=$RAGMAP_QUERY_TOKEN#switch=object"
equal "switch-query-token-server-mode" "$(st)" object
equal "switch-query-token-page-mode" "$(text "$work/sw2.html" mode)" object
# without the token the switch is refused, and the page says so
browse "$work/sw3.html" "$url/#switch=memory"
equal "switch-no-token-unchanged" "$(st)" object
grep -q 'data-switch="error"' "$work/sw3.html" && ok "switch-no-token-refused" || bad "switch-no-token-refused"
unset RAGMAP_QUERY_TOKEN

[ "$fails" = 0 ] && echo "page_browser: all passed" || echo "page_browser: $fails failed"
[ "$fails" = 0 ]
