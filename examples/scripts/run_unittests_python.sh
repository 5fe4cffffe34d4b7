#!/usr/bin/env bash
# Unit tests of generated Python code. Argument 1: the code folder.
# Exit 0 pass, 69 environment unusable, anything else failure (the reference's interface).
set -u
code="${1:?usage: run_unittests_python.sh CODE_FOLDER}"
command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed" >&2; exit 69; }
cd "$code" || { echo "cannot enter $code" >&2; exit 69; }
out=$(python3 -m unittest discover -b 2>&1)
status=$?
echo "$out"
# unittest exits 5 when it finds no tests: a functionality may legitimately have none yet.
if [ "$status" -eq 5 ] || echo "$out" | grep -q "^Ran 0 tests"; then
  exit 0
fi
exit "$status"
