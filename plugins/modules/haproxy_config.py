#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_config
short_description: Render, validate and write haproxy.cfg for balanced CloudCore
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Renders the haproxy configuration of one CloudCore node in balanced mode from the haproxy.cfg
    model in O(config) - haproxy in TCP mode on CloudCore's public ports (websocket 10000, https 10002,
    tunnel 10004), CloudCore on internal ports, each edge's websocket and tunnel connection paired on
    one CloudCore, a monitor endpoint for keepalived's check.
  - "Pairing: both paired backends C(stick on src) in one stick table shared with every node through
    a C(peers) section, C(balance source) with C(hash-type consistent) underneath for connections that
    race each other, one health decision (C(GET /ca.crt) over TLS on CloudCore's https port, tracked
    by the websocket and tunnel servers) and C(on-marked-down shutdown-sessions), so that a failed
    CloudCore's edges re-pair together elsewhere."
  - Runs haproxy's own config test (C(haproxy -dW -c -f), warnings are errors) on the rendered text
    B(before) writing, also in check mode, so C(--check) fails on a configuration the daemon would
    reject, and a rejected configuration never replaces the one in use.
  - Writes the file only when its content differs, atomically, owned by root with mode 0640.
  - Input that breaks a rule (a port used twice, fewer than two CloudCore nodes, duplicate server ids,
    mixed address families, this node missing from the peers, ...) fails with a message naming the
    option, the value and the rule; every problem at once.
  - QUIC (UDP 10001) is not proxied (haproxy's TCP mode is TCP only); it stays with the CloudCore of
    the VIP holder.
options:
  path:
    description: The configuration file to write.
    type: path
    default: /etc/haproxy/haproxy.cfg
  backup:
    description: Keep a timestamped copy of the previous file when it changes.
    type: bool
    default: false
  config:
    description: The haproxy.cfg model (one field per option below).
    type: dict
    required: true
    suboptions:
      node:
        description:
          - This node's name, the local peer name (C(localpeer)); one of O(config.peers) (or of
            O(config.cloudcores) when O(config.peers) is empty).
        type: str
        required: true
      cloudcores:
        description:
          - Every CloudCore node, as the backend servers (2..16). Every node's haproxy.cfg must list them
            with the same names and ids, because the shared stick table stores server ids.
        type: list
        elements: dict
        required: true
        suboptions:
          name:
            description: The server's name, e.g. the host name (letters, digits, C(_ . -)).
            type: str
            required: true
          id:
            description: The server's numeric id, stable across nodes and runs (e.g. from the preference order).
            type: int
            required: true
          address:
            description: The node's IPv4 or IPv6 address, where CloudCore listens on its internal ports.
            type: str
            required: true
      peers:
        description:
          - The haproxy nodes that share the pairing table. Empty means every CloudCore node (haproxy runs
            beside each CloudCore); the peer names must include O(config.node).
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: The peer's name (its C(localpeer) name in its own haproxy.cfg).
            type: str
            required: true
          address:
            description: The peer's address; it listens on O(config.peers_port) there.
            type: str
            required: true
      bind_address:
        description:
          - The address the public ports bind. Default is every address of the CloudCore nodes' family
            (C(0.0.0.0), or C(::) with C(v4v6) for IPv6), so the ports follow the VIP without
            C(ip_nonlocal_bind).
        type: str
      websocket_port:
        description: CloudCore's public websocket port (CloudHub), which haproxy binds.
        type: int
        default: 10000
      https_port:
        description: CloudCore's public https port, which haproxy binds.
        type: int
        default: 10002
      tunnel_port:
        description: CloudCore's public tunnel port, which haproxy binds.
        type: int
        default: 10004
      internal_websocket_port:
        description: The websocket port CloudCore listens on in balanced mode.
        type: int
        default: 10100
      internal_https_port:
        description: The https port CloudCore listens on in balanced mode; the health check runs there.
        type: int
        default: 10102
      internal_tunnel_port:
        description: The tunnel port CloudCore listens on in balanced mode.
        type: int
        default: 10104
      peers_port:
        description: The port of the peers protocol on every node (between the nodes; let it through the firewall).
        type: int
        default: 10110
      monitor_address:
        description: The loopback address of the monitor endpoint.
        type: str
        default: 127.0.0.1
      monitor_port:
        description: The port of the monitor endpoint.
        type: int
        default: 10111
      monitor_uri:
        description:
          - The monitor endpoint's path - C(200) while at least one CloudCore is healthy, C(503) when
            none is; keepalived's check fetches it.
        type: str
        default: /healthz
      reserved_ports:
        description: Ports none of the ports above may use (CloudCore's others - metrics, router, QUIC, stream).
        type: list
        elements: int
        default: [9091, 9443, 10001, 10003]
      check_path:
        description: What the health check fetches (C(GET) over TLS on O(config.internal_https_port)); 200 is healthy.
        type: str
        default: /ca.crt
      ca_file:
        description:
          - The cluster CA on the node; the health check verifies CloudCore's certificate chain against it
            (not its names - CloudCore's certificate names the VIP). Without it the check does not verify.
        type: str
      check_interval:
        description: Seconds between two health checks (milliseconds allowed).
        type: float
        default: 1
      check_timeout:
        description: Seconds a health check may take.
        type: float
        default: 1
      check_fall:
        description: Consecutive failed checks before a CloudCore is marked down and its sessions are closed.
        type: int
        default: 2
      check_rise:
        description: Consecutive passed checks before it is up again.
        type: int
        default: 2
      stick_table_size:
        description: Entries of the pairing table (one per edge source address, about 50 bytes each).
        type: int
        default: 100000
      stick_expire:
        description:
          - Seconds a pairing entry lives after its edge's last connection closed (an entry does not expire
            while a session uses it). At least O(config.hard_stop_after).
        type: float
        default: 14400
      hard_stop_after:
        description:
          - Seconds an old worker keeps its established sessions after a reload; then they are closed and the
            edges reconnect to the new worker.
        type: float
        default: 3600
      timeout_connect:
        description: Seconds to connect to a CloudCore.
        type: float
        default: 5
      timeout_client:
        description: Idle seconds on both sides before a connection is established as a tunnel (and on the https port).
        type: float
        default: 60
      timeout_tunnel:
        description:
          - Idle seconds of an established websocket or tunnel session. Must exceed 30 (CloudCore's keepalive
            timeout; edges send a heartbeat every 15 s).
        type: float
        default: 3600
      maxconn:
        description:
          - Concurrent connections haproxy accepts; every edge holds two (websocket and tunnel).
          - Default (null) lets haproxy derive it from the file descriptor limit (half the hard limit, about
            262000 under systemd's default C(LimitNOFILE=524288)). A value needs about twice as many
            descriptors, or haproxy refuses to start - which its config test cannot tell.
        type: int
      stats_socket:
        description: The admin socket (C(expose-fd listeners), so a reload takes over the listening sockets).
        type: str
        default: /run/haproxy/admin.sock
      user:
        description: The user the worker runs as; an empty string omits it (the master's user, root).
        type: str
        default: haproxy
      group:
        description: The group the worker runs as; an empty string omits it.
        type: str
        default: haproxy
      chroot:
        description: The directory the worker chroots to; an empty string omits it.
        type: str
        default: /var/lib/haproxy
      log_socket:
        description: The syslog socket haproxy logs to (facility local0); an empty string turns logging off.
        type: str
        default: /dev/log
  ca_certificate:
    description:
      - The CA certificate (PEM) the health checks verify CloudCore against, written to O(config.ca_file)
        (mode 0644, atomically, with a diff; its directory is created) before haproxy.cfg. The config test reads this text, not the
        file, so C(--check) validates a configuration whose CA file does not exist yet.
      - Omitted, the module leaves O(config.ca_file) alone; the file must then exist for the config test.
    type: str
  haproxy_binary:
    description: The haproxy executable, looked up in PATH and the sbin directories.
    type: str
    default: haproxy
  validate:
    description:
      - Run haproxy's config test before writing. Without haproxy installed this fails in a real run; in
        check mode it only warns.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The config test runs in check mode too.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
notes:
  - The config test needs what the daemon reads at start (the CA file, the user and group), but it does
    not bind, so a port another process holds passes it. Check the ports before the first start (C(ss -Hltnp);
    CloudCore must have moved to its internal ports), and after a reload that they are bound by haproxy.
  - The module does not reload haproxy. Reload when it reports a change; a reload hands the pairing table
    to the new worker, and the old worker keeps its sessions for O(config.hard_stop_after).
seealso:
  - name: HAProxy configuration manual
    description: haproxy's configuration.txt (stick tables, peers, track, on-marked-down, monitor-uri).
    link: https://docs.haproxy.org/2.6/configuration.html
"""

EXAMPLES = r"""
- name: Write haproxy.cfg for balanced mode (three CloudCore nodes, ids from the preference order)
  cloudcore.ha.haproxy_config:
    config:
      node: "{{ inventory_hostname }}"
      cloudcores:
        - {name: node1, id: 1, address: 10.10.102.11}
        - {name: node2, id: 2, address: 10.10.102.12}
        - {name: node3, id: 3, address: 10.10.102.13}
      ca_file: /etc/kubeedge/ca/rootCA.crt
  register: haproxy_cfg

- name: IPv6, custom internal ports, no CA file (the check does not verify)
  cloudcore.ha.haproxy_config:
    path: /etc/haproxy/haproxy.cfg
    backup: true
    config:
      node: cc-a
      cloudcores:
        - {name: cc-a, id: 1, address: "fd00::11"}
        - {name: cc-b, id: 2, address: "fd00::12"}
      internal_websocket_port: 20000
      internal_https_port: 20002
      internal_tunnel_port: 20004
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/haproxy/haproxy.cfg
checksum:
  description: SHA-1 of the rendered configuration.
  returned: always
  type: str
  sample: 6e642bb8dd5c2e027bf21dd923337cbb4214f827
validated:
  description: Whether haproxy's config test ran and passed.
  returned: always
  type: bool
  sample: true
backup_file:
  description: The backup of the previous file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/haproxy/haproxy.cfg.12345.2026-01-01@00:00:00~
ca_changed:
  description: Whether the CA file was (or, in check mode, would be) written.
  returned: always
  type: bool
  sample: false
haproxy_version:
  description: The first line of C(haproxy -v) on the host, so a play learns the version without a task of its own.
  returned: when the haproxy binary was found
  type: str
  sample: HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/
"""

import dataclasses
import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import (
    HaproxyConfigError,
    from_options,
    option_spec,
    render_haproxy_cfg,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_test import haproxy_config_test, version_line

_SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _command_runner(module):
    """haproxy writes its findings to stderr and its verdict to stdout: the caller wants both."""
    def run(argv):
        rc, out, err = module.run_command(argv, check_rc=False)
        return rc, (err or "") + (out or "")
    return run


def _validate(module, text, path, result):
    """haproxy's config test on the rendered text: fails the module when haproxy rejects it."""
    binary = module.get_bin_path(module.params["haproxy_binary"], required=False, opt_dirs=_SBIN)
    if binary is None:
        message = ("haproxy_binary=%r: not found in PATH or %s, so the config test cannot run; install haproxy"
                   " first, or set validate=false to write without testing"
                   % (module.params["haproxy_binary"], ", ".join(_SBIN)))
        if module.check_mode:
            module.warn(message + " (check mode: the configuration was NOT validated)")
            return
        module.fail_json(msg=message, **result)
    rc, out = _command_runner(module)([binary, "-v"])
    result["haproxy_version"] = version_line(out) or "unknown (exit %d)" % rc
    outcome = haproxy_config_test(text, run=_command_runner(module), haproxy=binary)
    if not outcome.ok:
        module.fail_json(msg="haproxy rejected the rendered configuration for %s (%s -dW -c -f, exit %d):\n%s"
                             % (path, binary, outcome.returncode, outcome.output),
                         rc=outcome.returncode, **result)
    result["validated"] = True


def _write(module, path, content, result, mode=0o640, backup=None, make_directory=False):
    directory = os.path.dirname(path) or "."
    if make_directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    if not os.path.isdir(directory):
        module.fail_json(msg="path=%r: directory %s does not exist (is haproxy installed?)" % (path, directory),
                         **result)
    if (module.params["backup"] if backup is None else backup) and os.path.exists(path):
        result["backup_file"] = module.backup_local(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        module.atomic_move(tmp, path, unsafe_writes=False)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/haproxy/haproxy.cfg"),
            backup=dict(type="bool", default=False),
            config=dict(type="dict", required=True, options=option_spec()),
            ca_certificate=dict(type="str"),
            haproxy_binary=dict(type="str", default="haproxy"),
            validate=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    ca_pem = module.params["ca_certificate"]
    try:
        config = from_options(module.params["config"])
        text = render_haproxy_cfg(config)
    except HaproxyConfigError as exc:
        module.fail_json(
            msg="invalid haproxy_config input: " + "; ".join(
                "option %s=%r: %s" % (problem.variable, problem.value, problem.rule) for problem in exc.problems),
            problems=[dict(option=problem.variable, value=problem.value, rule=problem.rule) for problem in exc.problems],
            path=path)

    content = to_bytes(text)
    result = dict(changed=False, path=path, checksum=hashlib.sha1(content).hexdigest(), validated=False,
                  ca_changed=False)
    if ca_pem is not None and not config.ca_file:
        module.fail_json(msg="ca_certificate is set but config.ca_file is empty: the certificate needs a path",
                         **result)
    if ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in ca_pem:
        module.fail_json(msg="ca_certificate: not a PEM certificate (no BEGIN CERTIFICATE line)", **result)
    if module.params["validate"]:
        with tempfile.TemporaryDirectory(prefix="cloudcore-ha-ca-") as tmpdir:
            tested = text
            if ca_pem is not None:
                # the config test reads the CA the file will hold, also before the file exists
                ca_copy = os.path.join(tmpdir, "ca.crt")
                with open(ca_copy, "w") as handle:
                    handle.write(ca_pem)
                tested = render_haproxy_cfg(dataclasses.replace(config, ca_file=ca_copy))
            _validate(module, tested, path, result)

    diffs = []
    if ca_pem is not None:
        ca_content = to_bytes(ca_pem if ca_pem.endswith("\n") else ca_pem + "\n")
        ca_before = _read(config.ca_file)
        if ca_before != ca_content:
            result["ca_changed"] = result["changed"] = True
            diffs.append(dict(before_header=config.ca_file, after_header=config.ca_file,
                              before=to_native(ca_before or b""), after=to_native(ca_content)))
            if not module.check_mode:
                _write(module, config.ca_file, ca_content, result, mode=0o644, backup=False, make_directory=True)

    before = _read(path)
    changed = before != content
    result["changed"] = result["changed"] or changed
    if changed:
        diffs.append(dict(before_header=path, after_header=path,
                          before=to_native(before or b"", errors="surrogate_or_strict"), after=text))
    if diffs and module._diff:
        result["diff"] = diffs
    if changed and not module.check_mode:
        _write(module, path, content, result)
    if os.path.exists(path) or (changed and not module.check_mode):
        # atomic_move copies the old file's mode and owner: enforce ours (in check mode this only
        # reports whether they differ)
        file_args = module.load_file_common_arguments(dict(
            path=path, mode="0640", owner="root" if os.geteuid() == 0 else None))
        if module.set_fs_attributes_if_different(file_args, False):
            result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
