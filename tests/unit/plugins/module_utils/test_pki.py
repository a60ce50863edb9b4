# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CloudCore's PKI owned by the collection (plugins/module_utils/_pki.py): KubeEdge's formats, and
what is created, kept, issued or refused."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.cloudcore.ha.plugins.module_utils._pki import (
    CA_CERT_KEY,
    CA_KEY_KEY,
    CERT_KEY,
    CERT_KEY_KEY,
    PkiError,
    describe,
    issue_server,
    load_ca,
    new_ca,
    plan_pki,
    sans,
    secret_data,
)

VIP = "10.213.102.100"
NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def ca_data(pair):
    return secret_data(pair, CA_CERT_KEY, CA_KEY_KEY)


def cert_data(pair):
    return secret_data(pair, CERT_KEY, CERT_KEY_KEY)


def test_the_ca_is_kubeedges():
    pair = new_ca(NOW)
    cert = pair.cert
    assert cert.subject.rfc4514_string() == "CN=KubeEdge" and cert.issuer == cert.subject
    assert cert.serial_number == 1024
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc) == datetime.timedelta(days=36400)
    assert isinstance(pair.key.curve, ec.SECP256R1)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.digital_signature
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pair.key_der[:1] == b"\x30" and b"BEGIN" not in pair.key_der  # SEC 1 DER, as KubeEdge stores it


def test_the_serving_certificate_is_kubeedges():
    ca = new_ca(NOW)
    pair = issue_server(ca, [VIP, "fd00::100"], ["cloudcore.example"], NOW)
    cert = pair.cert
    assert cert.subject.rfc4514_string() == "CN=KubeEdge,O=KubeEdge" and cert.issuer == ca.cert.subject
    assert sans(cert) == ([VIP, "fd00::100"], ["cloudcore.example"])
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    ca.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def test_a_fresh_cluster_gets_a_ca_and_a_certificate():
    plan = plan_pki(None, None, [VIP], [], now=NOW)
    assert plan.create_ca and plan.certificate is not None and plan.changed
    assert plan.reasons == ["Secret kubeedge/cloudcoresecret is missing"]
    report = plan.report()
    assert report["ca"]["created"] and report["issued"] and report["certificate"]["sans"] == {"ip": [VIP], "dns": []}
    assert "key" not in repr(report).replace("keyUsage", "")  # descriptions only


def test_an_existing_ca_is_adopted_and_signs_the_missing_certificate():
    ca = new_ca(NOW)
    plan = plan_pki(ca_data(ca), None, [VIP], [], now=NOW)
    assert not plan.create_ca and plan.ca.cert_der == ca.cert_der
    assert plan.certificate.cert.issuer == ca.cert.subject


def test_a_converged_site_changes_nothing():
    ca = new_ca(NOW)
    current = issue_server(ca, [VIP], ["cloudcore.example"], NOW)
    plan = plan_pki(ca_data(ca), cert_data(current), [VIP], ["CloudCore.example"], now=NOW)
    assert not plan.changed and plan.reasons == [] and plan.blocked is None
    assert plan.report()["certificate"]["fingerprint_sha256"] == describe(current)["fingerprint_sha256"]


def test_sans_that_do_not_cover_are_refused_unless_rotated_and_the_ca_stays():
    ca = new_ca(NOW)
    current = issue_server(ca, ["10.213.102.99"], [], NOW)
    refused = plan_pki(ca_data(ca), cert_data(current), [VIP], ["cloudcore.example"], now=NOW)
    assert refused.certificate is None and "IP:10.213.102.100, DNS:cloudcore.example" in refused.blocked
    assert "cloudcore_rotate_cert=true" in refused.blocked
    rotated = plan_pki(ca_data(ca), cert_data(current), [VIP], ["cloudcore.example"], rotate=True, now=NOW)
    assert rotated.blocked is None and not rotated.create_ca
    assert sans(rotated.certificate.cert) == ([VIP], ["cloudcore.example"])
    assert rotated.certificate.cert.issuer == ca.cert.subject and rotated.ca.cert_der == ca.cert_der


def test_a_certificate_that_expires_soon_is_renewed_from_the_same_ca():
    ca = new_ca(NOW)
    old = issue_server(ca, [VIP], [], NOW)
    later = NOW + datetime.timedelta(days=36400 - 10)
    plan = plan_pki(ca_data(ca), cert_data(old), [VIP], [], renew_days=30, now=later)
    assert plan.certificate is not None and "within 30 days" in plan.reasons[0] and plan.blocked is None
    assert not plan_pki(ca_data(ca), cert_data(old), [VIP], [], renew_days=5, now=later).changed


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: dict(d, cloudcoredata=base64.b64encode(b"\x30\x03garbage").decode()), "is not a DER X.509 certificate"),
    (lambda d: dict(d, cloudcorekeydata="not base64!"), "is not base64"),
    (lambda d: {CERT_KEY: d[CERT_KEY]}, "has no data key cloudcorekeydata"),
    (lambda d: dict(d, cloudcorekeydata=cert_data(issue_server(new_ca(NOW), [VIP], [], NOW))[CERT_KEY_KEY]),
     "does not belong to the certificate"),
])
def test_a_damaged_certificate_is_reported_and_kept_unless_rotated(damage, fragment):
    ca = new_ca(NOW)
    data = damage(cert_data(issue_server(ca, [VIP], [], NOW)))
    plan = plan_pki(ca_data(ca), data, [VIP], [], now=NOW)
    assert plan.certificate is None and fragment in plan.blocked and "cloudcore_rotate_cert=true" in plan.blocked
    assert plan_pki(ca_data(ca), data, [VIP], [], rotate=True, now=NOW).certificate is not None


def test_a_certificate_from_another_ca_is_not_used():
    ca, other = new_ca(NOW), new_ca(NOW)
    plan = plan_pki(ca_data(ca), cert_data(issue_server(other, [VIP], [], NOW)), [VIP], [], now=NOW)
    assert "is not signed by the CA of kubeedge/casecret" in plan.blocked


def test_a_damaged_ca_is_never_replaced():
    ca = new_ca(NOW)
    for data in ({CA_CERT_KEY: ca_data(ca)[CA_CERT_KEY]},
                 dict(ca_data(ca), cakeydata=ca_data(new_ca(NOW))[CA_KEY_KEY]),
                 dict(ca_data(ca), cadata=cert_data(issue_server(ca, [VIP], [], NOW))[CERT_KEY])):
        with pytest.raises(PkiError, match="The CA is never replaced by the collection"):
            plan_pki(data, None, [VIP], [], rotate=True, now=NOW)
    server = cert_data(issue_server(ca, [VIP], [], NOW))
    with pytest.raises(PkiError, match="is not a CA certificate"):
        load_ca({CA_CERT_KEY: server[CERT_KEY], CA_KEY_KEY: server[CERT_KEY_KEY]})


def test_a_vip_change_covers_both_vips_then_drops_the_retired_one():
    ca = new_ca(NOW)
    old = issue_server(ca, [VIP], [], NOW)
    during = plan_pki(ca_data(ca), cert_data(old), ["10.213.102.101", VIP], [], rotate=True, now=NOW)
    assert sans(during.certificate.cert) == (["10.213.102.101", VIP], [])
    again = plan_pki(ca_data(ca), cert_data(during.certificate), ["10.213.102.101", VIP], [], rotate=True, now=NOW)
    assert not again.changed  # covered: issued once
    retired = plan_pki(ca_data(ca), cert_data(during.certificate), ["10.213.102.101"], [], now=NOW,
                       retired_ips=[VIP])
    assert retired.reasons == ["its SANs still carry the retired IP:%s" % VIP] and retired.blocked is None
    assert sans(retired.certificate.cert) == (["10.213.102.101"], []) and retired.ca.cert_der == ca.cert_der
    done = plan_pki(ca_data(ca), cert_data(retired.certificate), ["10.213.102.101"], [], now=NOW, retired_ips=[VIP])
    assert not done.changed
