#!/usr/bin/env bash
# Hidden acceptance test of examples/hello-world. Argument: the rendered code folder.
set -u
code="${1:?usage: hello-world.sh CODE_FOLDER}"
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)" exec python3 - "$code" <<'PY'
from check import *

ran = program("hello_world.py")
expect("hello_world.py exits 0", ran.code == 0, (ran.code, ran.err[-300:]))
expect('prints exactly "hello, world\\n"', ran.out == "hello, world\n", ran.out)
expect("prints nothing to standard error", ran.err == "", ran.err[-300:])
done()
PY
