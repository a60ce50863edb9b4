# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each CloudCore node speaks VRRP (its interface, its own address there, its peers), who holds
the VIP, and the order of a rolling reload.

Plain Python over Ansible's gathered network facts (the `ansible_facts` of each host). The VIP decides
the address family: an IPv6 VIP needs IPv6 addresses on the nodes (VRRPv3), an IPv4 VIP IPv4 ones.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import IPInterface, InputError, Vip, parse_vip


@dataclass(frozen=True)
class Endpoint:
    """One node's VRRP endpoint."""

    host: str
    interface: str
    address: str
    peers: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"interface": self.interface, "address": self.address, "peers": list(self.peers)}


def _facts_key(interface: str) -> str:
    # Ansible stores per-interface facts under the name with '-' and ':' replaced by '_'.
    return interface.replace("-", "_").replace(":", "_")


def interface_addresses(facts: Mapping[str, Any], interface: str, version: int) -> List[IPInterface]:
    """All addresses of one family on an interface, primary first, from gathered facts."""
    details = facts.get(_facts_key(interface))
    if not isinstance(details, Mapping):
        return []
    found = []  # type: List[IPInterface]
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


def _on(host: str, rule: str) -> str:
    return "on host %s: %s" % (host, rule)


def vrrp_endpoint(host: str, facts: Mapping[str, Any], vip: Vip, interface: Optional[str] = None) -> Endpoint:
    """The endpoint of one host: `interface` (cloudcore_vrrp_interface) if set, else the interface whose
    subnet holds the VIP. The interface must hold an address of the VIP's family in the VIP's subnet
    (nobody on the segment could reach the VIP otherwise)."""
    interfaces = [str(name) for name in (facts.get("interfaces") or [])]
    if not interfaces:
        raise InputError("ansible_facts", host, _on(host, "no network facts were gathered (setup, gather_subset"
                                                          " network) before planning"))
    if interface is not None and interface not in interfaces:
        raise InputError("cloudcore_vrrp_interface", interface,
                         _on(host, "no such interface (interfaces: %s)" % ", ".join(sorted(interfaces))))
    candidates = [interface] if interface is not None else interfaces
    for name in candidates:
        own = [a for a in interface_addresses(facts, name, vip.version) if a.ip != vip.ip]
        inside = [a for a in own if vip.ip in a.network]
        if inside:
            return Endpoint(host=host, interface=name, address=str(inside[0].ip))
        if interface is not None:
            if not own:
                others = interface_addresses(facts, name, 6 if vip.version == 4 else 4)
                rule = ("interface %s has no IPv%d address; the VIP is IPv%d%s" % (
                    name, vip.version, vip.version,
                    " but the interface is IPv%d only: use a VIP of its family" % others[0].version if others else ""))
            else:
                rule = ("the VIP is outside the subnets of interface %s (%s): the VIP must be in the subnet the"
                        " interface is attached to, or nobody on the segment can reach it"
                        % (name, ", ".join(sorted({str(a.network) for a in own}))))
            raise InputError("cloudcore_vip", vip.cidr, _on(host, rule))
    raise InputError("cloudcore_vip", vip.cidr, _on(host, "no interface has an address in the VIP's subnet (%s); set"
                                                          " cloudcore_vrrp_interface or fix the VIP" % vip.network))


def vip_collisions(vip: Vip, facts_by_host: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """The hosts whose own address is the VIP. Only IPv4 can tell: a holder carries an IPv4 VIP as a
    secondary address, while an IPv6 VIP on its holder looks like any other address in the facts."""
    if vip.version != 4:
        return []
    return [host for host, facts in facts_by_host.items()
            if any(address.ip == vip.ip for interface in facts.get("interfaces") or []
                   for address in interface_addresses(facts, str(interface), 4)[:1])]


def with_peers(endpoints: Sequence[Endpoint]) -> Dict[str, Endpoint]:
    """Each endpoint with the addresses of the others as its unicast peers."""
    return {
        endpoint.host: Endpoint(endpoint.host, endpoint.interface, endpoint.address,
                                [other.address for other in endpoints if other.host != endpoint.host])
        for endpoint in endpoints
    }


def vip_holders(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str], vip: object) -> List[str]:
    """The hosts whose gathered facts show the VIP on one of their interfaces (more than one is a
    split brain, none means no CloudCore serves the VIP). No VIP (None): nobody holds it."""
    if vip is None:
        return []
    parsed = parse_vip(vip)
    holders = []
    for host in hosts:
        facts = hostvars[host].get("ansible_facts") or {}
        for interface in facts.get("interfaces") or []:
            if any(address.ip == parsed.ip for address in interface_addresses(facts, str(interface), parsed.version)):
                holders.append(host)
                break
    return holders


def rolling_order(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str], vip: object,
                  changed: Optional[str] = None, unit: Optional[str] = None) -> List[str]:
    """The hosts whose registered result named `changed` reports a change (every host when None), in
    the order a rolling reload or restart takes them: the hosts that do not hold the VIP first, in
    preference order (so on a first start the preferred node starts first and wins the election), the
    VIP holders last. The VIP then stays served while the backups reload, and moves at most once.

    hosts: the CloudCore hosts in preference order (the site plan's `hosts`, highest priority first).
    unit: the registered keepalived_unit result whose `active` says keepalived runs on a host. Hosts
    where it does not run (a node added to a running site) start after every running one has reloaded:
    in unicast mode the running nodes must know the new peer, or the new node hears no advert and
    takes the VIP."""
    def needs(host: str) -> bool:
        if changed is None:
            return True
        result = hostvars[host].get(changed)
        return isinstance(result, Mapping) and bool(result.get("changed"))

    def starting(host: str) -> bool:
        result = hostvars[host].get(unit) if unit is not None else None
        return isinstance(result, Mapping) and result.get("active") is False

    pending = [host for host in hosts if needs(host)]
    running = [host for host in pending if not starting(host)]
    if len(running) == 0:
        running, new = pending, []  # a first start: every node starts in preference order
    else:
        new = [host for host in pending if host not in running]
    holding = vip_holders(hostvars, running, vip)
    return [host for host in running if host not in holding] + [host for host in running if host in holding] + new
