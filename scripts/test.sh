#!/usr/bin/env bash
# The test command: every test of the workspace, with the embedded engine. That includes the
# corpus agreement test (it needs ../shared/corpus, or REKINDLE_CORPUS pointing at a copy) and
# the end-to-end tests with the real local model, which is fetched first (1.1 GB, verified).
# The editor test drives Debian's Neovim, installed when missing.
# The model tests run last and one at a time: llama.cpp's threads want both cores to themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
ensure_sandbox_deps
ensure_editor_deps
ensure_llama_deps
export_llama_cpu_flags
ensure_disk 4
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
features=rekindle/local,rekindle-llm/local
cargo build --locked -p rekindle --features local
REKINDLE_MODEL_PATH="$("${CARGO_TARGET_DIR:-target}"/debug/rekindle model fetch | tail -n 1)"
export REKINDLE_MODEL_PATH
model_tests='binary(local_e2e) | binary(e2e_local)'
status=0
cargo nextest run --workspace --locked --no-fail-fast --features "$features" -E "not ($model_tests)" || status=$?
cargo nextest run --workspace --locked --no-fail-fast --features "$features" -E "$model_tests" --test-threads 1 || status=$?
exit "$status"
