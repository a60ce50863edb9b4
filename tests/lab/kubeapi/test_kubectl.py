"""Real kubectl against the API stand-in: every kubectl binary on this machine, every command an
operator uses on a CloudCore HA site, including those that need the OpenAPI documents (openapi.py).

The base image of these machines ships Google Cloud SDK's kubectl (Debian package ``kubectl``
1:528.0.0 from Google's repository, which is not reachable from here): /usr/bin/kubectl ->
/usr/lib/google-cloud-sdk/bin/kubectl, a version dispatcher, with one binary per minor beside it
(kubectl.1.27 ... kubectl.1.33). Nothing in `make setup` installs kubectl (Debian's own
kubernetes-client is kubectl 1.20 and would take over /usr/bin/kubectl), so a machine without that
package skips these tests. The server listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from .test_kubeapi import CRD as STRUCTURED_CRD, Server

pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402


def _kubectls() -> list[tuple[str, str]]:
    """(label, path) of each kubectl: the one on PATH and the versioned binaries beside its target."""
    found = shutil.which("kubectl")
    if not found:
        return []
    target = os.path.realpath(found)
    paths = [found] + sorted(str(p) for p in Path(target).parent.glob("kubectl.1.*"))
    out = []
    for path in paths:
        proc = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                              timeout=30, check=False)
        try:
            version = json.loads(proc.stdout)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError):
            continue
        out.append((f"{os.path.basename(path)}-{version}", path))
    return out


KUBECTLS = _kubectls()
needs_kubectl = pytest.mark.skipif(not KUBECTLS, reason="no kubectl on PATH (these machines' image ships Google "
                                                        "Cloud SDK's kubectl package; nothing here installs it)")
each_kubectl = pytest.mark.parametrize("kubectl", [path for _label, path in KUBECTLS] or ["kubectl"],
                                       ids=[label for label, _path in KUBECTLS] or ["none"])

# the shape of the CRDs the manifests role creates (roles/manifests/templates/04-crds.yaml.j2)
PERMISSIVE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "objectsyncs.reliablesyncs.kubeedge.io"},
    "spec": {"group": "reliablesyncs.kubeedge.io", "scope": "Namespaced",
             "names": {"kind": "ObjectSync", "listKind": "ObjectSyncList", "plural": "objectsyncs",
                       "singular": "objectsync"},
             "versions": [{"name": "v1alpha1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kubeapi"))
    ext = client.ApiextensionsV1Api(srv.api_client())
    for crd in (STRUCTURED_CRD, PERMISSIVE_CRD):
        ext.create_custom_resource_definition(crd)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """One HOME per kubectl binary: its discovery and OpenAPI caches stay its own."""
    return tmp_path_factory.mktemp("homes")


class Kubectl:
    def __init__(self, path: str, server: Server, home: Path) -> None:
        self.path, self.env = path, dict(os.environ, HOME=str(home), KUBECONFIG=server.kubeconfig)
        self.env.pop("KUBECTL_EXPLAIN_OPENAPIV3", None)

    def run(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.path, *args], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=60, check=False)
        if ok:
            assert proc.returncode == 0, f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
        return proc

    def apply(self, manifest: dict, *flags: str, ok: bool = True) -> subprocess.CompletedProcess:
        return self.run("apply", *flags, "-f", "-", stdin=yaml.safe_dump(manifest), ok=ok)

    def json(self, *args: str) -> dict:
        return json.loads(self.run("get", *args, "-o", "json").stdout)


@pytest.fixture
def kc(request, server, homes):
    path = request.node.callspec.params["kubectl"]
    home = homes / re.sub(r"\W", "_", os.path.basename(path) + path)
    home.mkdir(exist_ok=True)
    return Kubectl(path, server, home)


@pytest.fixture
def ns(kc, request):
    """A namespace per kubectl and test, made by that kubectl. With apply: kubectl >= 1.32 sends the
    typed commands' bodies (``create namespace``, ``create configmap``) as protobuf, which the stand-in
    does not decode."""
    name = re.sub(r"[^a-z0-9]+", "-", f"{os.path.basename(kc.path)}-{request.node.originalname}".lower())[:63]
    name = name.strip("-")
    kc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def deployment(name: str, ns: str, containers: list[dict]) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}}


CLOUDCORE = {"name": "cloudcore", "image": "kubeedge/cloudcore:v1.22.1", "ports": [{"containerPort": 10000}]}
SIDECAR = {"name": "sidecar", "image": "busybox:1.36"}


# ---------------------------------------------------------------------------------- the documents
def _get(server: Server, path: str, accept: str | None = None) -> tuple[int, dict, bytes]:
    ctx = ssl.create_default_context(cafile=str(server.state_dir / "ca.crt"))
    ctx.load_cert_chain(str(server.state_dir / "admin.crt"), str(server.state_dir / "admin.key"))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    request = urllib.request.Request(server.url + path, headers={"Accept": accept} if accept else {})
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_openapi_v3_discovery_and_hashes(server):
    code, _headers, body = _get(server, "/openapi/v3")
    assert code == 200
    paths = json.loads(body)["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/devices.kubeedge.io/v1beta1",
            "apis/reliablesyncs.kubeedge.io/v1alpha1"} <= set(paths)
    url = paths["apis/devices.kubeedge.io/v1beta1"]["serverRelativeURL"]
    code, headers, body = _get(server, url)
    assert code == 200 and headers["Cache-Control"] == "public, immutable"
    doc = json.loads(body)
    device = doc["components"]["schemas"]["io.kubeedge.devices.v1beta1.Device"]
    assert device["x-kubernetes-group-version-kind"] == [{"group": "devices.kubeedge.io", "kind": "Device",
                                                          "version": "v1beta1"}]
    assert device["properties"]["spec"]["properties"]["protocol"]["enum"] == ["modbus", "opcua"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    patch = doc["paths"]["/apis/devices.kubeedge.io/v1beta1/namespaces/{namespace}/devices/{name}"]["patch"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    # a stale hash is redirected to the current document, as kube-openapi does
    code, headers, _body = _get(server, url.split("?")[0] + "?hash=0BSOLETE")
    assert code == 301 and headers["Location"] == url


def test_openapi_v2_media_types(server):
    code, headers, body = _get(server, "/openapi/v2", "application/json")
    assert code == 200 and headers["Content-Type"] == "application/json"
    definitions = json.loads(body)["definitions"]
    assert "io.k8s.api.apps.v1.Deployment" in definitions and "io.kubeedge.devices.v1beta1.Device" in definitions
    containers = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    code, headers, body = _get(server, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert code == 200 and headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body[:5] == b"\n\x032.0"  # field 1 (swagger), length 3, "2.0"
    assert _get(server, "/openapi/v2", "application/xml")[0] == 406


# ---------------------------------------------------------------------------------- kubectl
@needs_kubectl
@each_kubectl
def test_get(kc, kubectl, ns):
    assert set(kc.run("get", "nodes", "-o", "name").stdout.split()) >= {"node/ccha-node1", "node/ccha-control-plane"}
    kc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cloudcore", "namespace": ns},
              "data": {"a": "b"}})
    assert kc.json("configmap", "cloudcore", "-n", ns)["data"] == {"a": "b"}
    assert "cloudcore" in kc.run("get", "configmaps", "-n", ns).stdout


@needs_kubectl
@each_kubectl
def test_describe(kc, kubectl, ns):
    out = kc.run("describe", "node", "ccha-node1").stdout
    assert re.search(r"^Name:\s+ccha-node1$", out, re.M) and "10.213.102.11" in out
    kc.apply(deployment("cloudcore", ns, [CLOUDCORE]))
    out = kc.run("describe", "deployment", "cloudcore", "-n", ns).stdout
    assert re.search(r"^Replicas:\s+1 desired", out, re.M) and "kubeedge/cloudcore:v1.22.1" in out


@needs_kubectl
@each_kubectl
def test_label(kc, kubectl):
    key = "kubectl-test.cloudcore-ha/" + re.sub(r"[^a-z0-9]", "", os.path.basename(kubectl))
    kc.run("label", "node", "ccha-node1", f"{key}=true")
    assert kc.json("node", "ccha-node1")["metadata"]["labels"][key] == "true"
    assert "ccha-node1" in kc.run("get", "nodes", "-l", f"{key}=true", "-o", "name").stdout
    kc.run("label", "node", "ccha-node1", f"{key}-")
    assert key not in kc.json("node", "ccha-node1")["metadata"]["labels"]


@needs_kubectl
@each_kubectl
def test_apply_server_side(kc, kubectl, ns):
    kc.apply(deployment("cloudcore", ns, [CLOUDCORE, SIDECAR]), "--server-side")
    kc.apply(deployment("cloudcore", ns, [dict(CLOUDCORE, image="kubeedge/cloudcore:v1.23.1")]), "--server-side")
    containers = kc.json("deployment", "cloudcore", "-n", ns)["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("cloudcore", "kubeedge/cloudcore:v1.23.1")]
    bad = kc.apply(deployment("broken", ns, [dict(CLOUDCORE, imagePolicy="Always")]), "--server-side", ok=False)
    assert bad.returncode != 0 and 'unknown field "spec.template.spec.containers[0].imagePolicy"' in bad.stderr


@needs_kubectl
@each_kubectl
def test_apply_client_side_with_validation(kc, kubectl, ns):
    kc.apply(deployment("cloudcore", ns, [CLOUDCORE, SIDECAR]))
    # strategic merge by container name: the sidecar goes (last-applied), the image changes
    kc.apply(deployment("cloudcore", ns, [dict(CLOUDCORE, image="kubeedge/cloudcore:v1.23.1")]))
    live = kc.json("deployment", "cloudcore", "-n", ns)
    containers = live["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("cloudcore", "kubeedge/cloudcore:v1.23.1")]
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    bad = kc.apply(deployment("broken", ns, [dict(CLOUDCORE, imagePolicy="Always")]), ok=False)
    assert bad.returncode != 0 and "imagePolicy" in bad.stderr and "unknown field" in bad.stderr
    # a v1 List cannot be validated by the server (fieldValidation is per kind), so kubectl validates
    # it itself, against the definitions of /openapi/v2 (protobuf)
    listed = {"apiVersion": "v1", "kind": "List", "items": [deployment("listed", ns, [
        dict(CLOUDCORE, imagePolicy="Always", ports=[{"containerPort": "eighty"}])])]}
    bad = kc.apply(listed, ok=False)
    assert bad.returncode != 0 and "error validating data" in bad.stderr, bad.stderr
    assert 'unknown field "imagePolicy" in io.k8s.api.core.v1.Container' in bad.stderr
    assert "ports[0].containerPort): invalid type" in bad.stderr
    # custom resources: validated against the CRD's schema, ours and a structured one
    kc.apply({"apiVersion": "reliablesyncs.kubeedge.io/v1alpha1", "kind": "ObjectSync",
              "metadata": {"name": "sync", "namespace": ns}, "spec": {"objectKind": "Pod"}})
    device = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
              "metadata": {"name": "dev", "namespace": ns}, "spec": {"protocol": "modbus"}}
    kc.apply(device)
    assert kc.json("device", "dev", "-n", ns)["spec"] == {"protocol": "modbus", "replicas": 1}
    bad = kc.apply(dict(device, spec={"protocol": "zigbee"}), ok=False)
    assert bad.returncode != 0 and "spec.protocol" in bad.stderr and "zigbee" in bad.stderr


@needs_kubectl
@each_kubectl
def test_explain(kc, kubectl):
    out = kc.run("explain", "deployment.spec").stdout
    assert re.search(r"^FIELD:\s+spec <(DeploymentSpec|Object)>", out, re.M), out
    for field in ("replicas", "selector", "strategy", "template"):
        assert re.search(rf"^\s+{field}\s", out, re.M), f"{field} missing:\n{out}"
    out = kc.run("explain", "deployment.spec.template.spec.containers.ports").stdout
    assert "containerPort" in out and "-required-" in out
    out = kc.run("explain", "devices.spec").stdout  # a CRD's schema (openapi.py: the CRD's group-version)
    assert re.search(r"^\s+protocol\s+<string>\s+-required-", out, re.M), out


@needs_kubectl
@each_kubectl
def test_diff(kc, kubectl, ns):
    manifest = deployment("cloudcore", ns, [CLOUDCORE])
    new = kc.run("diff", "-f", "-", stdin=yaml.safe_dump(manifest), ok=False)
    assert new.returncode == 1 and "+  name: cloudcore" in new.stdout, new.stderr
    kc.apply(manifest)
    same = kc.run("diff", "-f", "-", stdin=yaml.safe_dump(manifest), ok=False)
    assert same.returncode == 0 and same.stdout == "", same.stdout + same.stderr
    changed = deployment("cloudcore", ns, [dict(CLOUDCORE, image="kubeedge/cloudcore:v1.23.1")])
    diff = kc.run("diff", "-f", "-", stdin=yaml.safe_dump(changed), ok=False)
    assert diff.returncode == 1, diff.stderr
    assert re.search(r"^-\s+- image: kubeedge/cloudcore:v1\.22\.1$", diff.stdout, re.M), diff.stdout
    assert re.search(r"^\+\s+- image: kubeedge/cloudcore:v1\.23\.1$", diff.stdout, re.M), diff.stdout
