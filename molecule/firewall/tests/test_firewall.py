"""Verify of the firewall scenario: every node is behind an active firewall that drops what it does
not allow (firewalld, nftables with input policy drop, ufw), and the role let VRRP through each.
The proof is behavioural: one VIP holder, failover through the VIP, and, with the rule taken away
on a backup, that backup stops hearing the adverts and takes the VIP too (split brain) until the
rule is back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", "shared"))
from lab_cli import holders, lab, wait_for_holders  # noqa: E402

FIREWALL_OF = {"ccha-node1": "firewalld", "ccha-node2": "nftables", "ccha-node3": "ufw"}
RICH_RULE = 'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept'
UFW_RULE = "ufw allow in on eth0 to 224.0.0.18 proto vrrp comment 'cloudcore.ha vrrp'"
SETTLE_S = 15


def wait_for(condition):
    return wait_for_holders(condition, SETTLE_S, "the holders did not settle as expected")


def host(name: str):
    return testinfra.get_host("podman://" + name)


def nft_vrrp_rules(node) -> list:
    listing = node.check_output("nft -a list chain inet filter input")
    return [line for line in listing.splitlines() if "cloudcore.ha vrrp" in line]


@pytest.mark.parametrize("name", sorted(FIREWALL_OF))
def test_each_node_is_behind_an_active_firewall(name):
    node, firewall = host(name), FIREWALL_OF[name]
    if firewall == "firewalld":
        assert node.check_output("firewall-cmd --state") == "running"
    elif firewall == "ufw":
        assert node.check_output("ufw status").startswith("Status: active")
    else:
        assert node.run("systemctl is-active nftables").stdout.strip() == "active"
        assert "policy drop" in node.check_output("nft list chain inet filter input")


def test_firewalld_has_the_rich_rule_at_runtime_and_permanently():
    node = host("ccha-node1")
    assert RICH_RULE in node.check_output("firewall-cmd --list-rich-rules").splitlines()
    assert RICH_RULE in node.check_output("firewall-cmd --permanent --list-rich-rules").splitlines()


def test_ufw_has_the_rule():
    assert UFW_RULE in host("ccha-node3").check_output("ufw show added").splitlines()


def test_nftables_rule_is_first_in_the_input_chain_and_kept_across_reload_and_restart():
    node = host("ccha-node2")
    chain = node.check_output("nft list chain inet filter input").splitlines()
    first_rule = [line.strip() for line in chain if line.strip() and not line.strip().startswith(("table", "chain", "type", "}"))][0]
    assert first_rule.startswith('iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "cloudcore.ha vrrp ')
    for action in ("reload", "restart"):
        node.check_output("systemctl %s nftables" % action)
        assert len(nft_vrrp_rules(node)) == 1, action


def test_one_holder_and_the_edge_reaches_cloudcore_through_the_vip():
    current = wait_for(lambda h: len(h) == 1)
    probe = lab("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.split(" ", 1)[0] == current[0]


def test_without_its_rule_a_backup_stops_hearing_adverts_and_splits_the_group():
    """The control experiment: the firewall really drops VRRP, and the role's rule is what lets it in."""
    holder = wait_for(lambda h: len(h) == 1)[0]
    name = "ccha-node2" if holder != "ccha-node2" else "ccha-node3"
    node = host(name)
    if FIREWALL_OF[name] == "nftables":
        handle = nft_vrrp_rules(node)[0].rsplit("# handle ", 1)[1]
        node.check_output("nft delete rule inet filter input handle %s" % handle)
        restore = "systemctl reload nftables"
    else:
        node.check_output("ufw delete allow in on eth0 to 224.0.0.18 proto vrrp")
        restore = "ufw allow in on eth0 to 224.0.0.18 proto vrrp comment 'cloudcore.ha vrrp'"
    try:
        split = wait_for(lambda h: name in h and len(h) == 2)
        assert set(split) == {holder, name}
    finally:
        node.check_output(restore)
    assert len(wait_for(lambda h: len(h) == 1)) == 1


def test_failover_through_the_firewalls():
    holder = wait_for(lambda h: len(h) == 1)[0]
    assert lab("fault", holder, "cloudcore").returncode == 0
    try:
        new = wait_for(lambda h: len(h) == 1 and h[0] != holder)[0]
        probe = lab("probe")
        assert probe.stdout.split(" ", 1)[0] == new, probe.stdout + probe.stderr
    finally:
        lab("heal", holder, "cloudcore")


def test_the_module_goes_check_real_check_real_on_every_firewall():
    """vrrp_firewall itself, both states, on each firewall: changed, changed, not changed, not changed."""
    run = playbook("module_cycle.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.count("TASK [The module reported changed=") == 8, run.stdout[-2000:]
    # the rules are back where they were
    assert RICH_RULE in host("ccha-node1").check_output("firewall-cmd --permanent --list-rich-rules").splitlines()
    assert len(nft_vrrp_rules(host("ccha-node2"))) == 1
    assert UFW_RULE in host("ccha-node3").check_output("ufw show added").splitlines()
    assert len(wait_for(lambda h: len(h) == 1)) == 1


def playbook(name):
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    return subprocess.run(["ansible-playbook", "-i", inventory, os.path.join(os.path.dirname(__file__), "..", name)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_reset_removes_the_rules_from_every_firewall_and_leaves_the_firewalls_running():
    """Runs last: the keepalived role's remove entry point, as the reset playbook does."""
    run = playbook("reset.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    firewalld, nftables, ufw = host("ccha-node1"), host("ccha-node2"), host("ccha-node3")
    assert RICH_RULE not in firewalld.check_output("firewall-cmd --list-rich-rules")
    assert RICH_RULE not in firewalld.check_output("firewall-cmd --permanent --list-rich-rules")
    assert firewalld.check_output("firewall-cmd --state") == "running"
    assert nft_vrrp_rules(nftables) == []
    assert not nftables.file("/etc/cloudcore-ha/vrrp.nft").exists
    assert not nftables.file("/etc/systemd/system/nftables.service.d/cloudcore-ha.conf").exists
    assert "policy drop" in nftables.check_output("nft list chain inet filter input")
    assert "cloudcore.ha vrrp" not in ufw.check_output("ufw show added")
    assert ufw.check_output("ufw status").startswith("Status: active")
    assert holders() == []
