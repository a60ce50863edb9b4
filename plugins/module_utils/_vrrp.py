# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""VRRP priority planning, a keepalived failover model, and the keepalived.conf model.

Plain Python without Ansible imports: the filters in plugins/filter/vrrp.py and the module
keepalived_config are thin adapters over this file, and tests/unit exercises it directly.

The failover model follows keepalived 2.2.x (man keepalived.conf, RFC 3768/5798):
- effective priority with a positive track weight = base + weight while the check is OK;
  with a negative weight = base - |weight| while the check fails; clamped to 1..254;
- a check with weight 0 that fails puts the instance in FAULT: it releases the VIP and is
  not eligible;
- equal priorities are decided by the higher primary IP address, which a plan cannot know:
  the model reports such a tie as a defect;
- nopreempt: a backup does not take the VIP from a lower-priority master that is alive.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

FAILOVER_MODES = ("fault", "weighted")

# 255 means "address owner": keepalived ignores tracker weights for it, so a plan with a health
# check never uses it; the effective priority is clamped to 1..254.
PRIORITY_MIN = 1
PRIORITY_MAX = 254

# VRRP has no member limit of its own. 16 keeps every plan in range with room to spare
# (fault mode: 250 down to 100 in steps of 10; weighted mode: 100 + weight 16 = 116 at most),
# and a CloudCore deployment with more replicas than that is not a VRRP problem any more:
# every node sends an advertisement per advert_int to every other (unicast: n*(n-1) packets).
MIN_NODES = 2
MAX_NODES = 16

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


class VrrpPlanError(ValueError):
    """A priority plan input breaks a rule; names the variable, the bad value and the rule."""

    def __init__(self, variable: str, value: object, rule: str):
        self.variable = variable
        self.value = value
        self.rule = rule
        super().__init__("%s: %s" % (variable, rule))


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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_hosts(hosts: object) -> Tuple[List[str], Optional[Dict[str, int]]]:
    """Return (names in preference order, pinned priorities or None)."""
    if isinstance(hosts, dict):
        names = [str(name) for name in hosts]
        pinned = {}  # type: Dict[str, int]
        for name, priority in hosts.items():
            if not _is_int(priority):
                raise VrrpPlanError(
                    "hosts[%s]" % name, priority,
                    "priority %r of %s is not an integer: pin priorities as whole numbers %d..%d"
                    % (priority, name, PRIORITY_MIN, PRIORITY_MAX))
            if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
                raise VrrpPlanError(
                    "hosts[%s]" % name, priority,
                    "priority %d of %s is outside %d..%d (255 is the address owner, which a health"
                    " check cannot move): pin a priority within %d..%d"
                    % (priority, name, PRIORITY_MIN, PRIORITY_MAX, PRIORITY_MIN, PRIORITY_MAX))
            pinned[str(name)] = priority
        # the preferred holder of a pinned plan is the node with the highest priority
        names.sort(key=lambda n: -pinned[n])
        return names, pinned
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, (list, tuple)):
        raise VrrpPlanError(
            "hosts", hosts,
            "expected a list of host names (first = preferred VIP holder) or a mapping"
            " host -> priority, got %s" % type(hosts).__name__)
    names = []
    for name in hosts:
        if not isinstance(name, str) or not name:
            raise VrrpPlanError("hosts", hosts, "host name %r is not a non-empty string" % (name,))
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise VrrpPlanError(
            "hosts", hosts,
            "duplicate host names %s: every node needs its own priority; list each host once"
            % ", ".join(duplicates))
    return names, None


def _check_node_count(names: Sequence[str], hosts: object) -> None:
    if not MIN_NODES <= len(names) <= MAX_NODES:
        raise VrrpPlanError(
            "hosts", hosts,
            "%d node(s): VRRP high availability needs %d to %d nodes; put %d..%d hosts in the"
            " cloudcore group" % (len(names), MIN_NODES, MAX_NODES, MIN_NODES, MAX_NODES))


def _check_failover(failover: object) -> str:
    if failover not in FAILOVER_MODES:
        raise VrrpPlanError(
            "cloudcore_failover", failover,
            "unknown failover mode %r: use one of %s" % (failover, ", ".join(FAILOVER_MODES)))
    return str(failover)


def _distinct_pinned(pinned: Dict[str, int], hosts: object) -> Dict[str, int]:
    """Pinned priorities, refused when two nodes share one: keepalived would then decide by the
    higher IP address, not by the plan."""
    by_value = {}  # type: Dict[int, List[str]]
    for name, priority in pinned.items():
        by_value.setdefault(priority, []).append(name)
    clashes = ["%s=%d" % ("/".join(sorted(group)), value)
               for value, group in sorted(by_value.items(), reverse=True) if len(group) > 1]
    if clashes:
        raise VrrpPlanError(
            "hosts", hosts,
            "pinned priorities must be distinct (%s): equal priorities are decided by the"
            " higher IP address, not by the plan; give each node its own priority" % ", ".join(clashes))
    return dict(pinned)


def _fault_plan(names: List[str], pinned: Optional[Dict[str, int]], hosts: object) -> Dict[str, NodePlan]:
    if pinned is None:
        priorities = {n: FAULT_TOP_PRIORITY - FAULT_PRIORITY_STEP * i for i, n in enumerate(names)}
    else:
        priorities = _distinct_pinned(pinned, hosts)
    # weight 0: a failing check puts the node in FAULT, the VIP moves once; nopreempt keeps it
    # where it landed when the failed node heals (no failback outage). nopreempt needs BACKUP.
    return {n: NodePlan(priorities[n], "BACKUP", True, 0) for n in names}


def _weighted_plan(names: List[str], pinned: Optional[Dict[str, int]], weight: object,
                   hosts: object) -> Dict[str, NodePlan]:
    if pinned is None:
        priorities = {n: WEIGHTED_TOP_PRIORITY - i for i, n in enumerate(names)}
    else:
        priorities = _distinct_pinned(pinned, hosts)
    p_max = max(priorities.values())
    p_min = min(priorities.values())
    gap = p_max - p_min
    if weight is None:
        weight = gap + 1
    if not _is_int(weight):
        raise VrrpPlanError("weight", weight, "weight %r is not an integer" % (weight,))
    if weight == 0:
        raise VrrpPlanError(
            "weight", weight,
            "weight 0 puts a failing node in FAULT, which is failover mode 'fault':"
            " set cloudcore_failover: fault, or use a non-zero weight")
    if abs(weight) > MAX_TRACK_WEIGHT:
        raise VrrpPlanError(
            "weight", weight,
            "weight %d is outside keepalived's range -%d..%d" % (weight, MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT))
    if abs(weight) <= gap:
        raise VrrpPlanError(
            "weight", weight,
            "weight %d must exceed the priority gap %d (%d \u2212 %d): use weight \u2265 %d or"
            " priorities within %d of each other"
            % (weight, gap, p_max, p_min, gap + 1, abs(weight) - 1))
    if weight > 0 and p_max + weight > PRIORITY_MAX:
        raise VrrpPlanError(
            "weight", weight,
            "priority %d + weight %d = %d exceeds %d, keepalived would clamp it and the"
            " failover arithmetic breaks: lower the priorities so that %d + weight \u2264 %d"
            % (p_max, weight, p_max + weight, PRIORITY_MAX, p_max, PRIORITY_MAX))
    if weight < 0 and p_min + weight < PRIORITY_MIN:
        raise VrrpPlanError(
            "weight", weight,
            "priority %d - %d = %d is below %d, keepalived would clamp it and the failover"
            " arithmetic breaks: raise the priorities so that %d - %d \u2265 %d"
            % (p_min, -weight, p_min + weight, PRIORITY_MIN, p_min, -weight, PRIORITY_MIN))
    preferred = names[0]
    return {n: NodePlan(priorities[n], "MASTER" if n == preferred else "BACKUP", False, weight)
            for n in names}


def plan_priorities(hosts: object, failover: str = "fault", weight: object = None) -> Dict[str, NodePlan]:
    """Plan VRRP priorities for the nodes; raises VrrpPlanError for input that breaks a rule.

    hosts: list of host names in order of preference, or a mapping host -> pinned priority.
    The returned mapping keeps the input order of the hosts.
    """
    mode = _check_failover(failover)
    names, pinned = _parse_hosts(hosts)
    _check_node_count(names, hosts)
    if mode == "fault":
        if weight is not None:
            raise VrrpPlanError(
                "weight", weight,
                "failover mode 'fault' uses check weight 0 (a failing node goes to FAULT);"
                " a weight only applies to cloudcore_failover: weighted")
        plan = _fault_plan(names, pinned, hosts)
    else:
        plan = _weighted_plan(names, pinned, weight, hosts)
    order = list(hosts) if isinstance(hosts, (list, tuple, dict)) else names
    return {str(n): plan[str(n)] for n in order}


def vrrp_priorities(hosts: object, failover: str = "fault", weight: object = None) -> Dict[str, Dict[str, object]]:
    """Plain-dict form of plan_priorities (what the filter returns)."""
    return {name: node.as_dict() for name, node in plan_priorities(hosts, failover, weight).items()}


# --------------------------------------------------------------------------------------------
# failover model

FAULT = None  # effective priority of a node in FAULT: not eligible


def _coerce_plan(plan: object) -> Dict[str, NodePlan]:
    if not isinstance(plan, dict) or not plan:
        raise VrrpPlanError("plan", plan, "expected the mapping returned by cloudcore.ha.vrrp_priorities")
    result = {}
    for name, node in plan.items():
        if isinstance(node, NodePlan):
            result[str(name)] = node
            continue
        if not isinstance(node, dict):
            raise VrrpPlanError("plan[%s]" % name, node, "expected a mapping with priority, state, nopreempt, track_weight")
        try:
            priority = node["priority"]
            weight = node.get("track_weight", 0)
            if not _is_int(priority) or not _is_int(weight):
                raise TypeError
            result[str(name)] = NodePlan(priority, str(node.get("state", "BACKUP")),
                                         bool(node.get("nopreempt", False)), weight)
        except (KeyError, TypeError):
            raise VrrpPlanError(
                "plan[%s]" % name, node,
                "expected integer priority and track_weight (as returned by cloudcore.ha.vrrp_priorities)")
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


# --------------------------------------------------------------------------------------------
# keepalived.conf model

HEADER = "# managed by cloudcore.ha; do not edit (changes are overwritten on the next run)"
AUTH_PASS_MAX = 8  # keepalived uses only the first 8 characters (and warns); we refuse instead
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_UNQUOTED_RE = re.compile(r'^[^\s"{}!#]+$')


class KeepalivedConfigError(ValueError):
    """One or more config options break a rule; .problems lists (option, value, rule)."""

    def __init__(self, problems: List[Tuple[str, object, str]]):
        self.problems = problems
        super().__init__("; ".join("%s=%r: %s" % (option, value, rule) for option, value, rule in problems))


@dataclass
class KeepalivedConfig:
    router_id: str
    check_script: str
    interface: str
    virtual_router_id: int
    priority: int
    vip: str
    script_user: str = "keepalived_script"
    script_name: str = "chk_cloudcore"
    check_interval: float = 1
    check_timeout: float = 1
    check_fall: int = 2
    check_rise: int = 2
    check_weight: int = 0
    instance_name: str = "CLOUDCORE"
    state: str = "BACKUP"
    advert_int: float = 1
    vrrp_version: Optional[int] = None  # None: decided from the VIP family and advert_int
    nopreempt: bool = False
    preempt_delay: Optional[int] = None
    auth_pass: Optional[str] = None
    multicast_group: Optional[str] = None
    unicast_src_ip: Optional[str] = None
    unicast_peers: List[str] = field(default_factory=list)
    vip_dev: Optional[str] = None
    notify_script: Optional[str] = None


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fmt_number(value: float) -> str:
    value = float(value)
    if value == int(value):
        return str(int(value))
    return ("%.2f" % value).rstrip("0").rstrip(".")


def _ip_or_none(value: object) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def parse_vip(vip: object) -> Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]:
    """The VIP with its prefix, e.g. 10.10.102.242/24; raises ValueError naming the rule."""
    text = str(vip).strip() if vip is not None else ""
    if "/" not in text:
        raise ValueError("expected an IP address with prefix length, e.g. 10.10.102.242/24 or fd00::100/64")
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address with prefix length, e.g. 10.10.102.242/24 or fd00::100/64")


def resolve_vrrp_version(config: KeepalivedConfig) -> int:
    """3 for IPv6 VIPs or sub-second adverts, else 2 (VRRPv2 is IPv4-only with whole seconds)."""
    if config.vrrp_version is not None:
        return int(config.vrrp_version)
    try:
        ipv6 = parse_vip(config.vip).version == 6
    except ValueError:
        ipv6 = False
    advert = _number(config.advert_int)
    whole = advert is not None and advert == int(advert)
    return 3 if ipv6 or not whole else 2


def config_problems(config: KeepalivedConfig) -> List[Tuple[str, object, str]]:
    """Every rule the config breaks, as (option, value, rule-and-fix)."""
    problems = []  # type: List[Tuple[str, object, str]]

    def add(option: str, value: object, rule: str) -> None:
        problems.append((option, value, rule))

    if not config.router_id or not _UNQUOTED_RE.match(str(config.router_id)):
        add("router_id", config.router_id, "must be a non-empty word without spaces, quotes or braces")
    if not _NAME_RE.match(str(config.script_user or "")):
        add("script_user", config.script_user, "must be a user name (letters, digits, _ . -)")
    if not _NAME_RE.match(str(config.instance_name or "")):
        add("instance_name", config.instance_name, "must be a word of letters, digits, _ . -")
    if not config.interface or not _NAME_RE.match(str(config.interface)):
        add("interface", config.interface, "must be an interface name, e.g. eth0")
    if config.vip_dev is not None and not _NAME_RE.match(str(config.vip_dev)):
        add("vip_dev", config.vip_dev, "must be an interface name, e.g. eth0")

    script = str(config.check_script or "").strip()
    if not script.startswith("/"):
        add("check_script", config.check_script,
            "must start with an absolute path (keepalived searches PATH otherwise and warns), e.g."
            " /usr/local/libexec/cloudcore-ha/check_cloudcore https://127.0.0.1:10002/ca.crt")
    elif '"' in script or "\n" in script:
        add("check_script", config.check_script, "must not contain double quotes or newlines")
    if config.notify_script is not None:
        notify = str(config.notify_script).strip()
        if not notify.startswith("/") or '"' in notify or "\n" in notify:
            add("notify_script", config.notify_script, "must be an absolute path (plus arguments) without quotes")

    # keepalived 2.2.7 parses vrrp_script interval and timeout as whole seconds 1..4294 and
    # ignores anything else ("invalid number '0.5'"); sub-second detection needs fall 1 instead
    for option in ("check_interval", "check_timeout"):
        value = _number(getattr(config, option))
        if value is None or value != int(value) or not 1 <= value <= 4294:
            add(option, getattr(config, option),
                "must be whole seconds 1..4294 (keepalived rejects fractions for vrrp_script)")
    for option in ("check_fall", "check_rise"):
        value = getattr(config, option)
        if not _is_int(value) or value < 1:
            add(option, value, "must be a whole number >= 1")
    if not _is_int(config.check_weight) or abs(config.check_weight) > MAX_TRACK_WEIGHT:
        add("check_weight", config.check_weight,
            "must be an integer in -%d..%d (0: a failing check puts the node in FAULT)"
            % (MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT))

    if config.state not in ("MASTER", "BACKUP"):
        add("state", config.state, "must be MASTER or BACKUP")
    if not _is_int(config.virtual_router_id) or not 1 <= config.virtual_router_id <= 255:
        add("virtual_router_id", config.virtual_router_id,
            "must be an integer 1..255, unique on the L2 segment")
    if not _is_int(config.priority) or not 1 <= config.priority <= 255:
        add("priority", config.priority, "must be an integer 1..255")
    elif config.priority == 255:
        add("priority", config.priority,
            "255 makes the node the address owner: keepalived ignores the health check's weight"
            " and a failing CloudCore would keep the VIP; use 1..254")

    try:
        vip = parse_vip(config.vip)
    except ValueError as exc:
        vip = None
        add("vip", config.vip, str(exc))

    if config.vrrp_version is not None and config.vrrp_version not in (2, 3):
        add("vrrp_version", config.vrrp_version, "must be 2 or 3 (or unset: 3 for IPv6 or sub-second adverts, else 2)")
    version = resolve_vrrp_version(config) if config.vrrp_version in (None, 2, 3) else None

    advert = _number(config.advert_int)
    if advert is None or advert <= 0:
        add("advert_int", config.advert_int, "must be a positive number of seconds")
    elif version == 2:
        if advert != int(advert):
            add("advert_int", config.advert_int,
                "VRRPv2 advertises in whole seconds (keepalived rounds %s and its config test fails):"
                " use a whole number or vrrp_version 3" % _fmt_number(advert))
        elif not 1 <= advert <= 255:
            add("advert_int", config.advert_int, "VRRPv2 advert_int must be 1..255 seconds")
    elif version == 3:
        if abs(advert * 100 - round(advert * 100)) > 1e-6 or not 0.01 <= advert <= 40.95:
            add("advert_int", config.advert_int, "VRRPv3 advert_int must be 0.01..40.95 seconds in 10 ms steps")
    if version == 2 and vip is not None and vip.version == 6:
        add("vrrp_version", config.vrrp_version,
            "VRRPv2 carries IPv4 only; an IPv6 VIP needs vrrp_version 3 (or leave it unset)")

    if config.nopreempt and config.state != "BACKUP":
        add("nopreempt", config.nopreempt, "nopreempt only works with state BACKUP (keepalived ignores it on a MASTER)")
    if config.preempt_delay is not None:
        if not _is_int(config.preempt_delay) or not 0 <= config.preempt_delay <= 1000:
            add("preempt_delay", config.preempt_delay, "must be whole seconds 0..1000")
        elif config.nopreempt:
            add("preempt_delay", config.preempt_delay, "has no effect with nopreempt: set one or the other")

    if config.auth_pass is not None and config.auth_pass != "":
        secret = str(config.auth_pass)
        if len(secret) > AUTH_PASS_MAX:
            # the value itself is a secret: name its length, never the value
            add("auth_pass", "<%d characters>" % len(secret),
                "must be at most %d characters: keepalived silently uses only the first %d"
                " (and its config test fails); shorten it" % (AUTH_PASS_MAX, AUTH_PASS_MAX))
        elif not _UNQUOTED_RE.match(secret):
            add("auth_pass", "<hidden>", "must not contain spaces, quotes, braces, '!' or '#'")
        if version == 3:
            add("auth_pass", "<hidden>",
                "VRRPv3 (RFC 5798) has no authentication and keepalived rejects it; VRRPv3 is used"
                " for an IPv6 VIP or a sub-second advert_int: drop auth_pass, or use an IPv4 VIP"
                " with whole-second advert_int (VRRPv2)")

    if config.multicast_group is not None and config.multicast_group != "":
        group = _ip_or_none(config.multicast_group)
        if group is None or not group.is_multicast:
            add("multicast_group", config.multicast_group, "must be a multicast address, e.g. 224.0.0.18 or ff02::12")
        elif vip is not None and group.version != vip.version:
            add("multicast_group", config.multicast_group, "must be the same address family as the VIP")
        if config.unicast_peers:
            add("multicast_group", config.multicast_group, "cannot be combined with unicast_peers: choose one")

    peers = list(config.unicast_peers or [])
    if config.unicast_src_ip:
        src = _ip_or_none(config.unicast_src_ip)
        if src is None:
            add("unicast_src_ip", config.unicast_src_ip, "must be an IP address")
        elif vip is not None and src.version != vip.version:
            add("unicast_src_ip", config.unicast_src_ip, "must be the same address family as the VIP")
        if not peers:
            add("unicast_peers", peers, "unicast_src_ip needs at least one peer (keepalived falls back to multicast)")
    for peer in peers:
        address = _ip_or_none(peer)
        if address is None:
            add("unicast_peers", peer, "must be an IP address")
        elif vip is not None and address.version != vip.version:
            add("unicast_peers", peer, "must be the same address family as the VIP")
    if peers and len(set(peers)) != len(peers):
        add("unicast_peers", peers, "lists a peer twice")
    if peers and config.unicast_src_ip in peers:
        add("unicast_peers", peers, "must not contain unicast_src_ip (this node's own address)")
    return problems


def _quote(text: str) -> str:
    return '"%s"' % text


def render_keepalived_conf(config: KeepalivedConfig) -> str:
    """keepalived.conf text for one CloudCore VIP; raises KeepalivedConfigError on bad input."""
    problems = config_problems(config)
    if problems:
        raise KeepalivedConfigError(problems)
    vip = parse_vip(config.vip)
    version = resolve_vrrp_version(config)
    dev = config.vip_dev or config.interface
    out = [HEADER, ""]
    out.append("global_defs {")
    out.append("    router_id %s" % config.router_id)
    # without it keepalived logs a SECURITY VIOLATION and its config test fails
    out.append("    enable_script_security")
    out.append("    script_user %s" % config.script_user)
    if config.multicast_group:
        group = ipaddress.ip_address(config.multicast_group)
        out.append("    vrrp_mcast_group%d %s" % (group.version, group))
    out.append("}")
    out.append("")
    out.append("vrrp_script %s {" % config.script_name)
    out.append("    script %s" % _quote(config.check_script.strip()))
    out.append("    interval %s" % _fmt_number(config.check_interval))
    out.append("    timeout %s" % _fmt_number(config.check_timeout))
    out.append("    fall %d" % config.check_fall)
    out.append("    rise %d" % config.check_rise)
    out.append("    weight %d" % config.check_weight)
    out.append("}")
    out.append("")
    out.append("vrrp_instance %s {" % config.instance_name)
    out.append("    state %s" % config.state)
    out.append("    interface %s" % config.interface)
    out.append("    virtual_router_id %d" % config.virtual_router_id)
    out.append("    priority %d" % config.priority)
    out.append("    advert_int %s" % _fmt_number(config.advert_int))
    out.append("    version %d" % version)
    if config.nopreempt:
        out.append("    nopreempt")
    if config.preempt_delay is not None:
        out.append("    preempt_delay %d" % config.preempt_delay)
    if config.auth_pass:
        out.append("    authentication {")
        out.append("        auth_type PASS")
        out.append("        auth_pass %s" % config.auth_pass)
        out.append("    }")
    if config.unicast_peers:
        if config.unicast_src_ip:
            out.append("    unicast_src_ip %s" % ipaddress.ip_address(config.unicast_src_ip))
        out.append("    unicast_peer {")
        for peer in config.unicast_peers:
            out.append("        %s" % ipaddress.ip_address(peer))
        out.append("    }")
    out.append("    virtual_ipaddress {")
    out.append("        %s dev %s" % (vip.with_prefixlen, dev))
    out.append("    }")
    out.append("    track_script {")
    # the weight lives in vrrp_script; repeating it here would only override it with the same value
    out.append("        %s" % config.script_name)
    out.append("    }")
    if config.notify_script:
        out.append("    notify %s" % _quote(config.notify_script.strip()))
    out.append("}")
    return "\n".join(out) + "\n"


_AUTH_RE = re.compile(r"^(\s*auth_pass\s+)(\S+)", re.MULTILINE)
MASK = "********"


def mask_secrets(text: str) -> str:
    """The config text with auth_pass values replaced, for diffs and logs."""
    return _AUTH_RE.sub(lambda m: m.group(1) + MASK, text)


# --------------------------------------------------------------------------------------------
# keepalived's own config test

@dataclass
class ConfigTestResult:
    ok: bool
    returncode: int
    output: str
    notes: List[str] = field(default_factory=list)


# Runs a command and returns (exit code, combined output). The module passes a wrapper around
# AnsibleModule.run_command; tests pass one around subprocess. Keeping the process handling out of
# this file keeps it plain Python and lets Ansible own how commands run on the host.
CommandRunner = Callable[[List[str]], Tuple[int, str]]


def _excerpt(text: str, limit: int = 40) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-limit:])


_KILLED_BY_SIGTERM = (-15, 143)
_SCRIPT_USER_RE = re.compile(r"^(\s*script_user\s+)\S+", re.MULTILINE)


def keepalived_config_test(text: str, run: CommandRunner, keepalived: str = "keepalived",
                           unshare: Optional[str] = None) -> ConfigTestResult:
    """Run keepalived's config test on text; returns ok, the exit code and the log excerpt.

    `-e` matters: without it keepalived returns 0 for a missing file. The test needs the
    interfaces to exist, the script user to exist and the scripts to exist in root-owned
    paths (enable_script_security).

    keepalived 2.2.7 (Debian 12) kills itself with SIGTERM in config-test mode whenever the
    script user is not root (after checking a script it compares getppid() with a main pid
    that is 0 in test mode; later versions skip that check in test mode). Running it as PID 1
    of a new PID namespace makes getppid() return 0, so the test completes: pass `unshare`
    (the path of util-linux unshare) to do that. If keepalived still kills itself, the test is
    repeated with script_user root and a note says so.
    """
    notes = []  # type: List[str]
    with tempfile.TemporaryDirectory(prefix="cloudcore-ha-kt-") as tmpdir:
        path = os.path.join(tmpdir, "keepalived.conf")

        def attempt(content: str) -> Tuple[int, str]:
            with open(path, "w") as handle:
                handle.write(content)
            base = [keepalived, "-t", "-e", "-f", path]
            if unshare:
                rc, out = run([unshare, "--pid", "--fork"] + base)
                if not (rc == 1 and out.lstrip().startswith("unshare:")):
                    return rc, out
                notes.append("unshare --pid failed (%s); ran the config test without it"
                             % _excerpt(out, 1))
            return run(base)

        rc, out = attempt(text)
        if rc in _KILLED_BY_SIGTERM and _SCRIPT_USER_RE.search(text):
            notes.append("keepalived killed itself during the config test (a keepalived 2.2.x"
                         " bug with a non-root script_user); repeated the test with script_user root")
            rc, out = attempt(_SCRIPT_USER_RE.sub(lambda m: m.group(1) + "root", text))
    return ConfigTestResult(rc == 0, rc, _excerpt(out), notes)
