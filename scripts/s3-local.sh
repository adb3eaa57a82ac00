#!/usr/bin/env bash
# Start or stop the local S3 server: a single-node Ceph (one monitor, one
# OSD on memstore, the RADOS Gateway with the beast frontend) on loopback,
# from Debian's packages (scripts/setup.sh installs them).
#
#   scripts/s3-local.sh start DIR [PORT] [BUCKET]   PORT 0 (default) = a free one
#   scripts/s3-local.sh stop DIR
#   scripts/s3-local.sh key DIR KEY_ID SECRET       one more key pair for the user
#   scripts/s3-local.sh running DIR                 exit 0 if its gateway runs
#
# Everything lives under DIR: ceph.conf, the monitor's store, the OSD, logs
# (DIR/log), the PIDs of the daemons this script started (DIR/*.pid, the
# only processes `stop` kills), the port (DIR/s3.port) and DIR/s3.env, the
# endpoint and the S3 user's credentials as shell assignments:
#
#   . DIR/s3.env    # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#
# `start` prints the endpoint URL once the gateway answers and BUCKET
# exists. The credentials are RAGMAP_LOCAL_KEY_ID / RAGMAP_LOCAL_SECRET when
# set, else fixed local ones: this store listens on loopback only.
#
# With S3_LOCAL_TLS_DIR set (holding cert.pem and key.pem), the gateway
# serves https instead. The OSD keeps objects in RAM (memstore): a stopped
# store's data is gone, which is what tests and the demo want.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT] [BUCKET]" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
daemons="radosgw osd mon" # stop order: the gateway first, the monitor last

key_id=${RAGMAP_LOCAL_KEY_ID:-ragmap-local}
secret=${RAGMAP_LOCAL_SECRET:-ragmap-local-secret}

running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

die() {
	echo "s3-local: $*" >&2
	for f in "$dir"/log/*.log; do
		[ -f "$f" ] || continue
		echo "--- last lines of $f" >&2
		tail -15 "$f" >&2
	done
	stop_all
	exit 1
}

stop_one() {
	local pid
	[ -f "$dir/$1.pid" ] || return 0
	pid=$(cat "$dir/$1.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/$1.pid"
}

stop_all() {
	local d
	for d in $daemons; do stop_one "$d"; done
	rm -f "$dir/s3.port"
}

# A TCP port nothing listens on now (the daemon that takes it may still
# lose a race; start fails then, naming the port).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ceph CLI with a deadline: without a monitor it would wait for ever
cephc() { timeout 30 ceph -c "$dir/ceph.conf" --connect-timeout 20 "$@"; }

write_conf() {
	local mon_port=$1 rgw_port=$2 frontend
	if [ -n "${S3_LOCAL_TLS_DIR:-}" ]; then
		frontend="beast ssl_endpoint=127.0.0.1:$rgw_port ssl_certificate=$S3_LOCAL_TLS_DIR/cert.pem ssl_private_key=$S3_LOCAL_TLS_DIR/key.pem tcp_nodelay=1"
	else
		frontend="beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1"
	fi
	cat >"$dir/ceph.conf" <<EOF
# written by scripts/s3-local.sh: a throw-away single-node store on loopback
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
ms bind msgr2 = false
ms bind ipv6 = false
# loopback only, no cephx; the monitor client then has to be told so
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
# one OSD: one copy, placement without host separation, few PGs
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# proposals every 50 ms instead of 1 s: start-up in ~2 s instead of ~13 s
paxos propose interval = 0.05
# a nearly full /work must not stop the monitor mid-test
mon data avail crit = 1
mon data avail warn = 2

[mon.a]
mon data = $dir/mon

[osd.0]
osd data = $dir/osd
osd objectstore = memstore
# the size the OSD reports (a plain number: "16 GiB" is not parsed and
# leaves 1 GiB, which a test suite fills); RAM is used only for what is stored
memstore device bytes = 34359738368

[client.rgw.local]
rgw frontends = $frontend
rgw data = $dir/rgw
# virtual-hosted addressing too: http://BUCKET.s3.localhost:PORT/KEY
rgw dns name = s3.localhost
# deleted and overwritten data is reclaimed within a minute, not 2 hours
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw enable usage log = false
rgw enable ops log = false
EOF
}

# Start the OSD and wait until it is active. Now and then (about one start
# in ten with several stores starting at once) Ceph 16's OSD sends its first
# command with a zero fsid, is refused and exits: start it again then.
start_osd() {
	local log=$dir/log/osd.0.log
	for _ in 1 2 3; do
		: >"$log"
		nohup ceph-osd -c "$dir/ceph.conf" -i 0 -f >>"$dir/log/osd.out" 2>&1 </dev/null &
		echo $! >"$dir/osd.pid"
		for _ in $(seq 1 300); do
			grep -q "state: booting -> active" "$log" && return 0
			running osd || break
			sleep 0.05
		done
		stop_one osd
	done
	return 1
}

start() {
	local port=${1:-0} bucket=${2:-rag} scheme=http mon_port osd_uuid ep
	[ -n "${S3_LOCAL_TLS_DIR:-}" ] && scheme=https
	if running radosgw && [ -s "$dir/s3.port" ]; then
		echo "$scheme://127.0.0.1:$(cat "$dir/s3.port")"
		return 0
	fi
	command -v radosgw >/dev/null && command -v ceph-mon >/dev/null ||
		{ echo "s3-local: Ceph is not installed: run scripts/setup.sh first" >&2; exit 1; }
	stop_all
	rm -rf "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/run" "$dir/log" "$dir/s3.env" "$dir/monmap"
	mkdir -p "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/run" "$dir/log"
	[ "$port" = 0 ] && port=$(free_port)
	mon_port=$(free_port)
	write_conf "$mon_port" "$port"
	: >"$dir/keyring"

	monmaptool --create --fsid "$(awk '/^fsid/ {print $3}' "$dir/ceph.conf")" \
		--addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null ||
		die "monmaptool failed"
	ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/monmap" >>"$dir/log/setup.log" 2>&1 ||
		die "cannot create the monitor's store"
	nohup ceph-mon -c "$dir/ceph.conf" -i a -f >>"$dir/log/mon.out" 2>&1 </dev/null &
	echo $! >"$dir/mon.pid"

	# the ceph CLI can meet the zero-fsid refusal too (start_osd, above):
	# "osd new" with the same uuid is idempotent, so ask again
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	for try in 1 2 3 4 5; do
		[ "$(cephc osd new "$osd_uuid" 2>>"$dir/log/setup.log")" = 0 ] && break
		[ "$try" = 5 ] && die "the monitor (port $mon_port) did not register the OSD"
		sleep 0.2
	done
	ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/setup.log" 2>&1 ||
		die "cannot create the OSD"
	start_osd || die "the OSD did not boot"

	timeout 60 radosgw-admin -c "$dir/ceph.conf" user create --uid=ragmap \
		--display-name="ragmap local" --access-key="$key_id" --secret-key="$secret" \
		>>"$dir/log/setup.log" 2>&1 || die "cannot create the S3 user"
	nohup radosgw -c "$dir/ceph.conf" -n client.rgw.local -f >>"$dir/log/rgw.out" 2>&1 </dev/null &
	echo $! >"$dir/radosgw.pid"

	ep="$scheme://127.0.0.1:$port"
	for _ in $(seq 1 300); do
		running radosgw || die "radosgw exited (port $port)"
		if curl -sk -o /dev/null "$ep/"; then break; fi
		sleep 0.1
	done
	curl -sk -o /dev/null "$ep/" || die "radosgw does not answer at $ep"
	make_bucket "$ep" "$bucket"
	echo "$port" >"$dir/s3.port"
	cat >"$dir/s3.env" <<EOF
AWS_ENDPOINT_URL=$ep
AWS_ACCESS_KEY_ID=$key_id
AWS_SECRET_ACCESS_KEY=$secret
export AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
EOF
	echo "$ep"
}

# PUT /BUCKET, signed (curl's own SigV4 is right for a path without a query)
make_bucket() {
	local ep=$1 bucket=$2 code
	code=$(curl -sk -o "$dir/log/bucket.out" -w '%{http_code}' -X PUT \
		--aws-sigv4 "aws:amz:us-east-1:s3" --user "$key_id:$secret" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$ep/$bucket")
	case "$code" in
	200 | 409) ;;
	*) die "cannot create bucket \"$bucket\": HTTP $code $(cat "$dir/log/bucket.out")" ;;
	esac
}

# A second key pair for the same S3 user (tests that need a secret of their
# own, such as one to look for in every output).
add_key() {
	[ -n "${1:-}" ] && [ -n "${2:-}" ] || { echo "usage: $0 key DIR KEY_ID SECRET" >&2; exit 2; }
	running mon || { echo "s3-local: no store runs in $dir" >&2; exit 1; }
	timeout 60 radosgw-admin -c "$dir/ceph.conf" key create --uid=ragmap --key-type=s3 \
		--access-key="$1" --secret-key="$2" >/dev/null 2>>"$dir/log/setup.log" ||
		{ echo "s3-local: cannot add key \"$1\" (see $dir/log/setup.log)" >&2; exit 1; }
}

case "$cmd" in
start) start "${3:-0}" "${4:-rag}" ;;
running) running radosgw ;;
key) add_key "${3:-}" "${4:-}" ;;
stop) stop_all ;;
*)
	echo "usage: $0 start|stop|key DIR ..." >&2
	exit 2
	;;
esac
