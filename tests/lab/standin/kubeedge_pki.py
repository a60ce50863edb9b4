"""CloudCore's certificates and token, made the way CloudCore v1.23.1 makes them (python3-cryptography only).

The one place for the formats (the stand-in, its tests and molecule/kubernetes use it). Upstream
(kubeedge/kubeedge v1.23.1):

- the CA (pkg/security/certs/x509_ca.go ``NewSelfSigned``): EC P-256 key (``GenPrivateKey``,
  SEC 1 DER), self-signed, subject CN ``KubeEdge``, serial 1024, NotBefore now, NotAfter now +
  364*100 days, KeyUsage digitalSignature|keyEncipherment|keyCertSign (critical), ExtKeyUsage
  serverAuth+clientAuth, BasicConstraints CA:TRUE without pathlen (critical), and the
  SubjectKeyIdentifier Go's x509.CreateCertificate adds to every CA (SHA-1 of the public key);
- a certificate signed by that CA (x509_certs.go ``SignCerts``): random serial in [0, 2^63-1),
  NotBefore now, NotAfter now + expiration, KeyUsage digitalSignature|keyEncipherment (critical),
  the given ExtKeyUsages, no BasicConstraints, AuthorityKeyIdentifier = the CA's SKI (Go copies
  the parent's SubjectKeyId), SANs = DNS names + IPs. CloudCore's serving certificate
  (cloud/pkg/cloudhub/servers/httpserver/pre_server.go ``createCertsToSecret``): O/CN
  ``KubeEdge``, serverAuth, 100 years (364*100 days), IPs = advertiseAddress, DNS = dnsNames;
  an edge certificate (certificate/certs.go ``signEdgeCert``): CN and O copied from the CSR (the
  CSR's C/ST/L are dropped), the CSR's SANs, usages from the ``ExtKeyUsages`` header (default
  clientAuth), ``edgeCertSigningDuration`` days;
- Secrets ``kubeedge/casecret`` (``cadata`` = CA DER, ``cakeydata`` = key SEC 1 DER) and
  ``kubeedge/cloudcoresecret`` (``cloudcoredata`` = certificate DER, ``cloudcorekeydata`` = key
  SEC 1 DER); ``kubeedge/tokensecret`` (``tokendata``) holds the join token
  (pkg/security/token/token.go ``Create``): ``<sha256 hex of the CA DER>.<JWT HS256>``, the JWT
  signed with the CA key's DER bytes as HMAC key, claims ``{"exp": now + 2 * refresh hours}``.

Works with python3-cryptography 38 (Debian 12) and newer: no API younger than that.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMESPACE = "kubeedge"
CONFIGMAP = "cloudcore"
CONFIG_KEY = "cloudcore.yaml"
CA_SECRET, CA_CERT_KEY, CA_KEY_KEY = "casecret", "cadata", "cakeydata"
CERT_SECRET, CERT_KEY, KEY_KEY = "cloudcoresecret", "cloudcoredata", "cloudcorekeydata"
TOKEN_SECRET, TOKEN_KEY = "tokensecret", "tokendata"
PROJECT_NAME = "KubeEdge"  # common/constants ProjectName
YEAR100 = datetime.timedelta(days=364 * 100)  # pre_server.go / x509_ca.go: time.Hour * 24 * 364 * 100
CA_SERIAL = 1024  # x509_ca.go: big.NewInt(1024)

# Go's x509.ExtKeyUsage numbers (crypto/x509), as edgecore sends them in the ExtKeyUsages header.
EXT_KEY_USAGES = {
    0: ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE if hasattr(ExtendedKeyUsageOID, "ANY_EXTENDED_KEY_USAGE")
    else x509.ObjectIdentifier("2.5.29.37.0"),
    1: ExtendedKeyUsageOID.SERVER_AUTH, 2: ExtendedKeyUsageOID.CLIENT_AUTH, 3: ExtendedKeyUsageOID.CODE_SIGNING,
    4: ExtendedKeyUsageOID.EMAIL_PROTECTION, 5: x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    6: x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"), 7: x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    8: ExtendedKeyUsageOID.TIME_STAMPING, 9: ExtendedKeyUsageOID.OCSP_SIGNING,
    10: x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"), 11: x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    12: x509.ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"), 13: x509.ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}


class SignError(ValueError):
    """What upstream's SignCerts returns as an error (the message is upstream's)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _sec1(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=cert_sign,
                         content_commitment=False, data_encipherment=False, key_agreement=False,
                         crl_sign=False, encipher_only=False, decipher_only=False)


def new_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """GenPrivateKey: an EC P-256 key and its SEC 1 DER (x509.MarshalECPrivateKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _sec1(key)


def new_ca() -> tuple[bytes, bytes]:
    """A CloudCore CA as x509_ca.go NewSelfSigned makes it: (certificate DER, key SEC 1 DER)."""
    key, key_der = new_key()
    now = _now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PROJECT_NAME)])
    # extension order as Go's buildCertExtensions writes them
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(CA_SERIAL).not_valid_before(now).not_valid_after(now + YEAR100)
            .add_extension(_key_usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), key_der


def _sign(ca_der: bytes, ca_key_der: bytes, public_key, cn: str, orgs: list[str], usages: list,
          dns: list[str], ips: list, lifetime: datetime.timedelta) -> bytes:
    """x509_certs.go SignCerts: the certificate DER."""
    if not cn:
        raise SignError("must specify a CommonName")
    if not usages:
        raise SignError("must specify at least one ExtKeyUsage")
    try:
        ca = x509.load_der_x509_certificate(ca_der)
    except ValueError as exc:
        raise SignError(f"failed to parse CA, err: {exc}") from exc
    try:
        ca_key = serialization.load_der_private_key(ca_key_der, password=None)
    except ValueError as exc:
        raise SignError(f"failed to parse CA private key, err: {exc}") from exc
    now = _now()
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = (x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(ca.subject)
               .public_key(public_key).serial_number(secrets.randbelow(2 ** 63 - 1))
               .not_valid_before(now).not_valid_after(now + lifetime)
               .add_extension(_key_usage(False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
    except x509.ExtensionNotFound:
        pass
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ip) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def sign_server(ca_der: bytes, ca_key_der: bytes, ips: list[str], dns: list[str]) -> tuple[bytes, bytes]:
    """CloudCore's serving certificate (createCertsToSecret): (certificate DER, key SEC 1 DER).

    ``ips`` must be IP addresses (net.ParseIP); ``dns`` is taken as it is, "" included: the
    default configuration's dnsNames is [""] and Go signs an empty DNS SAN for it.
    """
    key, key_der = new_key()
    cert = _sign(ca_der, ca_key_der, key.public_key(), PROJECT_NAME, [PROJECT_NAME],
                 [ExtendedKeyUsageOID.SERVER_AUTH], list(dns), [ipaddress.ip_address(ip) for ip in ips], YEAR100)
    return cert, key_der


def parse_usages(header: str) -> list:
    """The ExtKeyUsages header (a JSON list of Go x509.ExtKeyUsage numbers); empty -> clientAuth."""
    if not header:
        return [ExtendedKeyUsageOID.CLIENT_AUTH]
    try:
        values = json.loads(header)
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"cannot unmarshal {header!r} into []x509.ExtKeyUsage")
    except ValueError as exc:
        raise SignError(f"unmarshal http header ExtKeyUsages fail, err: {exc}") from exc
    unknown = [v for v in values if v not in EXT_KEY_USAGES]
    if unknown:  # Go's CreateCertificate refuses them
        raise SignError("fail to signCerts, err: failed to create certificate, err: x509: unknown extended key usage")
    return [EXT_KEY_USAGES[v] for v in values]


def sign_csr(csr_der: bytes, ca_der: bytes, ca_key_der: bytes, usages: list, days: int) -> bytes:
    """An edge certificate from a CSR (signEdgeCert -> SignCerts with CSR): the certificate DER.

    Like upstream the CSR's own signature is not checked; CN, O and SANs come from it.
    """
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError as exc:
        raise SignError(f"fail to signCerts, err: failed to parse csr, err: {exc}") from exc
    cn = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    dns, ips = [], []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        pass
    try:
        return _sign(ca_der, ca_key_der, csr.public_key(), cn[0] if cn else "", orgs, usages, dns, ips,
                     datetime.timedelta(days=days))
    except SignError as exc:
        raise SignError(f"fail to signCerts, err: {exc}") from exc


# ------------------------------------------------------------------------------- token (JWT HS256)
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ca_hash(ca_der: bytes) -> str:
    """token.go hashCA: hex SHA-256 of the CA DER."""
    return hashlib.sha256(ca_der).hexdigest()


def create_token(ca_der: bytes, ca_key_der: bytes, refresh_hours: int, now: float | None = None) -> str:
    """token.go Create: ``<caHash>.<jwt>``; the JWT expires after twice the refresh interval."""
    expires = int((now if now is not None else time.time()) + 2 * 3600 * refresh_hours)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"exp": expires}, separators=(",", ":")).encode())
    signature = hmac.new(ca_key_der, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return ".".join([ca_hash(ca_der), header, claims, _b64url(signature)])


_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def verify_token(token: str, ca_key_der: bytes, now: float | None = None) -> None:
    """token.go Verify (golang-jwt v5 Parse with the CA key): returns, or raises ValueError(reason)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("token is malformed: token contains an invalid number of segments")
    try:
        header = json.loads(_unb64url(parts[0]))
        claims = json.loads(_unb64url(parts[1]))
        signature = _unb64url(parts[2])
    except ValueError as exc:
        raise ValueError(f"token is malformed: {exc}") from exc
    digest = _HMAC.get(header.get("alg") if isinstance(header, dict) else None)
    if digest is None:
        raise ValueError("token is unverifiable: error while executing keyfunc: invalid token method type, "
                         f"want *jwt.SigningMethodHMAC, but is {header.get('alg') if isinstance(header, dict) else '?'}")
    wanted = hmac.new(ca_key_der, f"{parts[0]}.{parts[1]}".encode(), digest).digest()
    if not hmac.compare_digest(wanted, signature):
        raise ValueError("token signature is invalid: signature is invalid")
    current = now if now is not None else time.time()
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and current >= exp:
        raise ValueError("token has invalid claims: token is expired")
    nbf = claims.get("nbf") if isinstance(claims, dict) else None
    if isinstance(nbf, (int, float)) and current < nbf:
        raise ValueError("token has invalid claims: token is not valid yet")


def real_token(token: str, ca_der: bytes) -> str:
    """token.go VerifyCAAndGetRealToken, what edgecore does with the join token before /edge.crt."""
    parts = token.split(".")
    if len(parts) != 4:
        raise ValueError(f"token {token} credentials are in the wrong format")
    if parts[0] != ca_hash(ca_der):
        raise ValueError(f"failed to validate CA certificate. tokenCAhash: {parts[0]}, CAhash: {ca_hash(ca_der)}")
    return ".".join(parts[1:])


# ------------------------------------------------------------------------------- conversions
def cert_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def key_pem(der: bytes) -> bytes:
    """SEC 1 (or PKCS 8) DER key -> PKCS 8 PEM, what ssl.load_cert_chain reads."""
    key = serialization.load_der_private_key(der, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_csr(node: str) -> tuple[bytes, bytes]:
    """The CSR edgecore sends to /edge.crt (certmanager.go GetEdgeCert): (CSR DER, key SEC 1 DER)."""
    key, key_der = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                         x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Zhejiang"),
                         x509.NameAttribute(NameOID.LOCALITY_NAME, "Hangzhou"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER), key_der


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


def fingerprint(der: bytes) -> str:
    """Short SHA-256 of a DER blob, for the log (which CA is this?)."""
    return hashlib.sha256(der).hexdigest()[:16]
