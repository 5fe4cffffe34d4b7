#!/usr/bin/env bash
# Hidden acceptance test of the reference's hello-world (plainlang-examples/hello-world/python):
# 'Display "hello, world"', exit 0, in under 1 second. Argument: the rendered code folder.
set -u
code="${1:?usage: plainlang-hello-world.sh CODE_FOLDER}"
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)" exec python3 - "$code" <<'PY'
from check import *

ran = program("hello_world.py")
expect("hello_world.py exits 0", ran.code == 0, (ran.code, ran.err[-300:]))
expect('displays "hello, world"', ran.out.strip() == "hello, world", ran.out)
expect("finishes in under 1 second", ran.seconds < 1.0, ran.seconds)
done()
PY
