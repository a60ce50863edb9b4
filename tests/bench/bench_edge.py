"""What edge nodes experience during a CloudCore failure and its recovery, on the lab.

3 nodes, the whole site (site.yml), and two edge fleets connected through the VIP side by side:
COUNT edges behaving like edgecore v1.23.1's edgehub (`edgecore-1.23`) and COUNT like the reconnect logic
proposed upstream (`edgecore-next`, PRs #6966/#6967, not merged). For each keepalived configuration
(`ours`: the collection's defaults, fault mode with nopreempt; `seed`: the KubeEdge guide's style,
weighted check with preempt, interval 2 s), each fault on the VIP holder (cloudcore stopped,
keepalived SIGKILLed, link down, container restart, the drill's drain file) and each trial:

  fleets up (every edge connected) -> fault on the holder -> until every edge is back (or 180 s)
  -> heal -> until the VIP has been still for 20 s and every edge is back (or 180 s) -> fleets down
  (they write their timelines).

Per case (configuration x fault x profile) it prints, over the trials: the VIP move (s, from the
old holder's last answer to the new holder's first, as the edge-side probe sees it), each edge's
reconnect time p50/p95/max (s, from the fault to the edge being served again), edges not back within
180 s, reconnects per edge over the whole cycle, and the edge-disconnected seconds summed over the
edges and the cycle (after the fault: fault -> reconnect; after the heal, for edges that lost their
session again: the VIP moving back -> reconnect). One PNG per case and configuration (edges
connected per CloudCore over time, the VIP holder as a band, fault and heal marked) goes to OUT.
Last line:
  edge ours_p95_s=... seed_p95_s=... ours_outage_edge_s=... seed_outage_edge_s=... lost=N
(edgecore-1.23, the released edgecore, over every fault; outage = mean per trial).

usage (root; make setup done): python tests/bench/bench_edge.py [--trials 3] [--count 200] [--out DIR]
                                [--faults cloudcore,keepalived-kill,link,restart,drill] [--configs ours,seed]
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
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from bench_failover import VipWatcher  # noqa: E402  pylint: disable=wrong-import-position

LAB = os.path.join(ROOT, "tests", "lab", "lab")
LAB_DIR = os.path.join(ROOT, ".lab")
PROFILES = ("edgecore-1.23", "edgecore-next")
FAULTS = ("cloudcore", "keepalived-kill", "link", "restart", "drill")
BACK_WITHIN_S = 180.0
STILL_S = 20.0
CONFIGS = {
    # the collection's defaults
    "ours": {},
    # the guide's keepalived style (weighted check every 2 s, preempt, 100/99/98) with the smallest weight
    # that fails over (its weight 2 ties at 100/99/98) and /ca.crt (its /readyz answers 404 since v1.7)
    "seed": {"cloudcore_failover": "weighted", "cloudcore_check_interval": 2, "cloudcore_check_fall": 2,
             "cloudcore_check_rise": 1, "cloudcore_check_timeout": 2,
             "keepalived_priorities": {"ccha-node1": 100, "ccha-node2": 99, "ccha-node3": 98},
             "keepalived_multicast_group": "224.0.0.19"},
}


def lab(*args: str, check: bool = True, timeout: float = 600) -> str:
    proc = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("lab %s: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))
    return proc.stdout.strip()


def holders() -> List[str]:
    out = lab("holder").split()
    return [] if out == ["none"] else out


def playbook(*extra: str) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run(["ansible-playbook", "-i", os.path.join(LAB_DIR, "inventory"),
                           os.path.join(ROOT, "site.yml"), *extra], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError("site.yml failed:\n" + (proc.stdout + proc.stderr)[-3000:])


def status(name: str) -> dict:
    try:
        with open(os.path.join(LAB_DIR, "edges", name, "status.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def timeline(name: str) -> dict:
    with open(os.path.join(LAB_DIR, "edges", name, "timeline.json")) as handle:
        return json.load(handle)


def node_exec(node: str, command: str) -> None:
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "tests", "lab", "containers.conf"))
    subprocess.run(["podman", "exec", node, "sh", "-c", command], check=True, env=env, capture_output=True,
                   timeout=60)


def fault(kind: str, node: str, heal: bool) -> None:
    if kind == "drill":  # the failover drill's drain file (keepalived_drain_file): CloudCore keeps running
        node_exec(node, "rm -f /run/cloudcore-ha/drain" if heal else "mkdir -p /run/cloudcore-ha && "
                                                                     "touch /run/cloudcore-ha/drain")
    else:
        lab("heal" if heal else "fault", node, kind)


def wait(predicate, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def all_connected(counts: Dict[str, int]) -> bool:
    return all(status(name).get("connected_total") == count and status(name).get("disconnected") == 0
               for name, count in counts.items())


@dataclass
class Trial:
    fault_wall: float  # CLOCK_MONOTONIC seconds (the probe's and the fleets' clock)
    heal_wall: float
    moves: List[Tuple[float, float, str]]  # (old holder's last answer, new holder's first answer, new holder)
    timelines: Dict[str, dict]
    answers: List[Tuple[float, str]]


@dataclass
class Case:
    config: str
    fault: str
    trials: List[Trial] = field(default_factory=list)


def vip_moves(answers: List[Tuple[float, str]], since: float) -> List[Tuple[float, float, str]]:
    moves, last = [], None  # type: List[Tuple[float, float, str]], Optional[Tuple[float, str]]
    for stamp, node in answers:
        if node == "none" or stamp < since - 30:
            continue
        if last is not None and node != last[1] and stamp >= since:
            moves.append((last[0], stamp, node))
        last = (stamp, node)
    return moves


def run_trial(config: str, kind: str, count: int, watcher: VipWatcher, fleet_args: List[str]) -> Trial:
    counts = {profile: count for profile in PROFILES}
    for index, profile in enumerate(PROFILES):
        lab("edges", "up", "--name", profile, "--profile", profile, "--count", str(count),
            "--offset", str(index * count), *(["--"] + fleet_args if fleet_args else []))
    assert wait(lambda: len(holders()) == 1 and all_connected(counts), 120), "no steady site before the fault"
    holder = holders()[0]
    before = {name: status(name).get("reconnects", 0) for name in counts}
    fault_wall = time.monotonic()  # CLOCK_MONOTONIC, shared with the probe and the fleets
    fault(kind, holder, heal=False)
    # in VIP mode a fault on the holder ends every session: back = every edge reconnected once
    back = wait(lambda: all_connected(counts) and len(holders()) == 1 and all(
        status(name).get("reconnects", 0) - before[name] >= count for name, count in counts.items()), BACK_WITHIN_S)
    heal_wall = time.monotonic()
    fault(kind, holder, heal=True)
    settled_at = [time.monotonic()]

    def settled() -> bool:
        answers = [node for stamp, node in watcher.snapshot() if stamp >= time.monotonic() - STILL_S]
        if len(set(answers)) > 1 or "none" in answers:
            settled_at[0] = time.monotonic()
        return all_connected(counts) and time.monotonic() - settled_at[0] >= STILL_S

    wait(settled, BACK_WITHIN_S + STILL_S)
    for profile in PROFILES:
        lab("edges", "down", "--name", profile)
    answers = [a for a in watcher.snapshot() if a[0] >= fault_wall - 5]
    del back
    return Trial(fault_wall, heal_wall, vip_moves(answers, fault_wall), {p: timeline(p) for p in PROFILES}, answers)


# ---------------------------------------------------------------------------------------- figures

def edge_figures(trial: Trial, profile: str) -> Dict[str, List[float]]:
    """Per edge: reconnect seconds after the fault, after the VIP moved back; reconnects; outage."""
    back_move = [m for m in trial.moves if m[1] >= trial.heal_wall]
    first, lost, reconnects, outage = [], 0, [], []
    mono0 = trial.timelines[profile]["clock"]["mono0"]
    for edge in trial.timelines[profile]["edges"].values():
        connects = [mono0 + e[0] for e in edge["events"] if e[2] == "connected" and mono0 + e[0] >= trial.fault_wall]
        reconnects.append(float(len(connects)))
        if not connects or connects[0] - trial.fault_wall > BACK_WITHIN_S:
            lost += 1
            outage.append(BACK_WITHIN_S)
            continue
        first.append(connects[0] - trial.fault_wall)
        total = connects[0] - trial.fault_wall
        if back_move:
            again = [wall for wall in connects if wall >= back_move[0][1]]
            if again:
                total += again[0] - back_move[0][0]
        outage.append(total)
    return {"reconnect": first, "lost": [float(lost)], "reconnects": reconnects, "outage": [sum(outage)]}


def percentile(values: List[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def case_row(case: Case, profile: str) -> Dict[str, float]:
    merged = {"reconnect": [], "lost": [], "reconnects": [], "outage": []}  # type: Dict[str, List[float]]
    moves = []
    for trial in case.trials:
        for key, values in edge_figures(trial, profile).items():
            merged[key] += values
        moves += [new - old for old, new, _node in trial.moves if new < trial.heal_wall]
    return {"vip_move_s": statistics.median(moves) if moves else float("nan"),
            "p50": percentile(merged["reconnect"], 0.5), "p95": percentile(merged["reconnect"], 0.95),
            "max": max(merged["reconnect"] or [float("nan")]), "lost": sum(merged["lost"]),
            "reconnects_per_edge": statistics.mean(merged["reconnects"]) if merged["reconnects"] else float("nan"),
            "outage_edge_s": statistics.mean(merged["outage"]) if merged["outage"] else float("nan"),
            "raw_reconnect": merged["reconnect"], "raw_outage": merged["outage"]}


def connection_steps(timeline: dict, t0: float) -> List[Tuple[float, str, int]]:
    """A fleet timeline as (seconds from t0, CloudCore, +1 connected / -1 lost), in time order."""
    mono0, points = timeline["clock"]["mono0"], []
    for edge in timeline["edges"].values():
        current = None
        for since_start, _wall, event, detail in edge["events"]:
            stamp = mono0 + since_start - t0
            if event == "connected":
                if current:
                    points.append((stamp, current, -1))
                current = detail
                points.append((stamp, current, +1))
            elif event in ("wire_error", "teardown") and current:
                points.append((stamp, current, -1))
                current = None
    return sorted(points)


def edges_connected(points: List[Tuple[float, str, int]], node: str, start: float,
                    end: float) -> Tuple[List[float], List[int]]:
    """The edges connected to `node` over time from connection_steps, as step-plot coordinates."""
    level, xs, ys = 0, [start], [0]
    for stamp, who, step in points:
        if who == node:
            level += step
            xs.append(stamp)
            ys.append(level)
    return xs + [end], ys + [level]


def picture(case: Case, out: str) -> Optional[str]:
    """Edges connected per CloudCore over time (both profiles), the VIP holder as a band."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    trial = case.trials[0]
    t0 = trial.fault_wall
    nodes = sorted({e[3] for p in PROFILES for edge in trial.timelines[p]["edges"].values()
                    for e in edge["events"] if e[2] == "connected"})
    figure, axes = plt.subplots(len(PROFILES), 1, figsize=(10, 6), sharex=True)
    colours = dict(zip(nodes, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    end = max(a[0] for a in trial.answers) - t0
    for axis, profile in zip(axes, PROFILES):
        points = connection_steps(trial.timelines[profile], t0)
        for node in nodes:
            xs, ys = edges_connected(points, node, -5.0, end)
            axis.step(xs, ys, where="post", label=node, color=colours.get(node))
        for (stamp, node), nxt in zip(trial.answers, trial.answers[1:] + [(end + t0, "none")]):
            if node != "none":
                axis.axvspan(stamp - t0, nxt[0] - t0, color=colours.get(node, "grey"), alpha=0.08, lw=0)
        axis.axvline(0, color="black", ls="--", lw=1)
        axis.axvline(trial.heal_wall - t0, color="black", ls=":", lw=1)
        axis.set_ylabel("%s\nedges connected" % profile)
        axis.set_xlim(-5, end)
    axes[0].legend(loc="upper right", fontsize="small", title="CloudCore (band: VIP holder)")
    axes[0].set_title("%s: %s on the VIP holder at 0 (dashed), healed at %.0f s (dotted)" % (
        case.config, case.fault, trial.heal_wall - t0))
    axes[-1].set_xlabel("seconds from the fault")
    path = os.path.join(out, "edge-%s-%s.png" % (case.config, case.fault))
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else ("%.*f" % (digits, value))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--count", type=int, default=200, help="edges per profile")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", default=os.path.join(ROOT, ".build", "bench-edge"))
    parser.add_argument("--fleet-args", default="", help="extra fleet options, e.g. '--heartbeat 5' (quick runs)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    faults, configs = args.faults.split(","), args.configs.split(",")
    fleet_args = args.fleet_args.split()
    cases = []  # type: List[Case]
    state = json.load(open(os.path.join(LAB_DIR, "lab.json")))
    watcher = VipWatcher(state["vip_ipv4"].split("/")[0], seconds=6 * 3600)
    try:
        for config in configs:
            playbook("-e", json.dumps(CONFIGS[config]))
            for kind in faults:
                case = Case(config, kind)
                for number in range(args.trials):
                    case.trials.append(run_trial(config, kind, args.count, watcher, fleet_args))
                    print("%s %s trial %d: VIP moves %s" % (config, kind, number + 1,
                          ["%.2f s -> %s" % (new - old, node) for old, new, node in case.trials[-1].moves]),
                          flush=True)
                cases.append(case)
    finally:
        watcher.stop()
        for profile in PROFILES:
            lab("edges", "down", "--name", profile, check=False)
    with open(os.path.join(args.out, "cases.json"), "w") as handle:
        json.dump([{"config": c.config, "fault": c.fault, "profile": p, **case_row(c, p)}
                   for c in cases for p in PROFILES], handle)
    print("\nconfig fault            profile        VIP move s  reconnect p50/p95/max s  not back  reconnects/edge"
          "  edge-disconnected s (sum)")
    totals = {config: {"p95": [], "outage": [], "lost": 0.0} for config in configs}  # edgecore-1.23
    for case in cases:
        for profile in PROFILES:
            row = case_row(case, profile)
            print("%-6s %-16s %-14s %10s  %7s/%s/%s  %8d  %15s  %10s" % (
                case.config, case.fault, profile, fmt(row["vip_move_s"], 2), fmt(row["p50"]), fmt(row["p95"]),
                fmt(row["max"]), row["lost"], fmt(row["reconnects_per_edge"], 2), fmt(row["outage_edge_s"], 0)))
            if profile == "edgecore-1.23":
                totals[case.config]["p95"] += row["raw_reconnect"]
                totals[case.config]["outage"] += row["raw_outage"]
                totals[case.config]["lost"] += row["lost"]
        path = picture(case, args.out)
        if path:
            print("  picture: %s" % os.path.relpath(path, ROOT))
    print("edge " + " ".join("%s_p95_s=%s %s_outage_edge_s=%s" % (
        config, fmt(percentile(totals[config]["p95"], 0.95)), config,
        fmt(statistics.mean(totals[config]["outage"]) if totals[config]["outage"] else float("nan"), 0))
        for config in configs) + " lost=%d" % sum(t["lost"] for t in totals.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
