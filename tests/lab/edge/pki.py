"""Edge client certificates, signed locally with the CloudCore CA's key.

A lab shortcut: a real edgecore gets its certificate from CloudCore (GET /edge.crt on 10002 with
a token, edge/pkg/edgehub/certificate/certmanager.go). The result is the same certificate:
the CSR's subject is O=system:nodes, CN=system:node:<node> (certmanager.go GetEdgeCert; C/L/ST
of the CSR are dropped by the signer), EC P-256, KeyUsage digitalSignature|keyEncipherment,
ExtKeyUsage clientAuth, valid 365 days (pkg/security/certs/x509_certs.go SignCerts;
cloudcore v1alpha1 default.go EdgeCertSigningDuration 365).
"""
from __future__ import annotations

import datetime
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def load_ca(cert_path: str, key_path: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key, PEM or DER (the kubeedge/casecret Secret holds DER)."""
    cert_data, key_data = _read(cert_path), _read(key_path)
    cert = (x509.load_pem_x509_certificate(cert_data) if b"-----BEGIN" in cert_data
            else x509.load_der_x509_certificate(cert_data))
    key = (serialization.load_pem_private_key(key_data, None) if b"-----BEGIN" in key_data
           else serialization.load_der_private_key(key_data, None))
    return cert, key  # type: ignore[return-value]


def ca_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def sign_edge(ca: x509.Certificate, ca_key, node: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``node``, as CloudCore's signEdgeCert makes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(secrets.randbelow(2 ** 63 - 1) + 1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_edge(directory: str, node: str, cert_pem: bytes, key_pem: bytes) -> tuple[str, str]:
    """directory/node/server.crt and server.key (0600): edgecore's TLSCertFile/TLSPrivateKeyFile names."""
    path = os.path.join(directory, node)
    os.makedirs(path, mode=0o700, exist_ok=True)
    cert_file, key_file = os.path.join(path, "server.crt"), os.path.join(path, "server.key")
    with open(cert_file, "wb") as handle:
        handle.write(cert_pem)
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(key_pem)
    return cert_file, key_file
