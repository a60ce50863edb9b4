# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._topology import (
    TopologyError,
    rolling_order,
    vip_holders,
    vrrp_endpoints,
)


def vrrp_endpoints_filter(hostvars, hosts, vip):
    """Thin adapter: see _topology.vrrp_endpoints."""
    try:
        return {host: endpoint.as_dict() for host, endpoint in vrrp_endpoints(hostvars, list(hosts), vip).items()}
    except TopologyError as error:
        raise AnsibleFilterError(str(error))
    except KeyError as error:
        raise AnsibleFilterError("host %s is in the cloudcore group but not in hostvars" % error)


def vip_holders_filter(hostvars, hosts, vip):
    """Thin adapter: see _topology.vip_holders."""
    try:
        return vip_holders(hostvars, list(hosts), vip)
    except TopologyError as error:
        raise AnsibleFilterError(str(error))


def rolling_order_filter(hostvars, plan, vip, changed):
    """Thin adapter: see _topology.rolling_order."""
    try:
        return rolling_order(hostvars, plan, vip, changed)
    except TopologyError as error:
        raise AnsibleFilterError(str(error))


class FilterModule:
    def filters(self):
        return {"vrrp_endpoints": vrrp_endpoints_filter, "vip_holders": vip_holders_filter,
                "rolling_order": rolling_order_filter}
