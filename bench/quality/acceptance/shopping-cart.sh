#!/usr/bin/env bash
# Hidden acceptance test of examples/shopping-cart (the library cart.py). Argument: the rendered
# code folder.
set -u
code="${1:?usage: shopping-cart.sh CODE_FOLDER}"
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)" exec python3 - "$code" <<'PY'
import io, contextlib, sys
from check import *

sys.path.insert(0, CODE)
printed = io.StringIO()
try:
    with contextlib.redirect_stdout(printed):
        from cart import Cart
except Exception as e:
    expect("from cart import Cart", False, repr(e))
    done()
expect("importing cart prints nothing", printed.getvalue() == "", printed.getvalue())

def attempt(what, f, want):
    try:
        got = f()
    except Exception as e:
        got = e
    expect(f"{what} == {want!r}", got == want and type(got) is type(want), got)

def raises(what, f, error):
    try:
        f()
    except error:
        expect(f"{what} raises {error.__name__}", True)
    except Exception as e:
        expect(f"{what} raises {error.__name__}", False, repr(e))
    else:
        expect(f"{what} raises {error.__name__}", False, "no exception")

def cart(*items):
    c = Cart()
    for item in items:
        c.add(*item)
    return c

attempt("Cart().total()", lambda: Cart().total(), 0)
attempt("apple 50x3 + pear 75: total()", lambda: cart(("apple", 50, 3), ("pear", 75)).total(), 225)
def keyword_quantity():
    c = Cart()
    c.add("fig", 20, quantity=4)
    return c.total()
attempt("add(\"fig\", 20, quantity=4): total()", keyword_quantity, 80)

# The same name again adds to its quantity at the first price: 50 + 2 x 50.
attempt("apple 50, then apple 60x2: total()", lambda: cart(("apple", 50), ("apple", 60, 2)).total(), 150)
attempt("apple 50, then apple 60x2: count()", lambda: cart(("apple", 50), ("apple", 60, 2)).count(), 3)

attempt("Cart().count()", lambda: Cart().count(), 0)
attempt("apple x3 + pear: count()", lambda: cart(("apple", 50, 3), ("pear", 75)).count(), 4)

def removed():
    c = cart(("apple", 50, 3), ("pear", 75))
    c.remove("apple")
    return (c.total(), c.count())
attempt("remove apple: (total, count)", removed, (75, 1))
raises("remove of a missing name", lambda: cart(("apple", 50)).remove("kiwi"), KeyError)

def discounted(*percents):
    c = cart(("apple", 50, 3), ("pear", 75))
    for p in percents:
        c.apply_discount(p)
    return c.total()
attempt("225 less 10%: total() rounds down", lambda: discounted(10), 202)   # 202.5
attempt("225 less 10%, then 20% instead", lambda: discounted(10, 20), 180)
attempt("225 less 10%, then 0% instead", lambda: discounted(10, 0), 225)
attempt("225 less 100%", lambda: discounted(100), 0)
attempt("225 less 33%", lambda: discounted(33), 150)   # 150.75
raises("apply_discount(101)", lambda: Cart().apply_discount(101), ValueError)
raises("apply_discount(-1)", lambda: Cart().apply_discount(-1), ValueError)
done()
PY
