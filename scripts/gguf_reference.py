#!/usr/bin/env python3
"""Dump reference facts about a GGUF file with the `gguf` Python package (llama.cpp's own reader,
an implementation independent of Loom) into a small text fixture for tests/formats.

    pip install gguf numpy
    python3 scripts/gguf_reference.py MODEL.gguf tests/formats/fixtures/smollm2_q4_1.ref

Line formats (tab-separated):
    header  <version> <n_tensors> <n_kv> <alignment> <data_offset> <file_size>
    kv      <key> <type> <value>          scalars: ints in decimal, floats %.9g, bools 0/1
    kv      <key> string <len> <fnv64>    strings: byte length and FNV-1a 64 of the bytes
    kv      <key> array <elem> <count> <summary...>
            string arrays: fnv64 of all elements each followed by a NUL, first and last as hex
            numeric arrays: sum, first, last
    tensor  <name> <type> <n_dims> <ne0..ne3> <absolute data offset> <bytes>
    deq     <name> <first element> <count> <values as %.9g ...>
    sum     <name> <n elements> <sum of all dequantized values in float64, %.17g>
"""
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv64(data: bytes, h: int = FNV_OFFSET) -> int:
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def scalar_text(t, v):
    if t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return "%.9g" % float(v) if t == GGUFValueType.FLOAT32 else "%.17g" % float(v)
    if t == GGUFValueType.BOOL:
        return "1" if bool(v) else "0"
    return str(int(v))


def main():
    path, out_path = sys.argv[1], sys.argv[2]
    r = GGUFReader(path)
    lines = []
    fields = [(k, f) for k, f in r.fields.items() if not k.startswith("GGUF.")]
    version = int(r.fields["GGUF.version"].parts[-1][0])
    import os
    lines.append("header\t%d\t%d\t%d\t%d\t%d\t%d" % (version, len(r.tensors), len(fields), r.alignment,
                                                  r.data_offset, os.path.getsize(path)))
    for key, f in fields:
        t = f.types[0]
        if t == GGUFValueType.STRING:
            b = bytes(f.parts[f.data[0]])
            lines.append("kv\t%s\tstring\t%d\t%016x" % (key, len(b), fnv64(b)))
        elif t == GGUFValueType.ARRAY:
            et = f.types[1]
            n = len(f.data)
            if et == GGUFValueType.STRING:
                h = FNV_OFFSET
                items = [bytes(f.parts[i]) for i in f.data]
                for b in items:
                    h = fnv64(b + b"\0", h)
                lines.append("kv\t%s\tarray\tstring\t%d\t%016x\t%s\t%s" % (
                    key, n, h, items[0].hex() if n else "-", items[-1].hex() if n else "-"))
            else:
                vals = [f.parts[i][0] for i in f.data]
                s = sum(int(v) for v in vals) if et not in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64) \
                    else sum(float(v) for v in vals)
                lines.append("kv\t%s\tarray\t%s\t%d\t%s\t%s\t%s" % (
                    key, TYPE_NAMES[et], n, str(s), scalar_text(et, vals[0]) if n else "-",
                    scalar_text(et, vals[-1]) if n else "-"))
        else:
            lines.append("kv\t%s\t%s\t%s" % (key, TYPE_NAMES[t], scalar_text(t, f.parts[f.data[0]][0])))
    for t in r.tensors:
        ne = [int(x) for x in t.shape] + [1] * (4 - len(t.shape))
        lines.append("tensor\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d" % (
            t.name, t.tensor_type.name.lower(), len(t.shape), *ne, int(t.data_offset), int(t.n_bytes)))
    # Dequantized samples: one tensor of every type present, at the start and deep inside.
    seen = {}
    for t in r.tensors:
        seen.setdefault(t.tensor_type, t)
    picks = list(seen.values()) + [t for t in r.tensors if t.name in ("blk.29.ffn_down.weight", "output_norm.weight")]
    for t in picks:
        vals = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        for start in (0, (len(vals) // 2) // 256 * 256 + 96):
            chunk = vals[start:start + 64]
            lines.append("deq\t%s\t%d\t%d\t%s" % (t.name, start, len(chunk),
                                                   "\t".join("%.9g" % float(v) for v in chunk)))
        lines.append("sum\t%s\t%d\t%.17g" % (t.name, len(vals), float(np.sum(vals.astype(np.float64)))))
    with open(out_path, "w") as fo:
        fo.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
