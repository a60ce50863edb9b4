# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.keepalived_state, status_table and drill_report (plugins/filter/status.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.status import FilterModule

FILTERS = FilterModule().filters()


def test_registered():
    assert set(FILTERS) == {"keepalived_state", "status_table", "drill_report"}


def test_keepalived_state_takes_any_log_text():
    assert FILTERS["keepalived_state"]("x (CLOUDCORE) Entering MASTER STATE\n") == "MASTER"
    assert FILTERS["keepalived_state"](None) == "unknown"


def test_status_table_wants_rows():
    assert FILTERS["status_table"]([{"host": "n1", "holder": True, "service": "active", "state": "MASTER",
                                     "check_ok": True}])[1].split()[:2] == ["n1", "yes"]
    with pytest.raises(AnsibleFilterError, match="must be a list of per-node rows, got dict"):
        FILTERS["status_table"]({"host": "n1"})


def test_drill_report_reads_the_registered_logs_from_hostvars():
    hostvars = {
        "n1": {"_drill_log_after_drain": {"stdout": "10.5 n1 Keepalived_vrrp[1]: (CLOUDCORE) Entering FAULT STATE"},
               "_drill_log_after_restore": {"stdout": ""}},
        "n2": {"_drill_log_after_drain": {"stdout": "11.25 n2 Keepalived_vrrp[1]: (CLOUDCORE) Entering MASTER STATE"},
               "_drill_log_after_restore": {"stdout": ""}},
    }
    report = FILTERS["drill_report"](hostvars, ["n1", "n2"], "10.0", "n1", "20.0")
    assert report == {"old_holder": "n1", "new_holder": "n2", "seconds": 1.25, "moves_after_restore": 0}
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.drill_report"):
        FILTERS["drill_report"](hostvars, ["n1", "n2"], "not a time", "n1", "20.0")
