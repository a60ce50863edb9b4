# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Certificate parsing for CloudCore's server certificate: SANs, subject, expiry, VIP coverage.

CloudCore keeps its server certificate in Secret kubeedge/cloudcoresecret, key `cloudcoredata`,
as DER (so the Secret's data value is base64 of DER); it serves the same certificate on port 10002.
Plain Python without Ansible imports; `cryptography` is imported lazily-guarded so that a module
can report it missing with missing_required_lib.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
import socket
import ssl
import traceback
from typing import Dict, Optional

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import parse_vip

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None  # type: Optional[str]
except ImportError:  # pragma: no cover - exercised only without cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

_PEM_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s+.+?\s+-----END CERTIFICATE-----", re.DOTALL)
EXPECTED = ("expected an X.509 certificate as PEM text, DER bytes, or base64 of either"
            " (as in a Kubernetes Secret's data, e.g. kubeedge/cloudcoresecret cloudcoredata)")


class CertificateError(ValueError):
    """The input is not a certificate; names the variable, what was found and what was expected."""

    def __init__(self, variable: str, found: str, rule: str = EXPECTED):
        self.variable = variable
        self.found = found
        self.rule = rule
        super().__init__("%s: %s; %s" % (variable, found, rule))


def _describe(data: object) -> str:
    if isinstance(data, (bytes, bytearray)):
        return "%d bytes starting %r" % (len(data), bytes(data[:16]))
    if isinstance(data, str):
        return "text of %d characters starting %r" % (len(data), data[:24])
    return "a value of type %s" % type(data).__name__


def load_certificate(data: object, variable: str = "cert") -> "x509.Certificate":
    """The first certificate in PEM text, DER bytes or base64 of either."""
    if not HAS_CRYPTOGRAPHY:
        raise CertificateError(variable, "the Python library cryptography is not installed",
                               "install python3-cryptography (pip: cryptography)")
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogateescape")
    elif isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    else:
        raise CertificateError(variable, _describe(data))
    candidates = [raw]
    stripped = b"".join(raw.split())
    if stripped and not raw.lstrip().startswith(b"-----"):
        try:
            candidates.append(base64.b64decode(stripped, validate=True))
        except (binascii.Error, ValueError):
            pass
    for candidate in candidates:
        match = _PEM_RE.search(candidate)
        try:
            if match:
                return x509.load_pem_x509_certificate(match.group(0))
            if candidate[:1] == b"\x30":  # DER SEQUENCE
                return x509.load_der_x509_certificate(candidate)
        except ValueError:
            continue
    raise CertificateError(variable, _describe(data))


def _utc(cert: "x509.Certificate", name: str) -> datetime.datetime:
    aware = getattr(cert, name + "_utc", None)  # cryptography >= 42
    if aware is not None:
        return aware
    return getattr(cert, name).replace(tzinfo=datetime.timezone.utc)


def certificate_facts(cert: "x509.Certificate") -> Dict[str, object]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        dns = list(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        ips, dns = [], []
    return {
        "ip": ips,
        "dns": dns,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": _utc(cert, "not_valid_before").isoformat(),
        "not_after": _utc(cert, "not_valid_after").isoformat(),
    }


def cert_sans(data: object, variable: str = "cert") -> Dict[str, object]:
    """{ip: [...], dns: [...], subject, issuer, not_before, not_after (ISO 8601, UTC)}."""
    return certificate_facts(load_certificate(data, variable))


def vip_in_sans(vip: object, cert: object, variable: str = "cert") -> bool:
    """Whether the VIP (cloudcore_vip, with its prefix) is among the certificate's IP SANs; addresses
    are compared, not strings. cert: certificate data, or the result of cert_sans."""
    address = parse_vip(vip, "vip").ip
    if isinstance(cert, dict):
        if "ip" not in cert or not isinstance(cert["ip"], list):
            raise CertificateError(variable, "a mapping without an 'ip' list",
                                   "expected certificate data or the result of cloudcore.ha.cert_sans")
        ips = cert["ip"]
    else:
        ips = cert_sans(cert, variable)["ip"]
    for ip in ips:
        try:
            if ipaddress.ip_address(str(ip)) == address:
                return True
        except ValueError:
            continue
    return False


def fetch_served_certificate(host: str, port: int, timeout: float, server_name: Optional[str] = None) -> bytes:
    """DER of the certificate a TLS server presents. No verification: we want to read it, whatever it is."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if server_name is None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            server_name = host  # SNI for a host name, as a client would send it
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise CertificateError("host", "%s:%d presented no certificate" % (host, port), "expected a TLS server certificate")
    return der


def days_left(not_after_iso: str, now: Optional[datetime.datetime] = None) -> int:
    end = datetime.datetime.fromisoformat(not_after_iso)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return int((end - now).total_seconds() // 86400)


def served_cert_facts(host: str, port: int, timeout: float, vip: Optional[str] = None,
                      server_name: Optional[str] = None) -> Dict[str, object]:
    der = fetch_served_certificate(host, port, timeout, server_name)
    facts = cert_sans(der, "served certificate")
    result = {
        "sans": {"ip": facts["ip"], "dns": facts["dns"]},
        "subject": facts["subject"],
        "issuer": facts["issuer"],
        "not_before": facts["not_before"],
        "not_after": facts["not_after"],
        "days_left": days_left(str(facts["not_after"])),
        "pem": x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }  # type: Dict[str, object]
    if vip is not None:
        result["vip_covered"] = vip_in_sans(vip, facts)
    return result
