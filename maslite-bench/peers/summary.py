"""Prints the comparison table of maslite-bench/compare.sh from its results
file."""

import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ours = next(r["median"] for r in rows if r["peer"] == "maslite-rust")
print("| peer | median messages/s | min–max | ours / peer |")
print("|---|---:|---:|---:|")
for r in rows:
    spread = f"{r['min']:,.0f}–{r['max']:,.0f}"
    print(f"| {r['peer']} | {r['median']:,.0f} | {spread} | {ours / r['median']:.1f}× |")
