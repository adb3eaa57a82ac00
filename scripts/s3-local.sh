#!/usr/bin/env bash
# Start or stop the pinned local S3 server on loopback.
#
#   scripts/s3-local.sh start DIR [PORT] [BUCKET]   PORT 0 (default) = ephemeral
#   scripts/s3-local.sh stop DIR
#
# DIR holds the server's data, its pid (DIR/s3.pid), port (DIR/s3.port) and
# log (DIR/s3.log). `start` prints the endpoint URL once the server answers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT] [BUCKET]" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
start)
	port=${3:-0}
	bucket=${4:-rag}
	scheme=http
	[ -n "${S3_LOCAL_TLS_DIR:-}" ] && scheme=https
	if [ -f "$dir/s3.pid" ] && kill -0 "$(cat "$dir/s3.pid")" 2>/dev/null; then
		echo "${scheme:-http}://127.0.0.1:$(cat "$dir/s3.port")"
		exit 0
	fi
	[ -x "$top/tools/s3/node_modules/.bin/s3rver" ] || { echo "s3-local: run scripts/setup.sh first" >&2; exit 1; }
	rm -f "$dir/s3.port"
	# s3rver makes continuation tokens with DES, which OpenSSL 3 keeps in its
	# legacy provider: without it every paginated listing fails with a 500.
	nohup node --openssl-legacy-provider "$top/tools/s3/serve.js" "$dir/data" "$port" "$bucket" "$dir/s3.port" \
		>"$dir/s3.log" 2>&1 </dev/null &
	echo $! >"$dir/s3.pid"
	for _ in $(seq 1 200); do
		if [ -s "$dir/s3.port" ]; then
			echo "${scheme:-http}://127.0.0.1:$(cat "$dir/s3.port")"
			exit 0
		fi
		kill -0 "$(cat "$dir/s3.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "s3-local: server did not start; log follows" >&2
	cat "$dir/s3.log" >&2
	exit 1
	;;
stop)
	if [ -f "$dir/s3.pid" ]; then
		pid=$(cat "$dir/s3.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$dir/s3.pid" "$dir/s3.port"
	fi
	;;
*)
	echo "usage: $0 start|stop DIR [PORT] [BUCKET]" >&2
	exit 2
	;;
esac
