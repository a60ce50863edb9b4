# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: what keepalived's config test needs on this machine, and a local TLS server."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile

import pytest

import datetime
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEEPALIVED = shutil.which("keepalived") or next(
    (p for p in ("/usr/sbin/keepalived", "/sbin/keepalived") if os.path.exists(p)), None)


def vrrp_interface():
    """A non-loopback interface: keepalived refuses lo for VRRP and needs the interface to exist."""
    names = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
    if "eth0" in names:
        return "eth0"
    return next((n for n in names if n != "lo"), None)


def script_user():
    """keepalived_script when it exists (what the role creates), else nobody: any non-root user
    exercises the same path in keepalived (and its config-test bug with non-root users)."""
    for name in ("keepalived_script", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return "root"


@pytest.fixture
def keepalived_env():
    """(keepalived binary, interface, script user, check script path) for a real config test.

    enable_script_security disables a script in a path writable by non-root, so the script goes
    into a fresh root-owned 0755 directory (mkdtemp makes 0700, which the script user cannot enter)."""
    if KEEPALIVED is None:
        pytest.skip("keepalived is not installed: the real config test cannot run")
    if os.geteuid() != 0:
        pytest.skip("keepalived's config test needs root (script user switching, netlink)")
    interface = vrrp_interface()
    if interface is None:
        pytest.skip("no non-loopback network interface: keepalived refuses lo for VRRP")
    directory = tempfile.mkdtemp(prefix="cloudcore-ha-script-")
    os.chmod(directory, 0o755)
    script = os.path.join(directory, "check_cloudcore")
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    try:
        yield KEEPALIVED, interface, script_user(), script
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# certificates and a local TLS server

def make_cert(ips=("127.0.0.1", "::1"), dns=("cloudcore.test",), cn="cloudcore", days=365):
    """(certificate, PEM cert bytes, PEM key bytes): a self-signed EC certificate with SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(d) for d in dns]
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


class LocalTLSServer(object):
    """HTTPS on 127.0.0.1:<free port>; `status` per path, or `hang` to accept and never answer."""

    def __init__(self, tmp_path, ips=("127.0.0.1", "::1"), dns=("cloudcore.test",)):
        self.cert, cert_pem, key_pem = make_cert(ips=ips, dns=dns)
        self.cert_pem = cert_pem
        certfile = tmp_path / "server.crt"
        keyfile = tmp_path / "server.key"
        certfile.write_bytes(cert_pem)
        keyfile.write_bytes(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(certfile), str(keyfile))
        self.statuses = {"/ca.crt": 200}
        self.hang = False
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                if server.hang:
                    server._release.wait(30)
                    return
                status = server.statuses.get(self.path, 404)
                body = b"ok\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path="/ca.crt"):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tls_server(tmp_path):
    with LocalTLSServer(tmp_path) as server:
        yield server


@pytest.fixture
def closed_port():
    """A TCP port on 127.0.0.1 with nothing listening (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
