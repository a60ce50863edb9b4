# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.cloudcore.ha.plugins.module_utils._status import (
    drill_report,
    master_transitions,
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
