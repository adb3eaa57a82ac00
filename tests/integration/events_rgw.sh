#!/usr/bin/env bash
# Ceph RGW pushing its bucket notifications to `ragmap daemon --listen`,
# configured with `ragmap s3 notify add` as the deployment does it: a
# topic whose push endpoint carries the daemon's token in its query string,
# one rule on the source prefix. The topic is not persistent: RGW 16.2
# pushes a persistent topic's queue about every 30 s (measured here: 30 s
# from upload to event), a plain one inside the upload's own request. The daemon polls once an
# hour, so everything below arrives through RGW's events:
#  - uploads (keys with spaces, '+' and '%', which RGW sends raw) are
#    indexed, and a query server following LATEST (query.reload_s = 1)
#    answers with them; the time from the upload's end to the first answer
#    naming it is printed (the 2 s target is measured by bench/cluster.sh);
#  - an overwrite replaces, a delete tombstones;
#  - `ragmap s3 notify rm` stops the events (a later upload waits for the
#    poll), and verify --source after a full pass (SIGHUP) passes.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/query-common.sh"
export RAGMAP_INGEST_POLL_S=3600 RAGMAP_INGEST_REFIT_GROWTH=0 RAGMAP_INGEST_TOKEN=rgwtok-$RANDOM \
	RAGMAP_QUERY_RELOAD_S=1
topic="t-$ns"
dpid=
kill_servers() { # at exit: the daemon, the rule, the query server
	local name
	[ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null
	"$bin" s3 notify rm --topic "$topic" >/dev/null 2>&1
	for name in "${!spid[@]}"; do kill -KILL "${spid[$name]}" 2>/dev/null; done
	wait 2>/dev/null
}

# a first document, so that the query server has a version to load
printf '# Seed\n\nThe seed document about anemometers.\n' >"$work/seed.md"
check put-seed 0 "$bin" s3 put "$work/seed.md" "${src}seed.md"
listen_daemon || { finish; exit; }
for _ in $(seq 1 200); do [ "$(daemon_status | jq -r .version)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
equal first-poll-version-1 "$(daemon_status | jq -r .version)" 1

# the push URL holds the token: from stdin, never on a command line
echo "http://127.0.0.1:$dport/v1/events?token=$RAGMAP_INGEST_TOKEN" |
	check notify-add 0 "$bin" s3 notify add --topic "$topic" --push - --prefix "$src"
expect_not notify-add-hides-token "$RAGMAP_INGEST_TOKEN" "$work/out"
serve q memory
url=$(url q)

# search QUERY: the keys of the hits through the server
search() { # bm25: the model was fitted on the seed alone
	curl -s -XPOST "$url/v1/query" -d "{\"q\": \"$1\", \"k\": 3, \"retriever\": \"bm25\"}" |
		jq -r '.results[].key' 2>/dev/null
}
# wait_hit KEY QUERY: until an answer names KEY; prints the seconds taken
wait_hit() {
	local t0 now
	t0=$(date +%s%N)
	for _ in $(seq 1 300); do
		if search "$2" | grep -qxF "$1"; then
			now=$(date +%s%N)
			echo "$(((now - t0) / 1000000))"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

n=0
for key in "plain.md" "with space.md" "plus+sign.md" "percent%20literal.md"; do
	n=$((n + 1))
	printf '# Doc %s\n\nA page about zeppelin%s hangars and mooring masts.\n' "$n" "$n" >"$work/d.md"
	"$bin" s3 put "$work/d.md" "$src$key" >/dev/null || bad "put $key"
	if ms=$(wait_hit "$src$key" "zeppelin$n hangars"); then
		ok "event-indexed \"$key\" (queryable $ms ms after the upload)"
	else
		bad "\"$key\" never became queryable through its event"
	fi
done
daemon_status >"$work/status.json"
[ "$(jq -r .events.queued "$work/status.json")" -ge 4 ] && ok "events-queued" || bad "status: $(cat "$work/status.json")"
equal no-poll-since "$(jq -r .last_pass.kind "$work/status.json")" events

# an overwrite replaces the document, a delete tombstones it
printf '# Doc 1 again\n\nNow about dirigible envelopes instead.\n' >"$work/d.md"
"$bin" s3 put "$work/d.md" "${src}plain.md" >/dev/null
wait_hit "${src}plain.md" "dirigible envelopes" >/dev/null && ok "overwrite-indexed" || bad "overwrite not indexed"
"$bin" s3 rm "${src}with space.md" >/dev/null
gone=
for _ in $(seq 1 300); do
	search "zeppelin2 hangars" | grep -qxF "${src}with space.md" || { gone=1; break; }
	sleep 0.05
done
[ -n "$gone" ] && ok "delete-tombstoned" || bad "deleted document still answered"

# several keys at once under the rule: ragmap sends one DELETE per key
# there (RGW 16.2 aborts on a multi-object delete of notified keys)
for k in x1 x2 x3; do "$bin" s3 put "$work/d.md" "${src}$k.md" >/dev/null; done
check rm-several-notified 0 "$bin" s3 rm "${src}x1.md" "${src}x2.md" "${src}x3.md"
check store-alive-after-rm 0 "$bin" s3 ls -r "$src"
expect_not several-deleted "${src}x[123]\.md" "$work/out"

# a broken document: failed, with its reason, in both /v1/status
"$bin" s3 put "$top/tests/data/parse/corrupt.pdf" "${src}broken.pdf" >/dev/null
for _ in $(seq 1 200); do [ "$(daemon_status | jq -r .failed.total)" = 1 ] && break; sleep 0.05; done
daemon_status >"$work/status.json"
jqtrue daemon-status-failed "$work/status.json" --arg k "${src}broken.pdf" \
	'.failed.total == 1 and .failed.objects[0].key == $k and .failed.objects[0].attempts == 1 and (.failed.objects[0].error | test("corrupt PDF")) and .failed.objects[0].retry_at > now'
for _ in $(seq 1 100); do
	curl -s "$url/v1/status" >"$work/sstatus.json"
	[ "$(jq -r .failed.total "$work/sstatus.json")" = 1 ] && break
	sleep 0.05
done
jqtrue server-status-failed "$work/sstatus.json" --arg k "${src}broken.pdf" \
	'.failed.total == 1 and .failed.objects[0].key == $k and (.failed.objects[0].error | test("corrupt PDF"))'

# no rule, no events: a later upload waits for the poll
check notify-rm 0 "$bin" s3 notify rm --topic "$topic"
printf '# Late\n\nA page about blimps.\n' >"$work/late.md"
"$bin" s3 put "$work/late.md" "${src}late.md" >/dev/null
sleep 2
check verify-before-poll 0 "$bin" verify --keys
expect_not late-not-indexed-without-events "late\.md$" "$work/out"
kill -HUP "$dpid"
for _ in $(seq 1 300); do [ "$(daemon_status | jq -r .last_pass.kind)" = poll ] && break; sleep 0.1; done
check verify-source 0 "$bin" verify --source --keys
expect late-indexed-by-the-poll "^live [0-9]+ ${src}late\.md$" "$work/out"
expect source-excuses-the-failed "1 skipped, rejected or failed there" "$work/out"
kill -TERM "$dpid"
wait "$dpid"
equal sigterm-exit-0 $? 0
dpid=
stop q
finish
