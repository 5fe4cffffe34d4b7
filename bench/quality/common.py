"""What both benchmark sets share: running `rekindle render` under a wall-clock limit, reading its
events, journal and response cache, classifying a failure, and writing results.

Standard library only. Everything rekindle reports is read from its documented outputs: the JSON
event lines of `render --format json`, `.rekindle/journal.jsonl` and `.rekindle/cache` beside the
spec. Nothing here knows about a particular model.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# Failure classes, in the order the classifier tries them (see classify()).
FAILURE_CLASSES = ("error", "format", "runaway", "timeout", "gave_up", "wrong")

# The reply is taken as having run away when one line (longer than this) repeats this often.
REPEAT_MIN_LINE = 12
REPEAT_MIN_COUNT = 8

# `rekindle render --max-tokens` when not given (crates/rekindle-cli/src/render_cmd.rs).
REKINDLE_DEFAULT_MAX_TOKENS = 2048


# --------------------------------------------------------------------------------------------
# processes


def _session_members(sid: int) -> list[int]:
    """Processes whose session id is `sid` (every process started under a render we started:
    rekindle puts its test scripts in process groups of their own, but they stay in its session)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            out.append(int(entry))
    return out


def kill_session(sid: int) -> None:
    """SIGKILL every process left in the session we started (by its id, never by name)."""
    for _ in range(3):
        pids = _session_members(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


@dataclasses.dataclass
class Proc:
    exit_code: int | None  # None: killed at the time limit
    timed_out: bool
    seconds: float


def run_limited(cmd: list[str], cwd: Path, timeout: float, stdout, stderr, stdin_data: bytes | None = None,
                env: dict | None = None, grace: float = 10.0) -> Proc:
    """Runs `cmd` at the lowest CPU priority in a session of its own. At `timeout` seconds it gets
    SIGINT (rekindle then stops its running test script and exits), and after `grace` seconds
    everything still in the session is killed. Stragglers are killed after a normal exit too."""
    started = time.monotonic()
    p = subprocess.Popen(
        ["nice", "-n", "19", *cmd],
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        env=env,
    )
    timed_out = False
    try:
        if stdin_data is not None:
            try:
                p.stdin.write(stdin_data)
                p.stdin.close()
            except BrokenPipeError:
                pass
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    except KeyboardInterrupt:
        kill_session(p.pid)
        p.wait()
        raise
    kill_session(p.pid)
    p.wait()
    seconds = time.monotonic() - started
    return Proc(exit_code=None if timed_out else p.returncode, timed_out=timed_out, seconds=seconds)


# --------------------------------------------------------------------------------------------
# a render and what it left behind


@dataclasses.dataclass
class ModelArgs:
    provider: str | None = None
    model: str | None = None
    model_path: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    max_tokens: int | None = None

    def flags(self) -> list[str]:
        out = []
        for flag, value in (
            ("--provider", self.provider),
            ("--model", self.model),
            ("--model-path", self.model_path),
            ("--base-url", self.base_url),
            ("--api-key-env", self.api_key_env),
            ("--max-tokens", self.max_tokens),
        ):
            if value is not None:
                out += [flag, str(value)]
        return out

    @property
    def max_tokens_effective(self) -> int:
        """The reply cap the render runs with: --max-tokens, else rekindle's default."""
        return self.max_tokens if self.max_tokens is not None else REKINDLE_DEFAULT_MAX_TOKENS


@dataclasses.dataclass
class Render:
    """One `rekindle render` of one project, as observed from outside."""

    spec: Path
    exit_code: int | None
    timed_out: bool
    seconds: float
    events: list[dict]
    calls: list[dict]  # ModelCall events, each with `finish_reason` and `repetitive` from the cache
    journal_calls: int
    stderr_tail: str

    @property
    def summary(self) -> dict | None:
        for e in reversed(self.events):
            if e.get("event") == "summary":
                return e
        return None

    @property
    def ok(self) -> bool:
        s = self.summary
        return self.exit_code == 0 and bool(s and s.get("ok"))

    @property
    def failed_reason(self) -> str | None:
        for e in reversed(self.events):
            if e.get("event") == "failed":
                return e.get("reason")
        return None

    def totals(self) -> dict:
        fresh = [c for c in self.calls if not c.get("cache_hit")]
        return {
            "model_calls": len(fresh),
            "cache_hits": len(self.calls) - len(fresh),
            "tokens_in": sum(c.get("tokens_in", 0) for c in fresh),
            "tokens_out": sum(c.get("tokens_out", 0) for c in fresh),
            "model_seconds": round(sum(c.get("seconds", 0.0) for c in fresh), 1),
        }

    def trace(self) -> list[str]:
        """The render's steps, one short line each: phases, model calls, test scripts, the end."""
        out = []
        for e in self.events:
            kind = e.get("event")
            if kind == "phase":
                a = e.get("attempt", 1)
                out.append(f"f{e.get('id')} {e.get('phase')}" + (f" #{a}" if a and a > 1 else ""))
            elif kind == "model_call":
                c = e  # the same dict as in self.calls, with finish_reason and repetitive
                flags = ""
                if c.get("finish_reason") == "length":
                    flags += " CAP"
                if c.get("repetitive"):
                    flags += " REPEAT"
                if c.get("placeholder"):
                    flags += " PLACEHOLDER"
                out.append(
                    f"  call {c.get('role')}: {c.get('tokens_in')} in / {c.get('tokens_out')} out, "
                    f"{c.get('seconds', 0):.1f}s{flags}"
                )
            elif kind == "script":
                out.append(f"  {e.get('kind')} tests: {e.get('outcome')} (exit {e.get('exit_code')})")
            elif kind == "committed":
                out.append(f"f{e.get('id')} committed")
            elif kind == "failed":
                out.append(f"failed: {e.get('reason')}")
            elif kind == "warning":
                out.append(f"warning: {e.get('message')}")
        if self.timed_out:
            out.append(f"killed at the time limit ({self.seconds:.0f}s)")
        return out


def read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a kill
        if isinstance(v, dict):
            out.append(v)
    return out


def cached_reply(cache_dir: Path, key: str) -> dict | None:
    """The response rekindle's cache holds for request `key` (its finish reason and text)."""
    if not key or len(key) < 3:
        return None
    path = cache_dir / "v1" / key[:2] / f"{key[2:]}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return (stored.get("payload") or {}).get("response")


def finish_reason(response: dict | None) -> str | None:
    if not response:
        return None
    r = response.get("finish_reason")
    if isinstance(r, str):
        return r
    if isinstance(r, dict) and r:
        return "other:" + str(next(iter(r.values())))
    return None


def repetitive(text: str) -> bool:
    """A reply that fell into a loop: one substantial line repeated many times."""
    lines = [l.strip() for l in text.splitlines() if len(l.strip()) >= REPEAT_MIN_LINE]
    if not lines:
        return False
    _, n = Counter(lines).most_common(1)[0]
    return n >= REPEAT_MIN_COUNT


# The runaway guard's reasons for a cut between whole blocks (crates/rekindle-llm/src/runaway.rs):
# the model began a file again after writing what it was asked for, and everything kept is
# whole. Such a reply did not run away; one cut inside a block (a line repeated) did.
BETWEEN_BLOCKS = re.compile(r"^(a second block for |more than \d+ files named like |a file that copies )")


def between_blocks(cut: str | None) -> bool:
    """Whether the guard's reason `cut` (the model_call event's `cut`, absent before it was
    recorded) is a cut between whole blocks."""
    return bool(cut) and BETWEEN_BLOCKS.match(cut) is not None


FILE_OPEN = "--- FILE: "  # rekindle's reply format (crates/rekindle-llm/src/file_blocks.rs)
FILE_CLOSE = "--- END FILE"


def file_blocks(text: str) -> list[tuple[str, str]]:
    """(path, content) of each file block of a reply, leniently (an unclosed last block counts)."""
    out, path, body = [], None, []
    for line in text.splitlines():
        if line.startswith(FILE_OPEN):
            if path is not None:
                out.append((path, "\n".join(body)))
            path, body = line[len(FILE_OPEN):].strip(), []
        elif line.rstrip() == FILE_CLOSE and path is not None:
            out.append((path, "\n".join(body)))
            path, body = None, []
        elif path is not None:
            body.append(line)
    if path is not None:
        out.append((path, "\n".join(body)))
    return out


def placeholder(text: str) -> bool:
    """A reply whose files hold nothing but a placeholder such as `<the whole file>`: the model
    echoed the format instructions instead of writing code."""
    blocks = file_blocks(text)
    bodies = [b.strip() for _, b in blocks]
    return bool(bodies) and all(b.startswith("<") and b.endswith(">") and "\n" not in b and len(b) < 60 for b in bodies)


def render(rekindle: str, spec: Path, models: ModelArgs, timeout: float, logs: Path) -> Render:
    """Renders `spec` in its own folder with `--format json`; the event lines go to
    `logs/events.jsonl`, stderr to `logs/stderr.txt`."""
    logs.mkdir(parents=True, exist_ok=True)
    events_path = logs / "events.jsonl"
    stderr_path = logs / "stderr.txt"
    cmd = [rekindle, "render", spec.name, "--format", "json", "--yes", *models.flags()]
    with open(events_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = run_limited(cmd, cwd=spec.parent, timeout=timeout, stdout=out, stderr=err)
    events = read_jsonl(events_path)
    cache_dir = spec.parent / ".rekindle" / "cache"
    calls = []
    for e in events:
        if e.get("event") != "model_call":
            continue
        response = cached_reply(cache_dir, e.get("key", ""))
        # Events carry the finish reason since the repetition guard has one of its own
        # (`repetition`); older binaries' events do not, and the cache entry says.
        e["finish_reason"] = e.get("finish_reason") or finish_reason(response)
        if e["finish_reason"] is None and e.get("tokens_out", 0) >= models.max_tokens_effective:
            e["finish_reason"] = "length?"  # no cache entry: judged by the token count
        text = (response or {}).get("text", "")
        e["repetitive"] = repetitive(text) or (
            e["finish_reason"] == "repetition" and not between_blocks(e.get("cut"))
        )
        e["placeholder"] = placeholder(text)
        calls.append(e)
    journal = read_jsonl(spec.parent / ".rekindle" / "journal.jsonl")
    journal_calls = sum(1 for j in journal if j.get("kind") == "model_call")
    try:
        stderr_tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    except OSError:
        stderr_tail = ""
    return Render(
        spec=spec,
        exit_code=proc.exit_code,
        timed_out=proc.timed_out,
        seconds=round(proc.seconds, 1),
        events=events,
        calls=calls,
        journal_calls=journal_calls,
        stderr_tail=stderr_tail,
    )


# --------------------------------------------------------------------------------------------
# classification


def format_retries(events: list[dict]) -> int:
    """Replies rekindle asked to have reformatted: a model call followed directly by another
    (its `ask` re-sends with a reformat message; every other step starts with a phase event)."""
    n = 0
    prev = None
    for e in events:
        kind = e.get("event")
        if kind == "model_call" and prev == "model_call":
            n += 1
        if kind in ("model_call", "phase", "script", "committed", "failed"):
            prev = kind
    return n


def signals(r: Render) -> dict:
    reason = r.failed_reason or ""
    last_phase = None
    for e in r.events:
        if e.get("event") == "phase":
            last_phase = f"f{e.get('id')} {e.get('phase')}"
    return {
        "exit_code": r.exit_code,
        "timed_out": r.timed_out,
        "cap_hits": sum(1 for c in r.calls if (c.get("finish_reason") or "").startswith("length")),
        "repetitive_replies": sum(1 for c in r.calls if c.get("repetitive")),
        "placeholder_replies": sum(1 for c in r.calls if c.get("placeholder")),
        "format_retries": format_retries(r.events),
        "reply_unusable": "could not be used" in reason,
        "last_phase": last_phase,
        "failed_reason": r.failed_reason,
        "summary_seen": r.summary is not None,
        "journal_model_calls": r.journal_calls,
    }


def classify(r: Render, behaviour_ok: bool | None) -> str | None:
    """None when the render succeeded and the hidden check passed; else the failure class:

    - `error`: rekindle exited 2 (usage or environment: provider unreachable, model missing,
      broken config, a test script exiting 69) or crashed; the benchmark measured nothing.
    - `format`: the render stopped on a reply it could not use (not file blocks, a bad path),
      and that reply was not cut off by the token cap; or the render failed or was killed and
      some reply held only placeholders (`<the whole file>`) instead of files.
    - `runaway`: the render failed or was killed, and at least one reply ran to the token cap or
      repeated one line over and over (the repetition guard or the cap ended it).
    - `timeout`: killed at the wall-clock limit, with no runaway reply.
    - `gave_up`: rekindle exited 1 after its attempts (tests still failing after every fix).
    - `wrong`: rendered (exit 0), but the hidden tests or acceptance script fail.
    """
    s = signals(r)
    if r.ok:
        return None if behaviour_ok else "wrong"
    last = r.calls[-1] if r.calls else {}
    last_capped = (last.get("finish_reason") or "").startswith("length")
    runaway = s["cap_hits"] > 0 or s["repetitive_replies"] > 0
    if not r.timed_out and r.exit_code not in (0, 1):
        return "error"
    if s["reply_unusable"]:
        return "runaway" if last_capped or last.get("repetitive") else "format"
    if runaway:
        return "runaway"
    if s["placeholder_replies"]:
        return "format"
    if r.timed_out:
        return "timeout"
    if r.exit_code == 1 and s["summary_seen"]:
        return "gave_up"
    return "error"


# --------------------------------------------------------------------------------------------
# the run's circumstances


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def find_rekindle(given: str | None) -> str:
    if given:
        return str(Path(given).resolve())
    if os.environ.get("REKINDLE_BIN"):
        return os.environ["REKINDLE_BIN"]
    for p in (REPO / "target" / "release" / "rekindle", REPO / "target" / "debug" / "rekindle"):
        if p.is_file():
            return str(p)
    found = shutil.which("rekindle")
    if found:
        return found
    sys.exit("rekindle binary not found: pass --rekindle PATH (or set REKINDLE_BIN)")


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def environment(rekindle: str, models: ModelArgs, options: dict, binary_commit: str | None = None) -> dict:
    """The run's circumstances. `rekindle_commit` is what the caller says the binary was built
    from (--rekindle-commit), else the repository's HEAD at the start of the run, which may be
    newer than the binary: its mtime and SHA-256 are recorded too."""
    try:
        version = subprocess.run([rekindle, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        version = None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    try:
        built = _dt.datetime.fromtimestamp(os.stat(rekindle).st_mtime, _dt.timezone.utc).isoformat(timespec="seconds")
    except OSError:
        built = None
    model_path = models.model_path or os.environ.get("REKINDLE_MODEL_PATH")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rekindle_commit": binary_commit or _git("rev-parse", "HEAD"),
        "rekindle_commit_from": "--rekindle-commit" if binary_commit else "HEAD when the run started",
        "rekindle_tree_dirty": None if binary_commit else (bool(dirty) if dirty is not None else None),
        "rekindle_binary": rekindle,
        "rekindle_binary_mtime": built,
        "rekindle_binary_sha256": _sha256(rekindle),
        "rekindle_version": version,
        "provider": models.provider or "(rekindle's default: rekindle.toml, else local)",
        "model": models.model,
        "model_path": model_path,
        "model_sha256": _sha256(model_path) if model_path else None,
        "base_url": models.base_url,
        "max_tokens": models.max_tokens_effective,
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "options": options,
    }


def models_seen(rows: list[dict]) -> list[str]:
    """(provider, model) pairs the renders actually used, from their model-call events."""
    seen = set()
    for row in rows:
        for m in row.get("models_used", []):
            seen.add(m)
    return sorted(seen)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def default_out(kind: str, label: str | None) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return HERE / "out" / f"{kind}-{label + '-' if label else ''}{stamp}.json"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


# What a render of a project writes into its folder: left out of copies, so that a copy renders
# from scratch even after `scripts/setup-and-run.sh` rendered examples/hello-world in place.
RENDER_OUTPUTS = frozenset({"build", "plain_modules", ".rekindle", "rekindle.lock"})


def without_render_outputs(top: Path):
    """A `shutil.copytree` ignore function: RENDER_OUTPUTS in the folder `top` itself."""
    top = Path(top).resolve()
    return lambda folder, names: [n for n in names if n in RENDER_OUTPUTS] if Path(folder).resolve() == top else []


def copy_tree(src: Path, dst: Path) -> None:
    """Copies a folder, without what a render wrote in it (RENDER_OUTPUTS), and makes the copy
    writable (the corpus is read-only)."""
    shutil.copytree(src, dst, symlinks=True, ignore=without_render_outputs(src))
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            p = Path(root) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
    dst.chmod(dst.stat().st_mode | 0o200)


def plan(rekindle: str, spec: Path) -> dict | None:
    """`rekindle plan --format json`: modules (the entry module last) and their functionalities."""
    try:
        out = subprocess.run([rekindle, "plan", spec.name, "--format", "json"], cwd=spec.parent,
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return None


def render_row(r: Render) -> dict:
    """The fields both sets report for one render."""
    t = r.totals()
    return {
        "rendered": r.ok,
        "exit_code": r.exit_code,
        "seconds": r.seconds,
        **t,
        "models_used": sorted({f"{c.get('provider')}/{c.get('model')}" for c in r.calls}),
        "signals": signals(r),
        "trace": r.trace(),
    }
