# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Day-2 reading of a running site: keepalived's state from its log, the status table, and the
failover drill's figures. Plain Python over text the playbooks collect from the nodes."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

# keepalived 2.x logs "(INSTANCE) Entering MASTER STATE" (older: "VRRP_Instance(X) Transition to MASTER STATE").
_STATE_RE = re.compile(r"\((?P<instance>[^)]+)\) (?:Entering|Transition to) (?P<state>MASTER|BACKUP|FAULT) STATE")
# journalctl -o short-unix: "1795720958.828865 host Keepalived_vrrp[915]: (CLOUDCORE) Entering MASTER STATE"
_UNIX_LINE_RE = re.compile(r"^(?P<stamp>\d+(?:\.\d+)?) ")


def vrrp_state_from_log(log: str, instance: Optional[str] = None) -> str:
    """The last state keepalived entered, from its log ('unknown' when the log says nothing)."""
    state = "unknown"
    for match in _STATE_RE.finditer(log or ""):
        if instance is None or match.group("instance") == instance:
            state = match.group("state")
    return state


def master_transitions(log: str, since: float = 0.0) -> List[float]:
    """Times (Unix seconds) at which keepalived entered MASTER, from `journalctl -o short-unix`."""
    stamps = []
    for line in (log or "").splitlines():
        stamp = _UNIX_LINE_RE.match(line)
        state = _STATE_RE.search(line)
        if stamp and state and state.group("state") == "MASTER" and float(stamp.group("stamp")) >= since:
            stamps.append(float(stamp.group("stamp")))
    return stamps


# CloudHub's gauge of the edges a CloudCore serves (cloud/pkg/common/monitor/monitor.go: namespace
# KubeEdge, subsystem CloudHub, name connected_nodes), on commonConfig.monitorServer (127.0.0.1:9091).
CONNECTED_NODES_METRIC = "KubeEdge_CloudHub_connected_nodes"


def connected_nodes(metrics: str) -> Optional[int]:
    """The connected_nodes gauge from a Prometheus text page, or None when it is not there."""
    for line in (metrics or "").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == CONNECTED_NODES_METRIC:
            try:
                return int(float(words[1]))
            except ValueError:
                return None
    return None


def status_lines(rows: Sequence[Mapping[str, Any]], certificate: Optional[Mapping[str, Any]] = None) -> List[str]:
    """One readable table: node, VIP holder, keepalived service and VRRP state, health check; in balanced
    mode (rows with `node_name`, `metrics`: CloudCore's metrics page, and `haproxy_sessions`: the sessions
    per CloudCore through the node's haproxy) also the edges each CloudCore serves by its own count and
    through the VIP holder's haproxy, which every edge goes through."""
    header = ("node", "holds VIP", "keepalived", "VRRP state", "health check")
    balanced = any("metrics" in row for row in rows)
    if balanced:
        sessions = next((row.get("haproxy_sessions") or {} for row in rows if row.get("holder")), {})
        rows = [dict(row, edges=connected_nodes(str(row.get("metrics") or "")),
                     haproxy_edges=sessions.get(str(row.get("node_name")))) for row in rows]
    if balanced:
        header += ("edges (CloudCore)", "edges (haproxy)")
    table = [header] + [(
        str(row.get("host")),
        "yes" if row.get("holder") else "-",
        str(row.get("service", "unknown")),
        str(row.get("state", "unknown")),
        "ok" if row.get("check_ok") else "FAILING",
    ) + ((_count(row.get("edges")), _count(row.get("haproxy_edges"))) if balanced else ()) for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    holders = [str(row.get("host")) for row in rows if row.get("holder")]
    if len(holders) != 1:
        lines.append("WARNING: %d nodes hold the VIP (%s); exactly one should"
                     % (len(holders), ", ".join(holders) or "none"))
    if balanced:
        differ = [str(row.get("host")) for row in rows if row.get("edges") != row.get("haproxy_edges")]
        if differ:
            lines.append("NOTE: CloudCore and the VIP holder's haproxy count different edges on %s (an edge"
                         " reconnecting, or one that reached a CloudCore past the balancer)" % ", ".join(differ))
    if certificate:
        sans = list((certificate.get("sans") or {}).get("ip") or []) + list((certificate.get("sans") or {}).get("dns") or [])
        lines.append("certificate on the VIP: SANs %s; expires %s (%s days); covers the VIP: %s" % (
            ", ".join(sans), certificate.get("not_after"), certificate.get("days_left"),
            "yes" if certificate.get("vip_covered") else "NO"))
    return lines


def _count(value: Any) -> str:
    return "?" if value is None else str(value)


def drill_report(drained_at: float, logs_after_drain: Mapping[str, str], old_holder: str,
                 restored_at: float, logs_after_restore: Mapping[str, str]) -> Dict[str, Any]:
    """Seconds from draining the holder until another node entered MASTER, and how many times the VIP
    moved after the drained node was restored (0 is the goal: no failback outage)."""
    takeovers = sorted((stamp, host) for host, log in logs_after_drain.items() if host != old_holder
                       for stamp in master_transitions(log, drained_at))
    moves = sum(len(master_transitions(log, restored_at)) for log in logs_after_restore.values())
    if not takeovers:
        return {"old_holder": old_holder, "new_holder": None, "seconds": None, "moves_after_restore": moves}
    stamp, host = takeovers[0]
    return {"old_holder": old_holder, "new_holder": host, "seconds": round(stamp - drained_at, 2),
            "moves_after_restore": moves}
