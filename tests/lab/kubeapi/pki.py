"""The stand-in's own PKI: a CA, a serving certificate and an admin client certificate (EC P-256)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "ccha-lab-admin"
ADMIN_GROUP = "system:masters"
DEFAULT_DNS = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local"]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _builder(subject: x509.Name, issuer: x509.Name, pub, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days)))


class PKI:
    """Files in ``state_dir``: ca.crt/ca.key, apiserver.crt/.key, admin.crt/.key, token."""

    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.ca_crt = os.path.join(state_dir, "ca.crt")
        self.ca_key = os.path.join(state_dir, "ca.key")
        self.server_crt = os.path.join(state_dir, "apiserver.crt")
        self.server_key = os.path.join(state_dir, "apiserver.key")
        self.client_crt = os.path.join(state_dir, "admin.crt")
        self.client_key = os.path.join(state_dir, "admin.key")
        self.token_file = os.path.join(state_dir, "token")

    def ensure(self, ips: Iterable[str]) -> None:
        """Create what is missing; re-issue the serving certificate if an address is not in its SANs."""
        os.makedirs(self.dir, exist_ok=True)
        if not (os.path.exists(self.ca_crt) and os.path.exists(self.ca_key)):
            key = _key()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ccha-lab-kubeapi-ca")])
            cert = (_builder(name, name, key.public_key(), 3650)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                                 crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .sign(key, hashes.SHA256()))
            _write(self.ca_key, _pem_key(key), 0o600)
            _write(self.ca_crt, cert.public_bytes(serialization.Encoding.PEM))
            for stale in (self.server_crt, self.client_crt):
                if os.path.exists(stale):
                    os.unlink(stale)
        wanted = {ipaddress.ip_address(i) for i in list(ips) + ["127.0.0.1", "::1"]}
        if not os.path.exists(self.server_crt) or not wanted <= self._server_ips():
            self._issue(self.server_crt, self.server_key, "kube-apiserver", None,
                        ExtendedKeyUsageOID.SERVER_AUTH, wanted)
        if not os.path.exists(self.client_crt):
            self._issue(self.client_crt, self.client_key, ADMIN_USER, ADMIN_GROUP,
                        ExtendedKeyUsageOID.CLIENT_AUTH, set())
        if not os.path.exists(self.token_file):
            _write(self.token_file, os.urandom(24).hex().encode() + b"\n", 0o600)

    def _server_ips(self) -> set:
        with open(self.server_crt, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return set()
        return set(san.get_values_for_type(x509.IPAddress))

    def _issue(self, crt: str, keyfile: str, cn: str, org: str | None, eku, ips: set) -> None:
        with open(self.ca_key, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(self.ca_crt, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        key = _key()
        attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + \
            [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        b = (_builder(x509.Name(attrs), ca.subject, key.public_key(), 825)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False))
        if ips:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in DEFAULT_DNS] + [x509.IPAddress(i) for i in sorted(ips, key=str)]),
                critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        _write(keyfile, _pem_key(key), 0o600)
        _write(crt, cert.public_bytes(serialization.Encoding.PEM))

    def token(self) -> str:
        with open(self.token_file, encoding="ascii") as f:
            return f.read().strip()
