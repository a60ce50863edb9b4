"""CloudCore stand-in for the cloudcore.ha lab.

Serves what a CloudCore answers on its HTTPS port (10002) and nothing more:

    GET /ca.crt  -> 200, the CA certificate (PEM from the files; DER, as CloudCore's getCA
                    writes it, when the certificate comes from the Kubernetes API)
    GET /readyz  -> 200 (as CloudCore v1.3-v1.6 did)
    anything else -> 404

Every response carries ``X-Lab-Node: <node name>`` so the lab can tell which node answered
through the VIP.  Listens on ``::`` dual-stack (IPv4 and IPv6 on every address).

Where the certificate comes from is behind one small interface, ``CertSource``:

- ``files`` (``FileCertSource``): ca.crt, server.crt, server.key written by the lab (SANs = both
  VIPs, the node's addresses, loopback).
- ``kubernetes`` (``KubeCertSource``): does toward the Kubernetes API what CloudCore does at
  start (pre_server.go PrepareAllCerts): reads ConfigMap ``kubeedge/cloudcore``
  (``cloudcore.yaml``: ``modules.cloudHub.advertiseAddress`` and ``dnsNames``), creates Secret
  ``kubeedge/casecret`` (the CA) and ``kubeedge/cloudcoresecret`` (the serving certificate,
  SANs = advertiseAddress + dnsNames) when they are missing -- a 409 from a racing node means
  "use the other node's" -- and serves that certificate. Every ``poll_seconds`` it reads the
  Secrets again and switches to a changed certificate; a deleted cloudcoresecret is signed anew
  from the CURRENT ConfigMap, like a restarted CloudCore. While there is no ConfigMap (the
  roles have not run, or the namespace was removed) it serves the lab's file certificate.
  Standard library + python3-cryptography (+ python3-yaml for cloudcore.yaml) only.

Add a class, register it in ``CERT_SOURCES``, select it with ``cert_source`` in the config file.

Config: a JSON file (default /etc/cloudcore-standin/standin.json), every key optional:
    {"node": "ccha-node1", "port": 10002, "cert_source": "kubernetes",
     "cert_dir": "/etc/cloudcore-standin", "kubeconfig": "/etc/cloudcore-standin/kubeconfig",
     "poll_seconds": 2}
SIGHUP reloads the certificate from its source. One log line (stdout: the journal) per event.
"""
from __future__ import annotations

import argparse
import base64
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


def log(msg: str) -> None:
    """One line per event; stdout goes to the journal."""
    print(msg, flush=True)


@dataclass(frozen=True)
class CertMaterial:
    """What the server needs: PEM texts of the server chain, its key and the CA.

    ``ca_body`` is what /ca.crt answers (default: ``ca_pem``); ``origin`` says where it came from.
    """

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    ca_body: bytes | None = None
    origin: str = ""

    def same(self, other: "CertMaterial | None") -> bool:
        return other is not None and (self.cert_pem, self.key_pem, self.ca_pem, self.ca_body) == \
            (other.cert_pem, other.key_pem, other.ca_pem, other.ca_body)


class CertSource:
    """Where the stand-in's certificate comes from.

    ``poll_seconds``: how often ``load`` is called again (None: only at start and on SIGHUP).
    """

    poll_seconds: float | None = None

    def load(self) -> CertMaterial:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


class FileCertSource(CertSource):
    """Certificate files written by the lab: ca.crt, server.crt, server.key."""

    def __init__(self, config: dict):
        self.directory = config.get("cert_dir", os.path.dirname(config["_path"]))

    def load(self) -> CertMaterial:
        def read(name: str) -> bytes:
            with open(os.path.join(self.directory, name), "rb") as handle:
                return handle.read()

        return CertMaterial(read("server.crt"), read("server.key"), read("ca.crt"),
                            origin=f"the lab's files in {self.directory}")

    def describe(self) -> str:
        return f"files ({self.directory})"


class KubeCertSource(CertSource):
    """CloudCore's certificate handling against the Kubernetes API (see the module docstring)."""

    def __init__(self, config: dict):
        import kubeedge_pki  # python3-cryptography: only this source needs it

        self.pki = kubeedge_pki
        self.files = FileCertSource(config)
        self.kubeconfig = config.get("kubeconfig") or os.path.join(
            config.get("cert_dir", os.path.dirname(config["_path"])), "kubeconfig")
        self.namespace = config.get("namespace", kubeedge_pki.NAMESPACE)
        self.poll_seconds = float(config.get("poll_seconds", 2))
        self.timeout = float(config.get("api_timeout", 3))
        self.client = None
        self.current: CertMaterial | None = None  # last certificate taken from the API
        self.status = None  # the last logged condition: log a line only when it changes

    def describe(self) -> str:
        return f"kubernetes (kubeconfig {self.kubeconfig}, namespace {self.namespace})"

    def _note(self, status: str, message: str | None = None) -> None:
        if status != self.status:
            self.status = status
            log(message or status)

    def _path(self, resource: str, name: str | None = None) -> str:
        from kubeclient import namespaced

        return namespaced(self.namespace, resource, name)

    def _api(self):
        if self.client is None:
            from kubeclient import KubeClient

            self.client = KubeClient(self.kubeconfig, timeout=self.timeout)
        return self.client

    def load(self) -> CertMaterial:
        from kubeclient import KubeError

        try:
            material = self._from_api()
        except FileNotFoundError as exc:
            self._note("no-kubeconfig", f"no kubeconfig ({exc.filename}): serving the lab's file certificate")
            return self.files.load()
        except KubeError as exc:
            if exc.status == 404:  # the namespace went away between two calls
                material = None
            else:
                keep = "the certificate from the API" if self.current else "the lab's file certificate"
                self._note(f"api-error {exc.status} {exc.reason}", f"Kubernetes API: {exc}; keeping {keep}")
                return self.current or self.files.load()
        except (ValueError, KeyError, TypeError, ImportError, OSError) as exc:  # kubeconfig, ConfigMap, Secret
            keep = "the certificate from the API" if self.current else "the lab's file certificate"
            self._note(f"bad {type(exc).__name__} {exc}", f"{type(exc).__name__}: {exc}; keeping {keep}")
            return self.current or self.files.load()
        if material is None:
            self.current = None
            return self.files.load()
        self.current = material
        return material

    def _config(self) -> tuple[list[str], list[str]] | None:
        """advertiseAddress IPs and dnsNames of the current ConfigMap, or None without one."""
        pki = self.pki
        cm = self._api().get(self._path("configmaps", pki.CONFIGMAP))
        if cm is None:
            self._note("no-configmap", f"no ConfigMap {self.namespace}/{pki.CONFIGMAP} (yet): "
                                       "serving the lab's file certificate")
            return None
        text = (cm.get("data") or {}).get(pki.CONFIG_KEY, "")
        try:
            import yaml  # python3-yaml (in the lab image)

            conf = yaml.safe_load(text) or {}
        except ImportError:
            conf = json.loads(text or "{}")  # no yaml module: JSON still parses
        ips, dns, rejected = pki.cloudhub_addresses(conf if isinstance(conf, dict) else {})
        if rejected:
            log(f"advertiseAddress entries that are not IP addresses, ignored: {rejected}")
        if not ips:
            self._note("no-advertise", f"ConfigMap {self.namespace}/{pki.CONFIGMAP}: advertiseAddress is empty "
                                       "(CloudCore would exit): serving the lab's file certificate")
            return None
        return ips, dns

    def _ca(self) -> tuple[bytes, bytes] | None:
        """(cadata, cakeydata) from casecret, created when missing; None when the namespace is gone."""
        pki, api = self.pki, self._api()
        secret = api.get(self._path("secrets", pki.CA_SECRET))
        if secret is None:
            ca_der, ca_key = pki.new_ca()
            body = self._secret(pki.CA_SECRET, {pki.CA_CERT_KEY: ca_der, pki.CA_KEY_KEY: ca_key})
            if api.create(self._path("secrets"), body) is not None:
                log(f"created Secret {self.namespace}/{pki.CA_SECRET} (CA {pki.describe(ca_der)})")
                return ca_der, ca_key
            log(f"Secret {self.namespace}/{pki.CA_SECRET}: created by another CloudCore meanwhile (409): using it")
            secret = api.get(self._path("secrets", pki.CA_SECRET))
            if secret is None:
                return None
        data = secret.get("data") or {}
        return base64.b64decode(data[pki.CA_CERT_KEY]), base64.b64decode(data[pki.CA_KEY_KEY])

    def _secret(self, name: str, data: dict[str, bytes]) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": self.namespace},
                "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}}

    def _from_api(self) -> CertMaterial | None:
        pki, api = self.pki, self._api()
        secret = api.get(self._path("secrets", pki.CERT_SECRET))
        if secret is None:
            wanted = self._config()
            if wanted is None:
                return None
            ips, dns = wanted
            ca = self._ca()
            if ca is None:
                return None
            cert_der, key_der = pki.sign_server(ca[0], ca[1], ips, dns)
            created = api.create(self._path("secrets"),
                                 self._secret(pki.CERT_SECRET, {pki.CERT_KEY: cert_der, pki.KEY_KEY: key_der}))
            if created is not None:
                secret = created
                log(f"created Secret {self.namespace}/{pki.CERT_SECRET} for advertiseAddress {ips} dnsNames {dns} "
                    f"({pki.describe(cert_der)})")
            else:
                log(f"Secret {self.namespace}/{pki.CERT_SECRET}: created by another CloudCore meanwhile (409): "
                    "using it")
                secret = api.get(self._path("secrets", pki.CERT_SECRET))
                if secret is None:
                    return None
        data = secret.get("data") or {}
        cert_der = base64.b64decode(data[pki.CERT_KEY])
        key_der = base64.b64decode(data[pki.KEY_KEY])
        ca_secret = api.get(self._path("secrets", pki.CA_SECRET))
        if ca_secret is not None:
            ca_der = base64.b64decode((ca_secret.get("data") or {})[pki.CA_CERT_KEY])
        elif self.current is not None and self.current.ca_body:
            ca_der = self.current.ca_body  # CloudCore keeps the CA it loaded at start
        else:
            ca_der = b""
        meta = secret.get("metadata") or {}
        if self.status is not None and self.status.startswith("api-error"):
            log("Kubernetes API: reachable again")
        self.status = "secret"  # State logs the switch to a new certificate
        return CertMaterial(pki.cert_pem(cert_der), pki.key_pem(key_der),
                            pki.cert_pem(ca_der) if ca_der else b"", ca_body=ca_der,
                            origin=f"Secret {self.namespace}/{pki.CERT_SECRET} (uid {meta.get('uid', '?')}, "
                                   f"resourceVersion {meta.get('resourceVersion', '?')}, {pki.describe(cert_der)})")


CERT_SOURCES = {"files": FileCertSource, "kubernetes": KubeCertSource}


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
    """The current certificate and TLS context; swapped atomically when the source's answer changes."""

    def __init__(self, source: CertSource):
        self.source = source
        self.lock = threading.Lock()
        self.refresh_lock = threading.Lock()
        self.material: CertMaterial | None = None
        self.context = None
        self.wake = threading.Event()
        self.reload()

    def reload(self) -> bool:
        """Ask the source; switch when the certificate changed. True when it did."""
        with self.refresh_lock:
            material = self.source.load()
            if material.same(self.material):
                return False
            context = ssl_context(material)
            with self.lock:
                self.material, self.context = material, context
            log(f"serving the certificate of {material.origin or 'the source'}")
            return True

    def refresher(self) -> None:
        """Reload every poll_seconds (if the source wants it) and on SIGHUP."""
        while True:
            self.wake.wait(self.source.poll_seconds)
            self.wake.clear()
            try:
                self.reload()
            except Exception as exc:  # noqa: BLE001 - keep serving the last good certificate
                log(f"reload failed, keeping the current certificate: {type(exc).__name__}: {exc}")


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
            material = self.server.state.material
            if material.ca_body is not None:
                self._send(200, material.ca_body, "application/octet-stream")
            else:
                self._send(200, material.ca_pem, "application/x-pem-file")
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
    node = config.get("node") or socket.gethostname()
    log(f"cloudcore-standin {node}: certificate source {source.describe()}")
    state = State(source)
    server = Server(int(config.get("port", 10002)), node, state)
    threading.Thread(target=state.refresher, name="refresher", daemon=True).start()
    signal.signal(signal.SIGHUP, lambda *_: state.wake.set())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(f"cloudcore-standin {node} listening on [::]:{server.server_address[1]}")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
