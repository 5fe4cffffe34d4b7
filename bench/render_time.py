#!/usr/bin/env python3
"""A render from scratch with the embedded model, timed, and its model time against the engine's
prediction.

    bench/render_time.py [--project hello-world] [--runs 3] [--rekindle BIN] [--model-path GGUF]
                         [--rates-bin BIN] [--lookup on|off|both] [--commit SHA] [--out FILE]

Each run copies `examples/` to a fresh temporary folder and runs `rekindle render --yes
--format json` there (no response cache, no earlier build). From the `model_call` events it sums
the calls, the tokens (read, reused from the engine's KV cache, generated) and the seconds of the
model calls, and predicts the model time from the engine's own rates:

    sum over calls of (tokens_in - cached_tokens) / prompt_rate + tokens_out / gen_rate

The rates come from the `local_rates` example (a plain llama.cpp loop, measured before the first
and after the last run, medians of both). They are token-by-token rates, as the engine decodes
by default; with prompt lookup decoding (`REKINDLE_LOCAL_LOOKUP=1`, off by default) a call that
copies what it read could generate faster than they predict where a batch is cheap. `--lookup
both` (the default) renders with it on and off (`REKINDLE_LOCAL_LOOKUP=1` / `0`), alternating,
so the two are compared side by side on the same machine state; the prediction measures the
engine's overhead with lookup off, and what lookup saves or costs with it on. Prints a table and the medians; writes JSON (default
`bench/results/render_time-PROJECT-DATE.json`). Needs a release build with `--features local`
and its `local_rates` example:

    cargo build --release -p rekindle --features local
    cargo build --release -p rekindle-llm --features local --example local_rates

Run it on an otherwise idle machine; every number is wall-clock.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rates(rates_bin: Path, model: Path) -> dict:
    out = subprocess.run(
        [str(rates_bin), "--model", str(model), "--rounds", "3"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def predict(calls: list[dict], prompt_rate: float, gen_rate: float) -> float:
    return sum(
        (c["tokens_in"] - c.get("cached_tokens", 0)) / prompt_rate + c["tokens_out"] / gen_rate
        for c in calls
        if not c["cache_hit"]
    )


def one_run(rekindle: Path, project: str, model: Path | None, lookup: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="rekindle-render-time-") as tmp:
        # Without what an earlier render wrote into the project (scripts/setup-and-run.sh
        # renders examples/hello-world in place): each run starts from scratch.
        outputs = {"build", "plain_modules", ".rekindle", "rekindle.lock"}
        top = (REPO / "examples" / project).resolve()
        shutil.copytree(
            REPO / "examples",
            Path(tmp) / "examples",
            ignore=lambda d, names: [n for n in names if n in outputs] if Path(d).resolve() == top else [],
        )
        folder = Path(tmp) / "examples" / project
        spec = next(folder.glob("*.plain"))
        env = dict(os.environ)
        if model:
            env["REKINDLE_MODEL_PATH"] = str(model)
        env["REKINDLE_LOCAL_LOOKUP"] = "1" if lookup else "0"
        start = time.monotonic()
        p = subprocess.run(
            [str(rekindle), "render", spec.name, "--yes", "--format", "json"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - start
        events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        calls = [e for e in events if e.get("event") == "model_call"]
        return {
            "lookup": lookup,
            "exit_code": p.returncode,
            "wall_seconds": round(wall, 2),
            "model_calls": len(calls),
            "calls": [
                {
                    k: c.get(k)
                    for k in (
                        "role",
                        "cache_hit",
                        "tokens_in",
                        "cached_tokens",
                        "tokens_out",
                        "finish_reason",
                        "temperature",
                        "seconds",
                    )
                }
                for c in calls
            ],
            "model_seconds": round(sum(c["seconds"] for c in calls), 2),
            "stderr_tail": p.stderr[-2000:] if p.returncode else "",
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default="hello-world")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rekindle", type=Path, default=REPO / "target/release/rekindle")
    ap.add_argument("--rates-bin", type=Path, default=REPO / "target/release/examples/local_rates")
    ap.add_argument(
        "--model-path",
        type=Path,
        default=Path(os.environ.get("REKINDLE_MODEL_PATH", "~/.cache/rekindle/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")).expanduser(),
    )
    ap.add_argument("--lookup", choices=["on", "off", "both"], default="both")
    ap.add_argument("--commit", help="the commit the binary was built from (default: HEAD)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    for f in (a.rekindle, a.rates_bin, a.model_path):
        if not f.exists():
            sys.exit(f"{f} does not exist (see the build commands in this script's help)")
    before = rates(a.rates_bin, a.model_path)
    print(f"engine rates before: {before['prompt_tokens_per_s']} prompt tok/s, {before['gen_tokens_per_s']} gen tok/s", flush=True)
    variants = {"on": [True], "off": [False], "both": [True, False]}[a.lookup]
    runs = []
    for i in range(a.runs):
        for lookup in variants:
            r = one_run(a.rekindle, a.project, a.model_path, lookup)
            runs.append(r)
            print(f"run {i + 1} (lookup {'on' if lookup else 'off'}): exit {r['exit_code']}, {r['model_calls']} calls, {r['wall_seconds']} s wall, {r['model_seconds']} s in model calls", flush=True)
    after = rates(a.rates_bin, a.model_path)
    print(f"engine rates after: {after['prompt_tokens_per_s']} prompt tok/s, {after['gen_tokens_per_s']} gen tok/s")
    pr = statistics.median([before["prompt_tokens_per_s"], after["prompt_tokens_per_s"]])
    gr = statistics.median([before["gen_tokens_per_s"], after["gen_tokens_per_s"]])
    for r in runs:
        r["predicted_model_seconds"] = round(predict(r["calls"], pr, gr), 2)
        r["model_over_predicted"] = round(r["model_seconds"] / r["predicted_model_seconds"], 3) if r["predicted_model_seconds"] else None
    summary = {}
    for lookup in variants:
        rs = [r for r in runs if r["lookup"] == lookup]
        summary["lookup_on" if lookup else "lookup_off"] = {
            "runs": len(rs),
            "passed_runs": sum(r["exit_code"] == 0 for r in rs),
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in rs),
            "median_model_calls": statistics.median(r["model_calls"] for r in rs),
            "median_model_seconds": statistics.median(r["model_seconds"] for r in rs),
            "median_predicted_model_seconds": statistics.median(r["predicted_model_seconds"] for r in rs),
            "median_model_over_predicted": statistics.median(r["model_over_predicted"] or 0 for r in rs),
        }
    print()
    print("run  lookup  exit  calls  wall s  model s  predicted s  model/predicted")
    for i, r in enumerate(runs):
        print(f"{i + 1:>3}  {'on' if r['lookup'] else 'off':>6}  {r['exit_code']:>4}  {r['model_calls']:>5}  {r['wall_seconds']:>6}  {r['model_seconds']:>7}  {r['predicted_model_seconds']:>11}  {r['model_over_predicted']}")
    print(json.dumps(summary, indent=1))
    commit = a.commit or subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True).stdout.strip())
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "project": a.project,
        "rekindle": str(a.rekindle),
        "commit": commit,
        "tree_dirty": dirty,
        "model_path": str(a.model_path),
        "lookup": a.lookup,
        "nproc": os.cpu_count(),
        "rates_before": before,
        "rates_after": after,
        "label": a.label,
    }
    out = a.out or REPO / "bench/results" / f"render_time-{a.project}-{datetime.date.today()}{'-' + a.label if a.label else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
