#!/usr/bin/env bash
# What the sandbox costs per script run: median over 30 runs (after 3 warm-up runs) of a script
# that exits 0, through `scripts::run` sandboxed and with --no-sandbox, side by side.
#
#   bench/sandbox.sh
#   ROUNDS=51 bench/sandbox.sh
#
# Reports only: timings are never asserted. Exits non-zero if the sandbox cannot be set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/deps.sh
ensure_sandbox_deps
cargo bench --locked -p rekindle-workspace --bench sandbox
