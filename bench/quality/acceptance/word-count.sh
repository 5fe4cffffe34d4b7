#!/usr/bin/env bash
# Hidden acceptance test of examples/word-count (wc_lite.py). Argument: the rendered code folder.
set -u
code="${1:?usage: word-count.sh CODE_FOLDER}"
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)" exec python3 - "$code" <<'PY'
import os, tempfile
from check import *

tmp = tempfile.mkdtemp(prefix="wc-acceptance-")
def file(name, data: bytes):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path

ab = file("ab.txt", b"a b\nc\n")
# "h\xc3\xa9llo w\xc3\xb6rld\n": 2 words, 1 line, 14 bytes (11 characters).
utf = file("utf.txt", "héllo wörld\n".encode("utf-8"))
# Words are runs of non-whitespace: tabs, several spaces and a blank line count as separators
# ("  one\ttwo   three\n" is 18 bytes, "\n" 1, "four\n" 5: 3 lines, 4 words, 24 bytes).
spaced = file("spaced.txt", b"  one\ttwo   three\n\nfour\n")
empty = file("empty.txt", b"")

ran = program("wc_lite.py", ab)
output_is('"a b\\nc\\n" from a file: "2 3 6"', ran, ["2 3 6"])
expect("... exits 0", ran.code == 0, ran.code)
output_is("UTF-8 text counts bytes: 1 2 14", program("wc_lite.py", utf), ["1 2 14"])
output_is("whitespace runs: 3 4 24", program("wc_lite.py", spaced), ["3 4 24"])
output_is("an empty file: 0 0 0", program("wc_lite.py", empty), ["0 0 0"])

ran = program("wc_lite.py", stdin=b"a b\nc\n")
output_is("standard input when no argument: 2 3 6", ran, ["2 3 6"])
output_is("standard input, UTF-8: 1 2 14", program("wc_lite.py", stdin="héllo wörld\n".encode()), ["1 2 14"])

ran = program("wc_lite.py", "missing.txt")
expect("a missing file exits 1", ran.code == 1, (ran.code, ran.err[-300:]))
expect('... and says "wc-lite: cannot open missing.txt" on standard error',
       ran.err.strip() == "wc-lite: cannot open missing.txt", ran.err)
expect("... and prints nothing on standard output", ran.out == "", ran.out)

output_is('--words with a file: "3"', program("wc_lite.py", "--words", ab), ["3"])
output_is('--words with the UTF-8 file: "2"', program("wc_lite.py", "--words", utf), ["2"])
done()
PY
