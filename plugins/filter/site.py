# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.site_plan and cloudcore.ha.preflight_report (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import (
    cluster_observation,
    node_observations,
    pki_observation,
    preflight_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._site import site_plan as _site_plan


def site_plan(settings, hostvars):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("cloudcore.ha.site_plan: the input must be the mapping of the site's settings"
                                 " (variable name to value), got %s" % type(settings).__name__)
    return _site_plan(settings, hostvars)


def preflight_report(site, hostvars, cluster_nodes=None, cloudcore_deployment=None, pki=None):
    if not isinstance(site, dict) or "problems" not in site:
        raise AnsibleFilterError("cloudcore.ha.preflight_report: the input must be the site plan"
                                 " (cloudcore_site), got %s" % type(site).__name__)
    hosts = [host for host in site.get("group") or site.get("hosts") or [] if host in hostvars]
    return preflight_problems(site, node_observations(hostvars, hosts),
                              cluster_observation(cluster_nodes, cloudcore_deployment), pki_observation(pki))


class FilterModule(object):
    def filters(self):
        return {"site_plan": site_plan, "preflight_report": preflight_report}
