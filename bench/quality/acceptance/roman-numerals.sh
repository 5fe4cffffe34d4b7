#!/usr/bin/env bash
# Hidden acceptance test of examples/roman-numerals (roman.py). Argument: the rendered code folder.
set -u
code="${1:?usage: roman-numerals.sh CODE_FOLDER}"
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)" exec python3 - "$code" <<'PY'
from check import *

to_roman = {"1": "I", "4": "IV", "9": "IX", "14": "XIV", "40": "XL", "58": "LVIII", "90": "XC",
            "400": "CD", "900": "CM", "1994": "MCMXCIV", "2024": "MMXXIV", "3999": "MMMCMXCIX"}
for number, numeral in to_roman.items():
    ran = program("roman.py", number)
    output_is(f"{number} -> {numeral}", ran, [numeral])
    expect(f"... exits 0", ran.code == 0, ran.code)

for numeral, number in {"I": "1", "IV": "4", "XLII": "42", "XCIX": "99", "CDXLIV": "444",
                        "MCMXCIV": "1994", "MMMCMXCIX": "3999"}.items():
    output_is(f"{numeral} -> {number}", program("roman.py", numeral), [number])

for numeral, number in {"xlii": "42", "mcmxciv": "1994", "iv": "4"}.items():
    output_is(f"lowercase {numeral} -> {number}", program("roman.py", numeral), [number])

for bad in ["4000", "0", "12a", "ABC", "hello"]:
    ran = program("roman.py", bad)
    expect(f"{bad!r} is invalid: exit 1", ran.code == 1, (ran.code, ran.out, ran.err[-200:]))
    expect(f'... "roman: invalid input: {bad}" on standard error',
           ran.err.strip() == f"roman: invalid input: {bad}", ran.err)

output_is("3 IX -> III, 9", program("roman.py", "3", "IX"), ["III", "9"])
ran = program("roman.py", "1994", "xlii", "10")
output_is("1994 xlii 10 -> MCMXCIV, 42, X", ran, ["MCMXCIV", "42", "X"])
expect("... exits 0", ran.code == 0, ran.code)
done()
PY
