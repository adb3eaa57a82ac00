#!/usr/bin/env python3
"""bert_ref.py -- an independent reference for ragmap's BERT sentence encoder.

Python standard library plus PyTorch (Debian's python3-torch) only: no
transformers, no tokenizers. The tokenizer, the safetensors reader and writer
and the forward pass are written here from the rules below, so a C
implementation can be checked against them.

Subcommands
  make DIR --shape tiny|minilm|bge [--seed N] [--dtype f32|f16|bf16]
           [--pooling mean|cls] [--lower 0|1] [--max-seq N]
           [--std X] [--prefix bert.] [--break shape|missing]
      Write a Hugging Face / sentence-transformers model directory with
      random weights of real shapes: config.json, model.safetensors,
      vocab.txt, tokenizer_config.json, modules.json, 1_Pooling/config.json,
      sentence_bert_config.json.
        tiny    vocab 8000, hidden 32, 2 layers, 4 heads, intermediate 64,
                max_position 64, max_seq_length 128 (so the limit is 64)
        minilm  all-MiniLM-L6-v2: vocab 30522, hidden 384, 6 layers,
                12 heads, intermediate 1536, max_position 512, mean pooling,
                max_seq_length 256
        bge     BGE-small-en: as minilm with 12 layers, CLS pooling,
                max_seq_length 512
      Weights ~ N(0, 0.02) (PyTorch Linear layout [out, in]; --std X sets
      the Linear layers' std: larger values give sharp attention and GELU
      inputs of order 1, which tell an erf GELU from the tanh one), biases
      ~ N(0, 0.02), LayerNorm weights 1 + N(0, 0.05), LayerNorm biases
      ~ N(0, 0.02); torch.manual_seed(seed). model.safetensors is written by
      this file: 8-byte little-endian header length, JSON header (dtype,
      shape, data_offsets relative to the data section; padded with spaces to
      a multiple of 8), then the data; it holds the I64 tensor
      "embeddings.position_ids" [1, max_pos] and the (unused) pooler as real
      checkpoints do. Names carry no "bert." prefix unless --prefix bert.
      is given (then unused "cls.predictions.*" tensors are added too).
      --break shape: "encoder.layer.1.attention.self.key.weight" is stored
      as [hidden, hidden - 4] (a valid file with a wrong tensor);
      --break missing: "encoder.layer.1.output.LayerNorm.bias" is left out.
      The vocab is synthetic (the same for every seed; its size is the
      shape's): [PAD]=0, [unused0..98], [UNK]=100, [CLS]=101, [SEP]=102,
      [MASK]=103, more [unused], single characters (ASCII, Latin-1, Greek,
      Cyrillic, some CJK, kana, Hangul jamo and a few syllables,
      punctuation) with "##" forms (some characters deliberately without
      one), English words and pieces, then generated filler pieces.
  embed DIR --input FILE [--float32] [--out OUT.json]
      FILE is a JSON array of strings. Prints (or writes to OUT.json)
      {"model": NAME, "dims": D, "vectors": [[...], ...]} as
      `ragmap embed --json` does (NAME: the directory's base name), one
      L2-normalised vector per text, computed in float64 (or float32).
  tokens DIR --input FILE [--pieces]
      Prints the ids (or the piece strings) of every text, one JSON array a
      line.
  texts OUT.json
      Writes the test texts (a JSON array; some escaped as \\uXXXX, some as
      raw UTF-8).
  selftest
      Hand-checked tokenizer cases against a generated vocab.
  batch FILE
      Runs the subcommands FILE lists, one a line (shell-quoted arguments,
      "#" comments), in this one process: PyTorch is imported once.

Reading a model directory (what the C side must do the same way)
  config.json: vocab_size, hidden_size, num_hidden_layers,
    num_attention_heads, intermediate_size, max_position_embeddings,
    type_vocab_size, layer_norm_eps; hidden_act must be "gelu".
  tokenizer_config.json: do_lower_case (default true; the file may be absent).
  1_Pooling/config.json: pooling_mode_cls_token true -> CLS, else
    pooling_mode_mean_tokens true -> mean; absent file -> mean; any other
    mode alone -> error.
  sentence_bert_config.json: max_seq_length (absent -> max_position);
    max_len = min(max_seq_length, max_position_embeddings). Its
    do_lower_case is not read, nor is tokenizer_config's model_max_length.
  model.safetensors: the tensors of expected_shapes() (a "bert." prefix is
    dropped), each with exactly that shape; F32, F16 and BF16 are read,
    other dtypes (the I64 position_ids) skipped; extra tensors ignored.
  vocab.txt: one token a line, id = line number, a trailing "\\r" is
    stripped; on duplicates the last id wins (as Hugging Face's load_vocab).

Tokenizer: Hugging Face's slow BertTokenizer (tokenize_chinese_chars on,
strip_accents unset) as encode() runs it: PreTrainedTokenizer.tokenize, then
BasicTokenizer and WordpieceTokenizer. Unicode properties come from Python's
unicodedata (14.0 in Debian 12's Python 3.11); the test texts use no code
point assigned later (that would be Cn, so dropped, here).
  0. Special tokens written in the text ([CLS] [SEP] [UNK] [PAD] [MASK],
     exact case, those the vocab has) are cut out first and are their own
     pieces; the text between them is tokenized piece by piece (so
     "x[MASK]y" is "x", "[MASK]", "y").
  1. With do_lower_case, every other code point is lower-cased on its own
     (Python's str.lower of one character: full case mapping, so U+0130 ->
     "i" U+0307, and no final sigma: capital sigma is always U+03C3).
  2. Cleaning, per code point: NUL, U+FFFD and every code point whose
     unicodedata.category starts with "C" (Cc Cf Cs Co Cn) are dropped,
     except \t \n \r which are whitespace; whitespace (space, \t, \n,
     \r, category Zs) becomes a separator. So \x0b \x0c \x1c-\x1f \x85,
     U+200B, U+200D, U+FEFF, U+00AD are dropped (the words around them
     join), U+00A0 and U+3000 separate.
  3. CJK ideographs (0x4E00-0x9FFF, 0x3400-0x4DBF, 0x20000-0x2A6DF,
     0x2A700-0x2B73F, 0x2B740-0x2B81F, 0x2B820-0x2CEAF, 0xF900-0xFAFF,
     0x2F800-0x2FA1F) get separators around them; kana and Hangul do not.
  4. NFC over the whole (cleaned) text, then the split at separators. Like
     Python's str.split(), U+2028 and U+2029 (categories Zl, Zp, neither C*
     nor Zs) separate too.
  5. A word that is exactly a special token is kept whole (never_split:
     "[CL" U+200B "S]" in a cased model is [CLS]). Otherwise, with
     do_lower_case: str.lower(), NFD, every category Mn code point dropped
     (Hangul syllables decompose into conjoining jamo, which stay; U+F900-
     U+FAFF compatibility ideographs become unified ones); then punctuation
     (ASCII 33-47, 58-64, 91-96, 123-126 or category P*) splits: each
     punctuation code point is a word of its own.
  6. WordPiece per word: more than 100 code points -> [UNK]; otherwise
     greedy longest match from the left, pieces after the first prefixed
     "##", no backtracking; any position without a match -> the whole word
     is one [UNK].
  7. The sequence: [CLS] + pieces[:max_len - 2] + [SEP] (a cut may fall
     inside a word); token type 0 everywhere.
  Consequences worth knowing: kana lose their voicing marks when lowered
  (が -> か), "≠" becomes "=" (NFD gives "=" U+0338), "Å" U+212B and "K"
  U+212A become "a" and "k"; in a cased model NFC still composes ("cafe"
  U+0301 is "café", conjoining jamo become a Hangul syllable, U+F900 is
  U+8C48) but marks stay.

Network (post-LN BERT, one sequence at a time, no padding)
  x = LN(word[ids] + position[0..n) + token_type[0]);
  per layer: q, k, v = F.linear(x, W, b); per head softmax(q k^T / sqrt(d)) v;
  x = LN(x + F.linear(ctx, Wo, bo));
  x = LN(x + F.linear(gelu_erf(F.linear(x, Wi, bi)), Wo2, bo2));
  pooling: mean over all rows ([CLS] and [SEP] included) or row 0 (the tanh
  pooler is not used); then L2-normalised. F16 and BF16 weights are widened
  exactly; the computation is float64 unless --float32.
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import unicodedata

MAX_WORD_CHARS = 100

SHAPES = {
    "tiny": dict(vocab_size=8000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=64, max_seq_length=128,
                 pooling="mean"),
    "minilm": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                   intermediate_size=1536, max_position_embeddings=512, max_seq_length=256,
                   pooling="mean"),
    "bge": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=1536, max_position_embeddings=512, max_seq_length=512,
                pooling="cls"),
}

# ----------------------------------------------------------------- vocab

WORDS = """
the of and to a in is was he for it with as his on be at by i this had not are but from or
have an they which one you were her all she there would their we him been has when who will
more no if out so said what up its about into than them can only other new some could time
these two may then do first any my now such like our over man me even most made after also
did many before must through back years where much your way well down should because each
just those people mr how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great
old year off come since against go came right used take three states himself few house use
during without again place american around however home small found mrs thought went say
part once general high upon school every don does got united left number course war until
always away something fact though water less public put think almost hand enough far took
head yet government system better set told nothing night end why called didn eyes find going
look asked later knew point next city give group toward young let room president side social
given present several order national possible rather second face per among form important
often things looked early white case john become large big need four within felt along children
saw best church ever least power development light thing seemed family interest want members
quick brown fox jumps over lazy dog hello world search language model models retrieval
augmented generation text texts token tokens vector vectors embedding embeddings query
queries index document documents answer answers data database cloud storage bucket object
cafe naive resume facade cooperate angstrom strasse uber bjork noel ete deja est qui que
hola price temperature zero width space inside tabs newlines line separator paragraph
feed family flags emoji code return main void int null true false http https www com org
example path user email url numbers number code python rust java
un re pre dis non over under anti de in im il ir mis
una ##ffa ##ble able ##able ##ible
##s ##es ##ed ##ing ##er ##ers ##est ##ly ##tion ##tions ##sion ##ness ##ment ##ments
##al ##ic ##ical ##ize ##ized ##ization ##ous ##ive ##ity ##ful ##less ##ism ##ist ##ists
##y ##e ##a ##o ##i ##u ##an ##en ##on ##in ##at ##it ##or ##ar ##le ##el ##re ##ry
##ation ##ations ##ance ##ence ##ant ##ent ##ship ##hood ##ward ##wards ##like ##ish
##ai ##ia ##io ##um ##us ##is ##as ##os ##ow ##ew ##ey ##ay ##oy ##ck ##ch ##sh ##th ##ph
##ng ##nt ##nd ##st ##ss ##ll ##tt ##pp ##rr ##mm ##nn ##ff ##gg ##dd ##bb ##zz
##believ ##happi ##think ##process ##token ##iz ##gment ##mented ##trieval
tok ##eni ##zation
2024 2023 100 10 20 1000 12 24 99 3 ##00 ##000 ##0 ##5 ##th ##st ##nd ##rd
The A An In On It He She We They This That I You What Why How When Where Who
Hello World Paris London Tokyo Berlin New York United Nations General Assembly NASA
McDonald iPhone eBay Reilly GmbH Straße Øresund Łódź Björk Ælfred Noël
##Donald ##Phone ##Bay ##A ##S ##E ##T ##R ##N ##ONE ##OW ##ER
""".split()

ENGLISH_PLAIN = [w for w in WORDS if "##" not in w[2:]]


def _chars(ranges):
    out = []
    for lo, hi in ranges:
        out.extend(chr(c) for c in range(lo, hi + 1))
    return out


def build_vocab(size):
    """The synthetic vocab: a list of `size` distinct tokens."""
    toks = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    n_unused = 994 if size >= 20000 else 100
    toks += ["[unused%d]" % i for i in range(99, n_unused)]
    seen = set(toks)

    def add(t):
        if t and t not in seen and not any(c.isspace() for c in t):
            seen.add(t)
            toks.append(t)

    # characters that get a "##" form as well
    both = []
    both += [chr(c) for c in range(33, 127)]                      # ASCII
    both += _chars([(0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0xFF)])    # Latin-1 letters
    both += list("łŁœŒıİǆǅ")
    both += _chars([(0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9)])  # Greek (with ς)
    both += _chars([(0x410, 0x44F)])                              # Cyrillic
    both += _chars([(0x3041, 0x3096), (0x30A1, 0x30FA), (0x30FC, 0x30FC)])  # kana, ー
    both += _chars([(0x1100, 0x1112), (0x1161, 0x1175), (0x11A8, 0x11C2)])  # conjoining jamo
    both += list("안녕하세요한국어텍스트세계")                         # a few Hangul syllables
    both += list("°±²³µ·¼½¾×÷¶§¿¡«»‘’“”–—…•′″")                  # symbols and punctuation
    both += list("ａｂｃＡＢＣ１２３")                               # a few fullwidth forms
    # characters with no "##" form: inside a word they make it [UNK]
    alone = list("€→™©®←↑↓√∞≈≠≤≥∑∫、。「」『』（）！？：；，・《》〈〉【】")
    # CJK: a block of the unified ideographs plus the ones the texts use;
    # U+8C48 (the NFD of U+F900) is in, U+F900 itself is not
    cjk = _chars([(0x4E00, 0x4FFF)]) + list(
        "我爱自然语言处理中文本没有空格東京日本首都漢字混文世界模型北学生汉字豈")
    for c in both:
        add(c)
    for c in alone:
        add(c)
    for c in cjk:
        add(c)
    for w in WORDS:
        add(w)
    for c in both:
        add("##" + c)
    for c in cjk[:64]:
        add("##" + c)
    add("です")
    add("##ます")
    add("##です")
    if len(toks) > size:
        raise SystemExit("bert_ref: vocab of %d cannot hold the %d base tokens" % (size, len(toks)))
    # filler: pronounceable pieces, half of them "##" pieces, fixed seed so
    # the vocab is the same for every model of a size
    rng = random.Random(20240611)
    cons = "bcdfghjklmnprstvwxz"
    vows = "aeiouy"
    filler = []
    while len(toks) + len(filler) < size:
        n = rng.choice((1, 1, 2, 2, 2, 3, 3, 4))
        s = "".join(rng.choice(cons) + rng.choice(vows) + (rng.choice(cons) if rng.random() < 0.4 else "")
                    for _ in range(n))
        if rng.random() < 0.3:
            s = s[1:]
        if rng.random() < 0.5:
            s = "##" + s
        if s and s not in seen:
            seen.add(s)
            filler.append(s)
    # the filler is interleaved with the words so ids spread over the matrix
    rng.shuffle(filler)
    head = toks[:104 + n_unused - 99]
    rest = toks[len(head):]
    merged = []
    step = max(1, len(filler) // max(1, len(rest)))
    fi = 0
    for t in rest:
        merged.append(t)
        merged.extend(filler[fi:fi + step])
        fi += step
    merged.extend(filler[fi:])
    out = head + merged
    assert len(out) == size and len(set(out)) == size
    return out


def load_vocab(path):
    vocab = {}
    with open(path, "rb") as f:
        data = f.read().decode("utf-8")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        vocab[line] = i
    for t in ("[CLS]", "[SEP]", "[UNK]", "[PAD]"):
        if t not in vocab:
            raise SystemExit("bert_ref: %s: no %s" % (path, t))
    return vocab


# ------------------------------------------------------------- tokenizer

CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokenize(text, lower, never_split=()):
    """The words of text (a piece of the text between special tokens)."""
    if lower:
        # Hugging Face lowers the text one character at a time before the
        # basic tokenizer (so no final sigma)
        text = "".join(c.lower() for c in text)
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        if is_whitespace(ch):
            out.append(" ")
        elif is_cjk(cp):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFC", "".join(out))
    words = []
    # str.split(): the separators above plus U+2028 and U+2029 (the only
    # other code points str.isspace() accepts that cleaning kept)
    for tok in text.split():
        if tok in never_split:
            words.append(tok)
            continue
        if lower:
            tok = tok.lower()
            tok = "".join(c for c in unicodedata.normalize("NFD", tok)
                          if unicodedata.category(c) != "Mn")
        cur = []
        for ch in tok:
            if is_punct(ch):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
    return words


def wordpiece(word, vocab):
    if len(word) > MAX_WORD_CHARS:
        return ["[UNK]"]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


SPECIALS = ("[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]")


def split_specials(text, specials):
    """text cut at every special token written in it: [(chunk, is_special)]."""
    out = []
    start = i = 0
    while True:
        i = text.find("[", i)
        if i < 0:
            break
        hit = next((sp for sp in specials if text.startswith(sp, i)), None)
        if hit is None:
            i += 1
            continue
        if i > start:
            out.append((text[start:i], False))
        out.append((hit, True))
        i = start = i + len(hit)
    if start < len(text):
        out.append((text[start:], False))
    return out


def tokenize(text, vocab, lower, max_len):
    specials = tuple(sp for sp in SPECIALS if sp in vocab)
    pieces = []
    for chunk, special in split_specials(text, specials):
        if special:
            pieces.append(chunk)
            continue
        for w in basic_tokenize(chunk, lower, specials):
            pieces.extend(wordpiece(w, vocab))
    pieces = ["[CLS]"] + pieces[:max_len - 2] + ["[SEP]"]
    return pieces, [vocab[p] for p in pieces]


# ------------------------------------------------------------ safetensors

DTYPE_SIZE = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "U8": 1, "I8": 1}


def tensor_bytes(t, dtype):
    import torch
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.to(torch.float32).numpy().tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().tobytes()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    if dtype == "I64":
        return t.to(torch.int64).numpy().tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    # like the real writer: wider dtypes first (alignment), then by name
    order = sorted(tensors, key=lambda x: (-DTYPE_SIZE[x[1]], x[0]))
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dtype, shape, data in order:
        assert len(data) == DTYPE_SIZE[dtype] * math.prod(shape), name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, data in order:
            f.write(data)


def read_safetensors(path):
    """name -> float64 tensor (float dtypes only), as the C side must read."""
    import torch
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise SystemExit("bert_ref: %s: truncated" % path)
    (hlen,) = struct.unpack("<Q", buf[:8])
    if 8 + hlen > len(buf):
        raise SystemExit("bert_ref: %s: truncated header" % path)
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = meta["dtype"], meta["shape"], meta["data_offsets"]
        n = math.prod(shape)
        if base + e > len(buf) or e - b != n * DTYPE_SIZE.get(dt, 0):
            raise SystemExit("bert_ref: %s: tensor %s: bad data_offsets" % (path, name))
        raw = bytearray(buf[base + b:base + e])
        if dt == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32) if n else torch.zeros(0)
        elif dt == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).to(torch.float32) if n else torch.zeros(0)
        elif dt == "BF16":
            i16 = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) if n else torch.zeros(0, dtype=torch.int32)
            t = ((i16 & 0xFFFF) << 16).view(torch.float32)
        else:
            continue
        out[name] = t.to(torch.float64).reshape(shape)
    return out


# ------------------------------------------------------------------ make

def layer_names(i):
    p = "encoder.layer.%d." % i
    return dict(q=p + "attention.self.query", k=p + "attention.self.key", v=p + "attention.self.value",
                o=p + "attention.output.dense", ln1=p + "attention.output.LayerNorm",
                i=p + "intermediate.dense", o2=p + "output.dense", ln2=p + "output.LayerNorm")


def cmd_make(a):
    import torch
    shp = dict(SHAPES[a.shape])
    pooling = a.pooling or shp.pop("pooling")
    shp.pop("pooling", None)
    max_seq = a.max_seq if a.max_seq is not None else shp.pop("max_seq_length")
    shp.pop("max_seq_length", None)
    V, H, L = shp["vocab_size"], shp["hidden_size"], shp["num_hidden_layers"]
    I, P = shp["intermediate_size"], shp["max_position_embeddings"]
    os.makedirs(os.path.join(a.dir, "1_Pooling"), exist_ok=True)
    torch.manual_seed(a.seed)
    dtype = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[a.dtype]
    tensors = []

    def normal(*shape, std=0.02):
        return torch.randn(*shape, dtype=torch.float32) * std

    def put(name, t):
        tensors.append((a.prefix + name, dtype, list(t.shape), tensor_bytes(t, dtype)))

    def linear(name, n_out, n_in):
        w = normal(n_out, n_in, std=a.std)
        b = normal(n_out)
        if a.brk == "shape" and name == "encoder.layer.1.attention.self.key":
            w = w[:, :n_in - 4]
        put(name + ".weight", w)
        put(name + ".bias", b)

    def layernorm(name, n):
        w = 1 + normal(n, std=0.05)
        b = normal(n)
        put(name + ".weight", w)
        if not (a.brk == "missing" and name == "encoder.layer.1.output.LayerNorm"):
            put(name + ".bias", b)

    put("embeddings.word_embeddings.weight", normal(V, H))
    put("embeddings.position_embeddings.weight", normal(P, H))
    put("embeddings.token_type_embeddings.weight", normal(2, H))
    layernorm("embeddings.LayerNorm", H)
    pos_ids = torch.arange(P, dtype=torch.int64).reshape(1, P)
    tensors.append((a.prefix + "embeddings.position_ids", "I64", [1, P], tensor_bytes(pos_ids, "I64")))
    for i in range(L):
        n = layer_names(i)
        linear(n["q"], H, H)
        linear(n["k"], H, H)
        linear(n["v"], H, H)
        linear(n["o"], H, H)
        layernorm(n["ln1"], H)
        linear(n["i"], I, H)
        linear(n["o2"], H, I)
        layernorm(n["ln2"], H)
    linear("pooler.dense", H, H)
    if a.prefix:
        # a BertForPreTraining-style checkpoint: heads the encoder ignores
        tensors.append(("cls.predictions.bias", dtype, [V], tensor_bytes(normal(V), dtype)))
        tensors.append(("cls.predictions.transform.dense.weight", dtype, [H, H],
                        tensor_bytes(normal(H, H), dtype)))
    write_safetensors(os.path.join(a.dir, "model.safetensors"), tensors)

    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "type_vocab_size": 2,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "transformers_version": "4.39.3", "use_cache": True,
    }
    config.update(shp)
    files = {
        "config.json": config,
        "tokenizer_config.json": {"do_lower_case": bool(a.lower), "tokenize_chinese_chars": True,
                                  "strip_accents": None, "model_max_length": max_seq,
                                  "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
                                  "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                  "mask_token": "[MASK]"},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": H, "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False},
        "sentence_bert_config.json": {"max_seq_length": max_seq, "do_lower_case": False},
    }
    for name, obj in files.items():
        with open(os.path.join(a.dir, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    with open(os.path.join(a.dir, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        for t in build_vocab(V):
            f.write(t + "\n")


# ------------------------------------------------------------- the model

def expected_shapes(c):
    V, H, I = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    out = {"embeddings.word_embeddings.weight": [V, H],
           "embeddings.position_embeddings.weight": [c["max_position_embeddings"], H],
           "embeddings.token_type_embeddings.weight": [c.get("type_vocab_size", 2), H],
           "embeddings.LayerNorm.weight": [H], "embeddings.LayerNorm.bias": [H]}
    for i in range(c["num_hidden_layers"]):
        n = layer_names(i)
        for k, (o, j) in dict(q=(H, H), k=(H, H), v=(H, H), o=(H, H), i=(I, H), o2=(H, I)).items():
            out[n[k] + ".weight"] = [o, j]
            out[n[k] + ".bias"] = [o]
        for k in ("ln1", "ln2"):
            out[n[k] + ".weight"] = [H]
            out[n[k] + ".bias"] = [H]
    return out


class Model:
    def __init__(self, d, float32=False):
        import torch
        self.name = os.path.basename(os.path.normpath(d))
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        if c.get("hidden_act", "gelu") != "gelu":
            raise SystemExit("bert_ref: config.json: hidden_act %r is not gelu" % c.get("hidden_act"))
        self.H, self.L = c["hidden_size"], c["num_hidden_layers"]
        self.heads, self.P = c["num_attention_heads"], c["max_position_embeddings"]
        self.eps = c.get("layer_norm_eps", 1e-12)
        self.lower = True
        tc = os.path.join(d, "tokenizer_config.json")
        if os.path.exists(tc):
            with open(tc) as f:
                self.lower = bool(json.load(f).get("do_lower_case", True))
        self.cls = False
        pc = os.path.join(d, "1_Pooling", "config.json")
        if os.path.exists(pc):
            with open(pc) as f:
                p = json.load(f)
            if p.get("pooling_mode_cls_token"):
                self.cls = True
            elif not p.get("pooling_mode_mean_tokens"):
                raise SystemExit("bert_ref: 1_Pooling/config.json: no cls or mean pooling")
        max_seq = self.P
        sc = os.path.join(d, "sentence_bert_config.json")
        if os.path.exists(sc):
            with open(sc) as f:
                max_seq = json.load(f).get("max_seq_length", self.P)
        self.max_len = min(max_seq, self.P)
        self.vocab = load_vocab(os.path.join(d, "vocab.txt"))
        st = read_safetensors(os.path.join(d, "model.safetensors"))
        st = {(k[5:] if k.startswith("bert.") else k): v for k, v in st.items()}
        self.dt = torch.float32 if float32 else torch.float64
        self.w = {k: v.to(self.dt) for k, v in st.items()}
        for name, shape in expected_shapes(c).items():
            if name not in self.w:
                raise SystemExit("bert_ref: model.safetensors: no tensor %r" % name)
            if list(self.w[name].shape) != shape:
                raise SystemExit("bert_ref: model.safetensors: tensor %r: shape %s, expected %s"
                                 % (name, list(self.w[name].shape), shape))
        if max(self.vocab.values()) >= c["vocab_size"]:
            raise SystemExit("bert_ref: vocab.txt: more tokens than vocab_size")

    def tokenize(self, text):
        return tokenize(text, self.vocab, self.lower, self.max_len)

    def encode(self, ids):
        import torch
        import torch.nn.functional as F
        w = self.w
        H, nh = self.H, self.heads
        d = H // nh
        n = len(ids)

        def ln(x, name):
            return F.layer_norm(x, (H,), w[name + ".weight"], w[name + ".bias"], self.eps)

        def lin(x, name):
            return F.linear(x, w[name + ".weight"], w[name + ".bias"])

        idx = torch.tensor(ids, dtype=torch.long)
        x = (w["embeddings.word_embeddings.weight"][idx]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = ln(x, "embeddings.LayerNorm")
        for i in range(self.L):
            nm = layer_names(i)
            q = lin(x, nm["q"]).view(n, nh, d).transpose(0, 1)
            k = lin(x, nm["k"]).view(n, nh, d).transpose(0, 1)
            v = lin(x, nm["v"]).view(n, nh, d).transpose(0, 1)
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1)
            ctx = (att @ v).transpose(0, 1).reshape(n, H)
            x = ln(x + lin(ctx, nm["o"]), nm["ln1"])
            h = F.gelu(lin(x, nm["i"]))          # exact (erf) GELU
            x = ln(x + lin(h, nm["o2"]), nm["ln2"])
        v = x[0] if self.cls else x.mean(dim=0)
        return v / max(float(v.norm()), 1e-12)


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        texts = json.load(f)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SystemExit("bert_ref: %s: not a JSON array of strings" % path)
    return texts


def cmd_embed(a):
    import torch
    torch.set_grad_enabled(False)
    m = Model(a.dir, a.float32)
    texts = read_texts(a.input)
    rows = [m.encode(m.tokenize(t)[1]).tolist() for t in texts]
    out = open(a.out, "w") if a.out else sys.stdout
    out.write('{"model": %s, "dims": %d, "vectors": [' % (json.dumps(m.name), m.H))
    for i, r in enumerate(rows):
        out.write((",\n" if i else "\n") + "[" + ",".join(repr(x) for x in r) + "]")
    out.write("\n]}\n")
    if a.out:
        out.close()


def cmd_tokens(a):
    d = a.dir
    lower = True
    tc = os.path.join(d, "tokenizer_config.json")
    if os.path.exists(tc):
        with open(tc) as f:
            lower = bool(json.load(f).get("do_lower_case", True))
    with open(os.path.join(d, "config.json")) as f:
        P = json.load(f)["max_position_embeddings"]
    max_seq = P
    sc = os.path.join(d, "sentence_bert_config.json")
    if os.path.exists(sc):
        with open(sc) as f:
            max_seq = json.load(f).get("max_seq_length", P)
    vocab = load_vocab(os.path.join(d, "vocab.txt"))
    for t in read_texts(a.input):
        pieces, ids = tokenize(t, vocab, lower, min(max_seq, P))
        print(json.dumps(pieces if a.pieces else ids, ensure_ascii=False))


# ----------------------------------------------------------------- texts

def test_texts():
    rng = random.Random(7)
    eng = ENGLISH_PLAIN
    t = [
        "The quick brown fox jumps over the lazy dog.",
        "unaffable",
        "Hello, World! HELLO world hello.",
        "Retrieval-augmented generation combines search with language models.",
        "café naïve Ångström résumé façade coöperate",
        "Straße, Øresund, Łódź, smørrebrød, æsthetic, œuvre, ß, ø, ł",
        "ẞ capital sharp s and ß; Ǆ ǅ ǆ digraphs",
        "İstanbul ve ıspanak, DİYARBAKIR",
        "ΟΔΥΣΣΕΥΣ και η Ελλάδα: ΣΟΦΟΣ σοφός",
        "Москва — столица России. Ёлка!",
        "我爱自然语言处理。中文文本没有空格。",
        "東京は日本の首都です。カタカナとひらがな、漢字を混ぜた文です。",
        "한국어 텍스트: 안녕하세요, 세계! 대한민국",
        "Emoji 😀👍🏽 and 👨\u200d👩\u200d👧 family, flags 🇫🇷, hearts ❤️",
        "Price: 100€, temperature 20°C, 5 € or €5, -3.5°",
        "zero\u200bwidth\u200djoiner\ufeffBOM and soft\u00adhyphen, bell\x07rings",
        "NUL\x00inside\x00text\x00",
        "\x00",
        "tabs\tand\r\nCRLF\nnewlines\rand\t\ttwo tabs",
        "ideographic\u3000space and\u00a0nbsp and\u2003em\u2009thin\u202fnarrow",
        "line\u2028separator\u2029paragraph separators",
        "form\x0cfeed\x0bvtab\x1cfs\x1fus\x85nel\x7fdel\x9fapc",
        "",
        "   \t\n  \r\n ",
        "\u200b\u200d\ufeff\u00ad",
        "!!!???...,,,;;; ---___''' \"\"\" ((( ))) [[[ ]]] {{{ }}} @@@ ### $$$ %%% ^^^ &&& *** +++ === ~~~ ``` |||",
        "a→b ±5 ©2024 ™ ‽ ¿qué? ¡hola! «quotes» „low“ ‹single›",
        "3.14159 2,718 1e-9 0x7fff 1234567890 +44 (0)20 7946 0958 100% 1/2 ½ ¾",
        "abcdefghij" * 10,
        "abcdefghij" * 10 + "k",
        "x" * 95 + "ééééé" + " and " + "ab" * 50,
        "é" * 101,
        "cafe\u0301 re\u0301sume\u0301 n\u0303 A\u030a",
        "\u0301\u0301abc \u0308 \u20dd",
        "iPhone McDonald's NASA's eBay O'Reilly GmbH The United Nations General Assembly",
        "[CLS] [SEP] [MASK] [UNK] [PAD] [unused0] literal special tokens",
        "[CL\u200bS] [S\u00adEP] x[MASK]y a[UNK]b [[PAD]] [cls] [Sep] [MASK",
        "don't won't it's they're I'm we'll y'all",
        "https://example.com/path?q=1&x=y#frag user@example.org www.example.com",
        "int main(void) { return 0; } // C code; x->y = a[i] << 2;",
        "C'est déjà l'été à Noël, où est-ce qu'on va?",
        "Ünïcödé ÜBER naïveté Björk Ælfred ÀÉÎÕÜ àéîõü",
        "مرحبا بالعالم، هذا نصٌّ عربيٌّ",
        "สวัสดีครับ ภาษาไทย",
        "नमस्ते दुनिया",
        "שלום עולם",
        "ＡＢＣ１２３！ａｂｃ？ fullwidth",
        "ﬁnance ﬂow ﬀ ligatures",
        "Ⅻ ⅻ Roman numerals, K Kelvin Ω Ohm Å Angstrom",
        "CJK ext 𠀀𠀁 ext-C 𪜀 ext-A 㐀㐁 compat 豈更 radical ⼀⼆ kangxi",
        "ㄱㄴㄷ compatibility jamo and 각 conjoining",
        "Hello\u00adWorld soft\u00adhyphen\u00adated",
        "private\ue000use unassigned\u0378cp nonchar\uffff replacement\ufffdchar tag\U000e0041s",
        "many     spaces          between            words",
        "-" * 150,
        # kana are not split off: this is one word of more than 100 code points
        "これはとてもながいぶんしょうですがくぎりがないのでひとつのたんごになります" * 4,
        "ひらがなだけのみじかいぶん",
        "abc123def 3rd 21st COVID-19 mp3 A4 v2.0.1",
        "unbelievably unhappiness rethinking preprocessing tokenization retrieval",
        "∑ x² ≤ ∞, √2 ≈ 1.414, a ≠ b, µm",
        "ALL CAPS SENTENCE WITH SOME WORDS",
        "mIxEd CaSe WoRdS aNd ThInGs",
        "word" + "\u0301" * 120,
        "中" * 700,
    ]
    # long English texts, cut at every limit
    words = [rng.choice(eng) for _ in range(3000)]
    t.append(" ".join(words))
    t.append(". ".join(" ".join(rng.choice(eng) for _ in range(rng.randint(4, 15))).capitalize()
                       for _ in range(120)) + ".")
    # a many-piece word straddling each cut: 62 (tiny 64), 38 (max-seq 40),
    # 254 (minilm) and 510 (bge)
    long_word = "unbelievablenessfulnessingly"
    for before in (58, 35, 250, 506):
        t.append(" ".join(["the"] * before) + " " + long_word + " tail words here")
    # exactly max_len - 2 pieces (nothing cut) for the limits 64, 40, 256
    for n in (62, 38, 254):
        t.append(" ".join(["the"] * (n - 1)) + ".")
    # random mixes of everything above
    pool = [c for c in "".join(t[:60]) if c not in "\x00"]
    for _ in range(4):
        t.append("".join(rng.choice(pool) for _ in range(rng.randint(200, 900))))
    return t


def cmd_texts(a):
    texts = test_texts()
    # alternate raw UTF-8 and \\u escapes (surrogate pairs for astral code
    # points) so the reader sees both
    items = [json.dumps(s, ensure_ascii=bool(i % 2)) for i, s in enumerate(texts)]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(items) + "\n]\n")


# -------------------------------------------------------------- selftest

def cmd_selftest(a):
    vocab = {t: i for i, t in enumerate(build_vocab(30522))}
    fails = 0

    def eq(what, got, want):
        nonlocal fails
        if got != want:
            print("FAIL %s: got %r, want %r" % (what, got, want))
            fails += 1

    def pieces(text, lower=True, max_len=512):
        return tokenize(text, vocab, lower, max_len)[0][1:-1]

    eq("unaffable", pieces("unaffable"), ["una", "##ffa", "##ble"])
    eq("café lower", basic_tokenize("Café", True), ["cafe"])
    eq("café cased", basic_tokenize("Café", False), ["Café"])
    eq("ß", basic_tokenize("Straße", True), ["straße"])
    eq("hangul lower", basic_tokenize("한국", True), ["\u1112\u1161\u11ab\u1100\u116e\u11a8"])
    eq("hangul cased", basic_tokenize("한국", False), ["한국"])
    eq("sigma", basic_tokenize("ΟΔΟΣ", True), ["οδοσ"])
    eq("dotted I", basic_tokenize("İ", True), ["i"])
    eq("kelvin", basic_tokenize("\u212a", True), ["k"])
    eq("cjk", basic_tokenize("ab中文cd", True), ["ab", "中", "文", "cd"])
    eq("compat ideograph lower", basic_tokenize("\uf900", True), ["\u8c48"])
    eq("compat ideograph cased", basic_tokenize("\uf900", False), ["\u8c48"])
    # NFD splits off the (Mn) voicing marks of kana: が -> か
    eq("kana lower", basic_tokenize("ひらがなガ", True), ["ひらかなカ"])
    eq("kana cased", basic_tokenize("ひらがなガ", False), ["ひらがなガ"])
    eq("punct", basic_tokenize("a,b--c", True), ["a", ",", "b", "-", "-", "c"])
    eq("dropped", basic_tokenize("a\u200bb\x00c\u00add\x0ce\x85f", True), ["abcdef"])
    eq("spaces", basic_tokenize("a\u3000b\u00a0c\u2028d\u2029e\tf", True), list("abcdef"))
    eq("symbols in words", basic_tokenize("a→b $5", True), ["a→b", "$", "5"])
    eq("€ no ##", pieces("5€ €"), ["[UNK]", "€"])
    eq("emoji", pieces("hi 😀"), ["hi", "[UNK]"])
    eq("100 chars", len(pieces("abcdefghij" * 10)) > 1, True)
    eq("101 chars", pieces("abcdefghij" * 10 + "k"), ["[UNK]"])
    eq("101 é lower", pieces("é" * 101), ["[UNK]"])
    eq("100 é lower", pieces("é" * 100) != ["[UNK]"], True)
    eq("special literal", pieces("[CLS] x[MASK]y [cls]"), ["[CLS]", "x", "[MASK]", "y", "[", "c", "##l", "##s", "]"])
    eq("special cased", pieces("[CL\u200bS] [SEP", False), ["[CLS]", "[", "S", "##E", "##P"])
    eq("special lowered", pieces("[CL\u200bS]"), ["[", "c", "##l", "##s", "]"])
    eq("nfc cased", basic_tokenize("cafe\u0301 \u1100\u1161\u11a8 \uf900", False), ["café", "각", "\u8c48"])
    eq("empty", tokenize("", vocab, True, 512)[0], ["[CLS]", "[SEP]"])
    eq("cut", len(tokenize("the " * 1000, vocab, True, 64)[0]), 64)
    word = pieces("abcdefghij" * 3)
    cut = tokenize("the " * 61 + "abcdefghij" * 3, vocab, True, 64)[0]
    eq("cut inside a word", (len(word) > 1, len(cut), cut[-3:]), (True, 64, ["the", word[0], "[SEP]"]))
    if fails:
        raise SystemExit("%d failed" % fails)
    print("selftest: all passed")


def cmd_batch(a):
    import shlex
    with open(a.file) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bad = 0
    for ln in lines:
        try:
            main(shlex.split(ln))
        except SystemExit as e:
            if e.code not in (None, 0):
                print("bert_ref: batch: %s: %s" % (ln, e.code), file=sys.stderr)
                bad += 1
    if bad:
        raise SystemExit("bert_ref: batch: %d of %d failed" % (bad, len(lines)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="a PyTorch reference for ragmap's BERT encoder")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make")
    p.add_argument("dir")
    p.add_argument("--shape", choices=sorted(SHAPES), required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    p.add_argument("--pooling", choices=("mean", "cls"))
    p.add_argument("--lower", type=int, choices=(0, 1), default=1)
    p.add_argument("--max-seq", type=int, dest="max_seq")
    p.add_argument("--std", type=float, default=0.02)
    p.add_argument("--prefix", default="", choices=("", "bert."))
    p.add_argument("--break", dest="brk", choices=("shape", "missing"))
    p.set_defaults(fn=cmd_make)
    p = sub.add_parser("embed")
    p.add_argument("dir")
    p.add_argument("--input", required=True)
    p.add_argument("--float32", action="store_true")
    p.add_argument("--out", help="write here instead of stdout")
    p.set_defaults(fn=cmd_embed)
    p = sub.add_parser("tokens")
    p.add_argument("dir")
    p.add_argument("--input", required=True)
    p.add_argument("--pieces", action="store_true")
    p.set_defaults(fn=cmd_tokens)
    p = sub.add_parser("texts")
    p.add_argument("out")
    p.set_defaults(fn=cmd_texts)
    p = sub.add_parser("selftest")
    p.set_defaults(fn=cmd_selftest)
    p = sub.add_parser("batch")
    p.add_argument("file")
    p.set_defaults(fn=cmd_batch)
    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
