#!/usr/bin/env bash
# The test command: every test of the workspace, with the embedded engine. That includes the
# corpus agreement test (it needs ../shared/corpus, or REKINDLE_CORPUS pointing at a copy) and
# the end-to-end tests with the real local model, which is fetched first (1.1 GB, verified).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
ensure_llama_deps
export_llama_cpu_flags
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
cargo build --locked -p rekindle --features local
target/debug/rekindle model fetch
cargo nextest run --workspace --locked --no-fail-fast --features rekindle/local,rekindle-llm/local
