# Shared by the scripts: install what building and testing need, only when it is missing.
# Runs as root on CI and on the project's machines; uses sudo when available otherwise.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
}

ensure_build_deps() {
  command -v cargo >/dev/null 2>&1 || { echo "cargo is required (rustup.rs)" >&2; exit 2; }
  # git runs in tests; a C compiler builds a few -sys crates; python3 runs generated projects' tests.
  command -v git >/dev/null 2>&1 || apt_install git
  command -v cc >/dev/null 2>&1 || apt_install build-essential
  command -v python3 >/dev/null 2>&1 || apt_install python3
}

# Every script rekindle runs (and so all generated code) runs in bubblewrap's sandbox.
ensure_sandbox_deps() {
  command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
}

# The editor test drives a real Neovim (headless) against `rekindle lsp`.
ensure_editor_deps() {
  command -v nvim >/dev/null 2>&1 || apt_install neovim
}

ensure_llama_deps() {
  # llama-cpp-sys builds llama.cpp with cmake and generates bindings with libclang.
  command -v cmake >/dev/null 2>&1 || apt_install cmake
  command -v clang >/dev/null 2>&1 || apt_install clang
  dpkg -s libclang-dev >/dev/null 2>&1 || apt_install libclang-dev
}

# llama-cpp-sys enables ggml's SIMD only for CPU features the Rust target names, and plain
# x86_64 names none: without these, llama.cpp is built SSE2-only and runs several times slower.
# Enable what this CPU has (the build and the tests run on the same machine).
export_llama_cpu_flags() {
  [ "$(uname -m)" = "x86_64" ] || return 0
  local flags
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  for pair in avx:GGML_AVX avx2:GGML_AVX2 fma:GGML_FMA f16c:GGML_F16C bmi2:GGML_BMI2 sse4_2:GGML_SSE42; do
    local feature=${pair%%:*} var=${pair##*:}
    if echo " $flags " | grep -q " $feature "; then export "$var=ON"; fi
  done
}

# A build that runs out of disk fails deep inside rustc or the linker ("IO failure on output
# stream", a linker bus error). Say it first, in words, naming the folder and what is needed.
# $1: GiB the step needs in the target folder (measured: see ARCHITECTURE.md, "Disk").
# CARGO_TARGET_DIR may not exist yet: the nearest existing folder above it is asked.
ensure_disk() {
  local need_gib=$1 target="${CARGO_TARGET_DIR:-target}" probe avail_kib
  probe="$target"
  while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
  avail_kib=$(df -Pk "$probe" | awk 'NR == 2 { print $4 }')
  if [ "$avail_kib" -lt $((need_gib * 1024 * 1024)) ]; then
    echo "not enough free disk for the build: $((avail_kib / 1024 / 1024)) GiB free under $probe," \
      "about $need_gib GiB needed (free some space or set CARGO_TARGET_DIR to a larger disk)" >&2
    exit 2
  fi
}
