# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module balancer_firewall on a node whose firewalls answer like the real tools (firewall_node)."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.modules import balancer_firewall, vrrp_firewall

from firewall_node import FirewallNode, install

PORTS = "{ 10100, 10102, 10104, 10110 }"
ACCEPT = 'iifname "eth0" ip saddr { 10.1.0.12, 10.1.0.13 } tcp dport %s accept' % PORTS
GUARD = ['tcp dport %s iifname "lo" accept' % PORTS,
         "tcp dport %s ip saddr { 10.1.0.12, 10.1.0.13 } accept" % PORTS,
         "tcp dport %s drop" % PORTS]
UNIT = "cloudcore-ha-guard.service"


@pytest.fixture
def args(tmp_path):
    return dict(interface="eth0", peers=["10.1.0.13", "10.1.0.12"], ports=[10110, 10100, 10102, 10104],
                nft_rules_path=str(tmp_path / "balancer.nft"),
                nft_dropin_path=str(tmp_path / "nftables.service.d" / "cloudcore-ha-balancer.conf"),
                guard_path=str(tmp_path / "balancer-guard.nft"),
                guard_unit_path=str(tmp_path / UNIT),
                guard_dropin_path=str(tmp_path / "nftables.service.d" / "cloudcore-ha-guard.conf"))


def _commented(node, table):
    return [(r["chain"], r["body"]) for r in node.rules_in("inet", table) if "comment" in r]


def test_every_active_firewall_and_the_guard_once(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True, firewalld=True))
    failed, result, _unused = run_module(balancer_firewall.main, args, diff=True)
    assert not failed and result["changed"], result
    assert result["active"] == result["handled"] == ["firewalld", "ufw", "nftables"]
    assert result["rules"]["nftables"] == ["inet filter input: " + ACCEPT]
    assert result["rules"]["ufw"] == [
        "allow in on eth0 from 10.1.0.12 to any port 10100,10102,10104,10110 proto tcp comment 'cloudcore.ha balancer'",
        "allow in on eth0 from 10.1.0.13 to any port 10100,10102,10104,10110 proto tcp comment 'cloudcore.ha balancer'"]
    assert len(result["rules"]["firewalld"]) == 8 and len(node.rich["permanent"]) == len(node.rich["runtime"]) == 8
    assert result["guard"] == {"table": "inet cloudcore_ha_guard", "unit": UNIT, "file": args["guard_path"],
                               "rules": ["inet cloudcore_ha_guard input: " + rule for rule in GUARD]}
    # the node: the accept rule in the operator's chain, the guard table, the unit enabled and started
    assert _commented(node, "filter") == [("input", ACCEPT)]
    assert _commented(node, "cloudcore_ha_guard") == [("input", rule) for rule in GUARD]
    guard_chain = [c for c in node.chains if c["table"] == "cloudcore_ha_guard"]
    assert [(c["name"], c["hook"], c["prio"], c["policy"]) for c in guard_chain] == [("input", "input", -10, "accept")]
    assert node.units[UNIT] == {"active": True, "enabled": True}
    assert node.ufw_added[1:] == result["rules"]["ufw"]
    # the files: the accept rules and their own drop-in, the guard, its unit and its drop-in
    assert (tmp_path / "balancer.nft").read_text().count("insert rule inet filter input " + ACCEPT) == 1
    assert "ExecStartPost=-/usr/sbin/nft -f %s\n" % args["nft_rules_path"] in (
        tmp_path / "nftables.service.d" / "cloudcore-ha-balancer.conf").read_text()
    unit = (tmp_path / UNIT).read_text()
    assert "ExecStart=/usr/sbin/nft -f %s\n" % args["guard_path"] in unit
    assert "ExecStop=-/usr/sbin/nft delete table inet cloudcore_ha_guard\n" in unit
    assert "Before=haproxy.service kubelet.service\n" in unit and "After=nftables.service\n" in unit
    assert "RemainAfterExit=yes\n" in unit and "WantedBy=multi-user.target\n" in unit
    dropin = (tmp_path / "nftables.service.d" / "cloudcore-ha-guard.conf").read_text()
    for key in ("ExecStartPost", "ExecReload", "ExecStopPost"):
        assert "%s=-/usr/sbin/nft -f %s\n" % (key, args["guard_path"]) in dropin
    # the file is the transaction that was applied
    assert (tmp_path / "balancer-guard.nft").read_text().endswith(node.scripts[0])
    assert node.scripts[0].startswith("table inet cloudcore_ha_guard {}\ndelete table inet cloudcore_ha_guard\n")
    assert "guard: inet cloudcore_ha_guard input: tcp dport %s drop\n" % PORTS in result["diff"]["after"]
    assert result["diff"]["before"] == "" and result["diff"]["after_header"] == "balancer firewall rules"

    node.calls.clear()
    failed, again, _unused = run_module(balancer_firewall.main, args)
    assert not failed and not again["changed"], node.mutating_calls()
    assert again["rules"] == result["rules"] and again["guard"] == result["guard"]
    assert node.mutating_calls() == []


def test_check_mode_reports_and_changes_nothing(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True))
    failed, result, _unused = run_module(balancer_firewall.main, args, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert result["diff"]["after"].splitlines() == (["nftables: inet filter input: " + ACCEPT]
                                                    + ["guard: inet cloudcore_ha_guard input: " + r for r in GUARD])
    assert node.mutating_calls() == [] and node.scripts == [] and not list(tmp_path.iterdir())


def test_the_guard_is_set_without_any_active_firewall(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=False))
    failed, result, _unused = run_module(balancer_firewall.main, args)
    assert not failed and result["changed"] and result["active"] == result["handled"] == [] and result["rules"] == {}
    assert _commented(node, "cloudcore_ha_guard") == [("input", rule) for rule in GUARD]
    assert _commented(node, "filter") == [] and not (tmp_path / "balancer.nft").exists()
    assert (tmp_path / "balancer-guard.nft").exists() and node.units[UNIT]["enabled"]
    # firewall=none: the same, the guard is not a firewall choice
    failed, again, _unused = run_module(balancer_firewall.main, dict(args, firewall="none"))
    assert not failed and not again["changed"]


def test_a_changed_peer_list_replaces_the_guard_and_the_rules(run_module, monkeypatch, args):
    node = install(monkeypatch, FirewallNode(nftables=True))
    run_module(balancer_firewall.main, args)
    failed, result, _unused = run_module(balancer_firewall.main, dict(args, peers=["10.1.0.12"]), diff=True)
    assert not failed and result["changed"]
    assert _commented(node, "cloudcore_ha_guard")[1] == ("input", "tcp dport %s ip saddr { 10.1.0.12 } accept" % PORTS)
    assert len(_commented(node, "cloudcore_ha_guard")) == 3
    assert _commented(node, "filter") == [("input", 'iifname "eth0" ip saddr { 10.1.0.12 } tcp dport %s accept' % PORTS)]
    assert "guard: inet cloudcore_ha_guard: a different guard (cloudcore.ha guard " in result["diff"]["before"]


def test_a_tampered_guard_is_replaced(run_module, monkeypatch, args):
    node = install(monkeypatch, FirewallNode(nftables=False))
    run_module(balancer_firewall.main, args)
    node.rules = [r for r in node.rules if not r.get("body", "").endswith("drop")]  # someone deleted the drop
    failed, result, _unused = run_module(balancer_firewall.main, args)
    assert not failed and result["changed"] and len(_commented(node, "cloudcore_ha_guard")) == 3


def test_absent_removes_rules_guard_unit_and_files(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True))
    run_module(balancer_firewall.main, args)
    failed, result, _unused = run_module(balancer_firewall.main, dict(args, state="absent"), check_mode=True)
    assert not failed and result["changed"] and ("inet", "cloudcore_ha_guard") in node.tables
    failed, result, _unused = run_module(balancer_firewall.main, dict(args, state="absent"))
    assert not failed and result["changed"] and result["guard"]["rules"] == []
    assert ("inet", "cloudcore_ha_guard") not in node.tables and _commented(node, "filter") == []
    assert node.ufw_added == ["allow 22/tcp"] and node.units[UNIT] == {"active": False, "enabled": False}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []
    failed, again, _unused = run_module(balancer_firewall.main, dict(args, state="absent"))
    assert not failed and not again["changed"]


def test_vrrp_and_balancer_keep_each_others_rules(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True))
    vrrp = dict(interface="eth0", vip="10.1.0.100/24", mode="unicast", peers=["10.1.0.12", "10.1.0.13"],
                nft_rules_path=str(tmp_path / "vrrp.nft"),
                nft_dropin_path=str(tmp_path / "nftables.service.d" / "cloudcore-ha.conf"))
    run_module(vrrp_firewall.main, vrrp)
    run_module(balancer_firewall.main, args)
    assert len(_commented(node, "filter")) == 2 and len(node.ufw_added) == 5
    # each module again, present: no change; the VRRP rule never went into the guard's chain
    assert not run_module(vrrp_firewall.main, vrrp)[1]["changed"]
    assert not run_module(balancer_firewall.main, args)[1]["changed"]
    assert len(_commented(node, "cloudcore_ha_guard")) == 3
    # the balancer leaves: VRRP's rules, file and drop-in stay
    run_module(balancer_firewall.main, dict(args, state="absent"))
    assert [pair[1] for pair in _commented(node, "filter")] == [
        'iifname "eth0" ip saddr { 10.1.0.12, 10.1.0.13 } meta l4proto vrrp accept']
    assert [rule.endswith("'cloudcore.ha vrrp'") for rule in node.ufw_added[1:]] == [True, True]
    assert (tmp_path / "vrrp.nft").exists() and (tmp_path / "nftables.service.d" / "cloudcore-ha.conf").exists()
    # and the reverse
    run_module(balancer_firewall.main, args)
    run_module(vrrp_firewall.main, dict(vrrp, state="absent"))
    assert [pair[1] for pair in _commented(node, "filter")] == [ACCEPT]
    assert len(_commented(node, "cloudcore_ha_guard")) == 3 and (tmp_path / "balancer-guard.nft").exists()


def test_without_nft_present_fails_naming_the_package_before_any_change(run_module, monkeypatch, args):
    node = install(monkeypatch, FirewallNode(nftables=False, ufw=True, nft_installed=False))
    failed, result, _unused = run_module(balancer_firewall.main, args)
    assert failed and result["msg"].startswith("balancer_firewall: nft is not installed: install the nftables package")
    assert node.mutating_calls() == [] and node.ufw_added == ["allow 22/tcp"]
    failed, result, _unused = run_module(balancer_firewall.main, dict(args, state="absent"))
    assert not failed and not result["changed"] and result["guard"]["rules"] == []


def test_without_nft_check_mode_warns_and_reports_what_a_run_would_add(run_module, monkeypatch, args, tmp_path):
    """--check on a fresh node: the role's install step reported nftables as to be installed, not installed it."""
    node = install(monkeypatch, FirewallNode(nftables=False, nft_installed=False))
    failed, result, warnings = run_module(balancer_firewall.main, args, check_mode=True)
    assert not failed and result["changed"] and len(result["guard"]["rules"]) == 3
    assert warnings == ["balancer_firewall: nft is not installed: install the nftables package (the balancer role"
                        " installs it with haproxy); the guard that closes CloudCore's internal ports to all but the"
                        " CloudCore nodes is an nft table; a real run fails until it is installed"]
    assert node.mutating_calls() == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("change, msg", [
    (dict(peers=["10.1.0.12", "fd00::13"]), "balancer_firewall: peers=['10.1.0.12', 'fd00::13']: must all be IPv4 or all IPv6"),
    (dict(peers=[]), "balancer_firewall: peers=[]: needs the other CloudCore nodes' addresses"),
    (dict(ports=list(range(1, 17))), "balancer_firewall: ports=[1, 2, 3"),
    (dict(interface="eth 0"), "balancer_firewall: interface='eth 0': must be an interface name"),
    (dict(guard_unit_path="/etc/systemd/system/guard.timer"),
     "balancer_firewall: guard_unit_path='/etc/systemd/system/guard.timer': must be a unit file whose name ends in .service"),
    (dict(firewall="firewalld"), "balancer_firewall: firewall='firewalld': firewalld is not active on this node"),
])
def test_bad_input_names_the_option_value_and_rule(run_module, monkeypatch, args, change, msg):
    node = install(monkeypatch, FirewallNode(nftables=True))
    failed, result, _unused = run_module(balancer_firewall.main, dict(args, **change))
    assert failed and result["msg"].startswith(msg), result["msg"]
    assert node.mutating_calls() == []
