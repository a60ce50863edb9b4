# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.site_plan and cloudcore.ha.preflight_report (plugins/filter/site.py)."""

from __future__ import annotations

import os
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.site import FilterModule

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from sites import facts, hostvars, settings  # noqa: E402  pylint: disable=wrong-import-position

FILTERS = FilterModule().filters()


def test_registered():
    assert set(FILTERS) == {"site_plan", "preflight_report"}


def test_site_plan_reads_each_hosts_variables_and_facts_from_hostvars():
    site = FILTERS["site_plan"](settings(), hostvars(n2={"cloudcore_node_name": "cloud-2", "unrelated": "x"}))
    assert site["node_names"] == ["n1", "cloud-2"] and site["network_planned"]
    missing = FILTERS["site_plan"](settings(cloudcore_hosts=["n1", "n2", "ghost"]), hostvars())
    assert "on host ghost: no network facts were gathered" in " ".join(missing["network_problems"])


def test_site_plan_refuses_anything_but_settings():
    with pytest.raises(AnsibleFilterError, match="must be the mapping of the site's settings"):
        FILTERS["site_plan"](["x"], {})


def observed(ping=1, status=200, vip_held=False):
    out = hostvars()
    for host, address in (("n1", "10.1.0.11"), ("n2", "10.1.0.12")):
        out[host]["_preflight_observation"] = {"vip_ping_rc": str(ping), "check_status": status}
    if vip_held:
        out["n1"]["ansible_facts"] = facts("10.1.0.11", vip="10.1.0.100")
    return out


NODES_OK = {"resources": [{"metadata": {"name": "n1"}}, {"metadata": {"name": "n2"}}]}
DEPLOYED = {"resources": [{"metadata": {"name": "cloudcore"}}]}


def test_preflight_report_of_a_good_site_is_empty():
    site = FILTERS["site_plan"](settings(), observed())
    assert FILTERS["preflight_report"](site, observed(), NODES_OK, DEPLOYED) == []


def test_preflight_report_adds_the_observations():
    hosts = observed(ping=0, status=-1)
    site = FILTERS["site_plan"](settings(), hosts)
    report = FILTERS["preflight_report"](site, hosts, {"failed": True, "msg": "connection refused\nmore"}, None)
    assert any("answers pings from n1, n2, but no host of the cloudcore group holds it" in m for m in report)
    assert any(m.startswith("cloudcore_kubeconfig='~/.kube/config': the cluster cannot be reached with it (context"
                            " current): connection refused") for m in report)
    # a skipped cluster read (preflight_check_cluster false) is no observation
    assert not any("cluster" in m for m in FILTERS["preflight_report"](site, hosts, {"skipped": True}, None))


def test_preflight_report_puts_the_plans_problems_first_and_alone():
    site = FILTERS["site_plan"](settings(cloudcore_vrrp_router_id=0), observed(ping=0))
    assert FILTERS["preflight_report"](site, observed(ping=0), NODES_OK, DEPLOYED) == [
        "cloudcore_vrrp_router_id=0: must be 1..255 (VRRP's 8-bit router id, unique on the L2 segment)"]


def test_preflight_report_refuses_anything_but_the_plan():
    with pytest.raises(AnsibleFilterError, match=r"must be the site plan \(cloudcore_site\)"):
        FILTERS["preflight_report"]({"hosts": []}, {})
