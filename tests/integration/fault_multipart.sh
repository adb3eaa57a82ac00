#!/usr/bin/env bash
# Multipart uploads under storage faults (issue 6): a 42 MiB object in 5 MiB
# parts (9 parts, the last one short), put through faultproxy at a 30% fault
# rate, three times. Each upload must succeed and read back byte for byte
# (SHA-256); faults were injected and retried (the part requests carry the
# random upload id, so which requests fail differs from run to run: the
# checks are on the three uploads together, 33 requests). Then one part
# that always fails: the put exits 1 naming the key, the upload is aborted
# (the proxy saw the AbortMultipartUpload), no object appears, and a put
# after the fault stops completes. Last, the completion's answer is lost
# every time while the server did complete: the upload still succeeds.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"
. "$top/tests/tools/fault-common.sh"

export RAGMAP_S3_MULTIPART_THRESHOLD=5MiB RAGMAP_S3_PART_SIZE=5MiB RAGMAP_S3_RETRY_BASE_MS=5 \
	RAGMAP_S3_MAX_RETRIES=8
head -c $((42 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
want=$(sha256sum <"$work/big.bin" | cut -d' ' -f1)

injected=0
retries=0
for seed in 1 2 3; do
	key="mp-$ns/big-$seed.bin"
	start_proxy --seed "$seed" --rate 0.3 --ignore "$ns"
	check "put-seed-$seed" 0 through_proxy "$bin" s3 put --stats "$work/big.bin" "$key"
	injected=$((injected + $(proxy_stat injected)))
	retries=$((retries + $(sed -n 's/.*, \([0-9]*\) retries,.*/\1/p' "$work/err" | awk '{ s += $1 } END { print s + 0 }')))
	# read back directly, not through the proxy
	got=$("$bin" s3 get "$key" - | sha256sum | cut -d' ' -f1)
	equal "seed-$seed-same-bytes" "$got" "$want"
	# it was a multipart upload: parts 1..9 each answered 200 once at least,
	# then one CompleteMultipartUpload
	parts=$(grep -oE 'PUT [^ ]*partNumber=[0-9]+[^ ]* -> 200' "$work/proxy.log" |
		grep -oE 'partNumber=[0-9]+' | sort -u | wc -l)
	equal "seed-$seed-nine-parts" "$parts" 9
	grep -qE '^[0-9]+ POST [^ ]*uploadId=[^ ]* -> 200' "$work/proxy.log" && ok "seed-$seed-completed" ||
		bad "seed-$seed-completed: no CompleteMultipartUpload answered 200"
	stop_proxy
done

[ "$injected" -gt 0 ] && ok "faults-injected ($injected)" || bad "faults-injected: none"
[ "$retries" -gt 0 ] && ok "faults-retried ($retries)" || bad "faults-retried: none"

# one part always fails: the upload is aborted and nothing appears
key="mp-$ns/aborted.bin"
start_proxy --seed 1 --rate 0 --fail-key "mp-$ns/aborted.bin" --fail-query "partNumber=4"
check put-persistent-fault 1 through_proxy "$bin" s3 put "$work/big.bin" "$key"
expect put-error-names-key "aborted\.bin" "$work/err"
[ "$(proxy_stat persistent)" -ge 1 ] && ok persistent-fault-hit || bad "persistent fault never hit"
grep -E '^[0-9]+ DELETE .*uploadId=.* -> 204' "$work/proxy.log" >/dev/null && ok upload-aborted ||
	{ bad "upload-aborted: no DELETE ?uploadId= answered 204 in the proxy log"; tail -5 "$work/proxy.log"; }
check no-object-after-abort 1 "$bin" s3 stat "$key"
proxy_set "fail-key="
check put-after-fault 0 through_proxy "$bin" s3 put "$work/big.bin" "$key"
equal after-fault-same-bytes "$("$bin" s3 get "$key" - | sha256sum | cut -d' ' -f1)" "$want"
# the completion's answer is lost every time (the connection is reset in
# the middle of it) although the server completed the upload: the client
# finds the object with this size and these parts' ETag, and succeeds
key="mp-$ns/lost-answer.bin"
start_proxy --seed 1 --rate 0 --fail-key "$key" --fail-query "?uploadId=" --fail-kind reset-body
check completion-answer-lost 0 through_proxy "$bin" s3 put --stats "$work/big.bin" "$key"
[ "$(proxy_stat persistent)" -ge 2 ] && ok completion-retried || bad "completion-retried: $(proxy_stat persistent)"
equal completion-lost-same-bytes "$("$bin" s3 get "$key" - | sha256sum | cut -d' ' -f1)" "$want"
stop_proxy
check rm-all 0 "$bin" s3 rm "mp-$ns/big-1.bin" "mp-$ns/big-2.bin" "mp-$ns/big-3.bin" \
	"mp-$ns/aborted.bin" "$key"
check none-left 0 "$bin" s3 ls -r "mp-$ns/"
equal none-left-lines "$(wc -l <"$work/out")" 0
finish
