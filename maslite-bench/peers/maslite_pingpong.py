"""Python maslite's ping-pong, the peer of `maslite-bench pingpong`.

Two agents bounce one message for a number of wall-clock seconds, as
maslite's own benchmark does: each update takes the message, counts the
hit, swaps sender and receiver and sends it back. Prints one JSON line per
run: {"peer", "unit", "value"}.

Usage: python maslite_pingpong.py [seconds] [runs]
"""

import json
import platform
import sys
import time

from maslite import Agent, AgentMessage, Scheduler


class Ball(AgentMessage):
    def __init__(self, sender, receiver):
        super().__init__(sender, receiver)
        self.hits = 0


class Player(Agent):
    def update(self):
        while self.messages:
            ball = self.receive()
            ball.hits += 1
            ball.receiver, ball.sender = ball.sender, ball.receiver
            self.send(ball)


def one_run(seconds):
    s = Scheduler()
    a, b = Player(), Player()
    s.add(a)
    s.add(b)
    ball = Ball(a, b)
    a.send(ball)
    start = time.perf_counter()
    s.run(seconds=seconds)
    wall = time.perf_counter() - start
    return ball.hits / wall


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    one_run(min(seconds, 0.5))  # warm-up (PyPy's JIT)
    peer = f"maslite-python-{platform.python_implementation().lower()}"
    for _ in range(runs):
        print(json.dumps({"peer": peer, "unit": "messages/s", "value": one_run(seconds)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
