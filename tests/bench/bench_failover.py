"""Failover benchmark on the lab: the collection's defaults, a fast profile and the seed's settings.

For every profile: converge the keepalived role with the profile's variables, then N trials of
  stop the CloudCore stand-in on the VIP holder -> seconds until the edge probe through the VIP is
  answered by another node, counted from the old holder's last answer (when the stand-in stopped, to
  within the probe's 20 ms interval) -> heal it -> count VIP moves (changes of the answering node)
  in the following 15 s. The time from the fault command (lab CLI + podman exec) is printed too.
Probes run inside the edge namespace (tests/bench/vip_watch.py).

Prints min/median/max per profile and, as its last line:
  failover default_median_s=X fast_median_s=Y seed_median_s=Z moves_after_heal=M
(M = the default profile's maximum).

usage (root, lab up with 2 nodes): python tests/bench/bench_failover.py [--trials 5] [--profiles default,fast,seed]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
PROFILES_DIR = os.path.join(ROOT, "tests", "bench", "profiles")
HEAL_WATCH_S = 15.0
FAILOVER_LIMIT_S = 20.0


def lab(*args: str) -> str:
    return subprocess.run([LAB, *args], check=True, capture_output=True, text=True).stdout.strip()


def lab_state() -> dict:
    with open(os.path.join(ROOT, ".lab", "lab.json")) as handle:
        return json.load(handle)


class VipWatcher:
    """vip_watch.py inside the edge namespace; collects (time, node) answers in a thread."""

    def __init__(self, vip: str, seconds: float):
        self.answers: List[Tuple[float, str]] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", lab_state()["edge"]["namespace"], "python3",
             os.path.join(ROOT, "tests", "bench", "vip_watch.py"), vip, "--seconds", str(seconds)],
            stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            stamp, node = line.split()
            with self._lock:
                self.answers.append((float(stamp), node))

    def snapshot(self) -> List[Tuple[float, str]]:
        with self._lock:
            return list(self.answers)

    def wait_for(self, predicate, timeout: float) -> Optional[Tuple[float, str]]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            answers = self.snapshot()
            for answer in answers[seen:]:
                if predicate(answer):
                    return answer
            seen = len(answers)
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=5)


@dataclass
class ProfileResult:
    name: str
    failover_s: List[float] = field(default_factory=list)
    moves_after_heal: List[int] = field(default_factory=list)
    from_command_s: List[float] = field(default_factory=list)


def converge(profile: str) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    subprocess.run(
        ["ansible-playbook", "-i", os.path.join(ROOT, ".lab", "inventory"),
         os.path.join(ROOT, "tests", "bench", "converge.yml"),
         "-e", "@" + os.path.join(PROFILES_DIR, profile + ".yml")],
        check=True, env=env, stdout=subprocess.DEVNULL)


def settled_holder(timeout: float = 30.0) -> str:
    """Wait until exactly one node holds the VIP and keeps it for 3 s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        holder = lab("holder")
        if holder != last:
            last, since = holder, time.monotonic()
        elif holder != "none" and " " not in holder and time.monotonic() - since >= 3:
            return holder
        time.sleep(0.2)
    raise RuntimeError("the VIP did not settle on one node within %ss (last: %s)" % (timeout, last))


def moves(answers: List[Tuple[float, str]]) -> int:
    nodes = [node for _when, node in answers if node != "none"]
    return sum(1 for before, after in zip(nodes, nodes[1:]) if before != after)


def trial(vip: str, result: ProfileResult) -> None:
    holder = settled_holder()
    watcher = VipWatcher(vip, FAILOVER_LIMIT_S + HEAL_WATCH_S + 10)
    try:
        if watcher.wait_for(lambda a: a[1] == holder, 5) is None:
            raise RuntimeError("the edge probe does not reach the holder %s through the VIP" % holder)
        fault_at = time.monotonic()
        lab("fault", holder, "cloudcore")
        answer = watcher.wait_for(lambda a: a[0] >= fault_at and a[1] not in (holder, "none"), FAILOVER_LIMIT_S)
        if answer is None:
            raise RuntimeError("no other node answered within %ss after the fault on %s" % (FAILOVER_LIMIT_S, holder))
        # The failover an edge node sees: from the old holder's last answer (the stand-in stopping)
        # to the first answer of another node. The time from the fault command also counts the
        # lab CLI and `podman exec systemctl stop`, so it is printed alongside, not used.
        last_of_holder = max(t for t, node in watcher.snapshot() if node == holder and t <= answer[0])
        result.failover_s.append(answer[0] - last_of_holder)
        result.from_command_s.append(answer[0] - fault_at)
        heal_at = time.monotonic()
        lab("heal", holder, "cloudcore")
        time.sleep(HEAL_WATCH_S)
        after_heal = [a for a in watcher.snapshot() if a[0] >= heal_at]
        result.moves_after_heal.append(moves(after_heal))
    finally:
        watcher.stop()


def summary(result: ProfileResult) -> str:
    values = result.failover_s
    return ("%-8s trials=%d failover_s min=%.2f median=%.2f max=%.2f moves_after_heal max=%d (%s);"
            " from the fault command median=%.2f") % (
        result.name, len(values), min(values), statistics.median(values), max(values),
        max(result.moves_after_heal), " ".join("%.2f" % v for v in values), statistics.median(result.from_command_s))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--profiles", default="default,fast,seed")
    args = parser.parse_args()
    vip = lab_state()["vip_ipv4"].split("/")[0]
    results = []
    for profile in args.profiles.split(","):
        converge(profile)
        result = ProfileResult(profile)
        for number in range(1, args.trials + 1):
            trial(vip, result)
            print("%s trial %d: failover %.2fs (%.2fs from the fault command), moves after heal %d"
                  % (profile, number, result.failover_s[-1], result.from_command_s[-1], result.moves_after_heal[-1]),
                  flush=True)
        results.append(result)
    for result in results:
        print(summary(result))
    by_name = {r.name: r for r in results}

    def median(name: str) -> str:
        return "%.2f" % statistics.median(by_name[name].failover_s) if name in by_name else "n/a"

    default_moves = max(by_name["default"].moves_after_heal) if "default" in by_name else -1
    print("failover default_median_s=%s fast_median_s=%s seed_median_s=%s moves_after_heal=%d"
          % (median("default"), median("fast"), median("seed"), default_moves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
