# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.keepalived_state, cloudcore.ha.status_table and cloudcore.ha.drill_report."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._status import (
    drill_report as _drill_report,
    status_lines,
    vrrp_state_from_log,
)


def keepalived_state(log, instance=None):
    return vrrp_state_from_log(str(log or ""), instance)


def status_table(rows, certificate=None):
    if not isinstance(rows, list):
        raise AnsibleFilterError("cloudcore.ha.status_table: input must be a list of per-node rows, got %s"
                                 % type(rows).__name__)
    return status_lines(rows, certificate)


def _logs(hostvars, hosts, variable):
    """Each host's registered command output (stdout) under `variable`."""
    return {host: str((hostvars[host].get(variable) or {}).get("stdout", "")) for host in hosts}


def drill_report(hostvars, hosts, drained_at, old_holder, restored_at,
                 drain_log="_drill_log_after_drain", restore_log="_drill_log_after_restore"):
    try:
        return _drill_report(float(drained_at), _logs(hostvars, hosts, drain_log), str(old_holder),
                             float(restored_at), _logs(hostvars, hosts, restore_log))
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError("cloudcore.ha.drill_report: %s" % error)


class FilterModule(object):
    def filters(self):
        return {"keepalived_state": keepalived_state, "status_table": status_table, "drill_report": drill_report}
