"""`lab edges up|status|down`: edge fleets (tests/lab/edge) in the lab's edge namespace.

Standard library only (lab.py imports it). A fleet is one `python -m edge fleet` process inside
`ccha-edge`, run with the project venv's Python, its edges on their own addresses of the routed
edge subnet (EDGE_SUBNET, on the edge namespace's eth0; every node routes it via the edge namespace,
as a real site routes its edge networks through a gateway). Its certificates are signed with
CloudCore's CA, read from Secret kubeedge/casecret through the API stand-in on loopback (a lab
shortcut for /edge.crt). Each fleet has a name: several run side by side (e.g. one per profile), on
disjoint addresses. Files: .lab/edges/<name>/ (ca, status.json, timeline.json, log); its pid file in
.lab/run/ so that `lab down` stops it before it removes the network.
"""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time

EDGE_SUBNET = ipaddress.ip_network("10.213.104.0/22")  # 1022 edge addresses
FLEET_DIR_NAME = "edges"


def fleet_dir(lab_dir: str, name: str) -> str:
    return os.path.join(lab_dir, FLEET_DIR_NAME, name)


def addresses(offset: int, count: int) -> list[str]:
    hosts = list(EDGE_SUBNET.hosts())
    if offset < 0 or offset + count > len(hosts):
        raise ValueError(f"{count} edges from offset {offset} do not fit {EDGE_SUBNET} ({len(hosts)} addresses)")
    return [str(address) for address in hosts[offset:offset + count]]


def address_batch(listed: list[str], interface: str, add: bool) -> str:
    """`ip -batch` lines that add (replace) or delete the fleet's addresses."""
    verb = "replace" if add else "del"
    return "".join(f"addr {verb} {a}/{EDGE_SUBNET.prefixlen} dev {interface}\n" for a in listed)


CA_SCRIPT = """
import base64, json, sys
from kubernetes import client, config
api = client.CoreV1Api(config.new_client_from_config(config_file=sys.argv[1]))
data = api.read_namespaced_secret("casecret", "kubeedge").data
open(sys.argv[2], "wb").write(base64.b64decode(data["cadata"]))
import os
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, base64.b64decode(data["cakeydata"]))
os.close(fd)
"""


def fetch_ca(python: str, kubeconfig: str, directory: str) -> tuple[str, str]:
    """CloudCore's CA (DER) from Secret kubeedge/casecret, via the API stand-in on loopback."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    cert, key = os.path.join(directory, "ca.der"), os.path.join(directory, "ca.key.der")
    proc = subprocess.run([python, "-c", CA_SCRIPT, kubeconfig, cert, key], capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cannot read Secret kubeedge/casecret (is CloudCore deployed?): {last}")
    return cert, key


def fleet_command(python: str, edge_dir: str, server: str, count: int, profile: str, sources: list[str],
                  ca: tuple[str, str], directory: str, name: str, extra: list[str]) -> list[str]:
    return [python, "-m", "edge", "fleet", "--count", str(count), "--profile", profile, "--server", server,
            "--source-addresses", ",".join(sources), "--ca-cert", ca[0], "--ca-key", ca[1],
            "--status-file", os.path.join(directory, "status.json"),
            "--timeline", os.path.join(directory, "timeline.json"),
            "--name-prefix", f"{name}-", "--duration", "14400", *extra]


def read_status(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, "status.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


def summary(name: str, status: dict | None) -> str:
    if not status:
        return f"{name}: no status yet"
    per_core = " ".join(f"{core}={count}" for core, count in sorted((status.get("connected") or {}).items()))
    return (f"{name}: {status.get('profile')} edges={status.get('edges')} connected={status.get('connected_total')} "
            f"[{per_core or '-'}] disconnected={status.get('disconnected')} reconnects={status.get('reconnects')} "
            f"ready={status.get('ready')} running={status.get('running')}")


def wait_ready(directory: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(directory)
        if status and status.get("ready"):
            return status
        if process.poll() is not None:
            raise RuntimeError(f"the fleet exited with {process.returncode}; see {directory}/log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fleet is not ready after {timeout:.0f} s: {summary('fleet', status)}")
        time.sleep(0.5)


def stop(pid: int, directory: str, timeout: float = 60) -> bool:
    """SIGTERM, then wait for the timeline (the fleet writes it on the way out)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True
