"""What a CloudCore failure costs the edges in vip mode and in balanced mode, on the lab.

3 nodes, the whole site (site.yml) in each mode in turn, COUNT edges behaving like edgecore v1.23.1
(`edgecore-1.23`, the released edgehub) connected through the VIP. For each mode, each victim (the
CloudCore of the VIP holder, and of a node that does not hold the VIP) and each trial:

  fleet up (every edge connected and served) -> CloudCore stopped on the victim -> until every edge is
  served again (or 180 s) -> CloudCore started again -> fleet down (it writes its timeline).

In balanced mode a trial starts once the VIP holder's haproxy counts every CloudCore UP again (a
healed CloudCore rejoins after haproxy's rise checks; a fleet started before would skip it), and the
spread counts a CloudCore without edges as 0. Each trial's fleet has source addresses no earlier trial
used: balanced mode's haproxy keeps an edge on
its CloudCore for stick_expire (4 h), so a reused address would start where the last trial left it.

Per case (mode x victim) it prints, over the trials: the edges disconnected by the failure (their
session ended after it), their reconnect seconds p50/p95 (from the failure to being served again),
edges not back within 180 s, whether the VIP moved, and, in balanced mode, the spread of a fresh fleet
over the CloudCores (max/min) and the share of edges whose websocket and tunnel reached the same
CloudCore (paired, the lowest seen once every edge was back). A picture per mode (edges connected per
CloudCore over time for the non-holder's failure) goes to OUT. Last line:
  balanced edges_hit_vip=... edges_hit_balanced=... spread_max_min=... paired_pct=...
where edges_hit_* is the median over the trials of the edges one CloudCore failure disconnects at worst
(whichever victim disconnects more), spread the median over the balanced trials' fresh fleets, paired
the lowest over them.

usage (root; make setup done): python tests/bench/bench_balanced.py [--trials 3] [--count 170] [--out DIR]
Probes and fleets run inside the lab's edge namespace; nothing in the root namespace addresses the lab.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from bench_edge import (  # noqa: E402
    BACK_WITHIN_S, connection_steps, edges_connected, holders, lab, percentile, playbook, status, timeline, wait)

FLEET = "edgecore-1.23"
EDGE_ADDRESSES = 1022  # the lab's edge subnet, 10.213.104.0/22 (tests/lab/edges.py)
MODES = ("vip", "balanced")
VICTIMS = ("holder", "non-holder")


@dataclass
class Trial:
    mode: str
    victim: str
    failed_at: float  # CLOCK_MONOTONIC (the fleet's clock)
    healed_at: float
    holder_before: str
    holder_after: List[str]
    fresh: dict  # the fleet's status before the failure
    settled: dict  # the fleet's status once every edge was back
    timeline: dict

    def hit(self) -> Dict[str, float]:
        """Per edge whose session ended after the failure: seconds until it was served again (inf: never)."""
        mono0 = self.timeline["clock"]["mono0"]
        out = {}
        for name, edge in self.timeline["edges"].items():
            after = [(mono0 + t, event) for t, _wall, event, _d in edge["events"] if mono0 + t >= self.failed_at]
            ended = [t for t, event in after if event in ("wire_error", "teardown")]
            if not ended:
                continue
            back = [t for t, event in after if event == "connected" and t >= ended[0]]
            out[name] = (back[0] - self.failed_at) if back else math.inf
        return out


def steady(count: int) -> Optional[dict]:
    current = status(FLEET)
    ok = current.get("connected_total") == count and current.get("disconnected") == 0 and len(holders()) == 1
    return current if ok else None


# haproxy's view of its servers (admin socket, `show stat`), read inside a node with its own python3
STAT_SCRIPT = ("import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/run/haproxy/admin.sock')\n"
               "s.sendall(b'show stat\\n')\nout = b''\nwhile True:\n    chunk = s.recv(65536)\n"
               "    if not chunk:\n        break\n    out += chunk\nprint(out.decode())\n")


def servers_down(node: str) -> List[str]:
    """The CloudCore servers `node`'s haproxy does not count as UP (a healed CloudCore rejoins after
    haproxy's rise checks: a fleet started before that would skip it)."""
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "tests", "lab", "containers.conf"))
    proc = subprocess.run(["podman", "exec", node, "python3", "-c", STAT_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines or not lines[0].startswith("# "):
        return ["(no stats from %s: %s)" % (node, proc.stderr.strip())]
    header = lines[0][2:].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return ["%s/%s %s" % (row["pxname"], row["svname"], row["status"]) for row in rows
            if row.get("pxname", "").startswith("cloudcore_") and row.get("svname") not in ("FRONTEND", "BACKEND")
            and not row.get("status", "").startswith("UP")]


def run_trial(mode: str, victim: str, count: int, nodes: List[str], offset: int) -> Trial:
    if mode == "balanced":  # every CloudCore in service on the holder's haproxy before the edges arrive
        assert wait(lambda: not servers_down(holders()[0]) if len(holders()) == 1 else False, 60), \
            servers_down(holders()[0])
    lab("edges", "up", "--name", FLEET, "--profile", FLEET, "--count", str(count), "--offset", str(offset))
    assert wait(lambda: steady(count) is not None and status(FLEET).get("paired") == count, 120), status(FLEET)
    holder = holders()[0]
    fresh = status(FLEET)
    target = holder if victim == "holder" else next(node for node in nodes if node != holder)
    failed_at = time.monotonic()
    lab("fault", target, "cloudcore")
    served_by_target = (fresh.get("connected") or {}).get(target, 0) > 0
    # back: every edge served, none by the victim, and (when the victim served any) they reconnected
    back = wait(lambda: steady(count) is not None and target not in status(FLEET).get("connected", {})
                and (not served_by_target or status(FLEET).get("reconnects", 0) > fresh.get("reconnects", 0)),
                BACK_WITHIN_S)
    settled = status(FLEET)
    holder_after = holders()
    healed_at = time.monotonic()
    lab("heal", target, "cloudcore")
    time.sleep(5)
    lab("edges", "down", "--name", FLEET)
    del back
    return Trial(mode, victim, failed_at, healed_at, holder, holder_after, fresh, settled, timeline(FLEET))


def spread(current: dict, nodes: List[str]) -> float:
    """Edges per CloudCore, max/min over every node (a CloudCore with no edge counts, as 0)."""
    counts = [(current.get("connected") or {}).get(node, 0) for node in nodes]
    return max(counts) / max(min(counts), 1) if len(counts) > 1 else float("nan")


def picture(trials: List[Trial], out: str) -> Optional[str]:
    """Edges connected per CloudCore over time, one panel per mode, for the non-holder's failure."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    chosen = [next((t for t in trials if t.mode == mode and t.victim == "non-holder"), None) for mode in MODES]
    chosen = [t for t in chosen if t is not None]
    if not chosen:
        return None
    figure, axes = plt.subplots(len(chosen), 1, figsize=(10, 3 * len(chosen)), sharex=True, squeeze=False)
    for axis, trial in zip(axes[:, 0], chosen):
        t0 = trial.failed_at
        points = connection_steps(trial.timeline, t0)
        end = trial.healed_at - t0 + 5
        for node in sorted({who for _s, who, _step in points}):
            xs, ys = edges_connected(points, node, -10.0, end)
            axis.step(xs, ys, where="post", label=node + (" (VIP)" if node == trial.holder_before else ""))
        axis.axvline(0, color="black", ls="--", lw=1)
        axis.set_xlim(-10, end)
        axis.set_ylabel("%s mode\nedges connected" % trial.mode)
        axis.legend(loc="center right", fontsize="small")
    axes[0, 0].set_title("CloudCore stopped at 0 on a node that does not hold the VIP (edgecore v1.23.1 edges)")
    axes[-1, 0].set_xlabel("seconds from the failure")
    path = os.path.join(out, "edge-balanced.png")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else ("%.*f" % (digits, value))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--count", type=int, default=170,
                        help="edges per trial; every trial of a mode gets fresh source addresses (haproxy keeps an"
                             " edge on its CloudCore for stick_expire), so trials x 2 x count must fit the edge"
                             " subnet's %d addresses" % EDGE_ADDRESSES)
    parser.add_argument("--out", default=os.path.join(ROOT, ".build", "bench-edge"))
    args = parser.parse_args()
    if args.trials * len(VICTIMS) * args.count > EDGE_ADDRESSES:
        parser.error("--trials %d x %d victims x --count %d edges exceed the edge subnet's %d addresses"
                     % (args.trials, len(VICTIMS), args.count, EDGE_ADDRESSES))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(ROOT, ".lab", "lab.json")) as handle:
        nodes = [node["name"] for node in json.load(handle)["nodes"]]
    trials = []  # type: List[Trial]
    try:
        for mode in MODES:
            playbook("-e", json.dumps({"cloudcore_ha_mode": mode}))
            for number in range(args.trials):
                for index, victim in enumerate(VICTIMS):
                    offset = (number * len(VICTIMS) + index) * args.count
                    trial = run_trial(mode, victim, args.count, nodes, offset)
                    trials.append(trial)
                    print("%s %s trial %d: %d edges hit, VIP %s -> %s" % (
                        mode, victim, number + 1, len(trial.hit()), trial.holder_before, trial.holder_after),
                        flush=True)
    finally:
        lab("edges", "down", "--name", FLEET, check=False)
    print("\nmode      CloudCore stopped  edges hit  reconnect p50/p95 s  not back  VIP moved  spread  paired %")
    worst = {mode: [] for mode in MODES}  # type: Dict[str, List[int]]
    for mode in MODES:
        for victim in VICTIMS:
            cases = [t for t in trials if t.mode == mode and t.victim == victim]
            hits = [t.hit() for t in cases]
            seconds = [s for hit in hits for s in hit.values() if not math.isinf(s)]
            lost = sum(1 for hit in hits for s in hit.values() if math.isinf(s))
            moved = sum(1 for t in cases if t.holder_after != [t.holder_before])
            spreads = [spread(t.fresh, nodes) for t in cases] if mode == "balanced" else []
            paired = [100.0 * t.settled.get("paired", 0) / args.count for t in cases]
            print("%-9s %-18s %9s  %8s/%-9s  %8d  %6d/%d  %6s  %8s" % (
                mode, victim, fmt(statistics.median(len(h) for h in hits), 0), fmt(percentile(seconds, 0.5)),
                fmt(percentile(seconds, 0.95)), lost, moved, len(cases),
                fmt(statistics.median(spreads), 2) if spreads else "-", fmt(min(paired), 1)))
        per_trial = {}  # type: Dict[int, int]
        for index, trial in enumerate(t for t in trials if t.mode == mode):
            per_trial.setdefault(index // len(VICTIMS), 0)
            per_trial[index // len(VICTIMS)] = max(per_trial[index // len(VICTIMS)], len(trial.hit()))
        worst[mode] = list(per_trial.values())
    path = picture(trials, args.out)
    if path:
        print("  picture: %s" % os.path.relpath(path, ROOT))
    balanced = [t for t in trials if t.mode == "balanced"]
    print("balanced edges_hit_vip=%s edges_hit_balanced=%s spread_max_min=%s paired_pct=%s" % (
        fmt(statistics.median(worst["vip"]), 0), fmt(statistics.median(worst["balanced"]), 0),
        fmt(statistics.median(spread(t.fresh, nodes) for t in balanced), 2),
        fmt(min(100.0 * t.settled.get("paired", 0) / args.count for t in balanced), 1)))
    playbook("-e", json.dumps({"cloudcore_ha_mode": "vip"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
