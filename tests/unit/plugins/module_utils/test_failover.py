# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The failover proof (plugins/module_utils/_failover.py), on its own and over every plan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudcore.ha.plugins.module_utils._failover import (
    effective_priority,
    failover_proof,
    failover_proof_text,
    vrrp_failover_proof,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import NodePlan, plan_priorities, vrrp_priorities

PROPERTY = settings(max_examples=150, deadline=None)
node_names = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), min_size=2, max_size=16, unique=True)


def test_effective_priority_model():
    assert effective_priority(NodePlan(100, "MASTER", False, 2), False) == 102
    assert effective_priority(NodePlan(100, "MASTER", False, 2), True) == 100
    assert effective_priority(NodePlan(100, "MASTER", False, -5), False) == 100
    assert effective_priority(NodePlan(100, "MASTER", False, -5), True) == 95
    assert effective_priority(NodePlan(100, "BACKUP", True, 0), True) is None  # FAULT
    assert effective_priority(NodePlan(253, "MASTER", False, 10), False) == 254  # clamped
    assert effective_priority(NodePlan(3, "MASTER", False, -10), True) == 1  # clamped
    assert effective_priority(NodePlan(255, "MASTER", False, -10), True) == 255  # owner


# --- the proof ---------------------------------------------------------------------------------

def test_proof_seed_weighted_text():
    plan = vrrp_priorities({"node1": 100, "node2": 99}, "weighted", 2)
    lines = failover_proof_text(plan).splitlines()
    assert lines[0].split("   ")[0] == "failed node"
    assert "node1=100 node2=101" in lines[1]
    assert "VIP moves back to node1 (preempt: second outage)" in lines[1]
    assert lines[1].split()[:3] == ["node1", "node1", "node2"]
    assert lines[2].split()[:3] == ["node2", "node1", "node1"]


def test_proof_fault_mode_no_failback():
    rows = vrrp_failover_proof(vrrp_priorities(["a", "b", "c"]))
    assert rows[0]["holder_after"] == "b"
    assert rows[0]["effective_priorities_after"] == {"a": None, "b": 240, "c": 230}
    assert rows[0]["moves_back_on_heal"] is False
    assert "nopreempt" in rows[0]["on_heal"]
    assert all(row["failover_ok"] for row in rows)


def test_proof_flags_unhealthy_master_keeping_vip():
    plan = {"node1": {"priority": 100, "state": "MASTER", "nopreempt": False, "track_weight": 2},
            "node2": {"priority": 90, "state": "BACKUP", "nopreempt": False, "track_weight": 2}}
    row = vrrp_failover_proof(plan)[0]
    assert row["holder_after"] == "node1"
    assert not row["failover_ok"]
    assert "VIP stays on the failed node node1" in row["defects"]


def test_proof_flags_ties_as_decided_by_ip():
    plan = {"n1": {"priority": 100, "state": "MASTER", "track_weight": 2},
            "n2": {"priority": 99, "track_weight": 2},
            "n3": {"priority": 98, "track_weight": 2}}
    rows = vrrp_failover_proof(plan)
    assert any("decided by IP" in d for d in rows[0]["defects"])  # failed n1=100 == n3=100
    plan = {"n1": {"priority": 100, "state": "MASTER", "track_weight": 1},
            "n2": {"priority": 99, "track_weight": 1}}
    assert "tie: decided by IP" in vrrp_failover_proof(plan)[0]["defects"]  # 100 vs 100


def test_proof_weighted_with_nopreempt_blocks_failover():
    plan = {"a": {"priority": 100, "state": "BACKUP", "nopreempt": True, "track_weight": 5},
            "b": {"priority": 99, "state": "BACKUP", "nopreempt": True, "track_weight": 5}}
    rows = failover_proof(plan)
    assert rows[0].holder_after == "a" and not rows[0].failover_ok


def test_proof_rejects_garbage():
    with pytest.raises(InputError):
        vrrp_failover_proof(["a", "b"])
    with pytest.raises(InputError):
        vrrp_failover_proof({"a": {"priority": "x"}})


# --- properties ---------------------------------------------------------------------------------

@PROPERTY
@given(names=node_names, mode=st.sampled_from(["fault", "weighted"]))
def test_every_single_failure_hands_the_vip_to_a_healthy_node(names, mode):
    plan = plan_priorities(names, mode)
    rows = failover_proof(plan)
    assert len(rows) == len(names)
    for row in rows:
        assert row.holder_after and row.holder_after != row.failed_node
        assert row.failover_ok, row.defects
        for name, value in row.effective_after.items():
            assert value is None or 1 <= value <= 254
    priorities = [node.priority for node in plan.values()]
    assert len(set(priorities)) == len(priorities)
    assert all(1 <= p <= 254 for p in priorities)
    if mode == "fault":
        assert all(not row.holder_after_heal != row.holder_after for row in rows)
    else:
        assert [n.state for n in plan.values()].count("MASTER") == 1


@PROPERTY
@given(names=node_names, data=st.data())
def test_pinned_weighted_plans_are_accepted_only_when_they_fail_over(names, data):
    priorities = data.draw(st.lists(st.integers(1, 254), min_size=len(names), max_size=len(names), unique=True))
    weight = data.draw(st.integers(-253, 253).filter(lambda w: w != 0))
    hosts = dict(zip(names, priorities))
    try:
        plan = plan_priorities(hosts, "weighted", weight)
    except InputError as exc:
        gap = max(priorities) - min(priorities)
        broken = (abs(weight) <= gap or max(priorities) + weight > 254 if weight > 0
                  else abs(weight) <= gap or min(priorities) + weight < 1)
        assert broken, str(exc)
        return
    for row in failover_proof(plan):
        assert row.failover_ok, row.defects
        assert all(v is None or 1 <= v <= 254 for v in row.effective_after.values())
        # no clamping happened: every effective priority is exact arithmetic
        for name, value in row.effective_after.items():
            base = plan[name].priority
            assert value in (base, base + weight)


@PROPERTY
@given(names=node_names, data=st.data())
def test_pinned_fault_plans_with_distinct_priorities_fail_over(names, data):
    priorities = data.draw(st.lists(st.integers(1, 254), min_size=len(names), max_size=len(names), unique=True))
    plan = plan_priorities(dict(zip(names, priorities)), "fault")
    assert all(row.failover_ok for row in failover_proof(plan))


@PROPERTY
@given(names=st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), min_size=2, max_size=16, unique=True),
       data=st.data())
def test_pinned_duplicates_are_rejected_in_both_modes(names, data):
    priorities = data.draw(st.lists(st.integers(1, 200), min_size=len(names), max_size=len(names)))
    priorities[1] = priorities[0]
    for mode, weight in (("fault", None), ("weighted", 253)):
        with pytest.raises(InputError, match="distinct"):
            plan_priorities(dict(zip(names, priorities)), mode, weight)
