#!/usr/bin/env bash
# Benchmark `rekindle check` on synthetic specs: 1x (10,000 functionalities / 2,000 concepts,
# about 2 MB) and 5x (50,000 / 10,000), plus a tiny spec for the fixed process start-up cost.
# Runs are interleaved (tiny, 1x, 5x, tiny, 1x, 5x, ...) so machine noise hits every size alike;
# medians, min and max are printed in ms, with the 5x/1x ratio of medians.
#
#   bench/check.sh                 # 15 rounds after 3 warm-up rounds
#   ROUNDS=31 WARMUP=5 bench/check.sh
#
# Reports only: timings are never asserted. Exits non-zero if the build fails or a generated spec
# is rejected. Results also go to bench/out/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench/out"
ROUNDS="${ROUNDS:-15}"
WARMUP="${WARMUP:-3}"
BIN="$ROOT/target/release/rekindle"
mkdir -p "$OUT"
cd "$ROOT"

echo "== building release" >&2
cargo build --release -p rekindle >&2

gen() { python3 "$ROOT/bench/gen_spec.py" --functionalities "$1" --concepts "$2" --out "$3"; }
gen 10 5 "$OUT/spec-tiny.plain"
gen 10000 2000 "$OUT/spec-1x.plain"
gen 50000 10000 "$OUT/spec-5x.plain"

status=0
for s in tiny 1x 5x; do
    f="$OUT/spec-$s.plain"
    if ! err="$("$BIN" check "$f" 2>&1 >/dev/null)"; then
        echo "REJECTED: $f" >&2
        echo "$err" | tail -20 >&2
        status=1
    elif ! grep -q '^ok:' <<<"$err"; then
        echo "no 'ok:' line for $f: $err" >&2
        status=1
    else
        echo "$err" >&2
    fi
done
[ "$status" -eq 0 ] || exit "$status"

python3 - "$BIN" "$OUT" "$ROUNDS" "$WARMUP" <<'PY' | tee "$OUT/results.txt"
import json, os, platform, statistics, subprocess, sys, time

bin_, out, rounds, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
labels = ["tiny", "1x", "5x"]
files = {l: os.path.join(out, "spec-%s.plain" % l) for l in labels}
times = {l: [] for l in labels}

def run(path):
    t0 = time.perf_counter()
    r = subprocess.run([bin_, "check", "--color", "never", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("rekindle check %s exited %d" % (path, r.returncode))
    return dt * 1000.0

for i in range(warmup + rounds):
    for l in labels:  # interleaved: tiny, 1x, 5x, tiny, 1x, 5x, ...
        ms = run(files[l])
        if i >= warmup:
            times[l].append(ms)

print("rekindle check, %d interleaved rounds (%d warm-up), %s, %d CPUs"
      % (rounds, warmup, platform.machine(), os.cpu_count()))
print("%-5s %12s %10s %10s %10s" % ("spec", "bytes", "median ms", "min ms", "max ms"))
summary = {}
for l in labels:
    t = times[l]
    size = os.path.getsize(files[l])
    summary[l] = {"bytes": size, "median_ms": statistics.median(t), "min_ms": min(t),
                  "max_ms": max(t), "runs_ms": t}
    print("%-5s %12d %10.1f %10.1f %10.1f" % (l, size, statistics.median(t), min(t), max(t)))
m1, m5, m0 = summary["1x"]["median_ms"], summary["5x"]["median_ms"], summary["tiny"]["median_ms"]
ratio = m5 / m1
print("ratio 5x/1x (medians): %.2f" % ratio)
print("ratio 5x/1x after subtracting tiny-spec start-up (%.1f ms): %.2f" % (m0, (m5 - m0) / max(m1 - m0, 1e-9)))
summary["ratio_5x_1x"] = ratio
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(summary, f, indent=1)
PY
