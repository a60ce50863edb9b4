# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The failover proof of a VRRP plan: for each node's failure, who holds the VIP next, and on heal.

The model follows keepalived 2.2.x (man keepalived.conf, RFC 3768/5798):
- effective priority with a positive track weight = base + weight while the check is OK;
  with a negative weight = base - |weight| while the check fails; clamped to 1..254;
- a check with weight 0 that fails puts the instance in FAULT: it releases the VIP and is
  not eligible;
- equal priorities are decided by the higher primary IP address, which a plan cannot know:
  the model reports such a tie as a defect;
- nopreempt: a backup does not take the VIP from a lower-priority master that is alive.

Plain Python without Ansible imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import PRIORITY_MAX, PRIORITY_MIN, InputError, parse_int
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import NodePlan


FAULT = None  # effective priority of a node in FAULT: not eligible


def _coerce_plan(plan: object) -> Dict[str, NodePlan]:
    if not isinstance(plan, dict) or not plan:
        raise InputError("plan", plan, "expected the mapping returned by cloudcore.ha.vrrp_priorities")
    result = {}
    for name, node in plan.items():
        if isinstance(node, NodePlan):
            result[str(name)] = node
            continue
        if not isinstance(node, dict):
            raise InputError("plan[%s]" % name, node, "expected a mapping with priority, state, nopreempt, track_weight")
        if "priority" not in node:
            raise InputError("plan[%s]" % name, node,
                             "expected integer priority and track_weight (as returned by cloudcore.ha.vrrp_priorities)")
        result[str(name)] = NodePlan(parse_int(node["priority"], "plan[%s].priority" % name),
                                     str(node.get("state", "BACKUP")), bool(node.get("nopreempt", False)),
                                     parse_int(node.get("track_weight", 0), "plan[%s].track_weight" % name))
    return result


def effective_priority(node: NodePlan, check_failed: bool) -> Optional[int]:
    """keepalived's effective priority, or FAULT (None) when a weight-0 check fails."""
    if node.priority >= 255:
        return node.priority  # the address owner ignores trackers
    if node.track_weight == 0:
        return FAULT if check_failed else node.priority
    if node.track_weight > 0:
        value = node.priority + (0 if check_failed else node.track_weight)
    else:
        value = node.priority + (node.track_weight if check_failed else 0)
    return max(PRIORITY_MIN, min(PRIORITY_MAX, value))


def _preferred_holder(plan: Dict[str, NodePlan]) -> str:
    masters = [n for n, node in plan.items() if node.state == "MASTER"]
    if masters:
        return masters[0]
    return max(plan, key=lambda n: plan[n].priority)


@dataclass
class _Outcome:
    holder: str
    tie: bool = False


def _elect(candidates: Dict[str, int]) -> _Outcome:
    """The highest priority wins; a shared top priority is decided by IP (a tie)."""
    top = max(candidates.values())
    winners = [n for n, p in candidates.items() if p == top]
    return _Outcome(winners[0], tie=len(winners) > 1)


def _after_change(plan: Dict[str, NodePlan], holder: str, effective: Dict[str, Optional[int]]) -> _Outcome:
    """Who holds the VIP after effective priorities changed, starting from holder."""
    eligible = {n: p for n, p in effective.items() if p is not FAULT}
    if not eligible:
        return _Outcome("")
    if effective[holder] is FAULT:
        # the holder released the VIP (priority 0 advert): the backups elect among themselves
        return _elect(eligible)
    holder_priority = effective[holder]
    # a backup with preempt takes over when its priority is higher; an equal one only if its
    # IP is higher, which the plan cannot know
    challengers = {n: p for n, p in eligible.items()
                   if n != holder and not plan[n].nopreempt and p >= holder_priority}
    if not challengers:
        return _Outcome(holder)
    outcome = _elect(challengers)
    if effective[outcome.holder] == holder_priority:
        return _Outcome(outcome.holder, tie=True)
    return outcome


@dataclass
class FailoverRow:
    failed_node: str
    holder_before: str
    holder_after: str
    effective_after: Dict[str, Optional[int]]
    holder_after_heal: str
    defects: List[str] = field(default_factory=list)

    @property
    def failover_ok(self) -> bool:
        return not self.defects

    def effective_text(self) -> str:
        return " ".join("%s=%s" % (n, "FAULT" if p is FAULT else p) for n, p in self.effective_after.items())

    def heal_text(self) -> str:
        if self.holder_after_heal == self.holder_after:
            if self.holder_before == self.failed_node and self.holder_after != self.failed_node:
                return "VIP stays on %s (nopreempt: no second outage)" % self.holder_after
            return "no change"
        return "VIP moves back to %s (preempt: second outage)" % self.holder_after_heal

    def as_dict(self) -> Dict[str, object]:
        return {
            "failed_node": self.failed_node,
            "holder_before": self.holder_before,
            "holder_after": self.holder_after,
            "effective_priorities_after": dict(self.effective_after),
            "holder_after_heal": self.holder_after_heal,
            "moves_back_on_heal": self.holder_after_heal != self.holder_after,
            "on_heal": self.heal_text(),
            "failover_ok": self.failover_ok,
            "defects": list(self.defects),
        }


def failover_proof(plan: object) -> List[FailoverRow]:
    """For each node's check failure: who holds the VIP next, and what happens when it heals."""
    nodes = _coerce_plan(plan)
    healthy = {n: effective_priority(node, False) for n, node in nodes.items()}
    start = _preferred_holder(nodes)
    rows = []
    for failed in nodes:
        effective = dict(healthy)
        effective[failed] = effective_priority(nodes[failed], True)
        after = _after_change(nodes, start, effective)
        defects = []
        if not after.holder:
            defects.append("no eligible node: the VIP is down")
        elif after.holder == failed:
            defects.append("VIP stays on the failed node %s" % failed)
        if after.tie:
            defects.append("tie: decided by IP")
        failed_priority = effective[failed]
        if failed_priority is not FAULT:
            twins = [n for n, p in effective.items() if n != failed and p == failed_priority]
            if twins:
                # harmless while a higher node is healthy, but the next election between them is
                # decided by IP address
                defects.append("tie: failed %s=%d equals healthy %s (decided by IP)"
                               % (failed, failed_priority, ", ".join(twins)))
        healed = _after_change(nodes, after.holder, healthy) if after.holder else _elect(
            {n: p for n, p in healthy.items() if p is not FAULT})
        if healed.tie:
            defects.append("tie on heal: decided by IP")
        rows.append(FailoverRow(failed, start, after.holder, effective, healed.holder, defects))
    return rows


def vrrp_failover_proof(plan: object) -> List[Dict[str, object]]:
    return [row.as_dict() for row in failover_proof(plan)]


def failover_proof_text(plan: object) -> str:
    """The proof as a fixed-width text table, one row per failed node."""
    header = ("failed node", "holder before", "holder after",
              "effective priorities after failure", "on heal", "defects")
    lines = [header]
    for row in failover_proof(plan):
        lines.append((row.failed_node, row.holder_before, row.holder_after or "(none)",
                      row.effective_text(), row.heal_text(), "; ".join(row.defects) or "none"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines) + "\n"
