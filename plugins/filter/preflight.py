# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter cloudcore.ha.preflight_problems (docs in preflight_problems.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import preflight_problems as _preflight_problems


def preflight_problems(inputs):
    if not isinstance(inputs, dict):
        raise AnsibleFilterError(
            "cloudcore.ha.preflight_problems: input must be a mapping of the inputs to check"
            " (cloudcore_vip, interface_addresses, ...), got %s" % type(inputs).__name__)
    return [problem.as_dict() for problem in _preflight_problems(inputs)]


class FilterModule(object):
    def filters(self):
        return {"preflight_problems": preflight_problems}
