"""SimPy's version of maslite's `bank` example (examples/bank.rs): one
counter, customers arriving at exponential intervals, each waiting at most
its patience before reneging, served for an exponential time. The draws are
the example's (splitmix64, in the same order), so the day's figures must
equal ours: the script prints them with the timing.

Usage: python simpy_bank.py CUSTOMERS RUNS  -> one JSON line per run
"""
import json
import math
import sys
import time

import simpy

M = (1 << 64) - 1


class Draws:
    def __init__(self, seed):
        self.s = seed

    def uniform(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return ((z ^ (z >> 31)) >> 11) / float(1 << 53)

    def exponential(self, mean):
        return -mean * math.log(1.0 - self.uniform())


def day(customers, every=10.0, service=12.0, patience=1.0, seed=42):
    env = simpy.Environment()
    counter = simpy.Resource(env, capacity=1)
    figures = {"served": 0, "reneged": 0, "waited": 0.0}

    def customer(pat, serve):
        arrived = env.now
        with counter.request() as req:
            got = yield req | env.timeout(pat)
            if req in got:
                figures["served"] += 1
                figures["waited"] += env.now - arrived
                yield env.timeout(serve)
            else:
                figures["reneged"] += 1
                figures["waited"] += pat

    def source():
        draws = Draws(seed)
        for _ in range(customers):
            pat = patience * (1.0 + draws.uniform())
            serve = draws.exponential(service)
            env.process(customer(pat, serve))
            yield env.timeout(draws.exponential(every))

    env.process(source())
    env.run()
    figures["closed"] = env.now
    return figures


if __name__ == "__main__":
    customers, runs = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(runs):
        t = time.perf_counter()
        f = day(customers)
        wall = time.perf_counter() - t
        print(json.dumps({"peer": "simpy-cpython", "unit": "customers/s",
                          "value": customers / wall, "served": f["served"],
                          "reneged": f["reneged"], "closed": round(f["closed"], 3)}))
