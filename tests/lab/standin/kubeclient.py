"""A minimal Kubernetes API client for the lab nodes: standard library only (http.client + ssl).

The nodes have no kubernetes client; the CloudCore stand-in needs a handful of calls (get, list,
create, update, merge-patch, delete) with the credentials of a kubeconfig. The kubeconfig may be YAML (what the
API stand-in writes; python3-yaml is in the lab image) or JSON (no yaml module needed); the cluster's
``certificate-authority[-data]`` and the user's ``client-certificate[-data]``/``client-key[-data]``
or ``token`` are used, the server's certificate and name are checked.
"""
from __future__ import annotations

import atexit
import base64
import http.client
import json
import os
import shutil
import ssl
import tempfile
import urllib.parse


class KubeError(Exception):
    """The API answered with an error status (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, status: int, reason: str, message: str = ""):
        super().__init__(f"{status} {reason}: {message}" if status else message or reason)
        self.status, self.reason, self.message = status, reason, message


def load_kubeconfig(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml  # python3-yaml; only for a YAML kubeconfig

        return yaml.safe_load(text)


def _named(items: list, name: str, what: str) -> dict:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise ValueError(f"kubeconfig: no {what} named {name!r}")


class KubeClient:
    """Just enough of the Kubernetes REST API; one HTTPS connection per request."""

    def __init__(self, kubeconfig: str, timeout: float = 5.0, context: str | None = None):
        config = load_kubeconfig(kubeconfig)
        context = context or config.get("current-context")
        ctx = _named(config.get("contexts"), context, "context")
        cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster")
        user = _named(config.get("users"), ctx.get("user"), "user")
        url = urllib.parse.urlsplit(cluster["server"])
        if url.scheme != "https":
            raise ValueError(f"kubeconfig: server must be https://, got {cluster['server']!r}")
        self.server, self.host, self.port = cluster["server"], url.hostname, url.port or 443
        self.timeout = timeout
        self.token = user.get("token")
        self._dir = tempfile.mkdtemp(prefix="kubeclient-")
        atexit.register(shutil.rmtree, self._dir, True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        ca = self._material(cluster, "certificate-authority")
        if ca is not None:
            self.context.load_verify_locations(cadata=ca.decode("ascii"))
        else:
            self.context.load_default_certs()
        if cluster.get("insecure-skip-tls-verify"):
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        cert, key = self._material(user, "client-certificate"), self._material(user, "client-key")
        if cert is not None and key is not None:
            paths = []
            for name, data in (("client.crt", cert), ("client.key", key)):
                path = os.path.join(self._dir, name)
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                    handle.write(data)
                paths.append(path)
            self.context.load_cert_chain(*paths)

    @staticmethod
    def _material(section: dict, name: str) -> bytes | None:
        if section.get(name + "-data"):
            return base64.b64decode(section[name + "-data"])
        if section.get(name):
            with open(section[name], "rb") as handle:
                return handle.read()
        return None

    def request(self, method: str, path: str, body: dict | None = None,
                content_type: str = "application/json") -> dict:
        """The decoded JSON answer of a 2xx; KubeError otherwise (status 0: not reachable)."""
        headers = {"Accept": "application/json", "User-Agent": "cloudcore-standin"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
            raise KubeError(0, type(exc).__name__, f"{self.server}: {exc}") from exc
        finally:
            conn.close()
        try:
            decoded = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            decoded = {"message": raw[:200].decode(errors="replace")}
        if not 200 <= response.status < 300:
            raise KubeError(response.status, str(decoded.get("reason") or response.reason),
                            str(decoded.get("message") or ""))
        return decoded

    def get(self, path: str) -> dict | None:
        """The object, or None on 404."""
        try:
            return self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, path: str, body: dict) -> dict | None:
        """The created object, or None on 409 AlreadyExists (someone else was faster)."""
        try:
            return self.request("POST", path, body)
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise

    def update(self, path: str, body: dict) -> dict:
        """PUT: KubeError 409 when the body's resourceVersion is stale (Conflict)."""
        return self.request("PUT", path, body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def list(self, path: str, label_selector: str = "", field_selector: str = "") -> list[dict]:
        """The items of a LIST (empty when the namespace does not exist)."""
        query = urllib.parse.urlencode({k: v for k, v in (("labelSelector", label_selector),
                                                          ("fieldSelector", field_selector)) if v})
        answer = self.get(path + ("?" + query if query else ""))
        return list((answer or {}).get("items") or [])


def namespaced(namespace: str, resource: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/{resource}"
    return path + (f"/{urllib.parse.quote(name)}" if name else "")
