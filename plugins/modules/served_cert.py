#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: served_cert
short_description: Read the certificate a TLS server presents (CloudCore on port 10002)
version_added: 0.1.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Connects to O(host):O(port) with TLS, without verifying anything, and returns the certificate the
    server presents - its IP and DNS subject alternative names, subject and expiry.
  - With O(vip), also tells whether the VIP is one of the IP SANs, which edge nodes require.
  - Read-only; it never reports a change.
requirements:
  - cryptography (Python library, on the host the module runs on)
options:
  host:
    description: Address or name to connect to, for example the VIP or a node address.
    type: str
    required: true
  port:
    description: TCP port; CloudCore serves HTTPS on 10002.
    type: int
    default: 10002
  timeout:
    description: Seconds to wait for the connection and the handshake.
    type: float
    default: 5
  vip:
    description: The VIP with its prefix length (C(cloudcore_vip)); adds RV(vip_covered).
    type: str
  server_name:
    description: Server name to send (SNI). Default is O(host) when it is a name, none for an address.
    type: str
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
- name: Does the certificate CloudCore serves on the VIP name the VIP?
  cloudcore.ha.served_cert:
    host: "{{ cloudcore_site.vip.address }}"
    vip: "{{ cloudcore_vip }}"
  register: _served
  delegate_to: localhost

- name: Fail when it does not
  ansible.builtin.assert:
    that: _served.vip_covered
    fail_msg: "served certificate SANs {{ _served.sans.ip }} lack the VIP; set cloudcore_rotate_cert=true"
"""

RETURN = r"""
sans:
  description: Subject alternative names.
  returned: success
  type: dict
  contains:
    ip:
      description: IP addresses.
      type: list
      elements: str
      sample: ["10.10.102.242", "fd00::100"]
    dns:
      description: DNS names.
      type: list
      elements: str
      sample: ["cloudcore.example.com"]
subject:
  description: Subject (RFC 4514).
  returned: success
  type: str
  sample: CN=KubeEdge
issuer:
  description: Issuer (RFC 4514).
  returned: success
  type: str
  sample: CN=KubeEdge
not_before:
  description: Start of validity, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-01-01T00:00:00+00:00"
not_after:
  description: End of validity, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2036-01-01T00:00:00+00:00"
days_left:
  description: Whole days until RV(not_after) (negative when expired).
  returned: success
  type: int
  sample: 3650
pem:
  description: The served certificate, PEM.
  returned: success
  type: str
vip_covered:
  description: Whether O(vip) is one of the IP SANs.
  returned: when O(vip) is given
  type: bool
  sample: true
"""

import socket
import ssl

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cloudcore.ha.plugins.module_utils._certs import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertificateError,
    served_cert_facts,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=10002),
            timeout=dict(type="float", default=5),
            vip=dict(type="str"),
            server_name=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    p = module.params
    where = "%s:%d" % (p["host"], p["port"])
    try:
        facts = served_cert_facts(p["host"], p["port"], p["timeout"], vip=p["vip"], server_name=p["server_name"])
    except (CertificateError, InputError) as exc:
        module.fail_json(msg="%s: %s" % (where, exc))
    except socket.timeout:
        module.fail_json(msg="%s: no TLS answer within timeout=%s s" % (where, p["timeout"]))
    except ssl.SSLError as exc:
        module.fail_json(msg="%s: TLS handshake failed (is this a TLS port?): %s" % (where, exc))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="%s: cannot connect: %s" % (where, exc))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
