#!/usr/bin/env python3
"""How fast `rekindle lsp` answers an edit: the time from each `textDocument/didChange` to the
`textDocument/publishDiagnostics` for that document, over one-character edits of the 2 MB
benchmark spec (bench/gen_spec.py: 10,000 functionalities, 2,000 concepts).

    python3 bench/lsp.py                          # 30 edits, after 3 warm-up edits
    python3 bench/lsp.py --edits 50 --bin target/release/rekindle

Edits alternate between typing a character inside a functionality spread through the file and
deleting it again, so every edit is a real change and the text stays the same size. Prints each
latency and the median, min and max in ms; writes them to bench/out/lsp.json. Reports only:
nothing here asserts a time. Python 3 standard library only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frame(msg):
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read(stream):
    length = 0
    while True:
        line = stream.readline()
        if not line:
            raise SystemExit("rekindle lsp closed its output")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/rekindle"))
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--functionalities", type=int, default=10000)
    ap.add_argument("--concepts", type=int, default=2000)
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} is missing: cargo build --release -p rekindle")
    work = tempfile.mkdtemp(prefix="rekindle-lsp-bench-")
    spec = os.path.join(work, "spec.plain")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_spec.py"),
                    "--functionalities", str(a.functionalities), "--concepts", str(a.concepts),
                    "--out", spec], check=True, stdout=subprocess.DEVNULL)
    text = open(spec, encoding="utf-8").read()
    uri = "file://" + spec
    lines = text.split("\n")
    # Lines of functionalities spread through the file ("- " items after the heading).
    start = next(i for i, l in enumerate(lines) if l.strip() == "***functional specs***")
    items = [i for i in range(start, len(lines)) if lines[i].startswith("- ") and len(lines[i]) > 10]
    p = subprocess.Popen([a.bin, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=work)

    def send(msg):
        p.stdin.write(frame(msg))
        p.stdin.flush()

    def wait_diagnostics():
        while True:
            m = read(p.stdout)
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
                return m["params"]["diagnostics"]

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
          "params": {"processId": None, "capabilities": {}}})
    while "id" not in read(p.stdout):
        pass
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    t0 = time.perf_counter()
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "plain", "version": 1, "text": text}}})
    first = wait_diagnostics()
    opened = (time.perf_counter() - t0) * 1000
    print(f"open: {opened:.1f} ms, {len(first)} diagnostics, {len(text)} bytes", file=sys.stderr)
    latencies = []
    version = 1
    for n in range(a.warmup + a.edits):
        line = items[(n // 2 * 7919) % len(items)]
        col = 6
        if n % 2 == 0:
            change = {"range": {"start": {"line": line, "character": col},
                                "end": {"line": line, "character": col}}, "text": "x"}
        else:
            change = {"range": {"start": {"line": line, "character": col},
                                "end": {"line": line, "character": col + 1}}, "text": ""}
        version += 1
        t = time.perf_counter()
        send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}})
        wait_diagnostics()
        ms = (time.perf_counter() - t) * 1000
        if n >= a.warmup:
            latencies.append(ms)
            print(f"edit {n - a.warmup + 1}: {ms:.1f} ms", file=sys.stderr)
    send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
    send({"jsonrpc": "2.0", "method": "exit", "params": None})
    p.wait(timeout=30)
    result = {
        "bytes": len(text), "edits": len(latencies), "open_ms": round(opened, 1),
        "median_ms": round(statistics.median(latencies), 1),
        "min_ms": round(min(latencies), 1), "max_ms": round(max(latencies), 1),
        "latencies_ms": [round(x, 1) for x in latencies],
    }
    os.makedirs(os.path.join(ROOT, "bench/out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench/out/lsp.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"didChange -> publishDiagnostics over {len(latencies)} edits of {len(text)} bytes: "
          f"median {result['median_ms']} ms (min {result['min_ms']}, max {result['max_ms']})")


if __name__ == "__main__":
    main()
