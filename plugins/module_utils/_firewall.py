# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Letting a CloudCore node's own traffic through its host firewalls: VRRP, and the balancer's ports.

A *traffic* is what one node must accept, and it carries its own rule bodies for each firewall and its
own comment, by which a run finds the rules it added (and only those):

- VRRP (IP protocol 112, comment ``cloudcore.ha vrrp``): two nodes that cannot hear each other's
  adverts both become MASTER and both answer for the VIP, so every active firewall must accept the
  adverts: in multicast mode those sent to the VRRP group, in unicast mode those sent by the peers.
- The balancer (balanced mode, comment ``cloudcore.ha balancer``): CloudCore's internal ports and
  haproxy's peers port, from the other CloudCore nodes. (The guard table that closes these ports to
  everyone else is _firewall_guard.py's.)

Firewalls that are not active are left alone.

Three firewalls are understood, and every active one is handled, because a packet must pass all of
them (nftables.service tables and firewalld's or ufw's tables filter the same packet):

- firewalld: a rich rule in the zone of the VRRP interface (else the default zone), permanent and
  at runtime.
- ufw: one ufw rule per group or peer, with the traffic's comment (ufw persists them).
- nftables (the nftables.service ruleset): an accept rule at the top of every input filter base chain.
  An accept in a base chain of our own would not help: a drop in any base chain is final. The rule
  carries a comment with a digest of its text, so a run finds its own rules and replaces stale ones.
  Tables that firewalld or iptables-nft (ufw) own are skipped. The rules are also written to a file
  that a drop-in makes nftables.service load after each start and reload, whose ``flush ruleset``
  would otherwise drop them.

A VRRP plan never touches the balancer's rules and the reverse: each recognises its own rules by its
own comment (the comments share no prefix), and firewalld's rich rules, which carry no comment, are
only ever removed exactly as this traffic would add them.

This module only plans: parsing of the tools' output and the commands to run. Running them is
_firewall_host.py's (for the modules ``vrrp_firewall`` and ``balancer_firewall``), so the logic is
tested without a firewall.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    VRRP_MODES,
    InputError,
    parse_choice,
    parse_interface,
    parse_ip,
    parse_multicast_group,
    parse_port,
    parse_vip,
)

COMMENT = VRRP_COMMENT = "cloudcore.ha vrrp"
BALANCER_COMMENT = "cloudcore.ha balancer"
BACKENDS = ("firewalld", "ufw", "nftables")
FIREWALL_CHOICES = ("auto", "none") + BACKENDS
# The balancer's guard (_firewall_guard.py): a table of our own, replaced as a whole, never a target.
GUARD_FAMILY, GUARD_TABLE = "inet", "cloudcore_ha_guard"
# ufw and iptables' multiport match take at most 15 ports (ufw: "Bad port" past 14 commas).
MAX_PORTS = 15
# Tables that belong to another firewall manager (nft rules inserted there would fight it), or to us.
FOREIGN_TABLES = {("inet", "firewalld"), ("ip", "firewalld"), ("ip6", "firewalld"), (GUARD_FAMILY, GUARD_TABLE)}
IPTABLES_NFT_CHAINS = {"INPUT"}  # iptables-nft's (and so ufw's) input chain in table filter
NFT_FAMILIES = {4: ("inet", "ip"), 6: ("inet", "ip6")}


class FirewallError(ValueError):
    """Input or host state that makes the firewall change impossible; the message names the option."""


class Traffic(object):
    """What one node must accept, on an interface, in one address family (interface, version): its
    rule body for each firewall and the comment that marks its rules."""

    interface: str
    version: int
    comment: str  # marks its rules (ufw, nft); no two traffics' comments share a prefix
    what: str  # for the rules file's header: what the rules let through
    dropin: str  # for the nftables.service drop-in's header
    yourself: str  # what an operator does instead, with firewall=none

    def nft_body(self) -> str:
        raise NotImplementedError

    def ufw_rules(self) -> List[str]:
        raise NotImplementedError

    def firewalld_rich_rules(self) -> List[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class VrrpTraffic(Traffic):
    """The VRRP adverts one node must accept: on an interface, to a group or from peers."""

    interface: str
    version: int
    multicast_group: Optional[str] = None
    peers: Tuple[str, ...] = ()
    comment = VRRP_COMMENT
    what = "lets VRRP adverts through the input chains below"
    dropin = "VRRP rules survive nftables.service starts and reloads"
    yourself = "allow VRRP yourself"

    def nft_body(self) -> str:
        """The match and verdict, in nft syntax; meta l4proto also finds VRRP behind IPv6 extension headers."""
        family = "ip" if self.version == 4 else "ip6"
        if self.multicast_group:
            source = "%s daddr %s" % (family, self.multicast_group)
        else:
            source = "%s saddr { %s }" % (family, ", ".join(self.peers))
        return 'iifname "%s" %s meta l4proto vrrp accept' % (self.interface, source)

    def ufw_rules(self) -> List[str]:
        """Rules in the canonical form `ufw show added` prints them, so presence is a string match."""
        if self.multicast_group:
            targets = ["to %s" % self.multicast_group]
        else:
            targets = ["from %s" % peer for peer in self.peers]
        return ["allow in on %s %s proto vrrp comment '%s'" % (self.interface, target, self.comment)
                for target in targets]

    def firewalld_rich_rules(self) -> List[str]:
        """Rich rules in the form firewalld lists them (rich rules carry no comment)."""
        family = "ipv4" if self.version == 4 else "ipv6"
        if self.multicast_group:
            matches = ['destination address="%s"' % self.multicast_group]
        else:
            matches = ['source address="%s"' % peer for peer in self.peers]
        return ['rule family="%s" %s protocol value="vrrp" accept' % (family, match) for match in matches]


@dataclass(frozen=True)
class BalancerTraffic(Traffic):
    """Balanced mode: the other CloudCore nodes reach this node's internal ports (CloudCore's internal
    ones and haproxy's peers port) over TCP, on the VRRP interface, in one address family."""

    interface: str
    version: int
    peers: Tuple[str, ...]
    ports: Tuple[int, ...]
    comment = BALANCER_COMMENT
    what = "lets the other CloudCore nodes reach the balancer's internal ports through the input chains below"
    dropin = "the balancer's rules survive nftables.service starts and reloads"
    yourself = "open the ports to the other CloudCore nodes yourself"

    @property
    def family(self) -> str:
        return "ip" if self.version == 4 else "ip6"

    def nft_body(self) -> str:
        return 'iifname "%s" %s saddr { %s } tcp dport { %s } accept' % (
            self.interface, self.family, ", ".join(self.peers), ", ".join(str(port) for port in self.ports))

    def ufw_rules(self) -> List[str]:
        """One rule per peer, in ufw's full syntax as `ufw show added` prints it (parser.py get_command:
        the port list in the order given, `to any` for the destination)."""
        ports = ",".join(str(port) for port in self.ports)
        return ["allow in on %s from %s to any port %s proto tcp comment '%s'" % (self.interface, peer, ports, self.comment)
                for peer in self.peers]

    def firewalld_rich_rules(self) -> List[str]:
        """One rich rule per peer and port (a rich rule takes one port element)."""
        family = "ipv4" if self.version == 4 else "ipv6"
        return ['rule family="%s" source address="%s" port port="%d" protocol="tcp" accept' % (family, peer, port)
                for peer in self.peers for port in self.ports]


def vrrp_traffic(interface: object, vip: object, mode: object, multicast_group: object = None,
                 peers: Sequence[object] = ()) -> VrrpTraffic:
    """Validated VrrpTraffic (InputError names the bad option). In multicast mode a group of the
    other family than the VIP is replaced by the VRRP default of the VIP's family, as keepalived does."""
    name = parse_interface(interface, "interface")
    parsed = parse_vip(vip, "vip")
    if parse_choice(mode, VRRP_MODES, "mode") == "multicast":
        group = parse_multicast_group(multicast_group, parsed.version, "multicast_group")
        return VrrpTraffic(interface=name, version=parsed.version, multicast_group=group)
    addresses = sorted({parse_ip(peer, "peers", parsed.version) for peer in peers})
    if not addresses:
        raise InputError("peers", list(peers), "unicast mode needs the other nodes' addresses")
    return VrrpTraffic(interface=name, version=parsed.version, peers=tuple(str(a) for a in addresses))


def balancer_traffic(interface: object, peers: Sequence[object], ports: Sequence[object]) -> BalancerTraffic:
    """Validated BalancerTraffic (InputError names the bad option): peers of one family, 1..15 ports
    (sorted and deduplicated, so the rules have one canonical form)."""
    name = parse_interface(interface, "interface")
    if not isinstance(peers, (list, tuple)) or not peers:
        raise InputError("peers", peers, "needs the other CloudCore nodes' addresses on the interface (at least one)")
    addresses = sorted({parse_ip(peer, "peers") for peer in peers}, key=lambda a: (a.version, a))
    for address in addresses:
        if address.is_multicast or address.is_unspecified or address.is_loopback:
            raise InputError("peers", str(address), "must be another CloudCore node's unicast address (the local"
                                                    " haproxy reaches its own CloudCore over lo, which the guard allows)")
    versions = sorted({address.version for address in addresses})
    if len(versions) > 1:
        raise InputError("peers", list(peers), "must all be IPv4 or all IPv6 (the other nodes' addresses on the"
                                               " interface, one address family like the VIP)")
    if not isinstance(ports, (list, tuple)) or not ports:
        raise InputError("ports", ports, "needs the TCP ports to open to the peers (1..%d)" % MAX_PORTS)
    numbers = sorted({parse_port(port, "ports") for port in ports})
    if len(numbers) > MAX_PORTS:
        raise InputError("ports", list(ports), "must be at most %d distinct ports (ufw's and iptables' multiport"
                                               " limit); %d given" % (MAX_PORTS, len(numbers)))
    return BalancerTraffic(interface=name, version=versions[0], peers=tuple(str(a) for a in addresses),
                           ports=tuple(numbers))


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
    parse_choice(choice, FIREWALL_CHOICES, "firewall")
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


def nft_rule_body(traffic: Traffic) -> str:
    """The traffic's match and verdict, in nft syntax."""
    return traffic.nft_body()


def nft_comment(body: str, comment: str = COMMENT) -> str:
    """The comment of a rule: the traffic's comment and a digest of the rule's text."""
    return "%s %s" % (comment, hashlib.sha1(body.encode("utf-8")).hexdigest()[:12])


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


def nft_own_rules(ruleset: Mapping[str, Any], traffic: Optional[Traffic] = None) -> List[Tuple[NftChain, int, str]]:
    """Rules this traffic inserted (by its comment; VRRP's by default): chain, handle, comment. The guard
    table is replaced as a whole (_firewall_guard.py), never rule by rule."""
    mark = traffic.comment if traffic is not None else COMMENT
    own = []
    for rule in _nft_objects(ruleset, "rule"):
        comment = rule.get("comment")
        if (rule.get("family"), rule.get("table")) == (GUARD_FAMILY, GUARD_TABLE):
            continue
        # the traffic's comment alone or followed by a digest: "cloudcore.ha vrrp" never matches
        # "cloudcore.ha balancer ..." nor the reverse
        if isinstance(comment, str) and (comment == mark or comment.startswith(mark + " ")):
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
    what: str = VrrpTraffic.what
    dropin_name: str = "cloudcore-ha.conf"

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
        lines = ["# managed by cloudcore.ha: %s." % self.what,
                 "# nftables.service loads it after /etc/nftables.conf (drop-in %s)." % self.dropin_name]
        lines += [self.insert_line(chain) for chain in self.chains]
        return "\n".join(lines) + "\n"

    def after(self) -> List[str]:
        return ["%s: %s" % (chain.spec, self.body) for chain in self.chains]

    def before(self) -> List[str]:
        kept = [chain for chain in self.chains if chain not in self.insert]
        return ["%s: %s" % (chain.spec, self.body) for chain in kept] + [
            "%s: stale rule, handle %d" % (chain.spec, handle) for chain, handle in self.delete]


def plan_nftables(ruleset: Mapping[str, Any], traffic: Traffic, present: bool = True,
                  dropin_name: str = "cloudcore-ha.conf") -> NftPlan:
    """Insert the traffic's rule where it is missing, delete its stale and duplicate rules (and, absent,
    all of them); rules of other traffic are never touched."""
    body = nft_rule_body(traffic)
    comment = nft_comment(body, traffic.comment)
    chains = nft_input_chains(ruleset, traffic.version) if present else []
    plan = NftPlan(body=body, comment=comment, chains=chains, what=traffic.what, dropin_name=dropin_name)
    kept = set()
    for chain, handle, rule_comment in nft_own_rules(ruleset, traffic):
        if present and rule_comment == comment and chain in chains and chain not in kept:
            kept.add(chain)
        else:
            plan.delete.append((chain, handle))
    plan.insert = [chain for chain in chains if chain not in kept]
    return plan


def nft_dropin_text(nft: str, rules_path: str, what: str = VrrpTraffic.dropin) -> str:
    """A drop-in of nftables.service of its own per traffic: systemd appends the ExecStartPost and
    ExecReload lines of every drop-in, so each file adds its rules after the unit's `flush ruleset`."""
    # The leading '-': a rules file that no longer fits the ruleset must not stop the firewall.
    return ("# managed by cloudcore.ha: %s\n"
            "[Service]\n"
            "ExecStartPost=-%s -f %s\n"
            "ExecReload=-%s -f %s\n" % (what, nft, rules_path, nft, rules_path))


# --- ufw --------------------------------------------------------------------------------------

def ufw_rules(traffic: Traffic) -> List[str]:
    """Rules in the canonical form `ufw show added` prints them, so presence is a string match."""
    return traffic.ufw_rules()


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


def plan_ufw(show_added: str, traffic: Traffic, present: bool = True) -> UfwPlan:
    """Add the traffic's missing rules, delete its rules that are no longer wanted (by its comment)."""
    wanted = ufw_rules(traffic) if present else []
    existing = ufw_added_rules(show_added)
    ours = [rule for rule in existing if rule.endswith("comment '%s'" % traffic.comment)]
    return UfwPlan(rules=wanted,
                   add=[rule for rule in wanted if rule not in existing],
                   delete=[rule for rule in ours if rule not in wanted])


# --- firewalld --------------------------------------------------------------------------------

def firewalld_rich_rules(traffic: Traffic) -> List[str]:
    """Rich rules in the form firewalld lists them (rich rules carry no comment)."""
    return traffic.firewalld_rich_rules()


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


def plan_firewalld(zone: str, permanent: str, runtime: str, traffic: Traffic, present: bool = True) -> FirewalldPlan:
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
