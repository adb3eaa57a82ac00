#!/usr/bin/env bash
# S3 event notifications into `ragmap daemon --listen` (src/ingest/events.h):
# events lost, repeated and out of order still converge to the index a
# poll-only run makes. The daemon polls once an hour here, so whatever is
# indexed before the reconciling pass came through the events.
#  1. a stream of uploads, overwrites, deletes and re-creations; its events
#     are shuffled, every 5th dropped, every 3rd sent twice;
#  2. the delivered keys are indexed as the store now holds them, the
#     dropped ones are not (yet);
#  3. a forged event without the token is refused and queues nothing;
#  4. a full pass (SIGHUP reloads and reconciles) catches what was dropped:
#     the index equals a poll-only run's, and verify --source passes.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
export RAGMAP_INGEST_POLL_S=3600 RAGMAP_INGEST_REFIT_GROWTH=0 RAGMAP_INGEST_TOKEN=evtok-$RANDOM
dpid=
kill_servers() { [ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null; }

listen_daemon || { finish; exit; }
url=http://127.0.0.1:$dport

# --- 1. the stream of changes, and the events it would send
ev=$work/events.txt
: >"$ev"
put() { # put KEY WORD
	printf '# %s\n\nA page about %s, stored under %s.\n' "$2" "$2" "$1" >"$work/doc.md"
	"$bin" s3 put "$work/doc.md" "$src$1" >/dev/null || bad "put $1"
	echo "ObjectCreated:Put $src$1" >>"$ev"
}
del() {
	"$bin" s3 rm "$src$1" >/dev/null || bad "rm $1"
	echo "ObjectRemoved:Delete $src$1" >>"$ev"
}
for i in $(seq -w 1 24); do put "doc-$i.md" "topic$i"; done
put "with space+plus.md" "spaces"
for i in 03 07 11 15; do put "doc-$i.md" "rewritten$i"; done
for i in 05 09 13 17; do del "doc-$i.md"; done
for i in 09 17; do put "doc-$i.md" "reborn$i"; done
equal events-written "$(wc -l <"$ev")" 35

# shuffle (seeded), drop every 5th, send every 3rd twice; 5 records a POST
python3 - "$ev" "$work/bodies" <<'EOF'
import json, random, sys, urllib.parse
lines = [l.split(' ', 1) for l in open(sys.argv[1]).read().splitlines()]
random.Random(20261201).shuffle(lines)
sent, dropped = [], []
for i, (kind, key) in enumerate(lines):
    if i % 5 == 4:
        dropped.append(key)
        continue
    sent += [(kind, key)] * (2 if i % 3 == 0 else 1)
def rec(kind, key):  # as AWS and MinIO send it: the key URL-encoded, '+' for a space
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": kind,
            "s3": {"bucket": {"name": "rag"},
                   "object": {"key": urllib.parse.quote_plus(key, safe='/'), "size": 1}}}
with open(sys.argv[2], 'w') as out:
    for i in range(0, len(sent), 5):
        out.write(json.dumps({"Records": [rec(*r) for r in sent[i:i + 5]]}) + "\n")
open(sys.argv[2] + '.sent', 'w').write('\n'.join(sorted({k for _, k in sent})) + '\n')
open(sys.argv[2] + '.dropped', 'w').write('\n'.join(sorted(set(dropped) - {k for _, k in sent})) + '\n')
EOF
grep -c . "$work/bodies.dropped" >/dev/null && ok "some-keys-only-dropped ($(grep -c . "$work/bodies.dropped"))" ||
	bad "the shuffle dropped no key entirely"

# --- 3 (first): a forged event, no token, naming a key whose events were dropped
forged=$(head -1 "$work/bodies.dropped")
code=$(curl -s -o "$work/forged.json" -w '%{http_code}' -XPOST "$url/v1/events" \
	-d "{\"Records\": [{\"eventName\": \"ObjectCreated:Put\", \"s3\": {\"bucket\": {\"name\": \"rag\"}, \"object\": {\"key\": \"$forged\"}}}]}")
equal forged-refused "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/v1/events?token=wrong" -d '{"Records": []}')
equal wrong-query-token-refused "$code" 401
code=$(curl -s -o "$work/bad.json" -w '%{http_code}' -XPOST -H "Authorization: Bearer $RAGMAP_INGEST_TOKEN" \
	"$url/v1/events" -d '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}')
equal malformed-400 "$code" 400
expect malformed-names-field 'Records\[0\]\.s3\.object\.key' "$work/bad.json"

# --- 2. deliver
n=0
while IFS= read -r body; do
	code=$(curl -s -o "$work/post.json" -w '%{http_code}' -XPOST \
		-H "Authorization: Bearer $RAGMAP_INGEST_TOKEN" "$url/v1/events" -d "$body")
	[ "$code" = 200 ] || bad "POST /v1/events: HTTP $code $(cat "$work/post.json")"
	n=$((n + 1))
done <"$work/bodies"
ok "delivered $n bodies"
# the query string form (a push endpoint that is a bare URL) is accepted too
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/v1/events?token=$RAGMAP_INGEST_TOKEN" -d '{"Records": []}')
equal query-token-accepted "$code" 200

# wait until the queue is drained and no pass is running
for _ in $(seq 1 300); do
	daemon_status >"$work/status.json"
	[ "$(jq -r '.events.waiting' "$work/status.json")" = 0 ] &&
		[ "$(jq -r '.events.taken' "$work/status.json")" -ge "$(jq -r '.events.queued' "$work/status.json")" ] &&
		[ "$(jq -r '.last_pass.kind' "$work/status.json")" = events ] && break
	sleep 0.1
done
sleep 0.5 # a pass taken just now has had time to publish
daemon_status >"$work/status.json"
equal status-unauthorized "$(jq -r '.events.unauthorized' "$work/status.json")" 2
equal status-rejected "$(jq -r '.events.rejected' "$work/status.json")" 1
[ "$(jq -r '.events.duplicates' "$work/status.json")" -ge 1 ] && ok "duplicates-coalesced" || bad "no duplicate counted"
equal status-shard "$(jq -r '.shard' "$work/status.json")" "0/1"

check verify-events 0 "$bin" verify --keys
grep '^live [0-9]* ' "$work/out" | sed 's/^live [0-9]* //' | sort >"$work/live.events"
# every delivered key is as the store holds it now; no dropped-only key is in
"$bin" s3 ls -r "$src" | sed -E 's/^ *[0-9]+ +[0-9a-f-]+ +//' | sort >"$work/store.keys"
comm -12 "$work/store.keys" "$work/bodies.sent" >"$work/want.events"
if cmp -s "$work/want.events" "$work/live.events"; then ok "events-indexed-what-they-named"; else
	bad "after the events the index differs from the delivered keys' state"
	diff "$work/want.events" "$work/live.events" | head
fi
expect_not forged-key-not-indexed "^$(re_quote "$src$forged")\$" "$work/live.events"
expect_not no-bodies-logged "ObjectCreated|eventName" "$work/daemon.err"

# --- 4. reconcile: SIGHUP reloads and makes a full pass
kill -HUP "$dpid"
for _ in $(seq 1 300); do
	daemon_status >"$work/status.json"
	[ "$(jq -r '.last_pass.kind' "$work/status.json")" = poll ] && break
	sleep 0.1
done
equal reconciled-by-a-poll "$(jq -r '.last_pass.kind' "$work/status.json")" poll
check verify-source 0 "$bin" verify --source --keys
grep '^live [0-9]* ' "$work/out" | sort >"$work/events.keys"
RAGMAP_INDEX_NAME=$idx-poll check poll-only 0 "$bin" ingest
RAGMAP_INDEX_NAME=$idx-poll check poll-only-verify 0 "$bin" verify --source --keys
grep '^live [0-9]* ' "$work/out" | sort >"$work/poll.keys"
if cmp -s "$work/poll.keys" "$work/events.keys"; then ok "events-converge-to-poll-only"; else
	bad "the event-fed index differs from the poll-only index"
	diff "$work/poll.keys" "$work/events.keys" | head
fi
expect space-key-indexed "^live [0-9]+ ${src}with space\+plus\.md$" "$work/events.keys"

kill -TERM "$dpid"
wait "$dpid"
equal sigterm-exit-0 $? 0
dpid=
finish
