# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Letting VRRP (IP protocol 112) through the host firewalls of a CloudCore node.

Two nodes that cannot hear each other's adverts both become MASTER and both answer for the VIP, so
every firewall that is active on a node must accept the adverts: in multicast mode those sent to the
VRRP group, in unicast mode those sent by the peers. Firewalls that are not active are left alone.

Three firewalls are understood, and every active one is handled, because a packet must pass all of
them (nftables.service tables and firewalld's or ufw's tables filter the same packet):

- firewalld: a rich rule in the zone of the VRRP interface (else the default zone), permanent and
  at runtime.
- ufw: one ufw rule per group or peer, with the comment ``cloudcore.ha vrrp`` (ufw persists them).
- nftables (the nftables.service ruleset): an accept rule at the top of every input filter base chain.
  An accept in a base chain of our own would not help: a drop in any base chain is final. The rule
  carries a comment with a digest of its text, so a run finds its own rules and replaces stale ones.
  Tables that firewalld or iptables-nft (ufw) own are skipped. The rules are also written to a file
  that a drop-in makes nftables.service load after each start and reload, whose ``flush ruleset``
  would otherwise drop them.

This module only plans: parsing of the tools' output and the commands to run. Running them is the
caller's (the module ``vrrp_firewall``), so the logic is tested without a firewall.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

COMMENT = "cloudcore.ha vrrp"
BACKENDS = ("firewalld", "ufw", "nftables")
FIREWALL_CHOICES = ("auto", "none") + BACKENDS
# What keepalived uses when no group of the VIP's family is configured.
DEFAULT_GROUPS = {4: "224.0.0.18", 6: "ff02::12"}
# Tables that belong to another firewall manager; nft rules inserted there would fight it.
FOREIGN_TABLES = {("inet", "firewalld"), ("ip", "firewalld"), ("ip6", "firewalld")}
IPTABLES_NFT_CHAINS = {"INPUT"}  # iptables-nft's (and so ufw's) input chain in table filter
NFT_FAMILIES = {4: ("inet", "ip"), 6: ("inet", "ip6")}


class FirewallError(ValueError):
    """Input or host state that makes the firewall change impossible; the message names the option."""


@dataclass(frozen=True)
class VrrpTraffic:
    """The VRRP adverts one node must accept: on an interface, to a group or from peers."""

    interface: str
    version: int
    multicast_group: Optional[str] = None
    peers: Tuple[str, ...] = ()


def vrrp_traffic(interface: object, vip: object, mode: object, multicast_group: object = None,
                 peers: Sequence[object] = ()) -> VrrpTraffic:
    """Validated VrrpTraffic. In multicast mode a group of the other family than the VIP is
    replaced by the VRRP default of the VIP's family, as keepalived does."""
    if not isinstance(interface, str) or not interface.strip() or any(c in interface for c in ' "\'\\'):
        raise FirewallError("interface=%r: must be an interface name without spaces or quotes" % (interface,))
    try:
        version = ipaddress.ip_interface(str(vip)).version
    except ValueError:
        raise FirewallError("vip=%r: must be an IPv4 or IPv6 address with prefix, e.g. 10.10.102.242/24" % (vip,))
    if mode == "multicast":
        group_text = DEFAULT_GROUPS[version] if multicast_group in (None, "") else str(multicast_group)
        try:
            group = ipaddress.ip_address(group_text)
        except ValueError:
            raise FirewallError("multicast_group=%r: not an IP address" % (multicast_group,))
        if group.version != version:
            group = ipaddress.ip_address(DEFAULT_GROUPS[version])
        if not group.is_multicast:
            raise FirewallError("multicast_group=%r: not a multicast address" % (multicast_group,))
        return VrrpTraffic(interface=interface, version=version, multicast_group=str(group))
    if mode == "unicast":
        addresses = []
        for peer in peers:
            try:
                address = ipaddress.ip_address(str(peer))
            except ValueError:
                raise FirewallError("peers: %r is not an IP address" % (peer,))
            if address.version != version:
                raise FirewallError("peers: %s is IPv%d but the VIP %s is IPv%d" % (address, address.version, vip, version))
            addresses.append(str(address))
        if not addresses:
            raise FirewallError("peers=[]: unicast mode needs the other nodes' addresses")
        return VrrpTraffic(interface=interface, version=version, peers=tuple(sorted(set(addresses), key=ipaddress.ip_address)))
    raise FirewallError("mode=%r: must be multicast or unicast" % (mode,))


def active_backends(firewalld_state: str, ufw_status: str, nftables_state: str) -> List[str]:
    """The active firewalls, from `firewall-cmd --state`, `ufw status` and
    `systemctl is-active nftables` output (empty text when the tool is missing)."""
    active = []
    if firewalld_state.strip() == "running":
        active.append("firewalld")
    first_line = (ufw_status.strip().splitlines() or [""])[0]
    if first_line.strip() == "Status: active":
        active.append("ufw")
    if nftables_state.strip() == "active":
        active.append("nftables")
    return active


def select_backends(choice: str, active: Sequence[str]) -> List[str]:
    """Which firewalls to change: every active one (auto), none, or one named, which must be active."""
    if choice == "auto":
        return [name for name in BACKENDS if name in active]
    if choice == "none":
        return []
    if choice not in BACKENDS:
        raise FirewallError("firewall=%r: must be one of %s" % (choice, ", ".join(FIREWALL_CHOICES)))
    if choice not in active:
        raise FirewallError("firewall=%r: %s is not active on this node (active: %s); use auto or none"
                            % (choice, choice, ", ".join(active) or "none"))
    return [choice]


# --- nftables ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class NftChain:
    family: str
    table: str
    name: str

    @property
    def spec(self) -> str:
        return "%s %s %s" % (self.family, self.table, self.name)


def nft_rule_body(traffic: VrrpTraffic) -> str:
    """The match and verdict, in nft syntax; meta l4proto also finds VRRP behind IPv6 extension headers."""
    family = "ip" if traffic.version == 4 else "ip6"
    if traffic.multicast_group:
        source = "%s daddr %s" % (family, traffic.multicast_group)
    else:
        source = "%s saddr { %s }" % (family, ", ".join(traffic.peers))
    return 'iifname "%s" %s meta l4proto vrrp accept' % (traffic.interface, source)


def nft_comment(body: str) -> str:
    return "%s %s" % (COMMENT, hashlib.sha1(body.encode("utf-8")).hexdigest()[:12])


def _nft_objects(ruleset: Mapping[str, Any], kind: str) -> List[Mapping[str, Any]]:
    items = ruleset.get("nftables") if isinstance(ruleset, Mapping) else None
    if not isinstance(items, list):
        raise FirewallError("nft -j list ruleset: unexpected output (no 'nftables' list)")
    return [item[kind] for item in items if isinstance(item, Mapping) and isinstance(item.get(kind), Mapping)]


def nft_input_chains(ruleset: Mapping[str, Any], version: int) -> List[NftChain]:
    """Input filter base chains that see the VIP's family, minus tables other managers own."""
    chains = []
    for chain in _nft_objects(ruleset, "chain"):
        family, table, name = chain.get("family"), chain.get("table"), chain.get("name")
        if chain.get("hook") != "input" or chain.get("type") != "filter":
            continue
        if family not in NFT_FAMILIES[version] or (family, table) in FOREIGN_TABLES:
            continue
        if family in ("ip", "ip6") and table == "filter" and name in IPTABLES_NFT_CHAINS:
            continue
        chains.append(NftChain(str(family), str(table), str(name)))
    return chains


def nft_own_rules(ruleset: Mapping[str, Any]) -> List[Tuple[NftChain, int, str]]:
    """Rules this collection inserted (by comment): chain, handle, comment."""
    own = []
    for rule in _nft_objects(ruleset, "rule"):
        comment = rule.get("comment")
        if isinstance(comment, str) and (comment == COMMENT or comment.startswith(COMMENT + " ")):
            own.append((NftChain(str(rule.get("family")), str(rule.get("table")), str(rule.get("chain"))),
                        int(rule.get("handle", -1)), comment))
    return own


@dataclass
class NftPlan:
    body: str
    comment: str
    chains: List[NftChain] = field(default_factory=list)
    insert: List[NftChain] = field(default_factory=list)
    delete: List[Tuple[NftChain, int]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.insert or self.delete)

    def insert_line(self, chain: NftChain) -> str:
        return 'insert rule %s %s comment "%s"' % (chain.spec, self.body, self.comment)

    def script(self) -> str:
        """One `nft -f -` transaction: all of it applies, or none."""
        lines = ["delete rule %s handle %d" % (chain.spec, handle) for chain, handle in self.delete]
        lines += [self.insert_line(chain) for chain in self.insert]
        return "\n".join(lines) + "\n" if lines else ""

    def persistent_text(self) -> str:
        """The rules file nftables.service loads after its own ruleset (empty when nothing to keep)."""
        if not self.chains:
            return ""
        lines = ["# managed by cloudcore.ha: lets VRRP adverts through the input chains below.",
                 "# nftables.service loads it after /etc/nftables.conf (drop-in cloudcore-ha.conf)."]
        lines += [self.insert_line(chain) for chain in self.chains]
        return "\n".join(lines) + "\n"

    def after(self) -> List[str]:
        return ["%s: %s" % (chain.spec, self.body) for chain in self.chains]

    def before(self) -> List[str]:
        kept = [chain for chain in self.chains if chain not in self.insert]
        return ["%s: %s" % (chain.spec, self.body) for chain in kept] + [
            "%s: stale rule, handle %d" % (chain.spec, handle) for chain, handle in self.delete]


def plan_nftables(ruleset: Mapping[str, Any], traffic: VrrpTraffic, present: bool = True) -> NftPlan:
    body = nft_rule_body(traffic)
    comment = nft_comment(body)
    chains = nft_input_chains(ruleset, traffic.version) if present else []
    plan = NftPlan(body=body, comment=comment, chains=chains)
    kept = set()
    for chain, handle, rule_comment in nft_own_rules(ruleset):
        if present and rule_comment == comment and chain in chains and chain not in kept:
            kept.add(chain)
        else:
            plan.delete.append((chain, handle))
    plan.insert = [chain for chain in chains if chain not in kept]
    return plan


def nft_dropin_text(nft: str, rules_path: str) -> str:
    # The leading '-': a rules file that no longer fits the ruleset must not stop the firewall.
    return ("# managed by cloudcore.ha: VRRP rules survive nftables.service starts and reloads\n"
            "[Service]\n"
            "ExecStartPost=-%s -f %s\n"
            "ExecReload=-%s -f %s\n" % (nft, rules_path, nft, rules_path))


# --- ufw --------------------------------------------------------------------------------------

def ufw_rules(traffic: VrrpTraffic) -> List[str]:
    """Rules in the canonical form `ufw show added` prints them, so presence is a string match."""
    if traffic.multicast_group:
        targets = ["to %s" % traffic.multicast_group]
    else:
        targets = ["from %s" % peer for peer in traffic.peers]
    return ["allow in on %s %s proto vrrp comment '%s'" % (traffic.interface, target, COMMENT) for target in targets]


def ufw_added_rules(show_added: str) -> List[str]:
    """The user rules listed by `ufw show added`, without the leading `ufw `."""
    return [line.strip()[4:] for line in show_added.splitlines() if line.strip().startswith("ufw ")]


@dataclass
class UfwPlan:
    rules: List[str]
    add: List[str] = field(default_factory=list)
    delete: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.add or self.delete)

    def after(self) -> List[str]:
        return list(self.rules)

    def before(self) -> List[str]:
        return [rule for rule in self.rules if rule not in self.add] + list(self.delete)

    def commands(self) -> List[List[str]]:
        return ([["ufw", "delete"] + shlex.split(rule) for rule in self.delete]
                + [["ufw"] + shlex.split(rule) for rule in self.add])


def plan_ufw(show_added: str, traffic: VrrpTraffic, present: bool = True) -> UfwPlan:
    wanted = ufw_rules(traffic) if present else []
    existing = ufw_added_rules(show_added)
    ours = [rule for rule in existing if rule.endswith("comment '%s'" % COMMENT)]
    return UfwPlan(rules=wanted,
                   add=[rule for rule in wanted if rule not in existing],
                   delete=[rule for rule in ours if rule not in wanted])


# --- firewalld --------------------------------------------------------------------------------

def firewalld_rich_rules(traffic: VrrpTraffic) -> List[str]:
    """Rich rules in the form firewalld lists them (rich rules carry no comment)."""
    family = "ipv4" if traffic.version == 4 else "ipv6"
    if traffic.multicast_group:
        matches = ['destination address="%s"' % traffic.multicast_group]
    else:
        matches = ['source address="%s"' % peer for peer in traffic.peers]
    return ['rule family="%s" %s protocol value="vrrp" accept' % (family, match) for match in matches]


@dataclass
class FirewalldPlan:
    zone: str
    rules: List[str]
    add_permanent: List[str] = field(default_factory=list)
    add_runtime: List[str] = field(default_factory=list)
    remove_permanent: List[str] = field(default_factory=list)
    remove_runtime: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.add_permanent or self.add_runtime or self.remove_permanent or self.remove_runtime)

    def after(self) -> List[str]:
        return ["zone %s: %s" % (self.zone, rule) for rule in self.rules]

    def before(self) -> List[str]:
        kept = [rule for rule in self.rules if rule not in self.add_permanent]
        return ["zone %s: %s" % (self.zone, rule) for rule in kept + self.remove_permanent]

    def commands(self) -> List[List[str]]:
        zone = "--zone=%s" % self.zone
        out = []
        out += [["firewall-cmd", "--permanent", zone, "--remove-rich-rule=" + r] for r in self.remove_permanent]
        out += [["firewall-cmd", zone, "--remove-rich-rule=" + r] for r in self.remove_runtime]
        out += [["firewall-cmd", "--permanent", zone, "--add-rich-rule=" + r] for r in self.add_permanent]
        out += [["firewall-cmd", zone, "--add-rich-rule=" + r] for r in self.add_runtime]
        return out


def plan_firewalld(zone: str, permanent: str, runtime: str, traffic: VrrpTraffic, present: bool = True) -> FirewalldPlan:
    """From `--list-rich-rules` output, permanent and runtime. Without a comment to recognise our
    rules by, removal (present=False) takes exactly the rules this traffic would add."""
    wanted = firewalld_rich_rules(traffic)
    have_permanent = [line.strip() for line in permanent.splitlines() if line.strip()]
    have_runtime = [line.strip() for line in runtime.splitlines() if line.strip()]
    plan = FirewalldPlan(zone=zone, rules=wanted if present else [])
    if present:
        plan.add_permanent = [r for r in wanted if r not in have_permanent]
        plan.add_runtime = [r for r in wanted if r not in have_runtime]
    else:
        plan.remove_permanent = [r for r in wanted if r in have_permanent]
        plan.remove_runtime = [r for r in wanted if r in have_runtime]
    return plan


def firewalld_zone(interface_zone: Tuple[int, str], default_zone: str) -> str:
    """The zone of the interface (`--get-zone-of-interface`, rc and output), else the default zone."""
    rc, out = interface_zone
    zone = out.strip() if rc == 0 else ""
    return zone or default_zone.strip() or "public"
