#!/usr/bin/env bash
# Measures maslite for Rust side by side with its peers, in one run on one
# machine, and prints one JSON line per measurement set plus a summary
# table. Run from anywhere: maslite-bench/compare.sh [--quick]
#
# Peers:
# - Python maslite 2023.1.1 from PyPI (installed here into venvs under
#   target/peers/), on CPython, and on PyPy when `pypy3` is installed
#   (Debian: apt-get install pypy3) — the same ping-pong model as ours;
# - ractor (a tokio actor framework), the same ping-pong, on tokio's
#   multi-thread and current-thread runtimes (maslite-bench/peers/rust, a
#   workspace of its own that default builds and CI do not compile);
# - SimPy 4.1.2 from PyPI, on CPython: the bank example's model;
# - nexosim (a discrete-event simulation framework), PHOLD with the
#   parameters of `maslite-bench phold`, on its executor with 1 and 2
#   threads (maslite-bench/peers/rust too). Its trace hash must equal ours.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${1:-}
runs=5
seconds=2
messages=2000000
# nexosim on 2 threads does 16–83 k PHOLD events/s here (a thread hand-off
# per timestamp): 20 s to 2 minutes a run, so it runs at remote 0.25 only,
# without a warm-up.
nexosim_2t_remotes="0.25"
if [ "$quick" = "--quick" ]; then
  runs=2; seconds=0.5; messages=200000; nexosim_2t_remotes=""
fi
out=target/peers
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

echo "# building maslite-bench and the Rust peers" >&2
cargo build -q --release -p maslite-bench && cargo build -q --release --example bank
(cd maslite-bench/peers/rust && cargo build -q --release)

echo "# maslite for Rust: pingpong" >&2
./target/release/maslite-bench pingpong --runs "$runs" \
  | python3 -c 'import sys,json
for l in sys.stdin:
    v=json.loads(l); print(json.dumps({"peer":"maslite-rust","unit":v["unit"],"median":v["median"],"min":v["min"],"max":v["max"],"runs":v["runs"]}))' \
  | tee -a "$results"

summarize() { # peer lines {"peer","unit","value",...} -> one line with median/min/max
  # (other keys, e.g. PHOLD's "remote" and "hash", are kept when every run agrees)
  python3 -c 'import sys,json,statistics
vals=[];keep=None
for l in sys.stdin:
    l=l.strip()
    if not l.startswith("{"): continue
    v=json.loads(l); vals.append(v.pop("value"))
    keep=v if keep is None else {k:x for k,x in keep.items() if v.get(k)==x}
keep.update({"median":statistics.median(vals),"min":min(vals),"max":max(vals),"runs":len(vals)})
print(json.dumps(keep))'
}

pyvenv() { # interpreter, venv dir
  if [ ! -x "$2/bin/python" ]; then
    "$1" -m venv "$2"
    "$2/bin/pip" install -q "MASlite==2023.1.1"
  fi
}

echo "# Python maslite on CPython" >&2
pyvenv python3 "$out/venv-cpython"
"$out/venv-cpython/bin/python" maslite-bench/peers/maslite_pingpong.py "$seconds" "$runs" 2>/dev/null \
  | summarize | tee -a "$results"

if command -v pypy3 >/dev/null; then
  echo "# Python maslite on PyPy" >&2
  pyvenv pypy3 "$out/venv-pypy"
  "$out/venv-pypy/bin/python" maslite-bench/peers/maslite_pingpong.py "$seconds" "$runs" 2>/dev/null \
    | summarize | tee -a "$results"
else
  echo "# pypy3 not installed: PyPy skipped (apt-get install pypy3)" >&2
fi

for flavor in multi current; do
  echo "# ractor ($flavor-thread tokio runtime)" >&2
  maslite-bench/peers/rust/target/release/ractor_pingpong "$messages" "$runs" "$flavor" \
    | summarize | tee -a "$results"
done

echo "# summary: pingpong, messages/s (median of $runs runs; ratio = ours / peer)" >&2
python3 maslite-bench/peers/summary.py "$results"

# PHOLD: ours (maslite-bench's case: 4096 agents, 4 events each, lookahead
# 0.1, mean 1, to t = 100, seed 1; 1 and 2 partitions; remote 0, 0.25, 0.9)
# against nexosim on the same parameters, 1 and 2 executor threads.
phold="$out/phold.jsonl"
: > "$phold"
echo "# maslite for Rust: phold" >&2
./target/release/maslite-bench phold --runs "$runs" \
  | python3 -c 'import sys,json
for l in sys.stdin:
    v=json.loads(l); p=v["params"]
    print(json.dumps({"peer":"maslite-rust-%d-partition" % p["partitions"],"unit":v["unit"],
        "remote":p["remote"],"hash":v["hash"],"median":v["median"],"min":v["min"],"max":v["max"],"runs":v["runs"]}))' \
  | tee -a "$phold"
nexosim=maslite-bench/peers/rust/target/release/nexosim_phold
for remote in 0 0.25 0.9; do
  echo "# nexosim: phold, remote $remote, 1 thread" >&2
  "$nexosim" --remote "$remote" --threads 1 --runs "$runs" | summarize | tee -a "$phold"
done
for remote in $nexosim_2t_remotes; do
  echo "# nexosim: phold, remote $remote, 2 threads (slow)" >&2
  "$nexosim" --remote "$remote" --threads 2 --runs "$runs" --warmup 0 \
    | summarize | tee -a "$phold"
done
if [ -z "$nexosim_2t_remotes" ]; then
  echo "# --quick: nexosim on 2 threads skipped (up to 2 minutes a run)" >&2
fi

echo "# summary: phold, events/s (median of $runs runs; ratio = ours / nexosim, same threads)" >&2
python3 - "$phold" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
get = lambda peer, r: next((x for x in rows if x["peer"] == peer and x["remote"] == r), None)
print("| remote | ours, 1 partition | nexosim, 1 thread | ours / nexosim | ours, 2 partitions | nexosim, 2 threads | ours / nexosim | hashes |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
fmt = lambda x: f"{x['median']:,.0f} ({x['min']:,.0f}–{x['max']:,.0f})" if x else "–"
ratio = lambda a, b: f"{a['median'] / b['median']:.2f}×" if a and b else "–"
for r in sorted({x["remote"] for x in rows}):
    o1, o2 = get("maslite-rust-1-partition", r), get("maslite-rust-2-partition", r)
    n1, n2 = get("nexosim-1-thread", r), get("nexosim-2-thread", r)
    hashes = {x.get("hash") for x in (o1, o2, n1, n2) if x}
    same = "match" if len(hashes) == 1 and None not in hashes else "DIFFER: " + " ".join(sorted(map(str, hashes)))
    print(f"| {r} | {fmt(o1)} | {fmt(n1)} | {ratio(o1, n1)} | {fmt(o2)} | {fmt(n2)} | {ratio(o2, n2)} | {same} |")
PY

# The bank (examples/bank.rs: 100 000 reneging customers, one counter, no
# log) against SimPy's version of the same model on CPython
# (maslite-bench/peers/simpy_bank.py, SimPy from PyPI). The draws are the
# same, so the day's figures must be too.
customers=100000
if [ "$quick" = "--quick" ]; then customers=20000; fi
bank="$out/bank.jsonl"
: > "$bank"
echo "# maslite for Rust: bank" >&2
./target/release/examples/bank --customers "$customers" --quiet > "$out/bank-ours.txt"
./target/release/maslite-bench bank --runs "$runs" \
  | python3 -c 'import sys,json
for l in sys.stdin:
    v=json.loads(l)
    print(json.dumps({"peer":"maslite-rust","unit":v["unit"],"median":v["median"],"min":v["min"],"max":v["max"],"runs":v["runs"]}))' \
  | tee -a "$bank"
echo "# SimPy on CPython: bank" >&2
if [ ! -x "$out/venv-simpy/bin/python" ]; then
  python3 -m venv "$out/venv-simpy"
  "$out/venv-simpy/bin/pip" install -q "simpy==4.1.2"
fi
"$out/venv-simpy/bin/python" maslite-bench/peers/simpy_bank.py "$customers" "$runs" > "$out/bank-simpy.jsonl"
summarize < "$out/bank-simpy.jsonl" | tee -a "$bank"
echo "# summary: bank, customers/s (median of $runs runs; ratio = ours / SimPy)" >&2
python3 - "$bank" "$out/bank-simpy.jsonl" "$out/bank-ours.txt" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ours = next(r for r in rows if r["peer"] == "maslite-rust")
simpy = next(r for r in rows if r["peer"] == "simpy-cpython")
print("| peer | median customers/s | min–max | ours / peer |")
print("|---|---:|---:|---:|")
for r in (ours, simpy):
    print(f"| {r['peer']} | {r['median']:,.0f} | {r['min']:,.0f}–{r['max']:,.0f} | {ours['median'] / r['median']:.1f}× |")
day = json.loads(open(sys.argv[2]).readline())
m = re.search(r"served (\d+), reneged (\d+), .* closed at ([0-9.]+)", open(sys.argv[3]).read())
same = m and (int(m[1]), int(m[2]), float(m[3])) == (day["served"], day["reneged"], day["closed"])
print(f"\nthe same day in both: {'yes' if same else 'NO'} (SimPy: served {day['served']}, reneged {day['reneged']}, closed at {day['closed']})")
PY
