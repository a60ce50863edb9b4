#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keepalived_config
short_description: Render, validate and write keepalived.conf for a CloudCore VIP
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Renders a keepalived configuration with one health-check script (C(vrrp_script)) and one VRRP
    instance holding the CloudCore VIP, from the keepalived.conf model in O(config).
  - Runs keepalived's own config test (C(keepalived -t -e -f)) on the rendered text B(before) writing,
    also in check mode, so C(--check) fails on a configuration the daemon would reject.
  - Writes the file only when its content differs, atomically, owned by root with mode 0640.
  - Input that breaks a rule (for example an O(auth_pass) longer than 8 characters, a fractional
    O(config.advert_int) with VRRPv2, or a VIP without prefix) fails with a message naming the option,
    the value and the rule.
  - "keepalived 2.2.7 kills itself during the config test when the script user is not root; the
    module runs the test as PID 1 of a new PID namespace (util-linux C(unshare)) to avoid that."
  - The role cloudcore.ha.keepalived passes each host's model from the site plan
    (C(cloudcore_site.host[inventory_hostname].keepalived_conf)).
options:
  path:
    description: The configuration file to write.
    type: path
    default: /etc/keepalived/keepalived.conf
  backup:
    description: Keep a timestamped copy of the previous file when it changes.
    type: bool
    default: false
  config:
    description: The keepalived.conf model (one field per option below).
    type: dict
    required: true
    suboptions:
      router_id:
        description: C(router_id) in C(global_defs); usually the inventory host name.
        type: str
        required: true
      check_script:
        description:
          - The health check command, an absolute path followed by arguments, for example
            C(/usr/local/sbin/check_cloudcore https://127.0.0.1:10002/ca.crt 0.8 /run/cloudcore-ha/drain).
          - The script must exist, be executable and live in root-owned directories.
        type: str
        required: true
      interface:
        description: Interface VRRP advertisements are sent on.
        type: str
        required: true
      virtual_router_id:
        description: VRID, 1..255, unique on the L2 segment.
        type: int
        required: true
      priority:
        description: Base priority 1..254 (255 is the address owner, which ignores the health check).
        type: int
        required: true
      vip:
        description: The virtual IP with prefix length, for example C(10.10.102.242/24) or C(fd00::100/64).
        type: str
        required: true
      script_user:
        description:
          - The user keepalived runs scripts as (C(enable_script_security) is always set). The user must
            exist for the config test to pass.
        type: str
        default: keepalived_script
      script_name:
        description: Name of the C(vrrp_script) block.
        type: str
        default: chk_cloudcore
      check_interval:
        description: Seconds between two checks (whole seconds with keepalived 2.2).
        type: float
        default: 1
      check_timeout:
        description: Seconds after which keepalived counts a running check as failed.
        type: float
        default: 1
      check_fall:
        description: Consecutive failures before the check counts as failed.
        type: int
        default: 2
      check_rise:
        description: Consecutive successes before the check counts as OK again.
        type: int
        default: 2
      check_weight:
        description:
          - Weight of the check; V(0) puts the node in FAULT when the check fails (failover mode C(fault)),
            a positive weight is added while OK, a negative one subtracted while failing (-253..253).
          - Use the filter P(cloudcore.ha.vrrp_priorities#filter) to choose weights and priorities that fail over.
        type: int
        default: 0
      instance_name:
        description: Name of the VRRP instance.
        type: str
        default: CLOUDCORE
      state:
        description: Initial state of the instance.
        type: str
        choices: [MASTER, BACKUP]
        default: BACKUP
      advert_int:
        description: Seconds between advertisements; whole seconds with VRRPv2, 10 ms steps with VRRPv3.
        type: float
        default: 1
      vrrp_version:
        description:
          - VRRP version. Default is V(3) for an IPv6 VIP or a sub-second O(config.advert_int), else V(2).
        type: int
        choices: [2, 3]
      nopreempt:
        description: Do not take the VIP from a live lower-priority master (needs O(config.state=BACKUP)).
        type: bool
        default: false
      preempt_delay:
        description: Seconds to wait before preempting (not with O(config.nopreempt)).
        type: int
      multicast_group:
        description: Multicast group for advertisements instead of the default 224.0.0.18 / ff02::12.
        type: str
      unicast_src_ip:
        description: Source address for unicast advertisements (this node's address).
        type: str
      unicast_peers:
        description: Addresses of the other nodes; when set, advertisements are unicast to them.
        type: list
        elements: str
        default: []
      vip_dev:
        description: Interface the VIP is added to. Default is O(config.interface).
        type: str
      notify_script:
        description: Script keepalived runs on every state change (absolute path plus arguments).
        type: str
      extra_vips:
        description:
          - More addresses of the VIP's family the instance holds with the VIP, with prefix (a VIP change - the
            previous VIP, which edges still use).
        type: list
        elements: str
        default: []
        version_added: 0.2.0
  auth_pass:
    description:
      - VRRP PASS authentication secret, at most 8 characters (keepalived silently truncates longer
        ones; this module refuses them). VRRPv2 only. Masked in diffs, never logged.
      - Kept out of O(config) so that the model (and the site plan it comes from) holds no secret.
    type: str
  keepalived_binary:
    description: The keepalived executable, looked up in PATH and the sbin directories.
    type: str
    default: keepalived
  validate:
    description:
      - Run keepalived's config test before writing. Without keepalived installed this fails in a
        real run; in check mode it only warns.
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
    details: The auth_pass secret is masked in the diff.
  platform:
    support: full
    platforms: posix
notes:
  - The config test needs everything the daemon needs at start, except running it
    (interfaces, the script user, the scripts in root-owned paths).
seealso:
  - name: keepalived.conf(5)
    description: keepalived configuration synopsis.
    link: https://manpages.debian.org/bookworm/keepalived/keepalived.conf.5.en.html
"""

EXAMPLES = r"""
- name: Write keepalived.conf from the site plan (what the role cloudcore.ha.keepalived does)
  cloudcore.ha.keepalived_config:
    config: "{{ cloudcore_site.host[inventory_hostname].keepalived_conf }}"
    auth_pass: "{{ cloudcore_vrrp_auth_pass | default(omit) }}"

- name: Fault mode by hand
  cloudcore.ha.keepalived_config:
    config:
      router_id: "{{ inventory_hostname }}"
      check_script: /usr/local/sbin/check_cloudcore https://127.0.0.1:10002/ca.crt 0.8 /run/cloudcore-ha/drain
      interface: eth0
      virtual_router_id: 51
      priority: 250
      nopreempt: true
      vip: 10.10.102.242/24

- name: Unicast, seed-style weighted check
  cloudcore.ha.keepalived_config:
    config:
      router_id: node1
      check_script: /usr/local/sbin/check_cloudcore
      check_weight: 2
      state: MASTER
      interface: eth0
      virtual_router_id: 51
      priority: 100
      unicast_src_ip: 10.10.102.11
      unicast_peers: [10.10.102.12]
      vip: 10.10.102.242/24
    auth_pass: "{{ cloudcore_vrrp_auth_pass }}"
"""

RETURN = r"""
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/keepalived/keepalived.conf
checksum:
  description: SHA-1 of the rendered configuration.
  returned: always
  type: str
  sample: 6e642bb8dd5c2e027bf21dd923337cbb4214f827
validated:
  description: Whether keepalived's config test ran and passed.
  returned: always
  type: bool
  sample: true
backup_file:
  description: The backup of the previous file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/keepalived/keepalived.conf.12345.2026-01-01@00:00:00~
keepalived_version:
  description: The first line of C(keepalived --version) on the host, so a play learns the version without a task of its own.
  returned: when the keepalived binary was found
  type: str
  sample: Keepalived v2.2.7 (01/16,2022)
config_test_notes:
  description: Remarks about how the config test ran (for example a workaround that was applied).
  returned: when there are any
  type: list
  elements: str
"""

import hashlib
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import (
    KeepalivedConfigError,
    from_options,
    mask_secrets,
    option_spec,
    render_keepalived_conf,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_test import (
    keepalived_config_test,
    parse_version,
)

_SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _keepalived_version(module, binary):
    # keepalived prints its version on stderr.
    rc, out, err = module.run_command([binary, "--version"], check_rc=False)
    lines = [line for line in ((err or "") + (out or "")).splitlines() if line.strip()]
    return lines[0].strip() if lines else "unknown (exit %d)" % rc


def _command_runner(module):
    """keepalived -t output goes to stderr and stdout alike; the caller wants both, in order of
    importance (the error lines come on stderr)."""
    def run(argv):
        rc, out, err = module.run_command(argv, check_rc=False)
        return rc, (err or "") + (out or "")
    return run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/keepalived/keepalived.conf"),
            backup=dict(type="bool", default=False),
            config=dict(type="dict", required=True, options=option_spec(exclude=("auth_pass",))),
            auth_pass=dict(type="str", no_log=True),
            keepalived_binary=dict(type="str", default="keepalived"),
            validate=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    config = from_options(dict(p["config"], auth_pass=p["auth_pass"]))
    path = p["path"]
    try:
        text = render_keepalived_conf(config)
    except KeepalivedConfigError as exc:
        module.fail_json(
            msg="invalid keepalived_config input: " + "; ".join(
                "option %s=%s: %s" % (problem.variable, problem.value if problem.variable == "auth_pass"
                                      else repr(problem.value), problem.rule) for problem in exc.problems),
            problems=[dict(option=problem.variable, value=problem.value, rule=problem.rule) for problem in exc.problems],
            path=path)

    content = to_bytes(text)
    result = dict(changed=False, path=path, checksum=hashlib.sha1(content).hexdigest(), validated=False)

    if p["validate"]:
        binary = module.get_bin_path(p["keepalived_binary"], required=False, opt_dirs=_SBIN)
        if binary is None:
            message = ("keepalived_binary=%r: not found in PATH or %s, so the config test cannot run;"
                       " install keepalived first, or set validate=false to write without testing"
                       % (p["keepalived_binary"], ", ".join(_SBIN)))
            if module.check_mode:
                module.warn(message + " (check mode: the configuration was NOT validated)")
            else:
                module.fail_json(msg=message, **result)
        else:
            result["keepalived_version"] = _keepalived_version(module, binary)
            unshare = module.get_bin_path("unshare", required=False, opt_dirs=_SBIN) if os.geteuid() == 0 else None
            outcome = keepalived_config_test(text, run=_command_runner(module), keepalived=binary, unshare=unshare,
                                             version=parse_version(result["keepalived_version"]))
            if outcome.notes:
                result["config_test_notes"] = outcome.notes
            if not outcome.ok:
                module.fail_json(
                    msg="keepalived rejected the rendered configuration for %s (%s -t -e -f, exit %d):\n%s"
                        % (path, binary, outcome.returncode, mask_secrets(outcome.output)),
                    rc=outcome.returncode, **result)
            result["validated"] = True

    before = _read(path)
    changed = before != content
    result["changed"] = changed
    if changed and module._diff:
        result["diff"] = dict(
            before_header=path, after_header=path,
            before=mask_secrets(to_native(before or b"", errors="surrogate_or_strict")),
            after=mask_secrets(text))

    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg="path=%r: directory %s does not exist (is keepalived installed?)" % (path, directory), **result)
        if p["backup"] and before is not None:
            result["backup_file"] = module.backup_local(path)
        fd, tmp = tempfile.mkstemp(prefix=".keepalived.conf.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            # mode before the move: the secret is never world-readable, not even for a moment
            os.chmod(tmp, 0o640)
            module.atomic_move(tmp, path, unsafe_writes=False)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if os.path.exists(path) or (changed and not module.check_mode):
        # atomic_move copies the old file's mode and owner: enforce ours (in check mode this
        # only reports whether they differ)
        file_args = module.load_file_common_arguments(dict(
            path=path, mode="0640", owner="root" if os.geteuid() == 0 else None))
        if module.set_fs_attributes_if_different(file_args, False):
            result["changed"] = True

    module.exit_json(**result)


if __name__ == "__main__":
    main()
