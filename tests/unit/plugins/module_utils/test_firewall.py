# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The firewall planner, on output captured from nft 1.0.6, ufw 0.36.2 and firewalld 1.3.3 (Debian 12)."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    COMMENT,
    FirewallError,
    NftChain,
    active_backends,
    firewalld_rich_rules,
    firewalld_zone,
    nft_comment,
    nft_dropin_text,
    nft_input_chains,
    nft_rule_body,
    plan_firewalld,
    plan_nftables,
    plan_ufw,
    select_backends,
    ufw_rules,
    vrrp_traffic,
)

MULTICAST = vrrp_traffic("eth0", "10.213.102.100/24", "multicast", "224.0.0.18")
UNICAST = vrrp_traffic("eth0", "10.213.102.100/24", "unicast", peers=["10.213.102.13", "10.213.102.12"])
IPV6 = vrrp_traffic("eth0", "fd5c:c0e:213::100/64", "multicast", "224.0.0.18")


def chain(family, table, name, hook="input", kind="filter", policy="accept"):
    return {"chain": {"family": family, "table": table, "name": name, "handle": 1, "type": kind,
                      "hook": hook, "prio": 0, "policy": policy}}


def rule(family, table, chain_name, handle, comment=None):
    body = {"family": family, "table": table, "chain": chain_name, "handle": handle, "expr": [{"accept": None}]}
    if comment is not None:
        body["comment"] = comment
    return {"rule": body}


def ruleset(*items):
    return {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, *items]}


# A drop-policy host firewall next to the tables other managers own, as `nft -j list ruleset` shows them.
MIXED = ruleset(
    {"table": {"family": "inet", "name": "filter", "handle": 1}},
    chain("inet", "filter", "input", policy="drop"),
    chain("inet", "filter", "output", hook="output"),
    chain("inet", "filter", "mangle_in", kind="route", hook="output"),
    chain("ip", "filter", "INPUT"),           # iptables-nft (ufw)
    chain("inet", "firewalld", "filter_INPUT"),
    chain("ip6", "v6only", "input", policy="drop"),
    chain("ip", "v4only", "input", policy="drop"),
    {"chain": {"family": "inet", "table": "filter", "name": "regular", "handle": 9}},  # not a base chain
    rule("inet", "filter", "input", 2),
)


class TestTraffic:
    def test_multicast_group_of_the_vips_family(self):
        assert MULTICAST.multicast_group == "224.0.0.18" and MULTICAST.version == 4

    def test_an_ipv4_group_is_replaced_by_the_ipv6_default_for_an_ipv6_vip(self):
        assert IPV6.multicast_group == "ff02::12" and IPV6.version == 6

    def test_unicast_peers_are_sorted_and_deduplicated(self):
        traffic = vrrp_traffic("eth0", "10.0.0.100/24", "unicast", peers=["10.0.0.9", "10.0.0.10", "10.0.0.9"])
        assert traffic.peers == ("10.0.0.9", "10.0.0.10")

    @pytest.mark.parametrize("kwargs, words", [
        (dict(interface="eth 0"), "interface='eth 0'"),
        (dict(interface='eth"0'), "without spaces or quotes"),
        (dict(vip="10.0.0.300/24"), "vip='10.0.0.300/24'"),
        (dict(mode="broadcast"), "mode='broadcast'"),
        (dict(multicast_group="10.0.0.1"), "not a multicast address"),
        (dict(multicast_group="group"), "multicast_group='group'"),
        (dict(mode="unicast", peers=[]), "peers=[]"),
        (dict(mode="unicast", peers=["fd00::1"]), "fd00::1 is IPv6 but the VIP"),
        (dict(mode="unicast", peers=["node2"]), "'node2' is not an IP address"),
    ])
    def test_bad_input_names_the_option_and_value(self, kwargs, words):
        args = dict(interface="eth0", vip="10.0.0.100/24", mode="multicast", multicast_group=None, peers=[])
        args.update(kwargs)
        with pytest.raises(FirewallError) as error:
            vrrp_traffic(**args)
        assert words in str(error.value)


class TestBackends:
    def test_every_active_firewall_is_found(self):
        assert active_backends("running\n", "Status: active\n\nTo Action From\n", "active\n") == ["firewalld", "ufw", "nftables"]

    def test_inactive_or_missing_firewalls_are_not(self):
        assert active_backends("not running\n", "Status: inactive\n", "inactive\n") == []
        assert active_backends("", "", "") == []

    def test_auto_handles_the_active_ones(self):
        assert select_backends("auto", ["nftables", "ufw"]) == ["ufw", "nftables"]

    def test_none_handles_nothing(self):
        assert select_backends("none", ["nftables"]) == []

    def test_a_named_firewall_must_be_active(self):
        with pytest.raises(FirewallError, match=r"firewall='ufw': ufw is not active on this node \(active: nftables\)"):
            select_backends("ufw", ["nftables"])


class TestNftables:
    def test_rule_bodies(self):
        assert nft_rule_body(MULTICAST) == 'iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept'
        assert nft_rule_body(UNICAST) == 'iifname "eth0" ip saddr { 10.213.102.12, 10.213.102.13 } meta l4proto vrrp accept'
        assert nft_rule_body(IPV6) == 'iifname "eth0" ip6 daddr ff02::12 meta l4proto vrrp accept'

    def test_comment_is_stable_and_depends_on_the_rule(self):
        assert nft_comment("a") == nft_comment("a") != nft_comment("b")
        assert nft_comment("a").startswith(COMMENT + " ")

    def test_input_chains_skip_other_managers_other_hooks_and_the_other_family(self):
        assert nft_input_chains(MIXED, 4) == [NftChain("inet", "filter", "input"), NftChain("ip", "v4only", "input")]
        assert nft_input_chains(MIXED, 6) == [NftChain("inet", "filter", "input"), NftChain("ip6", "v6only", "input")]

    def test_fresh_ruleset_gets_one_transaction_inserting_into_each_chain(self):
        plan = plan_nftables(MIXED, MULTICAST)
        assert plan.changed
        lines = plan.script().splitlines()
        assert lines == [
            'insert rule inet filter input iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "%s"' % plan.comment,
            'insert rule ip v4only input iifname "eth0" ip daddr 224.0.0.18 meta l4proto vrrp accept comment "%s"' % plan.comment,
        ]

    def test_present_rules_are_left_alone(self):
        plan = plan_nftables(MIXED, MULTICAST)
        done = ruleset(*MIXED["nftables"][1:], rule("inet", "filter", "input", 20, plan.comment),
                       rule("ip", "v4only", "input", 21, plan.comment))
        again = plan_nftables(done, MULTICAST)
        assert not again.changed and again.script() == ""
        assert again.before() == again.after()

    def test_stale_and_duplicate_rules_are_deleted_in_the_same_transaction(self):
        current = plan_nftables(MIXED, UNICAST).comment
        state = ruleset(chain("inet", "filter", "input", policy="drop"),
                        rule("inet", "filter", "input", 7, COMMENT + " 0123456789ab"),  # peers changed
                        rule("inet", "filter", "input", 8, current),
                        rule("inet", "filter", "input", 9, current),                    # duplicate
                        rule("inet", "gone", "input", 3, current))                       # chain no longer a target
        plan = plan_nftables(state, UNICAST)
        assert plan.script().splitlines() == [
            "delete rule inet filter input handle 7",
            "delete rule inet filter input handle 9",
            "delete rule inet gone input handle 3",
        ]

    def test_absent_deletes_every_own_rule_and_keeps_nothing(self):
        state = ruleset(chain("inet", "filter", "input"), rule("inet", "filter", "input", 4, COMMENT + " aaaa"),
                        rule("inet", "filter", "input", 5))
        plan = plan_nftables(state, MULTICAST, present=False)
        assert plan.script() == "delete rule inet filter input handle 4\n"
        assert plan.persistent_text() == ""

    def test_persistent_file_inserts_into_every_target_chain(self):
        plan = plan_nftables(MIXED, MULTICAST)
        inserts = [line for line in plan.persistent_text().splitlines() if not line.startswith("#")]
        assert inserts == [plan.insert_line(NftChain("inet", "filter", "input")),
                           plan.insert_line(NftChain("ip", "v4only", "input"))]

    def test_no_input_chain_means_nothing_to_do(self):
        plan = plan_nftables(ruleset(chain("inet", "filter", "output", hook="output")), MULTICAST)
        assert not plan.changed and plan.persistent_text() == ""

    def test_dropin_loads_the_file_after_start_and_reload_without_failing_the_firewall(self):
        text = nft_dropin_text("/usr/sbin/nft", "/etc/cloudcore-ha/vrrp.nft")
        assert "ExecStartPost=-/usr/sbin/nft -f /etc/cloudcore-ha/vrrp.nft" in text
        assert "ExecReload=-/usr/sbin/nft -f /etc/cloudcore-ha/vrrp.nft" in text

    def test_unexpected_output_is_an_error(self):
        with pytest.raises(FirewallError, match="unexpected output"):
            plan_nftables({"tables": []}, MULTICAST)


# `ufw show added` on Debian 12 after `ufw allow 10002/tcp` and two VRRP rules.
UFW_ADDED = """Added user rules (see 'ufw status' for running firewall):
ufw allow 10002/tcp
ufw allow in on eth0 to 224.0.0.18 proto vrrp comment 'cloudcore.ha vrrp'
ufw allow in on eth0 from 10.213.102.11 proto vrrp comment 'cloudcore.ha vrrp'
"""


class TestUfw:
    def test_rules_are_in_the_form_ufw_lists_them(self):
        assert ufw_rules(MULTICAST) == ["allow in on eth0 to 224.0.0.18 proto vrrp comment 'cloudcore.ha vrrp'"]
        assert ufw_rules(IPV6) == ["allow in on eth0 to ff02::12 proto vrrp comment 'cloudcore.ha vrrp'"]

    def test_multicast_rule_present_and_a_stale_peer_rule_deleted(self):
        plan = plan_ufw(UFW_ADDED, MULTICAST)
        assert plan.add == []
        assert plan.commands() == [["ufw", "delete", "allow", "in", "on", "eth0", "from", "10.213.102.11",
                                    "proto", "vrrp", "comment", COMMENT]]

    def test_unicast_adds_the_missing_peers_deletes_old_ones_and_keeps_the_operators_rules(self):
        plan = plan_ufw(UFW_ADDED, UNICAST)
        assert [shlex.join(argv) for argv in plan.commands()] == [
            "ufw delete allow in on eth0 to 224.0.0.18 proto vrrp comment 'cloudcore.ha vrrp'",
            "ufw delete allow in on eth0 from 10.213.102.11 proto vrrp comment 'cloudcore.ha vrrp'",
            "ufw allow in on eth0 from 10.213.102.12 proto vrrp comment 'cloudcore.ha vrrp'",
            "ufw allow in on eth0 from 10.213.102.13 proto vrrp comment 'cloudcore.ha vrrp'",
        ]

    def test_absent_deletes_only_own_rules(self):
        plan = plan_ufw(UFW_ADDED, MULTICAST, present=False)
        assert len(plan.delete) == 2 and all(rule.endswith("'cloudcore.ha vrrp'") for rule in plan.delete)
        assert plan.add == []


class TestFirewalld:
    def test_rich_rules(self):
        assert firewalld_rich_rules(MULTICAST) == ['rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept']
        assert firewalld_rich_rules(UNICAST)[0] == 'rule family="ipv4" source address="10.213.102.12" protocol value="vrrp" accept'
        assert firewalld_rich_rules(IPV6) == ['rule family="ipv6" destination address="ff02::12" protocol value="vrrp" accept']

    def test_zone_of_the_interface_else_the_default(self):
        assert firewalld_zone((0, "internal\n"), "public\n") == "internal"
        assert firewalld_zone((2, "no zone\n"), "public\n") == "public"

    def test_adds_permanent_and_runtime_separately(self):
        rule_text = firewalld_rich_rules(MULTICAST)[0]
        plan = plan_firewalld("public", rule_text + "\n", "", MULTICAST)
        assert plan.commands() == [["firewall-cmd", "--zone=public", "--add-rich-rule=" + rule_text]]

    def test_present_everywhere_is_no_change(self):
        rule_text = firewalld_rich_rules(MULTICAST)[0]
        assert not plan_firewalld("public", rule_text, rule_text, MULTICAST).changed

    def test_absent_removes_the_rules_it_would_add(self):
        rule_text = firewalld_rich_rules(MULTICAST)[0]
        plan = plan_firewalld("public", rule_text + "\nrule family=\"ipv4\" source address=\"1.2.3.4\" accept\n",
                              rule_text, MULTICAST, present=False)
        assert plan.commands() == [["firewall-cmd", "--permanent", "--zone=public", "--remove-rich-rule=" + rule_text],
                                   ["firewall-cmd", "--zone=public", "--remove-rich-rule=" + rule_text]]
