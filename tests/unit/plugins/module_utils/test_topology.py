# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._topology import (
    TopologyError,
    rolling_order,
    vrrp_endpoint,
    vrrp_endpoints,
)


def node_facts(ipv4, ipv6=None, vip_held=None, interface="eth0"):
    """Network facts shaped like Ansible's setup module output on Linux."""
    details = {"ipv4": {"address": ipv4, "netmask": "255.255.255.0", "prefix": "24"}, "ipv6": []}
    if ipv6:
        details["ipv6"] = [
            {"address": "fe80::1", "prefix": "64", "scope": "link"},
            {"address": ipv6, "prefix": "64", "scope": "global"},
        ]
    if vip_held:
        details["ipv4_secondaries"] = [{"address": vip_held, "netmask": "255.255.255.0", "prefix": "24"}]
    return {"ansible_facts": {"interfaces": ["lo", interface], interface.replace("-", "_"): details,
                              "lo": {"ipv4": {"address": "127.0.0.1", "prefix": "8"}}}}


HOSTVARS = {
    "node1": node_facts("10.1.0.11", "fd00::11", vip_held="10.1.0.100"),
    "node2": node_facts("10.1.0.12", "fd00::12"),
    "node3": node_facts("10.1.0.13", "fd00::13"),
}


def test_interface_is_found_from_the_vip_subnet_and_peers_are_the_others():
    endpoints = vrrp_endpoints(HOSTVARS, ["node1", "node2", "node3"], "10.1.0.100/24")
    assert endpoints["node1"].as_dict() == {
        "interface": "eth0", "address": "10.1.0.11", "peers": ["10.1.0.12", "10.1.0.13"]}
    assert endpoints["node3"].peers == ["10.1.0.11", "10.1.0.12"]


def test_the_holder_reports_its_own_address_not_the_vip():
    assert vrrp_endpoint("node1", HOSTVARS["node1"], "10.1.0.100/24").address == "10.1.0.11"


def test_ipv6_vip_uses_global_ipv6_addresses_and_skips_link_local():
    endpoints = vrrp_endpoints(HOSTVARS, ["node1", "node2"], "fd00::100/64")
    assert endpoints["node1"].address == "fd00::11"
    assert endpoints["node1"].peers == ["fd00::12"]


def test_interface_names_with_dashes_are_read_from_underscored_fact_keys():
    hostvars = {"n": node_facts("10.9.0.5", interface="br-lan")}
    assert vrrp_endpoint("n", hostvars["n"], "10.9.0.100/24").interface == "br-lan"


def test_explicit_interface_wins_and_a_missing_one_is_named():
    host_vars = dict(HOSTVARS["node2"], cloudcore_vrrp_interface="eth7")
    with pytest.raises(TopologyError, match=r"cloudcore_vrrp_interface 'eth7' does not exist \(interfaces: eth0, lo\)"):
        vrrp_endpoint("node2", host_vars, "10.1.0.100/24")


def test_vip_outside_every_subnet_names_the_variables():
    with pytest.raises(TopologyError, match="no interface has an address in the subnet of cloudcore_vip 10.2.0.100/24"):
        vrrp_endpoint("node2", HOSTVARS["node2"], "10.2.0.100/24")


def test_missing_facts_and_missing_family_are_explained():
    with pytest.raises(TopologyError, match="host ghost has no network facts"):
        vrrp_endpoint("ghost", {}, "10.1.0.100/24")
    ipv4_only = dict(node_facts("10.1.0.12"), cloudcore_vrrp_interface="eth0")
    with pytest.raises(TopologyError, match="interface eth0 has no IPv6 address"):
        vrrp_endpoint("node2", ipv4_only, "fd00::100/64")


@pytest.mark.parametrize("vip", ["10.1.0.100", "not-an-ip/24", None])
def test_vip_without_prefix_or_garbage_is_rejected(vip):
    with pytest.raises(TopologyError, match="cloudcore_vip"):
        vrrp_endpoint("node1", HOSTVARS["node1"], vip)


class TestRollingOrder:
    PLAN = {"n1": {"priority": 150}, "n2": {"priority": 140}, "n3": {"priority": 130}}

    @staticmethod
    def hostvars(holder=None, changed=("n1", "n2", "n3")):
        out = {}
        for index, host in enumerate(("n1", "n2", "n3"), start=11):
            out[host] = node_facts("10.0.0.%d" % index, vip_held="10.0.0.100" if host == holder else None)
            out[host]["_config"] = {"changed": host in changed}
        return out

    def test_backups_first_and_the_holder_last(self):
        assert rolling_order(self.hostvars(holder="n1"), self.PLAN, "10.0.0.100/24", "_config") == ["n2", "n3", "n1"]

    def test_first_start_goes_in_preference_order(self):
        plan = {"n3": {"priority": 150}, "n1": {"priority": 140}, "n2": {"priority": 130}}
        assert rolling_order(self.hostvars(), plan, "10.0.0.100/24", "_config") == ["n3", "n1", "n2"]

    def test_only_changed_hosts(self):
        hostvars = self.hostvars(holder="n2", changed=("n2", "n3"))
        assert rolling_order(hostvars, self.PLAN, "10.0.0.100/24", "_config") == ["n3", "n2"]

    def test_a_host_without_the_result_is_skipped(self):
        hostvars = self.hostvars(holder="n2")
        del hostvars["n1"]["_config"]
        assert rolling_order(hostvars, self.PLAN, "10.0.0.100/24", "_config") == ["n3", "n2"]
