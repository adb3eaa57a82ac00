#!/usr/bin/env bash
# The whole deployment on this machine, everything under one directory:
#
#   scripts/cluster.sh up [DIR]       start what is not running (DIR: ./cluster)
#   scripts/cluster.sh status [DIR]   each process, its PID, port and health
#   scripts/cluster.sh down [DIR]     stop everything `up` started
#
#   S3 clients ──PUT/DELETE──> RGW (scripts/s3-local.sh, bucket "rag")
#                                │ one persistent topic + one bucket rule per
#                                │ daemon on the source prefix: each daemon
#                                │ receives every event and keeps its shard's
#                                ▼
#          ragmap daemon --shard 0/2 --listen   ragmap daemon --shard 1/2 --listen
#                (POST /v1/events?token=...; a pass every ingest.poll_s reconciles)
#                                │ segments, manifests, catalog snapshots
#                                ▼
#                               RGW ──LATEST, hot reload every second──┐
#                                                                      ▼
#   clients ──POST /v1/query──> HAProxy ──roundrobin──> ragmap serve r1, r2, r3
#
# What `up` writes into DIR: ragmap.conf (the one configuration every
# process reads with --config; secrets in it, mode 600), cluster.env (the
# endpoint, keys, ports and the query URL: `. DIR/cluster.env`), haproxy.cfg,
# pids/NAME.pid for every process it started (the only processes `down`
# stops), topics/daemonI (the RGW topic of daemon I, removed by `down`),
# log/NAME.log, and each process's local directory (local/NAME).
# The store is scripts/s3-local.sh's, under DIR/s3.
#
# The daemons' event endpoint needs ingest.token. Ceph RGW 16.2 cannot send
# an Authorization header (a user:password in the push URL is refused over
# http, see src/s3/s3.h), so the topic's push URL carries the token as
# ?token=; anyone who can reach RGW's port can read it back (RGW 16.2 serves
# topics to anonymous callers), so the token keeps out callers that reach
# the daemons but not RGW: keep both ports private.
#
# Topics are persistent: RGW queues each event and retries until the daemon
# answers 2xx, the client's PUT does not wait for the daemon, and a daemon
# that is down delays only its own events (without `persistent`, RGW 16.2
# pushes inside the client's request and stops at the first endpoint that
# fails). A daemon that `up` starts or restarts gets a topic under a new
# name (cluster id, shard, random suffix; topics/daemonI holds it): RGW
# 16.2's queue of a persistent topic can stall for good after its endpoint
# refused a connection, and a topic re-created under a deleted one's name
# receives nothing. What the old queue held, the daemon's first pass finds.
#
# Settings (environment):
#   RAGMAP_BIN                     the ragmap binary (default build/ragmap)
#   RAGMAP_CLUSTER_BASE_PORT       ports BASE (S3), +1 +2 (daemons), +3..+5
#                                  (replicas), +6 (HAProxy); default: free ones
#   RAGMAP_CLUSTER_MODES           the replicas' modes (default
#                                  "memory memory memory")
#   RAGMAP_CLUSTER_CORPUS          documents uploaded by the first `up` when
#                                  the source prefix is empty (default corpus/;
#                                  "none": nothing; the replicas then start at
#                                  the next `up` after a first version exists)
#   RAGMAP_CLUSTER_PERSISTENT      1 (default) or 0: persistent topics
#   RAGMAP_CLUSTER_STOP_WAIT_S     how long a daemon may take to finish its
#                                  batch on SIGTERM before SIGKILL (default 120)
#
# HAProxy (Debian's package) is installed with apt-get when missing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-./cluster}
case "$cmd" in up | down | status) ;; *)
	echo "usage: $0 up|down|status [DIR]" >&2
	exit 2
	;;
esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
stop_wait=${RAGMAP_CLUSTER_STOP_WAIT_S:-120}
persistent=${RAGMAP_CLUSTER_PERSISTENT:-1}
read -r -a modes <<<"${RAGMAP_CLUSTER_MODES:-memory memory memory}"
[ ${#modes[@]} = 3 ] || { echo "cluster: RAGMAP_CLUSTER_MODES names 3 modes, one per replica" >&2; exit 2; }
corpus=${RAGMAP_CLUSTER_CORPUS:-$top/corpus}
source_prefix=source/
index=main
shards=2

# Every process reads DIR/ragmap.conf; settings of the caller's shell must
# not override it (RAGMAP_<SECTION>_<KEY> and AWS_* win over the file).
for v in $(compgen -v RAGMAP_ || true); do
	case $v in RAGMAP_CLUSTER_* | RAGMAP_BIN) ;; *) unset "$v" ;; esac
done
unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
export RAGMAP_CONFIG=$dir/ragmap.conf

say() { echo "cluster: $*"; }
die() {
	echo "cluster: $*" >&2
	exit 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- processes: pids/NAME.pid, and the program it must still be running
# (a PID reused by another program after a crash is never signalled)
pidfile() { echo "$dir/pids/$1.pid"; }
alive() {
	local f pid
	f=$(pidfile "$1")
	[ -s "$f" ] || return 1
	pid=$(cat "$f")
	kill -0 "$pid" 2>/dev/null || return 1
	case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
	*ragmap* | *haproxy*) return 0 ;;
	*) return 1 ;;
	esac
}

# start NAME COMMAND...: in the background, its output in log/NAME.log
start() {
	local name=$1
	shift
	mkdir -p "$dir/pids" "$dir/log"
	nohup "$@" >>"$dir/log/$name.log" 2>&1 </dev/null &
	echo $! >"$(pidfile "$name")"
}

# stop NAME WAIT_S: SIGTERM, then SIGKILL after WAIT_S seconds
stop() {
	local name=$1 wait_s=$2 pid
	if alive "$name"; then
		pid=$(cat "$(pidfile "$name")")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 $((wait_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			say "$name (pid $pid) still running after ${wait_s}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped $name (pid $pid)"
	fi
	rm -f "$(pidfile "$name")"
}

# wait_http URL SECONDS [HEADER_FILE]: until URL answers 200
wait_http() {
	local url=$1 secs=$2 hdr=${3:-}
	for _ in $(seq 1 $((secs * 10))); do
		if [ -n "$hdr" ]; then
			curl -sf -o /dev/null -H @"$hdr" "$url" && return 0
		else
			curl -sf -o /dev/null "$url" && return 0
		fi
		sleep 0.1
	done
	return 1
}

names_daemons() { for i in $(seq 0 $((shards - 1))); do echo "daemon$i"; done; }
names_replicas() { for i in 1 2 3; do echo "r$i"; done; }

# --- the cluster's identity, ports and secrets: kept across `up`s
load_env() { [ -f "$dir/cluster.env" ] && . "$dir/cluster.env"; }

write_env() {
	umask 077
	cat >"$dir/cluster.env" <<EOF
# written by scripts/cluster.sh up; holds secrets (mode 600). Use: . $dir/cluster.env
RAGMAP_CLUSTER_ID=$cluster_id
RAGMAP_CONFIG=$dir/ragmap.conf
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
RAGMAP_INGEST_TOKEN=$ingest_token
CLUSTER_S3_PORT=$s3_port
CLUSTER_DAEMON_PORTS="${daemon_ports[*]}"
CLUSTER_REPLICA_PORTS="${replica_ports[*]}"
CLUSTER_HAPROXY_PORT=$haproxy_port
CLUSTER_QUERY_URL=http://127.0.0.1:$haproxy_port/v1/query
export RAGMAP_CONFIG AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RAGMAP_INGEST_TOKEN
EOF
	umask 022
}

pick_ports() {
	local base=${RAGMAP_CLUSTER_BASE_PORT:-}
	if [ -n "${CLUSTER_S3_PORT:-}" ]; then
		# the ports of the previous `up` of this directory
		s3_port=$CLUSTER_S3_PORT
		read -r -a daemon_ports <<<"$CLUSTER_DAEMON_PORTS"
		read -r -a replica_ports <<<"$CLUSTER_REPLICA_PORTS"
		haproxy_port=$CLUSTER_HAPROXY_PORT
	elif [ -n "$base" ]; then
		s3_port=$base
		daemon_ports=($((base + 1)) $((base + 2)))
		replica_ports=($((base + 3)) $((base + 4)) $((base + 5)))
		haproxy_port=$((base + 6))
	else
		s3_port=$(free_port)
		daemon_ports=("$(free_port)" "$(free_port)")
		replica_ports=("$(free_port)" "$(free_port)" "$(free_port)")
		haproxy_port=$(free_port)
	fi
}

write_conf() {
	umask 077
	cat >"$dir/ragmap.conf" <<EOF
; written by scripts/cluster.sh up: the configuration of every process of
; the cluster in $dir (secrets: mode 600). Per process, the command line
; adds --shard and --listen (daemons), --mode and --listen (replicas), and
; the environment RAGMAP_LOCAL_DIR and RAGMAP_QUERY_REPLICA.
[s3]
endpoint = $AWS_ENDPOINT_URL
bucket = rag
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY

[source]
prefix = $source_prefix

[index]
name = $index

[ingest]
; events do the work; the pass reconciles what an event missed
poll_s = 3600
token = $ingest_token

[query]
reload_s = 1
EOF
	umask 022
	printf 'Authorization: Bearer %s\n' "$ingest_token" >"$dir/ingest.auth"
	chmod 600 "$dir/ingest.auth"
}

write_haproxy_cfg() {
	local i
	{
		cat <<EOF
# written by scripts/cluster.sh up: the query replicas behind one port.
global
    maxconn 4096
    log stdout format raw local0 info
    stats socket $dir/haproxy.sock mode 600 level operator

defaults
    mode http
    log global
    option httplog
    # only what went wrong: errors, retries, redispatches
    option dontlog-normal
    timeout connect 1s
    timeout client 30s
    timeout server 10s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 1s
    # A request that could not reach its replica (refused, reset, closed
    # without an answer, silent for 'timeout server', or 503) is sent again,
    # up to 3 times, each time to another replica (queries only read, so a
    # second try is safe).
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout 503

frontend query
    bind 127.0.0.1:$haproxy_port
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    # checks every 500 ms (down after 2 failures, up after 2 successes), and
    # a replica whose connection fails once is marked down at once rather
    # than at its next checks
    default-server check inter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
EOF
		for i in 1 2 3; do
			echo "    server r$i 127.0.0.1:${replica_ports[$((i - 1))]}"
		done
	} >"$dir/haproxy.cfg"
}

ensure_haproxy() {
	command -v haproxy >/dev/null && return 0
	local sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
	say "installing haproxy (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	$sudo_cmd apt-get update -qq
	$sudo_cmd apt-get install -y -qq --no-install-recommends haproxy >/dev/null
	command -v haproxy >/dev/null || die "haproxy is not installed and apt-get could not install it"
}

# latest_version: the version LATEST names (empty when there is none)
latest_version() {
	{ "$bin" s3 get "indexes/$index/LATEST" - 2>/dev/null || true; } |
		sed -n 's/.*"version": *\([0-9]*\).*/\1/p'
}

# The topic of daemon I: its name in topics/daemonI. A daemon that `up`
# (re)starts gets a topic under a new name (see the header).
topic_file() { echo "$dir/topics/daemon$1"; }
new_topic_name() { echo "ragmap-$cluster_id-shard$1-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"; }

# renew_topic I: replace daemon I's topic and rule by new ones
renew_topic() {
	local i=$1 old new flags=()
	[ "$persistent" = 1 ] && flags=(--persistent)
	old=$(cat "$(topic_file "$i")" 2>/dev/null || true)
	if [ -n "$old" ]; then
		"$bin" s3 notify rm --topic "$old" >>"$dir/log/notify.log" 2>&1 ||
			die "cannot remove topic $old (see $dir/log/notify.log)"
	fi
	new=$(new_topic_name "$i")
	mkdir -p "$dir/topics"
	echo "$new" >"$(topic_file "$i")"
	# the URL holds the token: through stdin, never on a command line
	printf 'http://127.0.0.1:%s/v1/events?token=%s\n' "${daemon_ports[$i]}" "$ingest_token" |
		"$bin" s3 notify add --topic "$new" --push - --prefix "$source_prefix" \
			"${flags[@]}" >>"$dir/log/notify.log" 2>&1 ||
		die "cannot add the notification rule of daemon$i (see $dir/log/notify.log)"
}

do_up() {
	local i name v=""
	[ -x "$bin" ] || die "no ragmap binary at $bin (build it, or set RAGMAP_BIN)"
	command -v curl >/dev/null || die "curl is needed"
	ensure_haproxy
	load_env || true
	pick_ports
	cluster_id=${RAGMAP_CLUSTER_ID:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}
	ingest_token=${RAGMAP_INGEST_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}

	# the store: its data lives in RAM, so a store that stopped took the
	# index with it and everything else starts afresh
	if ! "$top/scripts/s3-local.sh" running "$dir/s3"; then
		for name in haproxy $(names_replicas) $(names_daemons); do stop "$name" 5; done
		rm -rf "$dir/topics"
	fi
	"$top/scripts/s3-local.sh" start "$dir/s3" "$s3_port" >/dev/null ||
		die "the S3 store did not start (see $dir/s3/log)"
	. "$dir/s3/s3.env"
	write_conf
	write_env
	say "S3 store (Ceph RGW) at $AWS_ENDPOINT_URL"

	# the daemons, then their topics and rules (events need a listener)
	local started=()
	for i in $(seq 0 $((shards - 1))); do
		name=daemon$i
		started[i]=0
		if ! alive "$name"; then
			started[i]=1
			mkdir -p "$dir/local/$name"
			RAGMAP_LOCAL_DIR=$dir/local/$name start "$name" "$bin" daemon --config "$dir/ragmap.conf" \
				--shard "$i/$shards" --listen "127.0.0.1:${daemon_ports[$i]}"
		fi
	done
	for i in $(seq 0 $((shards - 1))); do
		wait_http "http://127.0.0.1:${daemon_ports[$i]}/v1/status" 30 "$dir/ingest.auth" ||
			die "daemon$i does not answer on port ${daemon_ports[$i]} (see $dir/log/daemon$i.log)"
		say "daemon$i (shard $i/$shards) at 127.0.0.1:${daemon_ports[$i]}, pid $(cat "$(pidfile daemon$i)")"
	done
	for i in $(seq 0 $((shards - 1))); do
		if [ "${started[i]}" = 1 ] || [ ! -s "$(topic_file "$i")" ]; then renew_topic "$i"; fi
	done
	say "bucket rules: $("$bin" s3 notify ls | awk '{print $1}' | tr '\n' ' ')"

	# documents, when the source prefix is empty: the events bring them in
	if [ "$corpus" != none ] && [ -z "$("$bin" s3 ls -r "$source_prefix" 2>/dev/null | head -1)" ]; then
		[ -d "$corpus" ] || die "RAGMAP_CLUSTER_CORPUS: \"$corpus\" is not a directory"
		"$bin" s3 put "$corpus" "$source_prefix" >>"$dir/log/upload.log" 2>&1 ||
			die "cannot upload $corpus (see $dir/log/upload.log)"
		say "uploaded $corpus to s3://rag/$source_prefix"
	fi

	# the replicas need a committed version to load (none comes without documents)
	for _ in $(seq 1 1200); do
		v=$(latest_version)
		[ -n "$v" ] && break
		[ -z "$("$bin" s3 ls -r "$source_prefix" 2>/dev/null | head -1)" ] && break
		sleep 0.1
	done
	if [ -z "$v" ]; then
		say "no index version yet: the replicas and HAProxy start at the next \`$0 up $dir\` once one is committed"
		return 0
	fi
	say "index \"$index\" at version $v"
	for i in 1 2 3; do
		name=r$i
		if ! alive "$name"; then
			mkdir -p "$dir/local/$name"
			RAGMAP_LOCAL_DIR=$dir/local/$name RAGMAP_QUERY_REPLICA=$name start "$name" \
				"$bin" serve --config "$dir/ragmap.conf" --mode "${modes[$((i - 1))]}" \
				--listen "127.0.0.1:${replica_ports[$((i - 1))]}"
		fi
	done
	for i in 1 2 3; do
		wait_http "http://127.0.0.1:${replica_ports[$((i - 1))]}/healthz" 60 ||
			die "replica r$i does not answer on port ${replica_ports[$((i - 1))]} (see $dir/log/r$i.log)"
		say "replica r$i (${modes[$((i - 1))]}) at 127.0.0.1:${replica_ports[$((i - 1))]}, pid $(cat "$(pidfile r$i)")"
	done

	write_haproxy_cfg
	if ! alive haproxy; then
		haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy refuses $dir/haproxy.cfg"
		start haproxy haproxy -db -f "$dir/haproxy.cfg"
	fi
	wait_http "http://127.0.0.1:$haproxy_port/healthz" 30 ||
		die "HAProxy does not answer on port $haproxy_port (see $dir/log/haproxy.log)"
	say "HAProxy at 127.0.0.1:$haproxy_port, pid $(cat "$(pidfile haproxy)")"
	cat <<EOF

Query through HAProxy:
  curl -s http://127.0.0.1:$haproxy_port/v1/query -d '{"q": "checkpoint uploads", "k": 3}'
Use the store and the CLI:
  . $dir/cluster.env && $bin s3 put FILE ${source_prefix}NAME && $bin status
State: $0 status $dir    Stop: $0 down $dir
EOF
}

show() { # show NAME PORT: one line of status
	if alive "$1"; then
		printf '  %-8s alive  pid %-7s port %s\n' "$1" "$(cat "$(pidfile "$1")")" "$2"
	else
		printf '  %-8s dead   %-11s port %s\n' "$1" "" "$2"
	fi
}

do_status() {
	local i
	load_env || die "no cluster in $dir (run: $0 up $dir)"
	echo "cluster $RAGMAP_CLUSTER_ID in $dir"
	if "$top/scripts/s3-local.sh" running "$dir/s3"; then
		printf '  %-8s alive  pid %-7s port %s\n' rgw "$(cat "$dir/s3/radosgw.pid")" "$CLUSTER_S3_PORT"
	else
		printf '  %-8s dead   %-11s port %s\n' rgw "" "$CLUSTER_S3_PORT"
	fi
	read -r -a daemon_ports <<<"$CLUSTER_DAEMON_PORTS"
	read -r -a replica_ports <<<"$CLUSTER_REPLICA_PORTS"
	for i in $(seq 0 $((shards - 1))); do
		show "daemon$i" "${daemon_ports[$i]}"
		printf '      /v1/status: %s\n' "$(curl -s -m 2 -H @"$dir/ingest.auth" \
			"http://127.0.0.1:${daemon_ports[$i]}/v1/status" || echo unreachable)"
	done
	for i in 1 2 3; do
		show "r$i" "${replica_ports[$((i - 1))]}"
		printf '      /healthz: %s\n' "$( (curl -s -m 2 -w ' (HTTP %{http_code})' \
			"http://127.0.0.1:${replica_ports[$((i - 1))]}/healthz" || echo unreachable) | tr -d '\n')"
	done
	show haproxy "$CLUSTER_HAPROXY_PORT"
	if alive haproxy && [ -S "$dir/haproxy.sock" ]; then
		# the backend's view: which replicas it sends queries to
		python3 - "$dir/haproxy.sock" <<'EOF' || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
rows = [l.split(",") for l in data.decode().splitlines()]
head = rows[0]
for r in rows[1:]:
    if len(r) > 17 and r[0] == "replicas" and r[1] not in ("BACKEND", "FRONTEND"):
        f = dict(zip(head, r))
        print("      backend %-3s %-5s sessions %s, check %s" % (f["svname"], f["status"], f["stot"], f.get("check_status", "")))
EOF
	fi
	if "$top/scripts/s3-local.sh" running "$dir/s3"; then
		echo "  bucket rules:"
		"$bin" s3 notify ls 2>&1 | sed 's/^/    /'
		echo "  index version: $(latest_version)"
	fi
	echo "  query URL: $CLUSTER_QUERY_URL"
}

do_down() {
	local i t
	load_env || true
	# events first: no push to a daemon that is going away
	for i in $(seq 0 $((shards - 1))); do
		t=$(cat "$(topic_file "$i")" 2>/dev/null || true)
		[ -n "$t" ] || continue
		if "$top/scripts/s3-local.sh" running "$dir/s3"; then
			"$bin" s3 notify rm --topic "$t" >>"$dir/log/notify.log" 2>&1 ||
				say "could not remove topic $t (see $dir/log/notify.log)"
		fi
		rm -f "$(topic_file "$i")"
	done
	stop haproxy 5
	for name in $(names_replicas); do stop "$name" 10 & done
	wait
	# a daemon finishes and commits its batch on SIGTERM
	for name in $(names_daemons); do stop "$name" "$stop_wait" & done
	wait
	if [ -d "$dir/s3" ]; then
		"$top/scripts/s3-local.sh" stop "$dir/s3"
		say "stopped the S3 store"
	fi
	rm -f "$dir/haproxy.sock"
}

case "$cmd" in
up) do_up ;;
status) do_status ;;
down) do_down ;;
esac
