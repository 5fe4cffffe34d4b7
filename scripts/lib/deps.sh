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
