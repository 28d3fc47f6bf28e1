#!/usr/bin/env python3
"""landmark_official_reference.py - the landmark decode fixture, recomputed by the official code
with exact ties.

The shared fixture landmark_cached_topk2_decode (../shared/fixtures/archs) was made by the
official lm_benchmark code (epfml/landmark-attention at d963e50) in float32 on torch 1.13. From
row 56 on, its first-layer top-k choice is among blocks whose landmark keys are equal in exact
arithmetic and differ only in the last bit, depending on how many rows the call that computed
them had (docs/seed-architectures.md). Those rows follow that torch build's rounding; the
official code itself does not reproduce them on torch 2.15.

This script runs the same official code, the same weights, inputs and call sizes (config.json's
chunks_raw_token_ranges), in float64, with the probabilities that `topk` ranks rounded to
multiples of 2^-30 first, so that keys equal in exact arithmetic tie exactly and the choice
among them is torch's documented tie order, not rounding noise. Nothing else is changed. The
logits (160 x 256, stored as float32) and the input ids go to
tests/archs/fixtures/landmark_cached_topk2_decode.official_f64.safetensors, which
`test_arch_fixtures --golden` compares with Loom on every row.

usage: scripts/landmark_official_reference.py --official PATH/TO/landmark-attention/lm_benchmark
       (git clone https://github.com/epfml/landmark-attention; git checkout d963e50)
needs: torch, numpy, safetensors
"""
import argparse
import json
import os
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASE = "landmark_cached_topk2_decode"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="the official lm_benchmark folder")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "archs", "fixtures", CASE + ".official_f64.safetensors"))
    a = ap.parse_args()

    sys.modules["tiktoken"] = types.SimpleNamespace(get_encoding=lambda n: None)  # data loading only
    sys.path.insert(0, a.official)
    import torch
    from safetensors.torch import load_file, save_file

    import models  # the official lm_benchmark package

    torch.set_num_threads(1)
    dt = torch.float64
    torch.set_default_dtype(dt)
    d = os.path.join(a.shared, "fixtures", "archs", CASE)
    cfg = json.load(open(os.path.join(d, "config.json")))
    args = argparse.Namespace(**cfg["args"])
    args.dtype = dt
    model = models.make_model_from_args(args).to(dt)
    for s in model.lm_cache.layer_storages:
        for n, b in list(s.named_buffers()):
            if b.is_floating_point():
                setattr(s, n, b.to(dt))
    model.load_state_dict({k: v.to(dt) for k, v in load_file(os.path.join(d, "model.safetensors")).items()},
                          strict=False)
    g = load_file(os.path.join(d, "golden.safetensors"))
    x = g["input_ids"].long().view(1, -1)
    topk = torch.Tensor.topk
    torch.Tensor.topk = lambda self, *p, **kw: topk(torch.round(self * 2.0 ** 30) / 2.0 ** 30, *p, **kw)
    model.eval()
    model.clear_state()
    outs = []
    with torch.no_grad():
        for lo, hi in cfg["chunks_raw_token_ranges"]:
            outs.append(model(x[:, lo:hi], targets=x[:, lo:hi], get_logits=True, use_cache=True)["logits"][0])
    logits = torch.cat(outs)
    diff = (logits - g["logits"].double()).abs().max(dim=1).values
    bad = [i for i in range(len(diff)) if diff[i] > 1e-4 * g["logits"].abs().max().item()]
    print("%s: %d rows; against the shared golden: rows 0-%d agree, first differing row %s (max %.3g)" %
          (CASE, logits.shape[0], (bad[0] - 1) if bad else logits.shape[0] - 1, bad[0] if bad else None,
           diff.max().item()))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    save_file({"input_ids": g["input_ids"].contiguous(), "logits": logits.float().contiguous()}, a.out,
              metadata={"source": "official lm_benchmark d963e50, float64, topk inputs rounded to 2^-30",
                        "case": CASE, "torch": torch.__version__})
    print("wrote", a.out)


if __name__ == "__main__":
    main()
