import sys
args = sys.argv[1:]
words_only = "--words" in args
args = [a for a in args if a != "--words"]
if args:
    try:
        data = open(args[0], "rb").read()
    except OSError:
        print(f"wc-lite: cannot open {args[0]}", file=sys.stderr); sys.exit(1)
else:
    data = sys.stdin.buffer.read()
w = len(data.split())
nl = data.count(b"\n")
print(w if words_only else f"{nl} {w} {len(data)}")
