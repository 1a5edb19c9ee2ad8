#!/usr/bin/env bash
# Measures maslite for Rust side by side with its peers, in one run on one
# machine, and prints one JSON line per measurement set plus a summary
# table. Run from anywhere: bench/compare.sh [--quick]
#
# Peers:
# - Python maslite 2023.1.1 from PyPI (installed here into venvs under
#   target/peers/), on CPython, and on PyPy when `pypy3` is installed
#   (Debian: apt-get install pypy3) — the same ping-pong model as ours;
# - ractor (a tokio actor framework), the same ping-pong, on tokio's
#   multi-thread and current-thread runtimes (bench/peers/rust, a workspace
#   of its own that default builds and CI do not compile).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
runs=5
seconds=2
messages=2000000
if [ "$quick" = "--quick" ]; then runs=2; seconds=0.5; messages=200000; fi
out=target/peers
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

echo "# building maslite-bench and the Rust peers" >&2
cargo build -q --release -p maslite-bench
(cd bench/peers/rust && cargo build -q --release)

echo "# maslite for Rust: pingpong" >&2
./target/release/maslite-bench pingpong --runs "$runs" \
  | python3 -c 'import sys,json
for l in sys.stdin:
    v=json.loads(l); print(json.dumps({"peer":"maslite-rust","unit":v["unit"],"median":v["median"],"min":v["min"],"max":v["max"],"runs":v["runs"]}))' \
  | tee -a "$results"

summarize() { # peer lines {"peer","unit","value"} -> one line with median/min/max
  python3 -c 'import sys,json,statistics
vals=[];peer=unit=None
for l in sys.stdin:
    l=l.strip()
    if not l.startswith("{"): continue
    v=json.loads(l); peer=v["peer"]; unit=v["unit"]; vals.append(v["value"])
print(json.dumps({"peer":peer,"unit":unit,"median":statistics.median(vals),"min":min(vals),"max":max(vals),"runs":len(vals)}))'
}

pyvenv() { # interpreter, venv dir
  if [ ! -x "$2/bin/python" ]; then
    "$1" -m venv "$2"
    "$2/bin/pip" install -q "MASlite==2023.1.1"
  fi
}

echo "# Python maslite on CPython" >&2
pyvenv python3 "$out/venv-cpython"
"$out/venv-cpython/bin/python" bench/peers/maslite_pingpong.py "$seconds" "$runs" 2>/dev/null \
  | summarize | tee -a "$results"

if command -v pypy3 >/dev/null; then
  echo "# Python maslite on PyPy" >&2
  pyvenv pypy3 "$out/venv-pypy"
  "$out/venv-pypy/bin/python" bench/peers/maslite_pingpong.py "$seconds" "$runs" 2>/dev/null \
    | summarize | tee -a "$results"
else
  echo "# pypy3 not installed: PyPy skipped (apt-get install pypy3)" >&2
fi

for flavor in multi current; do
  echo "# ractor ($flavor-thread tokio runtime)" >&2
  bench/peers/rust/target/release/ractor_pingpong "$messages" "$runs" "$flavor" \
    | summarize | tee -a "$results"
done

echo "# summary: pingpong, messages/s (median of $runs runs; ratio = ours / peer)" >&2
python3 bench/peers/summary.py "$results"
