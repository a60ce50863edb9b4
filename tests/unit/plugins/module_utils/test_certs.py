# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Certificate parsing (plugins/module_utils/_certs.py)."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.cloudcore.ha.plugins.module_utils._certs import (
    CertificateError,
    cert_sans,
    days_left,
    served_cert_facts,
    vip_in_sans,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.tests.unit.conftest import make_cert  # noqa: E402


@pytest.fixture(scope="module")
def cert():
    certificate, pem, _unused = make_cert(ips=("10.10.102.242", "fd00::100", "127.0.0.1"), dns=("cloudcore.example",), cn="KubeEdge")
    return certificate, pem, certificate.public_bytes(serialization.Encoding.DER)


def test_all_encodings_parse_the_same(cert):
    certificate, pem, der = cert
    expected = cert_sans(pem)
    assert expected["ip"] == ["10.10.102.242", "fd00::100", "127.0.0.1"]
    assert expected["dns"] == ["cloudcore.example"]
    assert expected["subject"] == "CN=KubeEdge"
    assert datetime.datetime.fromisoformat(expected["not_after"]).tzinfo is not None
    for form in (pem.decode(), der, base64.b64encode(der).decode(), base64.b64encode(pem).decode(),
                 base64.b64encode(der), "\n" + base64.encodebytes(der).decode()):
        assert cert_sans(form) == expected


def test_chain_takes_first_certificate(cert):
    _unused, pem, _unused2 = cert
    _unused, other, _unused2 = make_cert(ips=("192.0.2.1",))
    assert cert_sans(pem + other)["ip"][0] == "10.10.102.242"


def test_no_san_extension():
    _unused, pem, _unused2 = make_cert(ips=(), dns=())
    assert cert_sans(pem)["ip"] == [] and cert_sans(pem)["dns"] == []


@pytest.mark.parametrize("garbage", ["hello", b"\x30\x03\x01\x01\x00", "", 42, None, "aGVsbG8=",
                                     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])
def test_garbage_says_what_was_expected(garbage):
    with pytest.raises(CertificateError) as err:
        cert_sans(garbage)
    assert "expected an X.509 certificate as PEM text, DER bytes, or base64" in str(err.value)


@pytest.mark.parametrize("vip, covered", [
    ("10.10.102.242/24", True), ("fd00::100/64", True), ("fd00:0:0::100/64", True), ("FD00::0100/64", True),
    ("10.10.102.243/24", False), ("fd00::1/64", False),
])
def test_vip_in_sans(cert, vip, covered):
    _unused, pem, der = cert
    assert vip_in_sans(vip, pem) is covered
    assert vip_in_sans(vip, cert_sans(der)) is covered


def test_vip_in_sans_takes_the_vip_as_cloudcore_vip_is_written_and_rejects_a_bad_dict(cert):
    _unused, pem, _unused2 = cert
    with pytest.raises(InputError, match="is not an IPv4 or IPv6 address with prefix length"):
        vip_in_sans("cloudcore.example", pem)
    with pytest.raises(InputError, match="needs a prefix length"):
        vip_in_sans("10.10.102.242", pem)
    with pytest.raises(CertificateError, match="'ip' list"):
        vip_in_sans("10.0.0.1/24", {"dns": []})


def test_days_left():
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert days_left("2026-01-11T12:00:00+00:00", now) == 10
    assert days_left("2025-12-31T00:00:00+00:00", now) == -1


def test_served_cert_facts_from_real_tls_server(tmp_path):
    from ansible_collections.cloudcore.ha.tests.unit.conftest import LocalTLSServer
    with LocalTLSServer(tmp_path, ips=("127.0.0.1", "fd00::242"), dns=("cloudcore.test",)) as server:
        facts = served_cert_facts("127.0.0.1", server.port, 5, vip="fd00:0::242/64")
    assert facts["sans"] == {"ip": ["127.0.0.1", "fd00::242"], "dns": ["cloudcore.test"]}
    assert facts["vip_covered"] is True
    assert 360 <= facts["days_left"] <= 365
    assert facts["pem"].startswith("-----BEGIN CERTIFICATE-----")
