# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.vrrp_endpoints, vip_holders and rolling_order (plugins/filter/topology.py)."""

from __future__ import annotations

import os
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.topology import FilterModule

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from sites import facts, hostvars  # noqa: E402  pylint: disable=wrong-import-position

FILTERS = FilterModule().filters()


def test_registered():
    assert set(FILTERS) == {"vrrp_endpoints", "vip_holders", "rolling_order"}


def test_vrrp_endpoints_honours_each_hosts_interface_variable():
    endpoints = FILTERS["vrrp_endpoints"](hostvars(n1={"cloudcore_vrrp_interface": "eth0"}), ["n1", "n2"], "10.1.0.100/24")
    assert endpoints == {"n1": {"interface": "eth0", "address": "10.1.0.11", "peers": ["10.1.0.12"]},
                         "n2": {"interface": "eth0", "address": "10.1.0.12", "peers": ["10.1.0.11"]}}
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.vrrp_endpoints: cloudcore_vrrp_interface='eth9'"):
        FILTERS["vrrp_endpoints"](hostvars(n2={"cloudcore_vrrp_interface": "eth9"}), ["n1", "n2"], "10.1.0.100/24")
    with pytest.raises(AnsibleFilterError, match="host ghost is in the cloudcore group but not in hostvars"):
        FILTERS["vrrp_endpoints"](hostvars(), ["n1", "ghost"], "10.1.0.100/24")


def test_vip_holders_and_rolling_order():
    held = hostvars(n2={"ansible_facts": facts("10.1.0.12", vip="10.1.0.100")})
    assert FILTERS["vip_holders"](held, ["n1", "n2"], "10.1.0.100/24") == ["n2"]
    held["n1"]["_cfg"] = held["n2"]["_cfg"] = {"changed": True}
    assert FILTERS["rolling_order"](held, ["n2", "n1"], "10.1.0.100/24", "_cfg") == ["n1", "n2"]
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.vip_holders: cloudcore_vip='10.1.0.100': needs a prefix"):
        FILTERS["vip_holders"](held, ["n1"], "10.1.0.100")
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.rolling_order"):
        FILTERS["rolling_order"](held, ["n1"], "x", "_cfg")
