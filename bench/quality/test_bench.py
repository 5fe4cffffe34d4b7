"""Tests of the benchmark harness itself, without any model: a fake `rekindle` plays each kind of
render (success, wrong code, giving up, a runaway reply, an unusable reply, a hang, an environment
error) and the harness must score and classify it correctly.

    python3 -m unittest discover -s bench/quality -p 'test_*.py'
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import humaneval  # noqa: E402
import multi  # noqa: E402

PROBLEM = {
    "task_id": "HumanEval/2",
    "prompt": '\n\ndef truncate_number(number: float) -> float:\n    """ Return the decimal part.\n'
    "    >>> truncate_number(3.5)\n    0.5\n    \"\"\"\n",
    "entry_point": "truncate_number",
    "test": "\n\ndef check(candidate):\n    assert candidate(3.5) == 0.5\n"
    "    assert abs(candidate(1.33) - 0.33) < 1e-6\n",
}

# A stand-in for the rekindle binary. FAKE_MODE picks what the render does; FAKE_CODE is the
# solution.py it writes.
FAKE = r'''#!/usr/bin/env python3
import json, os, sys, time, subprocess
args = sys.argv[1:]
if args[:1] == ["--version"]:
    print("rekindle 0.0.0-fake"); sys.exit(0)
if args[:1] == ["plan"]:
    print(json.dumps({"modules": [{"name": args[1][:-6], "functionalities": [{"id": 1}]}]})); sys.exit(0)
mode = os.environ["FAKE_MODE"]
spec = args[1]
module = spec[:-6]
def ev(**e):
    print(json.dumps(e), flush=True)
def call(key, finish, text, tokens_out=100, cut=None):
    d = os.path.join(".rekindle", "cache", "v1", key[:2]); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, key[2:] + ".json"), "w") as f:
        json.dump({"version": 1, "digest": "x", "payload": {"key": key, "response": {
            "text": text, "finish_reason": finish, "usage": {}, "model": "m"}}}, f)
    extra = {"finish_reason": finish, "cut": cut} if cut else {}
    ev(event="model_call", role="code", key=key, provider="local", model="fake.gguf", cache_hit=False,
       tokens_in=300, tokens_out=tokens_out, cost=0.0, seconds=1.5, **extra)
    os.makedirs(".rekindle", exist_ok=True)
    with open(os.path.join(".rekindle", "journal.jsonl"), "a") as f:
        f.write(json.dumps({"seq": 0, "prev": "", "hash": "", "kind": "model_call"}) + "\n")
def write_code():
    d = os.path.join("plain_modules", module, "code"); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "solution.py"), "w") as f:
        f.write(os.environ.get("FAKE_CODE", ""))
def summary(ok):
    ev(event="summary", rendered=1 if ok else 0, reused=0, model_calls=1, cache_hits=0, tokens_in=300,
       tokens_out=100, cost=0.0, seconds=1.0, ok=ok)
ev(event="start", render_id="r", modules=[module], functionalities=1)
ev(event="phase", module=module, id=1, phase="implement", attempt=1)
if mode == "ok":
    call("aa" + "0" * 62, "stop", "--- FILE: solution.py\n...")
    write_code(); summary(True); sys.exit(0)
if mode == "gave_up":
    call("ab" + "0" * 62, "stop", "x"); write_code()
    ev(event="phase", module=module, id=1, phase="fix_unit_tests", attempt=1)
    call("ac" + "0" * 62, "stop", "y")
    ev(event="failed", module=module, id=1, reason="functionality 1 of module x failed: its unit tests still fail")
    summary(False); sys.exit(1)
if mode == "runaway":
    call("ad" + "0" * 62, "length", "self.assertEqual(f(1), 2)\n" * 50, tokens_out=2048); write_code()
    ev(event="failed", module=module, id=1, reason="functionality 1 failed: its unit tests still fail")
    summary(False); sys.exit(1)
if mode in ("gave_up_after_a_trailing_copy", "cut_inside_a_block"):
    between = mode == "gave_up_after_a_trailing_copy"
    why = "a second block for solution.py" if between else "a line like `x = 1` more than 8 times in one file"
    call("b2" + "0" * 62, "repetition", "--- FILE: solution.py\nx = 1\n--- END FILE\n", cut=why); write_code()
    ev(event="failed", module=module, id=1, reason="functionality 1 failed: its unit tests still fail")
    summary(False); sys.exit(1)
if mode == "format":
    call("ae" + "0" * 62, "stop", "no blocks")
    call("af" + "0" * 62, "stop", "still no blocks")
    ev(event="failed", module=module, id=1, reason="the model's reply for functionality 1 of module x could not be used: no file block")
    summary(False); sys.exit(1)
if mode == "hang":
    call("b0" + "0" * 62, "stop", "x"); write_code()
    # A test script in a process group of its own, as rekindle runs them; it must be killed too.
    child = subprocess.Popen(["sleep", "300"], start_new_session=False, preexec_fn=os.setpgrp)
    with open("child.pid", "w") as f: f.write(str(child.pid))
    signal_ignored = os.environ.get("FAKE_IGNORE_INT")
    if signal_ignored:
        import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(300)
if mode == "placeholder":
    call("b1" + "0" * 62, "stop", "--- FILE: solution.py\n<the whole file>\n--- END FILE\n--- FILE: test_solution.py\n<the whole file> \n--- END FILE\n")
    write_code()
    ev(event="failed", module=module, id=1, reason="functionality 1 failed: its unit tests still fail")
    summary(False); sys.exit(1)
if mode == "env":
    print("error: the provider is unreachable", file=sys.stderr); sys.exit(2)
'''

GOOD = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
BAD = "def truncate_number(number: float) -> float:\n    return number\n"


class Harness(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-test-"))
        self.fake = self.tmp / "rekindle"
        self.fake.write_text(FAKE)
        self.fake.chmod(0o755)
        shutil.copytree(humaneval.SCRIPTS, self.tmp / "scripts")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def render(self, mode, code="", timeout=30.0, **env):
        os.environ["FAKE_MODE"] = mode
        os.environ["FAKE_CODE"] = code
        for k, v in env.items():
            os.environ[k] = v
        try:
            spec = humaneval.make_project(PROBLEM, self.tmp)
            r = common.render(str(self.fake), spec, common.ModelArgs(), timeout, spec.parent / ".bench")
        finally:
            for k in ["FAKE_MODE", "FAKE_CODE", *env]:
                os.environ.pop(k, None)
        code_dir = spec.parent / "plain_modules" / spec.stem / "code"
        hidden = humaneval.score(PROBLEM, code_dir, 20, sys.executable) if (code_dir / "solution.py").exists() else None
        passed = bool(hidden and hidden["passed"])
        return r, passed, common.classify(r, passed if r.ok else None)

    def test_pass(self):
        r, passed, cls = self.render("ok", GOOD)
        self.assertTrue(r.ok)
        self.assertTrue(passed)
        self.assertIsNone(cls)
        self.assertEqual(r.totals()["model_calls"], 1)
        self.assertEqual(r.journal_calls, 1)

    def test_a_check_that_names_the_entry_point_calls_the_candidate(self):
        # HumanEval/33's check compares candidate(x) with sort_third(x): the official harness
        # runs prompt, completion and test as one program, so both are the candidate.
        problem = {
            "task_id": "HumanEval/33",
            "prompt": "\n\ndef sort_third(l: list):\n    \"\"\"Sorts every third.\"\"\"\n",
            "entry_point": "sort_third",
            "test": "\n\ndef check(candidate):\n    assert tuple(candidate([3, 2, 1, 0])) == tuple(sort_third([3, 2, 1, 0]))\n"
            "    assert tuple(candidate([5, 6, 3, 4, 8, 9, 2])) == tuple([2, 6, 3, 4, 8, 9, 5])\n",
        }
        code_dir = self.tmp / "code33"
        code_dir.mkdir()
        (code_dir / "solution.py").write_text(
            "def sort_third(l: list):\n    l = list(l)\n    l[::3] = sorted(l[::3])\n    return l\n"
        )
        self.assertEqual(humaneval.score(problem, code_dir, 20, sys.executable), {"passed": True, "detail": None})
        (code_dir / "solution.py").write_text("def sort_third(l: list):\n    return list(l)\n")
        verdict = humaneval.score(problem, code_dir, 20, sys.executable)
        self.assertFalse(verdict["passed"])
        self.assertIn("a hidden test failed", verdict["detail"])

    def test_wrong(self):
        r, passed, cls = self.render("ok", BAD)
        self.assertFalse(passed)
        self.assertEqual(cls, "wrong")

    def test_code_that_exits_or_prints_a_verdict_fails(self):
        _, passed, cls = self.render("ok", 'print(\'{"passed": true}\')\nimport os\nos._exit(0)\n')
        self.assertFalse(passed)
        self.assertEqual(cls, "wrong")

    def test_gave_up(self):
        r, passed, cls = self.render("gave_up", GOOD)
        self.assertEqual(cls, "gave_up")
        self.assertTrue(passed, "the code left on disk is still scored")
        self.assertEqual(r.totals()["model_calls"], 2)

    def test_a_guard_cut_between_whole_blocks_is_no_runaway(self):
        _, _, cls = self.render("gave_up_after_a_trailing_copy", BAD)
        self.assertEqual(cls, "gave_up")
        _, _, cls = self.render("cut_inside_a_block", BAD)
        self.assertEqual(cls, "runaway")

    def test_runaway(self):
        r, _, cls = self.render("runaway", GOOD)
        self.assertEqual(cls, "runaway")
        s = common.signals(r)
        self.assertEqual(s["cap_hits"], 1)
        self.assertEqual(s["repetitive_replies"], 1)

    def test_format(self):
        r, _, cls = self.render("format")
        self.assertEqual(cls, "format")
        self.assertEqual(common.signals(r)["format_retries"], 1)

    def test_placeholder_replies_are_a_format_failure(self):
        r, _, cls = self.render("placeholder", "<the whole file>\n")
        self.assertEqual(cls, "format")
        self.assertEqual(common.signals(r)["placeholder_replies"], 1)

    def test_timeout_kills_everything(self):
        for ignore in ("", "1"):
            started = time.monotonic()
            r, _, cls = self.render("hang", GOOD, timeout=2.0, FAKE_IGNORE_INT=ignore)
            self.assertLess(time.monotonic() - started, 30)
            self.assertTrue(r.timed_out)
            self.assertEqual(cls, "timeout")
            pid = int((r.spec.parent / "child.pid").read_text())
            time.sleep(0.3)
            self.assertFalse(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2],
                             "the script in its own process group was killed")

    def test_environment_error(self):
        r, _, cls = self.render("env")
        self.assertEqual(r.exit_code, 2)
        self.assertEqual(cls, "error")


class Completion(unittest.TestCase):
    """probe.py --completion: what the plain completion reply becomes as solution.py."""

    def setUp(self):
        import probe

        self.probe = probe
        self.problem = {**PROBLEM, "prompt": "from typing import List\n" + PROBLEM["prompt"]}

    def test_the_first_python_block_is_the_module_with_the_imports_it_left_out(self):
        reply = "Here:\n```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```\n```python\nprint(1)\n```"
        module = self.probe.completed_module(self.problem, reply)
        self.assertEqual(module, "from typing import List\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n")

    def test_a_body_alone_goes_after_the_prompt(self):
        module = self.probe.completed_module(self.problem, "```python\n    return number % 1.0\n```")
        self.assertTrue(module.startswith(self.problem["prompt"]), module)
        self.assertTrue(module.endswith("    return number % 1.0\n"), module)

    def test_the_request_has_no_grammar_and_shows_the_prompt_as_code(self):
        r = self.probe.completion_request(self.problem)
        self.assertIsNone(r["constraint"])
        self.assertEqual(r["sampling"]["temperature"], 0.0)
        self.assertIn("```python\n" + self.problem["prompt"] + "```", r["messages"][1]["content"])


class Spec(unittest.TestCase):
    def test_prompt_goes_in_verbatim_in_a_fence(self):
        text = humaneval.spec_text(PROBLEM)
        self.assertIn("  ```python\n  def truncate_number(number: float) -> float:\n", text)
        self.assertIn("      >>> truncate_number(3.5)\n", text)
        self.assertNotIn("check(", text, "the hidden tests stay out of the spec")

    def test_config(self):
        c = multi.read_config(Path(multi.CORPUS_EXAMPLES) / "hello-world" / "python" / "config.yaml")
        if c:
            self.assertEqual(c["conformance-tests-script"], "../../scripts/run_conformance_tests_python.sh")
            self.assertEqual(c["verbose"], "true")

    def test_every_project_has_an_acceptance_script(self):
        for name in multi.PROJECTS:
            self.assertTrue((multi.ACCEPTANCE / f"{name}.sh").is_file(), name)

    def test_a_project_is_copied_without_what_a_render_wrote_in_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "p", Path(tmp) / "copy"
            for f in ["p.plain", "config.yaml", "build/app.py", "plain_modules/p/code/app.py",
                      ".rekindle/journal.jsonl", "rekindle.lock", "scripts/build/keep.sh"]:
                (src / f).parent.mkdir(parents=True, exist_ok=True)
                (src / f).write_text("x\n")
            multi.copy_project("hello-world", Path(tmp) / "hw")
            common.copy_tree(src, dst)
            copied = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
            # A folder named build below the project's top is the project's own.
            self.assertEqual(copied, ["config.yaml", "p.plain", "scripts/build/keep.sh"])
            self.assertTrue((Path(tmp) / "hw" / "hello-world" / "hello-world.plain").is_file())
            self.assertFalse((Path(tmp) / "hw" / "hello-world" / "plain_modules").exists())

    def test_placeholder(self):
        self.assertTrue(common.placeholder("--- FILE: a.py\n<the whole file>\n--- END FILE\n"))
        self.assertFalse(common.placeholder("--- FILE: a.py\nprint(1)\n--- END FILE\n--- FILE: b.py\n<x>\n--- END FILE\n"))
        self.assertFalse(common.placeholder("no blocks"))

    def test_acceptance_scripts_pass_the_reference_programs_and_fail_others(self):
        ref = multi.ACCEPTANCE / "reference"
        for name in multi.PROJECTS:
            folder = ref / ("hello-world" if name == "plainlang-hello-world" else name)
            self.assertTrue(multi.acceptance(name, folder)["passed"], name)
            # A program that does something else, here another project's, fails.
            other = ref / ("word-count" if "hello" in name else "hello-world")
            self.assertFalse(multi.acceptance(name, other)["passed"], name)

    def test_repetition(self):
        self.assertTrue(common.repetitive("    self.assertEqual(f(10.000001), 0.0)\n" * 9))
        self.assertFalse(common.repetitive("a = 1\n" * 40))
        self.assertFalse(common.repetitive("def f():\n    return 1\n"))


if __name__ == "__main__":
    unittest.main()
