#!/usr/bin/env bash
# ragmap s3 notify against the fixture's Ceph RGW: a topic whose push
# endpoint is a local receiver (tests/tools/event_sink.py), a rule on this
# test's source prefix, and exactly the right records for uploads and
# deletes under it (none for keys outside it); rules of other topics kept
# when one is added or removed; nothing more once the rule is gone; the
# push URL's token in no output. Then a persistent topic: delivered from
# RGW's queue, retried until the receiver answers 2xx.
#
# Deletes here are single-key DELETEs: RGW 16.2.15 aborts on a
# multi-object delete of keys a rule covers (see s3.h), and the fixture's
# store is shared by every integration test.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"

sink_py=$top/tests/tools/event_sink.py
token="tok-$RANDOM$RANDOM-secret"
t1="n1-$$-$RANDOM" t2="n2-$$-$RANDOM" tp="np-$$-$RANDOM"
declare -A sink_pid

# start_sink NAME [ARGS...]: a receiver writing $work/NAME.jsonl; its port in $work/NAME.port
start_sink() {
	local name=$1
	shift
	rm -f "$work/$name.port"
	python3 "$sink_py" "$work/$name.jsonl" --port-file "$work/$name.port" "$@" &
	sink_pid[$name]=$!
	for _ in $(seq 1 100); do [ -s "$work/$name.port" ] && return 0; sleep 0.05; done
	bad "receiver $name did not start"
}
stop_sink() { kill "${sink_pid[$1]}" 2>/dev/null; wait "${sink_pid[$1]}" 2>/dev/null; }

# at exit: receivers, then this test's rules and topics (the store outlives it)
kill_servers() {
	local n
	for n in "${!sink_pid[@]}"; do kill "${sink_pid[$n]}" 2>/dev/null; done
	for n in "$t1" "$t2" "$tp"; do "$bin" s3 notify rm --topic "$n" >/dev/null 2>&1; done
}

# records FILE: one tab-separated line per record received (keys may hold
# spaces): eventName, key, eTag, size, the request's path, opaqueData, its
# Authorization header, the rule's id
records() {
	python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    for rec in r["body"]["Records"]:
        o = rec["s3"]["object"]
        print("\t".join([rec["eventName"], o["key"], o.get("eTag", ""), str(o.get("size", "")),
                         r["path"], rec.get("opaqueData", ""), str(r["auth"]),
                         rec["s3"]["configurationId"]]))
EOF
}
# count FILE: records received so far
count() { [ -f "$1" ] && records "$1" | wc -l || echo 0; }

echo "hello" >"$work/a.txt"
printf 'second object, longer\n' >"$work/b.txt"
start_sink one
url="http://127.0.0.1:$(cat "$work/one.port")/v1/events?token=$token"

# --- errors first: usage, bad names, no endpoint
check add-no-push 2 "$bin" s3 notify add --topic "$t1"
check add-bad-name 2 "$bin" s3 notify add --topic "bad name" --push "$url"
check add-bad-url 2 "$bin" s3 notify add --topic "$t1" --push "ftp://x/"
check rm-no-topic 2 "$bin" s3 notify rm
check notify-no-sub 2 "$bin" s3 notify
check topic-on-ls 2 "$bin" s3 ls --topic "$t1"

# --- a rule on this test's prefix; the URL (with its token) from stdin
echo "$url" >"$work/url"
check add "0" sh -c "\"$bin\" s3 notify add --topic $t1 --push - --prefix $src --opaque op-$ns <\"$work/url\""
expect add-says-arn "^rule $t1: created,removed events under s3://rag/$src -> arn:aws:sns:[^ ]*:$t1$" "$work/out"
cat "$work/out" "$work/err" >>"$work/all"
check ls 0 "$bin" s3 notify ls
expect ls-rule "^$t1 +created,removed +$src +arn:aws:sns:.*:$t1$" "$work/out"

# --- objects under the prefix and outside it. Without `persistent` RGW
# pushes inside the request, so each record has arrived when the command returns
declare -a want
declare -A etag_of size_of
put() { # put FILE KEY: upload, and expect a created record with its ETag and size
	local etag
	etag=$("$bin" s3 put "$1" "$2" | cut -d' ' -f1)
	[ -n "$etag" ] || bad "put $2"
	etag_of[$2]=$etag
	size_of[$2]=$(stat -c %s "$1")
	case $2 in "$src"*) want+=("ObjectCreated:Put	$2	$etag	${size_of[$2]}") ;; esac
}
del() { # del KEY: one DELETE (never a multi-object one, see above); RGW
	# describes the object deleted, with its ETag and size
	"$bin" s3 rm "$1" >/dev/null || bad "rm $1"
	case $1 in "$src"*) want+=("ObjectRemoved:Delete	$1	${etag_of[$1]}	${size_of[$1]}") ;; esac
}
put "$work/a.txt" "${src}a.txt"
put "$work/b.txt" "${src}dir/b c.txt"
put "$work/a.txt" "${src}plus+%41 ü.txt"
put "$work/a.txt" "other-$ns/x.txt"
put "$work/b.txt" "${src}a.txt" # overwritten: a second created record
del "${src}a.txt"
del "other-$ns/x.txt"
records "$work/one.jsonl" >"$work/got" 2>/dev/null || bad "receiver's records unreadable"
cut -f1-4 "$work/got" >"$work/got4"
printf '%s\n' "${want[@]}" >"$work/want4"
if cmp -s "$work/got4" "$work/want4"; then
	ok "records: exactly the $(wc -l <"$work/want4") events under the prefix, in order, with eTag and size"
else
	bad "records differ (want, got):"
	diff "$work/want4" "$work/got4" | sed 's/^/     | /'
fi
equal "records: the URL's path and query as given" "$(cut -f5 "$work/got" | sort -u)" "/v1/events?token=$token"
equal "records: opaqueData" "$(cut -f6 "$work/got" | sort -u)" "op-$ns"
equal "records: no Authorization header" "$(cut -f7 "$work/got" | sort -u)" "None"
equal "records: configurationId is the rule" "$(cut -f8 "$work/got" | sort -u)" "$t1"
expect_not "records: nothing outside the prefix" "other-$ns" "$work/got"

# --- a second rule: adding it keeps the first, removing the first keeps it
start_sink two
echo "http://127.0.0.1:$(cat "$work/two.port")/e" >"$work/url2"
check add-second 0 sh -c "\"$bin\" s3 notify add --topic $t2 --push - --prefix ${src}dir/ <\"$work/url2\""
cat "$work/out" "$work/err" >>"$work/all"
check ls-two 0 "$bin" s3 notify ls
expect ls-two-first "^$t1 " "$work/out"
expect ls-two-second "^$t2 +created,removed +${src}dir/ " "$work/out"
check readd-first 0 sh -c "\"$bin\" s3 notify add --topic $t1 --push - --prefix $src <\"$work/url\""
cat "$work/out" "$work/err" >>"$work/all"
check ls-readd 0 "$bin" s3 notify ls
equal "re-adding a rule replaces it (one rule per id)" "$(grep -c "^$t1 " "$work/out")" 1
n1=$(count "$work/one.jsonl")
check rm-first 0 "$bin" s3 notify rm --topic "$t1"
expect rm-says "^rule $t1: removed; topic $t1 deleted$" "$work/out"
check ls-after-rm 0 "$bin" s3 notify ls
expect_not ls-first-gone "^$t1 " "$work/out"
expect ls-second-kept "^$t2 " "$work/out"
put "$work/a.txt" "${src}dir/after.txt"
put "$work/a.txt" "${src}after.txt"
sleep 1
equal "no record reaches a removed rule's endpoint" "$(count "$work/one.jsonl")" "$n1"
equal "the kept rule still delivers" "$(records "$work/two.jsonl" | cut -f1,2)" \
	"$(printf 'ObjectCreated:Put\t%sdir/after.txt' "$src")"
check rm-again 0 "$bin" s3 notify rm --topic "$t1"
expect rm-absent-says "was not there" "$work/out"
check rm-second 0 "$bin" s3 notify rm --topic "$t2"
check ls-none 0 "$bin" s3 notify ls
expect_not ls-none-ours "^($t1|$t2) " "$work/out"
stop_sink one
stop_sink two

# --- persistent: RGW queues the record and pushes it from a thread of its
# own (the first push of a new queue took 7-30 s here), again and again
# until the receiver answers 2xx; here it answers 503 to its first 3 POSTs.
# (Not a receiver that is down: after a refused connection RGW 16.2's queue
# may stall for good, see deploy/README.md.)
start_sink per --fail-first 3
echo "http://127.0.0.1:$(cat "$work/per.port")/p?token=$token" >"$work/url3"
check add-persistent 0 sh -c "\"$bin\" s3 notify add --topic $tp --push - --prefix $src --persistent <\"$work/url3\""
expect add-persistent-says "\(persistent\)$" "$work/out"
cat "$work/out" "$work/err" >>"$work/all"
# accepted FILE: the records the receiver answered 200
accepted() {
	python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["status"] == 200:
        for rec in r["body"]["Records"]:
            print("%s\t%s" % (rec["eventName"], rec["s3"]["object"]["key"]))
EOF
}
put "$work/a.txt" "${src}p1.txt"
put "$work/b.txt" "${src}p2.txt"
"$bin" s3 rm "${src}p1.txt" >/dev/null || bad "rm p1"
for _ in $(seq 1 900); do
	[ "$(accepted "$work/per.jsonl" | sort -u | wc -l)" -ge 3 ] && break
	sleep 0.1
done
# the queue pushes in parallel (not in the requests' order), at least once
equal "persistent: every record accepted, after 503s" "$(accepted "$work/per.jsonl" | sort -u)" \
	"$(printf 'ObjectCreated:Put\t%sp1.txt\nObjectCreated:Put\t%sp2.txt\nObjectRemoved:Delete\t%sp1.txt' "$src" "$src" "$src")"
equal "persistent: the 503s were retried" "$(grep -c '"status": 503' "$work/per.jsonl")" 3
check rm-persistent 0 "$bin" s3 notify rm --topic "$tp"
cat "$work/out" "$work/err" >>"$work/all"

expect_not "the push URL's token in no output" "$token" "$work/all"
finish
