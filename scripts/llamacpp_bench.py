#!/usr/bin/env python3
"""llama.cpp side of the Loom benchmark harness (llama-bench's method through llama-cpp-python).

    llamacpp_bench.py MODEL [-p 128] [-n 64] [-r 5] [-t 2]

Like `loom bench` and llama-bench: the prefill test decodes N prompt tokens in one batch from an
empty KV cache; the decode test decodes N tokens one at a time from an empty cache. One untimed
warm-up of each, then R timed runs. Token ids are fixed pseudo-random values. Prints one JSON
object with the same keys as `loom bench --json`, plus the process's peak RSS before and after
loading the model (KiB).
"""
import argparse
import ctypes
import json
import random
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-t", type=int, default=2)
    a = ap.parse_args()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import llama_cpp as L

    @L.llama_log_callback
    def quiet(level, text, user):  # noqa: ARG001 - llama.cpp's log lines are not wanted here
        return None

    L.llama_log_set(quiet, ctypes.c_void_p(0))
    L.llama_backend_init()
    rss_lib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = L.llama_model_load_from_file(a.model.encode(), L.llama_model_default_params())
    if not model:
        sys.exit("llama.cpp could not load %s" % a.model)
    n_max = max(a.p, a.n, 1)
    cp = L.llama_context_default_params()
    cp.n_ctx = max(n_max, 16)
    cp.n_batch = max(a.p, 1)
    cp.n_ubatch = max(a.p, 1)
    cp.n_threads = a.t
    cp.n_threads_batch = a.t
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("llama.cpp could not create a context")
    vocab = L.llama_model_get_vocab(model)
    nv = L.llama_vocab_n_tokens(vocab)
    rng = random.Random(0x2545F4914F6CDD1D)
    toks = (L.llama_token * n_max)(*[rng.randrange(nv) for _ in range(n_max)])
    mem = L.llama_get_memory(ctx)
    tok_p = ctypes.POINTER(L.llama_token)

    def run(decode, n):
        L.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        if decode:
            for i in range(n):
                b = L.llama_batch_get_one(ctypes.cast(ctypes.byref(toks, i * 4), tok_p), 1)
                if L.llama_decode(ctx, b) != 0:
                    sys.exit("llama_decode failed")
        else:
            if L.llama_decode(ctx, L.llama_batch_get_one(toks, n)) != 0:
                sys.exit("llama_decode failed")
        L.llama_synchronize(ctx)
        return n / (time.perf_counter() - t0)

    out = {"engine": "llama.cpp", "model": a.model, "threads": str(a.t), "reps": a.r, "n_prompt": a.p, "n_gen": a.n}
    for decode, n, key in ((False, a.p, "prefill"), (True, a.n, "decode")):
        if n <= 0:
            out[key + "_runs"] = []
            continue
        run(decode, n)
        runs = [run(decode, n) for _ in range(a.r)]
        mean = sum(runs) / len(runs)
        sd = (sum((x - mean) ** 2 for x in runs) / (len(runs) - 1)) ** 0.5 if len(runs) > 1 else 0.0
        out[key + "_tokens_per_second"] = mean
        out[key + "_sd"] = sd
        out[key + "_runs"] = runs
    out["rss_before_model_kib"] = rss_lib
    out["rss_start_kib"] = rss0
    out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    L.llama_free(ctx)
    L.llama_model_free(model)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
