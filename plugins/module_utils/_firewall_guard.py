# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The balancer's guard: CloudCore's internal ports and haproxy's peers port, closed to everyone but
the other CloudCore nodes, whether or not a host firewall is active.

In balanced mode CloudCore listens on its internal ports on every address, so without a guard an edge
(or anyone) could reach one CloudCore past the balancer. The guard is an nft table of our own,
``table inet cloudcore_ha_guard``, with one input filter base chain before the usual filter priority
(-10), policy accept, and three rules for the guarded TCP ports: accept from lo (a node's haproxy
reaches its own CloudCore at its own address), accept from the peers, drop the rest. A drop in any base
chain is final, so the accept rules that let the peers through the active firewalls
(_firewall.py) are still needed; the guard's accepts only keep the guard out of their way.

The table is replaced as a whole, atomically: one ``nft -f`` transaction that creates it if missing,
deletes it and adds it anew. The live table is recognised by the digest in its rules' comments (of the
chain and rules' text), so a second run changes nothing. It is kept across boots and ruleset reloads
by a file with that transaction, a oneshot unit that loads it (before haproxy and kubelet), and a
drop-in of nftables.service that loads it again after the unit's own ``flush ruleset`` (start, reload,
and after its stop).

Plain Python without Ansible imports: the texts, and the plan from ``nft -j list ruleset``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, List, Mapping

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    GUARD_FAMILY,
    GUARD_TABLE,
    BalancerTraffic,
    FirewallError,
)

GUARD_COMMENT = "cloudcore.ha guard"  # shares no prefix with the accept rules' comments
GUARD_CHAIN = "input"
GUARD_PRIORITY = -10  # before the usual filter priority (0), firewalld's and iptables-nft's chains
GUARD_SPEC = "%s %s" % (GUARD_FAMILY, GUARD_TABLE)
# What the guard must be in place before: the balancer, and the kubelet that starts CloudCore's pod.
GUARD_BEFORE = ("haproxy.service", "kubelet.service")


def guard_head() -> str:
    return "type filter hook input priority %d; policy accept;" % GUARD_PRIORITY


def guard_rules(traffic: BalancerTraffic) -> List[str]:
    """The chain's rules in nft syntax, without their comments."""
    ports = "{ %s }" % ", ".join(str(port) for port in traffic.ports)
    return ['tcp dport %s iifname "lo" accept' % ports,
            "tcp dport %s %s saddr { %s } accept" % (ports, traffic.family, ", ".join(traffic.peers)),
            "tcp dport %s drop" % ports]


def guard_comment(traffic: BalancerTraffic) -> str:
    """The comment of every guard rule: a digest of the chain's whole text."""
    text = "\n".join([GUARD_SPEC, GUARD_CHAIN, guard_head()] + guard_rules(traffic))
    return "%s %s" % (GUARD_COMMENT, hashlib.sha1(text.encode("utf-8")).hexdigest()[:12])


def removal_script() -> str:
    """Deletes the table whether it exists or not (the empty declaration makes it exist first)."""
    return "table %s {}\ndelete table %s\n" % (GUARD_SPEC, GUARD_SPEC)


def guard_script(traffic: BalancerTraffic) -> str:
    """One transaction that replaces the table: it applies as a whole or not at all, and loading it
    twice gives the same table."""
    comment = guard_comment(traffic)
    lines = [removal_script().rstrip("\n"),
             "table %s {" % GUARD_SPEC,
             "\tchain %s {" % GUARD_CHAIN,
             "\t\t%s" % guard_head()]
    lines += ['\t\t%s comment "%s"' % (rule, comment) for rule in guard_rules(traffic)]
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def guard_file_text(traffic: BalancerTraffic) -> str:
    return ("# managed by cloudcore.ha: CloudCore's internal ports and haproxy's peers port for the other\n"
            "# CloudCore nodes (and lo) only. Loaded by cloudcore-ha-guard.service and after every start, reload\n"
            "# and stop of nftables.service (whose flush ruleset would drop it).\n" + guard_script(traffic))


@dataclass
class LiveGuard:
    exists: bool
    comments: List[str] = field(default_factory=list)
    chains: List[Mapping[str, Any]] = field(default_factory=list)

    def matches(self, comment: str, count: int) -> bool:
        """The table holds exactly our chain and our rules of this digest, nothing else."""
        if not self.exists or len(self.chains) != 1:
            return False
        chain = self.chains[0]
        head = (chain.get("name"), chain.get("type"), chain.get("hook"), chain.get("prio"), chain.get("policy"))
        return head == (GUARD_CHAIN, "filter", "input", GUARD_PRIORITY, "accept") and self.comments == [comment] * count


def live_guard(ruleset: Mapping[str, Any]) -> LiveGuard:
    """The guard table as `nft -j list ruleset` shows it (nft 1.0.6 lists no table comments, so the
    digest is in the rules' comments)."""
    items = ruleset.get("nftables") if isinstance(ruleset, Mapping) else None
    if not isinstance(items, list):
        raise FirewallError("nft -j list ruleset: unexpected output (no 'nftables' list)")
    live = LiveGuard(exists=False)
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for kind in ("table", "chain", "rule"):
            body = item.get(kind)
            if not isinstance(body, Mapping):
                continue
            where = (body.get("family"), body.get("name") if kind == "table" else body.get("table"))
            if where != (GUARD_FAMILY, GUARD_TABLE):
                continue
            if kind == "table":
                live.exists = True
            elif kind == "chain":
                live.chains.append(body)
            else:
                live.comments.append(str(body.get("comment", "")))
    return live


@dataclass
class GuardPlan:
    present: bool
    rules: List[str]
    comment: str
    script_text: str
    live: LiveGuard

    @property
    def current(self) -> bool:
        return self.live.matches(self.comment, len(self.rules))

    @property
    def changed(self) -> bool:
        return not self.current if self.present else self.live.exists

    def script(self) -> str:
        """The `nft -f -` transaction (empty when nothing changes)."""
        if not self.changed:
            return ""
        return self.script_text if self.present else removal_script()

    def file_text(self, traffic: BalancerTraffic) -> str:
        return guard_file_text(traffic) if self.present else ""

    def after(self) -> List[str]:
        return ["%s %s: %s" % (GUARD_SPEC, GUARD_CHAIN, rule) for rule in self.rules] if self.present else []

    def before(self) -> List[str]:
        if self.current:
            return self.after()
        if self.live.exists:
            digests = sorted(set(self.live.comments)) or ["no rules"]
            return ["%s: a different guard (%s)" % (GUARD_SPEC, ", ".join(digests))]
        return []


def plan_guard(ruleset: Mapping[str, Any], traffic: BalancerTraffic, present: bool = True) -> GuardPlan:
    rules = guard_rules(traffic) if present else []
    return GuardPlan(present=present, rules=rules, comment=guard_comment(traffic), script_text=guard_script(traffic),
                     live=live_guard(ruleset))


def guard_unit_text(nft: str, path: str) -> str:
    """The oneshot unit that loads the guard at boot; stopping it deletes the table."""
    return ("# managed by cloudcore.ha: the balancer's guard (CloudCore's internal ports for the CloudCore nodes only)\n"
            "[Unit]\n"
            "Description=cloudcore.ha guard: CloudCore's internal ports for the other CloudCore nodes only\n"
            "After=nftables.service\n"
            "Before=%s\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            "RemainAfterExit=yes\n"
            "ExecStart=%s -f %s\n"
            "ExecStop=-%s delete table %s\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n" % (" ".join(GUARD_BEFORE), nft, path, nft, GUARD_SPEC))


def guard_dropin_text(nft: str, path: str) -> str:
    """nftables.service's drop-in: the guard again after the unit's `flush ruleset` (start, reload, stop).
    The leading '-': the guard must not stop the firewall."""
    return ("# managed by cloudcore.ha: the balancer's guard survives nftables.service's flush ruleset\n"
            "[Service]\n"
            "ExecStartPost=-%s -f %s\n"
            "ExecReload=-%s -f %s\n"
            "ExecStopPost=-%s -f %s\n" % (nft, path, nft, path, nft, path))
