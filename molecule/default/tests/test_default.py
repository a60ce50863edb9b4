"""Verify of the default scenario: 3 nodes, multicast, fault mode, after the side effect stopped the
CloudCore stand-in on the VIP holder. Node checks run on every node through testinfra's podman
backend (podman exec: much faster than molecule's default ansible backend); the VIP checks use the
lab's CLI, whose probes run inside the lab's edge namespace."""

from __future__ import annotations

import os
import sys
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", "shared"))
from lab_cli import holders, lab, wait_for_holders  # noqa: E402

FAULTED_FILE = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "faulted_node")
NODES = ("ccha-node1", "ccha-node2", "ccha-node3")
FAILOVER_BOUND_S = 10
NO_FAILBACK_WATCH_S = 8


@pytest.fixture(scope="module", params=NODES)
def node(request):
    return testinfra.get_host("podman://" + request.param)


@pytest.fixture(scope="module")
def faulted_node() -> str:
    with open(FAULTED_FILE) as handle:
        return handle.read().strip()


@pytest.fixture(scope="module")
def holder_after_failover(faulted_node) -> str:
    """Exactly one holder other than the failed node, within the failover bound."""
    return wait_for_holders(lambda current: len(current) == 1 and current[0] != faulted_node, FAILOVER_BOUND_S,
                            "the VIP did not move off %s" % faulted_node)[0]


def test_systemd_booted(node):
    assert node.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")


def test_keepalived_installed_enabled_running(node):
    assert node.package("keepalived").is_installed
    service = node.service("keepalived")
    assert service.is_enabled
    assert service.is_running


def test_files_owned_by_root_and_not_world_readable(node):
    config = node.file("/etc/keepalived/keepalived.conf")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o640)
    script = node.file("/usr/local/sbin/check_cloudcore")
    assert (script.user, script.group, script.mode) == ("root", "root", 0o755)
    assert node.user("keepalived_script").exists


def test_keepalived_config_test_passes(node):
    # keepalived 2.2.7 kills itself in config-test mode when script_user is not root
    # (acassen/keepalived#2617) and a container may not unshare a PID namespace, so test a copy
    # with script_user root, as the keepalived_config module does in that case.
    result = node.run(
        "sed -E 's/^(\\s*script_user\\s+)\\S+/\\1root/' /etc/keepalived/keepalived.conf > /tmp/kt.conf"
        " && keepalived -t -e -f /tmp/kt.conf; rc=$?; rm -f /tmp/kt.conf; exit $rc")
    assert result.rc == 0, result.stdout + result.stderr


def test_no_script_security_violation(node):
    log = node.run("journalctl -u keepalived --no-pager").stdout
    assert "Keepalived_vrrp" in log, "keepalived's log is empty: the check below would prove nothing"
    assert "SECURITY VIOLATION" not in log


def test_nodes_reach_each_other(node):
    for address in ("10.213.102.11", "10.213.102.12", "10.213.102.13"):
        assert node.run("ping -c1 -W1 %s" % address).rc == 0, address


def test_exactly_one_healthy_holder_after_the_fault(holder_after_failover, faulted_node):
    assert holder_after_failover != faulted_node


def test_edge_probe_is_answered_by_the_new_holder(holder_after_failover):
    probe = lab("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    node, sans = probe.stdout.split(" ", 1)
    assert node == holder_after_failover
    assert "IP:10.213.102.100" in sans


def test_vip_does_not_move_back_after_heal(holder_after_failover, faulted_node):
    assert lab("heal", faulted_node, "cloudcore").returncode == 0
    deadline = time.monotonic() + NO_FAILBACK_WATCH_S
    while time.monotonic() < deadline:
        assert holders() == [holder_after_failover], "the VIP moved after the heal (fault mode must not fail back)"
        time.sleep(0.25)
    probe = lab("probe")
    assert probe.stdout.startswith(holder_after_failover + " ")
