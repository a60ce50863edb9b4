# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.cert_sans and cloudcore.ha.vip_in_sans (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._certs import (
    CertificateError,
    cert_sans as _cert_sans,
    vip_in_sans as _vip_in_sans,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError


def cert_sans(data):
    try:
        return _cert_sans(data, variable="input")
    except CertificateError as exc:
        raise AnsibleFilterError("cloudcore.ha.cert_sans: %s" % exc)


def vip_in_sans(vip, cert):
    try:
        return _vip_in_sans(vip, cert, variable="cert")
    except (CertificateError, InputError) as exc:
        raise AnsibleFilterError("cloudcore.ha.vip_in_sans: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "cert_sans": cert_sans,
            "vip_in_sans": vip_in_sans,
        }
