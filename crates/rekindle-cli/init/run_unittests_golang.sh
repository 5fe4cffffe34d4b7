#!/usr/bin/env bash
# Unit tests of generated Go code. Argument 1: the code folder.
# Exit 0 pass, 69 environment unusable, anything else failure (the reference's interface).
set -u
code="${1:?usage: run_unittests_golang.sh CODE_FOLDER}"
command -v go >/dev/null 2>&1 || { echo "go is not installed" >&2; exit 69; }
cd "$code" || { echo "cannot enter $code" >&2; exit 69; }
[ -f go.mod ] || { echo "no go.mod yet: nothing to test"; exit 0; }
# Go keeps its caches under HOME; the sandbox gives a private, writable one.
export GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN=local
go test ./... 2>&1
