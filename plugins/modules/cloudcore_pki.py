#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudcore_pki
short_description: CloudCore's CA and serving certificate, issued before CloudCore starts
version_added: 0.2.0
author: cloudcore.ha contributors (@cloudcore-ha)
description:
  - Makes sure Secret C(kubeedge/casecret) holds a CA and C(kubeedge/cloudcoresecret) a serving
    certificate signed by it for O(ips) and O(dns_names), in KubeEdge's own formats (EC P-256, DER,
    keys C(cadata)/C(cakeydata) and C(cloudcoredata)/C(cloudcorekeydata)).
  - Every CloudCore replica that finds C(casecret) missing generates its own CA and saves it with
    Create-then-Update, so replicas starting together serve different CAs and the losers' edge
    certificates fail after the next restart (KubeEdge issue 5922). With both Secrets present before
    the pods start, every replica loads the same ones.
  - An existing CA (keadm, Helm, an earlier CloudCore) is always kept and used; a CA Secret that is not
    a valid CA with its key fails the module, and is never replaced.
  - The serving certificate is issued when it is missing or expires within O(renew_days); when its SANs
    do not cover O(ips) and O(dns_names), or its content is not a valid certificate/key pair from the CA,
    it is re-issued with O(rotate=true) and reported otherwise (the module fails, and writes nothing).
  - Keys never appear in results, diffs or logs, and are never written to the controller's disk.
  - Runs where the Kubernetes API is reachable (the controller); uses the Python C(kubernetes) client.
options:
  ips:
    description: The IP SANs - CloudCore's advertise addresses (the VIP).
    type: list
    elements: str
    required: true
  retired_ips:
    description:
      - IP addresses the serving certificate must no longer carry (a VIP change - the retired VIP). A
        certificate that carries one is issued again without it, whatever O(rotate) says.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  dns_names:
    description: The DNS SANs.
    type: list
    elements: str
    default: []
  rotate:
    description: Re-issue a serving certificate whose SANs do not cover O(ips) and O(dns_names), or that is not a valid pair from the CA.
    type: bool
    default: false
  renew_days:
    description: Re-issue the serving certificate when it expires within this many days.
    type: int
    default: 30
  namespace:
    description: CloudCore's namespace.
    type: str
    default: kubeedge
  kubeconfig:
    description: Kubeconfig on the controller; default the client's usual lookup (C(KUBECONFIG), C(~/.kube/config)).
    type: path
  context:
    description: Context in the kubeconfig; default its current context.
    type: str
requirements:
  - kubernetes (Python library)
  - cryptography (Python library)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be created or issued (subject, SANs, expiry, CA fingerprint) and writes nothing.
  diff_mode:
    support: full
    details: The descriptions of the certificates before and after, never a key.
  platform:
    support: full
    platforms: posix
notes:
  - CloudCore reads these Secrets only when it starts; after a re-issue, restart its pods (the role
    cloudcore.ha.manifests does, one at a time, the VIP holder last).
"""

EXAMPLES = r"""
- name: Issue CloudCore's certificates for the VIP (what the role cloudcore.ha.manifests does)
  cloudcore.ha.cloudcore_pki:
    ips: ["{{ cloudcore_site.vip.address }}"]
    dns_names: "{{ cloudcore_site.manifests.dns_names }}"
    rotate: "{{ cloudcore_site.cluster.rotate_cert }}"
    kubeconfig: "{{ cloudcore_kubeconfig }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
ca:
  description: The CA (C(subject), C(serial), C(not_after), C(fingerprint_sha256), C(created)).
  returned: success
  type: dict
ca_pem:
  description:
    - The CA certificate (public part only, PEM) - for the nodes' own checks, such as balanced mode's haproxy
      health checks. Null in check mode when the CA does not exist yet.
  returned: success
  type: str
certificate:
  description: The serving certificate in use after the run (C(subject), C(sans), C(not_after), C(fingerprint_sha256)).
  returned: success
  type: dict
issued:
  description: Whether a serving certificate was (or, in check mode, would be) issued.
  returned: success
  type: bool
reasons:
  description: Why the serving certificate was issued, or why it needs to be.
  returned: always
  type: list
  elements: str
blocked_variable:
  description: When the module refuses, the input that would let it go on (for example C(cloudcore_vip), C(cloudcore_rotate_cert)).
  returned: failure
  type: str
blocked_value:
  description: That input's value.
  returned: failure
  type: raw
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_dns_names, parse_ip
from ansible_collections.cloudcore.ha.plugins.module_utils._pki import (
    CA_CERT_KEY,
    CA_KEY_KEY,
    CA_SECRET,
    CERT_KEY,
    CERT_KEY_KEY,
    CERT_SECRET,
    CRYPTOGRAPHY_IMPORT_ERROR,
    certificate_pem,
    HAS_CRYPTOGRAPHY,
    PkiError,
    plan_pki,
    secret_data,
)

try:
    from kubernetes import client as k8s_client, config as k8s_config
    from kubernetes.client.rest import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised only without kubernetes
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()


class Secrets(object):
    """The two Secrets through the Kubernetes API: read, create or replace."""

    def __init__(self, module):
        self.module = module
        p = module.params
        try:
            kubeconfig = p["kubeconfig"] or None  # type="path": already expanded
            api = k8s_config.new_client_from_config(config_file=kubeconfig, context=p["context"])
        except Exception as error:  # the client raises several types for a bad kubeconfig
            module.fail_json(msg="kubeconfig=%r context=%r: the cluster cannot be reached with it: %s"
                                 % (p["kubeconfig"], p["context"], error))
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = p["namespace"]

    def read(self, name):
        """(data, resourceVersion) of a Secret, or (None, None) when it or its namespace is missing."""
        try:
            secret = self.core.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None, None
            self._fail("read", name, error)
        return dict(secret.data or {}), secret.metadata.resource_version

    def write(self, name, data, resource_version):
        body = k8s_client.V1Secret(
            metadata=k8s_client.V1ObjectMeta(name=name, namespace=self.namespace, resource_version=resource_version,
                                             labels={"app.kubernetes.io/managed-by": "cloudcore.ha"}),
            type="Opaque", data=data)
        try:
            if resource_version is None:
                self.core.create_namespaced_secret(self.namespace, body)
            else:
                self.core.replace_namespaced_secret(name, self.namespace, body)
        except ApiException as error:
            self._fail("write", name, error)

    def _fail(self, what, name, error):
        self.module.fail_json(msg="cannot %s Secret %s/%s: %s %s"
                              % (what, self.namespace, name, error.status, error.reason))


def _text(report):
    """A certificate description for a diff, one field a line."""
    if not report:
        return "(none)\n"
    lines = ["%s: %s" % (key, report[key]) for key in ("subject", "issuer", "sans", "not_after", "fingerprint_sha256")
             if key in report]
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ips=dict(type="list", elements="str", required=True),
            retired_ips=dict(type="list", elements="str", default=[]),
            dns_names=dict(type="list", elements="str", default=[]),
            rotate=dict(type="bool", default=False),
            renew_days=dict(type="int", default=30),
            namespace=dict(type="str", default="kubeedge"),
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    try:
        ips = [str(parse_ip(ip, "ips")) for ip in p["ips"]]
        retired_ips = [str(parse_ip(ip, "retired_ips")) for ip in p["retired_ips"]]
        dns_names = parse_dns_names(p["dns_names"], "dns_names")
    except InputError as error:
        module.fail_json(msg="cloudcore_pki: %s" % error)
    if not ips:
        module.fail_json(msg="cloudcore_pki: ips=[]: CloudCore needs at least one advertise address")

    secrets = Secrets(module)
    ca_data, ca_version = secrets.read(CA_SECRET)
    cert_data, cert_version = secrets.read(CERT_SECRET)
    try:
        plan = plan_pki(ca_data, cert_data, ips, dns_names, rotate=p["rotate"], renew_days=p["renew_days"],
                        retired_ips=retired_ips)
    except PkiError as error:
        module.fail_json(msg="cloudcore_pki: %s" % error)
    report = plan.report()
    if plan.blocked:
        values = {"cloudcore_vip": ips, "manifests_dns_names": dns_names, "cloudcore_rotate_cert": p["rotate"]}
        module.fail_json(msg="cloudcore_pki: %s" % plan.blocked, blocked_value=values.get(plan.blocked_variable),
                         **report)
    if plan.changed and not module.check_mode:
        if plan.create_ca:
            secrets.write(CA_SECRET, secret_data(plan.ca, CA_CERT_KEY, CA_KEY_KEY), ca_version)
        if plan.certificate is not None:
            secrets.write(CERT_SECRET, secret_data(plan.certificate, CERT_KEY, CERT_KEY_KEY), cert_version)
    result = dict(changed=plan.changed, **report)
    # a CA that check mode only planned exists nowhere: its certificate would mislead a caller
    result["ca_pem"] = None if plan.create_ca and module.check_mode else certificate_pem(plan.ca.cert_der)
    if plan.changed and module._diff:
        result["diff"] = [
            dict(before_header="%s/%s" % (p["namespace"], CA_SECRET), after_header="%s/%s" % (p["namespace"], CA_SECRET),
                 before="(none)\n" if plan.create_ca else _text(report["ca"]), after=_text(report["ca"])),
            dict(before_header="%s/%s" % (p["namespace"], CERT_SECRET),
                 after_header="%s/%s" % (p["namespace"], CERT_SECRET),
                 before=_text(plan.current), after=_text(report["certificate"])),
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
