# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""site_problems: the whole preflight judgement, from observations shaped like the role collects them."""
from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import (
    ClusterObservation,
    NodeObservation,
    site_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import vip_holders

SETTINGS = {
    "cloudcore_vip": "10.1.0.100/24",
    "cloudcore_vrrp_router_id": 51,
    "cloudcore_vrrp_mode": "multicast",
    "cloudcore_failover": "fault",
    "cloudcore_node_label": {"kubeedge.io/cloudcore-ha": "true"},
    "cloudcore_check_url": "https://127.0.0.1:10002/ca.crt",
    "cloudcore_kubeconfig": "/root/.kube/config",
}


def facts(address, vip_held=False, interface="eth0"):
    details = {"ipv4": {"address": address, "prefix": "24"}, "ipv6": []}
    if vip_held:
        details["ipv4_secondaries"] = [{"address": "10.1.0.100", "prefix": "24"}]
    return {"interfaces": ["lo", interface], interface: details}


def node(host, address, **changes):
    values = dict(host=host, node_name=host, facts=facts(address), vip_ping_rc=1, check_status=200)
    values.update(changes)
    return NodeObservation(**values)


NODES = [node("n1", "10.1.0.11"), node("n2", "10.1.0.12")]
CLUSTER = ClusterObservation(reachable=True, node_names=("n1", "n2", "control-plane"), cloudcore_deployed=True)


def messages(problems):
    return [problem.msg for problem in problems]


def test_a_good_site_has_no_problem():
    assert site_problems(SETTINGS, NODES, CLUSTER) == []


@pytest.mark.parametrize("changes, variable, fragment", [
    ({"cloudcore_vip": "10.1.0.100"}, "cloudcore_vip", "needs a prefix length"),
    ({"cloudcore_vip": "10.1.0.0/24"}, "cloudcore_vip", "network address"),
    ({"cloudcore_vip": "10.1.0.255/24"}, "cloudcore_vip", "broadcast address"),
    ({"cloudcore_vip": "10.1.0.11/24"}, "cloudcore_vip", "a node's own address"),
    ({"cloudcore_vip": "10.2.0.100/24"}, "cloudcore_vip", "no interface has an address in the VIP's subnet"),
    ({"cloudcore_vip": "fd00::100/64"}, "cloudcore_vip", "no interface has an address in the VIP's subnet"),
    ({"cloudcore_vrrp_router_id": 300}, "cloudcore_vrrp_router_id", "1..255"),
    ({"cloudcore_vrrp_auth_pass": "123456789"}, "cloudcore_vrrp_auth_pass", "at most 8 characters"),
    ({"cloudcore_failover": "sometimes"}, "cloudcore_failover", "unknown"),
    ({"cloudcore_vrrp_mode": "broadcast"}, "cloudcore_vrrp_mode", "unknown"),
    ({"keepalived_firewall": "iptables"}, "keepalived_firewall", "use one of: auto, none, firewalld, ufw, nftables"),
    ({"cloudcore_node_label": {"bad key!": "x"}}, "cloudcore_node_label", "label"),
    ({"keepalived_priorities": {"n1": 100, "n2": 90}, "cloudcore_failover": "weighted",
      "keepalived_check_weight": 2}, "keepalived_priorities", "weight 2 must exceed the priority gap 10"),
])
def test_each_bad_value_is_named(changes, variable, fragment):
    settings = dict(SETTINGS, **changes)
    priority_problem = None
    if "keepalived_priorities" in changes:
        priority_problem = "weight 2 must exceed the priority gap 10 (100 − 90)"
    problems = site_problems(settings, NODES, CLUSTER, priority_problem=priority_problem)
    assert any(p.variable.startswith(variable) and fragment in p.msg for p in problems), messages(problems)


def test_all_problems_are_reported_at_once():
    settings = dict(SETTINGS, cloudcore_vip="10.1.0.0/24", cloudcore_vrrp_router_id=0, cloudcore_failover="x")
    variables = {p.variable for p in site_problems(settings, NODES[:1], CLUSTER)}
    assert {"cloudcore_vip", "cloudcore_vrrp_router_id", "cloudcore_failover", "groups['cloudcore']"} <= variables


def test_missing_interface_and_unicast_without_address():
    nodes = [node("n1", "10.1.0.11", vrrp_interface="eth9"), node("n2", "10.1.0.12")]
    assert "on host n1: no such interface (interfaces: eth0, lo)" in " ".join(messages(site_problems(SETTINGS, nodes, CLUSTER)))
    v6 = dict(SETTINGS, cloudcore_vip="fd00::100/64", cloudcore_vrrp_mode="unicast")
    nodes = [node("n1", "10.1.0.11", vrrp_interface="eth0"), node("n2", "10.1.0.12", vrrp_interface="eth0")]
    found = messages(site_problems(v6, nodes, CLUSTER))
    assert any("interface eth0 has no IPv6 address to send unicast adverts from" in m for m in found), found


def test_duplicate_node_names():
    nodes = [node("n1", "10.1.0.11", node_name="same"), node("n2", "10.1.0.12", node_name="same")]
    found = messages(site_problems(SETTINGS, nodes, ClusterObservation(reachable=True, node_names=("same",))))
    assert any("cloudcore_node_name='same': is used by hosts n1, n2" in m for m in found), found


def test_vip_answering_from_a_foreign_host_is_reported_unless_a_node_holds_it():
    nodes = [node("n1", "10.1.0.11", vip_ping_rc=0), node("n2", "10.1.0.12")]
    assert any("another machine uses this address" in m for m in messages(site_problems(SETTINGS, nodes, CLUSTER)))
    held = [node("n1", "10.1.0.11", vip_ping_rc=0, facts=facts("10.1.0.11", vip_held=True)), node("n2", "10.1.0.12")]
    assert site_problems(SETTINGS, held, CLUSTER) == []


def test_health_check_failing_everywhere_blocks_a_running_cluster_only():
    nodes = [node("n1", "10.1.0.11", check_status=-1), node("n2", "10.1.0.12", check_status=404)]
    found = messages(site_problems(SETTINGS, nodes, CLUSTER))
    assert any("fails on every node (HTTP n1=no answer, n2=404)" in m for m in found), found
    assert site_problems(SETTINGS, nodes, CLUSTER, allow_unhealthy_cloudcore=True) == []
    first_install = ClusterObservation(reachable=True, node_names=("n1", "n2"), cloudcore_deployed=False)
    assert site_problems(SETTINGS, nodes, first_install) == []


def test_cluster_unreachable_and_missing_node():
    found = messages(site_problems(SETTINGS, NODES, ClusterObservation(reachable=False, error="connection refused")))
    assert any(m.startswith("cloudcore_kubeconfig='/root/.kube/config': the cluster cannot be reached") for m in found)
    found = messages(site_problems(SETTINGS, NODES, ClusterObservation(reachable=True, node_names=("n1",))))
    assert any("cloudcore_node_name='n2': on host n2: no such node in the cluster (nodes: n1)" in m for m in found), found


def test_vip_holders_reads_secondary_addresses():
    hostvars = {"n1": {"ansible_facts": facts("10.1.0.11", vip_held=True)}, "n2": {"ansible_facts": facts("10.1.0.12")}}
    assert vip_holders(hostvars, ["n1", "n2"], "10.1.0.100/24") == ["n1"]


def test_a_rule_that_does_not_depend_on_the_host_is_reported_once():
    problems = site_problems(dict(SETTINGS, cloudcore_vip="10.1.0.0/24"), NODES, CLUSTER)
    assert [p.msg for p in problems] == [
        "cloudcore_vip='10.1.0.0/24': is the network address of 10.1.0.0/24; pick a host address"]
