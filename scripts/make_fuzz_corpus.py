#!/usr/bin/env python3
"""Write the small seed corpus of the formats fuzz targets (tests/formats/corpus/).

GGUF seeds come from llama.cpp's own Python writer (package `gguf`), so they double as files
from an independent writer for the reader tests; the GGUF v2 seed and the safetensors seeds are
built byte by byte here. Every file stays under a few KB.

    pip install gguf numpy
    python3 scripts/make_fuzz_corpus.py tests/formats/corpus
"""
import json
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType, GGUFWriter


def rand_bytes(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=n, dtype=np.uint8)


def gguf_all_types(path, alignment=None):
    w = GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float64("t.f64", 1e-300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "h\u00e9llo")
    w.add_array("a.str", ["a", "", "ccc"])
    w.add_array("a.i32", [1, -2, 3])
    w.add_array("a.f32", [0.5, -0.25])
    w.add_array("a.nested", [[1, 2], [3]])
    # raw quantized blocks: (type, ne0, rows, bytes per block, elements per block)
    for name, qt, ne0, rows, bb, bs in [("q4_0", Q.Q4_0, 32, 2, 18, 32), ("q4_1", Q.Q4_1, 64, 1, 20, 32),
                                        ("q8_0", Q.Q8_0, 32, 1, 34, 32), ("q4_k", Q.Q4_K, 256, 1, 144, 256),
                                        ("q6_k", Q.Q6_K, 256, 1, 210, 256)]:
        n = ne0 // bs * bb * rows
        data = rand_bytes(n, len(name) + bb).reshape(rows, n // rows)
        w.add_tensor(name, data, raw_dtype=qt)  # shape given in bytes per row
    w.add_tensor("f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("f16", np.array([1.0, -2.0, 0.5], dtype=np.float16))
    w.add_tensor("bf16", rand_bytes(8, 7).reshape(1, 8), raw_dtype=Q.BF16)
    w.add_tensor("i8", np.array([-1, 2, 3], dtype=np.int8))
    w.add_tensor("i16", np.array([-1, 2], dtype=np.int16))
    w.add_tensor("i32", np.array([-1, 2], dtype=np.int32))
    w.add_tensor("i64", np.array([-1, 2], dtype=np.int64))
    w.add_tensor("f64", np.array([0.25, 2], dtype=np.float64))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_v2(path):
    """A version 2 file built by hand: one string key, one f32 tensor [4]."""
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    out = b"GGUF" + struct.pack("<IQQ", 2, 1, 1)
    out += s("general.architecture") + struct.pack("<I", GGUFValueType.STRING) + s("llama")
    out += s("w") + struct.pack("<IQ", 1, 4) + struct.pack("<IQ", 0, 0)
    out += b"\0" * ((32 - len(out) % 32) % 32)
    out += struct.pack("<4f", 1, 2, 3, 4)
    with open(path, "wb") as f:
        f.write(out)


def safetensors(path, tensors, metadata=None, pad=8):
    header, buf = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(data)]}
        buf += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((pad - len(h) % pad) % pad)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + buf)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/formats/corpus"
    g, st = os.path.join(out, "gguf"), os.path.join(out, "safetensors")
    os.makedirs(g, exist_ok=True)
    os.makedirs(st, exist_ok=True)
    gguf_all_types(os.path.join(g, "all_types.gguf"))
    gguf_all_types(os.path.join(g, "all_types_align64.gguf"), alignment=64)
    gguf_v2(os.path.join(g, "v2_minimal.gguf"))
    safetensors(os.path.join(st, "small.safetensors"), {
        "a": ("F32", [2, 3], np.arange(6, dtype=np.float32).tobytes()),
        "b": ("BF16", [4], bytes(range(8))),
        "c": ("I64", [1], struct.pack("<q", -5)),
        "d": ("BOOL", [2], b"\x01\x00"),
        "e": ("F16", [0, 3], b""),
    }, metadata={"format": "pt"})
    safetensors(os.path.join(st, "empty.safetensors"), {})
    safetensors(os.path.join(st, "u8_unpadded.safetensors"), {"x": ("U8", [3], b"abc")}, pad=1)


if __name__ == "__main__":
    main()
