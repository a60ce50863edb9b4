"""Verify of the unicast scenario: 2 nodes, unicast VRRPv3 adverts for an IPv6 VIP, weighted mode.
After the side effect stopped the CloudCore stand-in on the holder, the other node takes the VIP;
healed, the preferred node takes it back (weighted mode preempts, by design)."""

from __future__ import annotations

import os
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", "shared"))
from lab_cli import lab, wait_for_holders  # noqa: E402

FAULTED_FILE = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "faulted_node")
PEERS = {"ccha-node1": "fd5c:c0e:213::12", "ccha-node2": "fd5c:c0e:213::11"}


def wait_for_single_holder(excluding: str = "", timeout: float = 15) -> str:
    return wait_for_holders(lambda current: len(current) == 1 and current[0] != excluding, timeout,
                            "no single holder" + (" other than " + excluding if excluding else ""))[0]


@pytest.fixture(scope="module", params=sorted(PEERS))
def node(request):
    return request.param, testinfra.get_host("podman://" + request.param)


@pytest.fixture(scope="module")
def faulted_node() -> str:
    with open(FAULTED_FILE) as handle:
        return handle.read().strip()


def test_unicast_vrrpv3_config_names_the_peer(node):
    name, host = node
    config = host.file("/etc/keepalived/keepalived.conf").content_string
    assert "version 3" in config
    assert "unicast_peer {\n        %s\n    }" % PEERS[name] in config
    assert "fd5c:c0e:213::100/64 dev eth0" in config
    assert "nopreempt" not in config  # weighted mode preempts


def test_the_other_node_serves_the_ipv6_vip_after_the_fault(faulted_node):
    new = wait_for_single_holder(excluding=faulted_node)
    probe = lab("probe", "--ipv6")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.startswith(new + " ") and "IP:fd5c:c0e:213::100" in probe.stdout


def test_weighted_mode_moves_the_vip_back_after_heal(faulted_node):
    assert lab("heal", faulted_node, "cloudcore").returncode == 0
    assert wait_for_holders(lambda current: current == ["ccha-node1"], 15,
                            "the preferred node did not take the VIP back") == ["ccha-node1"]
