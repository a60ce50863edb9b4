#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: balancer_firewall
short_description: Open the balancer's internal ports to the other CloudCore nodes only
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - In balanced mode CloudCore listens on internal ports on every address and haproxy's peers port joins
    the nodes' haproxies. This module lets the other CloudCore nodes reach these ports through every
    active host firewall, and closes them to everyone else with a guard table of its own, whether or
    not a firewall is active.
  - "The accept rules, in each active firewall (found as M(cloudcore.ha.vrrp_firewall) finds them, and
    O(firewall) is honoured the same way): nftables, an accept rule at the top of every input filter base
    chain, with a comment C(cloudcore.ha balancer <digest>), kept in O(nft_rules_path) which the drop-in
    O(nft_dropin_path) makes C(nftables.service) load after every start and reload; ufw, one rule per
    peer with the comment C(cloudcore.ha balancer); firewalld, a rich rule per peer and port, permanent
    and at runtime, in the zone of the interface (else the default zone). The VRRP rules of
    M(cloudcore.ha.vrrp_firewall) are never touched, nor the reverse."
  - "The guard: C(table inet cloudcore_ha_guard), an input filter chain at priority -10 (before the usual
    filter), policy accept, with three rules for the ports: accept from C(lo) (a node's haproxy reaches
    its own CloudCore), accept from the peers, drop. It is replaced in one C(nft -f) transaction and
    recognised by the digest in its rules' comments, so a second run changes nothing. It is kept in
    O(guard_path), loaded at boot by the unit O(guard_unit_path) (enabled and started by this module,
    before haproxy and kubelet), and loaded again by the drop-in O(guard_dropin_path) after
    C(nftables.service) starts, reloads or stops (its C(flush ruleset) would drop it)."
  - O(state=absent) removes the accept rules, the guard table, the unit and every file this module wrote.
  - The guard needs C(nft) (package nftables); without it O(state=present) fails before anything changes,
    and in check mode warns and reports what a run would add.
  - Check mode reports what would change and changes nothing.
options:
  interface:
    description: The interface the other nodes reach this one on (the VRRP interface); the accept rules match it.
    type: str
    required: true
  peers:
    description: The other CloudCore nodes' addresses, all of one family (IPv4 or IPv6).
    type: list
    elements: str
    required: true
  ports:
    description: The TCP ports to guard, 1 to 15 of them (ufw's limit), e.g. CloudCore's internal ports and haproxy's peers port.
    type: list
    elements: int
    required: true
  firewall:
    description:
      - C(auto) handles every active firewall, C(none) none; a name handles that firewall only and
        fails when it is not active. The guard is set in every case.
    type: str
    choices: [auto, none, firewalld, ufw, nftables]
    default: auto
  state:
    description: C(absent) removes the accept rules, the guard and their files.
    type: str
    choices: [present, absent]
    default: present
  nft_rules_path:
    description: Where the nftables accept rules are kept for C(nftables.service).
    type: path
    default: /etc/cloudcore-ha/balancer.nft
  nft_dropin_path:
    description: The C(nftables.service) drop-in that loads O(nft_rules_path) (not the VRRP one).
    type: path
    default: /etc/systemd/system/nftables.service.d/cloudcore-ha-balancer.conf
  guard_path:
    description: Where the guard's ruleset is kept (one C(nft -f) transaction that replaces the table).
    type: path
    default: /etc/cloudcore-ha/balancer-guard.nft
  guard_unit_path:
    description: The oneshot unit that loads the guard at boot; its file name is the unit's name.
    type: path
    default: /etc/systemd/system/cloudcore-ha-guard.service
  guard_dropin_path:
    description: The C(nftables.service) drop-in that loads the guard again after the unit's C(flush ruleset).
    type: path
    default: /etc/systemd/system/nftables.service.d/cloudcore-ha-guard.conf
notes:
  - firewalld rich rules carry no comment, so after a peer list changes the rules for old peers stay
    (the guard drops those peers all the same); O(state=absent) removes the rules of the current peers.
  - The ports are closed to everyone but the peers on every interface and in both families; the accept
    rules in the active firewalls match O(interface).
attributes:
  check_mode:
    description: Reports the rules and files it would add or remove and changes nothing.
    support: full
  diff_mode:
    description: Shows the accept rules per firewall and the guard's rules, before and after.
    support: full
"""

EXAMPLES = r"""
- name: Open CloudCore's internal ports and haproxy's peers port to the other CloudCore nodes only
  cloudcore.ha.balancer_firewall:
    interface: eth0
    peers: [10.10.102.12, 10.10.102.13]
    ports: [10100, 10102, 10104, 10110]

- name: Remove the rules and the guard
  cloudcore.ha.balancer_firewall:
    interface: eth0
    peers: [10.10.102.12, 10.10.102.13]
    ports: [10100, 10102, 10104, 10110]
    state: absent
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
  description: Per handled firewall, the rules that let the peers reach the ports (after the change).
  returned: always
  type: dict
  sample: {"nftables": ["inet filter input: iifname \"eth0\" ip saddr { 10.10.102.12 } tcp dport { 10100, 10110 } accept"]}
guard:
  description: The guard after the change; its rules are empty after O(state=absent).
  returned: always
  type: dict
  contains:
    table:
      description: The guard's table.
      type: str
      sample: inet cloudcore_ha_guard
    rules:
      description: The guard chain's rules.
      type: list
      elements: str
      sample: ["inet cloudcore_ha_guard input: tcp dport { 10100, 10110 } drop"]
    unit:
      description: The unit that loads the guard at boot.
      type: str
      sample: cloudcore-ha-guard.service
    file:
      description: The guard's ruleset file.
      type: str
      sample: /etc/cloudcore-ha/balancer-guard.nft
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    FIREWALL_CHOICES,
    FirewallError,
    balancer_traffic,
    select_backends,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall_host import (
    Host,
    detect,
    guard_result,
    handle_backends,
    handle_guard,
    rules_diff,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_path

NAME = "balancer_firewall"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            peers=dict(type="list", elements="str", required=True),
            ports=dict(type="list", elements="int", required=True),
            firewall=dict(type="str", default="auto", choices=list(FIREWALL_CHOICES)),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            nft_rules_path=dict(type="path", default="/etc/cloudcore-ha/balancer.nft"),
            nft_dropin_path=dict(type="path", default="/etc/systemd/system/nftables.service.d/cloudcore-ha-balancer.conf"),
            guard_path=dict(type="path", default="/etc/cloudcore-ha/balancer-guard.nft"),
            guard_unit_path=dict(type="path", default="/etc/systemd/system/cloudcore-ha-guard.service"),
            guard_dropin_path=dict(type="path", default="/etc/systemd/system/nftables.service.d/cloudcore-ha-guard.conf"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    present = p["state"] == "present"
    host = Host(module, NAME)
    try:
        traffic = balancer_traffic(p["interface"], p["peers"], p["ports"])
        for name in ("nft_rules_path", "nft_dropin_path", "guard_path", "guard_unit_path", "guard_dropin_path"):
            parse_path(p[name], name)
        if not p["guard_unit_path"].endswith(".service"):
            raise InputError("guard_unit_path", p["guard_unit_path"], "must be a unit file whose name ends in .service")
        active = detect(host)
        handled = select_backends(p["firewall"], active)
    except (FirewallError, InputError) as error:
        module.fail_json(msg="%s: %s" % (NAME, error))

    # the guard first: without nft it fails before any firewall changes
    guard, changed = handle_guard(host, traffic, present, p)
    plans, rules_changed = handle_backends(host, handled, traffic, present, p)
    changed = changed or rules_changed

    result = dict(changed=changed, active=active, handled=handled,
                  rules=dict((name, plan.after()) for name, plan in plans.items()),
                  guard=guard_result(guard, p))
    if changed and module._diff:
        diff = rules_diff(plans, "balancer firewall rules")
        if guard is not None:
            diff["before"] += "".join("guard: %s\n" % line for line in guard.before())
            diff["after"] += "".join("guard: %s\n" % line for line in guard.after())
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
