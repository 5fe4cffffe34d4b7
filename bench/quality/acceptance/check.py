"""Helpers for the hidden acceptance scripts (acceptance/*.sh): run the rendered program, compare
what it did with values worked out by hand, and exit 0 only when every check held."""

import os
import subprocess
import sys
import tempfile
import time

CODE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit("usage: SCRIPT CODE_FOLDER")
failures = []
checks = 0


class Ran:
    def __init__(self, p: subprocess.CompletedProcess, seconds: float):
        self.code = p.returncode
        self.out = p.stdout.decode("utf-8", "replace")
        self.err = p.stderr.decode("utf-8", "replace")
        self.seconds = seconds


def program(main: str, *args: str, stdin: str | bytes = b"", cwd: str | None = None, timeout: float = 20) -> Ran:
    """Runs `python3 CODE/main ARGS...` (in a fresh temp folder unless `cwd` is given)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    with tempfile.TemporaryDirectory(prefix="acceptance-") as tmp:
        started = time.monotonic()
        try:
            p = subprocess.run([sys.executable, os.path.join(CODE, main), *args], input=data,
                               capture_output=True, cwd=cwd or tmp, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Ran(subprocess.CompletedProcess([], -1, b"", f"timed out after {timeout}s".encode()), timeout)
        return Ran(p, time.monotonic() - started)


def expect(what: str, ok: bool, got=None) -> None:
    global checks
    checks += 1
    if ok:
        print(f"ok    {what}")
    else:
        failures.append(what)
        print(f"FAIL  {what}" + (f"\n      got: {got!r}" if got is not None else ""))


def output_is(what: str, ran: Ran, lines: list[str]) -> None:
    """Standard output is exactly these lines (each ended by a newline; a missing final newline
    is tolerated)."""
    want = "".join(l + "\n" for l in lines)
    expect(what, ran.out == want or ran.out == want.rstrip("\n"), (ran.out, ran.err[-300:]))


def done() -> None:
    print(f"\n{checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)
