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

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import FIREWALL_CHOICES
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import interface_addresses, vip_holders
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
                                    % (where, ", ".join(sorted({str(a.network) for a in same_family})))))

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


# --------------------------------------------------------------------------------------------
# The whole site: the inputs above plus what preflight observed on the nodes and in the cluster.

@dataclass(frozen=True)
class NodeObservation:
    """What preflight saw on one CloudCore host (all optional: unknown means not checked)."""

    host: str
    node_name: str
    facts: Dict[str, object]
    vrrp_interface: Optional[str] = None
    vip_ping_rc: Optional[int] = None  # 0: something answered a ping to the VIP from this host
    check_status: Optional[int] = None  # HTTP status of cloudcore_check_url on this host; -1 no answer


@dataclass(frozen=True)
class ClusterObservation:
    reachable: bool
    error: str = ""
    node_names: Tuple[str, ...] = ()
    cloudcore_deployed: bool = False


def _on(host: str, rule: str) -> str:
    return "on host %s: %s" % (host, rule)


def _node_network_problems(settings: Dict[str, object], node: NodeObservation,
                           all_addresses: Sequence[str]) -> List[Problem]:
    """The VIP against one host's VRRP interface: it exists, holds the VIP's subnet and an address
    of the VIP's family (for unicast adverts too)."""
    vip, _vip_problems = parse_vip(settings.get("cloudcore_vip"))
    if vip is None:
        return []  # reported once by the general checks
    interfaces = [str(name) for name in (node.facts.get("interfaces") or [])]
    if not interfaces:
        return [Problem("ansible_facts", node.host, _on(node.host, "no network facts were gathered"))]
    if node.vrrp_interface and node.vrrp_interface not in interfaces:
        return [Problem("cloudcore_vrrp_interface", node.vrrp_interface, _on(
            node.host, "no such interface (interfaces: %s)" % ", ".join(sorted(interfaces))))]
    candidates = [node.vrrp_interface] if node.vrrp_interface else interfaces
    for interface in candidates:
        addresses = [a for a in interface_addresses(node.facts, interface, vip.version) if a.ip != vip.ip]
        if node.vrrp_interface or any(vip.ip in a.network for a in addresses):
            problems = [Problem(p.variable, p.value, _on(node.host, p.rule)) for p in vip_problems(
                settings.get("cloudcore_vip"), [str(a) for a in addresses], all_addresses, interface=interface)]
            if not addresses and settings.get("cloudcore_vrrp_mode") == "unicast":
                problems.append(Problem("cloudcore_vrrp_mode", "unicast", _on(
                    node.host, "interface %s has no IPv%d address to send unicast adverts from"
                    % (interface, vip.version))))
            return problems
    return [Problem("cloudcore_vip", settings.get("cloudcore_vip"), _on(
        node.host, "no interface has an address in the VIP's subnet (%s); set cloudcore_vrrp_interface or fix"
        " the VIP" % vip.network))]


def _node_addresses(nodes: Sequence[NodeObservation], vip: Interface) -> List[str]:
    """The nodes' own addresses of the VIP's family. For IPv4 only primary addresses count: a holder
    carries the VIP as a secondary address. An IPv6 VIP cannot be told apart from a node's own
    address in the facts, so it is left out (a conflict then shows as a VIP answering elsewhere)."""
    found = []
    for node in nodes:
        for interface in node.facts.get("interfaces") or []:
            addresses = interface_addresses(node.facts, str(interface), vip.version)
            if vip.version == 4:
                addresses = addresses[:1]  # interface_addresses lists the primary first
            found += [str(a.ip) for a in addresses if vip.version == 4 or a.ip != vip.ip]
    return found


def site_problems(settings: Dict[str, object], nodes: Sequence[NodeObservation],
                  cluster: Optional[ClusterObservation] = None,
                  priority_problem: Optional[str] = None,
                  allow_unhealthy_cloudcore: bool = False) -> List[Problem]:
    """Every problem of a site before anything changes: the inventory's values, each host's network,
    the VIP's owner on the segment, CloudCore's health and the cluster."""
    hosts = [node.host for node in nodes]
    inputs = {key: settings[key] for key in (
        "cloudcore_vip", "cloudcore_vrrp_router_id", "cloudcore_vrrp_auth_pass", "cloudcore_node_label",
        "cloudcore_failover", "cloudcore_vrrp_mode") if key in settings}
    inputs["nodes"] = hosts
    problems = preflight_problems(inputs)
    if "keepalived_firewall" in settings:
        problems += choice_problems(settings["keepalived_firewall"], FIREWALL_CHOICES, "keepalived_firewall")
    if priority_problem:
        problems.append(Problem("keepalived_priorities", settings.get("keepalived_priorities"), priority_problem))

    names = [node.node_name for node in nodes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem("cloudcore_node_name", name, "is used by hosts %s; every host needs its own node"
                                % ", ".join(n.host for n in nodes if n.node_name == name)))

    vip, _vip_problems = parse_vip(settings.get("cloudcore_vip"))
    if vip is not None:
        all_addresses = _node_addresses(nodes, vip)
        reported = {(p.variable, repr(p.value), p.rule) for p in problems}
        for node in nodes:
            for problem in _node_network_problems(settings, node, all_addresses):
                # A rule that does not depend on the host (e.g. "is the network address") is reported once.
                general_rule = problem.rule.split(": ", 1)[-1]
                if (problem.variable, repr(problem.value), general_rule) not in reported:
                    problems.append(problem)
        answered = [node.host for node in nodes if node.vip_ping_rc == 0]
        if answered and not vip_holders({n.host: {"ansible_facts": n.facts} for n in nodes}, hosts, str(vip)):
            problems.append(Problem("cloudcore_vip", settings.get("cloudcore_vip"), (
                "answers pings from %s, but no host of the cloudcore group holds it: another machine uses this"
                " address; pick a free one" % ", ".join(answered))))

    statuses = [node.check_status for node in nodes if node.check_status is not None]
    deployed = cluster is None or cluster.cloudcore_deployed
    if statuses and all(status != 200 for status in statuses) and deployed and not allow_unhealthy_cloudcore:
        problems.append(Problem("cloudcore_check_url", settings.get("cloudcore_check_url"), (
            "fails on every node (HTTP %s): with the check failing everywhere no node would hold the VIP in"
            " fault mode; fix CloudCore first, or set preflight_allow_unhealthy_cloudcore=true"
            % ", ".join("%s=%s" % (n.host, "no answer" if n.check_status == -1 else n.check_status)
                        for n in nodes if n.check_status is not None))))

    if cluster is not None:
        if not cluster.reachable:
            problems.append(Problem("cloudcore_kubeconfig", settings.get("cloudcore_kubeconfig"), (
                "the cluster cannot be reached with it (context %s): %s"
                % (settings.get("cloudcore_kube_context") or "current", cluster.error or "unknown error"))))
        else:
            for node in nodes:
                if node.node_name not in cluster.node_names:
                    problems.append(Problem("cloudcore_node_name", node.node_name, _on(
                        node.host, "no such node in the cluster (nodes: %s)" % ", ".join(sorted(cluster.node_names)))))
    return problems
