#!/usr/bin/env python3
"""bench_vs_llamacpp.py - Loom's `loom bench` and llama.cpp side by side, same model, threads and lengths.

Alternates rounds: one `loom bench -r 1` run (itself preceded by an untimed warm-up), then one
llama.cpp run through the llama_cpp Python package, REPS times. Each side measures
  prefill: N_PROMPT tokens evaluated in one call from an empty cache (batches of 512),
  decode:  N_GEN tokens evaluated one at a time from an empty cache,
as tokens per second. Prints mean and standard deviation per side and the ratio Loom / llama.cpp,
and with --markdown a table row for docs/benchmarks.md.

llama.cpp side notes: Llama.eval() is called from Python (a few microseconds per call on top of
llama_decode); its logits_all is off, like Loom's LOGITS_LAST.

usage: scripts/bench_vs_llamacpp.py [--model PATH] [--loom build/bin/loom] [-p 512] [-n 128]
                                    [-t THREADS] [-r REPS] [--markdown]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_model():
    env = os.environ.get("LOOM_MODEL") or os.environ.get("LOOM_TEST_MODEL")
    if env:
        return env
    cache = os.environ.get("LOOM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "loom")
    return os.path.join(cache, "SmolLM2-135M-Instruct.Q4_1.gguf")


def loom_round(args):
    cmd = [args.loom, "bench", "-q", "-m", args.model, "-p", str(args.p), "-n", str(args.n), "-t", str(args.t),
           "-r", "1", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return r["prefill_tokens_per_second"], r["decode_tokens_per_second"]


class LlamaCpp:
    def __init__(self, args):
        from llama_cpp import Llama

        self.llm = Llama(args.model, n_ctx=max(args.p, args.n) + 16, n_batch=512, n_ubatch=512, n_threads=args.t,
                         n_threads_batch=args.t, logits_all=False, verbose=False)
        n_vocab = self.llm.n_vocab()
        x = 0x2545F4914F6CDD1D
        self.tokens = []
        for _ in range(max(args.p, args.n)):
            x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
            x ^= x >> 7
            x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
            self.tokens.append(x % n_vocab)
        self.args = args
        self.run()  # warm-up

    def run(self):
        llm, p, n = self.llm, self.args.p, self.args.n
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(self.tokens[:p])
        pp = p / (time.perf_counter() - t0)
        llm.reset()
        t0 = time.perf_counter()
        for i in range(n):
            llm.eval([self.tokens[i]])
        tg = n / (time.perf_counter() - t0)
        return pp, tg


def stats(v):
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--loom", default=os.path.join(ROOT, "build", "bin", "loom"))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", type=int, default=int(os.environ.get("LOOM_THREADS", "2")))
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.model):
        sys.exit("model %s not found (scripts/get-model.sh)" % args.model)
    ref = LlamaCpp(args)
    loom_pp, loom_tg, ref_pp, ref_tg = [], [], [], []
    for r in range(args.r):
        a, b = loom_round(args)
        loom_pp.append(a)
        loom_tg.append(b)
        c, d = ref.run()
        ref_pp.append(c)
        ref_tg.append(d)
        print("round %d: loom pp %.1f tg %.1f | llama.cpp pp %.1f tg %.1f tok/s" % (r + 1, a, b, c, d),
              file=sys.stderr)
    lp, lps = stats(loom_pp)
    lt, lts = stats(loom_tg)
    rp, rps = stats(ref_pp)
    rt, rts = stats(ref_tg)
    print("model %s, threads %d, prefill %d tokens, decode %d tokens, %d rounds" % (
        os.path.basename(args.model), args.t, args.p, args.n, args.r))
    print("%-10s %22s %22s %8s" % ("test", "loom tok/s", "llama.cpp tok/s", "ratio"))
    print("%-10s %14.1f +- %5.1f %14.1f +- %5.1f %8.3f" % ("prefill", lp, lps, rp, rps, lp / rp))
    print("%-10s %14.1f +- %5.1f %14.1f +- %5.1f %8.3f" % ("decode", lt, lts, rt, rts, lt / rt))
    if args.markdown:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        import llama_cpp

        print("\n| date | commit | machine | model | threads | test | loom tok/s | llama.cpp %s tok/s | ratio |" %
              llama_cpp.__version__)
        print("|---|---|---|---|---|---|---|---|---|")
        mach = "%s, %d CPUs" % (platform.processor() or platform.machine(), os.cpu_count())
        day = time.strftime("%Y-%m-%d")
        for name, a, asd, b, bsd, n in (("pp%d" % args.p, lp, lps, rp, rps, args.p), ("tg%d" % args.n, lt, lts, rt, rts,
                                                                                     args.n)):
            print("| %s | %s | %s | %s | %d | %s | %.1f ± %.1f | %.1f ± %.1f | %.3f |" % (
                day, commit, mach, os.path.basename(args.model), args.t, name, a, asd, b, bsd, a / b))


if __name__ == "__main__":
    main()
