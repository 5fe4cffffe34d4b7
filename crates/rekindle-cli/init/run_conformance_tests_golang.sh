#!/usr/bin/env bash
# Conformance tests of generated Go code. Arguments: the code folder, the conformance tests folder.
# Exit 0 pass, 69 environment unusable, anything else failure (the reference's interface).
set -u
code="${1:?usage: run_conformance_tests_golang.sh CODE_FOLDER TESTS_FOLDER}"
tests="${2:?usage: run_conformance_tests_golang.sh CODE_FOLDER TESTS_FOLDER}"
command -v go >/dev/null 2>&1 || { echo "go is not installed" >&2; exit 69; }
cd "$code" || { echo "cannot enter $code" >&2; exit 69; }
[ -f "$tests/conformance_tests.go" ] || { echo "no $tests/conformance_tests.go"; exit 1; }
export GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN=local
go run "$tests/conformance_tests.go" 2>&1
