# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.vrrp_priorities and cloudcore.ha.vrrp_failover_proof (plugins/filter/vrrp.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.vrrp import FilterModule

FILTERS = FilterModule().filters()


def test_registered():
    assert set(FILTERS) == {"vrrp_priorities", "vrrp_failover_proof"}


def test_error_message_for_100_90_weight_2():
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS["vrrp_priorities"]({"node1": 100, "node2": 90}, "weighted", 2)
    message = str(err.value)
    assert message.startswith("cloudcore.ha.vrrp_priorities: keepalived_check_weight=2: ")
    assert "weight 2 must exceed the priority gap 10 (100 \u2212 90)" in message
    assert "use weight \u2265 11 or priorities within 1 of each other" in message


def test_unknown_mode_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="cloudcore_failover='sometimes': is unknown"):
        FILTERS["vrrp_priorities"](["a", "b"], "sometimes")


def test_rows_and_text():
    plan = FILTERS["vrrp_priorities"]({"node1": 100, "node2": 99}, "weighted", 2)
    rows = FILTERS["vrrp_failover_proof"](plan)
    assert rows[0]["holder_after"] == "node2" and rows[0]["moves_back_on_heal"]
    text = FILTERS["vrrp_failover_proof"](plan, format="text")
    assert "node1=100 node2=101" in text and "second outage" in text


def test_bad_format_and_bad_plan():
    with pytest.raises(AnsibleFilterError, match="format"):
        FILTERS["vrrp_failover_proof"]({"a": {"priority": 1}}, format="html")
    with pytest.raises(AnsibleFilterError, match="vrrp_failover_proof"):
        FILTERS["vrrp_failover_proof"]("nope")
