"""Verify of the balanced scenario: haproxy holds CloudCore's public ports on every node, CloudCore its
internal ones, the guard closes those to everyone but the other nodes, and an edge fleet (the lab's,
in its edge namespace) is spread over every CloudCore with each edge's websocket and tunnel on the same
one; a CloudCore failing moves only its own edges and not the VIP. Node checks run through testinfra's
podman backend; everything that addresses the lab network runs in the lab's namespaces."""

from __future__ import annotations

import json
import os
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", "shared"))
from lab_cli import holders, lab, wait_for_holders, wait_until  # noqa: E402

NODES = ("ccha-node1", "ccha-node2", "ccha-node3")
PUBLIC = (10000, 10002, 10004)
INTERNAL = (10100, 10102, 10104)
FLEET = "molecule"
EDGES = 90
STATUS = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".lab", "edges", FLEET, "status.json")


@pytest.fixture(scope="module", params=NODES)
def node(request):
    return testinfra.get_host("podman://" + request.param)


def listening(node) -> set:
    """TCP ports listening on the node (ss without -p: podman exec lacks the capability to name owners)."""
    ports = set()
    for line in node.run("ss -Hltn").stdout.splitlines():
        local = line.split()[3]
        ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def test_haproxy_installed_enabled_running(node):
    assert node.package("haproxy").is_installed
    service = node.service("haproxy")
    assert service.is_enabled and service.is_running


def test_haproxy_holds_the_public_ports_and_cloudcore_the_internal_ones(node):
    ports = listening(node)
    assert set(PUBLIC) | set(INTERNAL) <= ports, ports


def test_config_files(node):
    config = node.file("/etc/haproxy/haproxy.cfg")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o640)
    assert config.contains("^# managed by cloudcore.ha")
    ca = node.file("/etc/cloudcore-ha/ca.crt")
    assert ca.mode == 0o644 and ca.contains("BEGIN CERTIFICATE")
    result = node.run("haproxy -dW -c -f /etc/haproxy/haproxy.cfg")
    assert result.rc == 0, result.stdout + result.stderr


def test_guard_closes_the_internal_ports(node):
    table = node.run("nft list table inet cloudcore_ha_guard")
    assert table.rc == 0, table.stderr
    assert "drop" in table.stdout and "10102" in table.stdout
    assert node.service("cloudcore-ha-guard").is_enabled


def test_the_vip_answers_through_haproxy():
    """From where the edges are, the VIP's public https port answers (haproxy, then some CloudCore)."""
    probe = lab("probe")
    assert probe.returncode == 0 and "sans=" in probe.stdout, probe.stdout + probe.stderr


@pytest.fixture(scope="module")
def fleet():
    started = lab("edges", "up", "--name", FLEET, "--count", str(EDGES), "--profile", "edgecore-next",
                  "--timeout", "120")
    assert started.returncode == 0, started.stdout + started.stderr
    yield
    lab("edges", "down", "--name", FLEET)


def status() -> dict:
    with open(STATUS) as handle:
        return json.load(handle)


def wait_status(condition, timeout: float, what: str) -> dict:
    return wait_until(status, condition, timeout, what, interval=0.5)


def test_edges_spread_over_every_cloudcore_and_paired(fleet):
    current = wait_status(lambda s: s["paired"] == EDGES, 60, "every edge's tunnel on its hub's CloudCore")
    assert set(current["connected"]) == set(NODES), current["connected"]
    assert current["split"] == 0


def test_a_failed_cloudcore_moves_only_its_edges_not_the_vip(fleet):
    holder = wait_for_holders(lambda now: len(now) == 1, 10, "one VIP holder")[0]
    victim = next(name for name in NODES if name != holder)
    before = status()
    theirs = before["connected"].get(victim, 0)
    assert theirs > 0
    assert lab("fault", victim, "cloudcore").returncode == 0
    try:
        after = wait_status(lambda s: victim not in s["connected"] and s["connected_total"] == EDGES
                            and s["paired"] == EDGES, 90, "the failed CloudCore's edges back elsewhere, paired")
        assert holders() == [holder]
        assert after["reconnects"] - before["reconnects"] == theirs  # nobody else reconnected
    finally:
        lab("heal", victim, "cloudcore")
