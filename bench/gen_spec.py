#!/usr/bin/env python3
"""Generate a synthetic ***plain spec for benchmarking `rekindle check`.

    python3 bench/gen_spec.py --functionalities 10000 --concepts 2000 --out bench/out/spec-1x.plain

The output is deterministic for given arguments (fixed seed). Concepts are named :Concept0: ...
:Concept{C-1}:; each definition references only lower-numbered concepts, so there are no cycles.
Roughly every 4th functionality has nested sub-bullets and every 5th an ***acceptance tests***
block. With N=10000 and C=2000 the file is about 2 MB; size scales linearly with N and C.
Python 3 standard library only.
"""

import argparse
import random
import sys

SUBJECTS = [
    "the user", "the operator", "an administrator", "the scheduler", "the importer",
    "the billing service", "the report generator", "a background worker", "the client",
    "the audit log", "the notification queue", "the search index",
]
VERBS = [
    "records", "validates", "rejects", "stores", "forwards", "summarises", "archives",
    "displays", "exports", "reconciles", "retries", "normalises", "deduplicates", "sorts",
]
OBJECTS = [
    "every incoming request", "the totals for the current day", "each pending entry",
    "the list of recent changes", "all malformed records", "the configured limits",
    "a short confirmation message", "the previous state", "the outstanding balance",
    "the identifiers in ascending order", "any duplicate submissions", "the last error seen",
]
TAILS = [
    "before the next batch starts.", "within two seconds.", "and reports the outcome.",
    "without blocking other requests.", "using the current locale.", "in a single transaction.",
    "so that nothing is lost on restart.", "and keeps the original order.",
    "unless the input is empty.", "and writes a line to the log.",
]
NOUNS = [
    "record", "ledger entry", "customer account", "invoice", "shipment", "configuration value",
    "user profile", "search query", "time window", "price list", "audit event", "message batch",
]


def sentence(rng):
    return "{} {} {} {}".format(
        rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TAILS)
    ).capitalize()


def concept(k):
    return ":Concept{}:".format(k)


def definitions(rng, c):
    out = []
    for k in range(c):
        text = "{} is one kind of {} with some words describing it".format(concept(k), rng.choice(NOUNS))
        if k > 0:
            refs = sorted({rng.randrange(k) for _ in range(rng.randint(1, 2))})
            text += ", built from " + " and ".join(concept(r) for r in refs)
        text += ". " + sentence(rng)
        out.append("- " + text + "\n")
    return out


def functionality(rng, i, c):
    k, j = rng.randrange(c), rng.randrange(c)
    lines = [
        "- When {} changes, {} {} {} {}".format(
            concept(k), rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS),
            "and updates " + concept(j) + ".",
        )
    ]
    if i % 4 == 1:
        for _ in range(rng.choice((1, 1, 2))):
            lines.append("  - Detail: {} {}".format(concept(rng.randrange(c)), sentence(rng).lower()))
    if i % 5 == 0:
        lines.append("")
        lines.append("  ***acceptance tests***")
        lines.append("")
        for _ in range(rng.choice((1, 1, 2))):
            lines.append("  - An acceptance test mentioning {}, where {}".format(
                concept(rng.randrange(c)), sentence(rng).lower()))
    return "\n".join(lines) + "\n"


def generate(n, c, seed=42):
    if c < 2:
        raise ValueError("need at least 2 concepts")
    rng = random.Random(seed)
    parts = ["---\ndescription: 'synthetic benchmark spec'\n---\n\n"]
    parts.append("***definitions***\n\n")
    parts.extend(definitions(rng, c))
    parts.append("\n***implementation reqs***\n\n")
    parts.append("- :Implementation: should be written in Python. Use only the standard library.\n")
    parts.append("- :Implementation: should include :UnitTests: for {} and {}.\n".format(concept(0), concept(c - 1)))
    parts.append("- :Implementation: keeps every {} in memory; it does not need a database.\n".format(concept(1)))
    parts.append("\n***test reqs***\n\n")
    parts.append("- :ConformanceTests: should use unittest.\n")
    parts.append("\n***functional specs***\n\n")
    for i in range(n):
        parts.append(functionality(rng, i, c))
    return "".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--functionalities", "-n", type=int, required=True)
    p.add_argument("--concepts", "-c", type=int, required=True)
    p.add_argument("--out", "-o", required=True, help="output file ('-' for stdout)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    text = generate(a.functionalities, a.concepts, a.seed)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("wrote {} ({} bytes, {} functionalities, {} concepts)".format(
            a.out, len(text.encode("utf-8")), a.functionalities, a.concepts), file=sys.stderr)


if __name__ == "__main__":
    main()
