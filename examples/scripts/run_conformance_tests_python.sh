#!/usr/bin/env bash
# Conformance tests of generated Python code. Argument 1: the code folder; argument 2: the folder
# of conformance tests. Tests run with the code folder as the working directory.
# Exit 0 pass, 69 environment unusable, anything else failure (the reference's interface).
set -u
code="${1:?usage: run_conformance_tests_python.sh CODE_FOLDER TESTS_FOLDER}"
tests="${2:?usage: run_conformance_tests_python.sh CODE_FOLDER TESTS_FOLDER}"
command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed" >&2; exit 69; }
tests=$(cd "$tests" && pwd) || { echo "cannot enter $2" >&2; exit 69; }
cd "$code" || { echo "cannot enter $code" >&2; exit 69; }
out=$(python3 -m unittest discover -b -s "$tests" -t "$tests" 2>&1)
status=$?
echo "$out"
if echo "$out" | grep -q "^Ran 0 tests"; then
  echo "no conformance tests were found in $tests: python -m unittest discover runs the test_* methods of unittest.TestCase classes, in files named test*.py" >&2
  exit 1
fi
exit "$status"
