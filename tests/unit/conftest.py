# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: what keepalived's config test needs on this machine, and a local TLS server."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
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
# haproxy

HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.path.exists(p)), None)


def haproxy_binaries():
    """The haproxy binaries the config tests run: the installed one, plus any listed (colon-separated)
    in CLOUDCORE_HA_HAPROXY_EXTRA, e.g. a wrapper around Debian 13's haproxy 3.0 for reference runs."""
    extra = [p for p in os.environ.get("CLOUDCORE_HA_HAPROXY_EXTRA", "").split(":") if p]
    return [p for p in [HAPROXY] + extra if p]


@pytest.fixture
def haproxy_user():
    """haproxy's own user when the package created it, else root: the config test resolves the user."""
    try:
        pwd.getpwnam("haproxy")
        return "haproxy"
    except KeyError:
        return "root"


@pytest.fixture(params=haproxy_binaries() or [None], ids=lambda path: os.path.basename(path or "none"))
def haproxy_binary(request):
    """Each haproxy binary in turn; skips without haproxy installed (apt-get install haproxy)."""
    if request.param is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy): the real config test cannot run")
    return request.param


@pytest.fixture
def ca_file(tmp_path):
    """A CA certificate file, as the health check's ca-file (haproxy loads it in its config test)."""
    path = tmp_path / "ca.crt"
    path.write_bytes(make_cert(cn="cloudcore-ha test CA")[1])
    return str(path)


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


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # clients under test hang up after reading the certificate (a reset on Python 3.13): not an error
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


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

        self.httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = self.context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        # a short poll interval: shutdown() waits for it, and the default 0.5 s adds up over the suites
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

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
