import sys
V = [(1000,"M"),(900,"CM"),(500,"D"),(400,"CD"),(100,"C"),(90,"XC"),(50,"L"),(40,"XL"),(10,"X"),(9,"IX"),(5,"V"),(4,"IV"),(1,"I")]
def to_roman(n):
    out = ""
    for v, s in V:
        while n >= v: out += s; n -= v
    return out
def from_roman(s):
    m = {"I":1,"V":5,"X":10,"L":50,"C":100,"D":500,"M":1000}
    t = 0
    for i, c in enumerate(s):
        v = m[c]
        if i + 1 < len(s) and m[s[i+1]] > v: t -= v
        else: t += v
    return t
for a in sys.argv[1:]:
    if a.isdigit() and 1 <= int(a) <= 3999: print(to_roman(int(a)))
    elif a and all(c in "IVXLCDM" for c in a.upper()): print(from_roman(a.upper()))
    else: print(f"roman: invalid input: {a}", file=sys.stderr); sys.exit(1)
