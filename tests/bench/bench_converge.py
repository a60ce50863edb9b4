#!/usr/bin/env python3
"""Converge benchmark: the keepalived role on 3 fresh lab nodes, first run and idempotent re-run.

Each of --runs rounds rebuilds the lab nodes (`lab down`, `lab up --nodes 3`), times
`ansible-playbook tests/bench/converge.yml` twice and reads the re-run's changed count from the
play recap. Prints the figures per round, then as its last line the medians:
  converge first_s=X rerun_s=Y rerun_changed=Z
(Z is the largest changed count of any re-run.)

usage (root): python tests/bench/bench_converge.py [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "tests", "lab", "lab")


def converge() -> Tuple[float, int]:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    started = time.monotonic()
    run = subprocess.run(
        ["ansible-playbook", "-i", os.path.join(ROOT, ".lab", "inventory"),
         os.path.join(ROOT, "tests", "bench", "converge.yml")],
        env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-2000:])
        raise RuntimeError("converge failed (exit %d)" % run.returncode)
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))
    return elapsed, changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    firsts, reruns, rerun_changed = [], [], []
    for number in range(1, args.runs + 1):
        subprocess.run([LAB, "down"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([LAB, "up", "--nodes", "3"], check=True, stdout=subprocess.DEVNULL)
        first, _ = converge()
        rerun, changed = converge()
        firsts.append(first)
        reruns.append(rerun)
        rerun_changed.append(changed)
        print("round %d: first %.1fs, re-run %.1fs, re-run changed=%d" % (number, first, rerun, changed), flush=True)
    print("converge first_s=%.1f rerun_s=%.1f rerun_changed=%d"
          % (statistics.median(firsts), statistics.median(reruns), max(rerun_changed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
