# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.vrrp_priorities and cloudcore.ha.vrrp_failover_proof (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp import (
    VrrpPlanError,
    failover_proof_text,
    vrrp_failover_proof as _vrrp_failover_proof,
    vrrp_priorities as _vrrp_priorities,
)


def _filter_error(filter_name, exc):
    return AnsibleFilterError(
        "%s: %s (value: %r): %s" % (filter_name, exc.variable, exc.value, exc.rule))


def vrrp_priorities(hosts, failover="fault", weight=None):
    try:
        return _vrrp_priorities(hosts, failover=failover, weight=weight)
    except VrrpPlanError as exc:
        raise _filter_error("cloudcore.ha.vrrp_priorities", exc)


def vrrp_failover_proof(plan, format="rows"):  # pylint: disable=redefined-builtin
    try:
        if format == "text":
            return failover_proof_text(plan)
        if format != "rows":
            raise AnsibleFilterError(
                "cloudcore.ha.vrrp_failover_proof: format=%r is unknown: use 'rows' or 'text'" % (format,))
        return _vrrp_failover_proof(plan)
    except VrrpPlanError as exc:
        raise _filter_error("cloudcore.ha.vrrp_failover_proof", exc)


class FilterModule(object):
    def filters(self):
        return {
            "vrrp_priorities": vrrp_priorities,
            "vrrp_failover_proof": vrrp_failover_proof,
        }
