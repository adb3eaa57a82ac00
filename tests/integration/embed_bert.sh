#!/usr/bin/env bash
# `ragmap embed --model-dir DIR --json --input FILE` against an independent
# PyTorch reference (tests/tools/bert_ref.py: its own tokenizer, safetensors
# reader and forward pass) on models with random weights of real shapes:
# tiny ones (f32 mean, f16 CLS cased, bf16 with a "bert." prefix and a short
# max_seq_length, larger weights, a directory without the optional files)
# and the all-MiniLM-L6-v2 and BGE-small shapes; every component of every
# vector within $tol. Then broken models: errors name the file and tensor,
# exit codes stay below 128 (no crash).
#
# Needs python3 with torch (Debian's python3-torch, which scripts/setup.sh
# installs): without it the test fails. Does not use the S3 fixture.
. "${RAGMAP_SOURCE_DIR:?}/tests/tools/common.sh"
ref=$top/tests/tools/bert_ref.py
# float32 C against the float64 reference differs by ~2e-7. The issue asks
# for 1e-4, which still passes a tanh GELU (<= 1e-4 off even on "hot") or
# layer_norm_eps 1e-5 (~5e-5 on minilm); 1e-5 catches both
tol=${RAGMAP_TEST_BERT_TOL:-1e-5}

torch_python || { finish; exit 1; }

check ref-selftest 0 "$py" "$ref" selftest
check texts 0 "$py" "$ref" texts "$work/texts.json"

# compare NAME DIR: ragmap's vectors for texts.json against
# $work/NAME.ref.json, the reference's
compare() {
	local name=$1 dir=$2 input=$work/texts.json
	"$bin" embed --model-dir "$dir" --json --input "$input" >"$work/$name.c.json" 2>"$work/$name.c.err"
	local rc=$?
	if [ "$rc" != 0 ]; then
		bad "embed-$name: ragmap exit $rc"
		sed 's/^/     | /' "$work/$name.c.err" | tail -20
		return
	fi
	if [ ! -s "$work/$name.ref.json" ]; then
		bad "embed-$name: no reference output"
		return
	fi
	local msg
	if msg=$("$py" - "$input" "$work/$name.c.json" "$work/$name.ref.json" "$tol" <<'EOF' 2>&1
import json, math, sys

def no_constant(c):
    raise ValueError("non-finite number %s" % c)

texts = json.load(open(sys.argv[1], encoding="utf-8"))
got = json.load(open(sys.argv[2], encoding="utf-8"), parse_constant=no_constant)
want = json.load(open(sys.argv[3], encoding="utf-8"), parse_constant=no_constant)
tol = float(sys.argv[4])
errs = []
if not isinstance(got, dict) or not {"model", "dims", "vectors"} <= set(got):
    sys.exit("ragmap: %s, want model, dims, vectors" % (sorted(got) if isinstance(got, dict) else "not an object"))
if got["model"] != want["model"]:
    sys.exit("model %r, want %r (the directory's base name)" % (got["model"], want["model"]))
D = want["dims"]
if got["dims"] != D:
    sys.exit("dims %r, want %d" % (got["dims"], D))
if len(got["vectors"]) != len(texts) or len(want["vectors"]) != len(texts):
    sys.exit("%d vectors (reference %d) for %d texts" % (len(got["vectors"]), len(want["vectors"]), len(texts)))
worst = (-1.0, 0, 0)
for i, (g, w) in enumerate(zip(got["vectors"], want["vectors"])):
    if len(g) != D or not all(isinstance(x, (int, float)) for x in g):
        sys.exit("text %d: %d components (want %d numbers)" % (i, len(g), D))
    norm = math.sqrt(sum(x * x for x in g))
    if abs(norm - 1) > 1e-4:
        sys.exit("text %d %r: norm %g" % (i, texts[i][:60], norm))
    for j, (x, y) in enumerate(zip(g, w)):
        if abs(x - y) > worst[0]:
            worst = (abs(x - y), i, j)
d, i, j = worst
where = "text %d %r (%d chars), component %d: %r vs %r" % (
    i, texts[i][:60], len(texts[i]), j, got["vectors"][i][j], want["vectors"][i][j]) if texts else "no texts"
if d > tol:
    per = sorted(((max(abs(x - y) for x, y in zip(g, w)), k) for k, (g, w) in
                  enumerate(zip(got["vectors"], want["vectors"]))), reverse=True)
    print("max |diff| %.3g > %g at %s" % (d, tol, where))
    print("texts over: " + ", ".join("%d (%.2g)" % (k, e) for e, k in per if e > tol))
    sys.exit(1)
print("%d vectors of %d, max |diff| %.2g" % (len(texts), D, max(d, 0)))
EOF
	); then
		ok "embed-$name: $msg"
	else
		bad "embed-$name: $msg"
		echo "     | (the reference's tokens: $py $ref tokens $dir --input $input --pieces)"
	fi
}

# PyTorch takes seconds to load: one process makes every model, one computes
# every reference (bert_ref.py batch)
m=$work/models
cat >"$work/make.txt" <<EOF
make $m/tiny --shape tiny --seed 1
make $m/tiny16 --shape tiny --seed 2 --dtype f16 --pooling cls --lower 0
make $m/tinybf --shape tiny --seed 3 --dtype bf16 --max-seq 40 --prefix bert.
make $m/hot --shape tiny --seed 4 --std 0.2
make $m/minilm --shape minilm --seed 5
make $m/bge --shape bge --seed 6
make $m/bad-shape --shape tiny --break shape
make $m/bad-missing --shape tiny --break missing
EOF
check make-models 0 "$py" "$ref" batch "$work/make.txt"
# the optional files absent: lower-cased, mean pooling, max_position tokens
cp -r "$m/tiny16" "$m/bare"
rm -r "$m/bare/tokenizer_config.json" "$m/bare/1_Pooling" "$m/bare/sentence_bert_config.json" \
	"$m/bare/modules.json"

models="tiny tiny16 tinybf hot bare minilm bge"
for name in $models; do
	echo "embed $m/$name --input $work/texts.json --out $work/$name.ref.json"
done >"$work/ref.txt"
check reference 0 "$py" "$ref" batch "$work/ref.txt"

for name in $models; do
	compare "$name" "$m/$name"
done

# fails NAME PATTERN COMMAND...: exit status 1..127 (an error, not a signal)
# and PATTERN (grep -E) in stderr
fails() {
	local name=$1 pat=$2
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	local got=$?
	if [ "$got" = 0 ] || [ "$got" -ge 128 ]; then
		bad "$name: exit $got, want an error status below 128"
		sed 's/^/     | /' "$work/err" | tail -10
	elif ! grep -Eq -- "$pat" "$work/err"; then
		bad "$name: no /$pat/ in stderr"
		sed 's/^/     | /' "$work/err" | tail -10
	else
		ok "$name (exit $got)"
	fi
}
embed_dir() { "$bin" embed --model-dir "$1" --json --input "$work/texts.json"; }

# model.safetensors cut: in the data, in the header, inside the length field
size=$(stat -c %s "$m/tiny/model.safetensors")
for cut in $((size / 2)) $((size - 1)) 100 5 0; do
	rm -rf "$m/cut"
	cp -r "$m/tiny" "$m/cut"
	head -c "$cut" "$m/tiny/model.safetensors" >"$m/cut/model.safetensors"
	fails "truncated-safetensors-$cut" 'model\.safetensors' embed_dir "$m/cut"
done
fails wrong-shape 'model\.safetensors.*encoder\.layer\.1\.attention\.self\.key\.weight' embed_dir "$m/bad-shape"
fails missing-tensor 'encoder\.layer\.1\.output\.LayerNorm\.bias' embed_dir "$m/bad-missing"
cp -r "$m/tiny" "$m/novocab"
rm "$m/novocab/vocab.txt"
fails missing-vocab 'vocab\.txt' embed_dir "$m/novocab"
cp -r "$m/tiny" "$m/nounk"
sed -i 's/^\[UNK\]$/[UNK0]/' "$m/nounk/vocab.txt"
fails vocab-without-unk 'vocab\.txt.*\[UNK\]|\[UNK\].*vocab\.txt' embed_dir "$m/nounk"
cp -r "$m/tiny" "$m/relu"
sed -i 's/"hidden_act": "gelu"/"hidden_act": "relu"/' "$m/relu/config.json"
fails hidden-act-relu 'config\.json.*hidden_act|hidden_act.*config\.json' embed_dir "$m/relu"
# settings a file may hold that would tokenize or cut differently: refused,
# naming the file and the field
with_json() { # with_json NAME FILE JSON: a copy of tiny with FILE replaced
	rm -rf "$m/$1"
	cp -r "$m/tiny" "$m/$1"
	printf '%s\n' "$3" >"$m/$1/$2"
}
with_json msl-text sentence_bert_config.json '{"max_seq_length": "abc"}'
fails max-seq-length-text 'sentence_bert_config\.json.*max_seq_length' embed_dir "$m/msl-text"
with_json msl-one sentence_bert_config.json '{"max_seq_length": 1}'
fails max-seq-length-one 'sentence_bert_config\.json.*max_seq_length' embed_dir "$m/msl-one"
with_json strip tokenizer_config.json '{"do_lower_case": false, "strip_accents": true}'
fails strip-accents-without-lower 'tokenizer_config\.json.*strip_accents' embed_dir "$m/strip"
with_json nocjk tokenizer_config.json '{"do_lower_case": true, "tokenize_chinese_chars": false}'
fails no-cjk-split 'tokenizer_config\.json.*tokenize_chinese_chars' embed_dir "$m/nocjk"
# the settings every released checkpoint has are accepted
with_json usual tokenizer_config.json '{"do_lower_case": true, "strip_accents": null, "tokenize_chinese_chars": true}'
check usual-tokenizer-config 0 "$bin" embed --model-dir "$m/usual" hello

printf '["fine", 5]\n' >"$work/bad-input.json"
fails input-not-strings 'bad-input\.json' "$bin" embed --model-dir "$m/tiny" --json --input "$work/bad-input.json"

finish
