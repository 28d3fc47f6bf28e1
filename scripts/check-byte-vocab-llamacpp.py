#!/usr/bin/env python3
# Manual check (needs the llama_cpp and gguf Python packages; not part of the tests):
#   scripts/check-byte-vocab-llamacpp.py MODEL.gguf    (written by `loom convert --tokenizer bytes`)
# Does llama.cpp's tokenizer read Loom's byte vocabulary the same way? llama.cpp needs an
# architecture it knows, so the tokenizer keys of the converted file are copied into a tiny
# "gpt2" GGUF (vocab_only load), written by hand (gguf-py refuses the empty merges array).
import os, sys, struct, random, tempfile, gguf, llama_cpp
VOCAB = os.path.join(tempfile.mkdtemp(), "vocab.gguf")
src = gguf.GGUFReader(sys.argv[1]); f = src.fields
toks = [bytes(f["tokenizer.ggml.tokens"].parts[i]) for i in f["tokenizer.ggml.tokens"].data]
types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
assert "tokenizer.ggml.merges" in f and len(f["tokenizer.ggml.merges"].data) == 0
def s(b): return struct.pack("<Q", len(b)) + b
kv = []
def add(k, t, payload): kv.append(s(k.encode()) + struct.pack("<I", t) + payload)
add("general.architecture", 8, s(b"gpt2"))
for k in ("context_length", "embedding_length", "feed_forward_length", "block_count", "attention.head_count"):
    add("gpt2." + k, 4, struct.pack("<I", 64 if k != "attention.head_count" else 4))
add("gpt2.attention.layer_norm_epsilon", 6, struct.pack("<f", 1e-5))
add("tokenizer.ggml.model", 8, s(b"gpt2")); add("tokenizer.ggml.pre", 8, s(b"default"))
add("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(toks)) + b"".join(s(t) for t in toks))
add("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(types)) + b"".join(struct.pack("<i", t) for t in types))
add("tokenizer.ggml.merges", 9, struct.pack("<IQ", 8, 0))
add("tokenizer.ggml.add_bos_token", 7, b"\0"); add("tokenizer.ggml.add_eos_token", 7, b"\0")
open(VOCAB, "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))
m = llama_cpp.Llama(VOCAB, vocab_only=True, verbose=False)
print("bos", m.token_bos(), "eos", m.token_eos(), "n_vocab", m.n_vocab())
texts = ["Once upon a time", "héllo wörld ÿ €100 — 日本語 🙂", "".join(chr(c) for c in range(1, 128))]
rng = random.Random(1)
for _ in range(500):
    texts.append("".join(chr(rng.choice([rng.randrange(1, 128), rng.randrange(128, 0x800), rng.randrange(0x800, 0xd800), rng.randrange(0x10000, 0x10ffff)])) for _ in range(rng.randrange(1, 40))))
bad = 0
for t in texts:
    b = t.encode()
    for special in (False, True):
        ids = m.tokenize(b, add_bos=True, special=special)
        if ids != list(b): bad += 1; print("MISMATCH", repr(t), ids[:10], list(b)[:10])
    if m.detokenize(list(b)) != b: bad += 1; print("DETOK MISMATCH", repr(t))
print("all 256 ids detokenize to their byte:", all(m.detokenize([i]) == bytes([i]) for i in range(256)))
inv = bytes([0xff, 0x80, 0x41, 0xc3])
print("invalid utf-8", list(inv), "->", m.tokenize(inv, add_bos=False, special=False))
print("texts", len(texts), "mismatches", bad)
