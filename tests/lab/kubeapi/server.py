"""HTTPS front end: authentication, discovery and REST routing onto the :class:`Store`."""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, unquote

from . import errors as E
from . import openapi
from .registry import ResourceType
from .store import Store

ANONYMOUS_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}
LEGACY_GROUP_PREFIXES = ("api",)


class App:
    """Everything the handlers share: the store, credentials and identity of the server."""

    def __init__(self, store: Store, token: str | None, kube_version: str, access_log: Any = None) -> None:
        self.store = store
        self.token = token
        self.kube_version = kube_version
        self.access_log = access_log
        self.log_lock = threading.Lock()
        self.servers: list[_TLSServer] = []
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def serve(self, sock: socket.socket, context: ssl.SSLContext) -> tuple[str, int]:
        srv = _TLSServer(sock, context, self)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             name=f"kubeapi-{sock.getsockname()[:2]}", daemon=True)
        t.start()
        self.servers.append(srv)
        self.threads.append(t)
        return sock.getsockname()[:2]

    def shutdown(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()

    # ------------------------------------------------------------------ discovery
    def version(self) -> dict[str, Any]:
        major, minor, _patch = self.kube_version.split(".")
        return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                "minCompatibilityMajor": major, "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
                "gitVersion": f"v{self.kube_version}", "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
                "compiler": "gc", "platform": "linux/amd64"}

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def api_groups(self) -> dict[str, Any]:
        gv = self.store.group_versions()
        order = ["apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"]
        names = [g for g in order if g in gv] + sorted(g for g in gv if g not in order)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g, gv[g]) for g in names]}

    def api_group(self, group: str) -> dict[str, Any] | None:
        gv = self.store.group_versions().get(group)
        if not gv:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group(group, gv)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        rts = [rt for rt in self.store.types() if rt.group == group and rt.version == version]
        if not rts:
            return None
        resources = [entry for rt in rts for entry in rt.discovery()]
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}

    def root_paths(self) -> dict[str, Any]:
        paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]
        for g, vs in self.store.group_versions().items():
            paths.append(f"/apis/{g}")
            paths += [f"/apis/{g}/{v}" for v in vs]
        return {"paths": sorted(paths)}


class _TLSServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, app: App) -> None:
        HTTPServer.__init__(self, sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.address_family = sock.family
        self.server_address = sock.getsockname()[:2]
        self.context = context
        self.app = app

    def server_bind(self) -> None:  # the socket is bound already (maybe in another netns)
        pass

    def finish_request(self, request, client_address) -> None:  # noqa: ANN001
        request.settimeout(10)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            conn.settimeout(300)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ccha-lab-kubeapi"
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET", head=True)

    # ------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None, head: bool = False) -> None:
        headers = dict(headers or {})
        if isinstance(body, bytes):  # already encoded (openapi.py): the Content-Type comes with it
            data, ctype = body, headers.pop("Content-Type", "application/octet-stream")
        elif isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            ctype = "application/json"
        else:
            data = str(body).encode()
            ctype = "text/plain; charset=utf-8"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", headers.pop("Cache-Control", "no-cache, private"))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)
        self._code = code

    def _authenticated(self) -> bool:
        try:
            if self.connection.getpeercert():
                return True
        except (AttributeError, ValueError):
            pass
        auth = self.headers.get("Authorization", "")
        token = self.server.app.token
        return bool(token) and auth.startswith("Bearer ") and auth[7:].strip() == token

    def _dispatch(self, method: str, head: bool = False) -> None:
        app = self.server.app
        start = time.monotonic()
        self._code = 0
        url = urlsplit(self.path)
        path = "/" + unquote(url.path).strip("/") if url.path not in ("", "/") else "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            raw = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            if path not in ANONYMOUS_PATHS and not self._authenticated():
                raise E.unauthorized()
            code, body, headers = self._route(method, path, query, raw)
            self._send(code, body, headers, head)
        except E.ApiError as err:
            self._send(err.code, err.status(), err.headers, head)
        except Exception as exc:  # noqa: BLE001
            import traceback  # noqa: PLC0415
            traceback.print_exc()
            self._send(500, E.ApiError(500, "InternalError", f"Internal error occurred: {exc}", {}).status(), head=head)
        finally:
            if app.access_log:
                with app.log_lock:
                    app.access_log.write(f"{time.strftime('%H:%M:%S')} {method} {self.path} "
                                         f"{self.headers.get('Content-Type', '-')} -> {self._code} "
                                         f"{(time.monotonic() - start) * 1000:.1f}ms\n")
                    app.access_log.flush()

    def _route(self, method: str, path: str, q: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        app = self.server.app
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok", {}
        if method != "GET" and (len(parts) <= 1 or (parts[0] == "api" and len(parts) == 2)
                                or (parts[0] == "apis" and len(parts) <= 3)):
            if not parts or parts[0] in ("api", "apis", "version"):
                raise E.method_not_allowed()
        if not parts:
            return 200, app.root_paths(), {}
        if parts[0] == "version" and len(parts) == 1:
            return 200, app.version(), {}
        if parts[0] == "openapi":  # /openapi/v2, /openapi/v3[/<group-version>]: openapi.py
            return openapi.respond(app.store, parts[1:], q, self.headers.get("Accept", ""))
        if parts[0] == "api":
            if len(parts) == 1:
                host = self.headers.get("Host") or "%s:%s" % self.server.server_address
                return 200, app.api_versions(host), {}
            if parts[1] != "v1":
                raise E.path_not_found()
            if len(parts) == 2:
                return 200, app.resource_list("", "v1"), {}
            return self._resource(method, "", "v1", parts[2:], q, raw)
        if parts[0] == "apis":
            if len(parts) == 1:
                return 200, app.api_groups(), {}
            if len(parts) == 2:
                g = app.api_group(parts[1])
                if g is None:
                    raise E.path_not_found()
                return 200, g, {}
            if len(parts) == 3:
                rl = app.resource_list(parts[1], parts[2])
                if rl is None:
                    raise E.path_not_found()
                return 200, rl, {}
            return self._resource(method, parts[1], parts[2], parts[3:], q, raw)
        raise E.path_not_found()

    def _resource(self, method: str, group: str, version: str, rest: list[str], q: dict[str, str],
                  raw: bytes) -> tuple[int, Any, dict[str, str]]:
        store = self.server.app.store
        if rest and rest[0] == "watch" or _truthy(q.get("watch")):
            raise E.ApiError(405, "MethodNotAllowed",
                             "watch is not supported by the ccha-lab API stand-in; poll with GET/LIST instead", {})
        ns = name = sub = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            plural, tail = rest[0], rest[1:]
        if tail:
            name = tail[0]
        if len(tail) > 1:
            sub = tail[1]
        if len(tail) > 2:
            raise E.path_not_found()
        rt = store.find_type(group, version, plural)
        if rt is None or (ns is not None and not rt.namespaced):
            raise E.path_not_found()
        if rt.namespaced and name is not None and ns is None:
            raise E.path_not_found()
        if sub is not None:
            if sub == "finalize" and rt.kind == "Namespace":
                sub = "status"
            if sub not in rt.subresources:
                raise E.path_not_found()
        dry_run = _dry_run(q)
        fv = q.get("fieldValidation")
        if method == "GET":
            if name is None:
                limit = int(q["limit"]) if q.get("limit", "").isdigit() else None
                return 200, store.list(rt, ns, q.get("labelSelector"), q.get("fieldSelector"), limit,
                                       q.get("continue") or None), {}
            if sub == "scale":
                return 200, store.scale(rt, ns, name), {}
            return 200, store.get(rt, ns, name), {}
        if method == "POST":
            if name is not None:
                raise E.method_not_allowed()
            if rt.namespaced and ns is None:
                raise E.method_not_allowed()
            res = store.create(rt, ns, _json(raw), dry_run, fv)
            return 201, res.obj, _warn(res.warnings)
        if method == "PUT":
            if name is None:
                raise E.method_not_allowed()
            res = store.update(rt, ns, name, _json(raw), dry_run, fv, sub)
            return self._maybe_scale(rt, ns, name, sub, res, 200)
        if method == "PATCH":
            if name is None:
                raise E.method_not_allowed()
            res = store.patch(rt, ns, name, self.headers.get("Content-Type", ""), raw, dry_run, fv,
                              q.get("fieldManager"), _truthy(q.get("force")), sub)
            return self._maybe_scale(rt, ns, name, sub, res, 201 if res.created else 200)
        if method == "DELETE":
            opts = _json(raw) if raw.strip() else {}
            if isinstance(opts, dict) and opts.get("dryRun"):
                dry_run = dry_run or opts["dryRun"] == ["All"]
            if name is None:
                return 200, store.delete_collection(rt, ns, q.get("labelSelector"), q.get("fieldSelector"), dry_run), {}
            pre = opts.get("preconditions") if isinstance(opts, dict) else None
            return 200, store.delete(rt, ns, name, dry_run, pre), {}
        raise E.method_not_allowed()

    def _maybe_scale(self, rt: ResourceType, ns: str | None, name: str, sub: str | None, res: Any,
                     code: int) -> tuple[int, Any, dict[str, str]]:
        body = res.obj
        if sub == "scale":
            body = self.server.app.store._to_scale(rt, res.obj)  # noqa: SLF001
        return code, body, _warn(res.warnings)


def _truthy(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


def _dry_run(q: dict[str, str]) -> bool:
    v = q.get("dryRun")
    if v is None or v == "":
        return False
    if v != "All":
        raise E.bad_request(f'Invalid dryRun value: "{v}": supported values: "All"')
    return True


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise E.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


def _warn(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"Warning": ", ".join(f'299 - {json.dumps(w)}' for w in warnings)}


def make_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
