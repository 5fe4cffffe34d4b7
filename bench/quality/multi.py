"""The multi-functionality set: whole example projects, each rendered from scratch in a copy of its
folder (with whatever it reaches by relative path), then checked three ways: did the render finish,
do its conformance tests pass when run again, and does the program pass the hidden acceptance
script `acceptance/<name>.sh` that rekindle never sees."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import common

EXAMPLES = common.REPO / "examples"
CORPUS_EXAMPLES = common.REPO.parent / "shared" / "corpus" / "plain" / "plainlang-examples"
ACCEPTANCE = common.HERE / "acceptance"


# name: (root folder, folders under it to copy, the project folder, the spec file)
PROJECTS = {
    "hello-world": (EXAMPLES, ["hello-world", "scripts"], "hello-world", "hello-world.plain"),
    # The reference's own example, unchanged: its config.yaml names ../../scripts/.
    "plainlang-hello-world": (
        CORPUS_EXAMPLES,
        ["hello-world/python", "scripts"],
        "hello-world/python",
        "hello-world-python.plain",
    ),
    "word-count": (EXAMPLES, ["word-count", "scripts"], "word-count", "word-count.plain"),
    "roman-numerals": (EXAMPLES, ["roman-numerals", "scripts"], "roman-numerals", "roman-numerals.plain"),
    "shopping-cart": (EXAMPLES, ["shopping-cart", "scripts"], "shopping-cart", "shopping-cart.plain"),
}

ACCEPTANCE_TIMEOUT = 120.0


def read_config(path: Path) -> dict[str, str]:
    """The flat `key: value` lines of a config.yaml (all the benchmark needs from it)."""
    out = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_-]+)\s*:\s*(.*?)\s*(#.*)?$", line)
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1).replace("_", "-")] = value
    return out


def copy_project(name: str, dest: Path) -> Path:
    root, folders, project, spec = PROJECTS[name]
    for f in folders:
        common.copy_tree(root / f, dest / f)
    return dest / project / spec


def conformance(spec: Path, code: Path, tests: Path, timeout: float) -> dict:
    """Runs the project's conformance script on every functionality's tests folder again."""
    config = read_config(spec.parent / "config.yaml")
    script = config.get("conformance-tests-script")
    if not script:
        return {"passed": None, "detail": "the project has no conformance-tests-script"}
    script_path = (spec.parent / script).resolve()
    folders = sorted(p for p in tests.glob("f[0-9][0-9]*") if p.is_dir()) if tests.is_dir() else []
    if not folders:
        return {"passed": False, "detail": "no conformance tests were written"}
    failed = []
    for folder in folders:
        log = folder.parent / f".bench-{folder.name}.txt"
        with open(log, "wb") as out:
            proc = common.run_limited([str(script_path), str(code), str(folder)], cwd=code, timeout=timeout,
                                      stdout=out, stderr=out, grace=2.0)
        if proc.exit_code != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-600:]
            failed.append(f"{folder.name}: exit {proc.exit_code}: {tail}")
        log.unlink(missing_ok=True)
    return {"passed": not failed, "folders": len(folders), "detail": "\n".join(failed) or None}


def acceptance(name: str, code: Path) -> dict:
    script = ACCEPTANCE / f"{name}.sh"
    if not code.is_dir():
        return {"passed": False, "detail": "no code folder"}
    with tempfile.TemporaryDirectory(prefix="rekindle-quality-acc-") as tmp:
        log = Path(tmp) / "log.txt"
        work = Path(tmp) / "work"
        work.mkdir()
        with open(log, "wb") as out:
            proc = common.run_limited(["bash", str(script), str(code)], cwd=work, timeout=ACCEPTANCE_TIMEOUT,
                                      stdout=out, stderr=out, grace=2.0)
        text = log.read_text(encoding="utf-8", errors="replace")
    return {"passed": proc.exit_code == 0, "detail": text[-1500:] if proc.exit_code != 0 else None}


def run(args, rekindle: str, models: common.ModelArgs) -> int:
    names = [n.strip() for n in args.projects.split(",")] if args.projects else list(PROJECTS)
    for n in names:
        if n not in PROJECTS:
            sys.exit(f"unknown project {n}; known: {', '.join(PROJECTS)}")
    scratch = Path(args.scratch).resolve() if args.scratch else Path(tempfile.mkdtemp(prefix="rekindle-quality-multi-"))
    scratch.mkdir(parents=True, exist_ok=True)
    out = Path(args.out).resolve() if args.out else common.default_out("multi", args.label)
    options = {"set": "multi", "projects": names, "runs": args.runs, "timeout": args.timeout, "label": args.label}
    meta = common.environment(rekindle, models, options, args.rekindle_commit)
    print(f"multi: {', '.join(names)} x {args.runs}, scratch {scratch}, results {out}", file=sys.stderr)
    rows: list[dict] = []
    for name in names:
        for run_no in range(1, args.runs + 1):
            dest = scratch / f"{name}-run{run_no}"
            if dest.exists():
                shutil.rmtree(dest)
            spec = copy_project(name, dest)
            p = common.plan(rekindle, spec)
            entry = (p or {}).get("modules", [{}])[-1] if p else {}
            functionalities = len(entry.get("functionalities", [])) if entry else None
            module = entry.get("name") if entry else spec.stem
            timeout = args.timeout or 600.0 * max(1, functionalities or 1)
            r = common.render(rekindle, spec, models, timeout, dest / ".bench")
            config = read_config(spec.parent / "config.yaml")
            build = spec.parent / config.get("build-folder", "plain_modules") / (module or spec.stem)
            code, tests = build / "code", build / "tests"
            conf = conformance(spec, code, tests, float(config.get("test-script-timeout", 120))) if r.ok else None
            acc = acceptance(name, code)
            ok = bool(r.ok and conf and conf["passed"] and acc["passed"])
            row = {
                "project": name,
                "run": run_no,
                "functionalities": functionalities,
                "timeout": timeout,
                "passed": ok,
                "failure_class": None if ok else (common.classify(r, bool(acc["passed"] and conf and conf["passed"]))),
                **common.render_row(r),
                "conformance_passed": conf["passed"] if conf else None,
                "conformance_detail": conf.get("detail") if conf else None,
                "acceptance_passed": acc["passed"],
                "acceptance_detail": acc["detail"],
            }
            rows.append(row)
            print(
                f"{name} run {run_no}: {'pass' if ok else 'FAIL ' + str(row['failure_class'])}, rendered {r.ok}, "
                f"acceptance {acc['passed']}, {row['model_calls']} calls, {row['seconds']:.0f}s",
                file=sys.stderr,
            )
            common.write_json(out, result(meta, rows, names, args.runs))
            if not args.keep:
                shutil.rmtree(dest, ignore_errors=True)
    if not args.keep and not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    elif args.keep:
        print(f"kept the projects in {scratch}", file=sys.stderr)
    data = result(meta, rows, names, args.runs)
    common.write_json(out, data)
    print_table(data)
    print(f"\nresults: {out}")
    return 0


def result(meta: dict, rows: list[dict], names: list[str], runs: int) -> dict:
    per_project = {}
    for name in names:
        mine = [r for r in rows if r["project"] == name]
        if not mine:
            continue
        secs = sorted(r["seconds"] for r in mine)
        calls = sorted(r["model_calls"] for r in mine)
        per_project[name] = {
            "runs": len(mine),
            "passed_runs": sum(1 for r in mine if r["passed"]),
            "all_passed": all(r["passed"] for r in mine) and len(mine) == runs,
            "rendered_runs": sum(1 for r in mine if r["rendered"]),
            "median_seconds": secs[len(secs) // 2] if len(secs) % 2 else round((secs[len(secs) // 2 - 1] + secs[len(secs) // 2]) / 2, 1),
            "median_model_calls": calls[len(calls) // 2] if len(calls) % 2 else (calls[len(calls) // 2 - 1] + calls[len(calls) // 2]) / 2,
        }
    summary = {
        "renders": len(rows),
        "planned": len(names) * runs,
        "complete": len(rows) == len(names) * runs,
        "passed": sum(1 for r in rows if r["passed"]),
        "total_model_calls": sum(r["model_calls"] for r in rows),
        "total_tokens_in": sum(r["tokens_in"] for r in rows),
        "total_tokens_out": sum(r["tokens_out"] for r in rows),
        "total_seconds": round(sum(r["seconds"] for r in rows), 1),
        "failure_classes": {c: sum(1 for r in rows if r["failure_class"] == c) for c in common.FAILURE_CLASSES},
        "projects": per_project,
    }
    meta = dict(meta, models_used=common.models_seen(rows))
    return {"kind": "multi", "meta": meta, "summary": summary, "renders": rows}


def yes_no(v) -> str:
    return "-" if v is None else ("yes" if v else "no")


def print_table(data: dict) -> None:
    rows = [
        [
            r["project"],
            r["run"],
            yes_no(r["rendered"]),
            yes_no(r["conformance_passed"]),
            yes_no(r["acceptance_passed"]),
            r["failure_class"] or "",
            r["model_calls"],
            r["tokens_in"],
            r["tokens_out"],
            f"{r['seconds']:.0f}",
        ]
        for r in data["renders"]
    ]
    print(common.table(["project", "run", "rendered", "conformance", "acceptance", "failure", "calls", "tok in",
                        "tok out", "s"], rows))
    print()
    for name, p in data["summary"]["projects"].items():
        print(f"{name}: {p['passed_runs']}/{p['runs']} runs pass; median {p['median_model_calls']} calls, "
              f"{p['median_seconds']} s")
    m = data["meta"]
    print(f"rekindle {m['rekindle_commit']}{' (dirty tree)' if m['rekindle_tree_dirty'] else ''}, "
          f"models {', '.join(m['models_used']) or '-'}, nproc {m['nproc']}, {m['date']}")
