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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    FIREWALL_CHOICES,
    FirewallError,
    select_backends,
    vrrp_traffic,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall_host import (
    VRRP_DROPIN,
    Host,
    detect,
    handle_backends,
    rules_diff,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import VRRP_MODES, InputError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            vip=dict(type="str", required=True),
            mode=dict(type="str", default="multicast", choices=list(VRRP_MODES)),
            multicast_group=dict(type="str"),
            peers=dict(type="list", elements="str", default=[]),
            firewall=dict(type="str", default="auto", choices=list(FIREWALL_CHOICES)),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            nft_rules_path=dict(type="path", default="/etc/cloudcore-ha/vrrp.nft"),
            nft_dropin_path=dict(type="path", default=VRRP_DROPIN),
        ),
        supports_check_mode=True,
    )
    p = module.params
    present = p["state"] == "present"
    host = Host(module, "vrrp_firewall")
    try:
        traffic = vrrp_traffic(p["interface"], p["vip"], p["mode"], p["multicast_group"], p["peers"])
        active = detect(host)
        handled = select_backends(p["firewall"], active)
    except (FirewallError, InputError) as error:
        module.fail_json(msg="vrrp_firewall: %s" % error)

    plans, changed = handle_backends(host, handled, traffic, present, p)

    result = dict(changed=changed, active=active, handled=handled,
                  rules=dict((name, plan.after()) for name, plan in plans.items()))
    if changed and module._diff:
        result["diff"] = rules_diff(plans, "VRRP firewall rules")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
