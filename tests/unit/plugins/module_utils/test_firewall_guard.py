# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The balancer's guard table (_firewall_guard.py), on `nft -j list ruleset` output of nft 1.0.6; with nft
installed and root, the texts are also checked by nft itself (`nft -c`: nothing is loaded)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    FirewallError,
    balancer_traffic,
    plan_nftables,
    vrrp_traffic,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall_guard import (
    GUARD_COMMENT,
    guard_comment,
    guard_dropin_text,
    guard_file_text,
    guard_rules,
    guard_script,
    guard_unit_text,
    plan_guard,
    removal_script,
)

BALANCER = balancer_traffic("eth0", ["10.1.0.13", "10.1.0.12"], [10100, 10102, 10104, 10110])
BALANCER6 = balancer_traffic("eth0", ["fd00::12", "fd00::13"], [10100, 10102, 10104, 10110])
NFT = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)


def metainfo():
    return {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}


def live(traffic, comment=None, prio=-10, extra_rules=(), drop_rule=False):
    """The guard as `nft -j list ruleset` printed it after `nft -f` of guard_script (captured in a scratch
    network namespace, nft 1.0.6): no table comment, the chain, one rule per line with its comment."""
    comment = comment or guard_comment(traffic)
    items = [metainfo(), {"table": {"family": "inet", "name": "filter", "handle": 1}},
             {"table": {"family": "inet", "name": "cloudcore_ha_guard", "handle": 3}},
             {"chain": {"family": "inet", "table": "cloudcore_ha_guard", "name": "input", "handle": 1,
                        "type": "filter", "hook": "input", "prio": prio, "policy": "accept"}}]
    for index in range(len(guard_rules(traffic))):
        if drop_rule and index == 2:
            continue
        items.append({"rule": {"family": "inet", "table": "cloudcore_ha_guard", "chain": "input", "handle": 3 + index,
                               "comment": comment, "expr": []}})
    items += [{"rule": dict(rule, family="inet", table="cloudcore_ha_guard", chain="input")} for rule in extra_rules]
    return {"nftables": items}


EMPTY = {"nftables": [metainfo()]}


class TestTexts:
    def test_rules_accept_lo_and_the_peers_then_drop(self):
        assert guard_rules(BALANCER) == [
            'tcp dport { 10100, 10102, 10104, 10110 } iifname "lo" accept',
            "tcp dport { 10100, 10102, 10104, 10110 } ip saddr { 10.1.0.12, 10.1.0.13 } accept",
            "tcp dport { 10100, 10102, 10104, 10110 } drop"]
        assert guard_rules(BALANCER6)[1] == "tcp dport { 10100, 10102, 10104, 10110 } ip6 saddr { fd00::12, fd00::13 } accept"

    def test_the_script_replaces_the_table_in_one_transaction(self):
        script = guard_script(BALANCER)
        comment = guard_comment(BALANCER)
        assert script.splitlines() == [
            "table inet cloudcore_ha_guard {}",
            "delete table inet cloudcore_ha_guard",
            "table inet cloudcore_ha_guard {",
            "\tchain input {",
            "\t\ttype filter hook input priority -10; policy accept;",
            '\t\ttcp dport { 10100, 10102, 10104, 10110 } iifname "lo" accept comment "%s"' % comment,
            '\t\ttcp dport { 10100, 10102, 10104, 10110 } ip saddr { 10.1.0.12, 10.1.0.13 } accept comment "%s"' % comment,
            '\t\ttcp dport { 10100, 10102, 10104, 10110 } drop comment "%s"' % comment,
            "\t}",
            "}"]
        assert guard_file_text(BALANCER).endswith(script) and guard_file_text(BALANCER).startswith("# managed by cloudcore.ha")

    def test_the_digest_follows_peers_ports_and_family(self):
        other = balancer_traffic("eth0", ["10.1.0.12"], [10100, 10102, 10104, 10110])
        fewer_ports = balancer_traffic("eth0", ["10.1.0.12", "10.1.0.13"], [10100])
        comments = {guard_comment(t) for t in (BALANCER, BALANCER6, other, fewer_ports)}
        assert len(comments) == 4 and all(c.startswith(GUARD_COMMENT + " ") for c in comments)
        assert guard_comment(BALANCER) == guard_comment(balancer_traffic("eth0", ["10.1.0.12", "10.1.0.13"],
                                                                         [10110, 10104, 10102, 10100]))

    def test_the_unit_loads_the_file_before_haproxy_and_deletes_the_table_on_stop(self):
        text = guard_unit_text("/usr/sbin/nft", "/etc/cloudcore-ha/balancer-guard.nft")
        lines = text.splitlines()
        for line in ("After=nftables.service", "Before=haproxy.service kubelet.service", "Type=oneshot",
                     "RemainAfterExit=yes", "ExecStart=/usr/sbin/nft -f /etc/cloudcore-ha/balancer-guard.nft",
                     "ExecStop=-/usr/sbin/nft delete table inet cloudcore_ha_guard", "WantedBy=multi-user.target"):
            assert line in lines, line

    def test_the_dropin_loads_it_after_nftables_service_flushes(self):
        assert guard_dropin_text("/usr/sbin/nft", "/g.nft").splitlines()[1:] == [
            "[Service]", "ExecStartPost=-/usr/sbin/nft -f /g.nft", "ExecReload=-/usr/sbin/nft -f /g.nft",
            "ExecStopPost=-/usr/sbin/nft -f /g.nft"]


class TestPlan:
    def test_missing_guard_is_added(self):
        plan = plan_guard(EMPTY, BALANCER)
        assert plan.changed and plan.script() == guard_script(BALANCER)
        assert plan.before() == [] and plan.after()[2] == "inet cloudcore_ha_guard input: tcp dport { 10100, 10102, 10104, 10110 } drop"

    def test_the_live_guard_of_this_digest_is_left_alone(self):
        plan = plan_guard(live(BALANCER), BALANCER)
        assert not plan.changed and plan.script() == "" and plan.before() == plan.after()

    @pytest.mark.parametrize("state", [
        dict(comment=GUARD_COMMENT + " 0123456789ab"),      # other peers or ports
        dict(prio=0),                                       # someone changed the chain
        dict(drop_rule=True),                               # someone deleted a rule
        dict(extra_rules=[{"handle": 99, "expr": []}]),    # someone added one
    ])
    def test_a_different_guard_is_replaced_as_a_whole(self, state):
        plan = plan_guard(live(BALANCER, **state), BALANCER)
        assert plan.changed and plan.script() == guard_script(BALANCER)
        assert plan.before()[0].startswith("inet cloudcore_ha_guard: a different guard (")

    def test_absent_removes_a_live_guard_and_nothing_else(self):
        plan = plan_guard(live(BALANCER), BALANCER, present=False)
        assert plan.changed and plan.script() == removal_script() and plan.after() == []
        assert not plan_guard(EMPTY, BALANCER, present=False).changed

    def test_unexpected_output_is_an_error(self):
        with pytest.raises(FirewallError, match="unexpected output"):
            plan_guard({"tables": []}, BALANCER)


# --- nft itself: check only (-c), nothing is loaded into this machine's ruleset ----------------

def nft_check(script):
    if NFT is None:
        pytest.skip("nft is not installed (apt-get install nftables): the ruleset texts cannot be checked")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (CAP_NET_ADMIN) to ask the kernel")
    return subprocess.run([NFT, "-c", "-f", "-"], input=script, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("traffic", [BALANCER, BALANCER6, balancer_traffic("eth0", ["10.1.0.12"], [10110])],
                         ids=["ipv4", "ipv6", "one-peer-one-port"])
def test_nft_accepts_the_guard(traffic):
    proc = nft_check(guard_file_text(traffic))
    assert proc.returncode == 0, proc.stderr
    proc = nft_check(removal_script())
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("traffic", [
    vrrp_traffic("eth0", "10.1.0.100/24", "multicast", "224.0.0.18"),
    vrrp_traffic("eth0", "10.1.0.100/24", "unicast", peers=["10.1.0.12", "10.1.0.13"]),
    vrrp_traffic("eth0", "fd00::100/64", "multicast", "ff02::12"),
    BALANCER,
    BALANCER6,
], ids=["vrrp-multicast", "vrrp-unicast", "vrrp-ipv6", "balancer", "balancer-ipv6"])
def test_nft_accepts_the_accept_rules_files(traffic):
    """The rules files insert into the chains of a scratch table that the same transaction declares."""
    chains = []
    for family in ("inet", "ip", "ip6"):
        chains.append({"chain": {"family": family, "table": "cloudcore_ha_check", "name": "input", "handle": 1,
                                 "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}})
    plan = plan_nftables({"nftables": [metainfo()] + chains}, traffic)
    declare = "".join("table %s cloudcore_ha_check {\n\tchain input { type filter hook input priority 0; policy accept; }\n}\n"
                      % family for family in ("inet", "ip", "ip6"))
    assert len(plan.chains) == 2
    proc = nft_check(declare + plan.persistent_text())
    assert proc.returncode == 0, proc.stderr
