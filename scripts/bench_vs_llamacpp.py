#!/usr/bin/env python3
"""Loom (`loom bench`) against llama.cpp (llama-cpp-python) side by side, alternating.

Runs every case (a model file) in P passes; each pass runs Loom and llama.cpp back to back in
alternating order (odd passes Loom first, even passes llama.cpp first), each as its own process
with a warm-up and R timed repetitions of a prefill of -p tokens and a decode of -n tokens. Per
pass the ratio Loom / llama.cpp is taken from the two adjacent runs; the report gives the median
ratio with its range over the passes, which is what survives on a shared, noisy machine.

Around each case the roofline probe (loom-roofline) measures the read bandwidth over a working
set of the model's size (so a model that fits in the last-level cache gets the cache's bandwidth)
and, once, the FLOP ceilings; decode is reported as a share of the bandwidth roofline
(weight bytes read per token x tokens/s / bandwidth).

Cases: the default model plus random-weight models of the SmolLM2-135M and TinyLlama-1.1B shapes
at each --types entry, written by loom-make-random-model (Loom's own GGUF writer) into
--model-dir when missing.

Prints a Markdown table and writes the raw results as JSON lines (--out).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr[-2000:]))
    return r.stdout


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON in output: " + text[-500:])


def run_loom(a, model):
    cmd = [os.path.join(a.build, "bin", "loom"), "bench", "-m", model, "-p", str(a.p), "-n", str(a.n), "-r",
           str(a.reps), "-t", str(a.threads), "--backend", a.backend, "--json"]
    for o in a.loom_option:
        cmd += ["-o", o]
    if os.path.exists("/usr/bin/time"):
        r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("loom bench failed: " + r.stderr[-2000:])
        out = last_json(r.stdout)
        for line in r.stderr.splitlines():
            if line.startswith("MAXRSS "):
                out["peak_rss_kib"] = int(line.split()[1])
        return out
    return last_json(sh(cmd))


def run_llama(a, model):
    cmd = [sys.executable, os.path.join(HERE, "llamacpp_bench.py"), model, "-p", str(a.p), "-n", str(a.n), "-r",
           str(a.reps), "-t", str(a.threads)]
    return last_json(sh(cmd))


def roofline(a, nbytes, flops):
    cmd = [os.path.join(a.build, "bin", "loom-roofline"), "--threads", str(a.threads), "--bytes", str(nbytes),
           "--seconds", "2" if flops else "1"]
    out = sh(cmd)
    kv = {}
    for line in out.splitlines():
        if line.startswith("roofline "):
            for tok in line.split()[1:]:
                k, v = tok.split("=")
                kv[k] = float(v)
    return kv


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def gguf_weight_bytes(path):
    """Bytes of tensor data read per decoded token: every tensor except the token embedding
    (a row lookup) unless it doubles as the output head (tied embeddings)."""
    try:
        import gguf  # the gguf Python package

        r = gguf.GGUFReader(path)
        names = {t.name for t in r.tensors}
        total = 0
        for t in r.tensors:
            if t.name == "token_embd.weight" and "output.weight" in names:
                continue
            total += int(t.n_bytes)
        return total
    except Exception:  # noqa: BLE001 - fall back to the file size
        return os.path.getsize(path)


def ensure_model(a, shape, typ):
    path = os.path.join(a.model_dir, "%s-%s.gguf" % (shape, typ))
    if not os.path.exists(path):
        os.makedirs(a.model_dir, exist_ok=True)
        sh([os.path.join(a.build, "bin", "loom-make-random-model"), "--shape", shape, "--type", typ, "-o", path])
    return path


def fmt_range(vals, digits=2):
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return "%.*f" % (digits, med)
    return "%.*f (%.*f-%.*f)" % (digits, med, digits, min(vals), digits, max(vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--backend", default="cpu_opt")
    ap.add_argument("--loom-option", action="append", default=[], help="extra -o KEY=VALUE for loom")
    ap.add_argument("--model-dir", default=os.environ.get("LOOM_BENCH_MODELS", os.path.join(ROOT, "build", "bench-models")))
    ap.add_argument("--default-model", default=os.environ.get("LOOM_DEFAULT_MODEL",
                                                              "/work/cache/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--shapes", default="smollm2,tinyllama")
    ap.add_argument("--types", default="f32,f16,q8_0,q4_0,q4_1")
    ap.add_argument("--cases", default="", help="comma list of shape:type (overrides --shapes/--types); "
                                                "'default' is the default model")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench_vs_llamacpp.jsonl"))
    a = ap.parse_args()

    cases = []
    if a.cases:
        for c in a.cases.split(","):
            if c == "default":
                cases.append(("default", a.default_model))
            else:
                shape, typ = c.split(":")
                cases.append(("%s %s" % (shape, typ), ensure_model(a, shape, typ)))
    else:
        if os.path.exists(a.default_model):
            cases.append(("default (SmolLM2-135M-Instruct Q4_1)", a.default_model))
        for shape in a.shapes.split(","):
            for typ in a.types.split(","):
                cases.append(("%s %s" % (shape, typ), ensure_model(a, shape, typ)))

    commit = ""
    try:
        commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    except Exception:  # noqa: BLE001
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    peaks = roofline(a, 8 << 20, True)
    print("# %s, commit %s, %s (%d logical CPUs), %d threads, -p %d -n %d, %d passes x %d reps" %
          (stamp, commit, cpu, os.cpu_count() or 0, a.threads, a.p, a.n, a.passes, a.reps))
    print("# ceilings: fp32 FMA %.0f GFLOP/s, int8 VNNI %.0f GOP/s, bf16 %.0f GFLOP/s" %
          (peaks.get("fma_gflops", 0), peaks.get("vnni_gops", 0), peaks.get("bf16_gflops", 0)))
    sys.stdout.flush()
    out = open(a.out, "a")
    rows = []
    for name, model in cases:
        wbytes = gguf_weight_bytes(model)
        res = {"loom": [], "llama": []}
        bw = []
        loads = []
        for p in range(a.passes):
            bw.append(roofline(a, max(wbytes, 1 << 20), False).get("bw_median_gbs", 0.0))
            loads.append(loadavg())
            order = ("loom", "llama") if p % 2 == 0 else ("llama", "loom")
            for eng in order:
                try:
                    r = run_loom(a, model) if eng == "loom" else run_llama(a, model)
                except RuntimeError as e:
                    r = {"error": str(e)}
                    print("  %s %s: %s" % (name, eng, str(e)[:300]), file=sys.stderr)
                r.update({"case": name, "pass": p, "engine": eng, "date": stamp, "commit": commit, "loadavg": loads[-1],
                          "weight_bytes_per_token": wbytes})
                out.write(json.dumps(r) + "\n")
                out.flush()
                res[eng].append(r)
        bw.append(roofline(a, max(wbytes, 1 << 20), False).get("bw_median_gbs", 0.0))

        def series(eng, key):
            return [r.get(key) for r in res[eng] if r.get(key)]

        def ratios(key):
            v = []
            for lo, ll in zip(res["loom"], res["llama"]):
                if lo.get(key) and ll.get(key):
                    v.append(lo[key] / ll[key])
            return v

        tg = series("loom", "decode_tokens_per_second")
        bwm = statistics.median(bw) if bw else 0
        roof = [100.0 * t * wbytes / (bwm * 1e9) for t in tg] if bwm else []
        rss = series("loom", "peak_rss_kib")
        rows.append((name, fmt_range(series("loom", "prefill_tokens_per_second"), 1),
                     fmt_range(series("llama", "prefill_tokens_per_second"), 1), fmt_range(ratios("prefill_tokens_per_second")),
                     fmt_range(tg, 1), fmt_range(series("llama", "decode_tokens_per_second"), 1),
                     fmt_range(ratios("decode_tokens_per_second")), "%.1f (%.1f-%.1f)" % (bwm, min(bw), max(bw)),
                     fmt_range(roof, 0), "%.1f / %.1f" % (max(rss) / 1024.0 if rss else 0, wbytes / 1048576.0),
                     "%.1f" % statistics.median(loads)))
        print("| " + " | ".join(rows[-1]) + " |")
        sys.stdout.flush()
    out.close()
    print()
    print("| case | Loom prefill tok/s | llama.cpp prefill | ratio | Loom decode tok/s | llama.cpp decode | ratio | "
          "read GB/s (model-size set) | decode % of roofline | Loom peak RSS MiB / weights MiB | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("\nplatform: %s; llama.cpp via llama-cpp-python; raw results in %s" % (platform.platform(), a.out))


if __name__ == "__main__":
    main()
