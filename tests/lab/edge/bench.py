"""Measure the fleet and one CloudHub on loopback: CPU and RSS while connected, reconnect time.

``python -m edge.bench --count 1000 --profile edgecore-1.23 [--heartbeat 15] [--sample 60]``
from tests/lab. Starts ``standin/cloudhub.py`` (its own process, a fresh CA) on 127.0.0.1 and
the fleet (its own process) from 127.0.1.0/22; waits until every edge is connected; samples both
processes once a second for --sample seconds (CPU% from /proc/PID/stat utime+stime, RSS from
/proc/PID/status; medians); then stops CloudHub with SIGTERM (hub.stop(): every socket closed),
starts it again after --down seconds and times until every edge is connected again (from the
fleet's status file and, per edge, from its timeline). Prints one JSON object. Loopback only,
bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(LAB, "standin"))
import kubeedge_pki  # noqa: E402  (standin/: the lab's CloudCore PKI formats)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_status(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def wait_for(predicate, timeout: float, step: float = 0.2) -> float | None:
    """Seconds until predicate() held, None after timeout."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if predicate():
            return time.monotonic() - begin
        time.sleep(step)
    return None


def write_pki(directory: str) -> dict[str, str]:
    ca, ca_key = kubeedge_pki.new_ca()
    cert, key = kubeedge_pki.sign_server(ca, ca_key, ["127.0.0.1", "::1"], ["localhost"])
    files = {"ca": kubeedge_pki.cert_pem(ca), "ca_key": kubeedge_pki.key_pem(ca_key),
             "cert": kubeedge_pki.cert_pem(cert), "key": kubeedge_pki.key_pem(key)}
    paths = {}
    for name, data in files.items():
        paths[name] = os.path.join(directory, f"{name}.pem")
        with open(paths[name], "wb") as handle:
            handle.write(data)
    return paths


def start_hub(python: str, pki: dict, args, log) -> subprocess.Popen:
    command = [python, os.path.join(LAB, "standin", "cloudhub.py"), "--node", "bench-hub", "--ca", pki["ca"],
               "--cert", pki["cert"], "--key", pki["key"], "--bind", "127.0.0.1", "--port", str(args.port),
               "--tunnel-port", str(args.port + 4), "--metrics", f"127.0.0.1:{args.port + 9}",
               "--node-limit", str(args.count * 2), "--quiet"]
    if args.keepalive_timeout:
        command += ["--keepalive-timeout", str(args.keepalive_timeout)]
    hub = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    return hub


def sample(pids: dict[str, int], seconds: float) -> dict:
    """Medians of per-second CPU% and RSS."""
    cpu, rss = {n: [] for n in pids}, {n: [] for n in pids}
    last = {n: cpu_seconds(p) for n, p in pids.items()}
    for _second in range(int(seconds)):
        time.sleep(1)
        for name, pid in pids.items():
            now = cpu_seconds(pid)
            cpu[name].append(100.0 * (now - last[name]))
            last[name] = now
            rss[name].append(rss_kib(pid))
    return {name: {"cpu_percent_median": round(statistics.median(cpu[name]), 1),
                   "cpu_percent_max": round(max(cpu[name]), 1),
                   "rss_mib_median": round(statistics.median(rss[name]) / 1024, 1)} for name in pids}


def spread(values: list[float]) -> dict:
    if not values:
        return {}
    values = sorted(values)
    return {"n": len(values), "min_s": round(values[0], 1), "median_s": round(statistics.median(values), 1),
            "p95_s": round(values[int(0.95 * (len(values) - 1))], 1), "max_s": round(values[-1], 1)}


def per_edge_delays(timeline: dict, stop_wall: float) -> dict:
    """Per edge, from the stop: its first dial and its first 'connected'; failed dials by reason."""
    first_dial, back, failures = [], [], {}
    for edge in timeline["edges"].values():
        after = [e for e in edge["events"] if e[1] > stop_wall]
        dials = [e[1] - stop_wall for e in after if e[2] == "dial"]
        connected = [e[1] - stop_wall for e in after if e[2] == "connected"]
        first_dial += dials[:1]
        back += connected[:1]
        for e in after:
            if e[2] == "dial_failed" and (not connected or e[1] - stop_wall < connected[0]):
                failures[e[3]] = failures.get(e[3], 0) + 1
    return {"first_dial": spread(first_dial), "connected": spread(back), "failed_dials": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--profile", default="edgecore-1.23")
    parser.add_argument("--heartbeat", type=float, help="edge heartbeat (default: the profile's 15 s)")
    parser.add_argument("--keepalive-timeout", type=float, help="CloudHub's (default 30 s)")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds of CPU/RSS sampling")
    parser.add_argument("--down", type=float, default=0.0, help="seconds CloudHub stays stopped")
    parser.add_argument("--port", type=int, default=21000)
    parser.add_argument("--ramp", type=float, default=100.0)
    parser.add_argument("--reconnect-timeout", type=float, default=300.0)
    parser.add_argument("--python", default=sys.executable, help="Python for CloudHub (e.g. python3.11)")
    parser.add_argument("--keep", help="copy the fleet's timeline and both logs into this directory")
    parser.add_argument("--fleet-arg", action="append", default=[], help="extra fleet argument (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ccha-bench-") as tmp:
        pki = write_pki(tmp)
        status, timeline = os.path.join(tmp, "status.json"), os.path.join(tmp, "timeline.json")
        with open(os.path.join(tmp, "hub.log"), "wb") as hub_log, open(os.path.join(tmp, "fleet.log"), "wb") as flog:
            hub = start_hub(args.python, pki, args, hub_log)
            fleet_cmd = [sys.executable, "-m", "edge", "fleet", "--count", str(args.count), "--profile", args.profile,
                         "--server", f"127.0.0.1:{args.port}", "--tunnel-port", str(args.port + 4),
                         "--source-addresses", "127.0.1.0/22,127.0.5.0/22", "--ca-cert", pki["ca"],
                         "--ca-key", pki["ca_key"], "--status-file", status, "--timeline", timeline,
                         "--ramp", str(args.ramp), "--duration", "1800", *args.fleet_arg]
            if args.heartbeat:
                fleet_cmd += ["--heartbeat", str(args.heartbeat)]
            fleet = subprocess.Popen(fleet_cmd, cwd=LAB, stdout=flog, stderr=subprocess.STDOUT)
            result: dict = {"count": args.count, "profile": args.profile, "heartbeat": args.heartbeat or 15.0,
                            "hub_python": args.python}
            try:
                ready = wait_for(lambda: read_status(status).get("ready"), 120)
                result["ready_after_s"] = None if ready is None else round(read_status(status)["ready_at"], 1)
                result["connected"] = sample({"fleet": fleet.pid, "hub": hub.pid}, args.sample)
                before = read_status(status)["reconnects"]
                hub.send_signal(signal.SIGTERM)
                hub.wait(20)
                stop_wall = time.time()
                time.sleep(args.down)
                hub = start_hub(args.python, pki, args, hub_log)
                restart_wall = time.time()

                def all_back() -> bool:
                    now = read_status(status)
                    return (now.get("connected_total") == args.count and now["time"] > restart_wall
                            and now["reconnects"] >= before + args.count)
                back = wait_for(all_back, args.reconnect_timeout)
                result["all_back_after_stop_s"] = None if back is None else round(time.time() - stop_wall, 1)
                result["down_s"] = args.down
            finally:
                fleet.send_signal(signal.SIGTERM)
                fleet.wait(60)
                hub.send_signal(signal.SIGTERM)
                hub.wait(20)
            with open(timeline, encoding="utf-8") as handle:
                result["per_edge_reconnect"] = per_edge_delays(json.load(handle), stop_wall)
            result["stop_wall"] = stop_wall
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for name in ("timeline.json", "hub.log", "fleet.log"):
                    shutil.copy(os.path.join(tmp, name), args.keep)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
