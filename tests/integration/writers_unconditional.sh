#!/usr/bin/env bash
# A store without conditional writes (issue 11; commit.h, invariant 8): the
# fault proxy in `unconditional` mode in front of RGW answers a PUT refused
# for its If-None-Match with 200, as a store that ignores the header would.
#  - the first writer ingests in single-writer mode and says so (a warning
#    naming If-None-Match and its lease); the proxy really answered refusals
#    as such a store (its "unconditional" counter);
#  - `ragmap status` says "one at a time" through the proxy ("any number"
#    against RGW itself);
#  - while a daemon holds the lease (writer.lock, naming its pid), a second
#    writer with its own local directory is refused: exit 1, an error line
#    naming the index, the lease holder (its token and pid) and
#    If-None-Match, and no version committed;
#  - the index still verifies; once the daemon stops (SIGTERM releases the
#    lease) the second writer ingests and `verify --source` passes;
#  - a lease holder killed with SIGKILL leaves its lease: the other writer
#    is still refused, naming the dead holder's pid.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"
. "$top/tests/tools/fault-common.sh"
export RAGMAP_LOG=warn RAGMAP_INGEST_REFIT_GROWTH=0
w1=(env RAGMAP_LOCAL_DIR="$work/w1")
w2=(env RAGMAP_LOCAL_DIR="$work/w2")
dpid=""
kill_servers() { [ -n "$dpid" ] && kill -9 "$dpid" 2>/dev/null; dpid=""; }

version() { # the newest committed version, as verify finds it (LATEST is a hint)
	"$bin" verify 2>/dev/null | sed -n 's/^index .* version \([0-9]*\) .*/\1/p'
}
newdoc() { # newdoc NAME: upload a small new document
	printf '# %s\n\nA document named %s about leases on object storage.\n' "$1" "$1" >"$work/$1.md"
	"$bin" s3 put "$work/$1.md" "${src}new/$1.md" >/dev/null || bad "put $1"
}

check upload-corpus 0 "$bin" s3 put "$top/corpus" "$src"
ndocs=$(find "$top/corpus" -type f | wc -l)
start_proxy --unconditional 1

# --- the first writer: single-writer mode, said so
check first-ingest 0 through_proxy "${w1[@]}" "$bin" ingest
expect first-committed "^committed version 1: " "$work/out"
expect first-warns "warn.*ignores If-None-Match on PUT: single-writer mode \(lease [0-9a-f]+\)" "$work/err"
n=$(proxy_stat unconditional)
[ "${n:-0}" -ge 1 ] && ok "proxy answered $n conditional refusals as an unconditional store" ||
	bad "the proxy answered no conditional refusal (unconditional=${n:-?}): the mode was not exercised"
check first-verify 0 through_proxy "$bin" verify --source

# --- status: one at a time through the proxy, any number against RGW
check status-proxy 0 through_proxy "$bin" status
expect status-one-at-a-time "^writers: +one at a time \(the store ignores If-None-Match" "$work/out"
check status-direct 0 "$bin" status
expect status-direct-any "^writers: +any number" "$work/out"

# start_daemon VERSION WRITER_ENV...: a daemon through the proxy ($dpid;
# env execs ragmap, so it is the daemon's own pid), waited for until its
# pass committed VERSION (20 s at most), or it died
start_daemon() {
	local v=$1
	shift
	"$@" AWS_ENDPOINT_URL="$proxy_url" RAGMAP_LOG=info RAGMAP_INGEST_POLL_S=600 "$bin" daemon \
		>"$work/daemon.out" 2>"$work/daemon.err" &
	dpid=$!
	for _ in $(seq 1 200); do
		grep -q "pass: version $v" "$work/daemon.err" && break
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
}

# --- a daemon (writer 1) takes the lease with its first commit and keeps it
newdoc lease-a
start_daemon 2 "${w1[@]}"
expect daemon-committed "pass: version 2, 1 new documents" "$work/daemon.err"
"$bin" s3 get "${root}writer.lock" - >"$work/lock.json" 2>"$work/lock.err" || bad "no writer.lock while the daemon runs"
expect lease-names-daemon "\"pid\": *$dpid[,}]" "$work/lock.json"
holder=$(sed -n 's/.*"writer": *"\([0-9a-f]*\)".*/\1/p' "$work/lock.json")
[ -n "$holder" ] && ok "lease holder $holder" || bad "writer.lock names no writer"

# --- the second writer, while the lease is held: refused, nothing committed
newdoc lease-b
v_before=$(version)
check second-refused 1 through_proxy "${w2[@]}" "$bin" ingest --quiet
# the error is one line, the last (before it only the single-writer warning)
tail -1 "$work/err" >"$work/refusal"
expect second-error-line "^ragmap: index \"indexes/$idx/\" is being written by" "$work/refusal"
cp "$work/refusal" "$work/err"
expect second-names-lease "lease" "$work/err"
expect second-names-holder "writer ${holder:-NO-HOLDER} \([^)]*pid $dpid\)" "$work/err"
expect second-names-if-none-match "If-None-Match" "$work/err"
expect second-one-writer "one writer at a time" "$work/err"
equal second-committed-nothing "$(version)" "$v_before"
kill -0 "$dpid" 2>/dev/null && ok "the daemon still runs" || bad "the daemon died"
check verify-while-held 0 through_proxy "$bin" verify

# --- the daemon stops (SIGTERM: the lease is released); the second writer goes
kill -TERM "$dpid"
wait "$dpid"
equal daemon-exit "$?" 0
dpid=""
if "$bin" s3 stat "${root}writer.lock" >/dev/null 2>&1; then
	bad "writer.lock left behind by a daemon that stopped"
else
	ok "lease released at exit"
fi
check second-ingest 0 through_proxy "${w2[@]}" "$bin" ingest
expect second-committed "^committed version $((v_before + 1)): " "$work/out"
check verify-source 0 through_proxy "$bin" verify --source
expect verify-source-all "source: +$((ndocs + 2)) objects under .*: $((ndocs + 2)) indexed at their current ETag" "$work/out"

# --- a holder killed with SIGKILL cannot release: its lease still refuses
# the other writer (until it ends, 600 s after its last commit)
newdoc lease-c
start_daemon "$((v_before + 2))" "${w2[@]}"
expect killed-daemon-committed "pass: version $((v_before + 2)), 1 new documents" "$work/daemon.err"
killed=$dpid
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
dpid=""
newdoc lease-d
check after-kill-refused 1 through_proxy "${w1[@]}" "$bin" ingest --quiet
tail -1 "$work/err" >"$work/refusal"
expect after-kill-names-dead-holder "being written by writer [0-9a-f]+ \([^)]*pid $killed\) until its lease ends in (59[0-9]|600) s: .*If-None-Match" "$work/refusal"
check verify-after-kill 0 through_proxy "$bin" verify
finish
