#!/usr/bin/env python3
"""Reference token ids from llama.cpp for Loom's tokenizer tests.

Runs llama.cpp's tokenizer through the Python package `llama_cpp` (llama-cpp-python, loaded
with vocab_only=True) and writes the fixtures in tests/tokenizer/fixtures/:

  tokenizer-fixtures.tar.gz, holding
    smollm2.fix       ids for the default model (SmolLM2-135M-Instruct, byte-level BPE, pre "smollm"):
                      WikiText-2 test as one string and line by line, the hard cases, every piece
    spm.fix           the same for a SentencePiece-style vocabulary built here (spm-vocab.gguf)
    spm-vocab.gguf    that vocabulary: a vocab-only GGUF with tokenizer.ggml.model = "llama"
    pre-<name>.fix    hashes of the ids (per WikiText line, and of the whole text) plus the hard
                      cases, for the SmolLM2 vocabulary run with other pre-tokenizers
    facts.json        special ids and flags llama.cpp reports for each vocabulary
    README.md         provenance (versions, checksums, how to regenerate)

llama.cpp's tokenize call is llama_tokenize(vocab, text, ..., add_special, parse_special); the
fixtures hold three combinations for the hard cases: (add_special, parse_special) = (1, 0) -
llama-cpp-python's default Llama.tokenize(text) -, (1, 1) and (0, 0). WikiText uses (1, 0).

Usage: scripts/tokenizer_reference.py [--model PATH] [--wikitext PATH] [--out DIR]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
import tempfile

import gguf
import jinja2
import jinja2.sandbox
import llama_cpp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# ---------------------------------------------------------------------------------------------
# Hard cases (bytes). Keep in sync with nothing: the test reads them from the fixture.
# Byte sequences that decode to code points above U+10FFFF are left out: llama.cpp aborts on
# them (std::invalid_argument escapes llama_tokenize); Loom's own tests cover them.
# ---------------------------------------------------------------------------------------------
HARD_CASES = [
    "", " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", " \n \n  ", "\r\n", "\r",
    "\r\n\r\n", "\v\f", "Hello", " Hello", "Hello ", "  Hello  world  ", "Hello   world", "Hello\tworld",
    "Hello\n\nworld\n", "Hello\n  world", "a\u3000b", "x\u00a0y", "\u0085", "a\u2028b", "\u200b",
    "1", "12", "123", "1234", "1234567890", " 42", "3.14159", "1,000,000", "v1.2.3", "2024-01-01", "0x1F",
    "\u0663\u0664", "\u00bd \u2155 \u2460", "!!!", "?!?!", "...", "\u2014", "a--b", "(foo) [bar] {baz}",
    "<html><body>", "$100 + 5% = ?", "#include <stdio.h>", "don't", "I'll", "we're", "they've", "I'm", "he'd",
    "DON'T", "'s", "' s", "rock 'n' roll", "caf\u00e9", "na\u00efve", "\u00dcn\u00efc\u00f6d\u00e9", "Stra\u00dfe",
    "e\u0301", "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\u6d4b\u8bd5", "\ud55c\uad6d\uc5b4", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
    "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\U0001f642", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f1eb\U0001f1f7", "\U00011f05\U00011f51", "\U00031350\U0002ebf0",
    "Hello \u4e16\u754c 123 \U0001f642 !!", "def f(x):\n    return x**2\n", "    indented\n\tTabbed",
    "a" * 300, "pneumonoultramicroscopicsilicovolcanoconiosis", "The quick brown fox jumps over the lazy dog.",
    " = Robert Boulter = \n", "<|im_start|>user\nhi<|im_end|>\n", "<|endoftext|>", "<|im_start|", "<|im_end|>x",
    " <|im_start|> ", "<|im_start|><|im_end|>", "a<|im_end|>b", "<s>", "</s>", "<s> hi</s>", "<unk>",
    "<mask> x <mask>", "<|ctrl|>y", "\u2581", "\u2581\u2581a", "<0x41>",
]
HARD_BYTES = [c.encode("utf-8") for c in HARD_CASES] + [
    b"\xff", b"\xfe\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xed\xa0\x80", b"a\xed\xbf\xbfb", b"\xc0\x80",
    b"\xc1\xbf", b"a\x80b", b"\x80\x80\x80", b"\xf0\x9f\x98", b"\xf0\x9f\x98 x", b"\x00", b"x\x00y", b"\x01\x02\x1f",
    b"caf\xe9", b"\xef\xbb\xbfBOM", b"\xf4\x8f\xbf\xbf", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80",
    b"ab\xc3", b"\xe0\x80\x80", b"\xe0\x80\xaf",
]

COMBOS = [(1, 0), (1, 1), (0, 0)]

SRC_INLINE, SRC_WIKI_WHOLE, SRC_WIKI_LINES, SRC_PIECES, SRC_PIECES_EMPTY = 0, 1, 2, 3, 4


def wiki_lines(raw):
    """WikiText split after every line feed (each line keeps its \\n)."""
    parts = raw.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def ids_hash(ids):
    """FNV-1a 64 over the ids as little-endian int32."""
    h = 0xCBF29CE484222325
    for b in np.asarray(ids, dtype="<i4").tobytes():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class FixWriter:
    """Format LTOKFIX2 (little-endian): "LTOKFIX2", u32 n_records, then records:
         u32 flags   bit 0 add_special, bit 1 parse_special, bits 8..15 source, bits 16..23 the
                     size of one element (2 or 4: token ids or lengths, 8: FNV-1a 64 hashes of ids)
         u32 aux     source 0: text length; 2: number of lines; 3: blob length; else 0
         [aux bytes] source 0: the text; 3: every piece concatenated
         u32 n, then n elements
       Sources: 0 a text and its ids (or their hash), 1 WikiText as one string, 2 WikiText line
       by line (one hash per line), 3 the piece of every token (special tokens rendered; the
       elements are the lengths), 4 the tokens whose piece is empty when special tokens are not
       rendered (every other piece is the same as in source 3)."""

    def __init__(self):
        self.records = []

    def add(self, src, add_special, parse_special, aux, text, elems, size):
        flags = (add_special & 1) | ((parse_special & 1) << 1) | (src << 8) | (size << 16)
        out = struct.pack("<II", flags, aux)
        if src in (SRC_INLINE, SRC_PIECES):
            out += text
        dtype = {2: "<u2", 4: "<i4", 8: "<u8"}[size]
        out += struct.pack("<I", len(elems)) + np.asarray(elems, dtype=dtype).tobytes()
        self.records.append(out)

    def bytes(self):
        return b"LTOKFIX2" + struct.pack("<I", len(self.records)) + b"".join(self.records)


def load(path):
    return llama_cpp.Llama(path, vocab_only=True, verbose=False)


def tokenize(llm, text, add_special, parse_special):
    return llm.tokenize(text, add_bos=bool(add_special), special=bool(parse_special))


def pieces(llm, n_vocab, special):
    vocab = llm._model.vocab
    buf = (llama_cpp.ctypes.c_char * 4096)()
    out, lens = [], []
    for i in range(n_vocab):
        n = llama_cpp.llama_token_to_piece(vocab, i, buf, len(buf), 0, special)
        assert 0 <= n <= len(buf)
        out.append(bytes(buf[:n]))
        lens.append(n)
    return b"".join(out), lens


def facts(llm):
    v = llm._model.vocab
    n = llama_cpp.llama_vocab_n_tokens(v)
    return {
        "n_vocab": n,
        "bos": llama_cpp.llama_vocab_bos(v),
        "eos": llama_cpp.llama_vocab_eos(v),
        "eot": llama_cpp.llama_vocab_eot(v),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v)),
        "eog": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(v, i)],
        "control": [i for i in range(n) if llama_cpp.llama_vocab_is_control(v, i)],
    }


# ---------------------------------------------------------------------------------------------
# Vocabularies built from the default model's
# ---------------------------------------------------------------------------------------------
def gpt2_byte_decoder():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def read_vocab(path):
    r = gguf.GGUFReader(path)
    f = r.fields
    meta = {}
    for k in f:
        if k.startswith("GGUF."):
            continue
        try:
            meta[k] = (f[k].types, f[k].contents())
        except Exception:
            pass
    return meta


def write_gguf(path, meta, overrides):
    """A vocab-only GGUF: the llama.* and general.* keys of `meta` plus the tokenizer keys."""
    w = gguf.GGUFWriter(path, "llama")
    for k, (types, val) in meta.items():
        if k == "general.architecture" or k.startswith("tokenizer.") or k in overrides:
            continue
        if not (k.startswith("llama.") or k.startswith("general.")):
            continue
        t = types[0]
        if t == gguf.GGUFValueType.ARRAY:
            w.add_array(k, val)
        elif t == gguf.GGUFValueType.STRING:
            w.add_string(k, val)
        elif t == gguf.GGUFValueType.UINT32:
            w.add_uint32(k, val)
        elif t == gguf.GGUFValueType.FLOAT32:
            w.add_float32(k, val)
        elif t == gguf.GGUFValueType.BOOL:
            w.add_bool(k, val)
    for k, (kind, val) in overrides.items():
        getattr(w, "add_" + kind)(k, val)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_spm(meta, path):
    """A SentencePiece-style vocabulary made from SmolLM2's: every normal token that decodes to
    valid UTF-8 without tabs or line breaks, spaces written as U+2581, the first 16000 of them.
    Scores follow SmolLM2's merge order (earlier = higher), but ids are in text order so that
    score order and id order differ. <unk>, <s>, </s>, 256 byte tokens, a user-defined <mask>
    and a control <|ctrl|> complete it."""
    dec = gpt2_byte_decoder()
    toks = meta["tokenizer.ggml.tokens"][1]
    types = meta["tokenizer.ggml.token_type"][1]
    pieces_, seen = [], set()
    for i, t in enumerate(toks):
        if types[i] != 1:
            continue
        try:
            s = bytes(dec[c] for c in t).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        if not s or any(c in s for c in "\t\n\r\v\f\x85\u2028\u2029"):
            continue
        s = s.replace(" ", "\u2581")
        if s in seen:
            continue
        seen.add(s)
        pieces_.append((s, -float(len(pieces_))))
        if len(pieces_) == 16000:
            break
    pieces_.sort(key=lambda p: p[0].encode("utf-8"))
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["<mask>", "<|ctrl|>"]
    scores = [0.0] * len(tokens)
    ttypes = [2, 3, 3] + [6] * 256 + [4, 3]
    for s, sc in pieces_:
        tokens.append(s)
        scores.append(sc)
        ttypes.append(1)
    write_gguf(path, meta, {
        "tokenizer.ggml.model": ("string", "llama"),
        "tokenizer.ggml.tokens": ("array", tokens),
        "tokenizer.ggml.scores": ("array", [float(x) for x in scores]),
        "tokenizer.ggml.token_type": ("array", [int(x) for x in ttypes]),
        "tokenizer.ggml.bos_token_id": ("uint32", 1),
        "tokenizer.ggml.eos_token_id": ("uint32", 2),
        "tokenizer.ggml.unknown_token_id": ("uint32", 0),
        "tokenizer.ggml.add_bos_token": ("bool", True),
        "tokenizer.ggml.add_eos_token": ("bool", False),
        "llama.vocab_size": ("uint32", len(tokens)),
    })
    return len(tokens)


def build_pre_variant(meta, path, pre):
    """SmolLM2's vocabulary with another pre-tokenizer. SmolLM2 has no token of several digits
    (its own pre-tokenizer isolates digits), so 00..99 and 000..999 are appended with their
    merges, to tell apart pre-tokenizers that group digits differently."""
    m = meta
    tokens = list(m["tokenizer.ggml.tokens"][1])
    types = [int(x) for x in m["tokenizer.ggml.token_type"][1]]
    merges = list(m["tokenizer.ggml.merges"][1])
    for a in range(10):
        for b in range(10):
            tokens.append(f"{a}{b}")
            types.append(1)
            merges.append(f"{a} {b}")
    for ab in range(100):
        for c in range(10):
            tokens.append(f"{ab:02d}{c}")
            types.append(1)
            merges.append(f"{ab:02d} {c}")
    write_gguf(path, m, {
        "tokenizer.ggml.model": ("string", "gpt2"),
        "tokenizer.ggml.pre": ("string", pre),
        "tokenizer.ggml.tokens": ("array", tokens),
        "tokenizer.ggml.token_type": ("array", types),
        "tokenizer.ggml.merges": ("array", merges),
        "tokenizer.ggml.bos_token_id": ("uint32", 1),
        "tokenizer.ggml.eos_token_id": ("uint32", 2),
        "tokenizer.ggml.add_bos_token": ("bool", False),
        "llama.vocab_size": ("uint32", len(tokens)),
    })


# ---------------------------------------------------------------------------------------------
# Chat templates, rendered by Jinja the way Hugging Face's apply_chat_template does
# (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, raise_exception).
# ---------------------------------------------------------------------------------------------
TEMPLATES = {
    # Meta's Llama-2 chat template (tokenizer_config.json of meta-llama/Llama-2-7b-chat-hf).
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    # Meta's Llama-3 instruct template (Meta-Llama-3-8B-Instruct).
    "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    # Qwen2-Instruct's ChatML with a default system message.
    "qwen2": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    # Plain ChatML.
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
}
CONVERSATIONS = [
    [("user", "Hello!")],
    [("system", "You are terse."), ("user", "What is 2+2?")],
    [("system", "  Be kind.\n"), ("user", "\n Hi there  "), ("assistant", " Hello! \n"), ("user", "Tell me a joke.")],
    [("user", "One"), ("assistant", "Two"), ("user", "Three")],
    [("user", "a"), ("user", "b")],
    [("assistant", "I start.")],
    [("user", "unicode: caf\u00e9 \u65e5\u672c \U0001f642")],
]


def chat_cases(smollm2_template):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env.globals["raise_exception"] = raise_exception
    templates = dict(TEMPLATES)
    templates["smollm2"] = smollm2_template
    cases = []
    for name, text in sorted(templates.items()):
        tmpl = env.from_string(text)
        bos, eos = ("<s>", "</s>") if name == "llama2" else ("<|begin_of_text|>", "<|eot_id|>") if name == "llama3" \
            else ("<|im_start|>", "<|im_end|>")
        for conv in CONVERSATIONS:
            for gen in (False, True):
                msgs = [{"role": r, "content": c} for r, c in conv]
                try:
                    out = tmpl.render(messages=msgs, add_generation_prompt=gen, bos_token=bos, eos_token=eos)
                except jinja2.exceptions.TemplateError:
                    out = None
                cases.append({"name": name, "template": text, "bos": bos, "eos": eos, "messages": conv,
                              "add_generation_prompt": gen, "expected": out})
    return cases


# ---------------------------------------------------------------------------------------------
def full_fixture(llm, raw, n_vocab):
    size = 2 if n_vocab <= 65536 else 4
    fw = FixWriter()
    fw.add(SRC_WIKI_WHOLE, 1, 0, 0, b"", tokenize(llm, raw, 1, 0), size)
    lines = wiki_lines(raw)
    fw.add(SRC_WIKI_LINES, 1, 0, len(lines), b"", [ids_hash(tokenize(llm, l, 1, 0)) for l in lines], 8)
    for text in HARD_BYTES:
        for a, p in COMBOS:
            fw.add(SRC_INLINE, a, p, len(text), text, tokenize(llm, text, a, p), size)
    blob, lens = pieces(llm, n_vocab, True)
    fw.add(SRC_PIECES, 0, 1, len(blob), blob, lens, 4)
    blob0, lens0 = pieces(llm, n_vocab, False)
    empty, o0, o1 = [], 0, 0
    for i in range(n_vocab):
        p1, p0 = blob[o1:o1 + lens[i]], blob0[o0:o0 + lens0[i]]
        o1 += lens[i]
        o0 += lens0[i]
        if p0 != p1:
            assert p0 == b"", (i, p0, p1)  # the compact form relies on this
            empty.append(i)
    fw.add(SRC_PIECES_EMPTY, 0, 0, 0, b"", empty, 4)
    return fw


def hash_fixture(llm, raw):
    fw = FixWriter()
    fw.add(SRC_WIKI_WHOLE, 1, 0, 0, b"", [ids_hash(tokenize(llm, raw, 1, 0))], 8)
    lines = wiki_lines(raw)
    fw.add(SRC_WIKI_LINES, 1, 0, len(lines), b"", [ids_hash(tokenize(llm, l, 1, 0)) for l in lines], 8)
    for text in HARD_BYTES:
        for a, p in COMBOS:
            fw.add(SRC_INLINE, a, p, len(text), text, [ids_hash(tokenize(llm, text, a, p))], 8)
    return fw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("LOOM_TEST_MODEL", "/work/cache/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--wikitext", default=os.path.join(ROOT, "..", "shared", "data", "wikitext-2", "wiki.test.raw"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "tokenizer", "fixtures"))
    args = ap.parse_args()
    raw = open(args.wikitext, "rb").read()
    files = {}
    fact = {}
    meta = read_vocab(args.model)

    llm = load(args.model)
    n = llama_cpp.llama_vocab_n_tokens(llm._model.vocab)
    files["smollm2.fix"] = full_fixture(llm, raw, n).bytes()
    fact["smollm2"] = facts(llm)
    del llm

    with tempfile.TemporaryDirectory() as tmp:
        spm_path = os.path.join(tmp, "spm-vocab.gguf")
        n_spm = build_spm(meta, spm_path)
        llm = load(spm_path)
        files["spm.fix"] = full_fixture(llm, raw, n_spm).bytes()
        fact["spm"] = facts(llm)
        del llm
        files["spm-vocab.gguf"] = open(spm_path, "rb").read()
        for pre in ("llama-bpe", "qwen2", "gpt-2", "default"):
            p = os.path.join(tmp, "pre.gguf")
            build_pre_variant(meta, p, pre)
            llm = load(p)
            files["pre-%s.fix" % pre] = hash_fixture(llm, raw).bytes()
            fact["pre-" + pre] = facts(llm)
            del llm

    files["facts.json"] = (json.dumps(fact, indent=1) + "\n").encode()
    files["chat.json"] = (json.dumps(chat_cases(meta["tokenizer.chat_template"][1]), indent=1) + "\n").encode()
    sha = lambda b: hashlib.sha256(b).hexdigest()
    readme = f"""# Tokenizer fixtures (generated; do not edit)

Written by scripts/tokenizer_reference.py with llama-cpp-python {llama_cpp.__version__} (llama.cpp's
tokenizer), gguf-py and Jinja2 {jinja2.__version__} (chat templates, rendered as Hugging Face
renders them).

- model: {os.path.basename(args.model)} sha256 {sha(open(args.model, 'rb').read())}
- wikitext: wiki.test.raw sha256 {sha(raw)} ({len(raw)} bytes, {len(wiki_lines(raw))} lines)
- hard cases: {len(HARD_BYTES)} texts x (add_special, parse_special) in {COMBOS}

Files (inside tokenizer-fixtures.tar.gz):
""" + "".join(f"- {k}: {len(v)} bytes, sha256 {sha(v)}\n" for k, v in sorted(files.items()))
    os.makedirs(args.out, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(files):
                ti = tarfile.TarInfo(name)
                ti.size = len(files[name])
                ti.mtime = 0
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(files[name]))
    out = os.path.join(args.out, "tokenizer-fixtures.tar.gz")
    with open(out, "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)
    print(readme)
    print(f"wrote {out}: {len(buf.getvalue())} bytes")


if __name__ == "__main__":
    sys.exit(main())
