#!/usr/bin/env python3
"""make_e2e_tokens.py - token ids for the backends' end-to-end comparison (test_backend_e2e).

Tokenizes the start of WikiText-2's test split (../shared/data/wikitext-2/wiki.test.raw) with
llama.cpp's tokenizer (the Python package llama_cpp, vocabulary only) for the default model
(SmolLM2-135M-Instruct), exactly as llama.cpp's perplexity tool does (the whole text at once,
add_special=True; SmolLM2 adds no BOS), and writes the first N ids, one per line, to
fixtures/wikitext2_smollm2_tokens.txt. The test then cuts them into chunks of 512.

usage: tests/backends/make_e2e_tokens.py [MODEL] [N]
"""
import os
import sys

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
model = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
text = open(os.path.join(ROOT, "..", "shared", "data", "wikitext-2", "wiki.test.raw"), encoding="utf-8").read()
llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)[:n]
with open(os.path.join(HERE, "fixtures", "wikitext2_smollm2_tokens.txt"), "w") as f:
    f.write("# WikiText-2 test split (wiki.test.raw), first %d tokens, SmolLM2 tokenizer via llama.cpp\n" % len(ids))
    for t in ids:
        f.write("%d\n" % t)
print("wrote %d tokens" % len(ids))
