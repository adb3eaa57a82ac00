# Sourced by bench/eval-*.sh: one collection on a store of its own, the way a
# user would run it. eval_index COLLECTION_DIR TAG: start a local Ceph RGW
# (scripts/s3-local.sh) under a temporary directory (removed at exit with the
# store), upload COLLECTION_DIR/docs and `ragmap ingest` it (the model is
# fitted on the empty index). Sets coll, name, ragmap and work.
# COLLECTION_DIR holds docs/<id>.txt, queries.tsv and qrels.txt; RAGMAP_BIN
# picks the binary (default build/ragmap, built when missing).
eval_index() {
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	coll=$(cd "$1" && pwd)
	name=$(basename "$coll")
	ragmap=${RAGMAP_BIN:-$top/build/ragmap}
	if [ ! -x "$ragmap" ]; then
		"$top/scripts/setup.sh" >/dev/null
		cmake -S "$top" -B "$top/build" >/dev/null && cmake --build "$top/build" -j2 >/dev/null
	fi
	work=$(mktemp -d "/tmp/ragmap-$2-XXXXXX")
	trap '"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1; rm -rf "$work"' EXIT
	"$top/scripts/s3-local.sh" start "$work/s3" 0 >/dev/null
	. "$work/s3/s3.env"
	export RAGMAP_LOCAL_DIR=$work/local RAGMAP_SOURCE_PREFIX=eval/$name/ RAGMAP_INDEX_NAME=$name
	unset RAGMAP_CONFIG
	"$ragmap" s3 put "$coll/docs" "eval/$name/" >&2
	"$ragmap" ingest --quiet
}
