#!/usr/bin/env bash
# `loom tokenize` end to end on the default model. The expected ids are llama.cpp's
# (llama-cpp-python 0.3.36, Llama(model, vocab_only=True).tokenize(text, special=...)).
# Skips (77) without the model ($LOOM_TEST_MODEL, then ~/.cache/loom/...).
set -u
loom="$1"
model="${LOOM_TEST_MODEL:-$HOME/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf}"
[ -r "$model" ] || { echo "skip: no model"; exit 77; }
fail=0
check() { # name expected actual
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=1; else echo "ok   $1"; fi
}
text='Hello world  foo123 <|im_start|>x'
check ids "[19556, 905, 216, 29856, 33, 34, 35, 2067, 108, 306, 79, 3738, 108, 46, 104]" \
  "$("$loom" tokenize -q -m "$model" -p "$text" --ids)"
check special "[19556, 905, 216, 29856, 33, 34, 35, 216, 1, 104]" \
  "$("$loom" tokenize -q -m "$model" -p "$text" --ids --special)"
check file "[19556, 905, 216, 29856, 33, 34, 35, 2067, 108, 306, 79, 3738, 108, 46, 104]" \
  "$(printf '%s' "$text" | "$loom" tokenize -q -m "$model" -f - --ids)"
check pieces "'Hello'|' world'|' '" "$("$loom" tokenize -q -m "$model" -p 'Hello world ' --pieces | paste -sd'|')"
check json '{"n_tokens": 2, "tokens": [{"id": 19556, "piece": "Hello"}, {"id": 905, "piece": " world"}]}' \
  "$("$loom" tokenize -q -m "$model" -p 'Hello world' --json)"
# invalid UTF-8 (0xFF becomes U+FFFD, token 24211 in llama.cpp too)
check invalid "[24211]" "$("$loom" tokenize -q -m "$model" -p $'\xff' --ids)"
# U+1F99C: three tokens that are not UTF-8 on their own (llama.cpp: [10813, 116, 246])
check partial '{"n_tokens": 3, "tokens": [{"id": 10813, "piece": "\ufffd\ufffd", "hex": "f09f"}, {"id": 116, "piece": "\ufffd", "hex": "a6"}, {"id": 246, "piece": "\ufffd", "hex": "9c"}]}' \
  "$("$loom" tokenize -q -m "$model" -p $'\xf0\x9f\xa6\x9c' --json)"
"$loom" tokenize -q -m "$model" -p x --bogus >/dev/null 2>&1 && { echo "FAIL: bad option accepted"; fail=1; }
"$loom" tokenize -q -m /nonexistent.gguf -p x >/dev/null 2>&1 && { echo "FAIL: missing model accepted"; fail=1; }
exit $fail
