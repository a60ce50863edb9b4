"""The API stand-in's Deployment/ReplicaSet controllers and scheduler (controllers.py), through the official client.

One server per module on 127.0.0.1 (ephemeral port), nodes ccha-node1..3 + ccha-control-plane
(tainted NoSchedule). A ``TestKubelet`` plays the kubelet where a test needs ready pods.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from .test_kubeapi import Server, TestKubelet, wait_for  # noqa: E402

LABEL = {"kubeedge.io/cloudcore-ha": "true"}
SELECTOR = {"k8s-app": "kubeedge", "kubeedge": "cloudcore"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("ctl"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def core(server):
    return client.CoreV1Api(server.api_client())


@pytest.fixture(scope="module")
def apps(server):
    return client.AppsV1Api(server.api_client())


@pytest.fixture
def ns(core):
    name = "c-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


@pytest.fixture
def labelled(core):
    """ccha-node1 and ccha-node2 carry the CloudCore label; ccha-node3 does not."""
    for node in ("ccha-node1", "ccha-node2"):
        core.patch_node(node, {"metadata": {"labels": LABEL}})
    yield ["ccha-node1", "ccha-node2"]
    for node in ("ccha-node1", "ccha-node2", "ccha-node3"):
        core.patch_node(node, {"metadata": {"labels": {k: None for k in (*LABEL, "node-role.kubernetes.io/edge")}}})


def cloudcore(replicas=2, surge=0, unavailable=1, annotation="a", **pod_extra) -> dict:
    """Like the manifests role's Deployment: nodeSelector, no-edge affinity, anti-affinity per host."""
    pod = {"hostNetwork": True, "nodeSelector": LABEL,
           "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
               {"matchExpressions": [{"key": "node-role.kubernetes.io/edge", "operator": "DoesNotExist"}]}]}},
               "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                   {"labelSelector": {"matchLabels": SELECTOR}, "topologyKey": "kubernetes.io/hostname"}]}},
           "containers": [{"name": "cloudcore", "image": "kubeedge/cloudcore:v1.23.1",
                           "ports": [{"containerPort": 10002, "name": "https"}]}], **pod_extra}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cloudcore"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": SELECTOR},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": SELECTOR, "annotations": {"rev": annotation}},
                                  "spec": pod}}}


def pods(core, ns) -> list:
    return core.list_namespaced_pod(ns).items


def bound(core, ns) -> dict[str, str]:
    return {p.metadata.name: p.spec.node_name for p in pods(core, ns) if p.spec.node_name}


def test_pods_land_on_eligible_nodes_only(core, apps, ns, labelled):
    apps.create_namespaced_deployment(ns, cloudcore(replicas=3))
    assert wait_for(lambda: len(pods(core, ns)) == 3 and len(bound(core, ns)) == 2)
    assert sorted(bound(core, ns).values()) == labelled  # one per labelled node (anti-affinity)
    pending = [p for p in pods(core, ns) if not p.spec.node_name][0]
    cond = wait_for(lambda: [c for c in core.read_namespaced_pod(pending.metadata.name, ns).status.conditions or []
                             if c.type == "PodScheduled" and c.status == "False"])
    assert cond and cond[0].reason == "Unschedulable"
    # the scheduler's filter order: taints, node affinity, host ports (hostNetwork), then anti-affinity
    assert cond[0].message.startswith(
        "0/4 nodes are available: 2 node(s) didn't have free ports for the requested pod ports, "
        "1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: "), cond[0].message
    # the pods: ReplicaSet-style names, the hash label, owned by the ReplicaSet, hostPort defaulted
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].kind == "Deployment"
    digest = rs[0].metadata.labels["pod-template-hash"]
    assert rs[0].metadata.name == f"cloudcore-{digest}"
    for pod in pods(core, ns):
        assert pod.metadata.name.startswith(f"cloudcore-{digest}-") and len(pod.metadata.name) == len(rs[0].metadata.name) + 6
        assert pod.metadata.labels["pod-template-hash"] == digest
        assert pod.metadata.owner_references[0].uid == rs[0].metadata.uid
        assert pod.spec.containers[0].ports[0].host_port == 10002
        assert pod.status.phase == "Pending"  # no kubelet: honest
    # a third labelled node takes the pending pod; an edge node never does
    core.patch_node("ccha-node3", {"metadata": {"labels": {**LABEL, "node-role.kubernetes.io/edge": ""}}})
    time.sleep(1)
    assert len(bound(core, ns)) == 2
    core.patch_node("ccha-node3", {"metadata": {"labels": {"node-role.kubernetes.io/edge": None}}})
    assert wait_for(lambda: sorted(bound(core, ns).values()) == ["ccha-node1", "ccha-node2", "ccha-node3"])


def test_pod_anti_affinity_without_host_ports(core, apps, ns, labelled):
    apps.create_namespaced_deployment(ns, cloudcore(replicas=3, hostNetwork=False))
    assert wait_for(lambda: len(pods(core, ns)) == 3 and len(bound(core, ns)) == 2)
    pending = [p for p in pods(core, ns) if not p.spec.node_name][0]
    cond = wait_for(lambda: [c for c in core.read_namespaced_pod(pending.metadata.name, ns).status.conditions or []
                             if c.type == "PodScheduled" and c.status == "False"])
    assert cond and "2 node(s) didn't match pod anti-affinity rules" in cond[0].message


def test_tolerations_open_tainted_nodes(core, apps, ns):
    body = cloudcore(replicas=1, nodeSelector={"node-role.kubernetes.io/control-plane": ""})
    apps.create_namespaced_deployment(ns, body)
    time.sleep(1)
    assert bound(core, ns) == {}
    apps.patch_namespaced_deployment("cloudcore", ns, {"spec": {"template": {"spec": {"tolerations": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}}}})
    assert wait_for(lambda: list(bound(core, ns).values()) == ["ccha-control-plane"])


def test_deleted_pod_is_replaced_on_the_same_node(core, apps, ns, labelled):
    apps.create_namespaced_deployment(ns, cloudcore(replicas=2))
    assert wait_for(lambda: len(bound(core, ns)) == 2)
    before = bound(core, ns)
    victim = next(name for name, node in before.items() if node == "ccha-node1")
    core.delete_namespaced_pod(victim, ns)
    assert wait_for(lambda: len(bound(core, ns)) == 2 and victim not in bound(core, ns))
    after = bound(core, ns)
    assert sorted(after.values()) == labelled and victim not in after  # node1 is the only place for it


def test_rolling_update_one_at_a_time_and_status(core, apps, ns, labelled):
    core.patch_node("ccha-node3", {"metadata": {"labels": LABEL}})
    apps.create_namespaced_deployment(ns, cloudcore(replicas=3, surge=0, unavailable=1))
    with TestKubelet(core, ns):
        d = wait_for(lambda: (x := apps.read_namespaced_deployment("cloudcore", ns)).status.available_replicas == 3
                     and x)
        assert d, apps.read_namespaced_deployment("cloudcore", ns).status
        s = d.status
        assert (s.observed_generation, s.replicas, s.updated_replicas, s.ready_replicas, s.unavailable_replicas) == \
            (1, 3, 3, 3, None)
        assert {c.type: (c.status, c.reason) for c in s.conditions} == {
            "Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
    # no kubelet while the template changes: exactly one old pod goes, its replacement stays Pending
    old = set(bound(core, ns))
    apps.patch_namespaced_deployment("cloudcore", ns, {"spec": {"template": {"metadata": {"annotations": {"rev": "b"}}}}})
    assert wait_for(lambda: len(set(bound(core, ns)) - old) == 1)
    time.sleep(1)
    assert len(pods(core, ns)) == 3 and len(set(bound(core, ns)) & old) == 2  # maxSurge 0, maxUnavailable 1
    s = apps.read_namespaced_deployment("cloudcore", ns).status
    assert (s.observed_generation, s.replicas, s.updated_replicas, s.available_replicas, s.unavailable_replicas) == \
        (2, 3, 1, 2, 1)
    assert {c.type: c.status for c in s.conditions} == {"Available": "True", "Progressing": "True"}
    # with a kubelet the rollout goes on, one pod at a time: never more than one unavailable
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.wait(0.05):
            ps = pods(core, ns)
            seen.append((len(ps), sum(1 for p in ps if any(c.type == "Ready" and c.status == "True"
                                                           for c in p.status.conditions or []))))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with TestKubelet(core, ns):
        d = wait_for(lambda: (x := apps.read_namespaced_deployment("cloudcore", ns)).status.updated_replicas == 3
                     and x.status.available_replicas == 3 and x.status.replicas == 3 and x, 20)
    stop.set()
    watcher.join()
    assert d, apps.read_namespaced_deployment("cloudcore", ns).status
    assert not set(bound(core, ns)) & old
    assert max(n for n, _ready in seen) <= 3 and min(r for _count, r in seen) >= 2, seen
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert len(apps.list_namespaced_replica_set(ns).items) == 2  # the old one kept, scaled to 0 (history)


def test_deleting_the_deployment_removes_replicasets_and_pods(core, apps, ns, labelled):
    apps.create_namespaced_deployment(ns, cloudcore(replicas=2))
    assert wait_for(lambda: len(pods(core, ns)) == 2)
    apps.delete_namespaced_deployment("cloudcore", ns)
    assert wait_for(lambda: not pods(core, ns) and not apps.list_namespaced_replica_set(ns).items)


def test_recreate_strategy_removes_old_pods_first(core, apps, ns, labelled):
    body = cloudcore(replicas=2)
    body["spec"]["strategy"] = {"type": "Recreate"}
    apps.create_namespaced_deployment(ns, body)
    assert wait_for(lambda: len(bound(core, ns)) == 2)
    old = set(bound(core, ns))
    apps.patch_namespaced_deployment("cloudcore", ns, {"spec": {"template": {"metadata": {"annotations": {"rev": "b"}}}}})
    assert wait_for(lambda: len(bound(core, ns)) == 2 and not set(bound(core, ns)) & old)


def test_progress_deadline(core, apps, ns, labelled):
    body = cloudcore(replicas=2)
    body["spec"]["progressDeadlineSeconds"] = 1
    apps.create_namespaced_deployment(ns, body)
    cond = wait_for(lambda: [c for c in apps.read_namespaced_deployment("cloudcore", ns).status.conditions or []
                             if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"], 6)
    assert cond and cond[0].status == "False"
