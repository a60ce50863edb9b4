"""Fixtures of the integration tests: the lab (3 nodes, API stand-in, CloudCore stand-ins), playbook
runs, and snapshots of everything a run could change (keepalived.conf on the nodes, API objects).

Network safety: the tests never address the lab subnet from the root namespace; the lab CLI's
probes run inside the lab's edge namespace, node commands run through podman exec."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
LAB_DIR = os.path.join(ROOT, ".lab")
INVENTORY = os.path.join(LAB_DIR, "inventory")
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "tests", "lab", "containers.conf"))


def lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, check=False)


def holders(address: Optional[str] = None) -> List[str]:
    """The nodes holding the lab's VIP, or `address` (a VIP change's new or old one)."""
    out = lab("holder", *(("--address", address) if address else ())).stdout.split()
    return [] if out == ["none"] else out


def single_holder(other_than: Optional[str] = None) -> Optional[str]:
    """The one node holding the lab's VIP, if exactly one does and it is not `other_than`; else None.
    One look at the lab per call: while the VIP moves, two looks can see two different states."""
    now = holders()
    return now[0] if len(now) == 1 and now[0] != other_than else None


def watch_vip(address: str, seconds: float) -> subprocess.Popen:
    """Who answers on address:10002, sampled every 50 ms from the edge namespace (bounded in time);
    samples(watcher) stops it and gives the answers."""
    return subprocess.Popen(["ip", "netns", "exec", "ccha-edge", sys.executable,
                             os.path.join(ROOT, "tests", "bench", "vip_watch.py"), address,
                             "--seconds", str(seconds), "--interval", "0.05"], stdout=subprocess.PIPE, text=True)


def samples(watcher: subprocess.Popen) -> List[str]:
    """The answers a watch_vip watcher saw (a node's name or "none" per sample), once it is stopped."""
    watcher.terminate()
    return watcher.communicate(timeout=30)[0].split()[1::2]


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """The first truthy value of predicate() within timeout seconds, else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def node_exec(node: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "exec", node, "sh", "-c", command], capture_output=True, text=True,
                          env=PODMAN_ENV, timeout=60, check=False)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    seconds: float

    @property
    def changed(self) -> Dict[str, int]:
        return {host: int(count) for host, count in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", self.output, re.M)}


def run_playbook(playbook: str, *extra: str, inventory: str = INVENTORY, env: Optional[dict] = None,
                 timeout: float = 900, cwd: str = ROOT) -> PlaybookRun:
    started = time.monotonic()
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0")
    run_env.update(env or {})
    proc = subprocess.run(["ansible-playbook", "-i", inventory, playbook, *extra], capture_output=True, text=True,
                          cwd=cwd, env=run_env, timeout=timeout, check=False)
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def lab_state():
    """A fresh 3-node lab, taken down at the end. CCHA_KEEP_LAB=1 (a developer's shortcut) reuses a
    running lab and leaves it up."""
    keep = os.environ.get("CCHA_KEEP_LAB") == "1"
    if not keep:
        assert lab("down").returncode == 0
    up = lab("up", "--nodes", "3")
    assert up.returncode == 0, up.stdout + up.stderr
    with open(os.path.join(LAB_DIR, "lab.json")) as handle:
        state = json.load(handle)
    yield state
    if not keep:
        lab("down")


@pytest.fixture(scope="session")
def nodes(lab_state) -> List[str]:
    return [node["name"] for node in lab_state["nodes"]]


@pytest.fixture(scope="session")
def first_site_run(lab_state) -> PlaybookRun:
    run = run_playbook("site.yml")
    assert run.rc == 0, run.output[-6000:]
    return run


@pytest.fixture(scope="session")
def kube(lab_state, first_site_run):
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=os.path.join(LAB_DIR, "kubeconfig"))
    return client.CoreV1Api(api_client), client.AppsV1Api(api_client)


def snapshot(nodes: List[str], kube) -> Dict[str, object]:
    """Everything a run could change: keepalived.conf on every node, and the cluster's objects."""
    core, apps = kube
    state: Dict[str, object] = {}
    for node in nodes:
        conf = node_exec(node, "cat /etc/keepalived/keepalived.conf 2>/dev/null")
        state["keepalived.conf@" + node] = hashlib.sha1(conf.stdout.encode()).hexdigest()
    for item in core.list_node().items:
        state["node@" + item.metadata.name] = (item.metadata.resource_version, dict(item.metadata.labels or {}))
    for item in core.list_namespaced_config_map("kubeedge").items:
        state["configmap@" + item.metadata.name] = item.metadata.resource_version
    for item in core.list_namespaced_secret("kubeedge").items:
        state["secret@" + item.metadata.name] = item.metadata.resource_version
    for item in apps.list_namespaced_deployment("kubeedge").items:
        state["deployment@" + item.metadata.name] = item.metadata.resource_version
    return state
