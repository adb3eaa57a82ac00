#!/usr/bin/env bash
# Security, end to end:
#  - credentials: a distinctive secret key and bearer token go through an
#    ingest, the CLI (s3, query, config, errors) and a server (queries, 401s,
#    /metrics, /v1/status, the page, its query log), all at debug level with
#    every trace area on; neither appears in any stdout, stderr, local file
#    or object written (the key pair is added to the local store for this
#    test; its key id is checked too, but only outside the requests themselves);
#  - the server binds loopback by default and only there;
#  - object keys made to look like paths ("..", absolute, backslashes,
#    percent-encoded and look-alike unicode dots and slashes) are ingested
#    as the names they are: nothing is written outside local.dir, and every
#    local file is one ragmap names itself;
#  - query text cannot inject SQL or FTS5 syntax, through the CLI or HTTP,
#    with any retriever: it is searched for as words, the catalog is intact.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

secret="sk-$RANDOM-Very-SeCrEt-Key-$$"
token="tok-$RANDOM-Bearer-SeCrEt-$$"
key_id="AKSEC$$$RANDOM"
"$top/scripts/s3-local.sh" key "$RAGMAP_TEST_S3_DIR" "$key_id" "$secret" || { bad "cannot add a key to the store"; exit 1; }
export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret RAGMAP_LOG=debug RAGMAP_TRACE=all
out=$work/outputs
mkdir -p "$out"

# ---- tricky keys, uploaded next to the corpus
tricky=(
	"..%2F..%2Fescape-pct.md"
	"..\\..\\escape-backslash.md"
	"$(printf '\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8fescape-fullwidth.md')"
	"$(printf '\xe2\x80\xa5\xe2\x88\x95escape-leader.md')"
	"dir/..%2e/escape-mixed.md"
	"~/escape-home.md"
)
printf '# Tricky\n\nA document with a path-like key about zebra quokka storage.\n' >"$work/tricky.md"
i=0
for k in "${tricky[@]}"; do
	"$bin" s3 put "$work/tricky.md" "$src$k" >"$out/put-$i.out" 2>&1 || bad "put tricky key $i: $k"
	i=$((i + 1))
done
# what the store kept (the local S3 server may rewrite some keys, and it
# answers 404 to a key with "//", so no absolute-looking key after the
# prefix): the test holds ragmap to those names
keys "$src" 2>"$out/ls.err" >"$work/stored"
ntricky=$(grep -c escape- "$work/stored")
[ "$ntricky" -ge 6 ] && ok "tricky-keys-stored ($ntricky)" || bad "tricky-keys-stored: only $ntricky"

touch "$work/marker"
sleep 1
ingest_corpus || { finish; exit 1; }
cp "$work/ingest.out" "$out/ingest.out"
# every stored key is a live document under its own name
"$bin" verify --keys >"$out/verify.out" 2>&1 || bad "verify"
sed -n 's/^live [0-9]* //p' "$out/verify.out" >"$work/live"
while IFS= read -r key; do
	grep -qxF -- "$key" "$work/live" && ok "indexed-by-name: $key" || bad "indexed-by-name: $key not live"
done < <(grep escape- "$work/stored")
# nothing new anywhere around the work directory but in local.dir
find "$(dirname "$work")" -maxdepth 3 -newer "$work/marker" -name '*escape-*' 2>/dev/null >"$work/outside"
find / -xdev -maxdepth 4 -newer "$work/marker" -name '*escape-*' -not -path "$work/*" 2>/dev/null >>"$work/outside"
equal no-file-outside-local "$(cat "$work/outside")" ""
find "$work/local" -type f | sed "s|^$work/local/||" | grep -Ev "^$idx/(catalog\.sqlite(-wal|-shm|-journal)?)$" >"$work/unexpected"
equal local-files-are-ragmaps "$(cat "$work/unexpected")" ""

# ---- the CLI, with errors
"$bin" s3 ls "$src" >"$out/ls.out" 2>>"$out/ls.err"
"$bin" s3 get "${src}no-such-key.md" - >"$out/get-missing.out" 2>&1
"$bin" s3 get "$src$(sed -n 1p <<<"$(grep escape- "$work/stored")")" - >"$out/get-tricky.out" 2>&1
"$bin" config show >"$out/config-show.out" 2>&1
"$bin" query "object storage" --mode pointer >"$out/query.out" 2>&1
"$bin" query "object storage" --mode object --json >"$out/query-json.out" 2>&1
RAGMAP_S3_BUCKET=no-such-bucket-$$ "$bin" query "object storage" >"$out/query-nobucket.out" 2>&1
AWS_ENDPOINT_URL=http://127.0.0.1:1 RAGMAP_S3_MAX_RETRIES=1 "$bin" s3 ls >"$out/ls-refused.out" 2>&1
expect config-show-redacts "secret_access_key = <redacted>" "$out/config-show.out"

# ---- loopback by default
equal default-listen-loopback "$(RAGMAP_LOG=error "$bin" config show | sed -n '/^\[query\]/,/^\[/s/^listen = //p')" "127.0.0.1:8080"
serve sec memory RAGMAP_QUERY_TOKEN="$token" RAGMAP_QUERY_LOG_FLUSH_S=1 || { finish; exit 1; }
hexport=$(printf '%04X' "${sport[sec]}")
# /proc/net/tcp: local address 0100007F = 127.0.0.1, state 0A = LISTEN
equal bound-loopback-only "$(awk -v p=":$hexport" '$4 == "0A" && substr($2, 9) == p { print $2 }' /proc/net/tcp /proc/net/tcp6)" "0100007F:$hexport"

# ---- the token, and injection through HTTP
auth=(-H "Authorization: Bearer $token")
equal no-token-401 "$(post sec '{"q": "object storage"}')" 401
cp "$work/body" "$out/401.json"
equal wrong-token-401 "$(post sec '{"q": "object storage"}' -H "Authorization: Bearer x$token")" 401
cp "$work/body" "$out/401-wrong.json"
equal status-before "$(get sec /v1/status "${auth[@]}")" 200
chunks=$(jq .counts.chunks "$work/body")
post sec '{"q": "zebra quokka", "k": 10, "retriever": "bm25"}' "${auth[@]}" >/dev/null
cp "$work/body" "$out/bm25-ref.json"
jqtrue bm25-finds-tricky-docs "$out/bm25-ref.json" '[.results[] | select(.key | test("escape-"))] | length >= 5'
injections=(
	'"NEAR(" OR * ) -- ; DROP TABLE chunks; x:y ^ AND'
	"'); DROP TABLE chunks; --"
	'zebra" OR "1"="1'
	'chunks MATCH "object" UNION SELECT text FROM chunks --'
	'{quokka} + NOT zebra* :^ "'
	'zebra quokka; PRAGMA writable_schema=1;'
)
for mode in bm25 hybrid dense; do
	n=0
	for q in "${injections[@]}"; do
		body=$(jq -cn --arg q "$q" --arg r $mode '{q: $q, k: 5, retriever: $r}')
		st=$(post sec "$body" "${auth[@]}")
		cp "$work/body" "$out/inject-$mode-$n.json"
		[ "$st" = 200 ] && jq -e '(.results | type) == "array"' "$work/body" >/dev/null ||
			bad "inject-$mode-$n: HTTP $st $(head -c 300 "$work/body")"
		n=$((n + 1))
	done
	ok "injection-answered-$mode"
	# the CLI path too, with the same texts
	for q in "${injections[@]}"; do
		"$bin" query --retriever $mode -k 3 -- "$q" >>"$out/inject-cli.out" 2>&1 || bad "cli inject $mode: $q"
	done
done
# words inside the injections are searched for as words
post sec "$(jq -cn --arg q "${injections[2]}" '{q: $q, k: 10, retriever: "bm25"}')" "${auth[@]}" >/dev/null
jqtrue injection-is-words "$work/body" '[.results[] | select(.key | test("escape-"))] | length >= 5'
equal status-after "$(get sec /v1/status "${auth[@]}")" 200
equal catalog-intact "$(jq .counts.chunks "$work/body")" "$chunks"
post sec '{"q": "zebra quokka", "k": 10, "retriever": "bm25"}' "${auth[@]}" >/dev/null
equal bm25-unchanged "$(jq -c '[.results[] | [.key, .chunk, .score]]' "$work/body")" \
	"$(jq -c '[.results[] | [.key, .chunk, .score]]' "$out/bm25-ref.json")"
get sec /metrics "${auth[@]}" >/dev/null; cp "$work/body" "$out/metrics.txt"
get sec /v1/status "${auth[@]}" >/dev/null; cp "$work/body" "$out/status.json"
get sec / "${auth[@]}" >/dev/null; cp "$work/body" "$out/page.html"
sleep 2 # the query log flushes every second
stop sec

# ---- look for the secrets everywhere: outputs, local files, stored objects
cp "$work"/*.out "$work"/*.err "$out/" 2>/dev/null
for p in "indexes/$idx/" "models-$ns/" "logs-$ns/"; do
	keys "$p" 2>>"$out/ls-all.err"
done >"$work/objects"
mkdir -p "$work/objs"
n=0
while IFS= read -r key; do
	RAGMAP_LOG=error RAGMAP_TRACE= "$bin" s3 get "$key" "$work/objs/$n" 2>/dev/null || bad "get $key"
	n=$((n + 1))
done <"$work/objects"
[ "$(grep -c "^logs-$ns/" "$work/objects")" -ge 1 ] && ok query-log-written || bad "query-log-written: no object under logs-$ns/"
[ "$n" -ge 5 ] && ok "objects-fetched ($n)" || bad "objects-fetched: $n"
for what in secret token; do
	val=${!what}
	if grep -rlaF -- "$val" "$out" "$work/local" "$work/objs" >"$work/leaks"; then
		bad "no-$what-anywhere: found in $(tr '\n' ' ' <"$work/leaks")"
	else
		ok "no-$what-anywhere"
	fi
done
# the access key id: the requests carry it, nothing ragmap writes should
if grep -rlaF -- "Credential=$key_id" "$out" "$work/local" "$work/objs" >"$work/leaks"; then
	bad "no-signature-header-in-output: found in $(tr '\n' ' ' <"$work/leaks")"
else
	ok "no-signature-header-in-output"
fi
# the outputs were real: the traces ran and the errors were reported
[ "$(cat "$out"/*.out "$out"/*.err 2>/dev/null | wc -l)" -gt 100 ] && ok outputs-nonempty || bad outputs-nonempty
expect missing-key-error 'no-such-key\.md' "$out/get-missing.out"
expect refused-error '127\.0\.0\.1:1|connect' "$out/ls-refused.out"
finish
