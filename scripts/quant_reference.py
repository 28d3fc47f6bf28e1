#!/usr/bin/env python3
"""Reference quantisation / dequantisation values from llama.cpp's Python package `gguf`
(gguf.quants, a numpy port of ggml's reference routines), written to a small fixture that
tests/formats/test_quants.c compares against bit for bit.

    pip install gguf numpy
    python3 scripts/quant_reference.py tests/formats/fixtures/quant_ref.txt

Lines (hex is little-endian bytes):
    quant <type> <n> <input f32 as hex> <quantized bytes as hex>
    deq   <type> <n> <block bytes as hex> <dequantized f32 as hex>
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize


def inputs():
    rng = np.random.default_rng(1234)
    yield rng.standard_normal(256).astype(np.float32)
    yield (rng.standard_normal(256) * 1e-3).astype(np.float32)
    yield rng.uniform(-100, 100, 256).astype(np.float32)
    x = np.zeros(128, dtype=np.float32)
    x[5] = 3.0  # one spike: q4_0's signed maximum
    x[40] = -3.0
    x[64:96] = np.linspace(-1, 1, 32, dtype=np.float32)  # many exact ties for rounding
    x[96:128] = np.arange(32, dtype=np.float32) - 16  # integers
    yield x
    yield np.full(64, 0.5, dtype=np.float32)  # constant blocks (max == min)


def k_blocks(qt, block_bytes, n_blocks, seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    # keep the fp16 scales finite and moderate: exponent bits of the halves set to 0b01110 (~0.5..1)
    offsets = (0, 2) if qt == Q.Q4_K else (block_bytes - 2,)
    for o in offsets:
        raw[:, o + 1] = (raw[:, o + 1] & 0x83) | (0x0E << 2)
    return raw


def main():
    out = []
    for x in inputs():
        for qt in (Q.Q8_0, Q.Q4_0, Q.Q4_1):
            q = quantize(x.reshape(-1, 32), qt)
            out.append("quant\t%s\t%d\t%s\t%s" % (qt.name.lower(), x.size, x.tobytes().hex(), q.tobytes().hex()))
    for qt, bb in ((Q.Q4_K, 144), (Q.Q6_K, 210)):
        raw = k_blocks(qt, bb, 3, 99 + bb)
        y = dequantize(raw, qt).astype(np.float32).reshape(-1)
        out.append("deq\t%s\t%d\t%s\t%s" % (qt.name.lower(), y.size, raw.tobytes().hex(), y.tobytes().hex()))
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
