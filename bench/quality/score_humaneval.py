"""Scores one rendered HumanEval solution with the problem's own check(). Run in a fresh process:

    python3 -I score_humaneval.py CODE_DIR solution.py  < {"prompt":…,"test":…,"entry_point":…,"nonce":…}

Prints one line `NONCE {"passed": bool, "detail": str|null}` (the nonce, so that nothing the
rendered code prints can pass for the verdict). The problem's prompt is executed in a
namespace of its own so that check() finds the helpers the problem gives (poly, encode_cyclic, …);
the candidate is the function the rendered module defines, with the rendered module as its globals,
and the entry point's name in that namespace is the candidate too (as in the official harness).
"""

import json
import os
import sys
import traceback
import types

NONCE = ""


def main() -> None:
    global NONCE
    code_dir, file_name = sys.argv[1], sys.argv[2]
    problem = json.loads(sys.stdin.read())
    NONCE = problem.pop("nonce")
    path = os.path.join(code_dir, file_name)
    os.chdir(code_dir)
    sys.path.insert(0, code_dir)
    name = file_name[:-3]
    try:
        module = types.ModuleType(name)
        module.__file__ = path
        sys.modules[name] = module
        with open(path, encoding="utf-8") as f:
            exec(compile(f.read(), path, "exec"), module.__dict__)
    except BaseException:
        verdict(False, "importing the rendered module failed:\n" + traceback.format_exc(limit=3))
        return
    candidate = getattr(module, problem["entry_point"], None)
    if not callable(candidate):
        verdict(False, f"{file_name} defines no function {problem['entry_point']}")
        return
    reference: dict = {"__name__": "__hidden_tests__"}
    try:
        exec(problem["prompt"], reference)
        # The official harness runs prompt + completion + test as one program, so a test that
        # names the entry point itself (HumanEval/33 compares `candidate(x)` with
        # `sort_third(x)`) calls the candidate, not the prompt's stub that returns None.
        reference[problem["entry_point"]] = candidate
        exec(problem["test"], reference)
        reference["check"](candidate)
    except AssertionError:
        verdict(False, "a hidden test failed:\n" + traceback.format_exc(limit=3))
        return
    except BaseException:
        verdict(False, "the hidden tests raised:\n" + traceback.format_exc(limit=3))
        return
    verdict(True, None)


def verdict(passed: bool, detail) -> None:
    sys.stdout.flush()
    print("\n" + NONCE + " " + json.dumps({"passed": passed, "detail": detail[-1500:] if detail else None}), flush=True)


if __name__ == "__main__":
    main()
