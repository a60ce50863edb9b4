"""CloudCore's certificates, made the way CloudCore makes them (python3-cryptography only).

KubeEdge cloud/pkg/cloudhub/servers/httpserver (pre_server.go PrepareAllCerts, certutil.go):

- the CA: EC P-256, self-signed, CN ``KubeEdge``; Secret ``kubeedge/casecret`` holds
  ``cadata`` (certificate, DER) and ``cakeydata`` (key, SEC 1 DER);
- CloudCore's serving certificate: EC P-256, O/CN ``KubeEdge``, signed by that CA, IP SANs =
  ``modules.cloudHub.advertiseAddress`` and DNS SANs = ``dnsNames``; Secret
  ``kubeedge/cloudcoresecret`` holds ``cloudcoredata`` (certificate, DER) and
  ``cloudcorekeydata`` (key, SEC 1 DER).

The same formats as molecule/kubernetes/cloudcore_standin.py (which needs the kubernetes client);
this module needs nothing but python3-cryptography, so the lab nodes can use it.
"""
from __future__ import annotations

import datetime
import ipaddress
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMESPACE = "kubeedge"
CONFIGMAP = "cloudcore"
CONFIG_KEY = "cloudcore.yaml"
CA_SECRET, CA_CERT_KEY, CA_KEY_KEY = "casecret", "cadata", "cakeydata"
CERT_SECRET, CERT_KEY, KEY_KEY = "cloudcoresecret", "cloudcoredata", "cloudcorekeydata"
YEAR100 = datetime.timedelta(days=364 * 100)


def _sec1(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=cert_sign,
                         content_commitment=False, data_encipherment=False, key_agreement=False,
                         crl_sign=False, encipher_only=False, decipher_only=False)


def new_ca() -> tuple[bytes, bytes]:
    """A CloudCore CA: (certificate DER, key SEC 1 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KubeEdge")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1024).not_valid_before(now).not_valid_after(now + YEAR100)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), _sec1(key)


def sign_server(ca_der: bytes, ca_key_der: bytes, ips: list[str], dns: list[str]) -> tuple[bytes, bytes]:
    """CloudCore's serving certificate for ips + dns: (certificate DER, key SEC 1 DER)."""
    ca = x509.load_der_x509_certificate(ca_der)
    ca_key = serialization.load_der_private_key(ca_key_der, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(d) for d in dns]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KubeEdge"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, "KubeEdge")]))
               .issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(secrets.randbelow(2 ** 63 - 1) + 1)
               .not_valid_before(now).not_valid_after(now + YEAR100)
               .add_extension(_key_usage(False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER), _sec1(key)


def cloudhub_addresses(config: dict) -> tuple[list[str], list[str], list[str]]:
    """(IPs, DNS names, rejected entries) of a parsed cloudcore.yaml: what CloudCore signs for."""
    hub = ((config or {}).get("modules") or {}).get("cloudHub") or {}
    ips, rejected = [], []
    for value in hub.get("advertiseAddress") or []:
        try:
            ips.append(str(ipaddress.ip_address(str(value).strip())))
        except ValueError:
            rejected.append(str(value))
    dns = [str(d) for d in hub.get("dnsNames") or [] if d]
    return ips, dns, rejected


def cert_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def key_pem(der: bytes) -> bytes:
    """SEC 1 (or PKCS 8) DER key -> PKCS 8 PEM, what ssl.load_cert_chain reads."""
    key = serialization.load_der_private_key(der, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def describe(der: bytes) -> str:
    """``serial=… sans=IP:…,DNS:…`` of a DER certificate, for the log."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [f"IP:{v}" for v in san.get_values_for_type(x509.IPAddress)] + \
                [f"DNS:{v}" for v in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return f"serial={cert.serial_number:x} sans={','.join(names) or '-'}"
