#!/usr/bin/env python3
"""Write tests/ops/fixtures/quant_rows.bin: random rows of every weight type and their values as
decoded by an independent implementation, the `gguf` Python package (gguf-py, from llama.cpp).

Format (little-endian), repeated per type:
  u32 loom_type, u32 n_rows, u32 n_cols, u32 n_bytes, n_bytes of rows, n_rows*n_cols f32 values.
Run: python3 tests/ops/make_quant_fixture.py  (needs numpy and gguf)
"""
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

ROWS, COLS = 3, 512
rng = np.random.default_rng(20240611)


def half_bits(values):
    return np.asarray(values, dtype=np.float16).view(np.uint16)


def random_blocks(block_bytes, scale_offsets, n_blocks, scale_range):
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in scale_offsets:
        vals = rng.uniform(scale_range[0], scale_range[1], size=n_blocks)
        bits = half_bits(vals)
        raw[:, off] = (bits & 0xFF).astype(np.uint8)
        raw[:, off + 1] = (bits >> 8).astype(np.uint8)
    return raw


cases = []
# loom type id, gguf type, raw bytes of ROWS x COLS
f = rng.normal(0, 1, size=(ROWS, COLS)).astype(np.float32)
cases.append((1, T.F16, f.astype(np.float16).view(np.uint8).reshape(ROWS, -1)))
bf = (f.view(np.uint32) >> 16).astype(np.uint16)
cases.append((2, T.BF16, bf.view(np.uint8).reshape(ROWS, -1)))
nb32 = ROWS * COLS // 32
nb256 = ROWS * COLS // 256
cases.append((3, T.Q8_0, random_blocks(34, [0], nb32, (-0.05, 0.05))))
cases.append((4, T.Q4_0, random_blocks(18, [0], nb32, (-0.1, 0.1))))
cases.append((5, T.Q4_1, random_blocks(20, [0, 2], nb32, (-0.1, 0.1))))
cases.append((6, T.Q4_K, random_blocks(144, [0, 2], nb256, (0.0, 0.01))))
cases.append((7, T.Q6_K, random_blocks(210, [208], nb256, (-0.01, 0.01))))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "quant_rows.bin")
with open(out, "wb") as fh:
    for loom_type, gtype, raw in cases:
        raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(ROWS, -1)
        vals = quants.dequantize(raw, gtype).astype(np.float32).reshape(ROWS, COLS)
        assert np.all(np.isfinite(vals))
        fh.write(struct.pack("<4I", loom_type, ROWS, COLS, raw.size))
        fh.write(raw.tobytes())
        fh.write(vals.tobytes())
print("wrote", out, os.path.getsize(out), "bytes")
