#!/usr/bin/env bash
# Every bad request gets its status and a JSON {"error": "..."}: malformed
# JSON, missing or bad q, non-UTF-8, k out of range or not an integer, an
# unknown retriever -> 400; a body over 64 KiB -> 413; GET on /v1/query ->
# 405; an unknown path -> 404. With a bearer token: missing or wrong -> 401,
# and the token never appears in a response or in the server's output.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"

ingest_corpus || { finish; exit 1; }
serve open memory || { finish; exit 1; }

# bad NAME WANT_STATUS BODY [curl args]: the status, and a JSON error object
bad_request() {
	local name=$1 want=$2 body=$3
	shift 3
	local got
	got=$(post open "$body" -D "$work/headers" "$@")
	equal "$name-status" "$got" "$want"
	jqtrue "$name-json-error" "$work/body" '(keys - ["status"]) == ["error"] and (.error | type) == "string" and
		(.error | length) > 0 and ((has("status") | not) or .status == $s) and (has("results") | not)' \
		--argjson s "$want"
	expect "$name-content-type" "^Content-Type: application/json" "$work/headers"
}

bad_request malformed 400 '{"q": "object storage", "k": 5'
bad_request not-json 400 'q=object+storage'
bad_request empty-body 400 ''
bad_request not-an-object 400 '["object storage"]'
bad_request missing-q 400 '{"k": 5}'
bad_request q-not-string 400 '{"q": 42}'
bad_request q-null 400 '{"q": null}'
bad_request non-utf8 400 "$(printf '{"q": "caf\xe9 storage"}')"
bad_request non-utf8-overlong 400 "$(printf '{"q": "\xc0\xaf"}')"
bad_request empty-q 400 '{"q": ""}'
bad_request whitespace-q 400 "$(printf '{"q": " \\t\\n  "}')"
bad_request k-zero 400 '{"q": "object storage", "k": 0}'
bad_request k-negative 400 '{"q": "object storage", "k": -3}'
bad_request k-101 400 '{"q": "object storage", "k": 101}'
bad_request k-string 400 '{"q": "object storage", "k": "5"}'
bad_request k-float 400 '{"q": "object storage", "k": 2.5}'
bad_request k-huge 400 '{"q": "object storage", "k": 99999999999999999999}'
bad_request retriever-unknown 400 '{"q": "object storage", "retriever": "sparse"}'
bad_request retriever-not-string 400 '{"q": "object storage", "retriever": 1}'
bad_request q-too-long 400 "{\"q\": \"$(head -c 5000 /dev/zero | tr '\0' 'a')\"}"
bad_request q-with-nul 400 '{"q": "object\u0000storage"}'
# a body over the 64 KiB limit: 413, and the server keeps serving
big=$(head -c 70000 /dev/zero | tr '\0' 'x')
bad_request body-too-large 413 "{\"q\": \"$big\"}"
equal after-413-still-serving "$(post open '{"q": "object storage"}')" 200
# exactly at the limit is not "too large" (it fails later, as too long a q)
at=$(head -c $((65536 - 9)) /dev/zero | tr '\0' 'x')
equal body-at-limit "$(post open "{\"q\": \"$at\"}")" 400
jqtrue body-at-limit-reason "$work/body" '.error | test("longer than")'

# methods and paths
equal get-query-405 "$(get open /v1/query)" 405
jqtrue get-query-405-json "$work/body" '(.error | type) == "string"'
equal put-query-405 "$(curl -sS -o "$work/body" -w '%{http_code}' -X PUT --data '{"q":"x"}' "$(url open)/v1/query")" 405
equal post-status-405 "$(curl -sS -o "$work/body" -w '%{http_code}' -X POST --data '{}' "$(url open)/v1/status")" 405
equal unknown-path-404 "$(get open /v1/nope)" 404
jqtrue unknown-path-404-json "$work/body" '(.error | type) == "string"'
equal query-subpath-404 "$(get open /v1/query/extra)" 404

# bad requests are counted as such and never as answered queries
get open /metrics >/dev/null
cp "$work/body" "$work/open.metrics"
[ "$(metric "$work/open.metrics" 'ragmap_queries_total{outcome="bad_request"}')" -ge 22 ] &&
	ok bad-requests-counted || bad "bad-requests-counted: $(metric "$work/open.metrics" 'ragmap_queries_total{outcome="bad_request"}')"
equal bad-requests-not-errors "$(metric "$work/open.metrics" 'ragmap_queries_total{outcome="error"}')" 0
equal bad-requests-not-ok "$(metric "$work/open.metrics" 'ragmap_queries_total{outcome="ok"}')" 1
stop open

# ---- the bearer token
token="tok-$RANDOM-SeCrEt-$$-value"
serve locked pointer RAGMAP_QUERY_TOKEN="$token" RAGMAP_LOG=debug RAGMAP_TRACE=http,s3,query || { finish; exit 1; }
: >"$work/responses"
keep() { cat "$work/headers" "$work/body" >>"$work/responses" 2>/dev/null; }
equal token-missing-401 "$(post locked '{"q": "object storage"}' -D "$work/headers")" 401
keep
jqtrue token-missing-json "$work/body" '(.error | type) == "string"'
equal token-wrong-401 "$(post locked '{"q": "object storage"}' -D "$work/headers" -H "Authorization: Bearer ${token}x")" 401
keep
equal token-prefix-401 "$(post locked '{"q": "object storage"}' -D "$work/headers" -H "Authorization: Bearer ${token:0:10}")" 401
keep
equal token-not-bearer-401 "$(post locked '{"q": "object storage"}' -D "$work/headers" -H "Authorization: Basic $token")" 401
keep
equal token-status-401 "$(get locked /v1/status -D "$work/headers")" 401
keep
equal token-metrics-401 "$(get locked /metrics -D "$work/headers")" 401
keep
equal token-right-200 "$(post locked '{"q": "object storage"}' -D "$work/headers" -H "Authorization: Bearer $token")" 200
keep
jqtrue token-right-answer "$work/body" '(.results | length) == 5'
# a bad request with the right token is still a 400 (and echoes nothing secret)
equal token-right-bad-400 "$(post locked "{\"q\": \"\", \"note\": \"$token\"}" -D "$work/headers" -H "Authorization: Bearer $token")" 400
keep
equal token-status-200 "$(get locked /v1/status -D "$work/headers" -H "Authorization: Bearer $token")" 200
keep
equal token-metrics-200 "$(get locked /metrics -D "$work/headers" -H "Authorization: Bearer $token")" 200
keep
equal token-unauthorized-counted "$(metric "$work/body" 'ragmap_queries_total{outcome="unauthorized"}')" 6
equal token-healthz-open "$(get locked /healthz -D "$work/headers")" 200
keep
# ragmap query --server and bench load take the token from the configuration
RAGMAP_QUERY_TOKEN="$token" check client-with-token 0 "$bin" query "object storage" --server "$(url locked)" --json
cat "$work/out" "$work/err" >>"$work/responses"
check client-without-token 1 "$bin" query "object storage" --server "$(url locked)"
cat "$work/out" "$work/err" >>"$work/responses"
expect client-without-token-401 "HTTP 401" "$work/err"
RAGMAP_QUERY_TOKEN="$token" check load-with-token 0 "$bin" bench load --url "$(url locked)" --clients 2 --requests 20
cat "$work/out" "$work/err" >>"$work/responses"
RAGMAP_QUERY_TOKEN="${token}x" check load-wrong-token 1 "$bin" bench load --url "$(url locked)" --clients 2 --requests 4
cat "$work/out" "$work/err" >>"$work/responses"
RAGMAP_QUERY_TOKEN="$token" check config-show 0 "$bin" config show
cat "$work/out" "$work/err" >>"$work/responses"
stop locked
[ -s "$work/locked.err" ] && ok server-logged-something || bad "server-logged-something (trace on)"
expect_not token-not-in-responses "$token" "$work/responses"
expect_not token-not-in-server-stderr "$token" "$work/locked.err"
expect_not token-not-in-server-stdout "$token" "$work/locked.out"
finish
