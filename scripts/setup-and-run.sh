#!/usr/bin/env bash
# One command from a fresh machine to the main job: installs what the build needs, builds rekindle
# with the embedded llama.cpp engine, fetches the default local model (verified), renders
# examples/hello-world with it, and runs the rendered program.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/lib/deps.sh
ensure_build_deps
ensure_sandbox_deps
ensure_llama_deps
export_llama_cpu_flags
ensure_disk 4
cargo build --release --locked -p rekindle --features local
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
bin="$target/release/rekindle"
"$bin" model fetch
"$bin" check examples/hello-world/hello-world.plain examples/word-count/word-count.plain
cd examples/hello-world
"$bin" plan hello-world.plain
"$bin" render hello-world.plain --yes
echo "--- running the rendered program: python3 build/hello_world.py"
python3 build/hello_world.py
