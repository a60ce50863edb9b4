# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CloudCore's PKI, owned by the collection: the CA in Secret kubeedge/casecret and CloudCore's serving
certificate in kubeedge/cloudcoresecret, made in KubeEdge's own formats before CloudCore starts.

Why: every CloudCore replica that finds casecret missing generates a CA, keeps it in memory and saves
it with Create-then-Update (cloud/pkg/cloudhub/servers/httpserver/pre_server.go createCAToSecret,
cloud/pkg/common/client/secret.go SaveSecret): replicas starting together end with different CAs, and
edge certificates signed by the losers fail after the next restart (KubeEdge #5922). CloudCore never
re-issues its certificate when advertiseAddress or dnsNames change (#6371). With both Secrets present
before the pods start, every replica loads the same CA and certificate and nothing races.

The formats are upstream's (kubeedge v1.23.1):
- CA (pkg/security/certs/x509_ca.go NewSelfSigned): EC P-256, self-signed, CN KubeEdge, serial 1024,
  valid 364 x 100 days, KeyUsage digitalSignature|keyEncipherment|keyCertSign (critical), ExtKeyUsage
  serverAuth+clientAuth, BasicConstraints CA (critical), SubjectKeyIdentifier; Secret keys cadata
  (certificate DER) and cakeydata (key, SEC 1 DER).
- serving certificate (pre_server.go createCertsToSecret, x509_certs.go SignCerts): EC P-256, O/CN
  KubeEdge, random serial, valid 364 x 100 days, KeyUsage digitalSignature|keyEncipherment (critical),
  ExtKeyUsage serverAuth, AuthorityKeyIdentifier of the CA, SANs = the DNS names and the IPs (the
  advertise addresses); Secret keys cloudcoredata (certificate DER) and cloudcorekeydata (SEC 1 DER).

An existing CA (keadm, Helm, an earlier CloudCore) is always kept: replacing it would orphan every
edge certificate. The serving certificate is issued when missing, when it expires within the renewal
margin, and - on request (cloudcore_rotate_cert) - when its SANs do not cover the advertise addresses
and DNS names or its content is not a valid certificate/key pair from the CA. Keys never leave this
module's results. Plain Python; cryptography is needed (imported guarded for missing_required_lib).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import ipaddress
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None  # type: Optional[str]
except ImportError:  # pragma: no cover - exercised only without cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

NAMESPACE = "kubeedge"
CA_SECRET, CA_CERT_KEY, CA_KEY_KEY = "casecret", "cadata", "cakeydata"
CERT_SECRET, CERT_KEY, CERT_KEY_KEY = "cloudcoresecret", "cloudcoredata", "cloudcorekeydata"
PROJECT_NAME = "KubeEdge"  # common/constants ProjectName
LIFETIME = datetime.timedelta(days=364 * 100)  # pre_server.go, x509_ca.go: time.Hour * 24 * 364 * 100
CA_SERIAL = 1024  # x509_ca.go: big.NewInt(1024)


class PkiError(ValueError):
    """A Secret the collection cannot use; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both DER (the key SEC 1, as KubeEdge stores it)."""

    cert_der: bytes
    key_der: bytes

    @property
    def cert(self) -> "x509.Certificate":
        return x509.load_der_x509_certificate(self.cert_der)

    @property
    def key(self) -> "ec.EllipticCurvePrivateKey":
        return serialization.load_der_private_key(self.key_der, password=None)  # type: ignore[return-value]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _sec1(key: "ec.EllipticCurvePrivateKey") -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _key_usage(cert_sign: bool) -> "x509.KeyUsage":
    return x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=cert_sign,
                         content_commitment=False, data_encipherment=False, key_agreement=False,
                         crl_sign=False, encipher_only=False, decipher_only=False)


def new_ca(now: Optional[datetime.datetime] = None) -> KeyPair:
    """A CloudCore CA as x509_ca.go NewSelfSigned makes it."""
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PROJECT_NAME)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(CA_SERIAL).not_valid_before(now).not_valid_after(now + LIFETIME)
            .add_extension(_key_usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.DER), _sec1(key))


def issue_server(ca: KeyPair, ips: Sequence[str], dns_names: Sequence[str],
                 now: Optional[datetime.datetime] = None) -> KeyPair:
    """CloudCore's serving certificate for ips + dns_names, signed by ca (pre_server.go createCertsToSecret)."""
    now = now or _now()
    ca_cert = ca.cert
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, PROJECT_NAME),
                         x509.NameAttribute(NameOID.COMMON_NAME, PROJECT_NAME)])
    sans = [x509.DNSName(name) for name in dns_names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(secrets.randbelow(2 ** 63 - 1))
               .not_valid_before(now).not_valid_after(now + LIFETIME)
               .add_extension(_key_usage(False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                        critical=False)
    except x509.ExtensionNotFound:
        pass  # a CA from elsewhere without SKI: Go would leave the AKI out as well
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.DER), _sec1(key))


# ------------------------------------------------------------------------------------ reading Secrets

def _decode(data: Mapping[str, object], key: str, secret: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PkiError("Secret %s/%s has no data key %s" % (NAMESPACE, secret, key))
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PkiError("Secret %s/%s: data key %s is not base64" % (NAMESPACE, secret, key))


def _load_pair(data: Mapping[str, object], cert_key: str, key_key: str, secret: str) -> KeyPair:
    """A certificate/key pair from a Secret's data; PkiError says what is wrong with it."""
    cert_der, key_der = _decode(data, cert_key, secret), _decode(data, key_key, secret)
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError as error:
        raise PkiError("Secret %s/%s: %s is not a DER X.509 certificate (%s)" % (NAMESPACE, secret, cert_key, error))
    try:
        key = serialization.load_der_private_key(key_der, password=None)
    except (ValueError, TypeError) as error:
        raise PkiError("Secret %s/%s: %s is not a DER private key (%s)" % (NAMESPACE, secret, key_key, error))
    if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        raise PkiError("Secret %s/%s: the key in %s does not belong to the certificate in %s"
                       % (NAMESPACE, secret, key_key, cert_key))
    return KeyPair(cert_der, key_der)


def _public_bytes(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def load_ca(data: Mapping[str, object]) -> KeyPair:
    """The CA of Secret casecret; PkiError when it is not a CA with its key."""
    pair = _load_pair(data, CA_CERT_KEY, CA_KEY_KEY, CA_SECRET)
    try:
        constraints = pair.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError("Secret %s/%s: %s is not a CA certificate (no BasicConstraints CA:TRUE)"
                       % (NAMESPACE, CA_SECRET, CA_CERT_KEY))
    return pair


def _signed_by(cert: "x509.Certificate", ca: "x509.Certificate") -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[call-arg]
                               ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
    except (InvalidSignature, TypeError, ValueError, AttributeError):
        return False
    return True


# ------------------------------------------------------------------------------------ facts for humans

def _utc(cert: "x509.Certificate", name: str) -> datetime.datetime:
    aware = getattr(cert, name + "_utc", None)  # cryptography >= 42
    return aware if aware is not None else getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


def certificate_pem(cert_der: bytes) -> str:
    """A DER certificate as PEM text (what haproxy's ca-file and curl's --cacert read)."""
    return x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(cert_der: bytes) -> str:
    """SHA-256 of the DER, as openssl x509 -fingerprint -sha256 prints it."""
    digest = hashlib.sha256(cert_der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def sans(cert: "x509.Certificate") -> Tuple[List[str], List[str]]:
    """(IP SANs, DNS SANs) of a certificate."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ([str(ip) for ip in names.get_values_for_type(x509.IPAddress)],
            list(names.get_values_for_type(x509.DNSName)))


def describe(pair: KeyPair) -> Dict[str, object]:
    """What a run may show of a certificate (never its key)."""
    cert = pair.cert
    ips, dns = sans(cert)
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": "%x" % cert.serial_number, "sans": {"ip": ips, "dns": dns},
            "not_before": _utc(cert, "not_valid_before").isoformat(),
            "not_after": _utc(cert, "not_valid_after").isoformat(), "fingerprint_sha256": fingerprint(pair.cert_der)}


# ------------------------------------------------------------------------------------ the decision

@dataclass
class PkiPlan:
    """What to write: the CA (None: keep the Secret as it is), the serving certificate (None: keep it),
    why, and what to tell the user (descriptions, never keys). `blocked` stops the run with its reason."""

    ca: KeyPair
    create_ca: bool
    certificate: Optional[KeyPair]
    reasons: List[str] = field(default_factory=list)
    blocked: Optional[str] = None
    blocked_variable: Optional[str] = None  # the input that would unblock it, for preflight's report
    current: Optional[Dict[str, object]] = None

    @property
    def changed(self) -> bool:
        return self.create_ca or self.certificate is not None

    def report(self) -> Dict[str, object]:
        issued = describe(self.certificate) if self.certificate is not None else None
        return {"ca": dict(describe(self.ca), created=self.create_ca), "certificate": issued or self.current,
                "issued": self.certificate is not None, "reasons": list(self.reasons), "blocked": self.blocked,
                "blocked_variable": self.blocked_variable}


def _covers(cert: "x509.Certificate", ips: Sequence[str], dns_names: Sequence[str]) -> List[str]:
    """The wanted SANs the certificate lacks."""
    have_ips, have_dns = sans(cert)
    have = {ipaddress.ip_address(ip) for ip in have_ips}
    missing = ["IP:%s" % ip for ip in ips if ipaddress.ip_address(ip) not in have]
    lower = {name.lower() for name in have_dns}
    return missing + ["DNS:%s" % name for name in dns_names if name.lower() not in lower]


def plan_pki(ca_data: Optional[Mapping[str, object]], cert_data: Optional[Mapping[str, object]],
             ips: Sequence[str], dns_names: Sequence[str], rotate: bool = False, renew_days: int = 30,
             now: Optional[datetime.datetime] = None, retired_ips: Sequence[str] = ()) -> PkiPlan:
    """Decide from the data of casecret and cloudcoresecret (None: the Secret is missing).

    retired_ips: addresses the certificate must no longer carry (a retired VIP): a certificate that
    carries one is issued again, as the retirement itself asks for."""
    now = now or _now()
    if ca_data is None:
        ca, create_ca = new_ca(now), True
    else:
        try:
            ca, create_ca = load_ca(ca_data), False
        except PkiError as error:
            raise PkiError("%s. The CA is never replaced by the collection: every edge certificate it signed would"
                           " stop verifying. Repair the Secret, or delete it yourself if every edge node will join"
                           " again" % error)
    if cert_data is None:
        return PkiPlan(ca, create_ca, issue_server(ca, ips, dns_names, now),
                       ["Secret %s/%s is missing" % (NAMESPACE, CERT_SECRET)])
    try:
        current = _load_pair(cert_data, CERT_KEY, CERT_KEY_KEY, CERT_SECRET)
        if not _signed_by(current.cert, ca.cert):
            raise PkiError("Secret %s/%s: the certificate is not signed by the CA of %s/%s"
                           % (NAMESPACE, CERT_SECRET, NAMESPACE, CA_SECRET))
    except PkiError as error:
        reason = str(error)
        if rotate:
            return PkiPlan(ca, create_ca, issue_server(ca, ips, dns_names, now), [reason])
        return PkiPlan(ca, create_ca, None, [reason], blocked=reason + "; it is left as it is: run with"
                       " cloudcore_rotate_cert=true to issue a new one from the CA",
                       blocked_variable="cloudcore_rotate_cert")
    plan = PkiPlan(ca, create_ca, None, current=describe(current))
    left = _utc(current.cert, "not_valid_after") - now
    if left <= datetime.timedelta(days=renew_days):
        plan.reasons.append("the certificate expires on %s, within %d days"
                            % (_utc(current.cert, "not_valid_after").isoformat(), renew_days))
    have = {ipaddress.ip_address(ip) for ip in sans(current.cert)[0]}
    kept = [ip for ip in retired_ips if ipaddress.ip_address(ip) in have]
    if kept:
        plan.reasons.append("its SANs still carry the retired %s" % ", ".join("IP:%s" % ip for ip in kept))
    missing = _covers(current.cert, ips, dns_names)
    if missing:
        reason = "its SANs lack %s" % ", ".join(missing)
        plan.reasons.append(reason)
        if not rotate:
            plan.blocked_variable = "cloudcore_vip" if any(m.startswith("IP:") for m in missing) else "manifests_dns_names"
            plan.blocked = ("CloudCore's certificate (Secret %s/%s) is not valid for %s: edge nodes connecting there"
                            " would fail with \"x509: certificate is valid for ..., not ...\". Run with"
                            " cloudcore_rotate_cert=true: the collection issues a new one from the same CA (joined"
                            " edge nodes keep trusting CloudCore) and restarts CloudCore one pod at a time"
                            % (NAMESPACE, CERT_SECRET, ", ".join(missing)))
    if plan.reasons and not plan.blocked:
        plan.certificate = issue_server(ca, ips, dns_names, now)
    return plan


def secret_data(pair: KeyPair, cert_key: str, key_key: str) -> Dict[str, str]:
    """A Secret's data for a pair (base64 of DER)."""
    return {cert_key: base64.b64encode(pair.cert_der).decode("ascii"),
            key_key: base64.b64encode(pair.key_der).decode("ascii")}
