#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vrrp_firewall
short_description: Let VRRP adverts through the active host firewalls of a CloudCore node
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Finds which of firewalld, ufw and nftables (the C(nftables.service) ruleset) are active and lets
    VRRP (IP protocol 112) through each active one, for the multicast group or from the unicast peers,
    on the VRRP interface. Firewalls that are not active are left alone.
  - "firewalld: a rich rule, permanent and at runtime, in the zone of the interface (else the default zone)."
  - "ufw: one rule per group or peer, with the comment C(cloudcore.ha vrrp)."
  - "nftables: an accept rule inserted at the top of every input filter base chain (an accept in a chain
    of its own would not override a drop elsewhere), skipping firewalld's and iptables-nft's tables.
    The rules go into one transaction, are recognised by their comment and replaced when they change,
    and are written to O(nft_rules_path), which a drop-in makes C(nftables.service) load after every
    start and reload."
  - Check mode reports what would change and changes nothing.
options:
  interface:
    description: The interface VRRP runs on.
    type: str
    required: true
  vip:
    description: The VIP with prefix; its family decides IPv4 or IPv6 rules.
    type: str
    required: true
  mode:
    description: C(multicast) accepts adverts to the group, C(unicast) adverts from the peers.
    type: str
    choices: [multicast, unicast]
    default: multicast
  multicast_group:
    description:
      - The VRRP multicast group. A group of the other family than the VIP is replaced by the default of
        the VIP's family (224.0.0.18 or ff02::12), as keepalived does.
    type: str
  peers:
    description: The other nodes' addresses on the interface (unicast mode).
    type: list
    elements: str
    default: []
  firewall:
    description:
      - C(auto) handles every active firewall, C(none) none; a name handles that firewall only and
        fails when it is not active.
    type: str
    choices: [auto, none, firewalld, ufw, nftables]
    default: auto
  state:
    description: C(absent) removes the rules (and the nftables files) this module added.
    type: str
    choices: [present, absent]
    default: present
  nft_rules_path:
    description: Where the nftables rules are kept for C(nftables.service).
    type: path
    default: /etc/cloudcore-ha/vrrp.nft
  nft_dropin_path:
    description: The C(nftables.service) drop-in that loads O(nft_rules_path).
    type: path
    default: /etc/systemd/system/nftables.service.d/cloudcore-ha.conf
notes:
  - firewalld rich rules carry no comment, so after a peer list changes the rules for old peers stay;
    O(state=absent) removes the rules of the current peers.
attributes:
  check_mode:
    description: Reports the rules it would add or remove and changes nothing.
    support: full
  diff_mode:
    description: Shows the VRRP rules before and after, per firewall.
    support: full
"""

EXAMPLES = r"""
- name: Let VRRP adverts to the multicast group through the active firewalls
  cloudcore.ha.vrrp_firewall:
    interface: eth0
    vip: 10.10.102.242/24
    multicast_group: 224.0.0.18

- name: Unicast mode, nftables only
  cloudcore.ha.vrrp_firewall:
    interface: eth0
    vip: 10.10.102.242/24
    mode: unicast
    peers: [10.10.102.12, 10.10.102.13]
    firewall: nftables
"""

RETURN = r"""
active:
  description: The firewalls found active.
  returned: always
  type: list
  elements: str
  sample: [nftables]
handled:
  description: The firewalls this run handled.
  returned: always
  type: list
  elements: str
  sample: [nftables]
rules:
  description: Per handled firewall, the rules that let VRRP through (after the change).
  returned: always
  type: dict
  sample: {"nftables": ["inet filter input: iifname \"eth0\" ip daddr 224.0.0.18 meta l4proto vrrp accept"]}
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    FIREWALL_CHOICES,
    FirewallError,
    active_backends,
    firewalld_zone,
    nft_dropin_text,
    plan_firewalld,
    plan_nftables,
    plan_ufw,
    select_backends,
    vrrp_traffic,
)

_SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]


class Host(object):
    """The commands and files of one node, failing the module with the command's own words."""

    def __init__(self, module):
        self.module = module

    def binary(self, name):
        return self.module.get_bin_path(name, required=False, opt_dirs=_SBIN)

    def run(self, argv, data=None, must_succeed=True):
        rc, out, err = self.module.run_command(argv, data=data, check_rc=False, binary_data=data is not None)
        if must_succeed and rc != 0:
            self.module.fail_json(msg="%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out).strip()),
                                  rc=rc, stdout=out, stderr=err)
        return rc, out

    def output(self, argv):
        """Output of a probe; empty when the tool is missing or says no."""
        binary = self.binary(argv[0])
        if binary is None:
            return ""
        return self.run([binary] + argv[1:], must_succeed=False)[1]

    def read(self, path):
        try:
            with open(path, "rb") as handle:
                return to_native(handle.read())
        except FileNotFoundError:
            return None

    def write(self, path, text):
        """Atomically write text (0644, root) when it differs; empty text removes the file."""
        before = self.read(path)
        wanted = text or None
        if before == wanted:
            return False
        if self.module.check_mode:
            return True
        if wanted is None:
            os.unlink(path)
            return True
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, tmp = tempfile.mkstemp(prefix=".cloudcore-ha.", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(to_bytes(text))
        os.chmod(tmp, 0o644)
        self.module.atomic_move(tmp, path, unsafe_writes=False)
        return True


def detect(host):
    return active_backends(
        firewalld_state=host.output(["firewall-cmd", "--state"]),
        ufw_status=host.output(["ufw", "status"]),
        nftables_state=host.output(["systemctl", "is-active", "nftables"]))


def handle_nftables(host, traffic, present):
    nft = host.binary("nft")
    listing = host.run([nft, "-j", "list", "ruleset"])[1]
    try:
        ruleset = json.loads(listing or "{}")
    except ValueError:
        host.module.fail_json(msg="vrrp_firewall: %s -j list ruleset did not print JSON (nft older than 0.9?);"
                                  " set firewall=none and allow VRRP yourself" % nft, stdout=listing[:2000])
    plan = plan_nftables(ruleset, traffic, present)
    if plan.changed and not host.module.check_mode:
        host.run([nft, "-f", "-"], data=plan.script())
    return plan, plan.changed


def handle_nftables_files(host, present, plans, params):
    """The rules file and the drop-in: kept while nftables rules are wanted, removed otherwise."""
    plan = plans.get("nftables")
    rules_text = plan.persistent_text() if plan is not None and present else ""
    nft = host.binary("nft") or "/usr/sbin/nft"
    dropin_text = nft_dropin_text(nft, params["nft_rules_path"]) if rules_text else ""
    changed = host.write(params["nft_rules_path"], rules_text)
    dropin_changed = host.write(params["nft_dropin_path"], dropin_text)
    if dropin_changed and not host.module.check_mode:
        host.run([host.binary("systemctl") or "systemctl", "daemon-reload"])
    return changed or dropin_changed


def handle_ufw(host, traffic, present):
    ufw = host.binary("ufw")
    plan = plan_ufw(host.run([ufw, "show", "added"])[1], traffic, present)
    if plan.changed and not host.module.check_mode:
        for argv in plan.commands():
            host.run([ufw] + argv[1:])
    return plan, plan.changed


def handle_firewalld(host, traffic, present):
    cmd = host.binary("firewall-cmd")
    rc, out = host.run([cmd, "--get-zone-of-interface=%s" % traffic.interface], must_succeed=False)
    zone = firewalld_zone((rc, out), host.run([cmd, "--get-default-zone"])[1])
    permanent = host.run([cmd, "--permanent", "--zone=%s" % zone, "--list-rich-rules"])[1]
    runtime = host.run([cmd, "--zone=%s" % zone, "--list-rich-rules"])[1]
    plan = plan_firewalld(zone, permanent, runtime, traffic, present)
    if plan.changed and not host.module.check_mode:
        for argv in plan.commands():
            host.run([cmd] + argv[1:])
    return plan, plan.changed


HANDLERS = {"firewalld": handle_firewalld, "ufw": handle_ufw, "nftables": handle_nftables}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            vip=dict(type="str", required=True),
            mode=dict(type="str", default="multicast", choices=["multicast", "unicast"]),
            multicast_group=dict(type="str"),
            peers=dict(type="list", elements="str", default=[]),
            firewall=dict(type="str", default="auto", choices=list(FIREWALL_CHOICES)),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            nft_rules_path=dict(type="path", default="/etc/cloudcore-ha/vrrp.nft"),
            nft_dropin_path=dict(type="path", default="/etc/systemd/system/nftables.service.d/cloudcore-ha.conf"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    present = p["state"] == "present"
    host = Host(module)
    try:
        traffic = vrrp_traffic(p["interface"], p["vip"], p["mode"], p["multicast_group"], p["peers"])
        active = detect(host)
        handled = select_backends(p["firewall"], active)
    except FirewallError as error:
        module.fail_json(msg="vrrp_firewall: %s" % error)

    plans, changed = {}, False
    for name in handled:
        try:
            plans[name], backend_changed = HANDLERS[name](host, traffic, present)
        except FirewallError as error:
            module.fail_json(msg="vrrp_firewall (%s): %s" % (name, error), changed=changed)
        changed = changed or backend_changed
    changed = handle_nftables_files(host, present, plans, p) or changed

    result = dict(changed=changed, active=active, handled=handled,
                  rules=dict((name, plan.after()) for name, plan in plans.items()))
    if changed and module._diff:
        result["diff"] = dict(
            before_header="VRRP firewall rules", after_header="VRRP firewall rules",
            before="".join("%s: %s\n" % (name, line) for name, plan in plans.items() for line in plan.before()),
            after="".join("%s: %s\n" % (name, line) for name, plan in plans.items() for line in plan.after()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
