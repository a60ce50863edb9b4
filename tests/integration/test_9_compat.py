"""Where users are (issue 15): a group with two Debian releases, and so two keepalived versions, at once
(a rolling upgrade of the nodes: Debian 12's keepalived 2.2.7 beside Debian 13's 2.3.3), and the oldest
ansible-core the collection admits (meta/runtime.yml: 2.17) converging the lab. Runs after the other
integration tests (file order) and leaves ccha-node3 on Debian 13: the session's lab goes down after it."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import pytest

from conftest import ROOT, holders, lab, node_exec, run_playbook, wait_for

DRAIN = "mkdir -p /run/cloudcore-ha && touch /run/cloudcore-ha/drain"
UNDRAIN = "rm -f /run/cloudcore-ha/drain"
MOVE_S = 10


def watch_until(predicate, seconds: float, seen: list) -> bool:
    """Poll the VIP's holders every 0.1 s until predicate(holders) or seconds pass; every sample in seen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = holders()
        seen.append(current)
        if predicate(current):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def mixed_lab(first_site_run, nodes):
    """ccha-node3 replaced by a fresh Debian 13 node on the running lab, and keepalived converged again
    (the node is new: the collection installs keepalived 2.3 there). The keepalived tag is enough: the
    node keeps its name, address, Node object and label, and its CloudCore stand-in starts at boot."""
    up = lab("up", "--nodes", "3", "--debian", "12", "--debian-of", "ccha-node3=13", timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    run = run_playbook("site.yml", "--tags", "keepalived")
    assert run.rc == 0, run.output[-6000:]
    yield
    for node in nodes:
        node_exec(node, UNDRAIN)
    # This module runs last (file order) and the session's lab goes down after it, so ccha-node3 stays
    # a Debian 13 node: rebuilding it and converging again would cost CI ~3 minutes for no test.


def test_the_group_runs_two_keepalived_versions(mixed_lab):
    versions = {node: node_exec(node, "keepalived --version 2>&1 | head -1").stdout.strip()
                for node in ("ccha-node1", "ccha-node3")}
    assert versions["ccha-node1"].startswith("Keepalived v2.2.") and versions["ccha-node3"].startswith(
        "Keepalived v2.3."), versions


def test_the_vip_fails_over_both_ways_between_the_releases_without_two_holders(mixed_lab):
    seen = []
    assert watch_until(lambda h: len(h) == 1, MOVE_S, seen), seen
    # to the Debian 13 node: drain the other two
    for node in ("ccha-node1", "ccha-node2"):
        node_exec(node, DRAIN)
    try:
        assert watch_until(lambda h: h == ["ccha-node3"], MOVE_S, seen), seen[-5:]
        # and back to a Debian 12 node
        node_exec("ccha-node1", UNDRAIN)
        node_exec("ccha-node3", DRAIN)
        assert watch_until(lambda h: h == ["ccha-node1"], MOVE_S, seen), seen[-5:]
    finally:
        for node in ("ccha-node1", "ccha-node2", "ccha-node3"):
            node_exec(node, UNDRAIN)
    watch_until(lambda h: False, 3, seen)  # and nothing flaps once every node is healthy again
    assert all(len(h) <= 1 for h in seen), [h for h in seen if len(h) > 1]
    assert seen[-1] == ["ccha-node1"]


def test_the_keepalived_role_converges_with_the_oldest_ansible_core(first_site_run, tmp_path):
    """ansible-core 2.17 (its own venv, `make units` builds it) runs the keepalived role on the lab: the
    plan's filters, the modules on the nodes, the lab's connection plugin; a second run changes nothing
    and costs each node at most 5 round trips (issue 15: facts, apt, firewall, unit, config)."""
    oldest = os.path.join(ROOT, ".venv-2.17", "bin", "ansible-playbook")
    if not os.path.exists(oldest):
        pytest.fail("%s is missing: `make setup` builds the ansible-core 2.17 venv" % oldest)
    env = {"PATH": os.path.dirname(oldest) + os.pathsep + os.environ.get("PATH", "")}
    version = subprocess.run(["ansible-playbook", "--version"], env=dict(os.environ, **env), capture_output=True,
                             text=True, check=False)
    assert "[core 2.17." in version.stdout, version.stdout  # the runs below use this ansible-playbook
    converge = os.path.join(ROOT, "tests", "bench", "converge.yml")
    first = run_playbook(converge, env=env)
    assert first.rc == 0, first.output[-4000:]
    trace = tmp_path / "round-trips"
    again = run_playbook(converge, env=dict(env, LAB_NSENTER_TRACE=str(trace)))
    assert again.rc == 0 and set(again.changed.values()) == {0}, again.output[-4000:]
    per_node = Counter(trace.read_text().split())
    assert set(per_node) == {"ccha-node1", "ccha-node2", "ccha-node3"} and max(per_node.values()) <= 5, per_node
    assert wait_for(lambda: len(holders()) == 1, 10), holders()
