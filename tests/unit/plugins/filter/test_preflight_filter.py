# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter cloudcore.ha.preflight_problems (plugins/filter/preflight.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.preflight import FilterModule

preflight_problems = FilterModule().filters()["preflight_problems"]


def test_returns_dicts_with_msg():
    problems = preflight_problems({"cloudcore_vrrp_router_id": 0, "cloudcore_failover": "fault"})
    assert problems == [{"variable": "cloudcore_vrrp_router_id", "value": 0,
                         "rule": "must be 1..255 (VRRP's 8-bit router id), unique on the L2 segment",
                         "msg": "cloudcore_vrrp_router_id=0: must be 1..255 (VRRP's 8-bit router id), unique on the L2 segment"}]


def test_rejects_non_mapping():
    with pytest.raises(AnsibleFilterError, match="must be a mapping"):
        preflight_problems(["x"])
