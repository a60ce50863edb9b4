# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.cloudcore.ha.plugins.module_utils._status import (
    drill_report,
    master_transitions,
    connected_nodes,
    status_lines,
    vrrp_state_from_log,
)

LOG = """\
Nov 26 19:23:27 n1 Keepalived_vrrp[915]: (CLOUDCORE) Entering BACKUP STATE
Nov 26 19:23:30 n1 Keepalived_vrrp[915]: (CLOUDCORE) Entering MASTER STATE
Nov 26 19:30:01 n1 Keepalived_vrrp[915]: (CLOUDCORE) Entering FAULT STATE
"""


def test_state_is_the_last_one_entered():
    assert vrrp_state_from_log(LOG) == "FAULT"
    assert vrrp_state_from_log(LOG, "OTHER") == "unknown"
    assert vrrp_state_from_log("") == "unknown"


def test_master_transitions_after_a_time():
    log = ("100.5 n2 Keepalived_vrrp[1]: (CLOUDCORE) Entering MASTER STATE\n"
           "200.25 n2 Keepalived_vrrp[1]: (CLOUDCORE) Entering BACKUP STATE\n"
           "300.75 n2 Keepalived_vrrp[1]: (CLOUDCORE) Entering MASTER STATE\n")
    assert master_transitions(log) == [100.5, 300.75]
    assert master_transitions(log, since=150) == [300.75]


def test_drill_report_times_the_first_takeover_and_counts_moves_after_restore():
    after_drain = {
        "n1": "10.9 n1 Keepalived_vrrp[1]: (CLOUDCORE) Entering FAULT STATE\n",
        "n2": "11.6 n2 Keepalived_vrrp[1]: (CLOUDCORE) Entering MASTER STATE\n",
        "n3": "",
    }
    report = drill_report(10.0, after_drain, "n1", 20.0, {"n1": "", "n2": "", "n3": ""})
    assert report == {"old_holder": "n1", "new_holder": "n2", "seconds": 1.6, "moves_after_restore": 0}
    moved_back = {"n1": "21.0 n1 Keepalived_vrrp[1]: (CLOUDCORE) Entering MASTER STATE\n", "n2": "", "n3": ""}
    assert drill_report(10.0, after_drain, "n1", 20.0, moved_back)["moves_after_restore"] == 1


def test_drill_report_without_takeover_says_so():
    assert drill_report(10.0, {"n1": "", "n2": ""}, "n1", 20.0, {})["new_holder"] is None


def test_status_table_aligns_and_warns_about_split_brain():
    rows = [
        {"host": "ccha-node1", "holder": True, "service": "active", "state": "MASTER", "check_ok": True},
        {"host": "ccha-node2", "holder": True, "service": "active", "state": "MASTER", "check_ok": False},
    ]
    lines = status_lines(rows, {"sans": {"ip": ["10.0.0.100"], "dns": []}, "not_after": "2027-01-01T00:00:00Z",
                                "days_left": 36, "vip_covered": True})
    assert lines[0].split() == ["node", "holds", "VIP", "keepalived", "VRRP", "state", "health", "check"]
    assert lines[2].split() == ["ccha-node2", "yes", "active", "MASTER", "FAILING"]
    assert "WARNING: 2 nodes hold the VIP (ccha-node1, ccha-node2)" in lines[3]
    assert lines[4] == ("certificate on the VIP: SANs 10.0.0.100; expires 2027-01-01T00:00:00Z (36 days);"
                        " covers the VIP: yes")


METRICS = """# HELP KubeEdge_CloudHub_connected_nodes Number of nodes that connected to the cloudHub
# TYPE KubeEdge_CloudHub_connected_nodes gauge
KubeEdge_CloudHub_connected_nodes 125
"""


def test_balanced_columns_from_cloudcore_and_the_holders_haproxy():
    rows = [dict(host="h1", holder=True, service="active", state="MASTER", check_ok=True, node_name="n1",
                 metrics=METRICS.replace("125", "0"), haproxy_sessions={"n1": 0, "n2": 125, "n3": 175}),
            dict(host="h2", holder=False, service="active", state="BACKUP", check_ok=True, node_name="n2",
                 metrics=METRICS, haproxy_sessions={"n1": 0, "n2": 0, "n3": 0}),  # a standby haproxy: no edges
            dict(host="h3", holder=False, service="active", state="BACKUP", check_ok=True, node_name="n3",
                 metrics="", haproxy_sessions={})]
    lines = status_lines(rows)
    assert lines[0].split()[-4:] == ["edges", "(CloudCore)", "edges", "(haproxy)"]
    assert lines[1].split()[-2:] == ["0", "0"] and lines[2].split()[-2:] == ["125", "125"]
    assert lines[3].split()[-2:] == ["?", "175"]  # no gauge on h3: unknown, and flagged
    assert lines[-1].startswith("NOTE: CloudCore and the VIP holder's haproxy count different edges on h3")


def test_vip_mode_has_no_edge_columns():
    rows = [dict(host="h1", holder=True, service="active", state="MASTER", check_ok=True)]
    assert "edges" not in status_lines(rows)[0]


def test_connected_nodes_gauge():
    assert connected_nodes(METRICS) == 125
    assert connected_nodes("KubeEdge_CloudHub_connected_nodes 3e+00\n") == 3
    assert connected_nodes("other_metric 5\n") is None and connected_nodes("") is None
