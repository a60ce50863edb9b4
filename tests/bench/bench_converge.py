"""Converge benchmark: the keepalived role on 3 fresh lab nodes, first run and idempotent re-run.

Each of --runs rounds rebuilds the lab nodes (`lab down`, `lab up --nodes 3`), times
`ansible-playbook tests/bench/converge.yml` twice, reads the re-run's changed count from the
play recap and counts the re-run's round trips per node (the lab's connection plugin traces every
command it runs on a node: LAB_NSENTER_TRACE; with pipelining one module call is one round trip).
Prints the figures per round, then as its last line the medians:
  converge first_s=X rerun_s=Y rerun_changed=Z rerun_calls_per_node=N
(Z is the largest changed count of any re-run, N the most round trips any node had in a re-run.)

usage (root): python tests/bench/bench_converge.py [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "tests", "lab", "lab")


def converge() -> Tuple[float, int, int]:
    """One run: its wall time, the changed count and the most round trips any node had."""
    trace = tempfile.NamedTemporaryFile(prefix="ccha-trace.", delete=False)
    trace.close()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), LAB_NSENTER_TRACE=trace.name)
    started = time.monotonic()
    run = subprocess.run(
        ["ansible-playbook", "-i", os.path.join(ROOT, ".lab", "inventory"),
         os.path.join(ROOT, "tests", "bench", "converge.yml")],
        env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    with open(trace.name) as handle:
        calls = Counter(line.strip() for line in handle if line.strip())
    os.unlink(trace.name)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-2000:])
        raise RuntimeError("converge failed (exit %d)" % run.returncode)
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))
    return elapsed, changed, max(calls.values(), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    firsts, reruns, rerun_changed, rerun_calls = [], [], [], []
    for number in range(1, args.runs + 1):
        subprocess.run([LAB, "down"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([LAB, "up", "--nodes", "3"], check=True, stdout=subprocess.DEVNULL)
        first, _changed, first_calls = converge()
        rerun, changed, calls = converge()
        firsts.append(first)
        reruns.append(rerun)
        rerun_changed.append(changed)
        rerun_calls.append(calls)
        print("round %d: first %.1fs (%d round trips per node), re-run %.1fs (%d), re-run changed=%d"
              % (number, first, first_calls, rerun, calls, changed), flush=True)
    print("converge first_s=%.1f rerun_s=%.1f rerun_changed=%d rerun_calls_per_node=%d"
          % (statistics.median(firsts), statistics.median(reruns), max(rerun_changed), max(rerun_calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
