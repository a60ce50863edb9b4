# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_vip
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import (
    rolling_order,
    vip_collisions,
    vip_holders,
    vrrp_endpoint,
    with_peers,
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


def endpoint(host, vip, interface=None, hostvars=None):
    return vrrp_endpoint(host, (hostvars or HOSTVARS)[host]["ansible_facts"], parse_vip(vip), interface)


def test_interface_is_found_from_the_vip_subnet_and_peers_are_the_others():
    endpoints = with_peers([endpoint(host, "10.1.0.100/24") for host in ("node1", "node2", "node3")])
    assert endpoints["node1"].as_dict() == {
        "interface": "eth0", "address": "10.1.0.11", "peers": ["10.1.0.12", "10.1.0.13"]}
    assert endpoints["node3"].peers == ["10.1.0.11", "10.1.0.12"]


def test_the_holder_reports_its_own_address_not_the_vip():
    assert endpoint("node1", "10.1.0.100/24").address == "10.1.0.11"


def test_ipv6_vip_uses_global_ipv6_addresses_and_skips_link_local():
    endpoints = with_peers([endpoint(host, "fd00::100/64") for host in ("node1", "node2")])
    assert endpoints["node1"].address == "fd00::11"
    assert endpoints["node1"].peers == ["fd00::12"]


def test_interface_names_with_dashes_are_read_from_underscored_fact_keys():
    hostvars = {"n": node_facts("10.9.0.5", interface="br-lan")}
    assert endpoint("n", "10.9.0.100/24", hostvars=hostvars).interface == "br-lan"


def test_explicit_interface_wins_and_a_missing_one_is_named():
    with pytest.raises(InputError) as error:
        endpoint("node2", "10.1.0.100/24", "eth7")
    assert error.value.variable == "cloudcore_vrrp_interface"
    assert error.value.rule == "on host node2: no such interface (interfaces: eth0, lo)"


def test_vip_outside_every_subnet_names_the_variables():
    with pytest.raises(InputError) as error:
        endpoint("node2", "10.2.0.100/24")
    assert error.value.variable == "cloudcore_vip"
    assert error.value.rule == ("on host node2: no interface has an address in the VIP's subnet (10.2.0.0/24); set"
                                " cloudcore_vrrp_interface or fix the VIP")
    with pytest.raises(InputError, match="the VIP is outside the subnets of interface eth0 \\(10.1.0.0/24\\)"):
        endpoint("node2", "10.2.0.100/24", "eth0")


def test_missing_facts_and_missing_family_are_explained():
    with pytest.raises(InputError, match="on host ghost: no network facts were gathered"):
        vrrp_endpoint("ghost", {}, parse_vip("10.1.0.100/24"))
    ipv4_only = {"node2": node_facts("10.1.0.12")}
    with pytest.raises(InputError, match="interface eth0 has no IPv6 address; the VIP is IPv6 but the interface is IPv4"
                                         " only"):
        endpoint("node2", "fd00::100/64", "eth0", hostvars=ipv4_only)


def test_collisions_and_holders():
    hostvars = dict(HOSTVARS, node3=node_facts("10.1.0.100"))
    vip = parse_vip("10.1.0.100/24")
    assert vip_collisions(vip, {h: v["ansible_facts"] for h, v in hostvars.items()}) == ["node3"]
    assert vip_holders(HOSTVARS, ["node1", "node2", "node3"], "10.1.0.100/24") == ["node1"]
    # an IPv6 VIP on its holder is indistinguishable from an own address: never a collision
    held6 = {"node1": node_facts("10.1.0.11", "fd00::100")}
    assert vip_collisions(parse_vip("fd00::100/64"), {h: v["ansible_facts"] for h, v in held6.items()}) == []


class TestRollingOrder:
    ORDER = ["n1", "n2", "n3"]

    @staticmethod
    def hostvars(holder=None, changed=("n1", "n2", "n3")):
        out = {}
        for index, host in enumerate(("n1", "n2", "n3"), start=11):
            out[host] = node_facts("10.0.0.%d" % index, vip_held="10.0.0.100" if host == holder else None)
            out[host]["_config"] = {"changed": host in changed}
        return out

    def test_backups_first_and_the_holder_last(self):
        assert rolling_order(self.hostvars(holder="n1"), self.ORDER, "10.0.0.100/24", "_config") == ["n2", "n3", "n1"]

    def test_first_start_goes_in_preference_order(self):
        assert rolling_order(self.hostvars(), ["n3", "n1", "n2"], "10.0.0.100/24", "_config") == ["n3", "n1", "n2"]

    def test_only_changed_hosts(self):
        hostvars = self.hostvars(holder="n2", changed=("n2", "n3"))
        assert rolling_order(hostvars, self.ORDER, "10.0.0.100/24", "_config") == ["n3", "n2"]

    def test_a_host_without_the_result_is_skipped(self):
        hostvars = self.hostvars(holder="n2")
        del hostvars["n1"]["_config"]
        assert rolling_order(hostvars, self.ORDER, "10.0.0.100/24", "_config") == ["n3", "n2"]

    def test_an_added_node_starts_after_the_running_ones_holder_included(self):
        hostvars = self.hostvars(holder="n1")
        for host in ("n1", "n2", "n3"):
            hostvars[host]["_unit"] = {"active": host != "n2"}
        assert rolling_order(hostvars, self.ORDER, "10.0.0.100/24", "_config", "_unit") == ["n3", "n1", "n2"]

    def test_when_keepalived_runs_nowhere_every_node_starts_in_preference_order(self):
        hostvars = self.hostvars()
        for host in ("n1", "n2", "n3"):
            hostvars[host]["_unit"] = {"active": False}
        assert rolling_order(hostvars, ["n2", "n1", "n3"], "10.0.0.100/24", "_config", "_unit") == ["n2", "n1", "n3"]


def test_nobody_holds_no_vip():
    assert vip_holders(HOSTVARS, ["node1", "node2", "node3"], None) == []
