# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Preflight checks of the inventory: pure functions, each returning ALL problems it finds.

A problem names the variable, the offending value and the rule (with the fix), so that a
preflight run can list everything wrong at once instead of failing on the first.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp import (
    AUTH_PASS_MAX,
    FAILOVER_MODES,
    MAX_NODES,
    MIN_NODES,
)

VRRP_MODES = ("multicast", "unicast")

Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


@dataclass(frozen=True)
class Problem:
    variable: str
    value: object
    rule: str

    @property
    def msg(self) -> str:
        return "%s=%r: %s" % (self.variable, self.value, self.rule)

    def as_dict(self) -> Dict[str, object]:
        return {"variable": self.variable, "value": self.value, "rule": self.rule, "msg": self.msg}


def parse_vip(vip: object, variable: str = "cloudcore_vip") -> Tuple[Optional[Interface], List[Problem]]:
    """The VIP as an interface (address + prefix), or the problems with it."""
    text = vip.strip() if isinstance(vip, str) else None
    if not text:
        return None, [Problem(variable, vip, "is required: the VIP with prefix length, e.g. 10.10.102.242/24 or fd00::100/64")]
    if "/" not in text:
        return None, [Problem(variable, vip, "needs a prefix length (the subnet the VIP lives in), e.g. %s/24" % text)]
    try:
        return ipaddress.ip_interface(text), []
    except ValueError:
        return None, [Problem(variable, vip, "is not an IPv4 or IPv6 address with prefix length, e.g. 10.10.102.242/24")]


def _interfaces(values: Sequence[object], variable: str) -> Tuple[List[Interface], List[Problem]]:
    parsed, problems = [], []
    for value in values or []:
        try:
            parsed.append(ipaddress.ip_interface(str(value).strip()))
        except ValueError:
            problems.append(Problem(variable, value, "is not an IP address (with optional prefix length)"))
    return parsed, problems


def vip_problems(vip: object, interface_addresses: Sequence[object] = (), node_addresses: Sequence[object] = (),
                 variable: str = "cloudcore_vip", interface: Optional[str] = None) -> List[Problem]:
    """VIP syntax, subnet membership, no collision with nodes, not network/broadcast, same family."""
    address, problems = parse_vip(vip, variable)
    if address is None:
        return problems
    ip = address.ip
    network = address.network
    if network.prefixlen < network.max_prefixlen - 1:
        if ip == network.network_address:
            problems.append(Problem(variable, vip, "is the network address of %s; pick a host address" % network))
        if ip.version == 4 and ip == network.broadcast_address:
            problems.append(Problem(variable, vip, "is the broadcast address of %s; pick a host address" % network))
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_link_local:
        problems.append(Problem(variable, vip, "must be a unicast address on the node network (not loopback,"
                                " multicast, unspecified or link-local)"))

    iface_addrs, bad = _interfaces(interface_addresses, "interface addresses")
    problems.extend(bad)
    where = " of interface %s" % interface if interface else ""
    same_family = [a for a in iface_addrs if a.version == ip.version]
    if iface_addrs:
        if not same_family:
            problems.append(Problem(variable, vip, "is IPv%d but the addresses%s are IPv%d only (%s); use a VIP of"
                                    " the interface's family" % (ip.version, where, iface_addrs[0].version,
                                                                 ", ".join(str(a) for a in iface_addrs))))
        elif not any(ip in a.network for a in same_family):
            problems.append(Problem(variable, vip, "is outside the subnets%s (%s): the VIP must be in the subnet the"
                                    " interface is attached to, or nobody on the segment can reach it"
                                    % (where, ", ".join(str(a.network) for a in same_family))))

    nodes, bad = _interfaces(node_addresses, "node addresses")
    problems.extend(bad)
    if any(n.ip == ip for n in nodes):
        problems.append(Problem(variable, vip, "is a node's own address; the VIP must be an unused address"))
    families = sorted({n.version for n in nodes})
    if nodes and ip.version not in families:
        problems.append(Problem(variable, vip, "is IPv%d but the node addresses are IPv%s; VRRP runs in one family"
                                % (ip.version, "/".join(str(f) for f in families))))
    return problems


def vrid_problems(vrid: object, variable: str = "cloudcore_vrrp_router_id") -> List[Problem]:
    if isinstance(vrid, bool) or not isinstance(vrid, int):
        if isinstance(vrid, str) and vrid.strip().isdigit():
            vrid = int(vrid)
        else:
            return [Problem(variable, vrid, "must be an integer 1..255, unique on the L2 segment")]
    if not 1 <= vrid <= 255:
        return [Problem(variable, vrid, "must be 1..255 (VRRP's 8-bit router id), unique on the L2 segment")]
    return []


def auth_pass_problems(auth_pass: object, vip: object = None, variable: str = "cloudcore_vrrp_auth_pass") -> List[Problem]:
    if auth_pass is None or auth_pass == "":
        return []
    if not isinstance(auth_pass, str):
        return [Problem(variable, "<hidden>", "must be a string of at most %d characters" % AUTH_PASS_MAX)]
    problems = []
    if len(auth_pass) > AUTH_PASS_MAX:
        problems.append(Problem(variable, "<%d characters>" % len(auth_pass),
                                "must be at most %d characters: keepalived uses only the first %d" % (AUTH_PASS_MAX, AUTH_PASS_MAX)))
    if re.search(r'[\s"{}!#]', auth_pass):
        problems.append(Problem(variable, "<hidden>", "must not contain spaces, quotes, braces, '!' or '#'"))
    address, _unused = parse_vip(vip) if vip is not None else (None, [])
    if address is not None and address.version == 6:
        problems.append(Problem(variable, "<hidden>", "cannot be used with an IPv6 VIP: that needs VRRPv3, which has no"
                                " authentication; remove it"))
    return problems


def node_problems(nodes: object, variable: str = "groups['cloudcore']") -> List[Problem]:
    if not isinstance(nodes, (list, tuple)):
        return [Problem(variable, nodes, "must be a list of host names")]
    problems = []
    if not MIN_NODES <= len(nodes) <= MAX_NODES:
        problems.append(Problem(variable, list(nodes), "has %d node(s); VRRP high availability needs %d..%d"
                                % (len(nodes), MIN_NODES, MAX_NODES)))
    duplicates = sorted({str(n) for n in nodes if list(nodes).count(n) > 1})
    if duplicates:
        problems.append(Problem(variable, list(nodes), "lists %s more than once; each node needs its own name"
                                % ", ".join(duplicates)))
    return problems


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def label_problems(labels: object, variable: str = "cloudcore_node_label") -> List[Problem]:
    """Kubernetes label keys ([prefix/]name) and values."""
    if not isinstance(labels, dict) or not labels:
        return [Problem(variable, labels, "must be a non-empty mapping of label key to value,"
                        " e.g. {kubeedge.io/cloudcore: 'true'}")]
    problems = []
    for key, value in labels.items():
        where = "%s[%r]" % (variable, key)
        if not isinstance(key, str) or not key:
            problems.append(Problem(where, key, "label key must be a non-empty string"))
            continue
        prefix, _unused, name = key.rpartition("/")
        if "/" in prefix:
            problems.append(Problem(where, key, "label key may contain at most one '/'"))
        elif prefix or key.startswith("/"):
            if len(prefix) > 253 or not all(_DNS_LABEL.match(part) for part in prefix.split(".")):
                problems.append(Problem(where, key, "label key prefix must be a lowercase DNS subdomain"
                                        " (<= 253 characters), e.g. kubeedge.io"))
        if not name or len(name) > 63 or not _LABEL_NAME.match(name):
            problems.append(Problem(where, key, "label name must be 1..63 characters of [A-Za-z0-9_.-],"
                                    " starting and ending alphanumeric"))
        if isinstance(value, bool):
            problems.append(Problem(where, value, "label value must be a string; quote it, e.g. 'true'"))
            continue
        text = str(value) if isinstance(value, (str, int)) else None
        if text is None or len(text) > 63 or not _LABEL_NAME.match(text):
            problems.append(Problem(where, value, "label value must be at most 63 characters of [A-Za-z0-9_.-],"
                                    " starting and ending alphanumeric (or empty)"))
    return problems


def choice_problems(value: object, choices: Sequence[str], variable: str) -> List[Problem]:
    if value in choices:
        return []
    return [Problem(variable, value, "is unknown; use one of: %s" % ", ".join(choices))]


def preflight_problems(inputs: Dict[str, object]) -> List[Problem]:
    """All problems of the inventory, from a dict of the inputs (missing keys are not checked)."""
    problems = []  # type: List[Problem]
    if "cloudcore_vip" in inputs:
        problems += vip_problems(inputs["cloudcore_vip"], inputs.get("interface_addresses") or (),
                                 inputs.get("node_addresses") or (), interface=inputs.get("interface"))
    if "cloudcore_vrrp_router_id" in inputs:
        problems += vrid_problems(inputs["cloudcore_vrrp_router_id"])
    if "cloudcore_vrrp_auth_pass" in inputs:
        problems += auth_pass_problems(inputs["cloudcore_vrrp_auth_pass"], inputs.get("cloudcore_vip"))
    if "nodes" in inputs:
        problems += node_problems(inputs["nodes"])
    if "cloudcore_node_label" in inputs:
        problems += label_problems(inputs["cloudcore_node_label"])
    if "cloudcore_failover" in inputs:
        problems += choice_problems(inputs["cloudcore_failover"], FAILOVER_MODES, "cloudcore_failover")
    if "cloudcore_vrrp_mode" in inputs:
        problems += choice_problems(inputs["cloudcore_vrrp_mode"], VRRP_MODES, "cloudcore_vrrp_mode")
    return problems
