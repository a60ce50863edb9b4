"""One CloudCore v1.23.1 process, as far as an installer can observe it.

Upstream (kubeedge/kubeedge v1.23.1), in the order CloudCore does it:

1. cloud/cmd/cloudcore/app/options ``Config`` + validation ``ValidateCloudCoreConfiguration``: the
   configuration file (the pod's ConfigMap, read ONCE; never again) decoded into the defaults;
   invalid -> ``klog.Exit`` (exit 1). See cloudcore_config.py.
2. server.go: ``rand.Int31n(10)`` seconds of sleep, then ``NegotiateTunnelPort`` (ConfigMap
   ``kubeedge/tunnelport``, annotation ``tunnelportrecord.kubeedge.io`` = {"ipTunnelPort": {IP:
   port}, "port": {port: true}}; a known IP keeps its port, a new one gets the first free port
   above 10350; Create/Update errors -- AlreadyExists and Conflict included -- ``panic`` (exit 2));
   then ``AdjustCloudCoreConfig`` and, when it changed anything, ``updateCloudCoreConfigMap``
   (Get + Update of ConfigMap ``kubeedge/cloudcore`` with the whole adjusted configuration, this
   replica's ``commonConfig.tunnelPort`` included; errors are only logged).
3. cloudhub/config ``InitConfigure``: an empty advertiseAddress -> "AdvertiseAddress must be
   specified!" (exit 1); the tls*File paths are read from the container's files (the pod has none).
4. cloudhub.go ``Start`` -> httpserver/pre_server.go ``PrepareAllCerts``: Get ``casecret``;
   NotFound -> a new CA kept IN MEMORY; then ALWAYS ``SaveSecret`` (client/secret.go: Create, on
   AlreadyExists Update -- the last writer wins, and a replica that read the Secret writes back
   what it read). The same for ``cloudcoresecret`` (signed by the in-memory CA for
   advertiseAddress + dnsNames; a pre-existing one is taken as it is, no SAN check). Then
   ``GenerateAndRefreshToken``: Secret ``tokensecret`` from the in-memory CA and key.
5. httpserver/server.go ``StartHTTPServer``: HTTPS on https.address:port with the IN-MEMORY CA and
   certificate; go-restful routes GET /ca.crt (``GetCA``: the CA DER), GET /edge.crt
   (``EdgeCoreClientCert``: a client certificate checked against the in-memory CA, or a token
   checked with the in-memory CA key; the CSR in the body signed by the in-memory CA), GET
   /node/{nodename} (``CheckNode``), POST /nodeupgrade and POST /task/.../status (node tasks: not
   modelled). Anything else: 404 "404: Page Not Found"; a known path with another method (HEAD
   included): 405 "405: Method Not Allowed".

Nothing is read again after the start: a changed Secret or ConfigMap takes effect when the pod is
replaced, as with CloudCore.
"""
from __future__ import annotations

import base64
import http.server
import ipaddress
import json
import os
import random
import time
import socket
import ssl
import tempfile
import threading
import urllib.parse

import cloudcore_config as cfg
import kubeedge_pki as pki
from kubeclient import KubeClient, KubeError, namespaced

TUNNEL_CONFIGMAP = "tunnelport"  # cloud/pkg/common/modules TunnelPort
TUNNEL_ANNOTATION = "tunnelportrecord.kubeedge.io"  # modules.TunnelPortRecordAnnotationKey
MAX_BODY = 1 << 20  # constants.MaxRespBodyLength
NOT_FOUND, NOT_ALLOWED = b"404: Page Not Found", b"405: Method Not Allowed"  # go-restful v2.16 CurlyRouter


class Exit(Exception):
    """CloudCore ends: ``klog.Exit`` -> code 1, ``panic`` -> code 2."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Stopped(Exception):
    """The pod went away (or a signal came) while CloudCore was starting."""


class CloudCore:
    """The start sequence and the HTTPS server of one CloudCore process.

    ``settings`` are the stand-in's (standin.json): start_delay_max_seconds, listen_address,
    https_port, websocket_port, tunnel_port, metrics_address, cloudhub.
    """

    def __init__(self, api: KubeClient, node: str, host_ip: str, settings: dict, log, stop: threading.Event,
                 namespace: str = pki.NAMESPACE, config_file: str = cfg.CONFIG_FILE):
        self.api, self.node, self.host_ip, self.settings, self.log = api, node, host_ip, settings, log
        self.stop_event, self.namespace, self.config_file = stop, namespace, config_file
        self.config: dict = {}
        self.ca_der = self.ca_key = self.cert_der = self.key_der = b""
        self.server: Server | None = None
        self.hub = None
        self.https_address: tuple[str, int] = ("", 0)

    # ------------------------------------------------------------------ the container's files
    def exists(self, path: str) -> bool:
        """Files inside the container: only the mounted configuration (the pod mounts nothing else)."""
        return os.path.normpath(path) == os.path.normpath(self.config_file)

    # ------------------------------------------------------------------ start
    def start(self, config_text: str | None) -> None:
        """Everything up to serving HTTPS; raises Exit (CloudCore would exit) or Stopped."""
        if config_text is None:  # options.Validate
            raise Exit(f"[config: Required value: config file {self.config_file} not exist. For the configuration "
                       "file format, please refer to --minconfig and --defaultconfig command]")
        try:
            self.config = cfg.parse(config_text, self.host_ip)
            errors = cfg.validate(self.config, self.exists)
        except cfg.ConfigError as exc:
            raise Exit(str(exc), exc.code) from exc
        if errors:
            raise Exit("[" + "; ".join(errors) + "]")
        self.log("Version: v1.23.1 (the cloudcore.ha lab stand-in)")
        self._sleep_before_negotiation()
        port = self.negotiate_tunnel_port()
        self.config["commonConfig"]["tunnelPort"] = port
        self.log(f"tunnel port {port} for {self.host_ip} (ConfigMap {self.namespace}/{TUNNEL_CONFIGMAP})")
        try:
            changed = cfg.adjust(self.config)
        except cfg.ConfigError as exc:
            raise Exit(str(exc), exc.code) from exc
        if changed:
            self.update_cloudcore_configmap()
        hub = self.config["modules"]["cloudHub"]
        if not hub.get("advertiseAddress"):  # cloudhub/config InitConfigure
            raise Exit("AdvertiseAddress must be specified!")
        missing = [hub[k] for k in ("tlsCAFile", "tlsCAKeyFile", "tlsCertFile", "tlsPrivateKeyFile")
                   if hub.get(k) and not self.exists(hub[k])]
        if missing:  # InitConfigure warns per file; the pod mounts none of them: the Secrets are used
            self.log(f"failed to load the certificate files {missing}: no such file or directory (using the Secrets)")
        if not hub.get("enable"):
            self.log("module cloudhub is disabled: no certificates, no HTTPS")
            return
        self.check_stop()
        self.prepare_all_certs()
        self.generate_token()
        self.serve()
        self.start_cloudhub()

    def check_stop(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()

    def _sleep_before_negotiation(self) -> None:
        """server.go: waitTime := rand.Int31n(10); time.Sleep(waitTime * time.Second).

        start_delay_align (a lab switch, off by default) first waits for the next whole second of the
        wall clock: on a real cluster kubelets see new pods within milliseconds (a watch), so replicas
        of a Deployment start together; the lab's kubelets poll, once a second, which would spread them
        over that second and hide the race between replicas that draw the same delay."""
        high = int(self.settings.get("start_delay_max_seconds", 9))
        delay = random.randint(0, max(high, 0))
        if self.settings.get("start_delay_align"):
            delay += 1 - (time.time() % 1)
        self.log(f"sleeping {delay:.3f} s before negotiating the tunnel port (rand.Int31n({high + 1}))")
        if self.stop_event.wait(delay):
            raise Stopped()

    # ------------------------------------------------------------------ API helpers
    def _path(self, resource: str, name: str | None = None) -> str:
        return namespaced(self.namespace, resource, name)

    def ensure_namespace(self) -> None:
        """client/namespace.go CreateNamespaceIfNeeded: Get, else Create (AlreadyExists is fine)."""
        if self.api.get(f"/api/v1/namespaces/{self.namespace}") is None:
            self.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": self.namespace}})

    def save_secret(self, name: str, data: dict[str, bytes]) -> str:
        """client/secret.go SaveSecret: Create; on AlreadyExists an Update without resourceVersion."""
        self.ensure_namespace()
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": self.namespace},
                "data": {k: base64.b64encode(v).decode("ascii") for k, v in data.items()}}
        if self.api.create(self._path("secrets"), body) is not None:
            return "created"
        try:
            self.api.update(self._path("secrets", name), body)
        except KubeError as exc:
            raise KubeError(exc.status, exc.reason, f"failed to update the secret, namespace: {self.namespace}, "
                                                    f"name: {name}, err: {exc}") from exc
        return "updated (AlreadyExists)"

    # ------------------------------------------------------------------ tunnel port
    def negotiate_tunnel_port(self) -> int:
        """server.go NegotiateTunnelPort; every error is a panic (exit 2)."""
        try:
            self.ensure_namespace()
            cm = self.api.get(self._path("configmaps", TUNNEL_CONFIGMAP))
            if cm is None:
                port = negotiate_port({})
                record = {"ipTunnelPort": {self.host_ip: port}, "port": {str(port): True}}
                body = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": TUNNEL_CONFIGMAP, "namespace": self.namespace,
                                     "annotations": {TUNNEL_ANNOTATION: go_json(record)}}}
                self.api.request("POST", self._path("configmaps"), body)
                return port
            annotations = (cm.get("metadata") or {}).get("annotations") or {}
            if TUNNEL_ANNOTATION not in annotations:
                raise Exit("panic: failed to get tunnel port record", 2)
            record = json.loads(annotations[TUNNEL_ANNOTATION])
            ports = record.get("ipTunnelPort") or {}
            if self.host_ip in ports:
                return int(ports[self.host_ip])
            port = negotiate_port(record.get("port") or {})
            record.setdefault("ipTunnelPort", {})[self.host_ip] = port
            record.setdefault("port", {})[str(port)] = True
            cm["metadata"]["annotations"][TUNNEL_ANNOTATION] = go_json(record)
            self.api.update(self._path("configmaps", TUNNEL_CONFIGMAP), cm)  # with its resourceVersion
            return port
        except KubeError as exc:
            raise Exit(f"panic: {exc}", 2) from exc
        except ValueError as exc:
            raise Exit(f"panic: {exc}", 2) from exc

    # ------------------------------------------------------------------ ConfigMap rewrite
    def update_cloudcore_configmap(self) -> None:
        """server.go updateCloudCoreConfigMap: the whole adjusted configuration, as yaml.Marshal writes it."""
        try:
            cm = self.api.get(self._path("configmaps", pki.CONFIGMAP))
        except KubeError:
            cm = None
        if cm is None:
            self.log(f"failed to get CloudCore configMap {self.namespace}/{pki.CONFIGMAP}")
            return
        if cm.get("data") is None:
            raise Exit("panic: assignment to entry in nil map", 2)
        cm["data"][pki.CONFIG_KEY] = cfg.marshal(self.config)
        try:
            self.api.update(self._path("configmaps", pki.CONFIGMAP), cm)
            self.log(f"rewrote ConfigMap {self.namespace}/{pki.CONFIGMAP} with the adjusted configuration "
                     f"(qps {self.config['kubeAPIConfig'].get('qps')}, burst {self.config['kubeAPIConfig'].get('burst')},"
                     f" tunnelPort {self.config['commonConfig'].get('tunnelPort')})")
        except KubeError as exc:
            self.log(f"Failed to marshal cloudcore config: {exc}")  # upstream's message for a failed Update

    # ------------------------------------------------------------------ certificates
    def _read_secret(self, name: str) -> dict | None:
        try:
            return self.api.get(self._path("secrets", name))
        except KubeError as exc:
            raise Exit(f"get secret: {name} error: {exc}") from exc

    def prepare_all_certs(self) -> None:
        """pre_server.go PrepareAllCerts = createCAToSecret + createCertsToSecret."""
        secret = self._read_secret(pki.CA_SECRET)
        if secret is None:
            self.ca_der, self.ca_key = pki.new_ca()
            origin = f"generated (Secret {self.namespace}/{pki.CA_SECRET} not found)"
        else:
            data = secret.get("data") or {}
            self.ca_der = base64.b64decode(data.get(pki.CA_CERT_KEY, ""))
            self.ca_key = base64.b64decode(data.get(pki.CA_KEY_KEY, ""))
            origin = f"read from Secret {self.namespace}/{pki.CA_SECRET} (resourceVersion " \
                     f"{secret['metadata'].get('resourceVersion')})"
        try:
            how = self.save_secret(pki.CA_SECRET, {pki.CA_CERT_KEY: self.ca_der, pki.CA_KEY_KEY: self.ca_key})
        except KubeError as exc:
            raise Exit(f"failed to create ca to secrets, error: {exc}") from exc
        self.log(f"CA {pki.fingerprint(self.ca_der)} {origin}; Secret {pki.CA_SECRET} {how}")
        secret = self._read_secret(pki.CERT_SECRET)
        if secret is None:
            hub = self.config["modules"]["cloudHub"]
            ips, bad = [], []
            for address in hub.get("advertiseAddress") or []:
                try:
                    ips.append(str(ipaddress.ip_address(address)))
                except ValueError:
                    bad.append(address)
            if bad:  # net.ParseIP -> nil: Go signs an empty IP SAN that its own parser refuses
                raise Exit(f"failed to create a x509 tls certificate (advertiseAddress {bad} are not IP addresses)")
            try:
                self.cert_der, self.key_der = pki.sign_server(self.ca_der, self.ca_key, ips,
                                                              list(hub.get("dnsNames") or []))
            except (pki.SignError, ValueError) as exc:
                raise Exit(f"failed to sign the certificate, err: {exc}") from exc
            origin = f"signed by CA {pki.fingerprint(self.ca_der)} for advertiseAddress {ips} dnsNames " \
                     f"{hub.get('dnsNames') or []}"
        else:
            data = secret.get("data") or {}
            self.cert_der = base64.b64decode(data.get(pki.CERT_KEY, ""))
            self.key_der = base64.b64decode(data.get(pki.KEY_KEY, ""))
            origin = f"read from Secret {self.namespace}/{pki.CERT_SECRET} (resourceVersion " \
                     f"{secret['metadata'].get('resourceVersion')})"
        try:
            how = self.save_secret(pki.CERT_SECRET, {pki.CERT_KEY: self.cert_der, pki.KEY_KEY: self.key_der})
        except KubeError as exc:
            raise Exit(f"failed to save CloudCore cert and key to secret, error: {exc}") from exc
        try:
            desc = pki.describe(self.cert_der)
        except ValueError:
            desc = "unparsable"
        self.log(f"serving certificate {desc} {origin}; Secret {pki.CERT_SECRET} {how}")

    def generate_token(self) -> None:
        """pre_server.go GenerateAndRefreshToken (the 12-hourly refresh is not modelled)."""
        hours = int(self.config["modules"]["cloudHub"].get("tokenRefreshDuration", 12))
        try:
            token = pki.create_token(self.ca_der, self.ca_key, hours)
            self.save_secret(pki.TOKEN_SECRET, {pki.TOKEN_KEY: token.encode()})
        except (KubeError, ValueError) as exc:
            raise Exit(f"failed to create tokenSecret, err: {exc}") from exc
        self.log(f"token created successfully (Secret {self.namespace}/{pki.TOKEN_SECRET}, CA hash "
                 f"{pki.ca_hash(self.ca_der)[:16]})")

    # ------------------------------------------------------------------ serving
    def listen(self) -> tuple[str, int]:
        https = self.config["modules"]["cloudHub"]["https"]
        address = self.settings.get("listen_address") or https.get("address") or "0.0.0.0"
        port = int(self.settings.get("https_port") or https.get("port") or 10002)
        return address, port

    def serve(self) -> None:
        """StartHTTPServer with the in-memory certificate (tls.X509KeyPair) and CA."""
        try:
            context = server_context(pki.cert_pem(self.cert_der), pki.key_pem(self.key_der), pki.cert_pem(self.ca_der))
        except (ValueError, ssl.SSLError) as exc:
            raise Exit(f"failed to create a x509 tls certificate ({exc})") from exc
        address, port = self.listen()
        try:
            self.server = Server(address, port, CloudCoreHandler, context, self)
        except OSError as exc:
            raise Exit(f"listen tcp {address}:{port}: bind: {exc.strerror or exc}") from exc
        self.https_address = ("127.0.0.1" if address in ("0.0.0.0", "::") else address, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, name="https", daemon=True).start()
        self.log(f"HTTPS on {fmt_address(address)}:{self.server.server_address[1]} (/ca.crt, /edge.crt, /node/{{name}})")

    def start_cloudhub(self) -> None:
        """servers.StartCloudHub: WebSocket, tunnel and metrics, by tests/lab/standin/cloudhub.py if present."""
        if not self.settings.get("cloudhub", True):
            self.log("cloudhub transport disabled in standin.json")
            return
        module = self.settings.get("cloudhub_module", "cloudhub")
        try:  # tests/lab/standin/cloudhub.py is written separately; optional
            CloudHub = __import__(module).CloudHub  # noqa: N806 - a class
        except (ImportError, AttributeError) as exc:
            self.log(f"no cloudhub module ({exc}): WebSocket/tunnel/metrics not served")
            return
        hub = self.config["modules"]["cloudHub"]
        metrics = self.settings.get("metrics_address") or \
            self.config["commonConfig"]["monitorServer"].get("bindAddress") or "127.0.0.1:9091"
        host, _colon, port = str(metrics).rpartition(":")
        try:
            self.hub = CloudHub(node=self.node, ca_pem=pki.cert_pem(self.ca_der), cert_pem=pki.cert_pem(self.cert_der),
                                key_pem=pki.key_pem(self.key_der), node_limit=int(hub.get("nodeLimit", 0)),
                                websocket_port=int(self.settings.get("websocket_port") or
                                                   (hub.get("websocket") or {}).get("port") or 10000),
                                tunnel_port=int(self.settings.get("tunnel_port") or
                                                self.config["modules"]["cloudStream"].get("tunnelPort") or 10004),
                                metrics_address=(host.strip("[]") or "127.0.0.1", int(port or 9091)), log=self.log)
            self.hub.start()
        except Exception as exc:  # noqa: BLE001 - upstream: a failing CloudHub server exits CloudCore
            raise Exit(f"cloudhub: {type(exc).__name__}: {exc}") from exc

    def stop(self) -> None:
        if self.hub is not None:
            try:
                self.hub.stop()
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                self.log(f"cloudhub stop: {type(exc).__name__}: {exc}")
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ------------------------------------------------------------------ /edge.crt
    def edge_certificate(self, headers, body: bytes, peer_der: bytes | None) -> tuple[int, bytes]:
        """certificate/certs.go EdgeCoreClientCert: (status, body)."""
        node = headers.get("NodeName", "")
        if peer_der:
            error = self._verify_peer(peer_der, node)
            if error:
                return 401, f"failed to verify the certificate for edgenode: {node}, err: {error}".encode()
        else:
            authorization = headers.get("Authorization", "")
            if not authorization:
                return 401, b"token validation failure, token is empty"
            parts = authorization.split(" ")
            if len(parts) != 2:
                return 401, b"token validation failure, token cannot be split"
            try:
                pki.verify_token(parts[1], self.ca_key)
            except ValueError as exc:
                return 401, f"token validation failure, err: {exc}".encode()
        try:
            usages = pki.parse_usages(headers.get("ExtKeyUsages", ""))
            days = int(self.config["modules"]["cloudHub"].get("edgeCertSigningDuration", 365))
            der = pki.sign_csr(body, self.ca_der, self.ca_key, usages, days)
        except pki.SignError as exc:
            return 500, f"failed to sign certs for edgenode {node}, err: {exc}".encode()
        self.log(f"signed an edge certificate for {node or '?'} with CA {pki.fingerprint(self.ca_der)}")
        return 200, der

    def _verify_peer(self, peer_der: bytes, node: str) -> str:
        """verifyCert: the TLS layer checked the chain against the in-memory CA; usage and subject here."""
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        cert = x509.load_der_x509_certificate(peer_der)
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if ExtendedKeyUsageOID.CLIENT_AUTH not in usages and \
                    x509.ObjectIdentifier("2.5.29.37.0") not in usages:
                return "failed to verify edge certificate: x509: certificate specifies an incompatible key usage"
        except x509.ExtensionNotFound:
            pass
        orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if not orgs:
            raise ConnectionAbortedError("panic: index out of range [0] with length 0")  # Organization[0]
        cn = cns[-1] if cns else ""
        if orgs[0] == "KubeEdge" and cn == "kubeedge.io":
            return ""
        if orgs[0] == "system:nodes" and cn == f"system:node:{node}":
            return ""
        return "request node name is not match with the certificate"

    def check_node(self, name: str) -> tuple[int, bytes]:
        """node/checknode.go CheckNode."""
        try:
            found = self.api.get(f"/api/v1/nodes/{urllib.parse.quote(name)}")
        except KubeError:
            return 500, b"Failed to query node information"
        return (200, b"Node founded") if found is not None else (404, b"Node not found")


def negotiate_port(record: dict) -> int:
    """server.go negotiatePort: the first port above constants.ServerPort (10350) not in the record."""
    port = cfg.SERVER_PORT
    while True:
        port += 1
        if str(port) not in {str(k) for k in record}:
            return port


def go_json(value) -> str:
    """encoding/json.Marshal: compact, map keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def fmt_address(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def server_context(cert_pem: bytes, key_pem: bytes, ca_pem: bytes | None = None) -> ssl.SSLContext:
    """TLS 1.2+; with ``ca_pem`` a client certificate is asked for (tls.RequestClientCert) and checked
    against that CA -- Python cannot ask without checking, see the README."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="standin-") as tmp:  # load_cert_chain wants paths
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert, "wb") as handle:
            handle.write(cert_pem)
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert, key)
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class Server(http.server.ThreadingHTTPServer):
    """HTTPS on one address; a wildcard address listens dual stack, like Go's "tcp" on 0.0.0.0."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: str, port: int, handler, context: ssl.SSLContext, app):
        self.context, self.app = context, app
        wildcard = address in ("", "0.0.0.0", "::")
        self.address_family = socket.AF_INET6 if wildcard or ":" in address else socket.AF_INET
        super().__init__(("::" if wildcard else address, port), handler, bind_and_activate=False)
        if wildcard:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(10)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):  # a client went away: nothing to report
        pass


class LabHandler(http.server.BaseHTTPRequestHandler):
    """Shared answer plumbing: every answer carries ``X-Lab-Node``; quiet unless STANDIN_DEBUG."""

    protocol_version = "HTTP/1.1"
    server_version = "cloudcore-standin"

    def answer(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Lab-Node", self.server.app.node)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        if os.environ.get("STANDIN_DEBUG"):
            super().log_message(fmt, *args)


class CloudCoreHandler(LabHandler):
    """go-restful routes of httpserver/server.go; Go's net/http sends no Server header."""

    ROUTES = (("GET", ("ca.crt",)), ("GET", ("edge.crt",)), ("GET", ("node", "*")), ("POST", ("nodeupgrade",)),
              ("POST", ("task", "*", "name", "*", "node", "*", "status")))

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def _route(self) -> tuple[str | None, list[str]]:
        tokens = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        matched = None
        for method, pattern in self.ROUTES:
            if len(pattern) == len(tokens) and all(p == "*" and t or p == t for p, t in zip(pattern, tokens)):
                if method == self.command:
                    return method, tokens
                matched = matched or "405"
        return matched, tokens

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length else b""

    def handle_any(self) -> None:
        app: CloudCore = self.server.app
        route, tokens = self._route()
        if route is None:
            self._body()
            return self.answer(404, NOT_FOUND)
        if route == "405":
            self._body()
            return self.answer(405, NOT_ALLOWED)
        if tokens == ["ca.crt"]:
            return self.answer(200, app.ca_der, "application/octet-stream")
        if tokens == ["edge.crt"]:
            peer = self.connection.getpeercert(binary_form=True) if hasattr(self.connection, "getpeercert") else None
            try:
                code, body = app.edge_certificate(self.headers, self._body(), peer)
            except ConnectionAbortedError as exc:  # a Go handler panic: net/http drops the connection
                app.log(f"http: panic serving {self.client_address[0]}: {exc}")
                self.close_connection = True
                return
            return self.answer(code, body, "application/octet-stream" if code == 200 else
                               "text/plain; charset=utf-8")
        if tokens[0] == "node":
            return self.answer(*app.check_node(urllib.parse.unquote(tokens[1])))
        self._body()
        return self.answer(500, b"node tasks are not modelled by the cloudcore.ha lab stand-in")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any
