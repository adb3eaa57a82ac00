#!/usr/bin/env python3
"""embed_torch.py -- the PyTorch side of bench/embed.sh.

    embed_torch.py DIR --texts FILE [--batch N] [--check VECTORS.json]

Embeds the texts of FILE (a JSON array of strings: what `ragmap bench embed
--dump-texts FILE` wrote, so both sides see the same texts in the same
order) with the BERT model in DIR (a Hugging Face / sentence-transformers
directory) on one thread, and prints one JSON object, with the fields of
`ragmap bench embed --json` that apply.

Timed, per text: tokenization (tests/tools/bert_ref.py's tokenizer, pure
Python: it is part of embedding a chunk, as it is on the ragmap side) and
the forward pass. The forward pass is a plain post-LN BERT written with
torch.nn.functional (what Hugging Face's BertModel computes, without its
dispatch layers): float32, torch.no_grad(), torch.set_num_threads(1), the
process pinned to one CPU; texts taken 256 at a time (as the ragmap side
takes them), sorted by length, and run in batches of up to --batch sequences
of equal length (no padding, no mask: neither side pays for padding). Mean or
CLS pooling as the directory says, then L2 normalisation.

--check VECTORS.json: the output of `ragmap embed --model-dir DIR --json
--input F` for the first k texts of FILE; prints the largest difference of
any component (a check that both sides compute the same function).
"""

import argparse
import json
import math
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))

# one thread everywhere, before torch starts its pools
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bert_ref  # noqa: E402


class Bert(torch.nn.Module):
    """Post-LN BERT encoder plus pooling, from bert_ref.Model's float32 weights."""

    def __init__(self, m):
        super().__init__()
        w = {k: v.contiguous() for k, v in m.w.items()}
        self.H, self.heads, self.eps, self.cls = m.H, m.heads, m.eps, m.cls
        self.d = self.H // self.heads
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(m.L):
            n = bert_ref.layer_names(i)
            self.layers.append({k: (w[n[k] + ".weight"], w[n[k] + ".bias"]) for k in n})

    def forward(self, ids):
        """ids: [B, n] int64, every row the same length; returns [B, H] normalised."""
        B, n = ids.shape
        H, nh, d = self.H, self.heads, self.d
        x = self.word[ids] + self.pos[:n] + self.type0
        x = F.layer_norm(x, (H,), self.ln[0], self.ln[1], self.eps)
        scale = 1.0 / math.sqrt(d)
        for p in self.layers:
            q = F.linear(x, *p["q"]).view(B, n, nh, d).transpose(1, 2)
            k = F.linear(x, *p["k"]).view(B, n, nh, d).transpose(1, 2)
            v = F.linear(x, *p["v"]).view(B, n, nh, d).transpose(1, 2)
            att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1)
            ctx = torch.matmul(att, v).transpose(1, 2).reshape(B, n, H)
            x = F.layer_norm(x + F.linear(ctx, *p["o"]), (H,), *p["ln1"], self.eps)
            h = F.gelu(F.linear(x, *p["i"]))  # exact (erf) GELU, as BERT's "gelu"
            x = F.layer_norm(x + F.linear(h, *p["o2"]), (H,), *p["ln2"], self.eps)
        pooled = x[:, 0] if self.cls else x.mean(dim=1)
        return F.normalize(pooled, dim=-1)


def embed(m, net, texts, batch, out):
    """Tokenize and embed texts into out (a [len(texts), H] tensor); returns
    (tokens seen, texts cut at the limit, seconds spent tokenizing)."""
    tokens = truncated = 0
    tok_s = 0.0
    for g in range(0, len(texts), 256):
        t0 = time.perf_counter()
        seqs = []
        for i in range(g, min(g + 256, len(texts))):
            pieces, ids = bert_ref.tokenize(texts[i], m.vocab, m.lower, 1 << 30)
            if len(ids) > m.max_len:  # [CLS] pieces[:max_len - 2] [SEP]
                ids = ids[:m.max_len - 1] + ids[-1:]
                truncated += 1
            tokens += len(ids)
            seqs.append((len(ids), i, ids))
        tok_s += time.perf_counter() - t0
        seqs.sort()
        j = 0
        while j < len(seqs):
            k = j
            while k < len(seqs) and k - j < batch and seqs[k][0] == seqs[j][0]:
                k += 1
            ids = torch.tensor([s[2] for s in seqs[j:k]], dtype=torch.long)
            out[[s[1] for s in seqs[j:k]]] = net(ids)
            j = k
    return tokens, truncated, tok_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--texts", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--check")
    a = ap.parse_args()

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.set_grad_enabled(False)

    m = bert_ref.Model(a.dir, float32=True)
    net = Bert(m)
    texts = bert_ref.read_texts(a.texts)
    if not texts:
        raise SystemExit("embed_torch: %s: no texts" % a.texts)
    out = torch.empty(len(texts), m.H)

    # warm-up: the first texts once, untimed (as the ragmap side does)
    embed(m, net, texts[:8], a.batch, torch.empty(min(8, len(texts)), m.H))
    c0, t0 = time.process_time(), time.perf_counter()
    tokens, truncated, tok_s = embed(m, net, texts, a.batch, out)
    secs, cpu_s = time.perf_counter() - t0, time.process_time() - c0

    res = {
        "model": m.name, "impl": "pytorch " + torch.__version__, "dims": m.H,
        "threads": torch.get_num_threads(), "cpu": cpu, "batch": a.batch,
        "tokens_per_text": tokens / len(texts), "texts": len(texts), "truncated": truncated,
        "seconds": secs, "chunks_per_s_per_core": len(texts) / secs,
        "cpu_seconds": cpu_s, "chunks_per_cpu_s": len(texts) / cpu_s if cpu_s > 0 else 0,
        "tokenization_included": True, "tokenize_seconds": tok_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if a.check:
        with open(a.check) as f:
            ref = json.load(f)["vectors"]
        got = torch.empty(len(ref), m.H)
        embed(m, net, texts[:len(ref)], a.batch, got)
        res["check_texts"] = len(ref)
        res["check_max_abs_diff"] = float((got - torch.tensor(ref)).abs().max())
    print(json.dumps(res))


if __name__ == "__main__":
    main()
