# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Priority plans (plugins/module_utils/_vrrp_plan.py)."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._failover import vrrp_failover_proof
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import MAX_NODES, InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import plan_priorities, vrrp_priorities


# --- examples ------------------------------------------------------------------------------

def test_seed_numbers_weighted():
    plan = vrrp_priorities({"node1": 100, "node2": 99}, "weighted", 2)
    assert plan == {
        "node1": {"priority": 100, "state": "MASTER", "nopreempt": False, "track_weight": 2},
        "node2": {"priority": 99, "state": "BACKUP", "nopreempt": False, "track_weight": 2},
    }


def test_weighted_default_is_seed_compatible_and_smallest_weight():
    assert vrrp_priorities(["node1", "node2"], "weighted") == vrrp_priorities({"node1": 100, "node2": 99}, "weighted", 2)
    plan = vrrp_priorities(["a", "b", "c"], "weighted")
    assert [n["priority"] for n in plan.values()] == [100, 99, 98]
    assert {n["track_weight"] for n in plan.values()} == {3}
    assert [n["state"] for n in plan.values()] == ["MASTER", "BACKUP", "BACKUP"]


def test_fault_mode_defaults():
    plan = vrrp_priorities(["a", "b", "c"])
    assert [n["priority"] for n in plan.values()] == [250, 240, 230]
    assert all(n["state"] == "BACKUP" and n["nopreempt"] and n["track_weight"] == 0 for n in plan.values())


def test_fault_mode_pinned_distinct_priorities_kept():
    plan = vrrp_priorities({"a": 50, "b": 120})
    assert plan["a"]["priority"] == 50 and plan["b"]["priority"] == 120
    assert list(plan) == ["a", "b"]


def test_gap_error_message_names_weight_gap_and_fix():
    with pytest.raises(InputError) as err:
        vrrp_priorities({"node1": 100, "node2": 90}, "weighted", 2)
    assert err.value.variable == "keepalived_check_weight"
    assert str(err.value) == (
        "keepalived_check_weight=2: weight 2 must exceed the priority gap 10 (100 \u2212 90): use weight \u2265 11"
        " or priorities within 1 of each other")


def test_seed_three_nodes_100_99_98_weight_2_rejected():
    # the upstream guide's numbers: ties decided by IP
    with pytest.raises(InputError, match="gap 2"):
        vrrp_priorities({"n1": 100, "n2": 99, "n3": 98}, "weighted", 2)


def test_pinned_103_100_weight_2_rejected():
    # acassen/keepalived#2599: never fails over
    with pytest.raises(InputError, match="gap 3"):
        vrrp_priorities({"a": 103, "b": 100}, "weighted", 2)


@pytest.mark.parametrize("hosts, failover, weight, variable, fragment", [
    (["only"], "fault", None, "hosts", "has 1 node(s)"),
    (["n%d" % i for i in range(MAX_NODES + 1)], "fault", None, "hosts", "has 17 node(s)"),
    (["a", "b", "a"], "fault", None, "hosts", "lists a more than once"),
    ({"a": 100, "b": "x"}, "weighted", None, "hosts[b]", "must be a whole number 1..254"),
    ({"a": 100, "b": 99.5}, "weighted", None, "hosts[b]", "must be a whole number"),
    ({"a": 100, "b": True}, "weighted", None, "hosts[b]", "must be a whole number"),
    ({"a": 255, "b": 100}, "fault", None, "hosts[a]", "255 is the address owner"),
    ({"a": 0, "b": 100}, "fault", None, "hosts[a]", "must be 1..254"),
    ({"a": 100, "b": 100}, "fault", None, "hosts", "must be distinct (a/b=100)"),
    ({"a": 100, "b": 100}, "weighted", 5, "hosts", "must be distinct"),
    (["a", "b"], "sometimes", None, "cloudcore_failover", "is unknown; use one of: fault, weighted"),
    (["a", "b"], "fault", 2, "keepalived_check_weight", "only applies to cloudcore_failover: weighted"),
    (["a", "b"], "weighted", 0, "keepalived_check_weight", "weight 0 puts a failing node in FAULT"),
    (["a", "b"], "weighted", "two", "keepalived_check_weight", "must be a whole number"),
    (["a", "b"], "weighted", 300, "keepalived_check_weight", "outside keepalived's range"),
    ({"a": 250, "b": 249}, "weighted", 5, "keepalived_check_weight", "exceeds 254"),
    ({"a": 3, "b": 2}, "weighted", -5, "keepalived_check_weight", "below 1"),
    ("node1", "fault", None, "hosts", "must be a list of host names"),
    ([""], "fault", None, "hosts", "not a non-empty string"),
])
def test_rejected_inputs(hosts, failover, weight, variable, fragment):
    with pytest.raises(InputError) as err:
        plan_priorities(hosts, failover, weight)
    assert err.value.variable == variable
    assert fragment in str(err.value)


def test_negative_weight_allowed_when_it_works():
    plan = vrrp_priorities({"a": 100, "b": 99, "c": 98}, "weighted", -3)
    assert all(row["failover_ok"] for row in vrrp_failover_proof(plan))


def test_digit_strings_are_numbers_as_extra_vars_give_them():
    assert vrrp_priorities({"a": "120", "b": 100}, "weighted", "21") == vrrp_priorities({"a": 120, "b": 100}, "weighted", 21)
