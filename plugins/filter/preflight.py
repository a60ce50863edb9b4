# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.preflight_problems and cloudcore.ha.preflight_report (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import (
    ClusterObservation,
    NodeObservation,
    preflight_problems as _preflight_problems,
    site_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp import FAILOVER_MODES, VrrpPlanError, plan_priorities


def preflight_problems(inputs):
    if not isinstance(inputs, dict):
        raise AnsibleFilterError(
            "cloudcore.ha.preflight_problems: input must be a mapping of the inputs to check"
            " (cloudcore_vip, interface_addresses, ...), got %s" % type(inputs).__name__)
    return [problem.as_dict() for problem in _preflight_problems(inputs)]


def _int_or_none(value):
    # Registered values arrive as ints, or as text when Jinja's native types are off (ansible-core < 2.19).
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _cluster(nodes_result, deployment_result):
    """Maps kubernetes.core.k8s_info results (registered with failed_when: false) to what preflight needs."""
    if not nodes_result:
        return None
    if nodes_result.get("failed") or "resources" not in nodes_result:
        first_line = (str(nodes_result.get("msg") or "no answer").splitlines() or ["no answer"])[0]
        return ClusterObservation(reachable=False, error=first_line[:300])
    names = tuple(item.get("metadata", {}).get("name", "") for item in nodes_result["resources"])
    deployed = bool((deployment_result or {}).get("resources"))
    return ClusterObservation(reachable=True, node_names=names, cloudcore_deployed=deployed)


def preflight_report(hostvars, hosts, settings, cluster_nodes=None, cloudcore_deployment=None,
                     allow_unhealthy_cloudcore=False):
    """Thin adapter over _preflight.site_problems; returns the problems' one-line messages."""
    nodes = []
    for host in hosts:
        host_vars = hostvars[host]
        observation = host_vars.get("_preflight_observation") or {}
        nodes.append(NodeObservation(
            host=host,
            node_name=str(observation.get("node_name") or host),
            facts=dict(host_vars.get("ansible_facts") or {}),
            vrrp_interface=host_vars.get("cloudcore_vrrp_interface"),
            vip_ping_rc=_int_or_none(observation.get("vip_ping_rc")),
            check_status=_int_or_none(observation.get("check_status")),
        ))
    priority_problem = None
    failover = settings.get("cloudcore_failover", "fault")
    if failover in FAILOVER_MODES:  # an unknown mode is reported once, by the general checks
        try:
            plan_priorities(settings.get("keepalived_priorities") or list(hosts), failover,
                            settings.get("keepalived_check_weight"))
        except VrrpPlanError as error:
            priority_problem = str(error)
    problems = site_problems(settings, nodes, _cluster(cluster_nodes, cloudcore_deployment),
                             priority_problem=priority_problem,
                             allow_unhealthy_cloudcore=bool(allow_unhealthy_cloudcore))
    return [problem.msg for problem in problems]


class FilterModule(object):
    def filters(self):
        return {"preflight_problems": preflight_problems, "preflight_report": preflight_report}
