# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.vrrp_priorities and cloudcore.ha.vrrp_failover_proof (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._failover import (
    failover_proof_text,
    vrrp_failover_proof as _vrrp_failover_proof,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import vrrp_priorities as _vrrp_priorities


def vrrp_priorities(hosts, failover="fault", weight=None):
    try:
        return _vrrp_priorities(hosts, failover=failover, weight=weight)
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.vrrp_priorities: %s" % error)


def vrrp_failover_proof(plan, format="rows"):  # pylint: disable=redefined-builtin
    if format not in ("rows", "text"):
        raise AnsibleFilterError("cloudcore.ha.vrrp_failover_proof: format=%r is unknown: use 'rows' or 'text'"
                                 % (format,))
    try:
        return failover_proof_text(plan) if format == "text" else _vrrp_failover_proof(plan)
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.vrrp_failover_proof: %s" % error)


class FilterModule(object):
    def filters(self):
        return {
            "vrrp_priorities": vrrp_priorities,
            "vrrp_failover_proof": vrrp_failover_proof,
        }
