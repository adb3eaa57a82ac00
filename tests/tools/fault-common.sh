# Sourced by tests/integration/fault_*.sh after ingest-common.sh or
# query-common.sh: runs tests/tools/faultproxy in front of the fixture's S3
# server and stops it at exit.
#
#   start_proxy FLAGS...     start it (upstream: $AWS_ENDPOINT_URL); sets
#                            $proxy_url and $proxy_pid
#   proxy_set "a=b&c=d"      change settings at run time (rate=, rate-500=,
#                            latency-ms=, fail-key=, fail-kind= ...;
#                            unconditional=1: the store looks like one
#                            without conditional writes, a PUT refused for
#                            its If-None-Match/If-Match is answered 200; see
#                            faultproxy.c for what that emulation differs in)
#   proxy_stat NAME          one counter: requests, injected, 500, 503, reset,
#                            reset-body, truncate, persistent, delayed,
#                            unconditional (refusals answered 200)
#   through_proxy CMD...     run CMD with the S3 endpoint set to the proxy
faultproxy=${RAGMAP_FAULTPROXY:-$(dirname "$bin")/faultproxy}
[ -x "$faultproxy" ] || { echo "FAIL no faultproxy at $faultproxy"; exit 1; }
direct_url=$AWS_ENDPOINT_URL
proxy_pid=""
proxy_url=""

stop_proxy() {
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null
		wait "$proxy_pid" 2>/dev/null
		proxy_pid=""
	fi
}
# common.sh's cleanup (servers, $work) runs too
trap 'stop_proxy; cleanup' EXIT

start_proxy() {
	stop_proxy
	rm -f "$work/proxy.port"
	"$faultproxy" --upstream "$direct_url" --port-file "$work/proxy.port" \
		--log "$work/proxy.log" "$@" >/dev/null 2>>"$work/proxy.err" &
	proxy_pid=$!
	for _ in $(seq 1 100); do
		[ -s "$work/proxy.port" ] && break
		kill -0 "$proxy_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$work/proxy.port" ]; then
		echo "FAIL faultproxy did not start"; cat "$work/proxy.err"; exit 1
	fi
	proxy_url=http://127.0.0.1:$(cat "$work/proxy.port")
}

proxy_set() {
	curl -sf -X POST "$proxy_url/_faultproxy/config?$1" >/dev/null ||
		bad "proxy_set $1"
}

proxy_stat() {
	curl -sf "$proxy_url/_faultproxy/stats" | grep -o "\"$1\": [0-9]*" | sed 's/.*: //'
}

through_proxy() {
	AWS_ENDPOINT_URL=$proxy_url "$@"
}

# The retries an ingest reported (sum over its "storage by stage" lines).
reported_retries() {
	sed -n 's/.*, \([0-9]*\) retries$/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
}
