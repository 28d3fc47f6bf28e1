#!/usr/bin/env python3
"""llama_reference.py - reference outputs of llama.cpp for Loom's model oracle tests.

Runs llama.cpp through the Python package `llama_cpp` (llama-cpp-python) on the default model
(SmolLM2-135M-Instruct Q4_1) and on its derived F32 and Q8_0 GGUF files (written by
scripts/make_model_variants.py), and writes compact fixtures to tests/model/fixtures/:

  <variant>.json        token sequences, greedy generations, perplexity per chunk, settings
  <variant>.logits.bin  for every position of every sequence: the top-K token ids and their
                        log-probabilities under llama.cpp (K = 64), so a test can compute the
                        KL divergence over the top K plus one bucket for the rest of the mass.

What is measured, exactly:

* Logits: each sequence is evaluated from an empty cache in one call (llama.cpp splits it into
  batches of n_batch = 512), logits kept for every position. Sequences: a ChatML prompt, a
  code snippet, 600 tokens of WikiText-2 (longer than 512, so two batches and a long cache),
  and 64 pseudo-random token ids (fixed seed).
* Perplexity (llama.cpp's `perplexity` tool protocol): the whole file is tokenized at once with
  add_special = true (a BOS is added only when the vocabulary says so:
  tokenizer.ggml.add_bos_token; SmolLM2's says false, so there is none). The tokens are cut
  into chunks of n_ctx = 512; chunk i is tokens [512 i, 512 (i + 1)), evaluated from an empty
  cache, its first token replaced by BOS only when the vocabulary adds BOS. Only the second
  half is scored: logits at positions 256..510 predict tokens 257..511 (255 predictions per
  chunk). PPL after k chunks = exp(sum of those negative log-likelihoods / (255 k)).
  The fixture keeps each chunk's NLL sum, so tests can stop after any number of chunks.
* Greedy generation: the prompt is evaluated, then 32 times the argmax of the last logits is
  taken and evaluated one token at a time; an end-of-generation token ends early (and is kept).

* Noise floor of llama.cpp's quantized paths (--noise-floor, after the fixtures exist): for the
  q4_1 and q8_0 files, KL(llama.cpp on the file || llama.cpp on the same weights dequantized to
  F32: f32.gguf, q8_0_f32.gguf) and top-1 agreement over the same sequences. Those F32 files hold
  exactly the quantized weights, so this is the error llama.cpp's own 8-bit activation
  quantization adds; it is stored as "llama_cpp_vs_f32" (with the name of the F32 variant).
  The q8_0_f32 variant gets logits and greedy fixtures too (no perplexity).
* Weights: every fixture records "weights_sha256", a digest of the model's tensors (names, types,
  shapes, data: scripts/model_digest.py), and f32.json also "hf_weights_sha256" of the hf/ folder
  that shares its references. test_llama_oracle refuses to compare a model whose digest differs.

usage: scripts/llama_reference.py [--variants q4_1,f32,q8_0] [--ppl-chunks N] [--threads T]
                                  [--noise-floor]
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP_K = 64
N_CTX_PPL = 512
GEN_TOKENS = 32

CHAT_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a hash table is in one sentence.",
]
PLAIN_PROMPTS = [
    "Once upon a time, in a small village by the mountains,",
    "The three primary colors are",
    "def fibonacci(n):\n",
]
CODE_TEXT = (
    "#include <stdio.h>\n\nint main(void) {\n    for (int i = 0; i < 10; i++) {\n"
    "        printf(\"%d squared is %d\\n\", i, i * i);\n    }\n    return 0;\n}\n"
)


def cache_dir():
    return os.environ.get("LOOM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "loom")


def model_paths():
    base = os.environ.get("LOOM_TEST_MODEL") or os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf")
    var = os.path.join(cache_dir(), "variants")
    return {"q4_1": base, "f32": os.path.join(var, "f32.gguf"), "q8_0": os.path.join(var, "q8_0.gguf"),
            "q8_0_f32": os.path.join(var, "q8_0_f32.gguf")}


def weights_digest(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import model_digest

    return model_digest.digest(path)


def chatml(user):
    return "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % user


def log_softmax(rows):
    rows = rows.astype(np.float64)
    m = rows.max(axis=-1, keepdims=True)
    return rows - (m + np.log(np.exp(rows - m).sum(axis=-1, keepdims=True)))


class Ref:
    def __init__(self, path, threads, n_ubatch=512):
        import llama_cpp

        self.lc = llama_cpp
        self.llm = llama_cpp.Llama(path, n_ctx=1024, n_batch=512, n_ubatch=n_ubatch, logits_all=True, verbose=False,
                                   n_threads=threads, n_threads_batch=threads, seed=0)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(self.vocab))

    def tokenize(self, text, special):
        # add_bos here is llama.cpp's add_special: BOS only when the vocabulary asks for it.
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=special))

    def logits(self, tokens):
        self.llm.reset()
        self.llm.eval(tokens)
        return np.array(self.llm.scores[: len(tokens)], dtype=np.float32)

    def is_eog(self, tok):
        return bool(self.lc.llama_vocab_is_eog(self.vocab, tok))

    def greedy(self, prompt, steps=None):
        """32 greedy tokens; with a list `steps`, each step's top-8 (ids, log-probabilities)."""
        self.llm.reset()
        self.llm.eval(prompt)
        out = []
        for _ in range(GEN_TOKENS):
            row = np.array(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float32)
            tok = int(np.argmax(row))
            if steps is not None:
                lp = log_softmax(row[None, :])[0]
                top = np.argsort(-lp, kind="stable")[:8]
                steps.append({"ids": [int(t) for t in top], "logprobs": [round(float(lp[t]), 6) for t in top]})
            out.append(tok)
            if self.is_eog(tok):
                break
            self.llm.eval([tok])
        return out

    def detok(self, tokens):
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")


def sequences(ref):
    wiki = open(os.path.join(ROOT, "..", "shared", "data", "wikitext-2", "wiki.test.raw"), encoding="utf-8").read()
    rng = np.random.default_rng(1234)
    n_vocab = ref.llm.n_vocab()
    return [
        {"name": "chat", "tokens": ref.tokenize(chatml("Tell me a fun fact about octopuses."), True)},
        {"name": "code", "tokens": ref.tokenize(CODE_TEXT, False)},
        {"name": "wiki600", "tokens": ref.tokenize(wiki[:20000], False)[:600]},
        {"name": "random64", "tokens": [int(t) for t in rng.integers(0, n_vocab, size=64)]},
    ]


def perplexity(ref, chunks, log):
    text = open(os.path.join(ROOT, "..", "shared", "data", "wikitext-2", "wiki.test.raw"), encoding="utf-8").read()
    tokens = ref.tokenize(text, False)
    n_chunk_max = len(tokens) // N_CTX_PPL
    n_chunk = n_chunk_max if chunks <= 0 else min(chunks, n_chunk_max)
    first = N_CTX_PPL // 2
    nll_chunks = []
    t0 = time.time()
    for i in range(n_chunk):
        chunk = list(tokens[i * N_CTX_PPL:(i + 1) * N_CTX_PPL])
        if ref.add_bos:
            chunk[0] = ref.bos
        lp = log_softmax(ref.logits(chunk)[first:N_CTX_PPL - 1])
        targets = tokens[i * N_CTX_PPL + first + 1:(i + 1) * N_CTX_PPL]
        nll = -float(lp[np.arange(len(targets)), targets].sum())
        nll_chunks.append(nll)
        ppl = float(np.exp(sum(nll_chunks) / ((N_CTX_PPL - 1 - first) * len(nll_chunks))))
        log("  ppl chunk %d/%d: %.4f (%.1fs)" % (i + 1, n_chunk, ppl, time.time() - t0))
    return {
        "file": "data/wikitext-2/wiki.test.raw",
        "n_ctx": N_CTX_PPL,
        "n_tokens": len(tokens),
        "add_bos": ref.add_bos,
        "first_tokens": [int(t) for t in tokens[:16]],
        "scored_per_chunk": N_CTX_PPL - 1 - first,
        "n_chunks_total": n_chunk_max,
        "nll_per_chunk": nll_chunks,
        "ppl": float(np.exp(sum(nll_chunks) / ((N_CTX_PPL - 1 - first) * len(nll_chunks)))) if nll_chunks else None,
    }


def run_variant(name, path, args, log):
    ref = Ref(path, args.threads)
    out = {
        "variant": name,
        "model": os.path.basename(path),
        "llama_cpp_version": ref.lc.__version__,
        "top_k": TOP_K,
        "add_bos": ref.add_bos,
        "bos": ref.bos,
        "n_vocab": ref.llm.n_vocab(),
        "weights_sha256": weights_digest(path),
        "sequences": [],
        "generations": [],
    }
    blob = bytearray(struct.pack("<4sIII", b"LMLG", 1, TOP_K, 0))
    n_pos = 0
    for seq in sequences(ref):
        lp = log_softmax(ref.logits(seq["tokens"]))
        top = np.argsort(-lp, axis=-1, kind="stable")[:, :TOP_K]
        for r in range(lp.shape[0]):
            blob += top[r].astype("<i4").tobytes()
            blob += lp[r, top[r]].astype("<f4").tobytes()
        out["sequences"].append({"name": seq["name"], "tokens": seq["tokens"], "first_position": n_pos})
        n_pos += lp.shape[0]
        log("  logits %s: %d tokens" % (seq["name"], len(seq["tokens"])))
    struct.pack_into("<I", blob, 12, n_pos)
    for chat, prompts in ((True, CHAT_PROMPTS), (False, PLAIN_PROMPTS)):
        for p in prompts:
            text = chatml(p) if chat else p
            toks = ref.tokenize(text, chat)
            steps = []
            gen = ref.greedy(toks, steps)
            out["generations"].append({"prompt": text, "parse_special": chat, "prompt_tokens": toks,
                                       "tokens": gen, "text": ref.detok(gen), "steps_top8": steps})
            log("  greedy %r -> %r" % (p[:30], ref.detok(gen)[:60]))
    if args.ppl_chunks != 0 or args.ppl_full:
        out["perplexity"] = perplexity(ref, 0 if args.ppl_full else args.ppl_chunks, log)
    fixtures = os.path.join(ROOT, "tests", "model", "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    hf = os.path.join(os.path.dirname(path), "hf")
    if name == "f32" and os.path.isdir(hf):
        out["hf_weights_sha256"] = weights_digest(hf)
    with open(os.path.join(fixtures, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(os.path.join(fixtures, name + ".logits.bin"), "wb") as f:
        f.write(bytes(blob))


def noise_floor(paths, args, log):
    fixtures = os.path.join(ROOT, "tests", "model", "fixtures")
    for v, same in (("q4_1", "f32"), ("q8_0", "q8_0_f32")):
        ref32 = Ref(paths[same], args.threads)
        path_json = os.path.join(fixtures, v + ".json")
        if not os.path.exists(path_json):
            continue
        with open(path_json) as f:
            fx = json.load(f)
        ref = Ref(paths[v], args.threads)
        per = []
        kl_all, agree_all = [], []
        for seq in fx["sequences"]:
            p = log_softmax(ref.logits(seq["tokens"]))
            q = log_softmax(ref32.logits(seq["tokens"]))
            kl = (np.exp(p) * (p - q)).sum(axis=-1)
            agree = (p.argmax(axis=-1) == q.argmax(axis=-1))
            per.append({"name": seq["name"], "mean_kl": float(kl.mean()), "top1": float(agree.mean())})
            kl_all.extend(kl.tolist())
            agree_all.extend(agree.tolist())
            log("  %s vs f32 %s: mean KL %.3e top-1 %.4f" % (v, seq["name"], kl.mean(), agree.mean()))
        fx["llama_cpp_vs_f32"] = {"f32_variant": same, "sequences": per, "mean_kl": float(np.mean(kl_all)),
                                  "top1": float(np.mean(agree_all))}
        with open(path_json, "w") as f:
            json.dump(fx, f, indent=1)
            f.write("\n")


def self_noise(paths, args, log):
    """llama.cpp against itself: the same file, the same sequences, evaluated in one batch (the
    fixtures) and one token at a time (n_ubatch = 1, its decoding path). On quantized files the
    two differ as much as two independent implementations can: 8-bit activation quantization
    turns last-bit differences of summation order into different rounding of whole blocks, and
    those grow layer by layer. Stored as "llama_cpp_self". (Each greedy step's top-8
    log-probabilities, with which a test tells a divergence at a near tie from an error, are
    recorded by run_variant; older fixtures get them here.)"""
    fixtures = os.path.join(ROOT, "tests", "model", "fixtures")
    for v in ("q4_1", "q8_0"):
        path_json = os.path.join(fixtures, v + ".json")
        if not os.path.exists(path_json):
            continue
        with open(path_json) as f:
            fx = json.load(f)
        ref = Ref(paths[v], args.threads)
        tok = Ref(paths[v], args.threads, n_ubatch=1)
        kl_all, agree_all, flip_margins = [], [], []
        for seq in fx["sequences"]:
            p = log_softmax(ref.logits(seq["tokens"]))
            q = log_softmax(tok.logits(seq["tokens"]))
            kl = (np.exp(p) * (p - q)).sum(axis=-1)
            a, b = p.argmax(axis=-1), q.argmax(axis=-1)
            kl_all.extend(kl.tolist())
            agree_all.extend((a == b).tolist())
            for r in np.nonzero(a != b)[0]:
                flip_margins.append(float(p[r, a[r]] - p[r, b[r]]))
            log("  %s self %s: mean KL %.3e top-1 %.4f" % (v, seq["name"], kl.mean(), (a == b).mean()))
        same = 0
        for gen in fx["generations"]:
            if "steps_top8" not in gen:  # fixtures written before run_variant recorded them
                steps = []
                if ref.greedy(gen["prompt_tokens"], steps) != gen["tokens"]:
                    sys.exit("%s: llama.cpp's greedy run is not reproducible (%r)" % (v, gen["prompt"][:30]))
                gen["steps_top8"] = steps
            same += tok.greedy(gen["prompt_tokens"]) == gen["tokens"]
        fx["llama_cpp_self"] = {
            "method": "llama.cpp on the same file: n_ubatch 512 (the fixtures) against n_ubatch 1 (token by token)",
            "mean_kl": float(np.mean(kl_all)), "top1": float(np.mean(agree_all)),
            "max_flip_margin": max(flip_margins) if flip_margins else 0.0,
            "greedy_same": same, "greedy_total": len(fx["generations"])}
        log("  %s self: %s" % (v, json.dumps(fx["llama_cpp_self"])))
        with open(path_json, "w") as f:
            json.dump(fx, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="q4_1,f32,q8_0")
    ap.add_argument("--ppl-chunks", type=int, default=32, help="perplexity chunks (0: skip)")
    ap.add_argument("--ppl-full", action="store_true", help="perplexity over the whole file")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LOOM_THREADS", "2")))
    ap.add_argument("--noise-floor", action="store_true", help="only add llama_cpp_vs_f32 to the q4_1/q8_0 fixtures")
    ap.add_argument("--self-noise", action="store_true",
                    help="only add llama_cpp_self (batch vs token-by-token) and greedy step top-8 to q4_1/q8_0")
    args = ap.parse_args()
    paths = model_paths()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.noise_floor:
        noise_floor(paths, args, log)
        return
    if args.self_noise:
        self_noise(paths, args, log)
        return

    for v in args.variants.split(","):
        if v not in paths:
            sys.exit("unknown variant %s (%s)" % (v, ", ".join(paths)))
        if not os.path.exists(paths[v]):
            sys.exit("%s not found: run scripts/get-model.sh and scripts/make_model_variants.py" % paths[v])
        log("%s: %s" % (v, paths[v]))
        run_variant(v, paths[v], args, log)


if __name__ == "__main__":
    main()
