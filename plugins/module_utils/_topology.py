# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each CloudCore node speaks VRRP: its interface, its own address there, and its peers.

Plain Python over Ansible's gathered network facts (the `ansible_facts` of each host), so the
keepalived role needs no logic in Jinja. The VIP decides the address family: an IPv6 VIP needs IPv6
addresses on the nodes (VRRPv3), an IPv4 VIP IPv4 ones.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


class TopologyError(ValueError):
    """A node's network facts do not allow VRRP for the VIP; the message names host and variable."""


@dataclass(frozen=True)
class Endpoint:
    """One node's VRRP endpoint."""

    host: str
    interface: str
    address: str
    peers: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"interface": self.interface, "address": self.address, "peers": list(self.peers)}


def parse_vip(vip: str) -> IPInterface:
    """The VIP with its prefix, e.g. 10.10.102.242/24 (the prefix says which subnet it serves)."""
    if not isinstance(vip, str) or "/" not in vip:
        raise TopologyError(
            "cloudcore_vip %r must be an address with a prefix length, e.g. 10.10.102.242/24" % (vip,))
    try:
        return ipaddress.ip_interface(vip.strip())
    except ValueError as error:
        raise TopologyError("cloudcore_vip %r is not an IPv4 or IPv6 address with prefix: %s" % (vip, error))


def _facts_key(interface: str) -> str:
    # Ansible stores per-interface facts under the name with '-' and ':' replaced by '_'.
    return interface.replace("-", "_").replace(":", "_")


def interface_addresses(facts: Mapping[str, Any], interface: str, version: int) -> List[IPInterface]:
    """All addresses of one family on an interface, primary first, from gathered facts."""
    details = facts.get(_facts_key(interface))
    if not isinstance(details, Mapping):
        return []
    found: List[IPInterface] = []
    if version == 4:
        entries = [details.get("ipv4")] + list(details.get("ipv4_secondaries") or [])
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("address"):
                prefix = entry.get("prefix") or entry.get("netmask") or "32"
                found.append(ipaddress.ip_interface("%s/%s" % (entry["address"], prefix)))
    else:
        for entry in details.get("ipv6") or []:
            if not isinstance(entry, Mapping) or entry.get("scope") == "link":
                continue
            address = str(entry.get("address", "")).split("%", maxsplit=1)[0]
            if address:
                found.append(ipaddress.ip_interface("%s/%s" % (address, entry.get("prefix", 128))))
    return found


def _node_address(facts: Mapping[str, Any], interface: str, vip: IPInterface) -> Optional[IPInterface]:
    """The node's own address on the interface: same family as the VIP, and never the VIP itself
    (the holder carries the VIP as a secondary address)."""
    for address in interface_addresses(facts, interface, vip.version):
        if address.ip != vip.ip:
            return address
    return None


def _interface_for_vip(facts: Mapping[str, Any], vip: IPInterface) -> Optional[str]:
    for interface in facts.get("interfaces") or []:
        address = _node_address(facts, interface, vip)
        if address is not None and vip.ip in address.network:
            return interface
    return None


def vrrp_endpoint(host: str, host_vars: Mapping[str, Any], vip: str) -> Endpoint:
    """The endpoint of one host: `cloudcore_vrrp_interface` if set, else the interface whose subnet
    holds the VIP; its address must be in the VIP's family."""
    parsed = parse_vip(vip)
    facts = host_vars.get("ansible_facts") or {}
    if not facts.get("interfaces"):
        raise TopologyError(
            "host %s has no network facts: gather facts (network subset) on every host of the "
            "cloudcore group before computing VRRP peers" % host)
    interface = host_vars.get("cloudcore_vrrp_interface") or _interface_for_vip(facts, parsed)
    if not interface:
        raise TopologyError(
            "host %s: no interface has an address in the subnet of cloudcore_vip %s; set "
            "cloudcore_vrrp_interface for this host or fix the VIP" % (host, vip))
    if interface not in facts["interfaces"]:
        raise TopologyError(
            "host %s: cloudcore_vrrp_interface %r does not exist (interfaces: %s)"
            % (host, interface, ", ".join(sorted(facts["interfaces"]))))
    address = _node_address(facts, interface, parsed)
    if address is None:
        raise TopologyError(
            "host %s: interface %s has no IPv%d address, which VRRP for cloudcore_vip %s needs"
            % (host, interface, parsed.version, vip))
    return Endpoint(host=host, interface=interface, address=str(address.ip))


def vrrp_endpoints(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str], vip: str) -> Dict[str, Endpoint]:
    """Endpoints of all hosts, each with the addresses of the others as its unicast peers."""
    endpoints = [vrrp_endpoint(host, hostvars[host], vip) for host in hosts]
    return {
        endpoint.host: Endpoint(
            host=endpoint.host,
            interface=endpoint.interface,
            address=endpoint.address,
            peers=[other.address for other in endpoints if other.host != endpoint.host],
        )
        for endpoint in endpoints
    }


def vip_holders(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str], vip: str) -> List[str]:
    """The hosts whose gathered facts show the VIP on one of their interfaces (more than one is a
    split brain, none means no CloudCore serves the VIP)."""
    parsed = parse_vip(vip)
    holders = []
    for host in hosts:
        facts = hostvars[host].get("ansible_facts") or {}
        for interface in facts.get("interfaces") or []:
            if any(address.ip == parsed.ip for address in interface_addresses(facts, str(interface), parsed.version)):
                holders.append(host)
                break
    return holders


def rolling_order(hostvars: Mapping[str, Mapping[str, Any]], plan: Mapping[str, Mapping[str, Any]], vip: str,
                  changed: str) -> List[str]:
    """The hosts whose registered result named `changed` reports a change, in the order a rolling
    reload takes them: the hosts that do not hold the VIP first, by descending base priority (so on
    a first start the preferred node starts first and wins the election), the VIP holders last. The
    VIP then stays served while the backups reload, and moves at most once."""
    def needs(host: str) -> bool:
        result = hostvars[host].get(changed)
        return isinstance(result, Mapping) and bool(result.get("changed"))

    hosts = sorted((host for host in plan if needs(host)), key=lambda host: -int(plan[host]["priority"]))
    holding = vip_holders(hostvars, hosts, vip)
    return [host for host in hosts if host not in holding] + [host for host in hosts if host in holding]
