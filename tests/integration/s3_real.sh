#!/usr/bin/env bash
# The S3 client against a store that checks every signature (the fixture's
# Ceph RGW): keys that need encoding round-trip through every verb, a
# listing across pages with RGW's raw-key continuation tokens, 20 MiB
# single-part and multipart uploads read back byte for byte, objects
# uploaded by another client are ingested, every command fails in one
# clear line with a wrong secret and with a missing bucket, and a piped GET
# through 30% faults is resumed into exactly the object.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
. "$top/tests/tools/fault-common.sh"

p="real-$ns"

# --- keys that need encoding: put, stat, get, ls -r, rm
names=(
	"space in name.txt" "ünï cödé.txt" "plus+sign.txt" "equals=sign.txt" "per%cent.txt"
	"amp&ersand.txt" "hash#tag.txt" "quest?ion.txt" "semi;colon.txt" "com,ma.txt"
	"bang!.txt" "star*.txt" "quote'.txt" "(paren).txt" "double//slash.txt" "./dot-slash.txt"
	"../dot-dot.txt" "emoji-😀.txt" "$(printf 'tab\there.txt')" "trailing space.txt "
	"k 1000 +=%ü&.txt"
)
i=0
for name in "${names[@]}"; do
	i=$((i + 1))
	key="$p/keys/$name"
	printf 'body %d: %s\n' "$i" "$name" >"$work/k.txt"
	if ! "$bin" s3 put "$work/k.txt" "$key" >/dev/null 2>"$work/err"; then
		bad "put [$name]: $(cat "$work/err")"; continue
	fi
	"$bin" s3 stat "$key" >"$work/out" 2>"$work/err" || { bad "stat [$name]: $(cat "$work/err")"; continue; }
	grep -qx "size: $(wc -c <"$work/k.txt")" "$work/out" || bad "stat size [$name]"
	"$bin" s3 get "$key" - >"$work/got" 2>"$work/err" || { bad "get [$name]: $(cat "$work/err")"; continue; }
	cmp -s "$work/got" "$work/k.txt" || bad "get bytes [$name]"
done
keys "$p/keys/" >"$work/listed"
for name in "${names[@]}"; do
	grep -qxF -- "$p/keys/$name" "$work/listed" || bad "ls -r lists [$name]"
done
equal keys-listed "$(wc -l <"$work/listed")" "${#names[@]}"
ok "keys round-trip (${#names[@]} names)"
# every other key by its own DELETE, the rest in one multi-object delete
# (their names travel in the POST's XML body: tab, '&', trailing space)
multi=()
for j in "${!names[@]}"; do
	if [ $((j % 2)) = 0 ]; then
		"$bin" s3 rm "$p/keys/${names[$j]}" >/dev/null 2>"$work/err" ||
			bad "rm [${names[$j]}]: $(cat "$work/err")"
	else
		multi+=("$p/keys/${names[$j]}")
	fi
done
check rm-multi 0 "$bin" s3 rm "${multi[@]}"
equal keys-removed "$(keys "$p/keys/" | wc -l)" 0

# --- a prefix and a delimiter listing under a name that needs encoding
odd="$p/odd pre+fix&=%ü #?/"
printf 'a' >"$work/a.txt"
for k in "a b/one.txt" "a b/two.txt" "c.txt"; do
	"$bin" s3 put "$work/a.txt" "$odd$k" >/dev/null 2>"$work/err" || bad "put [$odd$k]: $(cat "$work/err")"
done
check ls-odd-delim 0 "$bin" s3 ls "$odd"
expect ls-odd-common-prefix "PRE +$(re_quote "${odd}a b/")\$" "$work/out"
equal ls-odd-delim-lines "$(wc -l <"$work/out")" 2
check ls-odd-prefix 0 "$bin" s3 ls -r "${odd}a b/"
equal ls-odd-prefix-lines "$(wc -l <"$work/out")" 2
check rm-odd 0 "$bin" s3 rm "${odd}a b/one.txt" "${odd}a b/two.txt" "${odd}c.txt"

# --- 1,100+ keys across pages (1,000 keys a page; RGW's tokens are raw keys)
mkdir -p "$work/many/sub dir"
for j in $(seq 1 1105); do printf '%d' "$j" >"$work/many/k $j +=%ü&.txt"; done
check put-many 0 "$bin" s3 put "$work/many" "$p/many/"
check ls-many 0 "$bin" s3 ls -r "$p/many/"
equal listed-across-pages "$(wc -l <"$work/out")" 1105
check ls-many-delim 0 "$bin" s3 ls "$p/"
expect ls-many-prefix "PRE .*$p/many/" "$work/out"

# --- 20 MiB, single-part and multipart, read back byte for byte
head -c $((20 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
want=$(sha256sum <"$work/big.bin" | cut -d' ' -f1)
check put-single 0 "$bin" s3 put "$work/big.bin" "$p/big/single.bin"
equal single-bytes "$("$bin" s3 get "$p/big/single.bin" - | sha256sum | cut -d' ' -f1)" "$want"
RAGMAP_S3_MULTIPART_THRESHOLD=5MiB RAGMAP_S3_PART_SIZE=5MiB \
	check put-multipart 0 "$bin" s3 put "$work/big.bin" "$p/big/multi.bin"
check stat-multipart 0 "$bin" s3 stat "$p/big/multi.bin"
expect multipart-etag "^etag: [0-9a-f]{32}-4$" "$work/out"
equal multipart-bytes "$("$bin" s3 get "$p/big/multi.bin" - | sha256sum | cut -d' ' -f1)" "$want"
check get-file 0 "$bin" s3 get "$p/big/multi.bin" "$work/back.bin"
cmp -s "$work/back.bin" "$work/big.bin" && ok get-file-bytes || bad get-file-bytes

# --- objects uploaded by another client (curl's own SigV4) are ingested
for d in alpha beta; do
	printf '# %s\n\nThe %s document is about object storage in a RAG pipeline.\n' "$d" "$d" >"$work/$d.md"
	code=$(curl -s -o "$work/curl.out" -w '%{http_code}' -T "$work/$d.md" \
		--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: $(sha256sum <"$work/$d.md" | cut -d' ' -f1)" \
		"$AWS_ENDPOINT_URL/rag/$src$d.md")
	equal "curl-put-$d" "$code" 200
done
check ingest-foreign 0 "$bin" ingest --quiet
equal foreign-docs-indexed "$(sql "SELECT count(*) FROM objects WHERE status = 'indexed'")" 2
check query-foreign 0 "$bin" query "beta document" -k 1 --mode memory
expect query-foreign-hit "beta\.md" "$work/out"

# --- every command with a wrong secret: exit 1, one line naming the signature
# (the daemon would run on if it did not fail: timeout ends it)
printf '1\tstorage\n' >"$work/q.tsv"
printf '1 0 %s 1\n' "${src}alpha.md" >"$work/qrels.txt"
cmds=("s3 ls" "s3 get $src/alpha.md -" "s3 stat ${src}alpha.md" "s3 put $work/alpha.md $p/x.md"
	"s3 rm $p/x.md" "s3 notify ls" "status" "ingest" "daemon" "query storage -k 1" "verify"
	"gc" "compact" "model fit" "embed hello" "cost" "eval --queries $work/q.tsv --qrels $work/qrels.txt"
	"bench get $src" "bench s3 --large 1MiB --small-count 2 --levels 1 --rounds 1")
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	AWS_SECRET_ACCESS_KEY=wrong-secret-$$ check "wrong-secret: $c" 1 timeout 60 "$bin" $c
	expect "wrong-secret-says-signature: $c" "signature|credentials" "$work/err"
	equal "wrong-secret-one-line: $c" "$(wc -l <"$work/err")" 1
	expect_not "wrong-secret-not-shown: $c" "wrong-secret-$$" "$work/err"
done
# the server, which would serve on if it started
AWS_SECRET_ACCESS_KEY=wrong-secret-$$ check wrong-secret-serve 1 timeout 60 "$bin" serve --listen 127.0.0.1:0
expect wrong-secret-serve-says "signature" "$work/err"
equal wrong-secret-serve-one-line "$(wc -l <"$work/err")" 1
expect_not wrong-secret-serve-not-shown "wrong-secret-$$" "$work/err"
RAGMAP_S3_BUCKET=no-such-bucket-$$ check no-bucket-serve 1 timeout 60 "$bin" serve --listen 127.0.0.1:0
expect no-bucket-serve-named "no such bucket \"no-such-bucket-$$\"" "$work/err"

# --- every command with a missing bucket: exit 1, naming the bucket
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	RAGMAP_S3_BUCKET=no-such-bucket-$$ check "no-bucket: $c" 1 timeout 60 "$bin" $c
	expect "no-bucket-named: $c" "no such bucket \"no-such-bucket-$$\"" "$work/err"
done

# --- 20 piped GETs through 30% faults: resumed, each exactly the object
# (faultproxy keeps one --ignore string: the namespace, in every key here)
export RAGMAP_S3_RETRY_BASE_MS=5 RAGMAP_S3_MAX_RETRIES=12
injected=0
for seed in $(seq 1 20); do
	start_proxy --seed "$seed" --rate 0.3 --ignore "$ns"
	through_proxy "$bin" s3 get "$p/big/multi.bin" - 2>"$work/err" | sha256sum | cut -d' ' -f1 >"$work/sum"
	equal "piped-get-$seed" "$(cat "$work/sum")" "$want"
	injected=$((injected + $(proxy_stat injected)))
	stop_proxy
done
# (the proxy's log holds all 20 runs). Which first requests fail is fixed by
# the seeds (the namespace is left out of the request identities), so some
# of them are always cut mid-body; how many faults the resumed requests meet
# depends on where the cuts fell.
resumed=$(grep -cE " bytes=[1-9][0-9]*- -> 206" "$work/proxy.log")
[ "$injected" -ge 1 ] && ok "faults injected ($injected)" || bad "faults injected: none"
[ "$resumed" -ge 1 ] && ok "resumed mid-body ($resumed times)" || bad "no piped get was resumed mid-body"

# a changed object is never spliced: the first answer is cut short, the
# object is replaced before the resume reaches the store (every request
# waits 1.5 s in the proxy), the resume is refused (412) and the output is
# a prefix of the first version only
head -c $((2 * 1024 * 1024)) /dev/urandom >"$work/v1.bin"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$work/v2.bin"
key="$p/big/changing.bin"
check put-v1 0 "$bin" s3 put "$work/v1.bin" "$key"
start_proxy --seed 1 --rate 0 --latency-ms 1500 --fail-key "$key" --fail-kind truncate
# into a pipe: a regular file would be rewound and rewritten instead
(
	through_proxy "$bin" s3 get "$key" - 2>"$work/change.err" | cat >"$work/change.out"
	echo "${PIPESTATUS[0]}" >"$work/change.rc"
) &
gpid=$!
for _ in $(seq 1 100); do [ "$(proxy_stat persistent)" -ge 1 ] && break; sleep 0.02; done
proxy_set "fail-key="
for _ in $(seq 1 200); do [ "$(proxy_stat forwarded)" -ge 1 ] && break; sleep 0.02; done
"$bin" s3 put "$work/v2.bin" "$key" >/dev/null 2>&1 || bad "put-v2"
wait "$gpid"
equal changed-object-exit "$(cat "$work/change.rc")" 1
expect changed-object-says "object changed during the transfer" "$work/change.err"
n=$(stat -c %s "$work/change.out")
[ "$n" -gt 0 ] && [ "$n" -lt $((2 * 1024 * 1024)) ] && cmp -s -n "$n" "$work/change.out" "$work/v1.bin" &&
	ok "changed-object: the output is the first $n bytes of version 1" ||
	bad "changed-object: $n bytes, not a prefix of version 1"
grep -qE " bytes=$n- -> 412" "$work/proxy.log" && ok changed-object-412 || bad "changed-object: no 412 for the resume"
stop_proxy
finish
