#!/usr/bin/env python3
"""model_digest.py - a digest of a model's tensors, stored in the oracle fixtures.

The digest identifies the weights a fixture was computed from, whatever wrote the file
(llama.cpp's quantize tool or `loom convert`) and whatever the metadata or tensor order:

  SHA-256 over the tensors sorted by name (bytewise), each as
      name (UTF-8) 0x00  type name ("f32", "q8_0", "q4_1", ...) 0x00
      n_dims (u32 LE)  ne[0..n_dims) (u64 LE each, ne[0] innermost)  byte size (u64 LE)  data

A .gguf file or a Hugging Face folder (model.safetensors, shapes reversed to ne order) is read
with the standard library only. tests/model/test_llama_oracle.c computes the same digest of the
model it loads and compares it with the fixture's "weights_sha256" ("hf_weights_sha256" in
f32.json for the hf folder, which shares the f32 references).

usage: scripts/model_digest.py PATH...                    print the digest of each model
       scripts/model_digest.py --compare A B              compare two models tensor by tensor
       scripts/model_digest.py --update-fixtures [DIR]    write the digests of the variants in
                                                          DIR (default: the cache) into the fixtures
"""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGML_TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22),
              7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 12: ("q4_k", 256, 144), 14: ("q6_k", 256, 210),
              30: ("bf16", 1, 2)}
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def cache_dir():
    return os.environ.get("LOOM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "loom")


class _Cursor:
    def __init__(self, f):
        self.f = f

    def take(self, fmt):
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, self.f.read(n))[0]

    def string(self):
        return self.f.read(self.take("<Q")).decode("utf-8")

    def skip_value(self, t):
        if t == 8:
            self.string()
        elif t == 9:
            et, n = self.take("<I"), self.take("<Q")
            for _ in range(n):
                self.skip_value(et)
        else:
            self.take(_SCALARS[t])


def gguf_tensors(path):
    """[(name, type name, ne, data offset, byte size)] of a GGUF file."""
    with open(path, "rb") as f:
        c = _Cursor(f)
        if f.read(4) != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        c.take("<I")
        n_tensors, n_kv = c.take("<Q"), c.take("<Q")
        align = 32
        for _ in range(n_kv):
            key, t = c.string(), c.take("<I")
            if key == "general.alignment":
                align = c.take(_SCALARS[t])
            else:
                c.skip_value(t)
        infos = []
        for _ in range(n_tensors):
            name = c.string()
            ne = [c.take("<Q") for _ in range(c.take("<I"))]
            ttype, off = c.take("<I"), c.take("<Q")
            infos.append((name, ttype, ne, off))
        start = (f.tell() + align - 1) // align * align
    out = []
    for name, ttype, ne, off in infos:
        tname, blck, size = GGML_TYPES[ttype]
        n = 1
        for d in ne:
            n *= d
        out.append((name, tname, ne, start + off, n // blck * size))
    return path, out


def safetensors_tensors(folder):
    path = os.path.join(folder, "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    out = []
    dtypes = {"F32": "f32", "F16": "f16", "BF16": "bf16"}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out.append((name, dtypes[e["dtype"]], list(reversed(e["shape"])), 8 + n + b, end - b))
    return path, out


def tensors(path):
    return safetensors_tensors(path) if os.path.isdir(path) else gguf_tensors(path)


def tensor_record(f, t):
    name, tname, ne, off, size = t
    f.seek(off)
    data = f.read(size)
    head = name.encode() + b"\0" + tname.encode() + b"\0" + struct.pack("<I", len(ne))
    head += b"".join(struct.pack("<Q", d) for d in ne) + struct.pack("<Q", size)
    return head, data


def digest(path):
    file, ts = tensors(path)
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for t in sorted(ts, key=lambda t: t[0].encode()):
            head, data = tensor_record(f, t)
            h.update(head)
            h.update(data)
    return h.hexdigest()


def compare(a, b):
    fa, ta = tensors(a)
    fb, tb = tensors(b)
    da, db = {t[0]: t for t in ta}, {t[0]: t for t in tb}
    bad = 0
    if set(da) != set(db):
        print("names differ: only in A %s, only in B %s" % (sorted(set(da) - set(db))[:5], sorted(set(db) - set(da))[:5]))
        bad += 1
    with open(fa, "rb") as xa, open(fb, "rb") as xb:
        for name in sorted(set(da) & set(db)):
            ra, rb = tensor_record(xa, da[name]), tensor_record(xb, db[name])
            if ra != rb:
                bad += 1
                what = "header" if ra[0] != rb[0] else "data"
                print("%s: %s differs (%s %s vs %s %s)" % (name, what, da[name][1], da[name][2], db[name][1], db[name][2]))
    print("%s vs %s: %d tensors, %s" % (a, b, len(da), "identical" if not bad else "%d differ" % bad))
    return bad == 0


def update_fixtures(var_dir, model):
    fixtures = os.path.join(ROOT, "tests", "model", "fixtures")
    sources = {"q4_1": ("weights_sha256", model), "f32": ("weights_sha256", os.path.join(var_dir, "f32.gguf")),
               "q8_0": ("weights_sha256", os.path.join(var_dir, "q8_0.gguf")),
               "q8_0_f32": ("weights_sha256", os.path.join(var_dir, "q8_0_f32.gguf")),
               "hf": ("hf_weights_sha256", os.path.join(var_dir, "hf"))}
    for variant, (key, path) in sources.items():
        fx_path = os.path.join(fixtures, ("f32" if variant == "hf" else variant) + ".json")
        if not os.path.exists(path) or not os.path.exists(fx_path):
            print("skipped %s (%s or %s absent)" % (variant, path, fx_path))
            continue
        set_fixture_digest(fx_path, key, digest(path))
        print("%s: %s" % (fx_path, key))


def set_fixture_digest(fx_path, key, value):
    with open(fx_path) as f:
        fx = json.load(f)
    fx[key] = value
    with open(fx_path, "w") as f:
        json.dump(fx, f, indent=1)
        f.write("\n")


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args[0] == "--compare" and len(args) == 3:
        return 0 if compare(args[1], args[2]) else 1
    if args[0] == "--update-fixtures":
        var_dir = args[1] if len(args) > 1 else os.path.join(cache_dir(), "variants")
        model = os.environ.get("LOOM_TEST_MODEL") or os.path.join(cache_dir(), "SmolLM2-135M-Instruct.Q4_1.gguf")
        update_fixtures(var_dir, model)
        return 0
    for p in args:
        print(digest(p), p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
