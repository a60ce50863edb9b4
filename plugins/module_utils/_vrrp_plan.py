# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""VRRP priority plans: each node's priority, initial state, nopreempt and check weight.

Two failover modes (man keepalived.conf; RFC 3768/5798):
- fault (default): every node BACKUP with nopreempt, distinct priorities, check weight 0. A failing
  check puts the node in FAULT, the VIP moves once and stays where it landed when the node heals.
- weighted: the KubeEdge guide's style (MASTER/BACKUP, a weighted check, preempt), with the smallest
  weight that provably fails over; pinned priorities that cannot fail over are refused with the fix.

The failover proof of a plan lives in _failover.py. Plain Python without Ansible imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    FAILOVER_MODES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    InputError,
    parse_choice,
    parse_hosts,
    parse_int,
)

# keepalived rejects larger vrrp_script weights ("must be in [-253, 253]").
MAX_TRACK_WEIGHT = 253

# fault mode: distinct priorities make the first election deterministic (no "higher IP wins"),
# and a gap of 10 leaves room to pin an extra node between two planned ones without renumbering.
# High, because after a FAULT the old master's priority-0 advert makes a backup wait its skew time,
# (256 - priority) / 256 x advert_int, before it takes over: 0.06 s at 240 instead of 0.26 s at 190.
FAULT_TOP_PRIORITY = 250
FAULT_PRIORITY_STEP = 10

# weighted mode keeps the seed's numbers: 100, 99, ... with the smallest weight that fails over.
WEIGHTED_TOP_PRIORITY = 100


@dataclass(frozen=True)
class NodePlan:
    priority: int
    state: str
    nopreempt: bool
    track_weight: int

    def as_dict(self) -> Dict[str, object]:
        return {
            "priority": self.priority,
            "state": self.state,
            "nopreempt": self.nopreempt,
            "track_weight": self.track_weight,
        }


def parse_plan_hosts(hosts: object, variable: str = "hosts") -> Tuple[List[str], Optional[Dict[str, int]]]:
    """(names in preference order, pinned priorities or None) from a list (the preference order) or a
    mapping host -> pinned base priority (ordered by priority)."""
    if isinstance(hosts, dict):
        pinned = {}  # type: Dict[str, int]
        for name, priority in hosts.items():
            pinned[str(name)] = parse_int(priority, "%s[%s]" % (variable, name), PRIORITY_MIN, PRIORITY_MAX,
                                          "a base priority; 255 is the address owner, which a health check"
                                          " cannot move")
        names = parse_hosts(list(pinned), variable)
        return sorted(names, key=lambda n: -pinned[n]), pinned
    return parse_hosts(hosts, variable), None


def _distinct_pinned(pinned: Dict[str, int], variable: str) -> Dict[str, int]:
    """Pinned priorities, refused when two nodes share one: keepalived would then decide by the
    higher IP address, not by the plan."""
    by_value = {}  # type: Dict[int, List[str]]
    for name, priority in pinned.items():
        by_value.setdefault(priority, []).append(name)
    clashes = ["%s=%d" % ("/".join(sorted(group)), value)
               for value, group in sorted(by_value.items(), reverse=True) if len(group) > 1]
    if clashes:
        raise InputError(variable, pinned, "pinned priorities must be distinct (%s): equal priorities are decided"
                                           " by the higher IP address, not by the plan; give each node its own"
                                           " priority" % ", ".join(clashes))
    return dict(pinned)


def _fault_plan(names: List[str], pinned: Optional[Dict[str, int]], variable: str) -> Dict[str, NodePlan]:
    if pinned is None:
        priorities = {n: FAULT_TOP_PRIORITY - FAULT_PRIORITY_STEP * i for i, n in enumerate(names)}
    else:
        priorities = _distinct_pinned(pinned, variable)
    # weight 0: a failing check puts the node in FAULT, the VIP moves once; nopreempt keeps it
    # where it landed when the failed node heals (no failback outage). nopreempt needs BACKUP.
    return {n: NodePlan(priorities[n], "BACKUP", True, 0) for n in names}


def _check_weight(weight: int, gap: int, p_max: int, p_min: int) -> None:
    if weight == 0:
        raise InputError("keepalived_check_weight", weight,
                         "weight 0 puts a failing node in FAULT, which is failover mode 'fault': set"
                         " cloudcore_failover: fault, or use a non-zero weight")
    if abs(weight) > MAX_TRACK_WEIGHT:
        raise InputError("keepalived_check_weight", weight, "weight %d is outside keepalived's range -%d..%d"
                         % (weight, MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT))
    if abs(weight) <= gap:
        raise InputError("keepalived_check_weight", weight,
                         "weight %d must exceed the priority gap %d (%d \u2212 %d): use weight \u2265 %d or"
                         " priorities within %d of each other" % (weight, gap, p_max, p_min, gap + 1, abs(weight) - 1))
    if weight > 0 and p_max + weight > PRIORITY_MAX:
        raise InputError("keepalived_check_weight", weight,
                         "priority %d + weight %d = %d exceeds %d, keepalived would clamp it and the failover"
                         " arithmetic breaks: lower the priorities so that %d + weight \u2264 %d"
                         % (p_max, weight, p_max + weight, PRIORITY_MAX, p_max, PRIORITY_MAX))
    if weight < 0 and p_min + weight < PRIORITY_MIN:
        raise InputError("keepalived_check_weight", weight,
                         "priority %d - %d = %d is below %d, keepalived would clamp it and the failover"
                         " arithmetic breaks: raise the priorities so that %d - %d \u2265 %d"
                         % (p_min, -weight, p_min + weight, PRIORITY_MIN, p_min, -weight, PRIORITY_MIN))


def _weighted_plan(names: List[str], pinned: Optional[Dict[str, int]], weight: object,
                   variable: str) -> Dict[str, NodePlan]:
    if pinned is None:
        priorities = {n: WEIGHTED_TOP_PRIORITY - i for i, n in enumerate(names)}
    else:
        priorities = _distinct_pinned(pinned, variable)
    p_max, p_min = max(priorities.values()), min(priorities.values())
    gap = p_max - p_min
    chosen = gap + 1 if weight is None else parse_int(weight, "keepalived_check_weight")
    _check_weight(chosen, gap, p_max, p_min)
    preferred = names[0]
    return {n: NodePlan(priorities[n], "MASTER" if n == preferred else "BACKUP", False, chosen) for n in names}


def plan_priorities(hosts: object, failover: object = "fault", weight: object = None,
                    variable: str = "hosts") -> Dict[str, NodePlan]:
    """The VRRP plan of the nodes, in the input order; raises InputError for input that breaks a rule.

    hosts: a list of host names in order of preference, or a mapping host -> pinned base priority.
    weight: weighted mode only; None = the smallest weight that fails over.
    """
    mode = parse_choice(failover, FAILOVER_MODES, "cloudcore_failover")
    names, pinned = parse_plan_hosts(hosts, variable)
    if mode == "fault":
        if weight is not None:
            raise InputError("keepalived_check_weight", weight,
                             "failover mode 'fault' uses check weight 0 (a failing node goes to FAULT); a weight"
                             " only applies to cloudcore_failover: weighted")
        plan = _fault_plan(names, pinned, variable)
    else:
        plan = _weighted_plan(names, pinned, weight, variable)
    order = [str(n) for n in hosts] if isinstance(hosts, (list, tuple, dict)) else names
    return {name: plan[name] for name in order}


def vrrp_priorities(hosts: object, failover: object = "fault", weight: object = None) -> Dict[str, Dict[str, object]]:
    """Plain-dict form of plan_priorities (what the filter returns)."""
    return {name: node.as_dict() for name, node in plan_priorities(hosts, failover, weight).items()}
