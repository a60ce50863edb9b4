# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How many edges each CloudCore gets through one node's haproxy, from haproxy's master CLI.

A reload starts a new worker and leaves the established sessions to the old one until they end or
hard-stop-after, so the current worker's statistics alone undercount for up to an hour after every
reload. The master CLI (`-S /run/haproxy-master.sock`, which Debian's unit passes) lists every worker,
old ones included (`show proc`), and forwards a command to any of them (`@!<pid> show stat`,
management.txt 9.4): the sum over the workers is what the CloudCores serve.

Plain Python over the CLI's text; the module haproxy_sessions does the socket I/O.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

# the backend whose sessions are the edges' hub connections (one per edge)
HUB_BACKEND = "cloudcore_websocket"


def workers(show_proc: str) -> List[Tuple[int, str]]:
    """(pid, "current" or "old") of every worker in `show proc` output (haproxy 2.x and 3.x)."""
    out = []
    section = ""
    for line in show_proc.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "#":
            section = " ".join(words[1:])
            continue
        if words[0].startswith("#") or len(words) < 2 or not words[0].isdigit() or words[1] != "worker":
            continue
        out.append((int(words[0]), "old" if section.startswith("old") else "current"))
    return out


def backend_sessions(show_stat: str, backend: str = HUB_BACKEND) -> Dict[str, int]:
    """Current sessions (scur) per server of one backend, from `show stat` CSV (first line the header,
    "# pxname,svname,qcur,qmax,scur,...")."""
    lines = [line for line in show_stat.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    try:
        name_at, server_at, current_at = header.index("pxname"), header.index("svname"), header.index("scur")
    except ValueError:
        return {}
    out = {}  # type: Dict[str, int]
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) <= current_at or cells[name_at] != backend or cells[server_at] in ("FRONTEND", "BACKEND"):
            continue
        out[cells[server_at]] = int(cells[current_at] or 0)
    return out


def total_sessions(per_worker: Dict[int, Dict[str, int]]) -> Dict[str, int]:
    """The sessions per server summed over the workers."""
    out = {}  # type: Dict[str, int]
    for sessions in per_worker.values():
        for server, count in sessions.items():
            out[server] = out.get(server, 0) + count
    return dict(sorted(out.items()))
