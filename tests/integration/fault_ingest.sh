#!/usr/bin/env bash
# Ingestion under storage faults (issue 6, item 2): the sample corpus plus
# generated documents, ingested once directly and once through faultproxy
# at a 10% fault rate (500, 503, resets before and inside bodies, truncated
# bodies, some latency). The two indexes must be the same: same documents,
# chunk texts and vectors (verify --digest), same catalog rows, nothing
# duplicated, nothing failed. Then a persistent fault on one key: it ends
# as `failed` with the reason, and a run after the fault stops indexes it.
#
#   RAGMAP_FAULT_DOCS=2000   generated documents (default 300, for CI)
#   RAGMAP_FAULT_SEED=N      the proxy's seed (default 6)
#   RAGMAP_FAULT_RATE=R      total fault rate (default 0.1)
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
. "$top/tests/tools/fault-common.sh"

ngen=${RAGMAP_FAULT_DOCS:-300}
seed=${RAGMAP_FAULT_SEED:-6}
rate=${RAGMAP_FAULT_RATE:-0.1}

# --- the input: the sample corpus and ngen generated documents
if [ -x "$top/bench/gen-corpus.sh" ]; then
	"$top/bench/gen-corpus.sh" "$work/gen" "$ngen" 11 2000 0.5 >/dev/null
else # a plain stand-in: one sentence family per document
	mkdir -p "$work/gen"
	for i in $(seq 1 "$ngen"); do
		printf '# Document %d\n\nObject storage note %d: retries, backoff and %d checksums.\n' \
			"$i" "$i" "$((i * 7919 % 1000))" >"$work/gen/g$i.md"
	done
fi
ndocs=$(( $(find "$top/corpus" -type f | wc -l) + $(find "$work/gen" -type f | wc -l) ))
check upload-corpus 0 "$bin" s3 put "$top/corpus" "${src}corpus/"
check upload-generated 0 "$bin" s3 put "$work/gen" "${src}gen/"

# Two indexes over the same source: "clean" (direct) and "fault" (proxy),
# each with its own name, model prefix and local directory.
as_clean() {
	RAGMAP_INDEX_NAME=$idx-clean RAGMAP_MODEL_PREFIX="models-$ns-clean/" \
		RAGMAP_LOCAL_DIR=$work/clean "$@"
}
as_fault() {
	RAGMAP_INDEX_NAME=$idx-fault RAGMAP_MODEL_PREFIX="models-$ns-fault/" \
		RAGMAP_LOCAL_DIR=$work/fault "$@"
}
clean_cat=$work/clean/$idx-clean/catalog.sqlite
fault_cat=$work/fault/$idx-fault/catalog.sqlite

# What must match between the two catalogs: objects, live documents, and
# every live chunk (id, ordinal, heading, text).
# chunk ids are not compared: each writer draws them from a block of its own
catalog_dump() {
	sqlite3 -readonly -batch -noheader "$1" "
		SELECT 'o', key, etag, size, status, attempts FROM objects ORDER BY key;
		SELECT 'd', key, etag, type, coalesce(title, ''), bytes, text_bytes, nchunks
		  FROM documents WHERE live = 1 ORDER BY key;
		SELECT 'c', d.key, c.ordinal, c.heading, c.text
		  FROM chunks c JOIN documents d USING (doc_id) WHERE d.live = 1
		  ORDER BY d.key, c.ordinal;"
}
duplicates() {
	sqlite3 -readonly -batch -noheader "$1" "
		SELECT (SELECT count(*) FROM (SELECT key FROM documents WHERE live = 1
		                              GROUP BY key HAVING count(*) > 1))
		     + (SELECT count(*) FROM (SELECT doc_id, ordinal FROM chunks
		                              GROUP BY doc_id, ordinal HAVING count(*) > 1))"
}
digest_of() { sed -n 's/^digest //p' "$work/out"; }
secs_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# --- the clean run
t0=$(date +%s%N)
check clean-ingest 0 as_clean "$bin" ingest
clean_s=$(secs_since "$t0")
expect clean-all-indexed "^listed $ndocs objects: 0 unchanged \(no GET\), $ndocs indexed$" "$work/out"
check clean-verify 0 as_clean "$bin" verify --digest
digest_clean=$(digest_of)

# --- the same through 10% faults
start_proxy --seed "$seed" --ignore "$ns" --rate "$rate" --latency-ms 20 --latency-rate 0.05
t0=$(date +%s%N)
RAGMAP_S3_RETRY_BASE_MS=10 check fault-ingest 0 through_proxy as_fault "$bin" ingest
fault_s=$(secs_since "$t0")
expect fault-all-indexed "^listed $ndocs objects: 0 unchanged \(no GET\), $ndocs indexed$" "$work/out"
expect fault-committed "^committed version [1-9][0-9]*: " "$work/out" # more than one when the documents exceed ingest.commit_every
retries=$(reported_retries "$work/out")
requests=$(proxy_stat requests)
injected=$(proxy_stat injected)
[ "${injected:-0}" -ge $((requests / 20)) ] && ok "faults-injected ($injected of $requests requests)" ||
	bad "only ${injected:-0} faults injected in ${requests:-0} requests"
[ "$retries" -gt 0 ] && ok "ragmap-retried ($retries)" || bad "no retries reported"
figures="$injected faults in $requests requests (500: $(proxy_stat 500), 503: $(proxy_stat 503),"
figures="$figures reset: $(proxy_stat reset), reset-body: $(proxy_stat reset-body),"
figures="$figures truncate: $(proxy_stat truncate); delayed: $(proxy_stat delayed)); $retries retries"

check fault-verify 0 as_fault "$bin" verify --digest
equal fault-digest-equals-clean "$(digest_of)" "$digest_clean"
check fault-status 0 as_fault "$bin" status
expect fault-status-none-failed "^objects: +0 pending, $ndocs indexed, 0 skipped, 0 rejected, 0 failed, 0 deleted" "$work/out"
equal fault-no-duplicates "$(duplicates "$fault_cat")" 0
catalog_dump "$clean_cat" >"$work/clean.dump"
catalog_dump "$fault_cat" >"$work/fault.dump"
equal catalog-rows "$(wc -l <"$work/fault.dump")" "$(wc -l <"$work/clean.dump")"
cmp -s "$work/clean.dump" "$work/fault.dump" && ok "catalog-equals-clean" ||
	{ bad "catalog differs from the clean run's"; diff "$work/clean.dump" "$work/fault.dump" | head -5; }

# a second pass through the faults finds nothing to do and writes nothing
RAGMAP_S3_RETRY_BASE_MS=10 check fault-rerun 0 through_proxy as_fault "$bin" ingest
expect fault-rerun-nothing "^nothing to commit" "$work/out"

# --- a persistent fault: one object whose every GET fails
stuck="${src}persist/stuck.md"
printf '# Stuck\n\nThe zebrafish document the proxy never lets through.\n' >"$work/stuck.md"
printf '# Fine\n\nA document next to it that gets through.\n' >"$work/fine.md"
check upload-stuck 0 "$bin" s3 put "$work/stuck.md" "$stuck"
check upload-fine 0 "$bin" s3 put "$work/fine.md" "${src}persist/fine.md"
proxy_set "fail-key=$stuck&fail-kind=500"
RAGMAP_S3_RETRY_BASE_MS=10 check persistent-ingest 0 through_proxy as_fault "$bin" ingest
expect persistent-counts "^listed $((ndocs + 2)) objects: $ndocs unchanged \(no GET\), 1 indexed, 1 failed$" "$work/out"
check persistent-status 0 as_fault "$bin" status
expect persistent-status-failed "^objects: +0 pending, $((ndocs + 1)) indexed, 0 skipped, 0 rejected, 1 failed, 0 deleted" "$work/out"
row=$(sqlite3 -readonly -batch -noheader "$fault_cat" \
	"SELECT status || ' | ' || attempts || ' | ' || coalesce(error, '') FROM objects WHERE key = '$stuck'")
case "$row" in
"failed | 1 | after 5 retries: GET s3://rag/$stuck: HTTP 500 InternalError"*) ok "persistent-reason ($row)" ;;
*) bad "persistent-reason: \"$row\"" ;;
esac
[ "$(proxy_stat persistent)" -ge 6 ] && ok "persistent-fault-hit ($(proxy_stat persistent) GETs)" ||
	bad "persistent fault hit $(proxy_stat persistent) times"

# the fault stops: a run before the failed object's retry is due leaves it
# alone (exponential backoff, ingest.retry_base_s); once due (base 0 here),
# the next run (still through the 10% faults) indexes it
proxy_set "fail-key="
RAGMAP_S3_RETRY_BASE_MS=10 check deferred-ingest 0 through_proxy as_fault "$bin" ingest
expect deferred-counts "^listed $((ndocs + 2)) objects: $((ndocs + 1)) unchanged \(no GET\), 1 failed waiting for their retry$" "$work/out"
RAGMAP_INGEST_RETRY_BASE_S=0 RAGMAP_S3_RETRY_BASE_MS=10 check recovered-ingest 0 through_proxy as_fault "$bin" ingest
expect recovered-counts "^listed $((ndocs + 2)) objects: $((ndocs + 1)) unchanged \(no GET\), 1 indexed$" "$work/out"
check recovered-status 0 as_fault "$bin" status
expect recovered-status-none-failed "^objects: +0 pending, $((ndocs + 2)) indexed, 0 skipped, 0 rejected, 0 failed, 0 deleted" "$work/out"
check recovered-verify 0 as_fault "$bin" verify --digest --keys
expect recovered-stuck-live "^live [0-9]+ $stuck$" "$work/out"
digest_fault=$(digest_of)

# the clean index catches up without faults: the two are equal again
check clean-catch-up 0 as_clean "$bin" ingest
check clean-verify-2 0 as_clean "$bin" verify --digest
equal final-digest-equals-clean "$digest_fault" "$(digest_of)"
equal final-no-duplicates "$(duplicates "$fault_cat")" 0
catalog_dump "$clean_cat" | grep -v "^o|$stuck|" >"$work/clean.dump"
catalog_dump "$fault_cat" | grep -v "^o|$stuck|" >"$work/fault.dump"
cmp -s "$work/clean.dump" "$work/fault.dump" && ok "final-catalog-equals-clean" ||
	{ bad "final catalog differs"; diff "$work/clean.dump" "$work/fault.dump" | head -5; }

echo "figures: $ndocs documents; clean ingest ${clean_s}s, through faults ${fault_s}s; $figures"
finish
