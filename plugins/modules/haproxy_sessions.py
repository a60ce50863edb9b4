#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_sessions
short_description: The edges each CloudCore gets through this node's haproxy, old workers included
version_added: 0.2.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Asks haproxy's master CLI for every worker (C(show proc)) and each worker for its statistics
    (C(@!<pid> show stat)), and sums the current sessions per server of one backend - by default the
    websocket backend of balanced mode, one session per edge.
  - A reload leaves the established sessions to the old worker, whose statistics the new worker does not
    show; summing over every worker counts what the CloudCores really serve.
  - Reads only; runs in check mode too.
options:
  master_socket:
    description: haproxy's master CLI socket (Debian's unit starts haproxy with C(-S /run/haproxy-master.sock)).
    type: path
    default: /run/haproxy-master.sock
  backend:
    description: The backend whose sessions to count.
    type: str
    default: cloudcore_websocket
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 3
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
"""

EXAMPLES = r"""
- name: Count the edges per CloudCore on the VIP holder
  cloudcore.ha.haproxy_sessions:
  register: sessions
"""

RETURN = r"""
sessions:
  description: Current sessions per server, summed over every worker.
  returned: always
  type: dict
  sample: {ccha-node1: 102, ccha-node2: 94, ccha-node3: 104}
workers:
  description: Each worker's pid, C(current) or C(old), and its own sessions per server.
  returned: always
  type: list
  elements: dict
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_stats import (
    backend_sessions,
    total_sessions,
    workers,
)


def ask(path, command, timeout):
    """One command on the master CLI. `;quit` makes the master close the connection after the answer
    (without it haproxy 2.6 keeps a non-interactive connection open)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(path)
        connection.sendall(command.encode("ascii") + b";quit\n")
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        connection.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            master_socket=dict(type="path", default="/run/haproxy-master.sock"),
            backend=dict(type="str", default="cloudcore_websocket"),
            timeout=dict(type="float", default=3),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        found = workers(ask(p["master_socket"], "show proc", p["timeout"]))
        per_worker = {pid: backend_sessions(ask(p["master_socket"], "@!%d show stat" % pid, p["timeout"]), p["backend"])
                      for pid, _kind in found}
    except (OSError, socket.timeout) as error:
        module.fail_json(msg="master_socket=%r: haproxy's master CLI does not answer (%s); is haproxy running"
                             " with -S %s?" % (p["master_socket"], error, p["master_socket"]))
    module.exit_json(changed=False, sessions=total_sessions(per_worker),
                     workers=[dict(pid=pid, kind=kind, sessions=per_worker[pid]) for pid, kind in found])


if __name__ == "__main__":
    main()
