"""Watch who answers for the VIP, the way an edge node sees it. Run INSIDE a lab namespace:

    ip netns exec ccha-edge python3 tests/bench/vip_watch.py 10.213.102.100 --seconds 30

Every --interval seconds it opens a fresh HTTPS connection to VIP:10002, asks for /ca.crt and
prints `<monotonic seconds> <node>` (`none` when nothing answers in --timeout). CLOCK_MONOTONIC is
shared by all namespaces, so the caller can compare these times with its own. Bounded in time:
it stops by itself after --seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import probe  # noqa: E402  (tests/lab/probe.py: one HTTPS probe, no trust)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vip", help="VIP address without prefix")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=0.25)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status, node, _sans = probe.probe(args.vip, 10002, "/ca.crt", args.timeout)
            answer = node if status == 200 else "none"
        except Exception:  # any failure to get a 200 is "nobody answers"
            answer = "none"
        print("%.3f %s" % (started, answer), flush=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
