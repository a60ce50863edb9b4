#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_listeners
short_description: Check which of balanced mode's haproxy ports are bound, and by whom
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Reads the node's listening TCP sockets (C(ss -Hltnp)) and compares them with the ports the haproxy.cfg
    model in O(config) binds (public, peers and monitor ports), because haproxy's config test does not
    bind - a port another process holds passes it, and a reload whose new worker could not bind a port
    keeps the old worker and still exits 0.
  - O(expect=free) fails when a port is held by a process other than haproxy and O(allowed) (preflight,
    and before the first start). O(expect=bound) waits up to O(wait_seconds) until haproxy holds every
    port, and fails naming the ports it does not hold (after a start or reload). O(expect=any) only reports.
  - Changes nothing; runs in check mode too.
options:
  config:
    description: The node's haproxy.cfg model, as for M(cloudcore.ha.haproxy_config) (only the ports and the bind address matter).
    type: dict
    required: true
  expect:
    description: What the ports must be.
    type: str
    choices: [free, bound, any]
    default: any
  allowed:
    description:
      - Process names that may hold the ports besides haproxy when O(expect=free) - e.g. C(cloudcore), which
        holds the public ports until balanced mode moves it to the internal ones.
    type: list
    elements: str
    default: []
  wait_seconds:
    description: With O(expect=bound), how long to wait for haproxy to hold every port.
    type: float
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Needs root (C(become)) for C(ss) to name the processes; a socket whose owner it cannot name counts as a conflict.
"""

EXAMPLES = r"""
- name: Refuse ports another service holds
  cloudcore.ha.haproxy_listeners:
    config: "{{ cloudcore_site.host[inventory_hostname].haproxy_conf }}"
    expect: free
    allowed: [cloudcore]

- name: Wait until haproxy holds every port
  cloudcore.ha.haproxy_listeners:
    config: "{{ cloudcore_site.host[inventory_hostname].haproxy_conf }}"
    expect: bound
    wait_seconds: 60
"""

RETURN = r"""
conflicts:
  description: The ports held by a process that is neither haproxy nor in O(allowed), as sentences.
  returned: always
  type: list
  elements: str
unbound:
  description: The ports haproxy does not hold (C(purpose address:port)).
  returned: always
  type: list
  elements: str
bound:
  description:
    - The ports haproxy holds (C(purpose address:port)). Empty for a haproxy that runs without serving
      (the package's own start on its default configuration, or a reload that could not bind).
  returned: always
  type: list
  elements: str
serving:
  description:
    - Whether haproxy holds any of its ports. A running haproxy that does not serves no edge, so the balancer
      role restarts it (systemd then retries until it can bind) instead of reloading it.
  returned: always
  type: bool
holders:
  description: For each port, the processes listening on it (C(port) -> list of names).
  returned: always
  type: dict
waited:
  description: Seconds spent waiting for O(expect=bound).
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import (
    HaproxyConfigError,
    bind_ports,
    config_problems,
    from_options,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_test import (
    LISTENERS_COMMAND,
    bind_conflicts,
    bound_ports,
    parse_listeners,
    unbound_ports,
)

POLL_SECONDS = 0.5


def _listeners(module):
    binary = module.get_bin_path(LISTENERS_COMMAND[0], required=True, opt_dirs=["/usr/sbin", "/sbin"])
    rc, out, err = module.run_command([binary] + LISTENERS_COMMAND[1:], check_rc=False)
    if rc != 0:
        module.fail_json(msg="%s failed (exit %d): %s" % (" ".join(LISTENERS_COMMAND), rc, err.strip()))
    return out


def _report(text, config, allowed):
    ports = {port for _purpose, _address, port in bind_ports(config)}
    bound = bound_ports(text, config)
    holders = {}
    for listener in parse_listeners(text):
        if listener.port in ports:
            holders.setdefault(str(listener.port), [])
            holders[str(listener.port)] += [name for name, _pid in listener.processes
                                            if name not in holders[str(listener.port)]]
    return dict(conflicts=[c.msg for c in bind_conflicts(text, config, ("haproxy",) + tuple(allowed))],
                unbound=["%s %s:%d" % item for item in unbound_ports(text, config)],
                bound=["%s %s:%d" % item for item in bound], serving=bool(bound), holders=holders)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            expect=dict(type="str", choices=["free", "bound", "any"], default="any"),
            allowed=dict(type="list", elements="str", default=[]),
            wait_seconds=dict(type="float", default=0),
        ),
        supports_check_mode=True,
    )
    config = from_options(module.params["config"])
    problems = config_problems(config)
    if problems:
        module.fail_json(msg="invalid haproxy_listeners input: " + str(HaproxyConfigError(problems)))
    expect = module.params["expect"]
    started = time.monotonic()
    deadline = started + max(module.params["wait_seconds"], 0)
    while True:
        report = _report(_listeners(module), config, module.params["allowed"])
        if expect != "bound" or not report["unbound"] or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    report["waited"] = round(time.monotonic() - started, 1)
    if expect == "free" and report["conflicts"]:
        module.fail_json(msg="haproxy's ports are taken: " + "; ".join(report["conflicts"]), **report)
    if expect == "bound" and report["unbound"]:
        module.fail_json(msg="haproxy does not hold %s after %.1f s (held by: %s); see journalctl -u haproxy"
                             % (", ".join(report["unbound"]), report["waited"], report["holders"] or "nobody"),
                         **report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
