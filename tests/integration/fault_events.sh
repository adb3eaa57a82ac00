#!/usr/bin/env bash
# An event whose key the store will not answer for (a persistent fault on
# that key in the proxy between the daemon and the store): the pass fails,
# the key goes back in the queue and is tried again after a backoff (1 s,
# doubling), without a hot loop of requests; once the fault stops, the
# key is indexed with no new event and no poll.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/fault-common.sh"
export RAGMAP_INGEST_POLL_S=3600 RAGMAP_INGEST_REFIT_GROWTH=0 RAGMAP_S3_RETRY_BASE_MS=10 \
	RAGMAP_S3_MAX_RETRIES=2
dpid=
kill_servers() { [ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null; }

printf '# Seed\n\nA first document about barometers.\n' >"$work/seed.md"
check put-seed 0 "$bin" s3 put "$work/seed.md" "${src}seed.md"
start_proxy
listen_daemon AWS_ENDPOINT_URL="$proxy_url" || { finish; exit; }
for _ in $(seq 1 200); do [ "$(daemon_status | jq -r .version)" = 1 ] && break; sleep 0.05; done
equal first-pass "$(daemon_status | jq -r .version)" 1

stuck="${src}stuck.md"
printf '# Stuck\n\nA document about hygrometers.\n' >"$work/stuck.md"
check put-stuck 0 "$bin" s3 put "$work/stuck.md" "$stuck"
proxy_set "fail-key=$stuck&fail-kind=500"
event="{\"Records\": [{\"eventName\": \"ObjectCreated:Put\", \"s3\": {\"bucket\": {\"name\": \"rag\"}, \"object\": {\"key\": \"$stuck\"}}}]}"
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$dport/v1/events" -d "$event")
equal event-accepted "$code" 200
sleep 4
daemon_status >"$work/status.json"
jqtrue pass-failed-and-requeued "$work/status.json" \
	'(.last_pass.error | test("stuck.md")) and .events.queued == 1 and .events.taken >= 2'
# backoff: in 4 s, 1 + 2 s waits allow 3 tries of 3 HEADs each (2 retries)
hits=$(proxy_stat persistent)
[ "$hits" -ge 3 ] && [ "$hits" -le 15 ] && ok "tries-backed-off ($hits faulted requests in 4 s)" ||
	bad "the stuck key was tried $hits times in 4 s"
expect requeued-logged "events: pass over 1 keys failed \(requeued, next try in [0-9]+ ms\)" "$work/daemon.err"

proxy_set "fail-key="
for _ in $(seq 1 300); do
	[ "$(daemon_status | jq -r '.last_pass.error // empty')" = "" ] && [ "$(daemon_status | jq -r .last_pass.documents)" = 1 ] && break
	sleep 0.1
done
daemon_status >"$work/status.json"
jqtrue indexed-after-the-fault "$work/status.json" '.last_pass.kind == "events" and .last_pass.documents == 1 and .events.waiting == 0'
check verify-source 0 "$bin" verify --source --keys
expect stuck-live "^live [0-9]+ $stuck$" "$work/out"
kill -TERM "$dpid"
wait "$dpid"
equal sigterm-exit-0 $? 0
dpid=
finish
