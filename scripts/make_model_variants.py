#!/usr/bin/env python3
"""make_model_variants.py - derived versions of the default model for Loom's oracle tests.

From SmolLM2-135M-Instruct.Q4_1.gguf it writes, into ${LOOM_CACHE_DIR:-~/.cache/loom}/variants/:

  f32.gguf   every tensor dequantized to F32 by llama.cpp's own quantize tool (through the
             llama_cpp Python package, llama_model_quantize with ftype ALL_F32);
  q8_0.gguf  f32.gguf requantized to Q8_0 by the same tool (ftype MOSTLY_Q8_0);
  q8_0_f32.gguf  q8_0.gguf dequantized again to F32 (the same weights as q8_0.gguf, exactly);
  hf/        a Hugging Face folder: model.safetensors (F32, Hugging Face tensor names, the rows
             of Q and K un-permuted back to the half-split RoPE layout that llama.cpp's
             converter undoes), config.json, tokenizer.json and tokenizer_config.json.

f32.gguf and hf/ hold the same numbers, so llama.cpp's results on f32.gguf are the reference
for both loaders and both RoPE layouts. Nothing is committed: the files are rebuilt when absent.
scripts/make-variants.sh makes the same tensors with Loom's own converter (`loom convert`), without
llama.cpp or numpy; CI uses that route (docs/llama.md).

usage: scripts/make_model_variants.py [--model PATH] [--out DIR] [--force]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def cache_dir():
    return os.environ.get("LOOM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "loom")


def default_model():
    env = os.environ.get("LOOM_TEST_MODEL")
    if env:
        return env
    return os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf")


# ---------------------------------------------------------------------------------------------
# A minimal GGUF reader (metadata and F32 tensors are all this script needs)
# ---------------------------------------------------------------------------------------------
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GGUF:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        self.pos = 4
        version, n_tensors, n_kv = self._u32(), self._u64(), self._u64()
        if version not in (2, 3):
            raise ValueError("%s: GGUF version %d" % (path, version))
        self.meta = {}
        for _ in range(n_kv):
            key = self._str()
            self.meta[key] = self._value(self._u32())
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._u32()
            ne = [self._u64() for _ in range(n_dims)]
            ttype = self._u32()
            offset = self._u64()
            self.tensors[name] = (ne, ttype, offset)
        align = int(self.meta.get("general.alignment", 32))
        self.data_start = (self.pos + align - 1) // align * align

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def _u32(self):
        return self._take("<I")

    def _u64(self):
        return self._take("<Q")

    def _str(self):
        n = self._u64()
        s = self.buf[self.pos:self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._str()
        if t == 9:
            et, n = self._u32(), self._u64()
            return [self._value(et) for _ in range(n)]
        return self._take(_SCALARS[t])

    def f32(self, name):
        ne, ttype, offset = self.tensors[name]
        if ttype != 0:
            raise ValueError("%s: tensor %s is not F32 (type %d)" % (self.path, name, ttype))
        count = int(np.prod(ne))
        start = self.data_start + offset
        arr = np.frombuffer(self.buf, dtype="<f4", count=count, offset=start)
        return arr.reshape(list(reversed(ne)))  # PyTorch order: outermost first


# ---------------------------------------------------------------------------------------------
# llama.cpp conversions
# ---------------------------------------------------------------------------------------------
def quantize(src, dst, ftype):
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = int(os.environ.get("LOOM_THREADS", "2"))
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), params)
    if rc != 0:
        sys.exit("llama_model_quantize(%s -> %s) failed with %d" % (src, dst, rc))
    os.replace(dst + ".tmp", dst)


def unpermute(w, n_head):
    """Undo llama.cpp's convert_hf_to_gguf permute of Q/K rows (adjacent pairs -> half split)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt", "source": "dequantized SmolLM2-135M-Instruct.Q4_1.gguf"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def write_hf(gg, out):
    m = gg.meta
    n_layer = m["llama.block_count"]
    n_head, n_kv = m["llama.attention.head_count"], m["llama.attention.head_count_kv"]
    os.makedirs(out, exist_ok=True)
    tensors = [("model.embed_tokens.weight", gg.f32("token_embd.weight")),
               ("model.norm.weight", gg.f32("output_norm.weight"))]
    tied = "output.weight" not in gg.tensors
    if not tied:
        tensors.append(("lm_head.weight", gg.f32("output.weight")))
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    for i in range(n_layer):
        for g, h in names.items():
            w = gg.f32("blk.%d.%s.weight" % (i, g))
            if g == "attn_q":
                w = unpermute(w, n_head)
            elif g == "attn_k":
                w = unpermute(w, n_kv)
            tensors.append(("model.layers.%d.%s.weight" % (i, h), w))
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": m["llama.embedding_length"],
        "intermediate_size": m["llama.feed_forward_length"],
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": m["llama.embedding_length"] // n_head,
        "hidden_act": "silu",
        "max_position_embeddings": m["llama.context_length"],
        "rms_norm_eps": m["llama.attention.layer_norm_rms_epsilon"],
        "rope_theta": m["llama.rope.freq_base"],
        "rope_scaling": None,
        "tie_word_embeddings": tied,
        "vocab_size": len(m["tokenizer.ggml.tokens"]),
        "bos_token_id": m.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": m.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": m.get("tokenizer.ggml.padding_token_id"),
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_hf_tokenizer(gg.meta, out)


def write_hf_tokenizer(m, out):
    # The tokenizer, in Hugging Face's tokenizer.json form (byte-level BPE as SmolLM2 ships it).
    tokens, types = m["tokenizer.ggml.tokens"], m["tokenizer.ggml.token_type"]
    special = [i for i, t in enumerate(types) if t in (3, 4)]  # control, user-defined
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": types[i] == 3} for i in special],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": m["tokenizer.ggml.merges"]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    bos, eos = m.get("tokenizer.ggml.bos_token_id"), m.get("tokenizer.ggml.eos_token_id")
    tcfg = {
        "add_bos_token": bool(m.get("tokenizer.ggml.add_bos_token", False)),
        "bos_token": tokens[bos] if bos is not None else None,
        "eos_token": tokens[eos] if eos is not None else None,
        "chat_template": m.get("tokenizer.chat_template"),
        "tokenizer_class": "GPT2Tokenizer",
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--out", default=os.path.join(cache_dir(), "variants"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--tokenizer", action="store_true", help="rewrite hf/tokenizer*.json only")
    args = ap.parse_args()
    if not os.path.exists(args.model):
        sys.exit("model %s not found (scripts/get-model.sh fetches it)" % args.model)
    os.makedirs(args.out, exist_ok=True)
    f32 = os.path.join(args.out, "f32.gguf")
    q8 = os.path.join(args.out, "q8_0.gguf")
    hf = os.path.join(args.out, "hf")
    import llama_cpp

    if args.force or not os.path.exists(f32):
        print("writing", f32, file=sys.stderr)
        quantize(args.model, f32, llama_cpp.LLAMA_FTYPE_ALL_F32)
    if args.force or not os.path.exists(q8):
        print("writing", q8, file=sys.stderr)
        quantize(f32, q8, llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    q8f = os.path.join(args.out, "q8_0_f32.gguf")
    if args.force or not os.path.exists(q8f):
        print("writing", q8f, file=sys.stderr)
        quantize(q8, q8f, llama_cpp.LLAMA_FTYPE_ALL_F32)
    if args.force or not os.path.exists(os.path.join(hf, "model.safetensors")):
        print("writing", hf, file=sys.stderr)
        write_hf(GGUF(f32), hf)
    elif not os.path.exists(os.path.join(hf, "tokenizer.json")) or args.tokenizer:
        write_hf_tokenizer(GGUF(args.model).meta, hf)
    print(args.out)


if __name__ == "__main__":
    main()
