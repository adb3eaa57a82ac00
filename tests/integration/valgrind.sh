#!/usr/bin/env bash
# Valgrind memcheck (issue 6, item 6) over the real binary: an ingest of the
# sample corpus (Markdown, HTML, text and PDF parsing, model fit, FAISS IVF
# build, uploads, catalog), `ragmap query` in each backing mode and with
# each retriever, and `ragmap serve` answering queries until SIGTERM. Every
# run must report no memory error and no definitely lost block; only
# third-party one-time allocations are suppressed (tests/valgrind.supp).
#
# Skipped (exit 77) in a sanitizer build: valgrind and ASan do not mix.
# The model has 32 dimensions and OpenBLAS/OpenMP one thread: the same code
# paths at a fraction of the cost (under valgrind a 256-dimension fit takes
# minutes, and spinning BLAS threads more).
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/ingest-common.sh"

# Here-strings, not pipes: under pipefail, grep -q closing the pipe early
# makes ldd or nm die of SIGPIPE and the whole test read as false.
if grep -Eq 'lib(a|ub|t)san' <<<"$(ldd "$bin" 2>/dev/null)" ||
	grep -q '__asan_init' <<<"$(nm "$bin" 2>/dev/null)"; then
	echo "skipped: $bin is built with a sanitizer"
	exit 77
fi
command -v valgrind >/dev/null || { echo "skipped: no valgrind"; exit 77; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 RAGMAP_MODEL_DIMS=32 RAGMAP_INDEX_IVF_THRESHOLD=100
runs=0

# vg NAME COMMAND...: COMMAND under memcheck; valgrind's own exit code 99
# means errors or definite leaks (the log is shown)
memcheck=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --num-callers=40 --suppressions="$top/tests/valgrind.supp")
vg() {
	local name=$1
	shift
	runs=$((runs + 1))
	"${memcheck[@]}" --log-file="$work/vg-$name.%p.log" "$@"
}
vg_clean() { # vg_clean NAME: no report in that run's logs (-q: only errors are logged)
	if grep -qs . "$work"/vg-"$1".*.log; then
		bad "$1: valgrind reported"
		cat "$work"/vg-"$1".*.log | head -80
	else
		ok "$1: memcheck clean"
	fi
}

check upload 0 "$bin" s3 put "$top/corpus" "$src"
t0=$(date +%s)
check ingest 0 vg ingest "$bin" ingest
vg_clean ingest
expect ingest-committed "^committed version 1: " "$work/out"
expect ingest-ivf "^  ingest\.segment" "$work/out"

# each mode, dense retrieval; bm25 and hybrid once each (catalog download, FTS5)
for mode in memory pointer cached object; do
	check "query-$mode" 0 vg "query-$mode" "$bin" query "checkpoints written to object storage" -k 5 --mode "$mode"
	vg_clean "query-$mode"
	expect "query-$mode-hits" "^ 5\. " "$work/out"
done
check query-bm25 0 vg query-bm25 "$bin" query "LoRA adapters versioning" -k 3 --mode pointer --retriever bm25
vg_clean query-bm25
check query-hybrid 0 vg query-hybrid "$bin" query "IVF lists and nprobe" -k 3 --mode object --retriever hybrid
vg_clean query-hybrid

# the BERT encoder: a tiny random model imported (store, re-embed) and a local one
torch_python && check make-bert 0 "$py" "$top/tests/tools/bert_ref.py" make "$work/tiny" --shape tiny --seed 3
check import-bert 0 vg import-bert "$bin" model import "$work/tiny" --name tiny-bert
vg_clean import-bert
check embed-bert 0 vg embed-bert "$bin" embed --model-dir "$work/tiny" "Ångström café 中文 😀" "unaffable"
vg_clean embed-bert
check query-bert 0 vg query-bert "$bin" query "checkpoints" -k 3 --mode object
vg_clean query-bert

# the server: load, a few queries on its pool threads, the query log, stop
# (not through vg: $! must be valgrind's own pid, not a subshell's)
"${memcheck[@]}" --log-file="$work/vg-serve.%p.log" "$bin" serve --mode cached --listen 127.0.0.1:0 \
	>"$work/serve.out" 2>"$work/serve.err" &
spid=$!
runs=$((runs + 1))
port=""
for _ in $(seq 1 600); do
	port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/serve.out")
	[ -n "$port" ] && break
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.1
done
if [ -n "$port" ]; then
	ok "serve-started"
	for q in '{"q": "kv cache and GPU memory", "k": 3}' '{"q": "kv cache and GPU memory", "k": 3}' \
		'{"q": "sharded datasets", "k": 2, "retriever": "hybrid"}' '{"q": 5}'; do
		code=$(curl -s -o "$work/body" -w '%{http_code}' -X POST --data-binary "$q" \
			"http://127.0.0.1:$port/v1/query")
		case "$q" in *'"q": 5'*) want=400 ;; *) want=200 ;; esac
		equal "serve-query-$want" "$code" "$want"
	done
	curl -s "http://127.0.0.1:$port/metrics" >/dev/null
	kill -TERM "$spid"
else
	bad "serve did not start"
	cat "$work/serve.err"
	kill -KILL "$spid" 2>/dev/null
fi
wait "$spid"
equal serve-exit-status "$?" 0
vg_clean serve

echo "figures: $runs processes under memcheck in $(($(date +%s) - t0)) s"
finish
