#!/usr/bin/env python3
"""`rekindle init --from-code` on the small programs under bench/from-code/: how many of each
program's own tests pass against the code rendered from the drafted spec (issue 13).

    bench/from_code.py [--programs textstats,gradebook] [--runs 1] [--rekindle BIN]
                       [--provider local] [--model-path GGUF] [--base-url URL] [--model NAME]
                       [--timeout S] [--keep DIR] [--commit SHA] [--out FILE]

Each run copies the program to a fresh folder `src/` and runs

    rekindle init proj --from-code src --yes --format json [model options]

there. The program's tests (`test_*.py`) sit in `src/` like any program's, and rekindle never
shows them to the model (init reads them only to score the render, in the sandbox). From
`proj/.rekindle/` it counts the draft's model calls (the stored conversation's replies) and the
render's (the journal's `model_call` records). Prints a table; writes JSON (default
`bench/results/from_code-DATE.json`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "bench" / "from-code"


def own_tests(program: Path) -> int:
    """The test methods of the program's test_*.py files."""
    return sum(
        sum(1 for line in f.read_text().splitlines() if line.lstrip().startswith("def test"))
        for f in program.rglob("test_*.py")
    )


def counts(proj: Path) -> dict:
    """Model calls and seconds of the draft (conversation) and the render (journal)."""
    out = {"draft_calls": 0, "render_calls": 0, "render_model_seconds": 0.0}
    conv = proj / ".rekindle" / "conversations"
    if conv.is_dir():
        for f in conv.glob("*.json"):
            c = json.loads(f.read_text())
            out["draft_calls"] += sum(1 for t in c.get("turns", []) if t.get("role") == "assistant")
    journal = proj / ".rekindle" / "journal.jsonl"
    if journal.is_file():
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            if r.get("kind") == "model_call" and not r.get("cache_hit"):
                out["render_calls"] += 1
                out["render_model_seconds"] += r.get("seconds", 0.0)
    out["render_model_seconds"] = round(out["render_model_seconds"], 1)
    return out


def run_one(rekindle: str, program: Path, model_args: list[str], timeout: float, keep: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"fromcode-{program.name}-"))
    try:
        shutil.copytree(program, work / "src", ignore=shutil.ignore_patterns("__pycache__"))
        cmd = [rekindle, "init", "proj", "--from-code", "src", "--yes", "--format", "json", *model_args]
        start = time.monotonic()
        p = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        timed_out = False
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGINT)
            try:
                stdout, stderr = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                stdout, stderr = p.communicate()
        seconds = round(time.monotonic() - start, 1)
        said = {}
        for line in reversed(stdout.splitlines()):
            try:
                said = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
        proj = work / "proj"
        spec = proj / "proj.plain"
        r = {
            "program": program.name,
            "exit_code": p.returncode,
            "timed_out": timed_out,
            "seconds": seconds,
            "rendered": said.get("rendered"),
            "passed": said.get("passed"),
            "tests": said.get("tests"),
            "own_tests": own_tests(program),
            "outcome": said.get("outcome"),
            **counts(proj),
            "spec": spec.read_text() if spec.is_file() else None,
            "stderr_tail": stderr[-3000:],
        }
        return r
    finally:
        if keep:
            dest = keep / f"{program.name}-{int(time.time())}"
            shutil.copytree(work, dest, symlinks=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", default=",".join(sorted(p.name for p in PROGRAMS.iterdir() if p.is_dir())))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rekindle", default=os.environ.get("REKINDLE_BIN", str(REPO / "target/release/rekindle")))
    ap.add_argument("--provider", default="local")
    ap.add_argument("--model-path")
    ap.add_argument("--base-url")
    ap.add_argument("--model")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--commit")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    model_args = ["--provider", a.provider]
    for flag, value in (("--model-path", a.model_path), ("--base-url", a.base_url), ("--model", a.model)):
        if value:
            model_args += [flag, value]
    commit = a.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip()
    out = a.out or REPO / "bench" / "results" / f"from_code-{datetime.date.today()}.json"
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
    results = []
    meta = {
        "commit": commit,
        "rekindle": a.rekindle,
        "model_args": model_args,
        "nproc": os.cpu_count(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    for name in a.programs.split(","):
        program = PROGRAMS / name.strip()
        if not program.is_dir():
            sys.exit(f"no program {name} in {PROGRAMS}")
        for run in range(1, a.runs + 1):
            r = run_one(a.rekindle, program, model_args, a.timeout, a.keep)
            r["run"] = run
            results.append(r)
            print(f"{name} run {run}: rendered {r['rendered']}, {r['passed']}/{r['own_tests']} tests pass, exit {r['exit_code']}, "
                  f"{r['draft_calls']} draft + {r['render_calls']} render calls, {r['seconds']} s", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    # The program's tests counted here, not taken from rekindle. A render that failed scores 0
    # of them; what the code it committed before failing passes is reported beside.
    passed = sum(r["passed"] or 0 for r in results if r["rendered"])
    partial = sum(r["passed"] or 0 for r in results)
    total = sum(own_tests(PROGRAMS / r["program"]) for r in results)
    summary = {
        "rendered": sum(1 for r in results if r["rendered"]),
        "runs": len(results),
        "passed": passed,
        "tests": total,
        "share": round(passed / total, 3) if total else 0.0,
        "passed_including_failed_renders": partial,
        "median_seconds": statistics.median(r["seconds"] for r in results) if results else None,
    }
    print(json.dumps(summary))
    out.write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
