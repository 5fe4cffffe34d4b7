"""The prompt probe: how often the *first* implementation reply already passes HumanEval's hidden
tests, for a variant of the prompt templates, without a whole render.

    bench/quality/.venv/bin/python bench/quality/probe.py --templates DIR --first 40 \
        --probe target/release/examples/probe --model-path M --out FILE.json

It renders `system.j2` and `implement.j2` from DIR (a copy of crates/rekindle-render/prompts with
the change to try) with jinja2, as rekindle renders them with minijinja for a project's first
call, sends each request to the embedded model with the sampling the render uses for it (greedy,
file-block grammar, 2,048 tokens, the render's stop strings) through the `probe` example, takes
solution.py from the reply and scores it with the problem's own check(). The probe reproduces the
render's first request: with the repository's own templates its replies are those of the render
(HumanEval/20's and /0's were checked, byte for byte, against a kept run's response cache).

It measures one call, not the loop: a variant that wins here still has to win on `run.py`.

With `--completion` it measures instead what the issue calls "one greedy shot of the same model":
no spec and no file blocks, the problem's prompt as code to complete ("Complete the following
Python function…", a plain assistant system prompt, no grammar, 1,024 tokens), the first
```python block of the reply taken as solution.py (after the prompt's own code when the reply
leaves the function's definition out, after the prompt's import lines when it leaves those out).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import humaneval

TEMPLATES = common.REPO / "crates" / "rekindle-render" / "prompts"


def sections(spec: str) -> dict[str, list[str]]:
    """The spec's sections, each a list of its items' texts (list markers and the items'
    indentation taken off), as rekindle's front end gives them to the prompts."""
    out: dict[str, list[str]] = {}
    current = None
    items: list[list[str]] = []
    for line in spec.split("\n---\n", 2)[-1].splitlines():
        m = re.fullmatch(r"\*\*\*(.+)\*\*\*", line.strip())
        if m:
            current = m.group(1).strip()
            items = []
            out[current] = items  # type: ignore[assignment]
            continue
        if current is None:
            continue
        if line.startswith("- "):
            items.append([line[2:]])
        elif items:
            items[-1].append(line[2:] if line.startswith("  ") else line)
    return {k: ["\n".join(i).strip("\n") for i in v] for k, v in out.items()}  # type: ignore[misc]


def jinja():
    """jinja2, installed into the benchmark's venv (which run.py makes) on first use."""
    try:
        import jinja2
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "jinja2==3.1.6"], check=True)
        import jinja2
    return jinja2


def messages(problem: dict, templates: Path) -> list[dict]:
    jinja2 = jinja()

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["indent2"] = lambda s: s.replace("\n", "\n  ")
    s = sections(humaneval.spec_text(problem))
    cx = {
        "definitions": s.get("definitions", []),
        "implementation_reqs": s.get("implementation reqs", []),
        "test_reqs": s.get("test reqs", []),
        "resources": [],
        "previous": [],
        "current": s["functional specs"][0],
        "acceptance_tests": [],
        "files": [],
        "left_out": [],
        "earlier_failure": None,
    }
    system = env.get_template("system.j2").render().rstrip()
    user = env.get_template("implement.j2").render(**cx).rstrip()
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def request(msgs: list[dict], temperature: float = 0.0, seed: int | None = None, top_p: float | None = None) -> dict:
    stop = ["--- FILE: conformance_tests/"] + [f"--- FILE: {n}" for n in ("README", "readme", "Readme")]
    sampling = {"temperature": temperature, "max_tokens": 2048, "stop": stop}
    if seed is not None:
        sampling["seed"] = seed
    if top_p is not None:
        sampling["top_p"] = top_p
    return {
        "model": "local",
        "messages": msgs,
        "sampling": sampling,
        "constraint": "file_blocks",
        "template_version": "",
    }


COMPLETION_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def completion_request(problem: dict) -> dict:
    """The plain completion request of `--completion`: the problem's prompt as code to complete."""
    user = (
        "Complete the following Python function. Reply with the whole function in one ```python block.\n\n"
        f"```python\n{problem['prompt']}```"
    )
    return {
        "model": "local",
        "messages": [{"role": "system", "content": COMPLETION_SYSTEM}, {"role": "user", "content": user}],
        "sampling": {"temperature": 0.0, "max_tokens": 1024},
        "constraint": None,
        "template_version": "",
    }


def completed_module(problem: dict, text: str) -> str:
    """solution.py from a `--completion` reply: its first ```python block (the whole reply when it
    has none), after the prompt's code when it leaves the function's definition out, after the
    prompt's import lines when it leaves those out."""
    found = re.findall(r"```(?:python)?\n(.*?)```", text, re.S)
    code = found[0] if found else text
    if f"def {problem['entry_point']}" not in code:
        return problem["prompt"] + code
    imports = [l for l in problem["prompt"].splitlines() if l.startswith(("import ", "from "))]
    missing = [l for l in imports if l not in code]
    return "\n".join(missing + [code])


def blocks(text: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"--- FILE: (\S+)\n(.*?)(?=--- END FILE|--- FILE: |\Z)", text, re.S):
        body = [line for line in m.group(2).splitlines() if not line.strip().startswith("```")]
        out[m.group(1)] = "\n".join(body) + "\n"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--templates", type=Path, default=TEMPLATES)
    ap.add_argument("--first", type=int)
    ap.add_argument("--ids")
    ap.add_argument("--probe", type=Path, required=True, help="the probe example binary")
    ap.add_argument("--model-path", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=0, help="instead of the greedy reply, N sampled replies per problem (seeds 1..N)")
    ap.add_argument("--temperature", type=float, default=0.7, help="the temperature of --samples (the render samples at 0.7)")
    ap.add_argument("--top-p", type=float, help="the top-p of --samples (the render's samples use 0.95; unset, none)")
    ap.add_argument("--completion", action="store_true", help="one greedy shot without the spec or file blocks (see above)")
    ap.add_argument("--print-prompt", action="store_true", help="print the first problem's prompt and stop")
    args = ap.parse_args()
    if args.completion and args.samples:
        ap.error("--completion is one greedy shot: it takes no --samples")
    problems = humaneval.select(humaneval.load_problems(), args.first, args.ids)
    if args.samples:
        reqs = [
            ({**p, "probe_id": f"{p['task_id']}#{k}"}, request(messages(p, args.templates), args.temperature, k, args.top_p))
            for p in problems
            for k in range(1, args.samples + 1)
        ]
    elif args.completion:
        reqs = [({**p, "probe_id": p["task_id"]}, completion_request(p)) for p in problems]
    else:
        reqs = [({**p, "probe_id": p["task_id"]}, request(messages(p, args.templates))) for p in problems]
    if args.print_prompt:
        for m in reqs[0][1]["messages"]:
            print(f"== {m['role']}\n{m['content']}")
        return
    replies_file = args.out.with_suffix(".replies.jsonl")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for p, r in reqs:
            f.write(json.dumps({"id": p["probe_id"], "request": r}) + "\n")
    t = time.time()
    subprocess.run(
        [str(args.probe), "--model", str(args.model_path), "--in", f.name, "--out", str(replies_file)],
        check=True,
    )
    replies = {}
    for line in replies_file.read_text().splitlines():
        v = json.loads(line)
        replies[v["id"]] = v
    rows = []
    for p, _ in reqs:
        v = replies[p["probe_id"]]
        text = v["response"]["text"]
        with tempfile.TemporaryDirectory(prefix="rekindle-probe-") as d:
            if args.completion:
                Path(d, humaneval.MODULE_FILE).write_text(completed_module(p, text))
            else:
                b = blocks(text)
                if humaneval.MODULE_FILE in b:
                    Path(d, humaneval.MODULE_FILE).write_text(b[humaneval.MODULE_FILE])
            verdict = humaneval.score(p, Path(d), 30, sys.executable)
        rows.append(
            {
                "id": p["probe_id"],
                "passed": verdict["passed"],
                "tokens_in": v["response"]["usage"]["input_tokens"],
                "tokens_out": v["response"]["usage"]["output_tokens"],
                "seconds": round(v["seconds"], 2),
                "finish_reason": v["response"]["finish_reason"],
            }
        )
        print(f"{p['probe_id']}: {'pass' if verdict['passed'] else 'FAIL'}, {rows[-1]['tokens_out']} out, {rows[-1]['seconds']}s")
    n = len(rows)
    summary = {
        "problems": n,
        "first_reply_passes": sum(r["passed"] for r in rows),
        "mean_tokens_out": round(sum(r["tokens_out"] for r in rows) / n, 1),
        "mean_seconds": round(sum(r["seconds"] for r in rows) / n, 2),
        "wall_seconds": round(time.time() - t, 1),
    }
    args.out.write_text(
        json.dumps(
            {
                "kind": "prompt-probe",
                "templates": str(args.templates),
                "model": str(args.model_path),
                "sampling": {"samples": args.samples, "temperature": args.temperature, "top_p": args.top_p} if args.samples else "greedy",
                "prompt": "completion" if args.completion else "implement",
                "summary": summary,
                "problems": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
