#!/usr/bin/env bash
# The ragmap demo, end to end on the local S3 server:
#   set-up and build, start the pinned local S3 server on 127.0.0.1:4570,
#   upload corpus/ under source/, and list it back through ragmap.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/setup.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

demo=$top/.demo
export AWS_ENDPOINT_URL=$("$top/scripts/s3-local.sh" start "$demo/s3" "${RAGMAP_DEMO_PORT:-4570}")
# the local server knows one key id, S3RVER; real deployments set their own
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-S3RVER}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-S3RVER}
ragmap=$top/build/ragmap

echo "== local S3 server at $AWS_ENDPOINT_URL (data in $demo/s3)"
echo "== uploading corpus/ to s3://rag/source/"
"$ragmap" s3 put corpus source/
echo "== what the store holds now (ragmap s3 ls -r source/)"
"$ragmap" s3 ls -r source/ --stats
echo
echo "The server keeps running; stop it with: scripts/s3-local.sh stop $demo/s3"
