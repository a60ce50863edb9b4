# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.vrrp_endpoints, cloudcore.ha.vip_holders and cloudcore.ha.rolling_order."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_vip
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import (
    rolling_order,
    vip_holders,
    vrrp_endpoint,
    with_peers,
)


def _hostvars(hostvars, host):
    try:
        return hostvars[host]
    except KeyError:
        raise AnsibleFilterError("host %s is in the cloudcore group but not in hostvars" % host)


def vrrp_endpoints_filter(hostvars, hosts, vip):
    """Thin adapter: see _topology.vrrp_endpoint (cloudcore_vrrp_interface from each host's vars)."""
    try:
        parsed = parse_vip(vip)
        endpoints = [vrrp_endpoint(host, _hostvars(hostvars, host).get("ansible_facts") or {}, parsed,
                                   _hostvars(hostvars, host).get("cloudcore_vrrp_interface") or None)
                     for host in hosts]
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.vrrp_endpoints: %s" % error)
    return {host: endpoint.as_dict() for host, endpoint in with_peers(endpoints).items()}


def vip_holders_filter(hostvars, hosts, vip):
    """Thin adapter: see _topology.vip_holders."""
    try:
        return vip_holders(hostvars, list(hosts), vip)
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.vip_holders: %s" % error)


def rolling_order_filter(hostvars, hosts, vip, changed=None, unit=None):
    """Thin adapter: see _topology.rolling_order."""
    try:
        return rolling_order(hostvars, list(hosts), vip, changed, unit)
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.rolling_order: %s" % error)


class FilterModule:
    def filters(self):
        return {"vrrp_endpoints": vrrp_endpoints_filter, "vip_holders": vip_holders_filter,
                "rolling_order": rolling_order_filter}
