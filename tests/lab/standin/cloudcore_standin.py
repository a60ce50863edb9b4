"""CloudCore stand-in for the cloudcore.ha lab.

Serves what a CloudCore answers on its HTTPS port (10002) and nothing more:

    GET /ca.crt  -> 200, the CA certificate (PEM)
    GET /readyz  -> 200 (as CloudCore v1.3-v1.6 did)
    anything else -> 404

Every response carries ``X-Lab-Node: <node name>`` so the lab can tell which node answered
through the VIP.  Listens on ``::`` dual-stack (IPv4 and IPv6 on every address).

Where the certificate comes from is behind one small interface, ``CertSource``: today the
lab writes the files (``FileCertSource``); a later source can read the CloudCore ConfigMap
from the Kubernetes API stand-in, issue a certificate whose SANs are ``advertiseAddress``
and store it in Secret ``cloudcoresecret``, as CloudCore does.  Add a class, register it in
``CERT_SOURCES``, select it with ``cert_source`` in the config file.

Config: a JSON file (default /etc/cloudcore-standin/standin.json), every key optional:
    {"node": "ccha-node1", "port": 10002, "cert_source": "files",
     "cert_dir": "/etc/cloudcore-standin"}
SIGHUP reloads the certificate from its source.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from dataclasses import dataclass

DEFAULT_CONFIG = "/etc/cloudcore-standin/standin.json"


@dataclass(frozen=True)
class CertMaterial:
    """What the server needs: PEM texts of the server chain, its key and the CA."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes


class CertSource:
    """Where the stand-in's certificate comes from."""

    def load(self) -> CertMaterial:  # pragma: no cover - interface
        raise NotImplementedError


class FileCertSource(CertSource):
    """Certificate files written by the lab: ca.crt, server.crt, server.key."""

    def __init__(self, config: dict):
        self.directory = config.get("cert_dir", os.path.dirname(config["_path"]))

    def load(self) -> CertMaterial:
        def read(name: str) -> bytes:
            with open(os.path.join(self.directory, name), "rb") as handle:
                return handle.read()

        return CertMaterial(read("server.crt"), read("server.key"), read("ca.crt"))


CERT_SOURCES = {"files": FileCertSource}


def ssl_context(material: CertMaterial) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain wants paths; keep the key on disk only for the call.
    with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert, "wb") as handle:
            handle.write(material.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(material.key_pem)
        context.load_cert_chain(cert, key)
    return context


class State:
    """The current certificate and TLS context; swapped atomically on reload."""

    def __init__(self, source: CertSource):
        self.source = source
        self.lock = threading.Lock()
        self.material = None
        self.context = None
        self.reload()

    def reload(self) -> None:
        material = self.source.load()
        context = ssl_context(material)
        with self.lock:
            self.material, self.context = material, context


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "cloudcore-standin"
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Lab-Node", self.server.node)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = self.path.split("?", 1)[0]
        if path == "/ca.crt":
            self._send(200, self.server.state.material.ca_pem, "application/x-pem-file")
        elif path == "/readyz":
            self._send(200, b"ok")
        else:
            self._send(404, b"404 page not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt: str, *args) -> None:  # quiet: keep the journal small
        if os.environ.get("STANDIN_DEBUG"):
            super().log_message(fmt, *args)


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port: int, node: str, state: State):
        self.node, self.state = node, state
        super().__init__(("::", port), Handler, bind_and_activate=False)
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(10)
        with self.state.lock:
            context = self.state.context
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    config: dict = {}
    if os.path.exists(args.config):
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    config["_path"] = os.path.abspath(args.config)
    source_name = config.get("cert_source", "files")
    try:
        source = CERT_SOURCES[source_name](config)
    except KeyError:
        print(f"unknown cert_source {source_name!r}; known: {sorted(CERT_SOURCES)}", file=sys.stderr)
        return 2
    state = State(source)
    node = config.get("node") or socket.gethostname()
    server = Server(int(config.get("port", 10002)), node, state)
    signal.signal(signal.SIGHUP, lambda *_: state.reload())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"cloudcore-standin {node} listening on [::]:{server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
