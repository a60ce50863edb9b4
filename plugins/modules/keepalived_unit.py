#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keepalived_unit
short_description: The health check, its user and keepalived's systemd unit, in one call, without starting keepalived
version_added: 0.2.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Ensures in one module call what keepalived's config test and systemd need before keepalived may
    start, so a converged node costs one remote call instead of five.
  - The health check script at O(script_path) with O(script_content), owned by root, mode 0755
    (keepalived's script security requires root-owned scripts in root-owned directories).
  - The unprivileged system user O(script_user) that runs it, with shell C(/usr/sbin/nologin) and home
    C(/nonexistent), not created (C(useradd) as M(ansible.builtin.user) runs it; an existing user keeps
    its uid and groups and only gets that shell and home, with C(usermod)).
  - The systemd drop-in O(dropin_path) with O(dropin_content), root's, mode 0644, its directory created;
    then C(systemctl daemon-reload) when the drop-in's content changed, or when systemd reports
    C(NeedDaemonReload=yes) for the unit.
  - The unit enabled (C(systemctl enable)) when it is not.
  - It never starts, stops or reloads the unit; it returns whether the unit is running in RV(active).
    The role cloudcore.ha.keepalived starts keepalived one node at a time, in preference order.
  - Fails before changing anything when the unit is masked, or, outside check mode, when systemd does
    not know it. Input that breaks a rule fails naming the option, the value and the rule.
options:
  unit:
    description: The systemd unit; C(.service) is implied.
    type: str
    default: keepalived
  script_path:
    description:
      - Where the health check goes, in an existing root-owned directory writable by root only.
      - The role passes C(cloudcore_site.check.script) (C(keepalived_script_dir)/check_cloudcore).
    type: path
    required: true
  script_content:
    description:
      - The script's text, starting with an interpreter line (C(#!)).
      - The role passes the bundled C(check_cloudcore) (C(lookup('ansible.builtin.file', 'check_cloudcore', rstrip=false))).
    type: str
    required: true
  script_user:
    description: The system user keepalived runs the script as (C(script_user) in keepalived.conf).
    type: str
    required: true
  dropin_path:
    description:
      - The drop-in file, a C(.conf) file in the directory C(UNIT.service.d).
      - Default C(/etc/systemd/system/UNIT.service.d/cloudcore-ha.conf).
    type: path
  dropin_content:
    description: The drop-in's text.
    type: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would change and changes nothing. On a node whose package is not installed yet the
        unit does not exist; check mode reports that in RV(notes) instead of failing.
  diff_mode:
    support: full
    details: One diff per changed item (the script, the user, the drop-in directory and file, the enablement).
  platform:
    support: full
    platforms: posix
notes:
  - Needs systemd (C(systemctl)), C(getent) and C(useradd)/C(usermod) on the node.
seealso:
  - module: cloudcore.ha.keepalived_config
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Install check_cloudcore, its user and keepalived's unit drop-in, and enable keepalived (what the role does)
  cloudcore.ha.keepalived_unit:
    script_path: /usr/local/sbin/check_cloudcore
    script_content: "{{ lookup('ansible.builtin.file', 'check_cloudcore', rstrip=false) }}"
    script_user: keepalived_script
    dropin_content: |
      # managed by cloudcore.ha
      [Service]
      Restart=on-failure
  register: unit

- name: Start keepalived where it is not running
  ansible.builtin.systemd_service:
    name: keepalived
    state: started
  when: not unit.active
"""

RETURN = r"""
unit:
  description: The full unit name.
  returned: always
  type: str
  sample: keepalived.service
active:
  description: Whether the unit was running (ActiveState active, activating or reloading); this module never starts it.
  returned: always
  type: bool
  sample: true
exists:
  description: Whether systemd knows the unit (false only in check mode, before its package is installed).
  returned: always
  type: bool
  sample: true
enabled:
  description: Whether the unit is enabled after this call (in check mode, would be).
  returned: always
  type: bool
  sample: true
state:
  description: The unit's ActiveState as found.
  returned: always
  type: str
  sample: active
daemon_reloaded:
  description: Whether systemd reloaded its units (in check mode, would).
  returned: always
  type: bool
  sample: false
changes:
  description: What changed (in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["the unit drop-in /etc/systemd/system/keepalived.service.d/cloudcore-ha.conf: content replaced",
           "systemd reloaded its units (the drop-in changed)"]
notes:
  description: Remarks, for example that the unit does not exist yet in check mode.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_unit import (
    Node,
    Outcome,
    UnitError,
    converge,
    result,
    unit_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", default="keepalived"),
            script_path=dict(type="path", required=True),
            script_content=dict(type="str", required=True),
            script_user=dict(type="str", required=True),
            dropin_path=dict(type="path"),
            dropin_content=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        spec = unit_spec(p["unit"], p["script_path"], p["script_content"], p["script_user"], p["dropin_path"],
                         p["dropin_content"])
    except InputError as error:
        module.fail_json(msg="invalid keepalived_unit input: %s" % error,
                         problems=[dict(option=error.variable, value=error.value, rule=error.rule)])
    outcome = Outcome(spec.unit)
    try:
        converge(Node(module), spec, outcome)
    except UnitError as error:
        # what was done before the failure is reported as done
        module.fail_json(msg="keepalived_unit: %s" % error, changed=outcome.changed, changes=outcome.changes)
    module.exit_json(**result(outcome, module._diff))


if __name__ == "__main__":
    main()
