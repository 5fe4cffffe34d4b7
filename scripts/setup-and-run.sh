#!/usr/bin/env bash
# One command from a fresh machine to the main job on the example project: installs what the build
# needs, builds rekindle, checks the example specs and shows the render plan of hello-world.
# (Rendering with the embedded model joins this script when the render pipeline lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
ensure_build_deps
cargo build --release --locked -p rekindle
bin=target/release/rekindle
"$bin" check examples/hello-world/hello-world.plain examples/word-count/word-count.plain
"$bin" plan examples/hello-world/hello-world.plain
