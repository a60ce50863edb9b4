# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module vrrp_firewall on a node whose firewalls answer like the real tools (firewall_node)."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.modules import vrrp_firewall

from firewall_node import FirewallNode, install

VRRP = 'iifname "eth0" ip saddr { 10.1.0.12, 10.1.0.13 } meta l4proto vrrp accept'


@pytest.fixture
def args(tmp_path):
    return dict(interface="eth0", vip="10.1.0.100/24", mode="unicast", peers=["10.1.0.13", "10.1.0.12"],
                nft_rules_path=str(tmp_path / "vrrp.nft"),
                nft_dropin_path=str(tmp_path / "nftables.service.d" / "cloudcore-ha.conf"))


def test_every_active_firewall_gets_the_rule_once(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True, firewalld=True))
    failed, result, _unused = run_module(vrrp_firewall.main, args, diff=True)
    assert not failed and result["changed"]
    assert result["active"] == result["handled"] == ["firewalld", "ufw", "nftables"]
    assert result["rules"] == {
        "firewalld": ['zone public: rule family="ipv4" source address="10.1.0.12" protocol value="vrrp" accept',
                      'zone public: rule family="ipv4" source address="10.1.0.13" protocol value="vrrp" accept'],
        "ufw": ["allow in on eth0 from 10.1.0.12 proto vrrp comment 'cloudcore.ha vrrp'",
                "allow in on eth0 from 10.1.0.13 proto vrrp comment 'cloudcore.ha vrrp'"],
        "nftables": ["inet filter input: " + VRRP]}
    assert result["diff"]["after_header"] == "VRRP firewall rules"
    assert "nftables: inet filter input: " + VRRP + "\n" in result["diff"]["after"]
    assert [r["body"] for r in node.rules_in("inet", "filter") if "comment" in r] == [VRRP]
    assert node.ufw_added[1:] == result["rules"]["ufw"]
    assert len(node.rich["permanent"]) == len(node.rich["runtime"]) == 2
    text = (tmp_path / "vrrp.nft").read_text()
    assert text.startswith("# managed by cloudcore.ha: lets VRRP adverts through the input chains below.\n"
                           "# nftables.service loads it after /etc/nftables.conf (drop-in cloudcore-ha.conf).\n")
    dropin = (tmp_path / "nftables.service.d" / "cloudcore-ha.conf").read_text()
    assert dropin == ("# managed by cloudcore.ha: VRRP rules survive nftables.service starts and reloads\n[Service]\n"
                      "ExecStartPost=-/usr/sbin/nft -f %s\nExecReload=-/usr/sbin/nft -f %s\n"
                      % (args["nft_rules_path"], args["nft_rules_path"]))
    assert node.daemon_reloads == 1

    node.calls.clear()
    failed, again, _unused = run_module(vrrp_firewall.main, args)
    assert not failed and not again["changed"] and again["rules"] == result["rules"]
    assert node.mutating_calls() == []


def test_check_mode_reports_and_changes_nothing(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True))
    failed, result, _unused = run_module(vrrp_firewall.main, args, check_mode=True, diff=True)
    assert not failed and result["changed"] and result["handled"] == ["nftables"]
    assert result["diff"]["before"] == "" and result["diff"]["after"] == "nftables: inet filter input: %s\n" % VRRP
    assert node.mutating_calls() == [] and node.scripts == [] and not list(tmp_path.iterdir())


def test_absent_takes_the_rules_and_the_files_away(run_module, monkeypatch, args, tmp_path):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True))
    run_module(vrrp_firewall.main, args)
    failed, result, _unused = run_module(vrrp_firewall.main, dict(args, state="absent"))
    assert not failed and result["changed"] and result["rules"] == {"ufw": [], "nftables": []}
    assert [r for r in node.rules if "comment" in r] == [] and node.ufw_added == ["allow 22/tcp"]
    assert not (tmp_path / "vrrp.nft").exists()
    assert not (tmp_path / "nftables.service.d" / "cloudcore-ha.conf").exists()
    failed, again, _unused = run_module(vrrp_firewall.main, dict(args, state="absent"))
    assert not failed and not again["changed"]


def test_a_named_firewall_must_be_active_and_bad_input_names_the_option(run_module, monkeypatch, args):
    install(monkeypatch, FirewallNode(nftables=True))
    failed, result, _unused = run_module(vrrp_firewall.main, dict(args, firewall="ufw"))
    assert failed and result["msg"] == ("vrrp_firewall: firewall='ufw': ufw is not active on this node (active:"
                                        " nftables); use auto or none")
    failed, result, _unused = run_module(vrrp_firewall.main, dict(args, peers=["fd00::12"]))
    assert failed and result["msg"].startswith("vrrp_firewall: peers='fd00::12': must be IPv4 like the VIP")


def test_none_leaves_every_firewall_alone(run_module, monkeypatch, args):
    node = install(monkeypatch, FirewallNode(nftables=True, ufw=True))
    failed, result, _unused = run_module(vrrp_firewall.main, dict(args, firewall="none"))
    assert not failed and not result["changed"] and result["handled"] == [] and node.mutating_calls() == []
