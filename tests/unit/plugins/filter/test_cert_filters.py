# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.cert_sans and cloudcore.ha.vip_in_sans (plugins/filter/certs.py)."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives import serialization

from ansible_collections.cloudcore.ha.plugins.filter.certs import FilterModule
from ansible_collections.cloudcore.ha.tests.unit.conftest import make_cert

FILTERS = FilterModule().filters()


def test_secret_data_value():
    certificate, _unused, _unused2 = make_cert(ips=("10.10.102.242",))
    secret_value = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    sans = FILTERS["cert_sans"](secret_value)
    assert sans["ip"] == ["10.10.102.242"]
    assert FILTERS["vip_in_sans"]("10.10.102.242/24", secret_value) is True
    assert FILTERS["vip_in_sans"]("10.10.102.1/24", sans) is False


def test_garbage_raises_filter_error_saying_what_was_expected():
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.cert_sans: input: .*expected an X.509 certificate"):
        FILTERS["cert_sans"]("not a certificate")
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.vip_in_sans: vip='x': is not an IPv4 or IPv6 address"):
        FILTERS["vip_in_sans"]("x", {"ip": []})
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.vip_in_sans: cert: a mapping without an 'ip' list"):
        FILTERS["vip_in_sans"]("10.0.0.1/24", {"dns": []})
