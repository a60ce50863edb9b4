# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sites for the plan's tests: the settings every role's defaults give, plus facts shaped like Ansible's."""

from __future__ import annotations

import glob
import os

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def role_defaults():
    """Every role's defaults/main.yml, merged: the values the site plan sees when the inventory sets nothing."""
    merged = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml"))):
        with open(path) as handle:
            merged.update(yaml.safe_load(handle) or {})
    return merged


def settings(**changes):
    """A valid two-node site (n1, n2 on 10.1.0.0/24, VIP 10.1.0.100/24) with the roles' defaults."""
    values = role_defaults()
    values.update({"cloudcore_hosts": ["n1", "n2"], "cloudcore_vip": "10.1.0.100/24", "cloudcore_vrrp_router_id": 51,
                   "cloudcore_vrrp_auth_pass": None})
    values.update(changes)
    return values


def facts(address, vip=None, interface="eth0", ipv6=None, prefix=24):
    """Gathered network facts of one host: lo and `interface` with `address` (and the VIP as a secondary)."""
    details = {"ipv4": {"address": address, "prefix": str(prefix)}, "ipv6": []}
    if vip:
        details["ipv4_secondaries"] = [{"address": vip, "prefix": str(prefix)}]
    if ipv6:
        details["ipv6"] = [{"address": ipv6, "prefix": "64", "scope": "global"},
                           {"address": "fe80::1", "prefix": "64", "scope": "link"}]
    return {"interfaces": ["lo", interface], interface: details,
            "lo": {"ipv4": {"address": "127.0.0.1", "prefix": "8"}, "ipv6": []}}


def hostvars(**per_host):
    """hostvars of n1 (10.1.0.11) and n2 (10.1.0.12); keyword arguments add or replace host variables."""
    out = {"n1": {"ansible_facts": facts("10.1.0.11")}, "n2": {"ansible_facts": facts("10.1.0.12")}}
    for host, variables in per_host.items():
        out.setdefault(host, {}).update(variables)
    return out
