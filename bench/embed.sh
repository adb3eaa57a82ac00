#!/usr/bin/env bash
# Embedding speed on one core: ragmap's BERT encoder beside PyTorch on the
# same texts, and the built-in LSA model's rate.
#
#   bench/embed.sh                    writes bench/results/embed.txt, prints it
#
# 1. A model directory of the all-MiniLM-L6-v2 shape (vocab 30522, hidden
#    384, 6 layers, 12 heads, FFN 1536, float32) with random weights:
#    tests/tools/bert_ref.py make --shape minilm --seed 1. The speed depends
#    on the shape, not on the values (no hub download is possible here).
# 2. For 128 and 256 tokens per text: `ragmap bench embed --model-dir` on
#    generated English-like texts cut by the model's own tokenizer to exactly
#    that many tokens ([CLS] and [SEP] included; 256 is the model's limit),
#    which also writes them (--dump-texts); then bench/embed_torch.py on the
#    same file: PyTorch (Debian's python3-torch) at one thread. Both sides are
#    pinned to the same CPU, include tokenization, warm up first, and take the
#    texts 256 at a time; ROUNDS rounds alternate the two and the table
#    shows the best of each (other processes can only slow a run down) and
#    the median; every round is listed. Before the timing, both sides embed the first texts and their
#    vectors are compared (they must compute the same function).
# 3. The LSA model as bench/ingest.sh measures it: a generated corpus of
#    LSA_DOCS documents ingested into a local S3 server of its own
#    (scripts/s3-local.sh, ephemeral port), then `ragmap bench embed` over the
#    index's chunks (~256 tokens by the chunker's count). Skipped, and the
#    table says so, when the server does not start or LSA_DOCS=0.
#
# Env: RAGMAP_BIN (default build/ragmap), PYTHON (a python3 with torch;
# default the first of python3, /usr/bin/python3 that has it), ROUNDS (5),
# COUNT128 (300), COUNT256 (150) texts per run, LSA_DOCS (2000), CPU (the
# CPU both sides are pinned to; default the last one), OUT (default
# bench/results/embed.txt), RAGMAP_BENCH_DIR (work directory, default a
# fresh one under /tmp, removed at the end unless KEEP=1).
# Not part of ctest: it takes minutes. Numbers are only as quiet as the
# machine: the load average at the start and the end is in the table.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAGMAP_BIN:-$top/build/ragmap}
rounds=${ROUNDS:-5}
count128=${COUNT128:-300}
count256=${COUNT256:-150}
lsa_docs=${LSA_DOCS:-2000}
out=${OUT:-$top/bench/results/embed.txt}
cpu=${CPU:-$(($(nproc) - 1))}
[ -x "$bin" ] || { echo "bench: no ragmap binary at $bin (build first or set RAGMAP_BIN)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") # the script changes directory
py=""
for c in ${PYTHON:-} python3 /usr/bin/python3; do
	if "$c" -c 'import torch' 2>/dev/null; then py=$c; break; fi
done
[ -n "$py" ] || { echo "bench: no python3 with torch (scripts/setup.sh installs python3-torch)" >&2; exit 2; }
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$cpu")
work=${RAGMAP_BENCH_DIR:-$(mktemp -d /tmp/ragmap-embed.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
s3_started=0
cleanup() {
	[ "$s3_started" = 0 ] || "$top/scripts/s3-local.sh" stop "$work/s3" || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
export RAGMAP_LOG=warn
unset RAGMAP_CONFIG
cd "$work" # built-in defaults, not a config/ragmap.conf of the caller's directory

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: ragmap $("$bin" --version | cut -d' ' -f2), $($py -c 'import torch; print("torch", torch.__version__)'), $(nproc) CPUs (pinned to CPU $cpu), work dir $work" >&2
echo "bench: making a MiniLM-L6-shape model with random weights..." >&2
"$py" "$top/tests/tools/bert_ref.py" make "$work/minilm" --shape minilm --seed 1

# the same function on both sides: the first texts of the 128-token set
"${pin[@]}" "$bin" bench embed --model-dir "$work/minilm" --tokens 128 --count 8 --json \
	--dump-texts "$work/check.json" >/dev/null
"$bin" embed --model-dir "$work/minilm" --json --input "$work/check.json" >"$work/check.vec"

for r in $(seq 1 "$rounds"); do
	for tok in 128 256; do
		count=$count128
		[ "$tok" = 256 ] && count=$count256
		echo "bench: round $r/$rounds, $tok tokens, $count texts: ragmap..." >&2
		"${pin[@]}" "$bin" bench embed --model-dir "$work/minilm" --tokens "$tok" --count "$count" \
			--json --dump-texts "$work/texts$tok.json" >"$work/c$tok.$r.json"
		echo "bench: round $r/$rounds, $tok tokens: PyTorch..." >&2
		check=()
		[ "$r$tok" = 1128 ] && check=(--check "$work/check.vec")
		"${pin[@]}" "$py" "$top/bench/embed_torch.py" "$work/minilm" --texts "$work/texts$tok.json" \
			"${check[@]}" >"$work/t$tok.$r.json"
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# the LSA model, over an index of its own
lsa_line=""
if [ "$lsa_docs" = 0 ]; then
	lsa_line="LSA model: skipped (LSA_DOCS=0); bench/results/ingest.txt has 36,198 chunks/s/core (63,897 on an earlier, quieter machine)"
elif ! "$top/scripts/s3-local.sh" start "$work/s3" 0 >"$work/s3.out" 2>&1; then
	s3_started=1
	lsa_line="LSA model: skipped (the local S3 server did not start: $(tail -1 "$work/s3.out")); bench/results/ingest.txt has 36,198 chunks/s/core (63,897 on an earlier, quieter machine)"
else
	s3_started=1
	(
		. "$work/s3/s3.env"
		export RAGMAP_LOCAL_DIR=$work/local
		echo "bench: LSA: $lsa_docs documents into a local S3 server, ingest..." >&2
		"$top/bench/gen-corpus.sh" "$work/gen" "$lsa_docs" 42 5500 >&2
		"$bin" s3 put "$work/gen" "src-gen/" >&2
		RAGMAP_SOURCE_PREFIX=src-gen/ RAGMAP_INDEX_NAME=gen "$bin" ingest >"$work/lsa.ingest"
		RAGMAP_INDEX_NAME=gen "${pin[@]}" "$bin" bench embed --count 50000 --json >"$work/lsa.json"
	) || echo "bench: the LSA run failed (see above)" >&2
	"$top/scripts/s3-local.sh" stop "$work/s3" >/dev/null 2>&1 || true
	s3_started=0
	if [ -s "$work/lsa.json" ]; then
		lsa_line=$("$py" - "$work/lsa.json" "$lsa_docs" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("LSA model (%s, %d dims, fitted on %s generated documents): %.0f chunks/s/core "
      "(%d chunks of %.0f tokens by the chunker's count, %.0f bytes; peak RSS %.0f MB; "
      "bench/results/ingest.txt: 36,198; 63,897 on an earlier, quieter machine)"
      % (d["model"], d["dims"], sys.argv[2], d["chunks_per_s_per_core"], d["texts"],
         d["tokens_per_text"], d["bytes_per_text"], d["peak_rss_mb"]))
EOF
)
	else
		lsa_line="LSA model: skipped (the run above failed); bench/results/ingest.txt has 36,198 chunks/s/core (63,897 on an earlier, quieter machine)"
	fi
fi

# the table: the best round of each side (every round listed below it)
"$py" - "$work" "$rounds" "$load0" "$load1" "$cpu" "$lsa_line" >"$work/table.txt" <<'EOF'
import json, os, sys, time
work, rounds, load0, load1, cpu, lsa = sys.argv[1], int(sys.argv[2]), *sys.argv[3:7]
def get(p):
    return json.load(open("%s/%s.json" % (work, p)))
model = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
first = get("t128.1")
print("## Embedding on one core: ragmap's BERT encoder beside PyTorch (%s, %s, %s)"
      % (time.strftime("%Y-%m-%d", time.gmtime()), model, first["impl"]))
print()
print("Model: the all-MiniLM-L6-v2 shape (vocab 30522, hidden 384, 6 layers, 12 heads, FFN 1536,")
print("float32, mean pooling), random weights (tests/tools/bert_ref.py make --shape minilm --seed 1).")
print("Texts: generated English-like prose, cut by the model's tokenizer to exactly N tokens")
print("([CLS] and [SEP] included); both sides embed the same texts (ragmap bench embed --dump-texts),")
print("tokenization included, one thread pinned to CPU %s, after a warm-up. Best (and median) of %d"
      % (cpu, rounds))
print("alternating rounds; load average %s at the start, %s at the end (%d CPUs shared with other work)."
      % (load0, load1, os.cpu_count()))
print()
head = ["tokens", "texts", "ragmap chunks/s/core", "PyTorch chunks/s/core", "ragmap / PyTorch",
        "ragmap peak RSS", "PyTorch peak RSS"]
rows = []
best = {}
med = lambda v: sorted(v)[len(v) // 2]
for tok in (128, 256):
    cs = [get("c%d.%d" % (tok, r)) for r in range(1, rounds + 1)]
    ts = [get("t%d.%d" % (tok, r)) for r in range(1, rounds + 1)]
    c = max(cs, key=lambda d: d["chunks_per_s_per_core"])
    t = max(ts, key=lambda d: d["chunks_per_s_per_core"])
    for d in cs + ts:  # the same texts, the same length, on both sides
        assert abs(d["tokens_per_text"] - tok) < 0.01, (tok, d["tokens_per_text"])
    best[tok] = (c, t, cs, ts)
    cm = med([d["chunks_per_s_per_core"] for d in cs])
    tm = med([d["chunks_per_s_per_core"] for d in ts])
    rows.append(["%d" % tok, "%d" % c["texts"],
                 "%.2f (median %.2f)" % (c["chunks_per_s_per_core"], cm),
                 "%.2f (median %.2f)" % (t["chunks_per_s_per_core"], tm),
                 "%.2fx (median %.2fx)" % (c["chunks_per_s_per_core"] / t["chunks_per_s_per_core"], cm / tm),
                 "%.0f MB" % max(d["peak_rss_mb"] for d in cs),
                 "%.0f MB" % max(d["peak_rss_mb"] for d in ts)])
width = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
print("| " + " | ".join(h.ljust(w) for h, w in zip(head, width)) + " |")
print("|" + "|".join("-" * (w + 1) + ":" for w in width) + "|")
for x in rows:
    print("| " + " | ".join(v.rjust(w) for v, w in zip(x, width)) + " |")
print()
print("By CPU time instead of wall time (chunks per CPU-second, best round; less sensitive to sharing):")
for tok in (128, 256):
    c, t, cs, ts = best[tok]
    cc = max(d["chunks_per_cpu_s"] for d in cs)
    tc = max(d["chunks_per_cpu_s"] for d in ts)
    print("  %d tokens: ragmap %.2f, PyTorch %.2f, ratio %.2fx" % (tok, cc, tc, cc / tc))
print()
print("Every round (chunks/s/core, ragmap / PyTorch):")
for tok in (128, 256):
    c, t, cs, ts = best[tok]
    print("  %d tokens: %s" % (tok, ", ".join("%.2f / %.2f" % (a["chunks_per_s_per_core"], b["chunks_per_s_per_core"])
                                              for a, b in zip(cs, ts))))
print()
t = best[128][1]
print("PyTorch side: %d-sequence batches of equal length, tokenization (pure Python) %.1f%% of its time at 128 tokens."
      % (t["batch"], 100 * t["tokenize_seconds"] / t["seconds"]))
chk = get("t128.1")
if "check_max_abs_diff" in chk:
    print("Same function: ragmap embed and the PyTorch side on the first %d texts differ by at most %.1e per component."
          % (chk["check_texts"], chk["check_max_abs_diff"]))
print(lsa)
print()
r = [best[tok][0]["chunks_per_s_per_core"] / best[tok][1]["chunks_per_s_per_core"] for tok in (128, 256)]
print("target: >= 1.5x PyTorch on one thread: %s (best rounds: 128 tokens %.2fx, 256 tokens %.2fx)"
      % ("met" if min(r) >= 1.5 else "MISSED", r[0], r[1]))
print("command: bench/embed.sh (ROUNDS=%d COUNT128=%d COUNT256=%d)"
      % (rounds, best[128][0]["texts"], best[256][0]["texts"]))
EOF
mkdir -p "$(dirname "$out")"
cp "$work/table.txt" "$out"
cat "$out"
