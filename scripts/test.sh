#!/usr/bin/env bash
# The test command: every test of the workspace, including the corpus agreement test (it needs
# ../shared/corpus, or REKINDLE_CORPUS pointing at a copy).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --locked --no-fail-fast
