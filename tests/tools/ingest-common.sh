# Sourced by tests/integration/ingest_*.sh: tests/tools/common.sh (endpoint,
# namespace, helpers) plus $cat, the local catalog, and catalog and
# manifest helpers.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
cat=$work/local/$idx/catalog.sqlite

# sql QUERY: run against the local catalog (read-only), one row per line.
sql() { sqlite3 -readonly -batch -noheader "$cat" "$1"; }

# The GETs of the last ingest's fetch stage (0 when the stage is absent).
fetch_gets() {
	sed -n 's/^  ingest\.fetch *\([0-9]*\) requests.*/\1/p' "$work/out" | head -1 | grep . || echo 0
}

# Every key the manifest LATEST names (segments, catalog, model).
manifest_keys() {
	local mkey
	"$bin" s3 get "${root}LATEST" - >"$work/latest.json" || return 1
	mkey=$(sed -n 's/.*"manifest": *"\([^"]*\)".*/\1/p' "$work/latest.json")
	"$bin" s3 get "$mkey" - >"$work/manifest.json" || return 1
	echo "$mkey"
	grep -o '"key": *"[^"]*"' "$work/manifest.json" | sed 's/.*"key": *"\(.*\)"/\1/'
}
