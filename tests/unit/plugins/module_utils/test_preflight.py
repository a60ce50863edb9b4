# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Preflight checks (plugins/module_utils/_preflight.py): every problem, each naming variable, value, rule."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import (
    auth_pass_problems,
    choice_problems,
    label_problems,
    node_problems,
    preflight_problems,
    vip_problems,
    vrid_problems,
)

IFACE = ["10.10.102.11/24", "fe80::1/64"]
NODES = ["10.10.102.11", "10.10.102.12"]


def rules(problems):
    return [p.rule for p in problems]


def test_good_vip_has_no_problems():
    assert vip_problems("10.10.102.242/24", IFACE, NODES) == []
    assert vip_problems("fd00::100/64", ["fd00::11/64"], ["fd00::11", "fd00::12"]) == []


@pytest.mark.parametrize("vip, fragment", [
    ("10.10.102.242", "needs a prefix length"),
    ("", "is required"),
    (None, "is required"),
    ("10.10.102.300/24", "not an IPv4 or IPv6 address"),
    ("10.10.103.242/24", "outside the subnets of interface eth0 (10.10.102.0/24)"),
    ("10.10.102.11/24", "a node's own address"),
    ("10.10.102.0/24", "network address"),
    ("10.10.102.255/24", "broadcast address"),
    ("fd00::100/64", "IPv6 but the addresses of interface eth0 are IPv4 only"),
    ("127.0.0.5/8", "not loopback"),
])
def test_vip_rules(vip, fragment):
    problems = vip_problems(vip, ["10.10.102.11/24"], NODES, interface="eth0")
    assert any(fragment in rule for rule in rules(problems)), rules(problems)
    assert all(p.variable == "cloudcore_vip" and p.value == vip for p in problems)


def test_vip_reports_all_problems_at_once():
    problems = vip_problems("fd00::/64", ["10.10.102.11/24"], NODES)
    text = " | ".join(rules(problems))
    assert "network address" in text and "IPv4 only" in text and "node addresses are IPv4" in text


def test_point_to_point_prefixes_have_no_network_or_broadcast():
    assert vip_problems("10.0.0.0/31", ["10.0.0.1/31"]) == []


@pytest.mark.parametrize("vrid, ok", [(1, True), (255, True), ("51", True), (0, False), (256, False),
                                      (True, False), ("x", False), (None, False)])
def test_vrid(vrid, ok):
    assert (vrid_problems(vrid) == []) is ok


def test_auth_pass():
    assert auth_pass_problems(None) == [] and auth_pass_problems("12345678") == []
    problems = auth_pass_problems("123456789 x", vip="fd00::1/64")
    assert len(problems) == 3
    assert all("123456789" not in p.msg for p in problems)
    assert problems[0].value == "<11 characters>" and "at most 8" in problems[0].rule


def test_nodes():
    assert node_problems(["a", "b"]) == []
    assert "has 1 node(s)" in node_problems(["a"])[0].rule
    assert "has 17 node(s)" in node_problems(["n%d" % i for i in range(17)])[0].rule
    dup = node_problems(["a", "b", "a"])
    assert dup[0].variable == "groups['cloudcore']" and "lists a more than once" in dup[0].rule


@pytest.mark.parametrize("labels, count", [
    ({"kubeedge.io/cloudcore": "true"}, 0),
    ({"cloudcore": ""}, 0),
    ({"node-role.kubernetes.io/cloudcore": "enabled_1.0"}, 0),
    ({"Kube_Edge.io/x": "y"}, 1),
    ({"a/b/c": "y"}, 1),
    ({"-bad": "y"}, 1),
    ({"x" * 64: "y"}, 1),
    ({"ok": "bad value"}, 1),
    ({"ok": True}, 1),
    ({"ok": "v" * 64}, 1),
    ({"-bad": "bad value"}, 2),
    ({}, 1),
    ("cloudcore=true", 1),
])
def test_labels(labels, count):
    problems = label_problems(labels)
    assert len(problems) == count, [p.msg for p in problems]
    assert all(p.variable.startswith("cloudcore_node_label") for p in problems)


def test_choices():
    assert choice_problems("fault", ("fault", "weighted"), "cloudcore_failover") == []
    problem = choice_problems("sometimes", ("fault", "weighted"), "cloudcore_failover")[0]
    assert problem.msg == "cloudcore_failover='sometimes': is unknown; use one of: fault, weighted"


def test_preflight_problems_collects_everything():
    problems = preflight_problems({
        "cloudcore_vip": "10.10.103.242/24", "interface_addresses": ["10.10.102.11/24"], "node_addresses": NODES,
        "cloudcore_vrrp_router_id": 300, "cloudcore_vrrp_auth_pass": "toolongsecret", "nodes": ["a"],
        "cloudcore_node_label": {"bad key": "x"}, "cloudcore_failover": "x", "cloudcore_vrrp_mode": "broadcast",
    })
    variables = [p.variable for p in problems]
    for name in ("cloudcore_vip", "cloudcore_vrrp_router_id", "cloudcore_vrrp_auth_pass", "groups['cloudcore']",
                 "cloudcore_failover", "cloudcore_vrrp_mode"):
        assert name in variables
    assert any(v.startswith("cloudcore_node_label") for v in variables)
    assert preflight_problems({"cloudcore_vip": "10.10.102.242/24", "interface_addresses": IFACE}) == []
