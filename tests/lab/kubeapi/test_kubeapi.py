"""Tests of the Kubernetes API stand-in, through the official ``kubernetes`` client and kubernetes.core.

The server runs as a subprocess (``python -m kubeapi serve``) on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, dynamic  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

LAB_DIR = Path(__file__).resolve().parent.parent
NODES = "ccha-node1=10.213.102.11,ccha-node2=10.213.102.12,ccha-node3=10.213.102.13"


# ---------------------------------------------------------------------------------- fixtures
class Server:
    def __init__(self, state_dir: Path, *extra: str) -> None:
        self.state_dir = state_dir
        self.access_log = state_dir / "access.log"
        cmd = [sys.executable, "-m", "kubeapi", "serve", "--state-dir", str(state_dir),
               "--listen", "127.0.0.1:0", "--nodes", NODES, "--access-log", str(self.access_log), *extra]
        ready = state_dir / "ready.json"
        if ready.exists():
            ready.unlink()
        self.proc = subprocess.Popen(cmd, cwd=LAB_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server not ready after 30 s")
            time.sleep(0.05)
        self.ready = json.loads(ready.read_text())
        self.url = self.ready["listeners"][0]["server"]
        self.kubeconfig = str(state_dir / "kubeconfig")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=self.kubeconfig)

    def raw(self, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None,
            cert: bool = True) -> tuple[int, dict]:
        ctx = ssl.create_default_context(cafile=str(self.state_dir / "ca.crt"))
        if cert:
            ctx.load_cert_chain(str(self.state_dir / "admin.crt"), str(self.state_dir / "admin.key"))
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                data = resp.read()
                return resp.status, (json.loads(data) if data[:1] in (b"{", b"[") else {"text": data.decode()})
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("kubeapi"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server):
    return server.api_client()


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def dyn(api):
    return dynamic.DynamicClient(api)


@pytest.fixture
def ns(core):
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """The predicate's first truthy value within ``timeout`` (the controllers work asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class TestKubelet:
    """Marks every pod bound to a node Running and Ready, as a kubelet would (tests only)."""

    __test__ = False

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        import threading  # noqa: PLC0415

        self.core, self.namespace, self.stop = core, namespace, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TestKubelet":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                for pod in self.core.list_namespaced_pod(self.namespace).items:
                    ready = [c for c in pod.status.conditions or [] if c.type == "Ready" and c.status == "True"]
                    if pod.spec.node_name and not ready:
                        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                        self.core.patch_namespaced_pod_status(pod.metadata.name, self.namespace, {"status": {
                            "phase": "Running", "conditions": [
                                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                                {"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
            except ApiException:
                pass


def deployment(name: str, containers=None, **spec_extra) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": containers if containers is not None else
                                       [{"name": "cloudcore", "image": "kubeedge/cloudcore:v1.23.1",
                                         "ports": [{"containerPort": 10000, "name": "cloudhub"}]}]}},
                 **spec_extra},
    }


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# ---------------------------------------------------------------------------------- auth + discovery
def test_unauthenticated_request_is_401(server):
    code, body = server.raw("/api/v1/namespaces", cert=False)
    assert code == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    code, _body = server.raw("/api/v1/namespaces", cert=False, headers={"Authorization": "Bearer wrong"})
    assert code == 401


def test_bearer_token_and_client_cert_authenticate(server):
    token = Path(server.ready["token_file"]).read_text().strip()
    code, body = server.raw("/api/v1/namespaces", cert=False, headers={"Authorization": f"Bearer {token}"})
    assert code == 200 and body["kind"] == "NamespaceList"
    code, body = server.raw("/api/v1/namespaces")
    assert code == 200


def test_kubeconfig_shape(server):
    kc = yaml.safe_load(Path(server.kubeconfig).read_text())
    assert kc["current-context"] == "ccha-lab"
    assert kc["clusters"][0]["cluster"]["server"] == server.url
    assert "client-certificate-data" in kc["users"][0]["user"]


def test_discovery(server, dyn):
    code, version = server.raw("/version", cert=False)  # public, like a real cluster
    assert code == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")
    _code, api = server.raw("/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _code, groups = server.raw("/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"} <= names
    _code, core_list = server.raw("/api/v1")
    core_names = {r["name"] for r in core_list["resources"]}
    assert {"namespaces", "nodes", "configmaps", "secrets", "serviceaccounts", "services", "pods", "events"} <= core_names
    for api_version, kind in [("v1", "Namespace"), ("v1", "Node"), ("v1", "ConfigMap"), ("v1", "Secret"),
                              ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "Pod"), ("v1", "Event"),
                              ("apps/v1", "Deployment"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
                              ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
                              ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                              ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
                              ("coordination.k8s.io/v1", "Lease")]:
        assert dyn.resources.get(api_version=api_version, kind=kind).kind == kind
    assert server.raw("/openapi/v2")[0] == 200  # JSON without an Accept header (openapi.py)
    assert server.raw("/apis/nope.example.com/v1")[0] == 404


def test_watch_is_refused_cleanly(server):
    code, body = server.raw("/api/v1/namespaces/default/configmaps?watch=true")
    assert code == 405 and body["reason"] == "MethodNotAllowed"


# ---------------------------------------------------------------------------------- CRUD
def test_create_get_list_with_selectors(core, ns):
    for name, labels in [("a", {"tier": "cloud", "ha": "yes"}), ("b", {"tier": "edge"}), ("c", {})]:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}, "data": {"k": name}})
    got = core.read_namespaced_config_map("a", ns)
    assert got.data == {"k": "a"} and got.metadata.uid and int(got.metadata.resource_version) > 0
    assert got.metadata.creation_timestamp is not None

    def names(**kw):
        return sorted(i.metadata.name for i in core.list_namespaced_config_map(ns, **kw).items)

    assert names() == ["a", "b", "c"]
    assert names(label_selector="tier=cloud") == ["a"]
    assert names(label_selector="tier==edge") == ["b"]
    assert names(label_selector="tier!=cloud") == ["b", "c"]
    assert names(label_selector="tier in (cloud,edge)") == ["a", "b"]
    assert names(label_selector="tier notin (cloud)") == ["b", "c"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="tier=cloud,ha=yes") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector=f"metadata.namespace={ns}") == ["a", "b", "c"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={ns}")
    assert len(everywhere.items) == 3
    page = core.list_namespaced_config_map(ns, limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map(ns, limit=2, _continue=page.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["c"]


def test_already_exists_is_409(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "dup"}})
    assert exc.value.status == 409
    body = status_of(exc.value)
    assert body["reason"] == "AlreadyExists" and body["message"] == 'configmaps "dup" already exists'
    assert body["details"] == {"name": "dup", "kind": "configmaps"}


def test_not_found_body(core, apps, ns):
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("nope", ns)
    assert exc.value.status == 404
    assert status_of(exc.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "configmaps"}, "code": 404}
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("nope", ns)
    assert status_of(exc.value)["message"] == 'deployments.apps "nope" not found'
    assert status_of(exc.value)["details"]["group"] == "apps"


def test_missing_namespace_is_404(core):
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert exc.value.status == 404
    assert status_of(exc.value)["message"] == 'namespaces "no-such-ns" not found'


def test_stale_resource_version_is_409_conflict(core, ns):
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "occ"}, "data": {"v": "1"}})
    stale = cm.metadata.resource_version
    cm.data = {"v": "2"}
    updated = core.replace_namespaced_config_map("occ", ns, cm)
    assert int(updated.metadata.resource_version) > int(stale)
    cm.data = {"v": "3"}
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("occ", ns, cm)
    assert exc.value.status == 409
    body = status_of(exc.value)
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    # merge patch with a stale resourceVersion conflicts too
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("occ", ns, {"metadata": {"resourceVersion": stale}, "data": {"v": "4"}})
    assert exc.value.status == 409
    assert core.read_namespaced_config_map("occ", ns).data == {"v": "2"}


def test_unchanged_update_keeps_resource_version(core, ns):
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "same"}, "data": {"a": "b"}})
    again = core.patch_namespaced_config_map("same", ns, {"data": {"a": "b"}})
    assert again.metadata.resource_version == cm.metadata.resource_version


# ---------------------------------------------------------------------------------- admission
def test_deployment_without_containers_is_422(apps, ns):
    with pytest.raises(ApiException) as exc:
        apps.create_namespaced_deployment(ns, deployment("bad", containers=[]))
    assert exc.value.status == 422
    body = status_of(exc.value)
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "Deployment" and body["details"]["group"] == "apps"
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.template.spec.containers"} in body["details"]["causes"]
    assert body["message"].startswith('Deployment.apps "bad" is invalid: ')


def test_deployment_missing_required_and_selector_mismatch_are_422(dyn, ns):
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("nosel")
    del body["spec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(ApiException) as exc:
        res.create(body=body, namespace=ns)
    assert exc.value.status == 422
    assert status_of(exc.value)["details"]["causes"][0]["field"] == "spec.template.spec.containers[0].name"
    body = deployment("mismatch")
    body["spec"]["selector"]["matchLabels"] = {"app": "other"}
    with pytest.raises(ApiException) as exc:
        res.create(body=body, namespace=ns)
    assert exc.value.status == 422
    assert status_of(exc.value)["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_unknown_field_is_rejected_like_strict_field_validation(dyn, ns):
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("unknown")
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(ApiException) as exc:
        res.create(body=body, namespace=ns)
    assert exc.value.status == 400
    assert status_of(exc.value)["message"] == \
        'strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolice"'
    # fieldValidation=Warn drops the field and warns, like a real server
    created = res.create(body=body, namespace=ns, query_params=[("fieldValidation", "Warn")])
    assert "imagePullPolice" not in created.spec.template.spec.containers[0]


def test_wrong_type_is_400(dyn, ns):
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("typed", replicas="two")
    with pytest.raises(ApiException) as exc:
        res.create(body=body, namespace=ns)
    assert exc.value.status == 400 and "cannot be handled as a Deployment" in status_of(exc.value)["message"]


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 254])
def test_invalid_configmap_name_is_422(core, ns, name):
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    assert exc.value.status == 422
    cause = status_of(exc.value)["details"]["causes"][0]
    assert cause["field"] == "metadata.name" and cause["reason"] == "FieldValueInvalid"


def test_namespace_name_must_be_dns_label(core):
    with pytest.raises(ApiException) as exc:
        core.create_namespace({"metadata": {"name": "a.b"}})
    assert exc.value.status == 422
    assert "RFC 1123 label" in status_of(exc.value)["message"]


def test_invalid_label_is_422(core, ns):
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "l", "labels": {"bad key!": "v"}}})
    assert exc.value.status == 422
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "l", "labels": {"k": "-bad-"}}})
    assert exc.value.status == 422


def test_secret_string_data_is_merged_into_data(core, ns):
    s = core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "data": {"a": "YQ=="},
                                           "stringData": {"b": "bee"}})
    assert s.data == {"a": "YQ==", "b": "YmVl"} and s.string_data is None and s.type == "Opaque"


# ---------------------------------------------------------------------------------- patches
def test_merge_strategic_and_json_patch(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("p"))
    # strategic: containers merge by name, labels merge
    body = {"metadata": {"labels": {"extra": "1"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox:1"},
                {"name": "cloudcore", "image": "kubeedge/cloudcore:v1.22.0"}]}}}}
    d = apps.patch_namespaced_deployment("p", ns, body)  # the client sends strategic-merge-patch+json
    cs = {c.name: c for c in d.spec.template.spec.containers}
    assert set(cs) == {"cloudcore", "sidecar"}
    assert cs["cloudcore"].image == "kubeedge/cloudcore:v1.22.0"
    assert cs["cloudcore"].ports[0].container_port == 10000  # kept: merged by name, not replaced
    assert d.metadata.labels == {"app": "p", "extra": "1"}
    assert d.metadata.generation == 2
    assert wait_for(lambda: apps.read_namespaced_deployment("p", ns).status.observed_generation == 2)
    # strategic $patch: delete removes one container
    d = apps.patch_namespaced_deployment("p", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c.name for c in d.spec.template.spec.containers] == ["cloudcore"]
    # merge patch: lists are replaced, null deletes
    dyn_api = dynamic.DynamicClient(apps.api_client).resources.get(api_version="apps/v1", kind="Deployment")
    d = dyn_api.patch(name="p", namespace=ns, content_type="application/merge-patch+json",
                      body={"metadata": {"labels": {"extra": None}}, "spec": {"replicas": 3}})
    assert dict(d.metadata.labels) == {"app": "p"} and d.spec.replicas == 3
    # no kubelet in this test: the pods stay Pending, none is ready and the rollout stalls (as on a
    # real cluster); the status says so
    d = wait_for(lambda: (x := dyn_api.get(name="p", namespace=ns)).status.observedGeneration == x.metadata.generation
                 and x.status.unavailableReplicas == 3 and x)
    assert d and not d.status.readyReplicas and d.status.replicas >= 3
    # JSON patch
    d = apps.patch_namespaced_deployment("p", ns, [
        {"op": "replace", "path": "/spec/replicas", "value": 1},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}},
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "cloudcore"}])
    assert d.spec.replicas == 1 and d.metadata.annotations == {"a": "b"}
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment("p", ns, [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert exc.value.status == 422


def test_unknown_patch_content_type_is_415(server, core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "ct"}})
    code, body = server.raw(f"/api/v1/namespaces/{ns}/configmaps/ct", "PATCH", b"{}",
                            {"Content-Type": "text/plain"})
    assert code == 415 and body["reason"] == "UnsupportedMediaType"


def test_server_side_apply_twice_is_a_no_op(dyn, ns):
    res = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": ns},
            "data": {"a": "1", "b": "2"}}
    first = res.server_side_apply(body=body, namespace=ns, field_manager="ccha")
    second = res.server_side_apply(body=body, namespace=ns, field_manager="ccha")
    assert first.metadata.resourceVersion == second.metadata.resourceVersion
    # a field the manager no longer applies is removed; force is accepted
    body["data"] = {"a": "1"}
    third = res.server_side_apply(body=body, namespace=ns, field_manager="ccha", force_conflicts=True)
    assert dict(third.data) == {"a": "1"}
    with pytest.raises(ApiException) as exc:  # fieldManager is required
        res.patch(body=body, name="ssa", namespace=ns, content_type="application/apply-patch+yaml")
    assert exc.value.status == 400


def test_dry_run_stores_nothing(core, apps, ns):
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="All")
    assert created.metadata.name == "dry" and created.metadata.uid
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("dry", ns)
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:  # dry run still validates
        apps.create_namespaced_deployment(ns, deployment("dry", containers=[]), dry_run="All")
    assert exc.value.status == 422
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "real"}, "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map("real", ns, {"data": {"a": "2"}}, dry_run="All")
    assert patched.data == {"a": "2"}
    core.delete_namespaced_config_map("real", ns, dry_run="All")
    again = core.read_namespaced_config_map("real", ns)
    assert again.data == {"a": "1"} and again.metadata.resource_version == cm.metadata.resource_version


def test_namespace_delete_cascades(core, apps):
    core.create_namespace({"metadata": {"name": "cascade"}})
    assert [s.metadata.name for s in core.list_namespaced_service_account("cascade").items] == ["default"]
    core.create_namespaced_config_map("cascade", {"metadata": {"name": "c"}})
    apps.create_namespaced_deployment("cascade", deployment("d"))
    gone = core.delete_namespace("cascade")
    assert gone["status"]["phase"] == "Terminating"  # this client returns delete bodies as dicts
    with pytest.raises(ApiException):
        core.read_namespace("cascade")
    core.create_namespace({"metadata": {"name": "cascade"}})
    assert core.list_namespaced_config_map("cascade").items == []
    assert apps.list_namespaced_deployment("cascade").items == []
    core.delete_namespace("cascade")


def test_delete_returns_status_and_404_after(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "del"}})
    st = core.delete_namespaced_config_map("del", ns)
    assert st["kind"] == "Status" and st["status"] == "Success" and st["details"]["name"] == "del"
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_config_map("del", ns)
    assert exc.value.status == 404


# ---------------------------------------------------------------------------------- CRDs
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "devices.devices.kubeedge.io"},
    "spec": {"group": "devices.kubeedge.io", "scope": "Namespaced",
             "names": {"plural": "devices", "singular": "device", "kind": "Device", "shortNames": ["dev"]},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "required": ["protocol"], "properties": {
                                   "protocol": {"type": "string", "enum": ["modbus", "opcua"]},
                                   "replicas": {"type": "integer", "default": 1}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}


def test_crd_admission_makes_group_discoverable(server, api, ns):
    ext = client.ApiextensionsV1Api(api)
    crd = ext.create_custom_resource_definition(CRD)
    conds = {c.type: c.status for c in crd.status.conditions}
    assert conds["Established"] == "True"
    _code, groups = server.raw("/apis")
    assert "devices.kubeedge.io" in {g["name"] for g in groups["groups"]}
    _code, rl = server.raw("/apis/devices.kubeedge.io/v1beta1")
    assert {r["name"] for r in rl["resources"]} == {"devices", "devices/status"}
    # a fresh dynamic client finds the new kind
    res = dynamic.DynamicClient(server.api_client()).resources.get(api_version="devices.kubeedge.io/v1beta1",
                                                                   kind="Device")
    assert res.namespaced
    co = client.CustomObjectsApi(api)
    obj = co.create_namespaced_custom_object("devices.kubeedge.io", "v1beta1", ns, "devices", {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device", "metadata": {"name": "d1"},
        "spec": {"protocol": "modbus"}})
    assert obj["spec"] == {"protocol": "modbus", "replicas": 1}  # schema default applied
    assert obj["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as exc:
        co.create_namespaced_custom_object("devices.kubeedge.io", "v1beta1", ns, "devices", {
            "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device", "metadata": {"name": "d2"},
            "spec": {"protocol": "zigbee"}})
    assert exc.value.status == 422
    # custom resources accept merge patch but not strategic merge patch (415), like a real server
    with pytest.raises(ApiException) as exc:
        res.patch(name="d1", namespace=ns, body={"spec": {"replicas": 2}},
                  content_type="application/strategic-merge-patch+json")
    assert exc.value.status == 415
    patched = res.patch(name="d1", namespace=ns, body={"spec": {"replicas": 2}},
                        content_type="application/merge-patch+json")
    assert patched.spec.replicas == 2 and patched.metadata.generation == 2
    listed = co.list_namespaced_custom_object("devices.kubeedge.io", "v1beta1", ns, "devices")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["d1"]
    assert listed["items"][0]["kind"] == "Device"
    # deleting the CRD removes its objects and its discovery
    ext.delete_custom_resource_definition("devices.devices.kubeedge.io")
    assert server.raw("/apis/devices.kubeedge.io/v1beta1")[0] == 404
    with pytest.raises(ApiException) as exc:
        co.list_namespaced_custom_object("devices.kubeedge.io", "v1beta1", ns, "devices")
    assert exc.value.status == 404


def test_crd_name_must_match_plural_and_group(api):
    bad = json.loads(json.dumps(CRD))
    bad["metadata"]["name"] = "wrong.devices.kubeedge.io"
    with pytest.raises(ApiException) as exc:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(bad)
    assert exc.value.status == 422


# ---------------------------------------------------------------------------------- nodes, rbac, misc
def test_seeded_nodes_and_label_patch(core):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {"ccha-control-plane", "ccha-node1", "ccha-node2", "ccha-node3"}
    n1 = nodes["ccha-node1"]
    assert {a.type: a.address for a in n1.status.addresses} == {"InternalIP": "10.213.102.11", "Hostname": "ccha-node1"}
    assert {c.type: c.status for c in n1.status.conditions}["Ready"] == "True"
    assert nodes["ccha-control-plane"].metadata.labels["node-role.kubernetes.io/control-plane"] == ""
    patched = core.patch_node("ccha-node2", {"metadata": {"labels": {"cloudcore": "ha"}}})
    assert patched.metadata.labels["cloudcore"] == "ha"
    assert [n.metadata.name for n in core.list_node(label_selector="cloudcore=ha").items] == ["ccha-node2"]
    core.patch_node("ccha-node2", {"metadata": {"labels": {"cloudcore": None}}})
    assert core.list_node(label_selector="cloudcore").items == []


def test_rbac_and_leases(api, ns):
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": "cloudcore-" + ns},
                              "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]})
    crb = rbac.create_cluster_role_binding({
        "metadata": {"name": "cloudcore-" + ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cloudcore-" + ns},
        "subjects": [{"kind": "ServiceAccount", "name": "cloudcore", "namespace": ns}]})
    assert crb.role_ref.name == "cloudcore-" + ns
    with pytest.raises(ApiException) as exc:
        rbac.patch_cluster_role_binding("cloudcore-" + ns, {"roleRef": {"name": "other"}})
    assert exc.value.status == 422
    rbac.delete_cluster_role_binding("cloudcore-" + ns)
    rbac.delete_cluster_role("cloudcore-" + ns)
    lease = client.CoordinationV1Api(api).create_namespaced_lease(ns, {
        "metadata": {"name": "cloudcore"}, "spec": {"holderIdentity": "ccha-node1", "leaseDurationSeconds": 15}})
    assert lease.spec.holder_identity == "ccha-node1"


def test_deployment_scale_subresource(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("sc"))
    scale = apps.read_namespaced_deployment_scale("sc", ns)
    assert scale.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("sc", ns).spec.replicas == 4
    d = wait_for(lambda: (x := apps.read_namespaced_deployment("sc", ns)).status.replicas == 4 and x)
    assert d and d.status.ready_replicas is None  # pods without a kubelet never become ready
    assert apps.read_namespaced_deployment_scale("sc", ns).status.replicas == 4


def test_state_file_round_trip(tmp_path):
    state = tmp_path / "state.json"
    srv = Server(tmp_path / "a", "--state-file", str(state))
    try:
        core = client.CoreV1Api(srv.api_client())
        core.create_namespace({"metadata": {"name": "kubeedge"}})
        cm = core.create_namespaced_config_map("kubeedge", {"metadata": {"name": "cloudcore"},
                                                            "data": {"cloudcore.yaml": "x: 1"}})
        core.patch_node("ccha-node1", {"metadata": {"labels": {"keep": "me"}}})
    finally:
        srv.stop()
    assert state.exists()
    srv = Server(tmp_path / "a", "--state-file", str(state))
    try:
        core = client.CoreV1Api(srv.api_client())
        again = core.read_namespaced_config_map("cloudcore", "kubeedge")
        assert again.data == {"cloudcore.yaml": "x: 1"}
        assert again.metadata.uid == cm.metadata.uid
        assert again.metadata.resource_version == cm.metadata.resource_version
        assert core.read_node("ccha-node1").metadata.labels["keep"] == "me"
        fresh = core.create_namespaced_config_map("kubeedge", {"metadata": {"name": "n"}})
        assert int(fresh.metadata.resource_version) > int(cm.metadata.resource_version)
    finally:
        srv.stop()


def test_cli_path_form_prints_kubeconfig(server):
    out = subprocess.run([sys.executable, str(LAB_DIR / "kubeapi"), "kubeconfig", "--state-dir",
                          str(server.state_dir), "--server", "https://10.0.0.1:6443", "--token"],
                         capture_output=True, text=True, check=True).stdout
    kc = yaml.safe_load(out)
    assert kc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert kc["users"][0]["user"]["token"] == Path(server.ready["token_file"]).read_text().strip()


# ---------------------------------------------------------------------------------- kubernetes.core
def _collections_path() -> str | None:
    candidates = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    candidates += [os.path.expanduser("~/.ansible/collections"), "/usr/share/ansible/collections", "/tmp/kcoll"]
    for base in candidates:
        if os.path.isdir(os.path.join(base, "ansible_collections", "kubernetes", "core")):
            return base
    return None


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    kc: "{kubeconfig}"
    cm:
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: cloudcore, namespace: default, labels: {{app: cloudcore}}}}
      data: {{cloudcore.yaml: "modules: {{}}"}}
    deploy:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: cloudcore, namespace: default}}
      spec:
        replicas: 2
        selector: {{matchLabels: {{app: cloudcore}}}}
        template:
          metadata: {{labels: {{app: cloudcore}}}}
          spec:
            hostNetwork: true
            containers: [{{name: cloudcore, image: "kubeedge/cloudcore:v1.23.1", ports: [{{containerPort: 10000}}]}}]
  tasks:
    - {{name: create, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", definition: "{{{{ cm }}}}"}}, register: r_create}}
    - {{name: again, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", definition: "{{{{ cm }}}}"}}, register: r_again}}
    - name: nodes
      kubernetes.core.k8s_info:
        kubeconfig: "{{{{ kc }}}}"
        kind: Node
        label_selectors: ["node-role.kubernetes.io/control-plane"]
      register: r_nodes
    - name: apply
      kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", apply: true, wait: true, wait_timeout: 20, definition: "{{{{ deploy }}}}"}}
      register: r_apply
    - {{name: apply again, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", apply: true, definition: "{{{{ deploy }}}}"}}, register: r_apply2}}
    - name: server-side apply
      kubernetes.core.k8s:
        kubeconfig: "{{{{ kc }}}}"
        apply: true
        server_side_apply: {{field_manager: cloudcore-ha}}
        definition: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: ssa, namespace: default}}, data: {{a: b}}}}
      register: r_ssa
    - {{name: crd, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", definition: "{{{{ crd }}}}", wait: true}}, register: r_crd}}
    - {{name: cr, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", definition: "{{{{ cr }}}}"}}, register: r_cr}}
    - {{name: cr again, kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", definition: "{{{{ cr }}}}"}}, register: r_cr2}}
    - name: check mode change
      kubernetes.core.k8s:
        kubeconfig: "{{{{ kc }}}}"
        definition: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: cloudcore, namespace: default}}, data: {{x: y}}}}
      check_mode: true
      register: r_check
    - name: remove
      kubernetes.core.k8s: {{kubeconfig: "{{{{ kc }}}}", state: absent, wait: true, kind: ConfigMap, namespace: default, name: cloudcore}}
      register: r_rm
    - name: report
      copy:
        dest: "{out}"
        content: "{{{{ {{'create': r_create.changed, 'again': r_again.changed,
                      'nodes': r_nodes.resources | map(attribute='metadata.name') | list,
                      'apply': r_apply.changed, 'apply2': r_apply2.changed, 'ssa': r_ssa.changed,
                      'ready': r_apply.result.status.readyReplicas, 'check': r_check.changed,
                      'rm': r_rm.changed, 'crd': r_crd.changed, 'cr': r_cr.changed,
                      'cr2': r_cr2.changed}} | to_json }}}}"
"""


def test_kubernetes_core_modules(server, tmp_path, core):
    coll = _collections_path()
    if coll is None:
        pytest.skip("kubernetes.core not found (set ANSIBLE_COLLECTIONS_PATH; see /work/shared/LAB-NOTES.md)")
    playbook_cmd = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which("ansible-playbook")
    if playbook_cmd is None:
        pytest.skip("ansible-playbook not installed")
    out = tmp_path / "report.json"
    pb = tmp_path / "pb.yml"
    pb.write_text(PLAYBOOK.format(kubeconfig=server.kubeconfig, out=out))
    crd = json.loads(json.dumps(CRD))
    crd["metadata"]["name"] = "devices.ansible.kubeedge.io"
    crd["spec"]["group"] = "ansible.kubeedge.io"
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"crd": crd, "cr": {
        "apiVersion": "ansible.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": "dev1", "namespace": "default"}, "spec": {"protocol": "opcua"}}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=coll, ANSIBLE_DEPRECATION_WARNINGS="false",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               TMPDIR=str(tmp_path))  # kubernetes.core's discovery cache goes to TMPDIR
    with TestKubelet(core, "default"):  # wait: true needs ready pods: someone must play the kubelet
        proc = subprocess.run([playbook_cmd, "-i", "localhost,", "-c", "local", "-e", f"@{extra}", str(pb)],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report == {"create": True, "again": False, "nodes": ["ccha-control-plane"], "apply": True,
                      "apply2": False, "ssa": True, "ready": 2, "check": True, "rm": True,
                      "crd": True, "cr": True, "cr2": False}
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("cloudcore", "default")


# ---------------------------------------------------------------------------------- network namespaces
@pytest.mark.skipif(os.geteuid() != 0, reason="creating a network namespace needs root")
def test_listener_inside_a_network_namespace(tmp_path):
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) not installed")
    netns = f"ccha-kt-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        srv = Server(tmp_path / "n", "--listen-netns", f"{netns}:127.0.0.1:6443")
        try:
            entry = srv.ready["listeners"][1]
            assert entry == {"netns": netns, "address": "127.0.0.1", "port": 6443, "server": "https://127.0.0.1:6443"}
            kc_ns = tmp_path / "n" / f"kubeconfig-{netns}"
            assert yaml.safe_load(kc_ns.read_text())["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
            # write through the root-namespace listener, read through the one inside the netns
            client.CoreV1Api(srv.api_client()).create_namespaced_config_map(
                "default", {"metadata": {"name": "via-root"}, "data": {"k": "v"}})
            probe = ("import sys; from kubernetes import client, config; "
                     "c = client.CoreV1Api(config.new_client_from_config(config_file=sys.argv[1])); "
                     "print(c.read_namespaced_config_map('via-root', 'default').data['k'])")
            res = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe, str(kc_ns)],
                                 capture_output=True, text=True, timeout=60, check=False)
            assert res.returncode == 0, res.stderr
            assert res.stdout.strip() == "v"
            # the socket really lives in the netns: the netns lists it, the root namespace does not
            inside = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", "sport = :6443"],
                                    capture_output=True, text=True, check=True).stdout
            assert "127.0.0.1:6443" in inside
            root = subprocess.run(["ss", "-Hltnp", "sport = :6443"], capture_output=True, text=True,
                                  check=True).stdout
            assert f"pid={srv.proc.pid}," not in root
        finally:
            srv.stop()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def test_server_side_apply_drops_list_items_the_manager_no_longer_applies(dyn, ns):
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment("ssa-d", containers=[{"name": "a", "image": "busybox:1"}, {"name": "b", "image": "busybox:1"}])
    body["metadata"]["namespace"] = ns
    res.server_side_apply(body=body, namespace=ns, field_manager="ccha")
    body["spec"]["template"]["spec"]["containers"] = [{"name": "a", "image": "busybox:2"}]
    d = res.server_side_apply(body=body, namespace=ns, field_manager="ccha")
    assert [(c.name, c.image) for c in d.spec.template.spec.containers] == [("a", "busybox:2")]
    assert d.metadata.generation == 2
