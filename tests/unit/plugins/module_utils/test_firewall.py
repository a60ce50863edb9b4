# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The firewall planner, on output captured from nft 1.0.6, ufw 0.36.2 and firewalld 1.3.3 (Debian 12)."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    BALANCER_COMMENT,
    COMMENT,
    FirewallError,
    NftChain,
    active_backends,
    balancer_traffic,
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
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError

MULTICAST = vrrp_traffic("eth0", "10.213.102.100/24", "multicast", "224.0.0.18")
UNICAST = vrrp_traffic("eth0", "10.213.102.100/24", "unicast", peers=["10.213.102.13", "10.213.102.12"])
IPV6 = vrrp_traffic("eth0", "fd5c:c0e:213::100/64", "multicast", "224.0.0.18")
BALANCER = balancer_traffic("eth0", ["10.213.102.13", "10.213.102.12"], [10110, 10100, 10104, 10102])
BALANCER6 = balancer_traffic("eth0", ["fd5c:c0e:213::12"], [10100])


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
        (dict(interface="eth 0"), "interface='eth 0': must be an interface name"),
        (dict(interface='eth"0'), "interface='eth\"0': must be an interface name"),
        (dict(vip="10.0.0.300/24"), "vip='10.0.0.300/24': is not an IPv4 or IPv6 address"),
        (dict(mode="broadcast"), "mode='broadcast': is unknown; use one of: multicast, unicast"),
        (dict(multicast_group="10.0.0.1"), "multicast_group='10.0.0.1': must be a multicast address"),
        (dict(multicast_group="group"), "multicast_group='group': must be a multicast address"),
        (dict(mode="unicast", peers=[]), "peers=[]: unicast mode needs the other nodes' addresses"),
        (dict(mode="unicast", peers=["fd00::1"]), "peers='fd00::1': must be IPv4 like the VIP"),
        (dict(mode="unicast", peers=["node2"]), "peers='node2': must be an IP address"),
    ])
    def test_bad_input_names_the_option_and_value(self, kwargs, words):
        args = dict(interface="eth0", vip="10.0.0.100/24", mode="multicast", multicast_group=None, peers=[])
        args.update(kwargs)
        with pytest.raises(InputError) as error:
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


# --- the balancer's traffic, and the two traffics side by side -------------------------------

class TestBalancerTraffic:
    def test_peers_and_ports_are_sorted_and_deduplicated(self):
        assert BALANCER.peers == ("10.213.102.12", "10.213.102.13") and BALANCER.version == 4
        assert BALANCER.ports == (10100, 10102, 10104, 10110)
        again = balancer_traffic("eth0", ["10.0.0.10", "10.0.0.9", "10.0.0.9"], ["10102", 10100, 10100])
        assert again.peers == ("10.0.0.9", "10.0.0.10") and again.ports == (10100, 10102)
        assert BALANCER6.version == 6

    @pytest.mark.parametrize("kwargs, words", [
        (dict(interface="eth0 "), "interface='eth0 ': must be an interface name of 1..15 characters"),
        (dict(peers=[]), "peers=[]: needs the other CloudCore nodes' addresses on the interface (at least one)"),
        (dict(peers=["node2"]), "peers='node2': must be an IP address"),
        (dict(peers=["10.0.0.2", "fd00::2"]), "peers=['10.0.0.2', 'fd00::2']: must all be IPv4 or all IPv6"),
        (dict(peers=["224.0.0.18"]), "peers='224.0.0.18': must be another CloudCore node's unicast address"),
        (dict(peers=["127.0.0.1"]), "peers='127.0.0.1': must be another CloudCore node's unicast address"),
        (dict(ports=[]), "ports=[]: needs the TCP ports to open to the peers (1..15)"),
        (dict(ports=[0]), "ports=0: must be 1..65535"),
        (dict(ports=["http"]), "ports='http': must be a whole number 1..65535"),
        (dict(ports=list(range(10100, 10116))), "ports=[10100, 10101, 10102, 10103, 10104, 10105, 10106, 10107,"
                                                " 10108, 10109, 10110, 10111, 10112, 10113, 10114, 10115]: must be"
                                                " at most 15 distinct ports (ufw's and iptables' multiport limit);"
                                                " 16 given"),
    ])
    def test_bad_input_names_the_option_value_and_rule(self, kwargs, words):
        args = dict(interface="eth0", peers=["10.0.0.2"], ports=[10100])
        args.update(kwargs)
        with pytest.raises(InputError) as error:
            balancer_traffic(**args)
        assert str(error.value).startswith(words), str(error.value)

    def test_fifteen_ports_are_fine(self):
        assert len(balancer_traffic("eth0", ["10.0.0.2"], list(range(10100, 10115))).ports) == 15

    def test_nft_rule_body(self):
        assert nft_rule_body(BALANCER) == ('iifname "eth0" ip saddr { 10.213.102.12, 10.213.102.13 }'
                                           ' tcp dport { 10100, 10102, 10104, 10110 } accept')
        assert nft_rule_body(BALANCER6) == 'iifname "eth0" ip6 saddr { fd5c:c0e:213::12 } tcp dport { 10100 } accept'

    def test_ufw_rules_one_per_peer_in_the_form_ufw_show_added_prints(self):
        # ufw 0.36.2 parser.py get_command, full syntax (an interface is given): in on, from, to any port
        # LIST (in the order given), proto, comment; checked against ufw's own parser and get_command
        assert ufw_rules(BALANCER) == [
            "allow in on eth0 from 10.213.102.12 to any port 10100,10102,10104,10110 proto tcp comment 'cloudcore.ha balancer'",
            "allow in on eth0 from 10.213.102.13 to any port 10100,10102,10104,10110 proto tcp comment 'cloudcore.ha balancer'"]
        assert ufw_rules(BALANCER6) == [
            "allow in on eth0 from fd5c:c0e:213::12 to any port 10100 proto tcp comment 'cloudcore.ha balancer'"]

    def test_firewalld_rich_rules_one_per_peer_and_port(self):
        # firewalld 1.3.3 rich.py Rich_Rule.__str__: family, source, the port element, the action
        rules = firewalld_rich_rules(BALANCER)
        assert len(rules) == 8
        assert rules[:2] == ['rule family="ipv4" source address="10.213.102.12" port port="10100" protocol="tcp" accept',
                             'rule family="ipv4" source address="10.213.102.12" port port="10102" protocol="tcp" accept']
        assert firewalld_rich_rules(BALANCER6) == [
            'rule family="ipv6" source address="fd5c:c0e:213::12" port port="10100" protocol="tcp" accept']

    def test_the_comments_share_no_prefix(self):
        assert not BALANCER_COMMENT.startswith(COMMENT) and not COMMENT.startswith(BALANCER_COMMENT)
        assert nft_comment("a", BALANCER_COMMENT).startswith(BALANCER_COMMENT + " ")

    def test_the_balancer_plan_inserts_into_every_input_chain_and_persists_under_its_own_names(self):
        plan = plan_nftables(MIXED, BALANCER, dropin_name="cloudcore-ha-balancer.conf")
        assert plan.comment.startswith(BALANCER_COMMENT + " ")
        assert [line.split(" iifname")[0] for line in plan.script().splitlines()] == [
            "insert rule inet filter input", "insert rule ip v4only input"]
        header = plan.persistent_text().splitlines()[:2]
        assert header == ["# managed by cloudcore.ha: lets the other CloudCore nodes reach the balancer's internal"
                          " ports through the input chains below.",
                          "# nftables.service loads it after /etc/nftables.conf (drop-in cloudcore-ha-balancer.conf)."]
        assert plan_nftables(MIXED, BALANCER6).chains == [NftChain("inet", "filter", "input"),
                                                          NftChain("ip6", "v6only", "input")]

    def test_its_own_dropin_says_what_it_keeps(self):
        text = nft_dropin_text("/usr/sbin/nft", "/etc/cloudcore-ha/balancer.nft", BALANCER.dropin)
        assert text.splitlines() == [
            "# managed by cloudcore.ha: the balancer's rules survive nftables.service starts and reloads",
            "[Service]",
            "ExecStartPost=-/usr/sbin/nft -f /etc/cloudcore-ha/balancer.nft",
            "ExecReload=-/usr/sbin/nft -f /etc/cloudcore-ha/balancer.nft"]


def _both_applied():
    """inet filter input after both modules ran: VRRP's rule and the balancer's, each with its digest."""
    vrrp, balancer = plan_nftables(MIXED, UNICAST), plan_nftables(MIXED, BALANCER)
    return ruleset(chain("inet", "filter", "input", policy="drop"),
                   rule("inet", "filter", "input", 30, vrrp.comment),
                   rule("inet", "filter", "input", 31, balancer.comment),
                   rule("inet", "filter", "input", 2))


class TestTheTraffics:
    """A VRRP plan never deletes the balancer's rules and the reverse, in every firewall and both states."""

    @pytest.mark.parametrize("mine, other", [(UNICAST, BALANCER), (BALANCER, UNICAST)])
    def test_nft_present_leaves_the_other_traffics_rule(self, mine, other):
        plan = plan_nftables(_both_applied(), mine)
        assert not plan.changed

    @pytest.mark.parametrize("mine, handle", [(UNICAST, 30), (BALANCER, 31)])
    def test_nft_absent_deletes_only_its_own_rule(self, mine, handle):
        plan = plan_nftables(_both_applied(), mine, present=False)
        assert plan.script() == "delete rule inet filter input handle %d\n" % handle

    @pytest.mark.parametrize("mine, other", [(MULTICAST, BALANCER), (BALANCER, MULTICAST)])
    def test_nft_a_changed_traffic_replaces_its_own_rule_only(self, mine, other):
        stale_other = rule("inet", "filter", "input", 40, other.comment + " 0123456789ab")
        stale_mine = rule("inet", "filter", "input", 41, mine.comment + " 0123456789ab")
        plan = plan_nftables(ruleset(chain("inet", "filter", "input"), stale_other, stale_mine), mine)
        assert [line for line in plan.script().splitlines() if line.startswith("delete")] == [
            "delete rule inet filter input handle 41"]

    def test_the_guard_table_is_never_a_target_nor_owned_rule_by_rule(self):
        guard = ruleset(chain("inet", "filter", "input"), chain("inet", "cloudcore_ha_guard", "input"),
                        rule("inet", "cloudcore_ha_guard", "input", 5, "cloudcore.ha guard 0123456789ab"),
                        rule("inet", "cloudcore_ha_guard", "input", 6, BALANCER_COMMENT + " 0123456789ab"))
        assert nft_input_chains(guard, 4) == [NftChain("inet", "filter", "input")]
        for traffic in (MULTICAST, BALANCER):
            for present in (True, False):
                assert "cloudcore_ha_guard" not in plan_nftables(guard, traffic, present).script()

    def test_ufw_each_keeps_the_others_rules(self):
        shown = UFW_ADDED + "".join("ufw %s\n" % line for line in ufw_rules(BALANCER))
        assert not plan_ufw(shown, BALANCER).changed
        vrrp_absent = plan_ufw(shown, UNICAST, present=False)
        assert vrrp_absent.delete and all(r.endswith("'cloudcore.ha vrrp'") for r in vrrp_absent.delete)
        balancer_absent = plan_ufw(shown, BALANCER, present=False)
        assert balancer_absent.delete == ufw_rules(BALANCER)
        multicast = plan_ufw(shown, MULTICAST)
        assert multicast.delete == ["allow in on eth0 from 10.213.102.11 proto vrrp comment 'cloudcore.ha vrrp'"]

    def test_ufw_a_changed_peer_list_deletes_the_old_peers_balancer_rule(self):
        shown = UFW_ADDED + "".join("ufw %s\n" % line for line in ufw_rules(BALANCER))
        fewer = balancer_traffic("eth0", ["10.213.102.12"], BALANCER.ports)
        plan = plan_ufw(shown, fewer)
        assert plan.add == [] and plan.delete == [ufw_rules(BALANCER)[1]]

    def test_firewalld_absent_removes_exactly_its_own_rules(self):
        both = "\n".join(firewalld_rich_rules(UNICAST) + firewalld_rich_rules(BALANCER)) + "\n"
        vrrp = plan_firewalld("public", both, both, UNICAST, present=False)
        assert vrrp.remove_permanent == firewalld_rich_rules(UNICAST)
        balancer = plan_firewalld("public", both, both, BALANCER, present=False)
        assert balancer.remove_permanent == balancer.remove_runtime == firewalld_rich_rules(BALANCER)
        assert not plan_firewalld("public", both, both, BALANCER).changed
