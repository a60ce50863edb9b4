# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sessions per CloudCore from haproxy's master CLI (plugins/module_utils/_haproxy_stats.py), on text
captured from haproxy 2.6.12 (Debian 12) in the lab."""

from __future__ import annotations

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_stats import (
    backend_sessions,
    total_sessions,
    workers,
)

SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
4516            master          1 [failed: 0]   0d00h15m00s     2.6.12-1+deb12u3
# workers
6270            worker          0               0d00h11m10s     2.6.12-1+deb12u3
# old workers
4518            worker          1               0d00h15m00s     2.6.12-1+deb12u3
# programs

"""

HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,"
          "weight,act,bck")


def stat(rows):
    return "\n".join([HEADER] + [",".join([px, sv, "0", "0", str(cur)] + [""] * 16) for px, sv, cur in rows]) + "\n"


def test_workers_current_and_old():
    assert workers(SHOW_PROC) == [(6270, "current"), (4518, "old")]
    assert workers("") == []


def test_backend_sessions_only_that_backends_servers():
    text = stat([("websocket", "FRONTEND", 300), ("cloudcore_websocket", "n1", 102), ("cloudcore_websocket", "n2", 94),
                 ("cloudcore_websocket", "BACKEND", 196), ("cloudcore_tunnel", "n1", 100)])
    assert backend_sessions(text) == {"n1": 102, "n2": 94}
    assert backend_sessions(text, "cloudcore_tunnel") == {"n1": 100}
    assert backend_sessions("Unknown command\n") == {}


def test_total_over_workers():
    """After a reload the old worker keeps the established sessions: only the sum is what CloudCore serves."""
    assert total_sessions({6270: {"n1": 0, "n2": 3}, 4518: {"n1": 102, "n2": 91}}) == {"n1": 102, "n2": 94}
